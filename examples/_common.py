"""What the four sentiment examples (train_text_rl, train_ppo, train_q_learning, positive_reviews)
share: the agent they start from, the corpus warm start, the before/after reward and the metrics
file. The three task examples share ``_task_common.py``. Nothing here is imported by the package.
"""
from __future__ import annotations

import json
import os

import numpy as np

from tf_rl_text import RLAgent, default_model, default_tokenizer, load_corpus, warm_start, with_precision


def add_precision_flag(parser, note=""):
    """``--precision``: float32 (default) or mixed_bfloat16 (every example takes it)."""
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                        help="mixed_bfloat16: bfloat16 math over float32 weights (faster matmuls on CPUs with "
                             "AVX512-BF16/AMX)" + note)


def in_precision(model, precision):
    """``model`` itself for float32, else a copy with the same weights computing in ``precision``."""
    return model if precision == "float32" else with_precision(model, precision)


def make_agent(model_path, seed, precision="float32"):
    """An RLAgent over a local pretrained causal LM folder (``save_pretrained``) or, with none, the embedded default.

    ``precision="mixed_bfloat16"``: the model computes in bfloat16 over float32 weights (``with_precision``)."""
    if model_path:
        from transformers import AutoTokenizer, TFAutoModelForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = TFAutoModelForCausalLM.from_pretrained(model_path)
    else:
        tokenizer = default_tokenizer()
        model = default_model(tokenizer, seed=seed)
    return RLAgent(in_precision(model, precision), tokenizer, seed=seed)


def warm_start_on_corpus(agent, steps, seed, progress):
    """``steps`` maximum-likelihood steps on the embedded corpus (none when 0), with the loss printed."""
    if steps:
        losses = warm_start(agent, load_corpus(), steps=steps, seed=seed, progress=progress)
        print(f"warm start: token NLL {losses[0]:.2f} -> {np.mean(losses[-20:]):.2f} over {len(losses)} steps")


def mean_reward(trainer, prompts, seed):
    """Mean reward of 4 sampled completions of every prompt (fixed seed: comparable before/after)."""
    rollout = trainer.env.rollout(trainer.agent, num_samples=4, seed=seed, prompts=prompts)
    return float(np.mean(rollout.rewards))


def write_metrics(metrics, path):
    """Write ``metrics`` as JSON to ``path`` (its folder made as needed); nothing when path is empty."""
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(metrics, f, indent=1)
