"""REINFORCE for language models (Williams 1992), with the baselines practitioners use.

    L = -(1/B) sum_i sum_t (G_it - b_i) log pi(a_it | s_it)  -  c_e * mean_t H(pi(. | s_it))

G_t is the return-to-go with discount ``gamma`` of the per-token rewards: the task reward R at
the last token, minus ``kl_coef * (log pi - log pi_ref)`` at every token when the KL leash to a
frozen copy of the starting model is on. Baselines b (all leave the gradient unbiased):

* ``"none"``;
* ``"moving_average"``: an exponential moving average of R over past batches;
* ``"self_critical"``: R of the greedy decode of the same prompt (SCST, Rennie et al. 2017);
* ``"rloo"``: leave-one-out mean over k samples per prompt (Kool et al. 2019; Ahmadian et al. 2024);
* ``"grpo"``: R is replaced by its group-normalised value (R - mean_g) / (std_g + eps)
  over k samples per prompt (Shao et al. 2024), with no further baseline.

Example::

    trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="rloo", num_samples_per_prompt=4))
    for episode in range(100):
        stats = trainer.step()
    trainer.export("saved_models/my_policy")
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import tf
from tf_rl_text.experience import Scored, rollout_ids
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.validation import check, is_int_at_least

BASELINES = ("none", "moving_average", "self_critical", "rloo", "grpo")
KL_ESTIMATORS = ("kl", "abs", "mse", "low_var")


@dataclasses.dataclass
class ReinforceConfig(TrainerConfig):
    """Settings of :class:`ReinforceTrainer` (validated on construction). The optimizer, schedule,
    clipping and accumulation fields come from :class:`~tf_rl_text.trainers.base.TrainerConfig`."""

    gamma: float = 1.0
    """Discount of the return-to-go; 1.0 = every token gets the full sequence reward."""
    baseline: str = "moving_average"
    """One of "none", "moving_average", "self_critical", "rloo", "grpo"."""
    num_samples_per_prompt: int = 1
    """k completions per prompt in a batch; "rloo" and "grpo" need k >= 2."""
    baseline_decay: float = 0.9
    """Decay of the moving-average baseline: b <- decay * b + (1 - decay) * mean(R)."""
    kl_coef: float = 0.0
    """beta of the per-token KL penalty to a frozen copy of the starting model (0 = off)."""
    kl_estimator: str = "kl"
    """Per-token KL estimate: "kl" (log ratio), "abs", "mse" or "low_var" (see ops.kl_penalty)."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus (mean entropy over completion tokens)."""
    normalize_advantages: bool = False
    """Whiten advantages over the batch's completion tokens (tf-agents' default for REINFORCE)."""
    reward_normalization: bool = False
    """Rescale task rewards by their running mean/std over all batches so far, before the baseline
    (rewards.RewardNormalizer; Engstrom et al. 2020)."""
    reward_clip: float | None = None
    """Clip task rewards (after normalisation, if on) to [-reward_clip, reward_clip]; None = off."""
    mle_coef: float = 0.0
    """lambda of a mixed objective L = L_RL + lambda * L_MLE (Paulus et al. 2018): L_MLE is the mean
    token negative log-likelihood of each batch prompt's reference (the first one of a list, cut at
    the env's max_new_tokens, followed by EOS), given the prompt. It keeps the policy near the data
    while RL moves it; the env must have references. 0 = off."""
    log_entropy: bool = True
    """Log the policy's mean full-vocabulary entropy when there is no entropy bonus (a pass over the
    (B, T, V) log-probabilities each update); False skips it and logs NaN."""
    jit_compile: bool = False
    """Compile the update with XLA (one compile per batch shape; see benchmarks/README.md for when it pays)."""

    def validate(self):
        super().validate()
        check(0.0 <= self.gamma <= 1.0, "gamma", "in [0, 1]", self.gamma)
        check(self.baseline in BASELINES, "baseline", f"one of {BASELINES}", self.baseline)
        check(is_int_at_least(self.num_samples_per_prompt, 1), "num_samples_per_prompt", "an integer >= 1",
              self.num_samples_per_prompt)
        if self.baseline in ("rloo", "grpo") and self.num_samples_per_prompt < 2:
            raise ValueError(
                f"baseline={self.baseline!r} needs num_samples_per_prompt >= 2, got {self.num_samples_per_prompt}"
            )
        check(0.0 <= self.baseline_decay < 1.0, "baseline_decay", "in [0, 1)", self.baseline_decay)
        check(self.kl_coef >= 0, "kl_coef", ">= 0", self.kl_coef)
        check(self.kl_estimator in KL_ESTIMATORS, "kl_estimator", f"one of {KL_ESTIMATORS}", self.kl_estimator)
        check(self.entropy_coef >= 0, "entropy_coef", ">= 0", self.entropy_coef)
        check(self.reward_clip is None or self.reward_clip > 0, "reward_clip", "> 0 or None", self.reward_clip)
        check(self.mle_coef >= 0, "mle_coef", ">= 0", self.mle_coef)


# --------------------------------------------------------------------------- pure functions
def compute_baseline(rewards, kind, k=1, moving_average=0.0, greedy_rewards=None):
    """Per-sequence baseline b_i for the rewards (B,) of a batch (k samples per prompt)."""
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    if kind in ("none", "grpo"):
        return tf.zeros_like(rewards)
    if kind == "moving_average":
        return tf.fill(tf.shape(rewards), tf.cast(moving_average, tf.float32))
    if kind == "self_critical":
        if greedy_rewards is None:
            raise ValueError("the self-critical baseline needs the rewards of the greedy decodes")
        return tf.convert_to_tensor(greedy_rewards, tf.float32)
    if kind == "rloo":
        return ops.leave_one_out_baseline(rewards, k)
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")


def reinforce_advantages(rewards, baseline, mask, gamma=1.0, kl=None, kl_coef=0.0):
    """A_t = G_t - b over completion tokens: (B, T), 0 on padding.

    rewards, baseline: (B,); mask: (B, T); kl: optional (B, T) per-token KL estimate.
    Per-token rewards are R at the last token minus ``kl_coef * kl`` at every token.
    """
    token_rewards = ops.last_token_rewards(rewards, mask)  # (B, T)
    if kl is not None:
        token_rewards -= kl_coef * kl
    returns = ops.discounted_returns(token_rewards, mask, gamma)  # (B, T)
    return (returns - baseline[:, None]) * tf.cast(mask, returns.dtype)


def reinforce_loss(logp, mask, advantages, entropy=None, entropy_coef=0.0):
    """The REINFORCE loss: a per-sequence sum over tokens, averaged over the batch.

    L = -(1/B) sum_i sum_t A_it * logp_it  -  entropy_coef * (mean entropy over masked tokens).
    logp, mask, advantages, entropy: (B, T). Returns (loss, info: dict of scalars).
    """
    mask = tf.cast(mask, logp.dtype)
    policy_loss = -tf.reduce_mean(tf.reduce_sum(tf.stop_gradient(advantages) * logp * mask, axis=1))
    mean_entropy = ops.masked_mean(entropy, mask) if entropy is not None else tf.constant(0.0, logp.dtype)
    loss = policy_loss - entropy_coef * mean_entropy
    return loss, {"policy_loss": policy_loss, "entropy": mean_entropy}


# --------------------------------------------------------------------------- trainer
class RewardBaselines:
    """The baseline and reward-scaling state shared by :class:`ReinforceTrainer` and the choice
    REINFORCE trainer: the optional :class:`~tf_rl_text.rewards.RewardNormalizer`, the moving
    average, :meth:`_baseline` (config ``baseline``, ``baseline_decay``, ``num_samples_per_prompt``)
    and their place in the checkpoint's Python state. A trainer calls :meth:`_init_baselines` in
    its ``__init__``; :meth:`_greedy_rewards` is the one env-specific piece (self-critical)."""

    def _init_baselines(self):
        self.moving_average = None  # initialised from the first batch's mean reward
        self.reward_normalizer = None
        if self.config.reward_normalization or self.config.reward_clip is not None:
            from tf_rl_text.rewards.composite import RewardNormalizer

            self.reward_normalizer = RewardNormalizer(normalize=self.config.reward_normalization,
                                                      clip=self.config.reward_clip)

    def _python_state(self):
        norm = self.reward_normalizer
        return {"moving_average": self.moving_average,
                "reward_normalizer": None if norm is None else norm.state_dict()}

    def _load_python_state(self, state):
        self.moving_average = state["moving_average"]
        if self.reward_normalizer is not None and state.get("reward_normalizer") is not None:
            self.reward_normalizer.load_state_dict(state["reward_normalizer"])

    def _greedy_rewards(self, rollout, k):
        """Rewards of the greedy completion of every k-th row's prompt (the self-critical baseline)."""
        return self.env.rollout(self.agent, greedy=True, prompts=rollout.prompts[::k],
                                references=rollout.references[::k]).rewards

    def _baseline(self, rollout):
        """(rewards, baseline) of a rollout: rewards normalised / clipped when configured (GRPO: the
        group-normalised advantages), the baseline of ``config.baseline``; updates the moving average."""
        cfg = self.config
        rewards = rollout.rewards
        if self.reward_normalizer is not None:  # running mean/std and clipping of the task reward
            rewards = self.reward_normalizer(rewards)
        greedy_rewards = None
        if cfg.baseline == "self_critical":
            k = cfg.num_samples_per_prompt
            greedy_rewards = self._greedy_rewards(rollout, k)
            if self.reward_normalizer is not None:  # same scale as the sampled rewards, statistics unchanged
                greedy_rewards = self.reward_normalizer(greedy_rewards, update=False)
            greedy_rewards = np.repeat(greedy_rewards, k)
        if cfg.baseline == "moving_average" and self.moving_average is None:
            self.moving_average = float(np.mean(rewards))
        baseline = compute_baseline(
            rewards, cfg.baseline, cfg.num_samples_per_prompt, self.moving_average or 0.0, greedy_rewards
        )
        if cfg.baseline == "moving_average":
            self.moving_average = cfg.baseline_decay * self.moving_average + (1 - cfg.baseline_decay) * float(
                np.mean(rewards)
            )
        if cfg.baseline == "grpo":
            rewards = ops.group_normalized_advantages(tf.constant(rewards), cfg.num_samples_per_prompt).numpy()
        return rewards, baseline


class ReinforceTrainer(RewardBaselines, Trainer):
    """REINFORCE with baselines, a KL leash and an entropy bonus; the update is one compiled graph.

    Args:
      agent: the :class:`~tf_rl_text.RLAgent` to train.
      env: the :class:`~tf_rl_text.TextGenerationEnv` that supplies prompts and rewards.
      config: a :class:`ReinforceConfig`.
      run_dir, checkpoint_every, keep_checkpoints: checkpointing (see :class:`~tf_rl_text.trainers.base.Trainer`).

    Each :meth:`step` is one batch of episodes (``env.batch_size`` prompts x
    ``num_samples_per_prompt`` samples) followed by one gradient update.
    """

    algorithm = "REINFORCE"
    config_class = ReinforceConfig
    group_size_field = "num_samples_per_prompt"

    def __init__(self, agent, env, config: ReinforceConfig | None = None, **kwargs):
        super().__init__(agent, env, config, **kwargs)
        self.optimizer.build(agent.trainable_variables)  # slots now, so the update traces once
        self.ref_model = agent.clone_model() if self.config.kl_coef > 0 else None
        self._init_baselines()
        seq = tf.TensorSpec([None, None], tf.int32)
        vec = tf.TensorSpec([None], tf.float32)
        tok = tf.TensorSpec([None, None], tf.float32)
        num = tf.TensorSpec([], tf.float32)
        if self.config.mle_coef > 0 and self.distributed:
            raise ValueError(f"mle_coef={self.config.mle_coef} (the mixed objective) does not support a "
                             "distribution strategy yet: train on one device or set mle_coef=0")
        mixed = [seq, seq] if self.config.mle_coef > 0 else []  # the references of the MLE term
        # the whole batch's gradient (KL and advantages inside the tape), for the update runner's one-chunk case
        batch_fn = self._mixed_batch_grad_step if mixed else self._batch_grad_step
        self._batch_grads = agent.compile_fn(batch_fn, [seq, seq, seq, seq, vec, vec, *mixed, num, num],
                                             jit_compile=self.config.jit_compile)
        self._advantages = agent.compile_fn(self._advantages_step, [seq, seq, seq, seq, vec, vec])
        if self.config.mle_coef > 0:  # + each row's reference (masked out but for a prompt's first sample), weight
            self._grads = agent.compile_fn(self._mixed_grad_step, [seq, seq, seq, seq, tok, seq, seq, vec, num, num])
        else:
            self._grads = agent.compile_fn(self._grad_step, [seq, seq, seq, seq, tok, num, num])

    # ------------------------------------------------------------------ graph
    def reference_log_probs(self, prompt_ids, prompt_mask, completion_ids, completion_mask):
        """log pi_ref of the completion tokens under the frozen reference model: (B, T)."""
        return self.agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask, model=self.ref_model)

    def _kl_and_advantages(self, logp, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, baseline):
        """(per-token KL or None, advantages (B, T) before whitening) from log pi (B, T) of the completions."""
        cfg = self.config
        mask = tf.cast(completion_mask, tf.float32)
        kl = None
        if self.ref_model is not None:
            ref_logp = self.reference_log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask)
            kl = ops.kl_penalty(tf.stop_gradient(logp), ref_logp, mask, cfg.kl_estimator)
        return kl, reinforce_advantages(rewards, baseline, mask, cfg.gamma, kl, cfg.kl_coef)

    def _batch_grad_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, baseline,
                         total_rows=None, total_tokens=None, reference_ids=None, reference_mask=None):
        """The gradient of the whole batch's loss, its KL and advantages computed inside the tape (one
        forward pass of the policy): the update runner's one-chunk case (``total_rows``/``total_tokens``
        are the batch's own). reference_ids/mask (B / k, T_ref): the prompts' references for the MLE
        term (only when ``mle_coef`` > 0)."""
        cfg = self.config
        mask = tf.cast(completion_mask, tf.float32)
        variables = self.agent.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.agent.completion_logits(prompt_ids, prompt_mask, completion_ids, completion_mask)  # (B,T,V)
            log_softmax = tf.nn.log_softmax(logits, axis=-1)  # (B, T, V), once: the entropy reuses it
            logp = tf.gather(log_softmax, completion_ids, axis=-1, batch_dims=2) * mask  # (B, T)
            entropy = None  # (B, T); only logged when there is no entropy bonus: no backward pass through it then
            if cfg.entropy_coef or cfg.log_entropy:
                entropy = ops.entropy_from_log_probs(log_softmax if cfg.entropy_coef else tf.stop_gradient(log_softmax))
            kl, advantages = self._kl_and_advantages(logp, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                                     rewards, baseline)
            if cfg.normalize_advantages:
                advantages = ops.masked_whiten(advantages, mask)
            loss, info = reinforce_loss(logp, mask, advantages, entropy, cfg.entropy_coef)
            mle_loss = tf.constant(0.0)
            if cfg.mle_coef > 0:  # the mixed objective: + lambda * token NLL of the references
                k = cfg.num_samples_per_prompt
                ref_mask = tf.cast(reference_mask, tf.float32)
                ref_logp = self.agent.log_probs(prompt_ids[::k], prompt_mask[::k], reference_ids, reference_mask)
                mle_loss = -ops.masked_mean(ref_logp, ref_mask)
                loss = loss + cfg.mle_coef * mle_loss
        grads = tape.gradient(loss, variables)
        kl_mean = ops.masked_sum(kl, mask) / tf.cast(tf.shape(mask)[0], tf.float32) if kl is not None else 0.0
        return grads, {
            "loss": loss,
            "policy_loss": info["policy_loss"],
            "entropy": info["entropy"] if entropy is not None else tf.constant(float("nan")),
            "kl": tf.convert_to_tensor(kl_mean, tf.float32),  # per-sequence KL, batch mean
            "advantage_mean": ops.masked_mean(advantages, mask),
            "mle_loss": mle_loss,
        }

    def _mixed_batch_grad_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, baseline,
                               reference_ids, reference_mask, total_rows, total_tokens):
        return self._batch_grad_step(prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, baseline,
                                     total_rows, total_tokens, reference_ids, reference_mask)

    # gradient accumulation: advantages of every chunk first (no gradient), then a gradient per chunk
    def _advantages_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, baseline):
        mask = tf.cast(completion_mask, tf.float32)
        logp = self.agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask) * mask
        kl, advantages = self._kl_and_advantages(logp, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                                 rewards, baseline)
        kl_sum = ops.masked_sum(kl, mask) if kl is not None else tf.constant(0.0)
        return advantages, kl_sum

    def _grad_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, advantages, total_rows,
                   total_tokens, mle=None):
        cfg = self.config
        mask = tf.cast(completion_mask, tf.float32)
        rows = tf.cast(tf.shape(mask)[0], tf.float32)
        tokens = tf.reduce_sum(mask)
        variables = self.agent.trainable_variables
        with tf.GradientTape() as tape:
            logits = self.agent.completion_logits(prompt_ids, prompt_mask, completion_ids, completion_mask)
            logp = ops.gather_log_probs(logits, completion_ids) * mask
            entropy = ops.entropy_from_logits(logits if cfg.entropy_coef else tf.stop_gradient(logits))
            _, info = reinforce_loss(logp, mask, advantages, entropy, cfg.entropy_coef)
            # this chunk's share of the batch loss: per-row mean x rows/B, per-token mean x tokens/N
            policy_part = info["policy_loss"] * rows / total_rows
            entropy_part = info["entropy"] * tokens / total_tokens
            loss = policy_part - cfg.entropy_coef * entropy_part
            out = {"policy_loss": policy_part, "entropy": entropy_part}
            if mle is not None:  # the mixed objective's share: - sum of this chunk's reference log-probs / N_ref
                reference_ids, reference_mask, weight = mle
                keep = tf.reduce_sum(reference_mask, axis=1) > 0  # rows that carry their prompt's reference

                def reference_nll():
                    ids, ids_mask, ref, ref_mask, w = (tf.boolean_mask(t, keep) for t in (
                        prompt_ids, prompt_mask, reference_ids, reference_mask, weight))
                    ref_logp = self.agent.log_probs(ids, ids_mask, ref, ref_mask)
                    return -tf.reduce_sum(ref_logp * tf.cast(ref_mask, tf.float32) * w[:, None])

                # a chunk may hold no prompt's first sample: no reference rows, no forward pass (an empty batch)
                mle_part = tf.cond(tf.reduce_any(keep), reference_nll, lambda: tf.constant(0.0))
                loss = loss + cfg.mle_coef * mle_part
                out["mle_loss"] = mle_part
        grads = tape.gradient(loss, variables)
        return grads, dict(out, loss=loss)

    def _mixed_grad_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, advantages, reference_ids,
                         reference_mask, weight, total_rows, total_tokens):
        """:meth:`_grad_step` plus the mixed objective's share (``mle_coef`` > 0)."""
        return self._grad_step(prompt_ids, prompt_mask, completion_ids, completion_mask, advantages, total_rows,
                               total_tokens, mle=(reference_ids, reference_mask, weight))

    def _row_references(self, references, rows):
        """The (B / k, T_ref) references of the mixed objective as per-row tensors for the chunks: row r gets
        its prompt's reference, masked out but for the prompt's first sample, and the weight 1 / N_ref (N_ref:
        the references' token count), so the chunks' shares sum to the unsplit term, a mean over N_ref."""
        ids, mask = references
        k = self.config.num_samples_per_prompt
        prompt_of_row = np.arange(rows) // k
        first = tf.constant((np.arange(rows) % k == 0).astype(np.int32))[:, None]
        weight = tf.fill([rows], 1.0 / tf.cast(tf.reduce_sum(mask), tf.float32))
        return [tf.gather(ids, prompt_of_row), tf.gather(mask, prompt_of_row) * first, weight]

    def _accumulated_update(self, tensors, rewards, baseline, references=()):
        cfg = self.config
        k = cfg.grad_accumulation_steps
        rows = int(tensors[0].shape[0])
        if k > rows:
            raise ValueError(f"grad_accumulation_steps={k} exceeds the batch's {rows} completions; lower it")
        parts, kl_sum = [], 0.0
        for index in np.array_split(np.arange(rows), k):
            chunk = [tf.gather(t, index) for t in tensors]
            adv, kl_part = self._advantages(*chunk, tf.gather(rewards, index), tf.gather(baseline, index))
            parts.append(adv)
            kl_sum += float(kl_part)
        width = int(tensors[3].shape[1])
        advantages = tf.concat([tf.pad(a, [[0, 0], [0, width - a.shape[1]]]) for a in parts], axis=0)
        mask = tf.cast(tensors[3], tf.float32)
        if cfg.normalize_advantages:
            advantages = ops.masked_whiten(advantages, mask)
        mixed = self._row_references(references, rows) if references else []
        info = self.accumulate(self._grads, [*tensors, advantages, *mixed], self.agent.trainable_variables, k)
        info["kl"] = kl_sum / rows
        info["advantage_mean"] = ops.masked_mean(advantages, mask)
        return info

    # ------------------------------------------------------------------ python loop
    def _reference_tensors(self, rollout):
        """(ids, mask) of each batch prompt's first reference for the MLE term; () when it is off."""
        if not self.config.mle_coef:
            return ()
        from tf_rl_text.trainers.mle import encode_texts

        refs = list(rollout.references)[:: self.config.num_samples_per_prompt]
        if any(r is None for r in refs):
            raise ValueError("mle_coef > 0 (the mixed objective) needs a reference for every prompt; this env's "
                             "prompts have none: build the env with references=... or set mle_coef=0")
        refs = [r if isinstance(r, str) else r[0] for r in refs]
        ids, mask = encode_texts(self.agent.tokenizer, refs, self.env.max_new_tokens)
        width = max(1, int(mask.sum(axis=1).max()))
        return tf.constant(ids[:, :width]), tf.constant(mask[:, :width])

    def score(self, batch, per_token: bool = False):
        """The rollout's rewards (normalised / clipped when configured) and baseline (the moving average
        moves; self-critical decodes greedily here); the KL and advantages are computed in the update's own
        forward pass. ``per_token``: also log-probs, entropy, KL and the advantage A_t of every token."""
        rewards, baseline = self._baseline(batch)
        tensors = rollout_ids(batch)
        scored = Scored(batch, tensors, np.asarray(batch.rewards, np.float32),
                        np.broadcast_to(np.asarray(baseline), np.shape(batch.rewards)),
                        extra={"shaped": tf.constant(rewards, tf.float32), "baseline": tf.cast(baseline, tf.float32)})
        if per_token:
            mask = tf.cast(tensors[3], tf.float32)
            scored.tokens = self.token_scores(tensors, estimator=self.config.kl_estimator)
            advantages, _ = self._advantages(*tensors, scored.extra["shaped"], scored.extra["baseline"])
            if self.config.normalize_advantages:
                advantages = ops.masked_whiten(advantages, mask)
            scored.tokens["advantage"] = advantages * mask
        return scored

    def optimize(self, scored) -> dict:
        """One update of the whole batch (in chunks / over replicas when configured)."""
        tensors, rewards, baseline = scored.tensors, scored.extra["shaped"], scored.extra["baseline"]
        references = self._reference_tensors(scored.batch)
        if self.config.grad_accumulation_steps > 1 or self.distributed:  # chunks / replicas: weighted shares
            out = self._accumulated_update(tensors, rewards, baseline, references)
        else:
            out = self.accumulate(self._batch_grads, [*tensors, rewards, baseline, *references],
                                  self.agent.trainable_variables, 1)
        self.check_update(out)  # NaN/Inf loss or gradients: nothing was applied, the step is refused
        self.num_updates += 1
        return out

    def statistics(self, batch, scored, info) -> dict:
        return dict(super().statistics(batch, scored, info), kl_coef=float(self.config.kl_coef))

    # ------------------------------------------------------------------ export
    def export_train_step(self):
        """The update as the SavedModel's ``train_step``: f(input_ids, attention_mask,
        completion_ids, completion_mask, advantages) -> {"loss"}, with prompts (B, P) as for
        ``generate`` and completions and their advantages A_t (B, T). Returns (fn, signature).
        """
        return self.completion_train_step(lambda logp, mask, advantages: reinforce_loss(logp, mask, advantages)[0],
                                          [tf.TensorSpec([None, None], tf.float32, name="advantages")], "REINFORCE")

    def _export_kwargs(self):
        return {"train_step": self.export_train_step(), "metadata": {"algorithm": "reinforce"}}


__all__ = ["ReinforceConfig", "ReinforceTrainer", "RewardBaselines", "reinforce_loss", "reinforce_advantages", "compute_baseline"]
