"""data.py: PromptDataset helpers, generic loaders and their error messages, task helpers on real data."""
import gzip
import json
import os

import pytest

from conftest import SHARED_DATA
from tf_rl_text import data
from tf_rl_text.data import DataFormatError, PromptDataset

needs_shared_data = pytest.mark.skipif(
    not os.path.isdir(SHARED_DATA), reason=f"shared real data folder {SHARED_DATA} is absent"
)


def write(path, text, compress=False):
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return str(path)


# --------------------------------------------------------------------------- PromptDataset
def test_dataset_indexing_slicing_take_split_select():
    ds = PromptDataset([f"p{i}" for i in range(10)], [f"r{i}" for i in range(9)] + [["r9a", "r9b"]], "toy")
    assert len(ds) == 10 and ds.has_references
    assert ds[3] == ("p3", "r3") and ds[9] == ("p9", ["r9a", "r9b"])
    assert ds[2:4].prompts == ["p2", "p3"] and ds[2:4].references == ["r2", "r3"]
    assert ds.take(3).prompts == ["p0", "p1", "p2"] and len(ds.take(50)) == 10
    a, b = ds.split(0.8)
    assert a.prompts == [f"p{i}" for i in range(8)] and b.references == ["r8", ["r9a", "r9b"]]
    a, b = ds.split(3, shuffle=True, seed=1)
    assert len(a) == 3 and len(b) == 7 and sorted(a.prompts + b.prompts) == sorted(ds.prompts)
    assert [ds[ds.prompts.index(p)][1] for p in a.prompts] == a.references  # pairs stay together
    train, test = ds.split(test_fraction=0.2)  # named: (train, test), as scikit-learn; the same cut as split(0.8)
    assert train.prompts == [f"p{i}" for i in range(8)] and test.prompts == ["p8", "p9"]
    train, test = ds.split(test_count=3, shuffle=True, seed=1)
    assert (len(train), len(test)) == (7, 3) and sorted(train.prompts + test.prompts) == sorted(ds.prompts)
    with pytest.raises(ValueError, match=r"split takes one of: test_fraction=F"):
        ds.split(0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\), got 1.5"):
        ds.split(test_fraction=1.5)
    with pytest.raises(ValueError, match=r"test_count must be an integer in \[0, 10\], got 11"):
        ds.split(test_count=11)
    assert ds.select([5, 1]).prompts == ["p5", "p1"]
    assert ds.first_references()[-1] == "r9a"
    assert ds.map_prompts(str.upper).prompts[0] == "P0"
    assert list(PromptDataset(["x"]))[0] == ("x", None)


def test_dataset_validation_errors():
    with pytest.raises(ValueError, match="2 references for 3 prompts"):
        PromptDataset(["a", "b", "c"], ["x", "y"])
    with pytest.raises(ValueError, match=r"prompts\[1\] must be a string"):
        PromptDataset(["a", 3])
    with pytest.raises(ValueError, match="wrap it in a list"):
        PromptDataset("a prompt")
    with pytest.raises(ValueError, match=r"references\[0\]: a reference must be a string or a non-empty list"):
        PromptDataset(["a"], [[]])
    with pytest.raises(ValueError, match="split fraction must be in"):
        PromptDataset(["a", "b"]).split(1.5)
    with pytest.raises(ValueError, match="has no references"):
        PromptDataset(["a"]).first_references()


def test_to_env_passes_prompts_and_references(tokenizer):
    ds = PromptDataset(["the movie was", "my day"], ["good", ["fine", "ok"]])
    env = ds.to_env(tokenizer, lambda c, p, r: [0.0] * len(c), batch_size=2, max_new_tokens=4)
    assert env.prompts == ds.prompts and env.references == ds.references and env.batch_size == 2


def test_truncate_prompts_keeps_start_or_end(tokenizer):
    text = "the movie was good and the day was long and the dinner was very nice"
    ds = PromptDataset([text, "short"])
    start = ds.truncate_prompts(tokenizer, 5).prompts
    end = ds.truncate_prompts(tokenizer, 5, keep="end").prompts
    assert len(tokenizer(start[0])["input_ids"]) <= 5 and text.startswith(start[0])
    assert len(tokenizer(end[0])["input_ids"]) <= 5 and text.endswith(end[0])
    assert start[1] == end[1] == "short"


# --------------------------------------------------------------------------- jsonl
def test_load_jsonl_fields_prefix_limit_and_multi_reference(tmp_path):
    rows = [{"src": "a dog", "tgt": "ein Hund"}, {"src": "two cats", "tgt": ["zwei Katzen", "2 Katzen"]},
            {"src": "x", "tgt": "y"}]
    path = write(tmp_path / "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ds = data.load_jsonl(path, prompt_field="src", reference_field="tgt", limit=2, prefix="translate: ")
    assert ds.prompts == ["translate: a dog", "translate: two cats"]
    assert ds.references == ["ein Hund", ["zwei Katzen", "2 Katzen"]]
    assert data.load_jsonl(path, prompt_field="src").references is None
    gz = write(tmp_path / "d.jsonl.gz", "".join(json.dumps(r) + "\n" for r in rows), compress=True)
    assert data.load_jsonl(gz, "src", "tgt").prompts == ["a dog", "two cats", "x"]


def test_load_jsonl_missing_field_names_field_file_line_and_fields_present(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"src": "a", "tgt": "b"}\n{"source": "c", "tgt": "d"}\n')
    with pytest.raises(DataFormatError) as e:
        data.load_jsonl(path, prompt_field="src", reference_field="tgt")
    msg = str(e.value)
    assert "'src'" in msg and path in msg and "line 2" in msg and "['source', 'tgt']" in msg
    with pytest.raises(DataFormatError, match=r"line 1: field 'target' not found; fields present: \['src', 'tgt'\]"):
        data.load_jsonl(path, prompt_field="src", reference_field="target")


def test_load_jsonl_empty_line_bad_json_and_empty_value(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"prompt": "a"}\n\n{"prompt": "b"}\n')
    with pytest.raises(DataFormatError, match=r"d.jsonl, line 2: empty line"):
        data.load_jsonl(path)
    path = write(tmp_path / "e.jsonl", '{"prompt": "a"}\n{"prompt": "b"\n')
    with pytest.raises(DataFormatError, match=r"e.jsonl, line 2: invalid JSON"):
        data.load_jsonl(path)
    path = write(tmp_path / "f.jsonl", '{"prompt": "  "}\n')
    with pytest.raises(DataFormatError, match=r"f.jsonl, line 1: field 'prompt' is empty"):
        data.load_jsonl(path)
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        data.load_jsonl(str(tmp_path / "nope.jsonl"))


# --------------------------------------------------------------------------- csv / tsv
def test_load_csv_and_tsv(tmp_path):
    path = write(tmp_path / "d.csv", 'prompt,reference\n"hello, world",hallo\nbye,tschuess\n')
    ds = data.load_csv(path, "prompt", "reference")
    assert ds.prompts == ["hello, world", "bye"] and ds.references == ["hallo", "tschuess"]
    tsv = write(tmp_path / "d.tsv", "text\tlabel\tsummary\na, b\t1\tab\nc\t0\tcc\n")
    ds = data.load_csv(tsv, "text", "summary", limit=1)  # tab inferred from .tsv
    assert ds.prompts == ["a, b"] and ds.references == ["ab"]
    nohead = write(tmp_path / "n.tsv", "one\tuno\ntwo\tdos\n")
    assert data.load_csv(nohead, 0, 1, header=False).references == ["uno", "dos"]


def test_load_csv_errors_name_column_line_and_columns(tmp_path):
    path = write(tmp_path / "d.csv", "text,summary\na,b\n")
    with pytest.raises(DataFormatError, match=r"d.csv, line 1: column 'prompt' not found; columns present: \['text', 'summary'\]"):
        data.load_csv(path)
    path = write(tmp_path / "s.csv", "text,summary\na,b\nc\n")
    with pytest.raises(DataFormatError, match=r"s.csv, line 3: column 'summary' missing; the row has 1 field"):
        data.load_csv(path, "text", "summary")
    path = write(tmp_path / "e.csv", "text,summary\na,b\n\nc,d\n")
    with pytest.raises(DataFormatError, match=r"e.csv, line 3: empty line"):
        data.load_csv(path, "text", "summary")


# --------------------------------------------------------------------------- parallel
def test_load_parallel_plain_and_gzip(tmp_path):
    src = write(tmp_path / "train.en.gz", "a dog\ntwo cats\nthree birds\n", compress=True)
    tgt = write(tmp_path / "train.de.gz", "ein Hund\nzwei Katzen\ndrei Voegel\n", compress=True)
    ds = data.load_parallel(src, tgt, prefix="translate english to german: ", limit=2)
    assert ds.prompts == ["translate english to german: a dog", "translate english to german: two cats"]
    assert ds.references == ["ein Hund", "zwei Katzen"]
    plain = write(tmp_path / "train.en", "a dog\r\ntwo cats\r\n")
    assert data.load_parallel(plain).prompts == ["a dog", "two cats"]


def test_load_parallel_mismatch_gives_both_counts_and_empty_line_its_location(tmp_path):
    src = write(tmp_path / "a.en", "1\n2\n3\n4\n")
    tgt = write(tmp_path / "a.de", "1\n2\n")
    with pytest.raises(DataFormatError, match=r"a.en has 4 lines but .*a.de has 2; .*a.de ends after line 2"):
        data.load_parallel(src, tgt)
    with pytest.raises(DataFormatError, match=r"a.de has 2 lines but .*a.en has 4; .*a.de ends after line 2"):
        data.load_parallel(tgt, src)  # the short file as the source
    assert len(data.load_parallel(src, tgt, limit=2)) == 2  # documented: limit reads only the first lines
    gap = write(tmp_path / "b.de", "1\n\n3\n4\n")
    with pytest.raises(DataFormatError, match=r"b.de, line 2: empty line"):
        data.load_parallel(src, gap)


# --------------------------------------------------------------------------- task helpers on real data
@needs_shared_data
def test_load_translation_multi30k_val_slice():
    ds = data.load_translation(split="val", limit=5, prefix="translate english to german: ", data_dir=SHARED_DATA)
    with gzip.open(os.path.join(SHARED_DATA, "multi30k", "val.en.gz"), "rt", encoding="utf-8") as f:
        en = [next(f).strip() for _ in range(5)]
    with gzip.open(os.path.join(SHARED_DATA, "multi30k", "val.de.gz"), "rt", encoding="utf-8") as f:
        de = [next(f).strip() for _ in range(5)]
    assert ds.prompts == ["translate english to german: " + s for s in en] and ds.references == de
    assert ds.prompts[0] == "translate english to german: A group of men are loading cotton onto a truck"
    assert ds.references[0] == "Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen"
    back = data.load_translation(split="val", source_lang="de", target_lang="en", limit=1, data_dir=SHARED_DATA)
    assert back.prompts == de[:1] and back.references == en[:1]
    with pytest.raises(FileNotFoundError, match="nosplit.en.gz"):
        data.load_translation(split="nosplit", data_dir=SHARED_DATA)


@needs_shared_data
def test_load_summarization_scitldr_dev_slice():
    path = os.path.join(SHARED_DATA, "scitldr", "dev.jsonl")
    with open(path, encoding="utf-8") as f:
        records = [json.loads(next(f)) for _ in range(3)]
    ds = data.load_summarization(split="dev", limit=3, data_dir=SHARED_DATA)
    assert ds.prompts == [" ".join(r["source"]) for r in records]
    assert ds.references == [r["target"] for r in records] and len(ds.references[0]) == 3  # multi-reference
    short = data.load_summarization(path, limit=3, max_source_words=12, prefix="summarize: ", suffix=" TL;DR:")
    assert short.prompts[0] == "summarize: " + " ".join(" ".join(records[0]["source"]).split()[:12]) + " TL;DR:"
    assert short.prompts[0].startswith("summarize: Mixed precision training (MPT) is becoming")


@needs_shared_data
def test_load_dialogue_topical_chat_context_windows():
    with open(os.path.join(SHARED_DATA, "topical_chat", "valid_freq.json"), encoding="utf-8") as f:
        first = next(iter(json.load(f).values()))["content"]
    msgs = [t["message"].strip() for t in first]
    ds = data.load_dialogue(split="valid_freq", context_turns=2, separator=" | ", limit=5, data_dir=SHARED_DATA)
    assert len(ds) == 5
    assert ds[0] == (msgs[0], msgs[1])                               # turn 1: only one previous turn
    assert ds[1] == (msgs[0] + " | " + msgs[1], msgs[2])
    assert ds[4] == (msgs[3] + " | " + msgs[4], msgs[5])             # window of the previous 2 turns
    labelled = data.load_dialogue(context_turns=1, speaker_labels=True, limit=2, data_dir=SHARED_DATA)
    assert labelled.prompts[1] == f"{first[1]['agent']}: {msgs[1]}" and labelled.references[1] == msgs[2]
    with pytest.raises(ValueError, match="context_turns must be an integer >= 1, got 0"):
        data.load_dialogue(context_turns=0, limit=1, data_dir=SHARED_DATA)


def test_load_dialogue_missing_message_field(tmp_path):
    path = write(tmp_path / "chat.json", json.dumps({"c1": {"content": [{"message": "hi"}, {"text": "yo", "agent": "a"}]}}))
    with pytest.raises(DataFormatError, match=r"chat.json, conversation 'c1', turn 1: field 'message' not found; "
                                              r"fields present: \['agent', 'text'\]"):
        data.load_dialogue(path)


# --------------------------------------------------------------------------- where the data folder comes from
def _tiny_data_folder(root):
    """A folder laid out like ../shared/data with one example per data set."""
    os.makedirs(root / "multi30k")
    write(root / "multi30k" / "val.en.gz", "a dog runs\n", compress=True)
    write(root / "multi30k" / "val.de.gz", "ein Hund rennt\n", compress=True)
    os.makedirs(root / "scitldr")
    write(root / "scitldr" / "dev.jsonl", json.dumps({"source": ["We study cats.", "Cats purr."],
                                                       "target": ["cats purr"]}) + "\n")
    os.makedirs(root / "topical_chat")
    write(root / "topical_chat" / "valid_freq.json",
          json.dumps({"c1": {"content": [{"message": "hi", "agent": "a"}, {"message": "hello", "agent": "b"}]}}))
    return root


def _load_all(**kwargs):
    return (data.load_translation(split="val", **kwargs), data.load_summarization(split="dev", **kwargs),
            data.load_dialogue(split="valid_freq", **kwargs))


def test_loaders_guess_no_folder_and_say_what_to_pass(tmp_path, monkeypatch):
    """An installed package has no checkout around it: with neither data_dir nor $TF_RL_TEXT_DATA the
    loaders name both and where this repository keeps the data, from any working directory."""
    monkeypatch.delenv("TF_RL_TEXT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    for load in (data.load_translation, data.load_summarization, data.load_dialogue):
        with pytest.raises(FileNotFoundError, match=r"no data folder given: pass data_dir=.*\.\./shared/data.*"
                                                    r"environment variable TF_RL_TEXT_DATA=path/to/data"):
            load()
    with pytest.raises(FileNotFoundError, match=r"data folder not found: 'nowhere' \(from data_dir, resolved "
                                                r"against the working directory .*TF_RL_TEXT_DATA"):
        data.load_translation(data_dir="nowhere")
    monkeypatch.setenv("TF_RL_TEXT_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"missing' \(from \$TF_RL_TEXT_DATA"):
        data.load_summarization()


def test_loaders_take_data_dir_or_the_environment_variable_from_any_working_directory(tmp_path, monkeypatch):
    root = _tiny_data_folder(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("TF_RL_TEXT_DATA", raising=False)
    want = (["a dog runs"], ["ein Hund rennt"]), (["We study cats. Cats purr."], [["cats purr"]]), (["hi"], ["hello"])
    got = _load_all(data_dir=str(root))                                  # an absolute folder
    assert [(d.prompts, d.references) for d in got] == [tuple(w) for w in want]
    got = _load_all(data_dir=os.path.join("..", "data"))                 # relative: to the working directory
    assert [(d.prompts, d.references) for d in got] == [tuple(w) for w in want]
    monkeypatch.setenv("TF_RL_TEXT_DATA", str(root))                     # the environment variable
    assert [(d.prompts, d.references) for d in _load_all()] == [tuple(w) for w in want]
    assert data.shared_data_dir() == str(root) and data.shared_data_dir("../data") == "../data"  # data_dir wins


def test_truncating_long_prompts_is_silent_and_cuts_to_max_tokens():
    """Cutting a long source is what truncate_prompts is for: no 'Token indices sequence length is longer
    than the specified maximum' warning (transformers marks it given in deprecation_warnings)."""
    from tf_rl_text import default_tokenizer

    tok = default_tokenizer()
    tok.model_max_length = 8
    key = "sequence-length-is-longer-than-the-specified-maximum"
    long = "the movie was wonderful and the food was fresh and tasty and the staff were kind"
    assert len(tok(long, add_special_tokens=False, verbose=False)["input_ids"]) > 8
    cut = PromptDataset([long, "good"], ["r", "s"]).truncate_prompts(tok, 5)
    assert len(tok(cut.prompts[0], add_special_tokens=False, verbose=False)["input_ids"]) == 5
    assert cut.prompts[1] == "good" and not tok.deprecation_warnings.get(key)
    tok(long)  # without verbose=False transformers does warn: the check above can fail
    assert tok.deprecation_warnings.get(key)
