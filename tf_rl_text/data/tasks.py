"""Task data: the real data sets' loaders (Multi30k, SciTLDR, Topical-Chat), the small task data
shipped in the package, and each task's train / dev / test split."""
from __future__ import annotations

import dataclasses
import json
import os
import random
from typing import Callable

from tf_rl_text.data.dataset import PromptDataset
from tf_rl_text.data.files import DataFormatError, check_limit, jsonl_records, open_text, shared_data_dir
from tf_rl_text.data.loaders import get_field, load_jsonl, load_parallel

TASKS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "default_data", "tasks")
"""The small task data sets shipped in the package (written by the repository's tools/make_tasks.py)."""


def task_data_path(task: str) -> str:
    """Path of the embedded jsonl of ``task`` ("translation", "summarization" or "dialogue": a task with
    embedded data)."""
    shipped = sorted(name for name, t in TASKS.items() if t.embedded)
    if task not in shipped:
        raise ValueError(f"task must be one of {shipped} (the tasks with embedded data), got {task!r}")
    return os.path.join(TASKS_DIR, TASKS[task].embedded)


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
    limit = check_limit(limit)
    file = _resolve(path, "scitldr", f"{split}.jsonl", data_dir)
    prompts, refs = [], []
    for lineno, record in jsonl_records(file):
        if limit is not None and len(prompts) >= limit:
            break
        source = get_field(record, "source", file, lineno)
        target = get_field(record, "target", file, lineno)
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
    limit = check_limit(limit)
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
        for prompt, reply in context_pairs(turns, context_turns, separator, speaker_labels):
            if limit is not None and len(prompts) >= limit:
                break
            prompts.append(prefix + prompt + suffix)
            refs.append(reply)
    return PromptDataset(prompts, refs, f"topical_chat/{os.path.basename(file)}")


def context_pairs(turns, context_turns: int = 2, separator: str = "\n", speaker_labels: bool = False):
    """(context, reply) of every turn i >= 1 of one conversation: the context is the previous
    ``context_turns`` non-empty messages joined with ``separator``. ``turns``: (speaker, message) pairs
    or plain messages; an empty reply, or one with no context, gives no pair."""
    turns = [t if isinstance(t, tuple) else ("", t) for t in turns]
    for i in range(1, len(turns)):
        if not turns[i][1]:
            continue  # an empty reply is no target
        window = [t for t in turns[max(0, i - context_turns): i] if t[1]]
        if window:
            yield separator.join(f"{a}: {m}" if speaker_labels and a else m for a, m in window), turns[i][1]


# --------------------------------------------------------------------------- each task's splits
CONTEXT_TURNS = 2  # dialogue: the previous two turns are the prompt
SUMMARY_SOURCE_WORDS = 120  # SciTLDR abstracts are ~150-250 words; a small model reads the first 120
DIALOGUE_DEV_PAIRS = 300  # Topical-Chat: the last pairs of valid_freq are the dev set


def _conversation_pairs(conversations, name):
    pairs = [pair for turns in conversations for pair in context_pairs(turns, CONTEXT_TURNS)]
    return PromptDataset([p for p, _ in pairs], [r for _, r in pairs], name)


def split_conversations(path):
    """A jsonl of {"turns": [...]} split 80/20 by conversation (none in both), as (context, reply) pairs:
    (train, held-out, held-out, note)."""
    conversations = []
    for lineno, record in jsonl_records(path):
        turns = record.get("turns")
        if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, str) and t.strip() for t in turns):
            raise DataFormatError(f"{path}, line {lineno}: expected {{\"turns\": [at least 2 non-empty strings]}}")
        conversations.append([t.strip() for t in turns])
    random.Random(0).shuffle(conversations)
    cut = int(round(0.8 * len(conversations)))
    held_out = _conversation_pairs(conversations[cut:], "held-out")
    return _conversation_pairs(conversations[:cut], "train"), held_out, held_out, (
        f"{len(conversations)} conversations, 80/20 split by conversation")


def _embedded_prompts(data_dir, eval_fraction):
    from tf_rl_text.defaults import load_prompts

    ds = PromptDataset(load_prompts(), None, "embedded prompts")
    return ds, ds, ds, f"the {len(ds)} embedded prompts"


def _translation_splits(data_dir, eval_fraction):
    path = data_dir or task_data_path("translation")
    if os.path.isdir(path):  # Multi30k: train / val / test_2016_flickr
        train, dev, test = (load_translation(path, split=s) for s in ("train", "val", "test_2016_flickr"))
        return train, dev, test, f"Multi30k en->de in {path}: train, val (checkpoint), test_2016_flickr (report)"
    return _one_file_split(load_jsonl(path, "source", "target"), data_dir, path, eval_fraction)


def _summarization_splits(data_dir, eval_fraction):
    path = data_dir or task_data_path("summarization")
    if os.path.isdir(path):  # SciTLDR: train / dev / test
        train, dev, test = (load_summarization(path, split=s, max_source_words=SUMMARY_SOURCE_WORDS)
                            for s in ("train", "dev", "test"))
        return train, dev, test, (f"SciTLDR in {path}: train, dev (checkpoint), test (report; all references); "
                                  f"sources cut to {SUMMARY_SOURCE_WORDS} words")
    ds = load_summarization(path, max_source_words=None if data_dir is None else SUMMARY_SOURCE_WORDS)
    return _one_file_split(ds, data_dir, path, eval_fraction)


def _one_file_split(ds, data_dir, path, eval_fraction):
    cut = 1.0 - eval_fraction
    train, held_out = ds.split(cut, shuffle=True, seed=0)
    where = f"embedded ({path})" if data_dir is None else path
    return train, held_out, held_out, f"{where}: {len(ds)} pairs, {cut:.0%}/{1 - cut:.0%} split"


def _dialogue_splits(data_dir, eval_fraction):
    path, cut = data_dir or task_data_path("dialogue"), 1.0 - eval_fraction
    if os.path.isdir(path):  # Topical-Chat: valid_freq.json / test_freq.json
        pairs = load_dialogue(path, split="valid_freq", context_turns=CONTEXT_TURNS)
        test = load_dialogue(path, split="test_freq", context_turns=CONTEXT_TURNS)
        return (pairs[:-DIALOGUE_DEV_PAIRS], pairs[-DIALOGUE_DEV_PAIRS:], test,
                f"Topical-Chat in {path}: valid_freq (train: all but its last {DIALOGUE_DEV_PAIRS} pairs, which "
                "choose the checkpoint), test_freq (report)")
    if path.endswith(".json"):  # one Topical-Chat file
        pairs = load_dialogue(path, context_turns=CONTEXT_TURNS)
        train, held_out = pairs.split(cut)
        return train, held_out, held_out, f"{path}: {len(pairs)} pairs, first {cut:.0%} train"
    train, dev, test, note = split_conversations(path)
    where = f"embedded ({path})" if data_dir is None else path
    return train, dev, test, f"{where}: {note}"


# --------------------------------------------------------------------------- the task registry
@dataclasses.dataclass(frozen=True)
class Task:
    """A task, named once: where its data comes from, how it splits, what rewards and measures it.

    name: what a config's ``data.source`` says. splits: ``splits(data_dir, eval_fraction) -> (train, dev, test,
    note)`` (PromptDatasets; dev is test when the data has no dev split). embedded: the small data shipped in
    the package (a file of ``default_data/tasks/``, or None). real_data: the real data set and its folder in the
    shared data folder (``$TF_RL_TEXT_DATA/FOLDER``). reward: the reward section a config without one gets.
    metrics: the ``run.eval_metrics`` a config without them gets. source_text: its prompts are source texts
    (translated, summarised, answered): the embedded GPT-2 knows only the embedded corpus, so a config needs a
    seq2seq model or a model.path, and prompts are cut to ``data.max_source_tokens``."""

    name: str
    summary: str
    splits: Callable
    embedded: str | None = None
    real_data: str | None = None
    reward: dict = dataclasses.field(default_factory=lambda: {"name": "sentiment"})
    metrics: str = "reward"
    source_text: bool = False


TASKS: dict = {}
"""The one list of tasks: name -> :class:`Task`. Configs (``data.source`` and its defaults), the run builder
(:func:`task_splits`), ``tools/make_tasks.py`` and the docs' task table read it."""


def register_task(task: Task) -> Task:
    """Add ``task`` (a :class:`Task`) under ``task.name``: configs with ``data.source: NAME`` then use it."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task needs a tf_rl_text.data.tasks.Task, got {type(task).__name__}")
    if not task.name.isidentifier() or task.name == "file":
        raise ValueError(f"a task name must be a Python identifier other than 'file' (configs write it), got "
                         f"{task.name!r}")
    if not callable(task.splits):
        raise ValueError(f"task {task.name!r}: splits must be a function (data_dir, eval_fraction) -> (train, dev, "
                         f"test, note), got {task.splits!r}")
    TASKS[task.name] = task
    return task


for _task in (
    Task("prompts", "the embedded prompts (upbeat review-like sentences to continue); no references",
         _embedded_prompts),
    Task("translation", "English -> German sentence pairs", _translation_splits, embedded="translation.jsonl",
         real_data="Multi30k (multi30k/)", reward={"name": "bleu"}, metrics="reward,bleu,sacrebleu,length,perplexity",
         source_text=True),
    Task("summarization", "a text -> a one-sentence summary", _summarization_splits, embedded="summarization.jsonl",
         real_data="SciTLDR (scitldr/)", reward={"name": "rouge", "rouge_type": "rougeL"},
         metrics="reward,rouge,length,perplexity", source_text=True),
    Task("dialogue", "the previous two turns of a conversation -> the next turn", _dialogue_splits,
         embedded="dialogue.jsonl", real_data="Topical-Chat (topical_chat/)", reward={"name": "bleu"},
         metrics="reward,bleu,sacrebleu,distinct,length,perplexity", source_text=True),
):
    register_task(_task)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name]


def task_splits(source: str, data_dir: str | None = None, eval_fraction: float = 0.1):
    """(train, dev, test, note) of a task (a name of :data:`TASKS`: "translation", "summarization", "dialogue",
    "prompts"...): the real data set's own splits when ``data_dir`` is its folder, else a split of one file
    (``data_dir`` a file, or None: the task data shipped in the package); dev is test when the data has no dev
    split."""
    return get_task(source).splits(data_dir, eval_fraction)


__all__ = ["Task", "TASKS", "register_task", "get_task", "TASKS_DIR", "task_data_path", "load_translation", "truncate_words", "load_summarization",
           "load_dialogue", "context_pairs", "split_conversations", "task_splits", "CONTEXT_TURNS",
           "SUMMARY_SOURCE_WORDS", "DIALOGUE_DEV_PAIRS"]
