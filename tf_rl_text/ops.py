"""Pure TensorFlow math shared by every trainer: masked reductions, returns, baselines, KL.

Every function here is a pure function of tensors (no variables, no logging), works in eager
mode and inside ``tf.function``, and is tested against hand-computed numbers in
``tests/test_ops.py``. Shapes: ``B`` sequences, ``T`` completion tokens.
"""
from __future__ import annotations

from tf_rl_text._compat import tf


def masked_sum(values, mask, axis=None):
    """Sum of ``values`` where ``mask`` is 1."""
    return tf.reduce_sum(values * tf.cast(mask, values.dtype), axis=axis)


def masked_mean(values, mask, axis=None):
    """Mean of ``values`` over the positions where ``mask`` is 1 (0 where the mask is empty)."""
    mask = tf.cast(mask, values.dtype)
    return tf.math.divide_no_nan(tf.reduce_sum(values * mask, axis=axis), tf.reduce_sum(mask, axis=axis))


def masked_whiten(values, mask, shift_mean=True, eps=1e-8):
    """Normalise ``values`` to zero mean and unit variance over the masked positions."""
    mean = masked_mean(values, mask)
    var = masked_mean(tf.square(values - mean), mask)
    whitened = (values - mean) * tf.math.rsqrt(var + eps)
    if not shift_mean:
        whitened += mean
    return whitened * tf.cast(mask, values.dtype)


def last_token_rewards(rewards, mask):
    """Place one reward per sequence on its last unmasked token.

    rewards: (B,) float; mask: (B, T) 0/1 with the completion tokens set (right padded).
    Returns (B, T) with ``rewards[i]`` at the last position where ``mask[i]`` is 1.
    """
    mask = tf.cast(mask, rewards.dtype)
    length = tf.cast(tf.reduce_sum(mask, axis=1), tf.int32)  # (B,)
    last = tf.one_hot(tf.maximum(length - 1, 0), tf.shape(mask)[1], dtype=rewards.dtype)  # (B, T)
    return last * rewards[:, None] * tf.cast(length > 0, rewards.dtype)[:, None]


def discounted_returns(rewards, mask, gamma=1.0):
    """Return-to-go G_t = sum_{k>=t} gamma^(k-t) r_k over the masked tokens, 0 on padding.

    rewards, mask: (B, T). Padding after the last token contributes nothing.
    """
    rewards = rewards * tf.cast(mask, rewards.dtype)
    gamma = tf.cast(gamma, rewards.dtype)
    # scan from the end: G_t = r_t + gamma * G_{t+1}
    reversed_r = tf.reverse(tf.transpose(rewards), axis=[0])  # (T, B)
    g = tf.scan(lambda acc, r: r + gamma * acc, reversed_r, initializer=tf.zeros_like(reversed_r[0]))
    return tf.transpose(tf.reverse(g, axis=[0])) * tf.cast(mask, rewards.dtype)


def kl_penalty(logp, ref_logp, mask, kind="kl"):
    """Per-token estimate of KL(pi || pi_ref) at the sampled tokens, 0 on padding.

    kind: "kl" (log ratio, k1), "abs" (|log ratio|), "mse" (0.5 * log_ratio^2, k2) or
    "low_var" (exp(-d) - 1 + d with d = log ratio, k3; Schulman 2020), all (B, T).
    """
    log_ratio = logp - ref_logp
    if kind == "kl":
        kl = log_ratio
    elif kind == "abs":
        kl = tf.abs(log_ratio)
    elif kind == "mse":
        kl = 0.5 * tf.square(log_ratio)
    elif kind == "low_var":
        kl = tf.exp(-log_ratio) - 1.0 + log_ratio
    else:
        raise ValueError(f"kind must be one of 'kl', 'abs', 'mse', 'low_var', got {kind!r}")
    return kl * tf.cast(mask, logp.dtype)


def leave_one_out_baseline(rewards, k):
    """RLOO baseline (Kool et al. 2019): b_i = (sum_j R_j - R_i) / (k - 1) within each group.

    rewards: (B,) laid out as B/k groups of k consecutive samples of the same prompt.
    """
    if k < 2:
        raise ValueError(f"the leave-one-out baseline needs k >= 2 samples per prompt, got k={k}")
    grouped = tf.reshape(rewards, [-1, k])  # (B/k, k)
    baseline = (tf.reduce_sum(grouped, axis=1, keepdims=True) - grouped) / tf.cast(k - 1, rewards.dtype)
    return tf.reshape(baseline, [-1])


def group_normalized_advantages(rewards, k, eps=1e-4):
    """GRPO advantages (Shao et al. 2024): (R_i - mean_g R) / (std_g R + eps) per group of k."""
    grouped = tf.reshape(rewards, [-1, k])
    mean = tf.reduce_mean(grouped, axis=1, keepdims=True)
    std = tf.math.reduce_std(grouped, axis=1, keepdims=True)
    return tf.reshape((grouped - mean) / (std + eps), [-1])


def gather_log_probs(logits, tokens):
    """log softmax(logits)[token] at each position: logits (B, T, V), tokens (B, T) -> (B, T)."""
    logp = tf.nn.log_softmax(logits, axis=-1)
    return tf.gather(logp, tokens, axis=-1, batch_dims=2)


def entropy_from_logits(logits):
    """Entropy of softmax(logits) along the last axis."""
    logp = tf.nn.log_softmax(logits, axis=-1)
    return -tf.reduce_sum(tf.exp(logp) * logp, axis=-1)
