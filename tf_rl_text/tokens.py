"""Text <-> token ids, and padding: the bottom layer every module that encodes or pads imports.

The library's conventions, written once:

* Texts are encoded without special tokens (:func:`text_to_ids`): prompts are continued, completions
  end with EOS only where the code adds it.
* Batches of token lists are padded into int32 ``(ids, mask)`` arrays (:func:`pad_token_ids`): on the
  left for causal-LM prompts (the next token always follows the last column), on the right for
  encoder sources and for completions; :func:`encode_texts` pads MLE targets (texts + EOS) to a width.
* Positions skip left padding (:func:`position_ids_from_mask`), so a row's first real token is at position 0.
* A tokenizer without a pad token pads with EOS (:func:`ensure_pad_token`).
* Completions decode to text through their mask, special tokens dropped (:func:`ids_to_texts`).
* ``RLAgent(model)`` without a tokenizer loads the one saved beside the model (:func:`resolve_tokenizer`).

It imports nothing else from the package but TensorFlow (through ``_compat``).
"""
from __future__ import annotations

import numpy as np

from tf_rl_text._compat import tf


def text_to_ids(tokenizer, text: str, verbose: bool = True) -> list:
    """The token ids of ``text``, no special tokens added.

    ``verbose=False``: no Hugging Face warning that the text is longer than the model's maximum
    (for callers that cut it themselves).
    """
    if verbose:
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


def texts_to_ids(tokenizer, texts, verbose: bool = True) -> list:
    """:func:`text_to_ids` of each text: a list of token-id lists."""
    return [text_to_ids(tokenizer, t, verbose) for t in texts]


def pad_token_ids(token_lists, pad_token_id, side="left", min_length=None):
    """Pad lists of token ids into (ids, mask) int32 arrays of width max(longest, min_length, 1).

    ``side="left"`` for causal LMs (the next token always follows the last column),
    ``"right"`` for encoder sources.
    """
    length = max([len(t) for t in token_lists] + [min_length or 0, 1])
    ids = np.full((len(token_lists), length), pad_token_id, dtype=np.int32)
    mask = np.zeros((len(token_lists), length), dtype=np.int32)
    for i, tokens in enumerate(token_lists):
        if tokens:
            cols = slice(0, len(tokens)) if side == "right" else slice(length - len(tokens), length)
            ids[i, cols], mask[i, cols] = tokens, 1
    return ids, mask


def encode_texts(tokenizer, texts, max_length, add_eos=True):
    """Right-padded (ids, mask) int32 arrays (N, max_length) of ``texts`` (each followed by EOS), cut at max_length.

    The targets of the MLE warm start and of REINFORCE's mixed objective; pad: the tokenizer's pad token, else EOS.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = [tokenizer.eos_token_id] if add_eos and tokenizer.eos_token_id is not None else []
    # verbose=False: the cut below is intended, so no "sequence length is longer than the maximum" warning
    rows = [(text_to_ids(tokenizer, text, verbose=False) + eos)[:max_length] for text in texts]
    ids, mask = pad_token_ids(rows, pad, "right", max_length)
    return ids[:, :max_length], mask[:, :max_length]


def position_ids_from_mask(attention_mask):
    """Positions that skip left padding: 0 for the first real token of each row."""
    return tf.maximum(tf.cumsum(attention_mask, axis=-1) - 1, 0)


def ensure_pad_token(tokenizer):
    """Give ``tokenizer`` its EOS token as pad token when it has none; returns the pad token id."""
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has neither a pad token nor an EOS token; set tokenizer.pad_token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer.pad_token_id


def ids_to_texts(tokenizer, token_ids, mask=None) -> list:
    """Rows of token ids (B, T) -> texts: each row's tokens where ``mask`` is 1 (all by default),
    special tokens dropped."""
    token_ids = np.asarray(token_ids)
    mask = np.ones_like(token_ids) if mask is None else np.asarray(mask)
    return [tokenizer.decode(row[m.astype(bool)].tolist(), skip_special_tokens=True)
            for row, m in zip(token_ids, mask)]


def resolve_tokenizer(model, tokenizer=None):
    """``tokenizer``, or when None the one saved in the model's own folder (``config.name_or_path``, set by
    ``from_pretrained`` / ``save_pretrained``), loaded offline. A clear error says how to pass one otherwise."""
    if tokenizer is not None:
        return tokenizer
    config = getattr(model, "config", None)
    path = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None) or ""
    name = type(model).__name__
    how = ("pass one: RLAgent(model, tokenizer), e.g. AutoTokenizer.from_pretrained(<the model's folder>), "
           "or tf_rl_text.default_tokenizer() for the library's tiny default models")
    if not path:
        raise ValueError(f"RLAgent(model) found no tokenizer: this {name} was not loaded with from_pretrained "
                         f"(its config has no name_or_path); {how}")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"RLAgent(model) found no tokenizer for {name} in {path!r} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else err}); {how}") from err


__all__ = ["text_to_ids", "texts_to_ids", "pad_token_ids", "encode_texts", "position_ids_from_mask", "ensure_pad_token",
           "ids_to_texts", "resolve_tokenizer"]
