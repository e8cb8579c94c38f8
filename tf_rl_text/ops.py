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


def label_smoothed_nll(logits, tokens, epsilon):
    """Cross-entropy against the target smoothed towards uniform (Szegedy et al. 2016; fairseq's form):
    (1 - epsilon) * -log p(token) + epsilon * mean over the vocabulary of -log p(v), at each position:
    logits (B, T, V), tokens (B, T) -> (B, T). epsilon = 0 is the plain negative log-likelihood."""
    logp = tf.nn.log_softmax(logits, axis=-1)
    nll = -tf.gather(logp, tokens, axis=-1, batch_dims=2)
    return (1.0 - epsilon) * nll - epsilon * tf.reduce_mean(logp, axis=-1)


def entropy_from_logits(logits):
    """Entropy of softmax(logits) along the last axis."""
    return entropy_from_log_probs(tf.nn.log_softmax(logits, axis=-1))


def entropy_from_log_probs(logp):
    """Entropy of a distribution given as log-probabilities (..., V): -sum_a p(a) log p(a). Lets a
    caller that already holds log_softmax(logits) skip a second pass over the vocabulary."""
    return -tf.reduce_sum(tf.exp(logp) * logp, axis=-1)


# =========================================================================== actor-critic (A2C, PPO)
# GAE, the PPO clipped objectives, explained variance and the adaptive KL coefficient.
# Used by tf_rl_text/trainers/actor_critic.py; hand-computed tests in tests/test_actor_critic.py.


def generalized_advantages(rewards, values, mask, gamma=1.0, lam=0.95):
    """GAE(gamma, lambda) (Schulman et al. 2016) over right-padded completions: (advantages, returns).

    rewards, values, mask: (B, T). values[:, t] = V(s_t), the value of the state before token t.
    delta_t = r_t + gamma * V(s_{t+1}) - V(s_t), with V(s_{t+1}) = 0 after a row's last token
    (the episode is over: EOS or the token budget); A_t = delta_t + gamma * lam * A_{t+1}.
    returns = A + V is the critic's target (lam = 1 gives the Monte-Carlo return G_t).
    Both are 0 on padding.
    """
    mask = tf.cast(mask, values.dtype)
    rewards = rewards * mask
    values = values * mask
    gamma = tf.cast(gamma, values.dtype)
    lam = tf.cast(lam, values.dtype)
    next_values = tf.concat([values[:, 1:], tf.zeros_like(values[:, :1])], axis=1)  # (B, T), 0 past the end
    next_mask = tf.concat([mask[:, 1:], tf.zeros_like(mask[:, :1])], axis=1)  # 1 where s_{t+1} is live
    deltas = rewards + gamma * next_values * next_mask - values  # (B, T)
    # scan from the end: A_t = delta_t + gamma * lam * next_mask_t * A_{t+1}
    elems = (tf.reverse(tf.transpose(deltas), axis=[0]), tf.reverse(tf.transpose(next_mask), axis=[0]))  # (T, B)
    adv = tf.scan(lambda acc, x: x[0] + gamma * lam * x[1] * acc, elems, initializer=tf.zeros_like(deltas[:, 0]))
    advantages = tf.transpose(tf.reverse(adv, axis=[0])) * mask
    return advantages, (advantages + values) * mask


def ppo_clipped_policy_loss(logp, old_logp, advantages, mask, clip_range=0.2):
    """PPO's clipped surrogate (Schulman et al. 2017), a per-token mean over the masked tokens.

    L = -mean_t min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t) with rho = exp(logp - old_logp).
    Returns (loss, clip_fraction): the fraction of tokens where the clipped term was chosen
    (|rho - 1| > eps and the clip changed the minimum).
    """
    mask = tf.cast(mask, logp.dtype)
    ratio = tf.exp(logp - old_logp)  # (B, T)
    unclipped = ratio * advantages
    clipped = tf.clip_by_value(ratio, 1.0 - clip_range, 1.0 + clip_range) * advantages
    loss = -masked_mean(tf.minimum(unclipped, clipped), mask)
    clip_fraction = masked_mean(tf.cast(clipped < unclipped, logp.dtype), mask)
    return loss, clip_fraction


def clipped_value_loss(values, old_values, returns, mask, clip_range=None):
    """Critic loss 0.5 * mean_t (V - G)^2 over masked tokens, optionally PPO-clipped.

    With ``clip_range`` eps: 0.5 * mean_t max((V - G)^2, (V_old + clip(V - V_old, -eps, eps) - G)^2),
    so one update cannot move the value far from the rollout's (as in PPO's reference code).
    """
    mask = tf.cast(mask, values.dtype)
    loss = tf.square(values - returns)
    if clip_range is not None:
        clipped = old_values + tf.clip_by_value(values - old_values, -clip_range, clip_range)
        loss = tf.maximum(loss, tf.square(clipped - returns))
    return 0.5 * masked_mean(loss, mask)


def approx_kl(logp, old_logp, mask):
    """Per-token estimate of KL(pi_old || pi) from samples of pi_old: mean((rho - 1) - log rho) (k3, >= 0)."""
    log_ratio = logp - old_logp
    return masked_mean(tf.exp(log_ratio) - 1.0 - log_ratio, mask)


def explained_variance(predictions, targets, mask, eps=1e-8):
    """1 - Var[targets - predictions] / Var[targets] over the masked entries (NaN if Var[targets] <= eps).

    1 = the critic predicts the returns perfectly, 0 = no better than a constant, < 0 = worse.
    Returns that (nearly) never vary give NaN rather than a meaningless huge number.
    """
    mask = tf.cast(mask, targets.dtype)
    var_y = masked_mean(tf.square(targets - masked_mean(targets, mask)), mask)
    residual = targets - predictions
    var_r = masked_mean(tf.square(residual - masked_mean(residual, mask)), mask)
    return tf.where(var_y > eps, 1.0 - tf.math.divide_no_nan(var_r, var_y), tf.constant(float("nan"), targets.dtype))


def adaptive_kl_coef(kl_coef, kl, target, horizon, num_samples):
    """The adaptive KL coefficient of Ziegler et al. 2019 (one update of beta).

    beta <- beta * (1 + clip((KL - target) / target, -0.2, 0.2) * num_samples / horizon).
    KL above target raises beta (a tighter leash), below target lowers it. Returns a Python float.
    """
    if not target > 0:
        raise ValueError(f"target must be > 0 (nats of KL per completion), got {target}")
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0, got {horizon}")
    error = min(max((float(kl) - target) / target, -0.2), 0.2)
    return float(kl_coef) * (1.0 + error * float(num_samples) / float(horizon))


# =========================================================================== value-based (Q-learning family)
# TD targets for Q-learning, SARSA, expected SARSA and soft Q-learning over right-padded completions,
# and the acting policies read from Q-values. Used by tf_rl_text/trainers/q_learning.py; hand-computed
# tests in tests/test_q_learning.py. Shapes: q (B, T, V) with q[:, t] = Q(s_t, .), the state before
# completion token t; actions (B, T) the tokens a_t; rewards, mask (B, T).

TD_TARGETS = ("q_learning", "sarsa", "expected_sarsa", "soft")
TD_LOSSES = ("huber", "mse")


def td_loss(q_taken, targets, mask, loss="huber", huber_delta=1.0):
    """Regression of Q(s_t, a_t) on the TD targets: a per-token mean over the masked tokens.

    q_taken, targets, mask: (B, T). "huber": mean_t h(q - y) with h(x) = x^2 / 2 for |x| <= d,
    d (|x| - d / 2) beyond; "mse": mean_t (q - y)^2 / 2. Returns (loss, info: dict of scalars).
    """
    mask = tf.cast(mask, q_taken.dtype)
    error = q_taken - tf.stop_gradient(targets)  # (B, T)
    if loss == "huber":
        abs_error = tf.abs(error)
        quadratic = tf.minimum(abs_error, huber_delta)
        per_token = 0.5 * tf.square(quadratic) + huber_delta * (abs_error - quadratic)
    elif loss == "mse":
        per_token = 0.5 * tf.square(error)
    else:
        raise ValueError(f"loss must be one of {TD_LOSSES}, got {loss!r}")
    value = masked_mean(per_token, mask)
    return value, {"td_error": masked_mean(tf.abs(error), mask), "q_taken": masked_mean(q_taken, mask),
                   "target": masked_mean(targets, mask)}


def epsilon_greedy_probs(q, epsilon):
    """pi(a|s) of epsilon-greedy on Q: (1 - eps) on argmax_a Q (ties: the first) + eps / V everywhere."""
    num_actions = tf.shape(q)[-1]
    greedy = tf.one_hot(tf.argmax(q, axis=-1, output_type=tf.int32), num_actions, dtype=q.dtype)
    epsilon = tf.cast(epsilon, q.dtype)
    return (1.0 - epsilon) * greedy + epsilon / tf.cast(num_actions, q.dtype)


def boltzmann_probs(q, temperature=1.0):
    """pi(a|s) = softmax(Q(s, .) / temperature)."""
    return tf.nn.softmax(q / tf.cast(temperature, q.dtype), axis=-1)


def soft_state_values(q, temperature=1.0):
    """V(s) = tau * logsumexp_a Q(s, a) / tau (soft Q-learning; tau = 1 in Guo et al. 2021): (...)."""
    temperature = tf.cast(temperature, q.dtype)
    return temperature * tf.reduce_logsumexp(q / temperature, axis=-1)


def bootstrap_values(target_q, kind, actions=None, policy_probs=None, soft_temperature=1.0):
    """The value each target uses for state s_t, from the target network's Q-values: (B, T).

    kind: "q_learning" max_a Q(s_t, a); "sarsa" Q(s_t, a_t), the action actually taken there;
    "expected_sarsa" sum_a pi(a|s_t) Q(s_t, a) with ``policy_probs`` (B, T, V);
    "soft" tau * logsumexp(Q(s_t, .) / tau).
    """
    if kind == "q_learning":
        return tf.reduce_max(target_q, axis=-1)
    if kind == "sarsa":
        if actions is None:
            raise ValueError("kind='sarsa' needs the actions actually taken (actions=...)")
        return tf.gather(target_q, actions, axis=-1, batch_dims=2)
    if kind == "expected_sarsa":
        if policy_probs is None:
            raise ValueError("kind='expected_sarsa' needs the policy's probabilities (policy_probs=...)")
        return tf.reduce_sum(tf.cast(policy_probs, target_q.dtype) * target_q, axis=-1)
    if kind == "soft":
        return soft_state_values(target_q, soft_temperature)
    raise ValueError(f"kind must be one of {TD_TARGETS}, got {kind!r}")


def td_targets(rewards, values, mask, gamma=1.0):
    """One-step TD targets y_t = r_t + gamma * V(s_{t+1}) over right-padded sequences: (B, T).

    rewards, values, mask: (B, T); values[:, t] is the bootstrap value of s_t (see
    :func:`bootstrap_values`). A row's last unmasked token is terminal: y_T = r_T (no
    bootstrap). Targets are 0 on padding.
    """
    mask = tf.cast(mask, values.dtype)
    next_values = tf.concat([values[:, 1:], tf.zeros_like(values[:, :1])], axis=1)  # (B, T): V(s_{t+1})
    next_mask = tf.concat([mask[:, 1:], tf.zeros_like(mask[:, :1])], axis=1)  # 0 at the terminal step
    gamma = tf.cast(gamma, values.dtype)
    return (tf.cast(rewards, values.dtype) + gamma * next_mask * next_values) * mask


def q_td_targets(target_q, actions, rewards, mask, gamma=1.0, kind="q_learning", policy_probs=None,
                 soft_temperature=1.0):
    """TD targets of the four value-based methods, from the target network's Q-values: (B, T).

    target_q: (B, T, V) Q_bar(s_t, .); actions: (B, T) the tokens taken; rewards, mask: (B, T).

    * "q_learning":     y_t = r_t + gamma max_a Q_bar(s_{t+1}, a)
    * "sarsa":          y_t = r_t + gamma Q_bar(s_{t+1}, a_{t+1})
    * "expected_sarsa": y_t = r_t + gamma sum_a pi(a|s_{t+1}) Q_bar(s_{t+1}, a)   (policy_probs (B, T, V))
    * "soft":           y_t = r_t + gamma tau logsumexp_a Q_bar(s_{t+1}, a) / tau  (Guo et al. 2021)

    and y_T = r_T at each row's last token; 0 on padding. No gradient flows into the targets.
    """
    values = bootstrap_values(target_q, kind, actions, policy_probs, soft_temperature)  # (B, T)
    return tf.stop_gradient(td_targets(rewards, values, mask, gamma))


# =========================================================================== preferences
# The pairwise (Bradley-Terry) reward-model loss. Used by tf_rl_text/rewards/pairwise.py; hand test in tests/test_dpo.py.


def bradley_terry_loss(chosen_scores, rejected_scores):
    """The pairwise reward-model loss -log sigmoid(r(chosen) - r(rejected)) per pair (B,), and whether each
    pair is ranked right (B,) bool."""
    margin = chosen_scores - rejected_scores
    return -tf.math.log_sigmoid(margin), margin > 0


# --------------------------------------------------------------------------- actor-critic losses
def a2c_loss(logp, values, advantages, returns, mask, entropy, vf_coef=0.5, entropy_coef=0.01):
    """A2C loss, per-token means over masked tokens: policy + c_v * value - c_e * entropy.

    logp, values, advantages, returns, mask, entropy: (B, T). Returns (loss, info).
    """
    mask = tf.cast(mask, logp.dtype)
    policy_loss = -masked_mean(tf.stop_gradient(advantages) * logp, mask)
    value_loss = clipped_value_loss(values, None, returns, mask)
    mean_entropy = masked_mean(entropy, mask)
    loss = policy_loss + vf_coef * value_loss - entropy_coef * mean_entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": mean_entropy,
                  "clip_fraction": tf.constant(0.0)}


def ppo_loss(logp, old_logp, values, old_values, advantages, returns, mask, entropy, clip_range=0.2,
             clip_range_value=0.2, vf_coef=0.1, entropy_coef=0.0):
    """PPO loss, per-token means over masked tokens: clipped policy + c_v * (clipped) value - c_e * entropy.

    All inputs (B, T); ``old_*`` come from the rollout. Returns (loss, info).
    """
    mask = tf.cast(mask, logp.dtype)
    policy_loss, clip_fraction = ppo_clipped_policy_loss(logp, old_logp, tf.stop_gradient(advantages), mask,
                                                         clip_range)
    value_loss = clipped_value_loss(values, old_values, returns, mask, clip_range_value)
    mean_entropy = masked_mean(entropy, mask)
    loss = policy_loss + vf_coef * value_loss - entropy_coef * mean_entropy
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": mean_entropy,
                  "clip_fraction": clip_fraction}


