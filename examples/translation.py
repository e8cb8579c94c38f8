#!/usr/bin/env python
"""English -> German translation: a small encoder-decoder, warm-started by maximum likelihood,
then fine-tuned with self-critical REINFORCE on sentence BLEU; exported and loaded back.

    python examples/translation.py                      # embedded 150 pairs, offline (a few minutes)
    python examples/translation.py --quick              # smoke run (about 25 s on 2 idle CPU cores)
    python examples/translation.py --data ../shared/data/multi30k   # Multi30k: train / val / test_2016_flickr

The metric is corpus BLEU (0..1) of greedy translations of the held-out set; the reward is the
smoothed sentence BLEU of each sampled translation, minus that of the greedy one (SCST).

It runs configs/translation.yaml, the same run as `tf-rl-text train configs/translation.yaml` (tf_rl_text.workflow):
every flag is a field of that config; with --data the config's real_data sizes apply.
"""
import os

from tf_rl_text.scripts import task_script

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "translation.yaml")

if __name__ == "__main__":
    task_script(CONFIG, __doc__.split("\n\n")[0])
