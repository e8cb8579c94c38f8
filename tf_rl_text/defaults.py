"""The embedded default: a small corpus, prompts and tokenizer that ship in the package, and a
small GPT-2 built from them, so that examples and tests run offline with nothing to download.

The corpus (``tf_rl_text/default_data/``) was written for this project: short everyday
review-like sentences, about half upbeat and half gloomy, which makes "steer the model toward
upbeat text" a task the reward can show.
"""
from __future__ import annotations

import os

from tf_rl_text._compat import tf

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_data")


def _lines(name):
    with open(os.path.join(DATA_DIR, name), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def load_corpus():
    """The embedded training sentences (list of str)."""
    return _lines("corpus.txt")


def load_prompts():
    """The embedded prompts: short sentence beginnings (list of str)."""
    return _lines("prompts.txt")


def load_lexicon():
    """(positive_words, negative_words) of the embedded corpus, as sets."""
    return set(_lines("positive_words.txt")), set(_lines("negative_words.txt"))


def default_tokenizer():
    """The embedded byte-level BPE tokenizer (vocabulary 512, EOS ``<|endoftext|>``, pad ``<pad>``)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(DATA_DIR, "tokenizer.json"),
        eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<pad>",
        model_max_length=64,
    )


def default_model(tokenizer=None, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_positions: int = 64,
                  seed: int = 0):
    """A small randomly initialised ``TFGPT2LMHeadModel`` sized to the tokenizer (no dropout)."""
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tokenizer = tokenizer or default_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    tf.random.set_seed(seed)
    model = TFGPT2LMHeadModel(config)
    model(model.dummy_inputs, training=False)
    return model


__all__ = ["default_model", "default_tokenizer", "load_corpus", "load_prompts", "load_lexicon", "DATA_DIR"]
