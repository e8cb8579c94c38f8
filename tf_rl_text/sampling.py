"""Sampling controls of the generation loop, as pure functions of (B, V) logits.

Applied per decode step, in Hugging Face's order: repetition penalty, then the end-of-sequence
mask of ``min_new_tokens``, then temperature, top-k and top-p (nucleus). They shape how tokens are
*drawn* (rollouts, ``generate``, the export's ``sample``); the log-probabilities the trainers score
are those of the temperature-scaled full softmax, as with ``top_k``.

* :func:`top_p_filter` - keep the smallest set of most likely tokens whose probability reaches
  ``top_p`` (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration");
* :func:`repetition_penalty` - divide the positive logits of tokens already seen (prompt or
  completion) by ``penalty`` and multiply their negative ones by it (Keskar et al. 2019, CTRL);
* :func:`ban_tokens` - the mask ``min_new_tokens`` puts on EOS and the stop tokens.
"""
from __future__ import annotations

from tf_rl_text._compat import tf

BANNED = -1e9
"""The logit a filtered-out token gets (the same as top-k's)."""


def top_p_filter(logits, top_p):
    """Logits (B, V) with every token outside the nucleus of mass ``top_p`` set to :data:`BANNED`.

    The nucleus is the most likely tokens, in order, up to and including the first at which the
    cumulative probability reaches ``top_p`` (so the most likely token is always kept).
    ``top_p >= 1`` keeps every token (no rounding of the cumulative sum can drop one).
    """
    top_p = tf.cast(top_p, logits.dtype)
    order = tf.argsort(logits, axis=-1, direction="DESCENDING")  # (B, V)
    sorted_logits = tf.gather(logits, order, batch_dims=1)
    probs = tf.nn.softmax(sorted_logits, axis=-1)
    before = tf.cumsum(probs, axis=-1, exclusive=True)  # mass of the more likely tokens
    keep_sorted = before < top_p  # (B, V), True for the first token always
    # back to vocabulary order: keep[b, order[b, i]] = keep_sorted[b, i]
    keep = tf.gather(keep_sorted, tf.argsort(order, axis=-1), batch_dims=1)
    filtered = tf.where(keep, logits, tf.cast(BANNED, logits.dtype))
    return tf.where(top_p >= 1.0, logits, filtered)


def seen_tokens(token_ids, mask, vocab_size):
    """(B, V) bool: which tokens occur in the rows of ``token_ids`` (B, L) where ``mask`` is 1."""
    batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
    rows = tf.repeat(tf.range(batch), length)
    index = tf.stack([rows, tf.reshape(token_ids, [-1])], axis=1)  # (B * L, 2)
    counts = tf.tensor_scatter_nd_max(tf.zeros([batch, vocab_size], tf.int32), index,
                                      tf.reshape(tf.cast(mask, tf.int32), [-1]))
    return counts > 0


def mark_seen(seen, tokens):
    """``seen`` (B, V) with ``tokens`` (B,) added."""
    return tf.logical_or(seen, tf.one_hot(tokens, tf.shape(seen)[1], on_value=True, off_value=False))


def repetition_penalty(logits, seen, penalty):
    """CTRL's repetition penalty: for seen tokens, logit / penalty if > 0 else logit * penalty.

    logits: (B, V); seen: (B, V) bool; ``penalty`` 1 = off, > 1 discourages repeats.
    """
    penalty = tf.cast(penalty, logits.dtype)
    penalised = tf.where(logits > 0, logits / penalty, logits * penalty)
    return tf.where(seen, penalised, logits)


def ban_tokens(logits, token_ids, active):
    """Logits (B, V) with the tokens ``token_ids`` (S,) set to :data:`BANNED` where ``active`` (scalar or (B,))."""
    vocab = tf.shape(logits)[-1]
    token_ids = tf.boolean_mask(token_ids, tf.logical_and(token_ids >= 0, token_ids < vocab))
    banned = tf.reduce_any(tf.one_hot(token_ids, vocab, on_value=True, off_value=False), axis=0)  # (V,)
    active = tf.reshape(tf.cast(active, tf.bool), [-1, 1])
    return tf.where(tf.logical_and(banned[None], active), tf.cast(BANNED, logits.dtype), logits)


__all__ = ["BANNED", "top_p_filter", "seen_tokens", "mark_seen", "repetition_penalty", "ban_tokens"]
