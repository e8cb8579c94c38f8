#!/usr/bin/env python
"""Summarization (text -> one-sentence summary): a small encoder-decoder, warm-started by maximum
likelihood, then fine-tuned with self-critical REINFORCE on ROUGE-L; exported and loaded back.

    python examples/summarization.py                    # embedded 80 texts, offline (a few minutes)
    python examples/summarization.py --quick            # smoke run (about 25 s on 2 idle CPU cores)
    python examples/summarization.py --data ../shared/data/scitldr   # SciTLDR: train / dev / test

The metric is ROUGE-L F1 (0..1, best over a text's references) of greedy summaries of the
held-out set; the reward is the ROUGE-L F1 of each sampled summary, minus that of the greedy one (SCST).

It runs configs/summarization.yaml, the same run as `tf-rl-text train configs/summarization.yaml` (tf_rl_text.workflow):
every flag is a field of that config; with --data the config's real_data sizes apply.
"""
import os

from tf_rl_text.scripts import task_script

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "summarization.yaml")

if __name__ == "__main__":
    task_script(CONFIG, __doc__.split("\n\n")[0])
