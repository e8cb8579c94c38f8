"""Prompt / reference datasets: the environment's input, loaded from the formats users have.

A :class:`PromptDataset` is a list of prompts (the RL episodes' start states; for translation
and summarization the *source* text) and, optionally, one reference per prompt (a string or a
list of strings for multi-reference tasks). It feeds :class:`~tf_rl_text.env.TextGenerationEnv`
and :func:`tf_rl_text.metrics.evaluate`.

Generic loaders (all take ``limit`` = keep the first n examples):

* :func:`load_jsonl` - one JSON object a line, field names configurable;
* :func:`load_csv` - csv / tsv with a header row (or column indices without one);
* :func:`load_parallel` - aligned text files, one example a line (``train.en`` / ``train.de``),
  plain or gzip (``.gz``).

Task helpers for real data sets (each takes the data set's folder as ``path``, or the folder
that holds all of them as ``data_dir`` / ``$TF_RL_TEXT_DATA``; see :func:`shared_data_dir`):

* :func:`load_translation` - Multi30k ``SPLIT.en.gz`` / ``SPLIT.de.gz`` (en -> de);
* :func:`load_summarization` - SciTLDR jsonl (abstract sentences -> TL;DR summaries);
* :func:`load_dialogue` - Topical-Chat json (previous k turns -> next turn).

The package also ships small task data written for it (``default_data/tasks/``):
:func:`task_data_path` gives the jsonl of "translation", "summarization" or "dialogue".

Errors name the file, the 1-based line number, the field and what was present.

Example::

    from tf_rl_text import data
    ds = data.load_translation(split="val", limit=64, prefix="translate english to german: ",
                               data_dir="../shared/data")   # or set TF_RL_TEXT_DATA=../shared/data
    train, test = ds.split(test_fraction=0.1)
    env = train.to_env(tokenizer, reward_fn, batch_size=8, max_new_tokens=24)
"""
from __future__ import annotations

import csv
import dataclasses
import gzip
import json
import os
import random
from typing import Callable, Iterable

from tf_rl_text.tokens import text_to_ids
from tf_rl_text.validation import DATA_ENV_VAR  # the variable naming the real data's folder, read when no data_dir

TASKS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_data", "tasks")
"""The small task data sets shipped in the package (written by the repository's tools/make_tasks.py)."""
TASK_FILES = {"translation": "translation.jsonl", "summarization": "summarization.jsonl", "dialogue": "dialogue.jsonl"}


class DataFormatError(ValueError):
    """A data file does not have the expected shape (missing field, empty line, misaligned files)."""


def task_data_path(task: str) -> str:
    """Path of the embedded jsonl of ``task`` ("translation", "summarization" or "dialogue")."""
    if task not in TASK_FILES:
        raise ValueError(f"task must be one of {sorted(TASK_FILES)}, got {task!r}")
    return os.path.join(TASKS_DIR, TASK_FILES[task])


def shared_data_dir(data_dir: str | None = None) -> str:
    """The folder holding the real data sets: ``data_dir`` if given, else ``$TF_RL_TEXT_DATA``.

    The package never guesses a folder outside itself (an installed package has no checkout
    around it). With neither given this raises FileNotFoundError saying what to pass; in this
    repository's layout the data lies in ``../shared/data`` next to the checkout.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR) or None
        source = f"${DATA_ENV_VAR}"
    else:
        source = "data_dir"
    if data_dir is None:
        raise FileNotFoundError(
            f"no data folder given: pass data_dir=\"path/to/data\" (the folder holding multi30k/, scitldr/, "
            f"topical_chat/; in this repository's layout ../shared/data, next to the checkout), or the data set's "
            f"own folder as path=..., or set the environment variable {DATA_ENV_VAR}=path/to/data"
        )
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"data folder not found: {data_dir!r} (from {source}, resolved against the working directory "
            f"{os.getcwd()!r}); pass the folder holding multi30k/, scitldr/, topical_chat/ (this repository "
            f"keeps them in ../shared/data) as data_dir=... or in ${DATA_ENV_VAR}"
        )
    return data_dir


class _Utf8Lines:
    """A UTF-8 text file read line by line (``for line in f``, ``readline``, ``read``), lines ending
    as in the file; bytes that are not UTF-8 raise a DataFormatError naming the line and column."""

    def __init__(self, path, raw):
        self.path, self._raw, self.lineno = path, raw, 0

    def readline(self) -> str:
        line = self._raw.readline()
        if not line:
            return ""
        self.lineno += 1
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFormatError(
                f"{self.path}, line {self.lineno}: not valid UTF-8 (byte 0x{line[e.start]:02x} at byte {e.start + 1} "
                "of the line); re-save the file as UTF-8"
            ) from None

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def read(self) -> str:
        return "".join(self)

    def close(self):
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_text(path: str):
    """Open a UTF-8 text file for reading; ``.gz`` files are decompressed transparently.

    Invalid UTF-8 raises :class:`DataFormatError` naming the file and line.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file not found: {path}; check the path (a relative one starts from {os.getcwd()})")
    if os.path.isdir(path):
        raise IsADirectoryError(f"data file {path} is a folder; pass the path of a file in it")
    raw = gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")
    return _Utf8Lines(path, raw)


def _check_limit(limit):
    if limit is not None and (int(limit) != limit or limit < 0):
        raise ValueError(f"limit must be None (everything) or an integer >= 0, got {limit!r}")
    return None if limit is None else int(limit)


def _check_reference(ref, where: str):
    """A reference is a non-empty string or a non-empty list of non-empty strings."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, (list, tuple)) and ref and all(isinstance(r, str) for r in ref):
        return list(ref)
    raise DataFormatError(f"{where}: a reference must be a string or a non-empty list of strings, got {ref!r}")


# --------------------------------------------------------------------------- dataset
@dataclasses.dataclass
class PromptDataset:
    """Prompts (or sources) and optional references, one per prompt.

    ``references[i]`` is a string, or a list of strings when an example has several
    references (SciTLDR dev/test); ``references`` is None for prompt-only data.

    Example::

        ds = PromptDataset(["translate: a dog", "translate: a cat"], ["ein Hund", ["eine Katze", "ein Kater"]])
        len(ds), ds[0], ds[:1].prompts        # 2, ('translate: a dog', 'ein Hund'), ['translate: a dog']
        train, test = ds.split(test_fraction=0.5)
        env = ds.to_env(tokenizer, reward_fn, batch_size=2)
    """

    prompts: list
    references: list | None = None
    name: str = ""

    def __post_init__(self):
        if isinstance(self.prompts, str):
            raise ValueError("prompts must be a list of strings, got a single string; wrap it in a list")
        self.prompts = list(self.prompts)
        for i, p in enumerate(self.prompts):
            if not isinstance(p, str):
                raise ValueError(f"prompts[{i}] must be a string, got {type(p).__name__}: {p!r}")
        if self.references is not None:
            if isinstance(self.references, str):
                raise ValueError("references must be a list (one per prompt), got a single string")
            self.references = [_check_reference(r, f"references[{i}]") for i, r in enumerate(self.references)]
            if len(self.references) != len(self.prompts):
                raise ValueError(
                    f"references must have one entry per prompt: got {len(self.references)} references "
                    f"for {len(self.prompts)} prompts"
                )

    # sequence protocol
    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index):
        """``ds[i]`` -> (prompt, reference or None); ``ds[a:b]`` -> a PromptDataset."""
        if isinstance(index, slice):
            refs = None if self.references is None else self.references[index]
            return PromptDataset(self.prompts[index], refs, self.name)
        return self.prompts[index], (None if self.references is None else self.references[index])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def has_references(self) -> bool:
        return self.references is not None

    def select(self, indices: Iterable[int]) -> "PromptDataset":
        """The examples at ``indices``, in that order."""
        indices = list(indices)
        refs = None if self.references is None else [self.references[i] for i in indices]
        return PromptDataset([self.prompts[i] for i in indices], refs, self.name)

    def take(self, n: int) -> "PromptDataset":
        """The first ``n`` examples (all of them if there are fewer)."""
        if int(n) != n or n < 0:
            raise ValueError(f"take(n) needs an integer n >= 0, got {n!r}")
        return self[: int(n)]

    def shuffle(self, seed: int = 0) -> "PromptDataset":
        """A copy in a random order (reproducible for a fixed seed)."""
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        return self.select(order)

    def split(self, fraction_or_count=None, shuffle: bool = False, seed: int = 0, *, test_fraction: float | None = None,
              test_count: int | None = None):
        """Two datasets, named by the keywords to leave no doubt about their order:

            train, test = ds.split(test_fraction=0.2)      # (the first 80%, the last 20%), as scikit-learn
            train, test = ds.split(test_count=100, shuffle=True, seed=0)

        The positional form ``ds.split(f_or_n)`` returns (the first ``f`` of the examples, or the first
        ``n``, then the rest): ``ds.split(0.8)`` is ``ds.split(test_fraction=0.2)``.
        ``shuffle=True`` shuffles (with ``seed``) before splitting.
        """
        given = [x is not None for x in (fraction_or_count, test_fraction, test_count)]
        if sum(given) != 1:
            raise ValueError("split takes one of: test_fraction=F (0 < F < 1), test_count=N, or the size of the first "
                             f"part positionally; got fraction_or_count={fraction_or_count!r}, "
                             f"test_fraction={test_fraction!r}, test_count={test_count!r}")
        if test_fraction is not None:
            if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
                raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
            fraction_or_count = len(self) - int(round(len(self) * test_fraction))
        elif test_count is not None:
            if isinstance(test_count, bool) or not isinstance(test_count, int) or not 0 <= test_count <= len(self):
                raise ValueError(f"test_count must be an integer in [0, {len(self)}], got {test_count!r}")
            fraction_or_count = len(self) - test_count
        if isinstance(fraction_or_count, float):
            if not 0.0 < fraction_or_count < 1.0:
                raise ValueError(f"split fraction must be in (0, 1), got {fraction_or_count}")
            cut = int(round(len(self) * fraction_or_count))
        elif isinstance(fraction_or_count, int) and 0 <= fraction_or_count <= len(self):
            cut = fraction_or_count
        else:
            raise ValueError(
                f"split needs a fraction in (0, 1) or an integer count in [0, {len(self)}], got {fraction_or_count!r}"
            )
        ds = self.shuffle(seed) if shuffle else self
        return ds[:cut], ds[cut:]

    def first_references(self) -> list:
        """One reference string per example (the first of a multi-reference list), e.g. for MLE targets."""
        if self.references is None:
            raise ValueError(f"dataset {self.name or '(unnamed)'} has no references")
        return [r if isinstance(r, str) else r[0] for r in self.references]

    def map_prompts(self, fn: Callable[[str], str]) -> "PromptDataset":
        """A copy with ``fn`` applied to every prompt (add an instruction, truncate, ...)."""
        return PromptDataset([fn(p) for p in self.prompts], self.references, self.name)

    def truncate_prompts(self, tokenizer, max_tokens: int, keep: str = "start") -> "PromptDataset":
        """A copy whose prompts are at most ``max_tokens`` tokens of ``tokenizer``.

        ``keep="start"`` keeps the first tokens (a source to summarize or translate);
        ``keep="end"`` keeps the last ones (the latest turns of a dialogue context).
        Prompts that already fit are returned unchanged (not re-decoded).
        """
        if int(max_tokens) != max_tokens or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if keep not in ("start", "end"):
            raise ValueError(f"keep must be 'start' or 'end', got {keep!r}")
        out = []
        for p in self.prompts:
            # verbose=False: cutting long prompts is the point, so no "longer than the maximum" warning
            ids = text_to_ids(tokenizer, p, verbose=False)
            if len(ids) <= max_tokens:
                out.append(p)
            else:
                ids = ids[:max_tokens] if keep == "start" else ids[-max_tokens:]
                out.append(tokenizer.decode(ids, skip_special_tokens=True))
        return PromptDataset(out, self.references, self.name)

    def to_env(self, tokenizer, reward_fn, **kwargs):
        """``TextGenerationEnv(self.prompts, tokenizer, reward_fn, references=self.references, **kwargs)``."""
        from tf_rl_text.env import TextGenerationEnv

        return TextGenerationEnv(self.prompts, tokenizer, reward_fn, references=self.references, **kwargs)

    def __repr__(self):
        refs = "no references" if self.references is None else "with references"
        name = f"{self.name!r}, " if self.name else ""
        return f"PromptDataset({name}{len(self)} examples, {refs})"


# --------------------------------------------------------------------------- generic loaders
def _get_field(record: dict, field: str, path: str, lineno: int):
    if field not in record:
        raise DataFormatError(
            f"{path}, line {lineno}: field {field!r} not found; fields present: {sorted(record)} (name the field "
            "that holds the text with prompt_field= / reference_field=)"
        )
    return record[field]


def _text_field(record, field, path, lineno) -> str:
    value = _get_field(record, field, path, lineno)
    if not isinstance(value, str):
        raise DataFormatError(f"{path}, line {lineno}: field {field!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataFormatError(f"{path}, line {lineno}: field {field!r} is empty")
    return value


def load_jsonl(path: str, prompt_field: str = "prompt", reference_field: str | None = None,
               limit: int | None = None, prefix: str = "") -> PromptDataset:
    """One JSON object a line -> PromptDataset.

    Args:
      path: a ``.jsonl`` file (``.jsonl.gz`` too).
      prompt_field: the field holding the prompt / source text (a string).
      reference_field: the field holding the reference: a string or a list of strings; None = no references.
      limit: keep the first ``limit`` examples.
      prefix: prepended to every prompt (an instruction such as ``"summarize: "``).

    Raises DataFormatError naming the file and line for invalid JSON, a blank line, a record
    that is not an object, a missing field (listing the fields present) or an empty value.
    """
    limit = _check_limit(limit)
    prompts, refs = [], []
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if limit is not None and len(prompts) >= limit:
                break
            if not line.strip():
                raise DataFormatError(f"{path}, line {lineno}: empty line; jsonl needs one JSON object per line")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path}, line {lineno}: invalid JSON ({e.msg} at column {e.colno}); "
                                      "each line must be one complete JSON object") from None
            if not isinstance(record, dict):
                raise DataFormatError(f"{path}, line {lineno}: expected a JSON object, got {type(record).__name__}")
            prompts.append(prefix + _text_field(record, prompt_field, path, lineno))
            if reference_field is not None:
                refs.append(_check_reference(_get_field(record, reference_field, path, lineno), f"{path}, line {lineno}"))
    return PromptDataset(prompts, refs if reference_field is not None else None, os.path.basename(path))


def load_csv(path: str, prompt_field="prompt", reference_field=None, delimiter: str | None = None,
             header: bool = True, limit: int | None = None, prefix: str = "") -> PromptDataset:
    """A csv / tsv file -> PromptDataset.

    Args:
      path: the file (``.gz`` too). ``delimiter`` defaults to a tab for ``.tsv`` / ``.tsv.gz``
        and a comma otherwise.
      prompt_field, reference_field: column names (with ``header=True``) or 0-based column
        indices (either way). ``reference_field=None``: no references.
      header: whether the first row names the columns.
      limit: keep the first ``limit`` examples. prefix: prepended to every prompt.

    Raises DataFormatError naming the file, the line and the columns present for a missing
    column, a short row or an empty prompt / reference.
    """
    limit = _check_limit(limit)
    if delimiter is None:
        delimiter = "\t" if str(path).endswith((".tsv", ".tsv.gz")) else ","
    prompts, refs = [], []
    with open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        columns = None
        if header:
            try:
                columns = next(reader)
            except StopIteration:
                raise DataFormatError(f"{path}: the file is empty; expected a header row") from None

        def index_of(field, role):
            if field is None:
                return None
            if isinstance(field, int):
                return field
            if columns is None:
                raise ValueError(f"{role}={field!r} is a column name but header=False; pass a column index instead")
            if field not in columns:
                raise DataFormatError(f"{path}, line 1: column {field!r} not found; columns present: {columns}")
            return columns.index(field)

        p_idx, r_idx = index_of(prompt_field, "prompt_field"), index_of(reference_field, "reference_field")
        for row in reader:
            if limit is not None and len(prompts) >= limit:
                break
            lineno = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                raise DataFormatError(f"{path}, line {lineno}: empty line")
            if columns is not None and len(row) > len(columns):
                raise DataFormatError(
                    f"{path}, line {lineno}: {len(row)} fields but the header names {len(columns)} columns {columns}; "
                    f"quote values that contain the delimiter {delimiter!r}"
                )
            for idx, field in ((p_idx, prompt_field), (r_idx, reference_field)):
                if idx is not None and idx >= len(row):
                    raise DataFormatError(
                        f"{path}, line {lineno}: column {field!r} missing; the row has {len(row)} "
                        f"field(s){f' for columns {columns}' if columns else ''}"
                        f"{'' if delimiter != ',' else ' (is it a .tsv? pass delimiter=chr(9))'}"
                    )
                if idx is not None and not row[idx].strip():
                    raise DataFormatError(f"{path}, line {lineno}: column {field!r} is empty")
            prompts.append(prefix + row[p_idx])
            if r_idx is not None:
                refs.append(row[r_idx])
    return PromptDataset(prompts, refs if r_idx is not None else None, os.path.basename(path))


def load_parallel(source_path: str, target_path: str | None = None, limit: int | None = None,
                  prefix: str = "", strip: bool = True) -> PromptDataset:
    """Aligned text files, one example a line (``train.en`` -> ``train.de``; ``.gz`` too).

    Line i of ``source_path`` is prompt i (with ``prefix`` prepended) and line i of
    ``target_path`` its reference. ``target_path=None`` loads prompts only.

    Raises DataFormatError for an empty line (naming file and line) and for files of different
    lengths (giving both line counts). With ``limit``, only the first ``limit`` lines of each file
    are read, so a length mismatch after them is not seen.
    """
    limit = _check_limit(limit)
    prompts, refs = [], []
    src = open_text(source_path)
    tgt = open_text(target_path) if target_path is not None else None
    try:
        lineno = 0
        while limit is None or lineno < limit:
            s = src.readline()
            t = tgt.readline() if tgt is not None else None
            if not s and (tgt is None or not t):
                break
            lineno += 1
            if tgt is not None and (not s or not t):  # one file ended first: count the other to report both
                if s:
                    n_src, n_tgt, short = lineno + sum(1 for _ in src), lineno - 1, target_path
                else:
                    n_src, n_tgt, short = lineno - 1, lineno + sum(1 for _ in tgt), source_path
                raise DataFormatError(
                    f"parallel files are not aligned: {source_path} has {n_src} lines but {target_path} has "
                    f"{n_tgt}; {short} ends after line {lineno - 1}. Line i of one file must translate line i of "
                    "the other: remove or add the lines that break the alignment"
                )
            for path, text in ((source_path, s), (target_path, t)):
                if text is not None and not text.strip():
                    raise DataFormatError(f"{path}, line {lineno}: empty line; every line must hold one sentence")
            prompts.append(prefix + (s.strip() if strip else s.rstrip("\r\n")))
            if tgt is not None:
                refs.append(t.strip() if strip else t.rstrip("\r\n"))
    finally:
        src.close()
        if tgt is not None:
            tgt.close()
    return PromptDataset(prompts, refs if tgt is not None else None, os.path.basename(source_path))


# --------------------------------------------------------------------------- task helpers
def _resolve(path: str | None, folder: str, filename: str, data_dir: str | None = None) -> str:
    """``path`` may be the file itself, a folder holding ``filename``, or None (``folder`` in the data folder)."""
    if path is None:
        path = os.path.join(shared_data_dir(data_dir), folder)
    return os.path.join(path, filename) if os.path.isdir(path) else path


def load_translation(path: str | None = None, split: str = "val", source_lang: str = "en", target_lang: str = "de",
                     prefix: str = "", limit: int | None = None, data_dir: str | None = None) -> PromptDataset:
    """Multi30k translation pairs: ``SPLIT.SRC.gz`` lines -> prompts, ``SPLIT.TGT.gz`` -> references.

    Args:
      path: the Multi30k folder; None: ``multi30k/`` in ``data_dir``.
      split: ``train`` (29,000 pairs), ``val`` (1,014) or ``test_2016_flickr`` (1,000).
      source_lang, target_lang: ``"en"``/``"de"`` (swap them for de -> en).
      prefix: instruction prepended to each source, e.g. ``"translate english to german: "``.
      limit: the first ``limit`` pairs.
      data_dir: the folder holding ``multi30k/`` (used when ``path`` is None); None: ``$TF_RL_TEXT_DATA``,
        and an error saying what to pass when that is unset too.
    """
    folder = path if path is not None else os.path.join(shared_data_dir(data_dir), "multi30k")
    src = os.path.join(folder, f"{split}.{source_lang}.gz")
    tgt = os.path.join(folder, f"{split}.{target_lang}.gz")
    for p in (src, tgt):
        if not os.path.exists(p):
            raise FileNotFoundError(
                f"Multi30k file not found: {p}; expected {split}.{source_lang}.gz and {split}.{target_lang}.gz in {folder}"
            )
    ds = load_parallel(src, tgt, limit=limit, prefix=prefix)
    ds.name = f"multi30k/{split}.{source_lang}-{target_lang}"
    return ds


def truncate_words(text: str, max_words: int | None) -> str:
    """The first ``max_words`` whitespace-separated words of ``text`` (all of it for None)."""
    if max_words is None:
        return text
    return " ".join(text.split()[: int(max_words)])


def load_summarization(path: str | None = None, split: str = "dev", max_source_words: int | None = None,
                       prefix: str = "", suffix: str = "", limit: int | None = None,
                       data_dir: str | None = None) -> PromptDataset:
    """SciTLDR (abstract -> TL;DR): ``source`` sentences joined with spaces -> prompt,
    ``target`` (list of one-sentence summaries) -> references (always a list; several in dev/test).

    Args:
      path: a SciTLDR jsonl file, or its folder with ``split``; None: ``scitldr/`` in ``data_dir``.
      split: ``train`` / ``dev`` / ``test`` (used when ``path`` is a folder).
      max_source_words: keep only the first N words of the source (tiny models have short contexts).
      prefix, suffix: wrapped around the source, e.g. ``prefix="summarize: "`` or ``suffix=" TL;DR:"``.
      limit: the first ``limit`` abstracts.
      data_dir: the folder holding ``scitldr/`` (used when ``path`` is None); None: ``$TF_RL_TEXT_DATA``.
    """
    limit = _check_limit(limit)
    file = _resolve(path, "scitldr", f"{split}.jsonl", data_dir)
    prompts, refs = [], []
    with open_text(file) as f:
        for lineno, line in enumerate(f, start=1):
            if limit is not None and len(prompts) >= limit:
                break
            if not line.strip():
                raise DataFormatError(f"{file}, line {lineno}: empty line; jsonl needs one JSON object per line")
            record = json.loads(line)
            source = _get_field(record, "source", file, lineno)
            target = _get_field(record, "target", file, lineno)
            if isinstance(source, str):
                source = [source]
            text = " ".join(s.strip() for s in source if s.strip())
            if not text:
                raise DataFormatError(f"{file}, line {lineno}: field 'source' is empty")
            targets = [t.strip() for t in ([target] if isinstance(target, str) else target) if t.strip()]
            if not targets:
                raise DataFormatError(f"{file}, line {lineno}: field 'target' holds no summary")
            prompts.append(prefix + truncate_words(text, max_source_words) + suffix)
            refs.append(targets)
    return PromptDataset(prompts, refs, f"scitldr/{os.path.basename(file)}")


def load_dialogue(path: str | None = None, split: str = "valid_freq", context_turns: int = 2,
                  separator: str = "\n", speaker_labels: bool = False, prefix: str = "", suffix: str = "",
                  limit: int | None = None, data_dir: str | None = None) -> PromptDataset:
    """Topical-Chat conversations -> (context, next turn) pairs.

    For each conversation (in file order) and each turn i >= 1, the prompt is the previous
    ``context_turns`` messages (turns max(0, i-k) .. i-1) joined with ``separator`` and the
    reference is message i.

    Args:
      path: a Topical-Chat json file, or its folder with ``split`` (``valid_freq`` or ``test_freq``);
        None: ``topical_chat/`` in ``data_dir``.
      context_turns: k >= 1, how many previous turns form the context.
      separator: joins the context turns.
      speaker_labels: prefix each context turn with its agent (``"agent_1: ..."``).
      prefix, suffix: wrapped around the joined context (e.g. ``suffix="\\n"`` to cue the reply).
      limit: the first ``limit`` (context, reply) pairs.
      data_dir: the folder holding ``topical_chat/`` (used when ``path`` is None); None: ``$TF_RL_TEXT_DATA``.
    """
    limit = _check_limit(limit)
    if int(context_turns) != context_turns or context_turns < 1:
        raise ValueError(f"context_turns must be an integer >= 1, got {context_turns!r}")
    file = _resolve(path, "topical_chat", f"{split}.json", data_dir)
    with open_text(file) as f:
        conversations = json.load(f)
    if not isinstance(conversations, dict):
        raise DataFormatError(f"{file}: expected a JSON object of conversation id -> conversation, "
                              f"got {type(conversations).__name__}")
    prompts, refs = [], []
    for conv_id, conv in conversations.items():
        if limit is not None and len(prompts) >= limit:
            break
        if not isinstance(conv, dict) or "content" not in conv:
            present = sorted(conv) if isinstance(conv, dict) else type(conv).__name__
            raise DataFormatError(f"{file}, conversation {conv_id!r}: field 'content' not found; fields present: {present}")
        turns = []
        for j, turn in enumerate(conv["content"]):
            if not isinstance(turn, dict) or "message" not in turn:
                present = sorted(turn) if isinstance(turn, dict) else type(turn).__name__
                raise DataFormatError(
                    f"{file}, conversation {conv_id!r}, turn {j}: field 'message' not found; fields present: {present}"
                )
            turns.append((str(turn.get("agent", "")), turn["message"].strip()))
        for i in range(1, len(turns)):
            if limit is not None and len(prompts) >= limit:
                break
            if not turns[i][1]:
                continue  # an empty reply is no target
            window = [t for t in turns[max(0, i - context_turns): i] if t[1]]
            if not window:
                continue
            lines = [f"{a}: {m}" if speaker_labels and a else m for a, m in window]
            prompts.append(prefix + separator.join(lines) + suffix)
            refs.append(turns[i][1])
    return PromptDataset(prompts, refs, f"topical_chat/{os.path.basename(file)}")


__all__ = [
    "DATA_ENV_VAR",
    "DataFormatError",
    "PromptDataset",
    "load_csv",
    "load_dialogue",
    "load_jsonl",
    "load_parallel",
    "load_summarization",
    "load_translation",
    "open_text",
    "shared_data_dir",
    "task_data_path",
    "TASK_FILES",
    "TASKS_DIR",
    "truncate_words",
]
