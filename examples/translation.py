#!/usr/bin/env python
"""English -> German translation: a small encoder-decoder, warm-started by maximum likelihood,
then fine-tuned with self-critical REINFORCE on sentence BLEU; exported and loaded back.

    python examples/translation.py                      # embedded 150 pairs, offline (a few minutes)
    python examples/translation.py --quick              # smoke run (about 25 s on 2 idle CPU cores)
    python examples/translation.py --data ../shared/data/multi30k   # Multi30k: train / val / test_2016_flickr

The metric is corpus BLEU (0..1) of greedy translations of the held-out set; the reward is the
smoothed sentence BLEU of each sampled translation, minus that of the greedy one (SCST).
"""
from __future__ import annotations

import os

from _task_common import Sizes, Task, run, split_held_out

from tf_rl_text import data
from tf_rl_text.defaults import task_data_path
from tf_rl_text.rewards import BleuReward


def load_default(args):
    ds = data.load_jsonl(task_data_path("translation"), "source", "target")
    train, held_out = split_held_out(ds, 0.8, seed=0)
    return train, held_out, held_out, f"embedded {len(ds)} English->German pairs ({task_data_path('translation')})"


def load_data(path, args):
    if os.path.isdir(path):  # Multi30k layout: SPLIT.en.gz / SPLIT.de.gz
        train = data.load_translation(path, split="train")
        dev = data.load_translation(path, split="val")
        test = data.load_translation(path, split="test_2016_flickr")
        return train, dev, test, f"Multi30k en->de in {path}: train, val (checkpoint), test_2016_flickr (report)"
    ds = data.load_jsonl(path, "source", "target")  # a jsonl of {"source", "target"}
    train, held_out = split_held_out(ds, 0.8, seed=0)
    return train, held_out, held_out, f"{path}: {len(ds)} pairs, 80/20 split"


TASK = Task(
    name="translation",
    description=__doc__.split("\n\n")[0],
    metric="bleu",
    eval_metrics=["bleu", "sentence_bleu", "length", "perplexity"],
    reward_fn=BleuReward(),
    load_default=load_default,
    load_data=load_data,
    sizes=Sizes(vocab_size=600, d_model=64, layers=2, warm_start_steps=500, warm_start_lr=3e-3, rl_steps=40,
                learning_rate=5e-5, max_source_tokens=32, max_new_tokens=24),
    quick=Sizes(vocab_size=400, d_model=32, layers=1, warm_start_steps=120, warm_start_lr=5e-3, rl_steps=4,
                learning_rate=2e-5, max_source_tokens=24, max_new_tokens=16, eval_limit=16),
    real=Sizes(vocab_size=4000, d_model=128, layers=2, warm_start_steps=1200, warm_start_lr=2e-3, rl_steps=60,
               learning_rate=2e-5, batch_size=32, max_source_tokens=40, max_new_tokens=40, eval_every=30,
               dev_limit=200, eval_limit=None),
    data_help="a Multi30k folder (train/val/test_2016_flickr .en.gz/.de.gz, e.g. ../shared/data/multi30k) or a "
              "jsonl file of {\"source\": English, \"target\": German}",
    prefix_help="'translate English to German: '",
)

if __name__ == "__main__":
    run(TASK)
