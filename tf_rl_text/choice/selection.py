"""The choice policy's math and inputs: masked choice logits, selection log-probabilities and sampling
(Plackett-Luce without replacement), and encoding prompts with their candidates as classifier inputs.
"""
from __future__ import annotations


import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import tf


NEG = -1e9
"""The logit of an unavailable choice (a padded candidate slot, or one already selected)."""

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


# --------------------------------------------------------------------------- model families
def is_sequence_classifier(model) -> bool:
    """True for a Hugging Face ``TF...ForSequenceClassification`` model."""
    return type(model).__name__.endswith("ForSequenceClassification") or any(
        c.__name__.endswith("ForSequenceClassification") for c in type(model).__mro__)


# --------------------------------------------------------------------------- pure math
def mask_choices(logits, choice_mask):
    """``logits`` where ``choice_mask`` is 1, :data:`NEG` elsewhere (same shape)."""
    return tf.where(tf.cast(choice_mask, tf.bool), logits, tf.cast(NEG, logits.dtype))


def step_logits(logits, choice_mask, actions, action_mask):
    """The logits at each of k sequential choices, previous choices removed: (B, k, C).

    logits: (B, C) scores of the state's choices; choice_mask: (B, C) 1 = available at the start;
    actions: (B, k) int32 chosen indices in order; action_mask: (B, k) 1 = that step was taken.
    """
    num_choices = tf.shape(logits)[1]
    chosen = tf.one_hot(actions, num_choices, dtype=logits.dtype) * tf.cast(action_mask, logits.dtype)[..., None]
    removed = tf.cumsum(chosen, axis=1, exclusive=True)  # (B, k, C): chosen before step t
    available = tf.cast(choice_mask, logits.dtype)[:, None, :] * (1.0 - removed)
    return mask_choices(tf.broadcast_to(logits[:, None, :], tf.shape(available)), available)


def selection_log_probs(logits, choice_mask, actions, action_mask):
    """log pi(a_t | s_t) of k sequential choices without replacement (Plackett-Luce): (B, k).

    0 where ``action_mask`` is 0. With k = 1 this is log softmax over the available choices.
    """
    per_step = step_logits(logits, choice_mask, actions, action_mask)  # (B, k, C)
    logp = ops.gather_log_probs(per_step, actions)  # (B, k)
    return logp * tf.cast(action_mask, logp.dtype)


def sample_selection(logits, choice_mask, k, seed, greedy=False):
    """k choices without replacement per row: Gumbel top-k of the masked logits (= sequential sampling
    from the softmax); greedy: the k highest. Returns (actions (B, k) int32, action_mask (B, k) int32):
    rows with fewer than k available choices take them all, the rest of the row is masked."""
    masked = mask_choices(logits, choice_mask)
    if not greedy:
        uniform = tf.random.stateless_uniform(tf.shape(masked), seed, minval=1e-20, maxval=1.0)
        masked = masked - tf.math.log(-tf.math.log(uniform))
    width = tf.minimum(k, tf.shape(masked)[1])
    actions = tf.math.top_k(masked, k=width).indices  # (B, k')
    actions = tf.pad(actions, [[0, 0], [0, k - width]])
    available = tf.reduce_sum(tf.cast(choice_mask, tf.int32), axis=1)  # (B,)
    action_mask = tf.cast(tf.range(k)[None, :] < available[:, None], tf.int32)
    return tf.cast(actions * action_mask, tf.int32), action_mask


# --------------------------------------------------------------------------- encoding
def encode_pair(tokenizer, a, b=None, max_length=128):
    """The tokenizer's encoding of the pair (a, b) in at most ``max_length`` tokens, ``a`` (the prompt)
    truncated first; both when ``b`` (the candidate) alone is too long. An empty ``a``: ``b`` alone."""
    if b is not None and not a:
        a, b = b, None
    if b is None:
        return tokenizer(a, truncation=True, max_length=max_length)
    try:
        return tokenizer(a, b, truncation="only_first", max_length=max_length)
    except Exception:  # noqa: BLE001 (the fast tokenizers raise a bare Exception when a alone cannot make room)
        return tokenizer(a, b, truncation="longest_first", max_length=max_length)


def encode_choices(tokenizer, prompts, candidates=None, max_length=128, num_choices=None, length=None):
    """Token ids for choice states, as numpy int32 arrays.

    candidates given (one list per prompt): every (prompt, candidate) pair, the prompt truncated first
    -> ``input_ids``, ``attention_mask``, ``token_type_ids`` (B, C, L) and ``choice_mask`` (B, C),
    C = ``num_choices`` or the longest list; an empty prompt encodes the candidate alone.
    candidates None: each prompt alone -> (B, L) arrays. L = the longest encoding, or ``length``.
    """
    def encode(a, b=None):
        enc = encode_pair(tokenizer, a, b, max_length)
        return enc["input_ids"], enc.get("token_type_ids") or [0] * len(enc["input_ids"])

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if candidates is None:
        rows = [[encode(p)] for p in prompts]
        choice_mask = None
    else:
        if len(candidates) != len(prompts):
            raise ValueError(f"candidates must hold one list per prompt: got {len(candidates)} lists for "
                             f"{len(prompts)} prompts")
        width = max([len(c) for c in candidates] + [num_choices or 0, 1])
        rows = [[encode(p, c) for c in cands] for p, cands in zip(prompts, candidates)]
        choice_mask = np.zeros((len(prompts), width), np.int32)
        for i, cands in enumerate(candidates):
            choice_mask[i, : len(cands)] = 1
    seq = length or max([len(ids) for row in rows for ids, _ in row] + [1])
    width = 1 if candidates is None else choice_mask.shape[1]
    ids = np.full((len(prompts), width, seq), pad, np.int32)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for i, row in enumerate(rows):
        for j, (tokens, token_types) in enumerate(row):
            n = min(len(tokens), seq)
            ids[i, j, :n], mask[i, j, :n], types[i, j, :n] = tokens[:n], 1, token_types[:n]
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if candidates is None:
        return {k: v[:, 0] for k, v in out.items()}, None
    return out, choice_mask


__all__ = ["is_sequence_classifier", "mask_choices", "step_logits", "selection_log_probs", "sample_selection", "encode_pair", "encode_choices", "NEG", "INPUT_NAMES"]
