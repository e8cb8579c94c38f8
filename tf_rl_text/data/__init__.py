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

:data:`TASKS` is the one list of tasks (:class:`Task`: its data, splits, default reward and metrics);
a config's ``data.source`` names one, and :func:`register_task` adds a user's own.

Errors name the file, the 1-based line number, the field and what was present.

Example::

    from tf_rl_text import data
    ds = data.load_translation(split="val", limit=64, prefix="translate english to german: ",
                               data_dir="../shared/data")   # or set TF_RL_TEXT_DATA=../shared/data
    train, test = ds.split(test_fraction=0.1)
    env = train.to_env(tokenizer, reward_fn, batch_size=8, max_new_tokens=24)
"""
from tf_rl_text.data.files import DATA_ENV_VAR, DataFormatError, open_text, shared_data_dir
from tf_rl_text.data.dataset import PromptDataset
from tf_rl_text.data.loaders import load_csv, load_jsonl, load_parallel
from tf_rl_text.data.tasks import (TASKS, TASKS_DIR, Task, get_task, load_dialogue, load_summarization,
                                   load_translation, register_task, task_data_path, task_splits, truncate_words)

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
    "task_splits",
    "Task",
    "TASKS",
    "TASKS_DIR",
    "get_task",
    "register_task",
    "truncate_words",
]
