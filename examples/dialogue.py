#!/usr/bin/env python
"""Dialogue (the last turns -> the next turn): a small encoder-decoder, warm-started by maximum
likelihood, then fine-tuned with self-critical REINFORCE on sentence BLEU; exported and loaded back.

    python examples/dialogue.py                         # embedded 40 conversations, offline (a few minutes)
    python examples/dialogue.py --quick                 # smoke run (about 25 s on 2 idle CPU cores)
    python examples/dialogue.py --data ../shared/data/topical_chat   # Topical-Chat: valid_freq / test_freq

Why an encoder-decoder here too: a reply is conditional generation from a context, like a
translation; the encoder reads the whole context in both directions, and the context does not
eat the decoder's window. A causal LM works as well: pass one with --model.

The metric is corpus BLEU (0..1) of greedy replies on held-out conversations; the reward is the
smoothed sentence BLEU of each sampled reply, minus that of the greedy one (SCST).
"""
from __future__ import annotations

import json
import os

from _task_common import Sizes, Task, run

from tf_rl_text import PromptDataset, data
from tf_rl_text.defaults import task_data_path

from tf_rl_text.rewards import BleuReward

CONTEXT_TURNS = 2
SEPARATOR = "\n"


def load_conversations(path):
    """A jsonl of {"turns": [message, ...]} -> list of conversations (lists of strings)."""
    conversations = []
    with data.open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                raise data.DataFormatError(f"{path}, line {lineno}: empty line; jsonl needs one JSON object per line")
            record = json.loads(line)
            turns = record.get("turns") if isinstance(record, dict) else None
            if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, str) and t.strip() for t in turns):
                raise data.DataFormatError(f"{path}, line {lineno}: expected {{\"turns\": [at least 2 non-empty strings]}}")
            conversations.append([t.strip() for t in turns])
    return conversations


def to_pairs(conversations, name):
    """(previous CONTEXT_TURNS turns joined by a newline, next turn) for every turn after the first."""
    prompts, refs = [], []
    for turns in conversations:
        for i in range(1, len(turns)):
            prompts.append(SEPARATOR.join(turns[max(0, i - CONTEXT_TURNS): i]))
            refs.append(turns[i])
    return PromptDataset(prompts, refs, name)


def split_conversations(path):
    """80/20 split by conversation (no conversation is in both), then (context, reply) pairs."""
    import random

    conversations = load_conversations(path)
    random.Random(0).shuffle(conversations)
    cut = int(round(0.8 * len(conversations)))
    held_out = to_pairs(conversations[cut:], "held-out")
    return to_pairs(conversations[:cut], "train"), held_out, held_out, len(conversations)


def load_default(args):
    train, dev, test, n = split_conversations(task_data_path("dialogue"))
    return train, dev, test, f"embedded {n} conversations ({task_data_path('dialogue')}), split by conversation"


def load_data(path, args):
    if os.path.isdir(path):  # Topical-Chat layout: valid_freq.json / test_freq.json
        pairs = data.load_dialogue(path, split="valid_freq", context_turns=CONTEXT_TURNS, separator=SEPARATOR)
        train, dev = pairs[:-300], pairs[-300:]
        test = data.load_dialogue(path, split="test_freq", context_turns=CONTEXT_TURNS, separator=SEPARATOR)
        return train, dev, test, (f"Topical-Chat in {path}: valid_freq (train: all but its last 300 pairs; the "
                                  f"first --dev-limit of those 300 choose the checkpoint), test_freq (report)")
    if path.endswith(".json"):  # one Topical-Chat file
        pairs = data.load_dialogue(path, context_turns=CONTEXT_TURNS, separator=SEPARATOR)
        train, held_out = pairs.split(0.8)
        return train, held_out, held_out, f"{path}: {len(pairs)} pairs, first 80% train"
    train, dev, test, n = split_conversations(path)  # a jsonl of {"turns": [...]}
    return train, dev, test, f"{path}: {n} conversations, 80/20 split by conversation"


TASK = Task(
    name="dialogue",
    description=__doc__.split("\n\n")[0],
    metric="bleu",
    eval_metrics=["bleu", "sentence_bleu", "distinct", "length", "perplexity"],
    reward_fn=BleuReward(),
    load_default=load_default,
    load_data=load_data,
    sizes=Sizes(vocab_size=600, d_model=64, layers=2, warm_start_steps=500, warm_start_lr=3e-3, rl_steps=40,
                learning_rate=5e-5, max_source_tokens=48, max_new_tokens=24),
    quick=Sizes(vocab_size=400, d_model=32, layers=1, warm_start_steps=120, warm_start_lr=5e-3, rl_steps=4,
                learning_rate=2e-5, max_source_tokens=40, max_new_tokens=20, eval_limit=16),
    real=Sizes(vocab_size=4000, d_model=128, layers=2, warm_start_steps=1500, warm_start_lr=2e-3, rl_steps=90,
               learning_rate=2e-5, batch_size=32, max_source_tokens=96, max_new_tokens=40, eval_every=30,
               dev_limit=200, eval_limit=500),
    data_help="a Topical-Chat folder (valid_freq.json, test_freq.json, e.g. ../shared/data/topical_chat), one "
              "Topical-Chat .json file, or a jsonl of {\"turns\": [message, ...]}",
    prefix_help="'reply: '",
)

if __name__ == "__main__":
    run(TASK)
