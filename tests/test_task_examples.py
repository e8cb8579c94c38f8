"""The three task examples (translation, summarization, dialogue): --quick runs end to end in a
subprocess, their metrics files, the RL guard (metric_after >= metric_before) and the exported
SavedModel; flag errors; the tokenizer / seq2seq builders they use; the embedded task data."""
import json
import os
import subprocess
import sys

import pytest

from tf_rl_text import data
from tf_rl_text.data import TASKS_DIR, task_data_path
from tf_rl_text.defaults import default_seq2seq_model, train_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")

TASKS = ["translation", "summarization", "dialogue"]


# --------------------------------------------------------------------------- embedded data and builders
def test_embedded_task_data_sizes_and_shape():
    tr = data.load_jsonl(task_data_path("translation"), "source", "target")
    su = data.load_summarization(task_data_path("summarization"))
    assert len(tr) == 150 and len(set(tr.prompts)) == 150
    assert len(su) == 80 and all(len(r) == 1 for r in su.references)
    with open(task_data_path("dialogue"), encoding="utf-8") as f:
        dialogues = [json.loads(line)["turns"] for line in f]
    assert len(dialogues) == 40 and all(4 <= len(t) <= 6 for t in dialogues)
    total = sum(os.path.getsize(os.path.join(TASKS_DIR, n)) for n in os.listdir(TASKS_DIR))
    assert total < 150_000, total
    assert os.path.exists(os.path.join(TASKS_DIR, "README.md"))


def test_task_data_path_rejects_unknown_task():
    with pytest.raises(ValueError, match="'poetry'"):
        task_data_path("poetry")


def test_one_task_registry_feeds_the_config_its_defaults_and_the_run_builder(tmp_path):
    """A task is named once (data.TASKS): its data source, splits, default reward and metrics. A config
    reads them, and a user's own task registered with register_task is a data.source like the shipped ones."""
    from tf_rl_text.configfile import load_config
    from tf_rl_text.configsections import data_sources
    from tf_rl_text.workflow.build import load_data

    assert set(data.TASKS) >= {"prompts", "translation", "summarization", "dialogue"}
    assert data_sources() == (*data.TASKS, "file")
    shipped = {name for name, t in data.TASKS.items() if t.embedded}
    assert shipped == set(TASKS) and all(os.path.exists(task_data_path(n)) for n in shipped)
    path = tmp_path / "run.yaml"
    path.write_text("algorithm: reinforce\nmodel: {kind: seq2seq}\ndata: {source: summarization}\n")
    cfg = load_config(str(path))
    assert cfg.reward == {"name": "rouge", "rouge_type": "rougeL"}  # the task's reward and metrics
    assert cfg.run.eval_metrics == data.TASKS["summarization"].metrics
    path.write_text("algorithm: reinforce\nmodel: {kind: seq2seq}\ndata: {source: summarization}\n"
                    "reward: {name: bleu}\nrun: {eval_metrics: reward}\n")
    cfg = load_config(str(path))
    assert cfg.reward == {"name": "bleu"} and cfg.run.eval_metrics == "reward"  # a config's own choice wins

    def splits(data_dir, eval_fraction):
        ds = data.PromptDataset(["2 + 2 =", "3 + 4 =", "1 + 5 ="], ["4", "7", "6"], "sums")
        train, test = ds.split(1 - eval_fraction)
        return train, test, test, "three sums"

    data.register_task(data.Task("sums", "a sum -> its value", splits, reward={"name": "bleu"}, metrics="reward,bleu"))
    try:
        path.write_text("algorithm: reinforce\ndata: {source: sums, eval_fraction: 0.34}\n")
        cfg = load_config(str(path))
        assert cfg.reward == {"name": "bleu"} and cfg.run.eval_metrics == "reward,bleu"
        train, dev, test, note = load_data(cfg)
        assert note == "three sums" and len(train) + len(test) == 3 and dev is test
    finally:
        del data.TASKS["sums"]
    with pytest.raises(Exception, match="source must be one of"):
        load_config(str(path))
    with pytest.raises(ValueError, match="other than 'file'"):
        data.register_task(data.Task("file", "", splits))


def test_train_tokenizer_round_trip_and_special_ids():
    texts = ["Ein Mädchen hält eine Blume.", "A girl is holding a flower.", "Zwei Männer stehen auf einer Bank."] * 5
    tok = train_tokenizer(texts, vocab_size=300)
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert 259 < len(tok) <= 300
    for t in texts[:3] + ["ünseen wörds, ß!"]:
        assert tok.decode(tok(t)["input_ids"]) == t  # byte level: any text round-trips
    with pytest.raises(ValueError, match="vocab_size must be an integer >= 260.*got 100"):
        train_tokenizer(texts, vocab_size=100)
    with pytest.raises(ValueError, match="at least one non-empty text"):
        train_tokenizer([""], vocab_size=300)


@pytest.mark.parametrize("arch", ["t5", "bart"])
def test_default_seq2seq_model(arch):
    tok = train_tokenizer(["a dog runs.", "ein Hund läuft."] * 4, vocab_size=270)
    model = default_seq2seq_model(tok, arch=arch, d_model=32, layers=1, heads=2, max_positions=40)
    assert model.config.is_encoder_decoder and model.config.vocab_size == len(tok)
    dropout = model.config.dropout_rate if arch == "t5" else model.config.dropout
    assert dropout == 0.0
    with pytest.raises(ValueError, match="arch must be 't5' or 'bart', got 'gpt'"):
        default_seq2seq_model(tok, arch="gpt")
    with pytest.raises(ValueError, match="divisible by heads.*d_model=30, heads=4"):
        default_seq2seq_model(tok, d_model=30, heads=4)


# --------------------------------------------------------------------------- flags
CONFIGS = os.path.join(REPO, "configs")


def _script_args(task, argv):
    from tf_rl_text.scripts import TASK_SCRIPT_FLAGS, script_args

    return script_args(os.path.join(CONFIGS, f"{task}.yaml"), TASK_SCRIPT_FLAGS, argv)


@pytest.mark.parametrize("argv, message", [
    (["--rl-steps", "-1"], "--rl-steps must be >= 0, got -1"),
    (["--batch-size", "zero"], "--batch-size must be an integer, got 'zero'"),
    (["--learning-rate", "0"], "--learning-rate must be > 0, got 0.0"),
    (["--vocab-size", "100"], "--vocab-size must be >= 260 (256 bytes + 3 special tokens), got 100"),
    (["--data", "/no/such/folder"], "--data '/no/such/folder' does not exist"),
    (["--model", "/no/such/model"], "--model '/no/such/model' is not a folder"),
])
def test_bad_flags_name_the_value(argv, message, capsys):
    """A flag is a config field: the dataclasses validate it, the message names the flag (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        _script_args("translation", argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_every_flag(capsys):
    from tf_rl_text.scripts import TASK_SCRIPT_FLAGS

    with pytest.raises(SystemExit):
        _script_args("summarization", ["--help"])
    text = capsys.readouterr().out
    for flag in ["--quick", "--data", "--model", "--seed", "--output", "--metrics-file", "--no-progress", "--prefix",
                 "--arch", "--kl-coef", "--precision", "--run-dir", "--deterministic", *TASK_SCRIPT_FLAGS]:
        assert flag in text, flag
    # the help of a flag is its field's docstring, with the config's defaults (summarization: 400 steps, quick 100)
    assert "[run.warm_start_steps; default 400, --quick 100]" in " ".join(text.split())


def test_quick_and_data_pick_their_sizes():
    """--quick merges the config's quick section; --data its real_data section (not with --quick); a flag wins."""
    cfg, _ = _script_args("translation", ["--quick"])
    assert (cfg.model.width, cfg.model.layers, cfg.run.steps, cfg.data.eval_limit) == (32, 1, 4, 16)
    cfg, _ = _script_args("translation", [])
    assert (cfg.model.width, cfg.run.warm_start_steps, cfg.run.steps, cfg.run.keep_best) == (64, 500, 40, "sacrebleu")
    cfg, args = _script_args("translation", ["--data", os.path.join(TASKS_DIR, "translation.jsonl"), "--rl-steps", "3"])
    assert (cfg.model.width, cfg.model.vocab_size, cfg.run.eval_every, cfg.data.dev_limit) == (128, 4000, 30, 200)
    assert cfg.run.steps == 3 and cfg.data.eval_limit is None and args.output.endswith("saved_models/translation")
    cfg, _ = _script_args("translation", ["--quick", "--data", os.path.join(TASKS_DIR, "translation.jsonl")])
    assert cfg.model.width == 32 and cfg.run.steps == 4


def test_why_rl_did_not_help_names_the_runs_own_numbers():
    from tf_rl_text.configfile import load_config
    from tf_rl_text.scripts import TASK_SCRIPT_FLAGS, flag_text
    from tf_rl_text.workflow import rl_note

    cfg = load_config(os.path.join(CONFIGS, "translation.yaml"))
    fitted = rl_note(cfg, [{"reward_mean": 0.948}], 120, 30)
    assert "no RL checkpoint beat the warm start on the 30 held-out pairs" in fitted
    assert "the 120 training pairs, and the warm start already reproduces them" in fitted
    assert "mean reward of 0.95 (at most 1.0)" in fitted and "run.warm_start_steps=150" in fitted
    # a task example shows its flags instead of the config's field names
    assert "--warm-start-steps=150 --learning-rate=2e-4 --eval-every=10" in flag_text(fitted, TASK_SCRIPT_FLAGS)
    room = rl_note(cfg, [{"reward_mean": 0.41}], 120, 30)
    assert "mean reward of 0.41" in room and "40 steps at learning\n  rate 5e-05 did not carry over" in room
    assert "already reproduces" not in room


# --------------------------------------------------------------------------- end to end
def documented_quick_figures(task):
    """[after warm start, after RL] as docs/tasks-and-results.md prints them for ``task``'s --quick row."""
    with open(os.path.join(REPO, "docs", "tasks-and-results.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith(f"| {task}, embedded, `--quick`")]
    assert len(rows) == 1, f"docs/tasks-and-results.md has no single --quick row for {task}"
    cells = [c.strip() for c in rows[0].split("|")]
    assert "AVX" in rows[0], "the --quick row must say which CPU (AVX-512 or AVX2) produced its figures"
    return [cells[4].split()[0], cells[5].split()[0]]


@pytest.mark.parametrize("task", TASKS)
def test_quick_run_end_to_end(task, tmp_path):
    metrics_file, output = tmp_path / "metrics.json", tmp_path / "saved_model"
    cmd = [sys.executable, os.path.join(EXAMPLES, f"{task}.py"), "--quick", "--no-progress",
           "--metrics-file", str(metrics_file), "--output", str(output)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))  # this checkout's package
    cmd += ["--run-dir", str(tmp_path / "run")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = json.loads(metrics_file.read_text())
    for key in ("metric_name", "metric_before", "metric_after", "saved_model"):
        assert key in m, key
    assert m["metric_name"] == {"translation": "sacrebleu", "summarization": "rougeL", "dialogue": "sacrebleu"}[task]
    assert m["metric_after"] >= m["metric_before"]  # the RL guard keeps the best held-out checkpoint
    # docs/tasks-and-results.md prints this --quick run's figures with the CPU that produced them; another CPU's
    # kernels (AVX-512 vs AVX2, TF 2.15 vs 2.21) move a 16-pair smoke figure by up to 22% (measured, 2026-12-07), so
    # what holds everywhere is the band: the warm start's figure within 35% of the documented one
    documented = float(documented_quick_figures(task)[0])
    assert abs(m["metric_before"] - documented) <= 0.35 * documented, (m["metric_before"], documented, m["kept"])
    assert os.path.samefile(m["saved_model"], output)
    assert "after RL" in proc.stdout and "loaded back" in proc.stdout
    for noise in ("Token indices sequence length is longer", "TensorFlow and JAX classes are deprecated"):
        assert noise not in proc.stdout + proc.stderr, noise
    # a run whose RL never beat the warm start says why, in its output and its metrics file
    assert (m["kept"] == "the warm-started model") == ("Why RL did not help" in proc.stdout) == bool(m["rl_note"])

    import tf_rl_text

    policy = tf_rl_text.load(str(output))
    assert policy.metadata["algorithm"] == "reinforce"
    assert policy.metadata["config"]["baseline"] == "self_critical"
    sample = m["samples_after"][0]
    assert policy.generate([sample["source"]]) == [sample["output"]]  # the SavedModel reproduces the run's output


def test_task_data_from_one_file_is_split_80_20():
    """data.data_dir may name one file: a translation jsonl is shuffled (seed 0) and split 80/20, the held-out
    part both dev and test; dev_limit leaves it alone (it limits a separate dev split only)."""
    from tf_rl_text.configfile import load_config
    from tf_rl_text.workflow import load_data

    path = os.path.join(TASKS_DIR, "translation.jsonl")
    cfg = load_config(os.path.join(CONFIGS, "translation.yaml"), [f"data.data_dir={path}", "data.eval_limit=null"])
    train, dev, test, note = load_data(cfg)
    assert (len(train), len(test)) == (120, 30) and dev is test and "150 pairs, 80%/20% split" in note
    assert not set(train.prompts) & set(test.prompts)
    embedded = load_data(load_config(os.path.join(CONFIGS, "translation.yaml"), ["data.eval_limit=null"]))
    assert embedded[0].prompts == train.prompts  # the same split as the embedded data's
