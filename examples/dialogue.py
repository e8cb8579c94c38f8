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

It runs configs/dialogue.yaml, the same run as `tf-rl-text train configs/dialogue.yaml` (tf_rl_text.workflow):
every flag is a field of that config; with --data the config's real_data sizes apply.
"""
import os

from tf_rl_text.scripts import task_script

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "dialogue.yaml")

if __name__ == "__main__":
    task_script(CONFIG, __doc__.split("\n\n")[0])
