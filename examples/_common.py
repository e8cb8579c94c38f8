"""What the four sentiment examples (train_text_rl, train_ppo, train_q_learning, positive_reviews)
share: the agent they start from, the corpus warm start, the before/after reward and the metrics
file. The three task examples share ``_task_common.py``. Nothing here is imported by the package.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os

import numpy as np

from tf_rl_text import RLAgent, default_model, default_tokenizer, load_corpus, warm_start, with_precision


# --------------------------------------------------------------------------- flags
def _number(name, cast, kind, low, low_ok, high=None):
    """An argparse ``type`` that names the flag, the bad value and the allowed range."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind}, got {text!r}") from None
        if not (value >= low if low_ok else value > low) or (high is not None and value > high):
            bound = f">= {low}" if low_ok else f"> {low}"
            raise argparse.ArgumentTypeError(f"{name} must be {bound}" + (f" and <= {high}" if high is not None else "")
                                             + f", got {value}")
        return value
    return parse


def positive_int(name):
    return _number(name, int, "an integer", 1, True)


def non_negative_int(name):
    return _number(name, int, "an integer", 0, True)


def positive_float(name):
    return _number(name, float, "a number", 0, False)


def non_negative_float(name):
    return _number(name, float, "a number", 0, True)


def seed_int(name="--seed"):
    return _number(name, int, "an integer", 0, True, 2**32 - 1)


def check_model_folder(parser, path, flag="--model"):
    """``parser.error`` unless ``path`` is a folder written by ``save_pretrained`` (has a config.json)."""
    if path is None:
        return
    if not os.path.isdir(path):
        parser.error(f"{flag} {path!r} is not a folder; pass a local folder written by save_pretrained")
    if not os.path.isfile(os.path.join(path, "config.json")):
        parser.error(f"{flag} {path!r} has no config.json, so it is not a saved model; pass a local folder "
                     "written by save_pretrained")


@contextlib.contextmanager
def user_errors(what):
    """Turn a bad-input error (bad data file, a setting that does not fit the model) into a one-line exit."""
    try:
        yield
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {what}: {e}") from None


def check_fits(tokenizer, prompts, max_new_tokens):
    """Exit before any training if a prompt + ``--max-new-tokens`` does not fit the model's context
    (the check the example's TextGenerationEnv would make later)."""
    from tf_rl_text import TextGenerationEnv

    with user_errors(f"--max-new-tokens {max_new_tokens}"):
        TextGenerationEnv(prompts, tokenizer, reward_fn=lambda c, p, r: [0.0] * len(c), batch_size=1,
                          max_new_tokens=max_new_tokens)


def add_precision_flag(parser, note=""):
    """``--precision``: float32 (default) or mixed_bfloat16 (every example takes it)."""
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                        help="mixed_bfloat16: bfloat16 math over float32 weights (faster matmuls on CPUs with "
                             "AVX512-BF16/AMX); default float32" + note)


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
