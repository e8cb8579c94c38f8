#!/usr/bin/env python
"""Summarization (text -> one-sentence summary): a small encoder-decoder, warm-started by maximum
likelihood, then fine-tuned with self-critical REINFORCE on ROUGE-L; exported and loaded back.

    python examples/summarization.py                    # embedded 80 texts, offline (a few minutes)
    python examples/summarization.py --quick            # smoke run (about 25 s on 2 idle CPU cores)
    python examples/summarization.py --data ../shared/data/scitldr   # SciTLDR: train / dev / test

The metric is ROUGE-L F1 (0..1, best over a text's references) of greedy summaries of the
held-out set; the reward is the ROUGE-L F1 of each sampled summary, minus that of the greedy one (SCST).
"""
from __future__ import annotations

import os

from _task_common import Sizes, Task, run, split_held_out

from tf_rl_text import data
from tf_rl_text.defaults import task_data_path
from tf_rl_text.rewards import RougeReward

MAX_SOURCE_WORDS = 120  # SciTLDR abstracts are ~150-250 words; a small model reads the first 120


def load_default(args):
    ds = data.load_summarization(task_data_path("summarization"))
    train, held_out = split_held_out(ds, 0.8, seed=0)
    return train, held_out, held_out, f"embedded {len(ds)} text/summary pairs ({task_data_path('summarization')})"


def load_data(path, args):
    if os.path.isdir(path):  # SciTLDR layout: train.jsonl / dev.jsonl / test.jsonl
        split = {s: data.load_summarization(path, split=s, max_source_words=MAX_SOURCE_WORDS)
                 for s in ("train", "dev", "test")}
        return (split["train"], split["dev"], split["test"],
                f"SciTLDR in {path}: train, dev (checkpoint), test (report; all references); "
                f"sources cut to {MAX_SOURCE_WORDS} words")
    ds = data.load_summarization(path, max_source_words=MAX_SOURCE_WORDS)  # {"source", "target"} jsonl
    train, held_out = split_held_out(ds, 0.8, seed=0)
    return train, held_out, held_out, f"{path}: {len(ds)} pairs, 80/20 split"


TASK = Task(
    name="summarization",
    description=__doc__.split("\n\n")[0],
    metric="rougeL",
    eval_metrics=["rouge", "length", "perplexity"],
    reward_fn=RougeReward("rougeL"),
    load_default=load_default,
    load_data=load_data,
    sizes=Sizes(vocab_size=600, d_model=64, layers=2, warm_start_steps=400, warm_start_lr=3e-3, rl_steps=40,
                learning_rate=5e-5, max_source_tokens=64, max_new_tokens=24),
    quick=Sizes(vocab_size=400, d_model=32, layers=1, warm_start_steps=100, warm_start_lr=5e-3, rl_steps=4,
                learning_rate=2e-5, max_source_tokens=48, max_new_tokens=20, eval_limit=16),
    real=Sizes(vocab_size=4000, d_model=128, layers=2, warm_start_steps=800, warm_start_lr=2e-3, rl_steps=40,
               learning_rate=2e-5, batch_size=16, max_source_tokens=128, max_new_tokens=40, eval_every=20,
               dev_limit=100, eval_limit=None),
    data_help="a SciTLDR folder (train/dev/test .jsonl with 'source' sentences and 'target' summaries, e.g. "
              "../shared/data/scitldr) or one such jsonl file (source/target may be strings)",
    prefix_help="'summarize: '",
)

if __name__ == "__main__":
    run(TASK)
