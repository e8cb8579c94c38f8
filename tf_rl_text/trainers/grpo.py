"""GRPO as practitioners know it from TRL's ``GRPOTrainer``: group-relative advantages, several
clipped updates per generation batch, and today's loss variants.

One :meth:`~tf_rl_text.trainers.base.Trainer.step` is one generation batch: ``env.batch_size``
prompts x G = ``num_generations`` completions sampled from the current policy, scored by one or
more reward functions (a weighted sum; a function that returns None for a sample is left out of
that sample's sum), then ``num_iterations`` (mu) updates on that same batch.

Advantages (Shao et al. 2024), one per completion, shared by its tokens::

    A_i = (R_i - mean_{j in group(i)} R_j) / s        s = std of the group ("group"), of the whole
                                                       batch ("batch", Liu et al. 2025) or 1 ("none")

(standard deviations are population ones, ``+ 1e-4``, as in REINFORCE's ``baseline="grpo"``).
Per-token loss with the importance ratio against the policy that sampled the batch::

    rho_it = pi(o_it | q, o_<t) / pi_old(o_it | q, o_<t)        importance_sampling_level="token"
    rho_i  = exp(mean_t log rho_it)                              "sequence" (GSPO, Zheng et al. 2025)
    l_it   = -min(rho A_i, clip(rho, 1 - epsilon, 1 + epsilon_high) A_i) + beta * KL3_it
    KL3_it = exp(log pi_ref - log pi) - (log pi_ref - log pi) - 1          (Schulman's k3 estimator)

``delta`` (two-sided GRPO) also caps the unclipped ratio at ``delta``. pi_old is recorded once per
batch, before its first update; with ``num_iterations=1`` it is the current policy (rho = 1, its
gradient that of log pi), so no extra forward pass is made. The token losses are aggregated by
``loss_type``::

    "grpo":    (1/B) sum_i (1/|o_i|) sum_t l_it                 (each sequence's token mean)
    "bnpo":    sum_it l_it / tokens of the micro-batch           (each accumulation chunk / replica,
                                                                  weighted by its rows: TRL's micro-batch)
    "dr_grpo": sum_it l_it / (B * max_new_tokens)               (Liu et al. 2025: a constant)
    "dapo":    sum_it l_it / tokens of the generation batch      (Yu et al. 2025; TRL's default)

With one chunk "bnpo" equals "dapo". Options from DAPO: ``epsilon_high`` ("clip-higher"),
``mask_truncated_completions`` (completions cut by the token budget, not ended by EOS or a stop
token, leave the loss) and ``dynamic_sampling`` (groups whose rewards are all equal are dropped
from the update: their advantages are 0 and they would only dilute it).

Every update goes through :meth:`~tf_rl_text.trainers.base.Trainer.accumulate` (one chunk, k
accumulation chunks or the replicas of a ``tf.distribute`` strategy: the same loop). Logged per
step, with the names TRL users know: ``reward``, ``reward_std`` (mean within-group std),
``rewards/<name>/mean`` and ``/std``, ``frac_reward_zero_std``, ``completions/mean_length``,
``completions/min_length``, ``completions/max_length``, ``completions/clipped_ratio``, ``kl``
(per-token mean of KL3, when kl_coef > 0), ``entropy``, ``clip_ratio/low_mean``,
``clip_ratio/high_mean``, ``clip_ratio/region_mean`` (means over the step's iterations; each
iteration's own values are in :attr:`GRPOTrainer.iteration_stats`). docs/algorithms.md maps every
field of TRL's ``GRPOConfig`` to this one.

Example::

    trainer = GRPOTrainer(agent, env, GRPOConfig(num_generations=4, num_iterations=2, kl_coef=0.04))
    trainer.train(100)
    trainer.export("saved_models/grpo_policy")
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import tf
from tf_rl_text.experience import EnvRollouts, Scored, rollout_ids
from tf_rl_text.rewards.composite import CompositeReward, named_functions
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.validation import check, is_int_at_least, resolve_alias

LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")
SCALE_REWARDS = ("group", "batch", "none")
IMPORTANCE_LEVELS = ("token", "sequence")


@dataclasses.dataclass
class GRPOConfig(TrainerConfig):
    """Settings of :class:`GRPOTrainer`, named and defaulted as in TRL's ``GRPOConfig`` where it has
    the field (docs/algorithms.md has the whole mapping). The optimizer, schedule, clipping and
    accumulation fields come from :class:`~tf_rl_text.trainers.base.TrainerConfig`."""

    num_generations: int = 8
    """G: completions sampled per prompt (a group); >= 2."""
    scale_rewards: str = "group"
    """Divide the advantages R - mean_group by the group's std ("group"), the batch's ("batch") or nothing ("none")."""
    num_iterations: int = 1
    """mu: updates on each generation batch (the ratio pi / pi_old is 1 in the first)."""
    epsilon: float = 0.2
    """Lower clipping bound: rho is clipped to [1 - epsilon, 1 + epsilon_high]."""
    epsilon_high: float | None = None
    """Upper clipping bound (DAPO's "clip-higher" uses 0.28); None = epsilon."""
    delta: float | None = None
    """Two-sided GRPO: also cap the unclipped ratio at delta (> 1 + epsilon); None = off."""
    loss_type: str = "dapo"
    """How token losses are averaged: "grpo", "bnpo", "dr_grpo" or "dapo" (see the module docstring)."""
    importance_sampling_level: str = "token"
    """"token": one ratio per token; "sequence": one per completion, exp(mean log ratio) (GSPO)."""
    kl_coef: float = 0.0
    """KL coefficient (k3 estimator) to a frozen copy of the starting model; 0 = no reference is kept."""
    beta: float | None = None
    """TRL's name for ``kl_coef``, accepted (``beta=0.04`` sets ``kl_coef``); afterwards it reads the same."""
    reward_weights: list[float] | None = None
    """One weight per reward function (default 1 each)."""
    mask_truncated_completions: bool = False
    """Leave completions that hit max_new_tokens without EOS (or a stop token) out of the loss."""
    dynamic_sampling: bool = False
    """Drop groups whose rewards are all equal from the update (DAPO); a batch of only such groups skips it."""

    def __post_init__(self):
        if isinstance(self.scale_rewards, bool):  # TRL accepts True / False for "group" / "none"
            self.scale_rewards = "group" if self.scale_rewards else "none"
        if self.reward_weights is not None:
            self.reward_weights = list(self.reward_weights)
        resolve_alias(self, "kl_coef", "beta", 0.0)
        super().__post_init__()

    def validate(self):
        super().validate()
        check(is_int_at_least(self.num_generations, 2), "num_generations", "an integer >= 2 (a group needs two "
              "completions to compare)", self.num_generations)
        check(self.scale_rewards in SCALE_REWARDS, "scale_rewards", f"one of {SCALE_REWARDS}", self.scale_rewards)
        check(is_int_at_least(self.num_iterations, 1), "num_iterations", "an integer >= 1", self.num_iterations)
        check(0 < self.epsilon < 1, "epsilon", "in (0, 1)", self.epsilon)
        check(self.epsilon_high is None or self.epsilon_high > 0, "epsilon_high", "> 0 or None", self.epsilon_high)
        check(self.delta is None or self.delta > 1 + self.epsilon, "delta", f"> 1 + epsilon = {1 + self.epsilon} or "
              "None", self.delta)
        check(self.loss_type in LOSS_TYPES, "loss_type", f"one of {LOSS_TYPES}", self.loss_type)
        check(self.importance_sampling_level in IMPORTANCE_LEVELS, "importance_sampling_level",
              f"one of {IMPORTANCE_LEVELS}", self.importance_sampling_level)
        check(self.kl_coef >= 0, "kl_coef", ">= 0", self.kl_coef)
        if self.reward_weights is not None:
            check(len(self.reward_weights) > 0 and all(isinstance(w, (int, float)) and not isinstance(w, bool)
                                                       and np.isfinite(w) for w in self.reward_weights),
                  "reward_weights", "a non-empty list of finite numbers or None", self.reward_weights)


# --------------------------------------------------------------------------- pure functions
def group_advantages(rewards, k, scale="group", eps=1e-4):
    """A_i = (R_i - mean of its group) / s over B/k groups of k consecutive rows: (B,).

    s: the group's std ("group", = :func:`tf_rl_text.ops.group_normalized_advantages`), the whole
    batch's ("batch") or 1 ("none"); population standard deviations, + eps."""
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    if scale == "group":
        return ops.group_normalized_advantages(rewards, k, eps)
    grouped = tf.reshape(rewards, [-1, k])
    centred = tf.reshape(grouped - tf.reduce_mean(grouped, axis=1, keepdims=True), [-1])
    if scale == "batch":
        return centred / (tf.math.reduce_std(rewards) + eps)
    if scale == "none":
        return centred
    raise ValueError(f"scale must be one of {SCALE_REWARDS}, got {scale!r}")


def grpo_token_losses(logp, old_logp, advantages, mask, epsilon=0.2, epsilon_high=None, delta=None,
                      level="token", ref_logp=None, beta=0.0):
    """GRPO's per-token loss l_it (B, T), 0 on padding, and its clip indicators.

    logp, old_logp, mask: (B, T); advantages: (B,); ref_logp: (B, T) when beta > 0. Returns
    ``(losses, parts)`` with parts ``low`` / ``high`` (B, T) 1 where the ratio fell below
    1 - epsilon with A < 0 / rose above 1 + epsilon_high with A > 0 (the clip is active there),
    ``kl`` (B, T) the k3 estimate (zeros without a reference) and ``ratio`` (B, T) or (B, 1)."""
    mask = tf.cast(mask, logp.dtype)
    high = epsilon if epsilon_high is None else epsilon_high
    log_ratio = (logp - old_logp) * mask
    if level == "sequence":  # GSPO: one ratio per completion, the geometric mean of its token ratios
        log_ratio = tf.reduce_sum(log_ratio, axis=1, keepdims=True) / tf.maximum(
            tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)  # (B, 1)
    elif level != "token":
        raise ValueError(f"level must be one of {IMPORTANCE_LEVELS}, got {level!r}")
    ratio = tf.exp(log_ratio)
    a = advantages[:, None]
    unclipped = ratio if delta is None else tf.minimum(ratio, delta)
    losses = -tf.minimum(unclipped * a, tf.clip_by_value(ratio, 1.0 - epsilon, 1.0 + high) * a)
    kl = tf.zeros_like(logp)
    if ref_logp is not None and beta:
        kl = ops.kl_penalty(logp, ref_logp, mask, "low_var")  # exp(ref - logp) - (ref - logp) - 1
        losses = losses + beta * kl
    low_clip = tf.cast((ratio < 1.0 - epsilon) & (a < 0), logp.dtype) * mask
    high_clip = tf.cast((ratio > 1.0 + high) & (a > 0), logp.dtype) * mask
    return losses * mask, {"low": low_clip, "high": high_clip, "kl": kl * mask, "ratio": ratio}


def aggregate_token_losses(losses, mask, loss_type, total_rows, total_tokens, max_tokens, rows=None):
    """One chunk's share of the batch loss under ``loss_type`` (see the module docstring).

    losses, mask: the chunk's (b, T); total_rows, total_tokens: of the whole update batch;
    max_tokens: the completion budget ("dr_grpo"). Summed over chunks, the shares give the batch loss
    (for "bnpo" the chunks' token means, weighted by their rows)."""
    mask = tf.cast(mask, losses.dtype)
    total = tf.reduce_sum(losses * mask)
    if loss_type == "grpo":
        per_row = tf.reduce_sum(losses * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return tf.reduce_sum(per_row) / total_rows
    if loss_type == "bnpo":
        rows = tf.cast(tf.shape(mask)[0], losses.dtype) if rows is None else rows
        return total / tf.maximum(tf.reduce_sum(mask), 1.0) * rows / total_rows
    if loss_type == "dr_grpo":
        return total / (total_rows * float(max_tokens))
    if loss_type == "dapo":
        return total / tf.maximum(total_tokens, 1.0)
    raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")


def truncated_rows(completion_ids, completion_mask, max_new_tokens, end_ids):
    """(B,) bool: completions that used the whole budget without ending on one of ``end_ids`` (EOS, stop tokens)."""
    ids = np.asarray(completion_ids)
    lengths = np.asarray(completion_mask).sum(axis=1)
    last = ids[np.arange(len(ids)), np.maximum(lengths - 1, 0)]
    return (lengths >= max_new_tokens) & ~np.isin(last, list(end_ids))


# --------------------------------------------------------------------------- trainer
class GRPOTrainer(Trainer):
    """GRPO with TRL's options on the trainer base (checkpoints, exact resume, callbacks, TensorBoard,
    export, ``strategy=``, LoRA, gradient accumulation), for causal and encoder-decoder agents.

    Args:
      agent, env, config: the :class:`~tf_rl_text.RLAgent`, the
        :class:`~tf_rl_text.TextGenerationEnv` and a :class:`GRPOConfig`.
      reward_funcs: reward functions that replace the env's own for this trainer's rollouts and
        :meth:`evaluate` (a function, a list or ``{name: fn}``, weighted by ``config.reward_weights``);
        None = the env's ``reward_fn``.
      run_dir, checkpoint_every, keep_checkpoints, auto_resume, strategy: see
        :class:`~tf_rl_text.trainers.base.Trainer`.

    One :meth:`step` = one generation batch (``env.batch_size`` prompts x ``num_generations``) and its
    ``num_iterations`` updates; a checkpoint never falls between the updates of one batch.
    """

    algorithm = "GRPO"
    config_class = GRPOConfig
    unit = "batch"
    resume_must_match = ("num_generations", "num_iterations", "loss_type", "scale_rewards")
    group_size_field = "num_generations"

    def make_source(self):
        return EnvRollouts(self.env, self.agent, self.config.num_generations, self.rewards)

    def __init__(self, agent, env, config: GRPOConfig | None = None, reward_funcs=None, **kwargs):
        super().__init__(agent, env, config, **kwargs)
        cfg = self.config
        self.rewards = None
        if reward_funcs is not None or env.reward_fn is not None:  # (a ConversationEnv's other side rewards)
            functions = reward_funcs if reward_funcs is not None else {_name_of(env.reward_fn): env.reward_fn}
            items = named_functions(functions, "reward_funcs is empty; give at least one reward function")
            if cfg.reward_weights is not None and len(cfg.reward_weights) != len(items):
                raise ValueError(f"reward_weights has {len(cfg.reward_weights)} weights for {len(items)} reward "
                                 f"functions ({', '.join(n for n, _ in items)}); give one weight per function")
            self.rewards = CompositeReward(dict(items), cfg.reward_weights)
        """The weighted reward functions (a :class:`~tf_rl_text.rewards.composite.CompositeReward`): they score
        this trainer's rollouts and evaluations (:attr:`reward_fn`), each function's values in ``.last``."""
        self.optimizer.build(agent.trainable_variables)  # slots now, so the update traces once
        self.ref_model = agent.clone_model() if cfg.kl_coef > 0 else None
        self._end_ids = self._end_token_ids(required=cfg.mask_truncated_completions)
        self.iteration_stats: list[dict] = []
        """The last step's statistics of each of its ``num_iterations`` updates."""
        seq = tf.TensorSpec([None, None], tf.int32)
        tok = tf.TensorSpec([None, None], tf.float32)
        num = tf.TensorSpec([], tf.float32)
        self._score = agent.compile_fn(self._score_step, [seq] * 4)
        self._grads = agent.compile_fn(self._grad_step, [seq] * 4 + [tf.TensorSpec([None], tf.float32), tok, tok,
                                                                     num, num])

    @property
    def reward_fn(self):
        """The weighted reward functions score this trainer's rollouts (the env's own reward is left alone)."""
        return self.rewards

    def _end_token_ids(self, required: bool):
        """The tokens that end a completion (EOS, stop tokens): a completion at the budget without one was cut."""
        ends = [self.env.eos_token_id] if self.env.eos_token_id is not None else []
        stops = self.env.sampling.get("stop_token_ids")
        if stops is None:
            stops = getattr(self.agent, "stop_token_ids", None)
        ends += [int(t) for t in np.asarray(stops if stops is not None else [], np.int64).reshape(-1)]
        if required and not ends:
            raise ValueError("mask_truncated_completions=True needs an end token to tell finished completions from "
                             "cut ones, and the tokenizer has no EOS and no stop_token_ids are set; set one, or "
                             "set mask_truncated_completions=False")
        return ends

    # ------------------------------------------------------------------ graph
    def _score_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask):
        """No gradient, once per batch: log pi_old (B, T), recorded before the first update (only when
        num_iterations > 1) and log pi_ref (B, T) (only when kl_coef > 0); zeros where not needed."""
        zeros = tf.zeros(tf.shape(completion_ids), tf.float32)
        old = ref = zeros
        if self.config.num_iterations > 1:
            old = self.agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask)
        if self.ref_model is not None:
            ref = self.agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask, model=self.ref_model)
        return old, ref

    def _grad_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, advantages, old_logp, ref_logp,
                   total_rows, total_tokens):
        """Gradients of one chunk's share of the batch loss, and its share of every logged mean."""
        cfg = self.config
        mask = tf.cast(completion_mask, tf.float32)
        variables = self.agent.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.agent.completion_logits(prompt_ids, prompt_mask, completion_ids, completion_mask)
            log_softmax = tf.nn.log_softmax(logits, axis=-1)  # (B, T, V), once: the logged entropy reuses it
            logp = tf.gather(log_softmax, completion_ids, axis=-1, batch_dims=2) * mask  # (B, T)
            # the first update of a batch: pi_old is the current policy (rho = 1), no recorded log-probs needed
            old = tf.stop_gradient(logp) if cfg.num_iterations == 1 else old_logp
            if cfg.num_iterations == 1 and self.ref_model is not None:  # scored here, beside the policy's forward
                ref_logp = self.agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask,
                                                model=self.ref_model)  # (independent ops: they run in parallel)
            losses, parts = grpo_token_losses(logp, old, advantages, mask, cfg.epsilon, cfg.epsilon_high, cfg.delta,
                                              cfg.importance_sampling_level, ref_logp if cfg.kl_coef else None, cfg.kl_coef)
            loss = aggregate_token_losses(losses, mask, cfg.loss_type, total_rows, total_tokens,
                                          self.env.max_new_tokens)
        grads = tape.gradient(loss, variables)
        per_token = tf.maximum(total_tokens, 1.0)  # token means over the whole batch, in chunk shares
        low, high = (tf.reduce_sum(parts[k]) / per_token for k in ("low", "high"))
        entropy = ops.entropy_from_log_probs(tf.stop_gradient(log_softmax))  # (B, T), logged only
        return grads, {"loss": loss, "clip_ratio/low_mean": low, "clip_ratio/high_mean": high,
                       "clip_ratio/region_mean": low + high, "kl": tf.reduce_sum(parts["kl"]) / per_token,
                       "entropy": ops.masked_sum(entropy, mask) / per_token}

    # ------------------------------------------------------------------ python loop
    def _scores(self, tensors):
        """(old log-probs, reference log-probs), each (B, T), scored once per batch in the update's chunks when
        num_iterations > 1 (zeros where not needed). With one iteration nothing is scored here: rho = 1, and
        the update scores the reference in the same graph as the policy (the two forwards run in parallel)."""
        if self.config.num_iterations == 1:  # rho = 1, and the update scores the reference itself
            zeros = tf.zeros(tf.shape(tensors[2]), tf.float32)
            return zeros, zeros
        rows = int(tensors[0].shape[0])
        k = min(rows, self.config.grad_accumulation_steps)
        if k == 1:
            return self._score(*tensors)
        parts = [self._score(*[tf.gather(t, index) for t in tensors]) for index in np.array_split(np.arange(rows), k)]
        return [tf.concat([p[i] for p in parts], axis=0) for i in range(2)]

    def score(self, batch, per_token: bool = False):
        """Group-relative advantages of the rollout (one per completion), the truncated completions' mask,
        dynamic sampling's rows, and the group and reward-function figures. ``per_token``: also log-probs,
        entropy, KL (k3, GRPO's) and each completion's advantage on every one of its tokens."""
        cfg = self.config
        g = cfg.num_generations
        rewards = batch.rewards.astype(np.float64)
        groups = rewards.reshape(-1, g)
        zero_std = np.isclose(groups.std(axis=1), 0.0)
        advantages = group_advantages(batch.rewards, g, cfg.scale_rewards).numpy()
        lengths = batch.completion_mask.sum(axis=1)
        truncated = truncated_rows(batch.completion_ids, batch.completion_mask, self.env.max_new_tokens,
                                   self._end_ids)
        completion_mask = batch.completion_mask * (~truncated)[:, None] if cfg.mask_truncated_completions \
            else batch.completion_mask
        keep = np.repeat(~zero_std, g) if cfg.dynamic_sampling else np.ones(len(rewards), bool)
        stats = {
            "reward": float(rewards.mean()), "reward_mean": float(rewards.mean()),
            "reward_std": float(groups.std(axis=1).mean()),
            "frac_reward_zero_std": float(zero_std.mean()),
            "completions/mean_length": float(lengths.mean()), "completions/min_length": float(lengths.min()),
            "completions/max_length": float(lengths.max()), "completions/clipped_ratio": float(truncated.mean()),
            "completion_length": float(lengths.mean()),
        }
        for name, values in (self.rewards.last if self.rewards is not None else {}).items():
            scored_values = values[~np.isnan(values)]
            stats[f"rewards/{name}/mean"] = float(scored_values.mean()) if scored_values.size else float("nan")
            stats[f"rewards/{name}/std"] = float(scored_values.std()) if scored_values.size else float("nan")
        tensors = [tf.constant(x[keep]) for x in (batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                                  completion_mask)] if keep.any() else []
        scored = Scored(batch, tensors, np.asarray(batch.rewards, np.float32),
                        extra={"advantages": advantages, "keep": keep, "stats": stats})
        if per_token:
            ids = rollout_ids(batch)
            mask = tf.cast(ids[3], tf.float32)
            scored.tokens = dict(self.token_scores(ids, estimator="low_var"),  # GRPO's KL term is k3
                                 advantage=tf.constant(advantages, tf.float32)[:, None] * mask)
        return scored

    def optimize(self, scored) -> dict:
        """``num_iterations`` updates on the kept rows (none when dynamic sampling dropped every group);
        returns the mean of their statistics."""
        cfg = self.config
        keep = scored.extra["keep"]
        self.iteration_stats = []
        if not keep.any():  # dynamic sampling dropped every group: nothing to learn from this batch
            return {"loss": float("nan"), "entropy": float("nan")}
        tensors = scored.tensors
        old_logp, ref_logp = self._scores(tensors)
        batch = tensors + [tf.constant(scored.extra["advantages"][keep], tf.float32), old_logp, ref_logp]
        chunks = min(int(keep.sum()), cfg.grad_accumulation_steps)  # dynamic sampling may leave fewer rows
        for _ in range(cfg.num_iterations):
            info = self.check_update(self.accumulate(self._grads, batch, self.agent.trainable_variables, chunks))
            self.num_updates += 1
            self.iteration_stats.append({k: float(v) for k, v in info.items()})
        out = {key: float(np.mean([s[key] for s in self.iteration_stats])) for key in self.iteration_stats[0]}
        if not cfg.kl_coef:
            out.pop("kl", None)
        return out

    def statistics(self, batch, scored, info) -> dict:
        """GRPO's figures (TRL's names: the group std, the reward functions', the clipped share) and the updates'."""
        stats = dict(scored.extra["stats"], **info)
        own = getattr(self.env, "statistics", None)  # a ConversationEnv's: per-episode returns, turns, faults
        if own is not None:
            stats.update(own(batch))
        stats.update(kl_coef=float(self.config.kl_coef), gradient_steps=len(self.iteration_stats), update=self.num_updates)
        return stats

    def _postfix(self, stats) -> dict:
        shown = {"reward": f"{stats['reward']:.3f}"}
        if "kl" in stats:
            shown["kl"] = f"{stats['kl']:.3f}"
        return shown

    # ------------------------------------------------------------------ export
    def export_train_step(self):
        """One GRPO update (pi_old = the current policy, as in a batch's first iteration) as the
        SavedModel's ``train_step``: f(input_ids, attention_mask, completion_ids, completion_mask,
        advantages) -> {"loss"}, prompts (B, P), completions (B, T), advantages (B,) one per completion.
        The loss is the same per-token clipped loss and ``loss_type`` aggregation as training (no KL
        term: the export carries no reference model). Returns (fn, signature)."""
        cfg, max_tokens = self.config, self.env.max_new_tokens

        def loss_of(logp, completion_mask, advantages):
            mask = tf.cast(completion_mask, tf.float32)
            logp = logp * mask
            losses, _ = grpo_token_losses(logp, tf.stop_gradient(logp), advantages, mask, cfg.epsilon,
                                          cfg.epsilon_high, cfg.delta, cfg.importance_sampling_level)
            return aggregate_token_losses(losses, mask, cfg.loss_type, tf.cast(tf.shape(mask)[0], tf.float32),
                                          tf.reduce_sum(mask), max_tokens)

        return self.completion_train_step(loss_of, [tf.TensorSpec([None], tf.float32, name="advantages")], "GRPO")

    def _export_kwargs(self):
        return {"train_step": self.export_train_step(), "metadata": {"algorithm": "grpo"}}


def _name_of(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


__all__ = ["GRPOConfig", "GRPOTrainer", "group_advantages", "grpo_token_losses",
           "aggregate_token_losses", "truncated_rows", "LOSS_TYPES"]
