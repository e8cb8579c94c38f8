"""Direct preference optimisation (Rafailov et al. 2023) and its IPO and conservative variants.

For a prompt x with a preferred completion y_w and a dispreferred one y_l, with s(y) = log pi(y | x)
(the sum over the completion's tokens) and s_ref(y) the same under the frozen reference::

    h = (s(y_w) - s_ref(y_w)) - (s(y_l) - s_ref(y_l))
    "sigmoid" (DPO):            L = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)
                                     (eps = label_smoothing: conservative DPO, Mitchell 2023; 0 = DPO)
    "ipo" (Azar et al. 2023):   L = (h' - 1 / (2 beta))^2,  h' as h with per-token mean log-probs

averaged over the pairs of a batch. The implicit rewards beta (s(y) - s_ref(y)) are logged as TRL logs
them: ``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies`` (the share of
pairs whose chosen reward is higher), ``logps/chosen``, ``logps/rejected``.

The reference is a frozen copy of the starting model, or, under LoRA, the same model with its
adapters switched off (no copy), or ``precompute_ref_log_probs=True``: s_ref of every pair scored once
at construction (then no reference model is kept). One :meth:`step` is one batch of ``batch_size``
pairs drawn in shuffled epochs; its update goes through
:meth:`~tf_rl_text.trainers.base.Trainer.accumulate` (accumulation chunks and ``tf.distribute``
replicas split pairs, never a pair). Causal and encoder-decoder agents alike.

Example::

    pairs = load_preferences("prefs.jsonl")
    trainer = DPOTrainer(agent, pairs, DPOConfig(beta=0.1))
    trainer.train(200)
    print(trainer.evaluate_pairs(held_out))       # implicit-reward accuracy and margins on held-out pairs
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tf_rl_text._compat import tf
from tf_rl_text.experience import EnvRollouts, PreferencePairSource, Scored, encode_pairs, rollout_ids
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.validation import check, is_int_at_least, resolve_alias

DPO_LOSSES = ("sigmoid", "ipo")


@dataclasses.dataclass
class DPOConfig(TrainerConfig):
    """Settings of :class:`DPOTrainer` (TRL's ``DPOConfig`` names where it has the field)."""

    beta: float = 0.1
    """Strength of the implicit KL to the reference (higher: closer to it)."""
    loss_type: str = "sigmoid"
    """"sigmoid" (DPO, with label_smoothing: cDPO) or "ipo"."""
    label_smoothing: float = 0.0
    """eps of conservative DPO: the share of pairs assumed mislabelled, in [0, 0.5)."""
    batch_size: int = 8
    """Pairs per step."""
    max_new_tokens: int = 64
    """Tokens of each completion kept (then EOS); longer completions are cut (also what an export generates)."""
    max_completion_length: int | None = None
    """TRL's name for ``max_new_tokens``, accepted; afterwards it reads the same."""
    precompute_ref_log_probs: bool = False
    """Score every pair under the reference once at construction and keep no reference model."""
    seed: int | None = 0
    """Seed of the pair order (shuffled epochs)."""

    def __post_init__(self):
        resolve_alias(self, "max_new_tokens", "max_completion_length", 64)
        super().__post_init__()

    def validate(self):
        super().validate()
        check(self.beta > 0, "beta", "> 0", self.beta)
        check(self.loss_type in DPO_LOSSES, "loss_type", f"one of {DPO_LOSSES}", self.loss_type)
        check(0.0 <= self.label_smoothing < 0.5, "label_smoothing", "in [0, 0.5)", self.label_smoothing)
        if self.label_smoothing and self.loss_type != "sigmoid":
            raise ValueError(f"label_smoothing={self.label_smoothing} is conservative DPO, a sigmoid loss; set "
                             f"loss_type='sigmoid' or label_smoothing=0 (got loss_type={self.loss_type!r})")
        check(is_int_at_least(self.batch_size, 1), "batch_size", "an integer >= 1", self.batch_size)
        check(is_int_at_least(self.max_new_tokens, 1), "max_new_tokens", "an integer >= 1", self.max_new_tokens)


# --------------------------------------------------------------------------- pure functions
def dpo_loss(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=0.1, loss_type="sigmoid",
             label_smoothing=0.0):
    """Per-pair losses (B,) and implicit rewards (chosen, rejected), each (B,), from (B,) log-probabilities
    (sums over tokens for "sigmoid", per-token means for "ipo"; see the module docstring)."""
    chosen_ratio = chosen_logps - ref_chosen_logps
    rejected_ratio = rejected_logps - ref_rejected_logps
    h = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = -(1.0 - label_smoothing) * tf.math.log_sigmoid(beta * h) - label_smoothing * tf.math.log_sigmoid(
            -beta * h)
    elif loss_type == "ipo":
        losses = tf.square(h - 1.0 / (2.0 * beta))
    else:
        raise ValueError(f"loss_type must be one of {DPO_LOSSES}, got {loss_type!r}")
    return losses, beta * tf.stop_gradient(chosen_ratio), beta * tf.stop_gradient(rejected_ratio)


# --------------------------------------------------------------------------- trainer
class DPOTrainer(Trainer):
    """DPO / IPO / cDPO on preference pairs, on the trainer base (checkpoints, exact resume, callbacks,
    TensorBoard, export, ``strategy=``, LoRA, gradient accumulation).

    Args:
      agent: the :class:`~tf_rl_text.RLAgent` (causal or encoder-decoder) to train.
      pairs: the training :class:`~tf_rl_text.preferences.PreferencePairs`.
      config: a :class:`DPOConfig`.
      env: optional :class:`~tf_rl_text.TextGenerationEnv` whose reward scores the policy's completions in
        :meth:`evaluate` (the CLI's before/after numbers); DPO itself learns from the pairs only.
      run_dir, checkpoint_every, keep_checkpoints, auto_resume, strategy: see
        :class:`~tf_rl_text.trainers.base.Trainer`.
    """

    algorithm = "DPO"
    config_class = DPOConfig
    unit = "batch"
    resume_must_match = ("loss_type", "batch_size", "max_new_tokens")

    def __init__(self, agent, pairs, config: DPOConfig | None = None, env=None, **kwargs):
        cfg = config if config is not None else self.config_class()
        self.source = PreferencePairSource(pairs, agent, cfg.batch_size, cfg.max_new_tokens,
                                           seed=agent.seed if cfg.seed is None else cfg.seed)
        self.pairs = pairs
        self._init_dpo(agent, env, cfg, **kwargs)

    @classmethod
    def for_run(cls, agent, env, config, pairs, **kwargs):
        """How a config-built run makes this trainer (:func:`tf_rl_text.workflow.build`): DPO learns from the
        ``pairs()`` (called only here, so only DPO runs make them); ``env`` scores its evaluations."""
        return cls(agent, pairs(), config, env=env, **kwargs)

    def _init_dpo(self, agent, env, cfg, **kwargs):
        """The base trainer (``env``: what evaluations roll out in, or None), the reference and the compiled
        update."""
        super().__init__(agent, env, cfg, **kwargs)
        cfg = self.config
        self.optimizer.build(agent.trainable_variables)
        seq = tf.TensorSpec([None, None], tf.int32)
        vec = tf.TensorSpec([None], tf.float32)
        num = tf.TensorSpec([], tf.float32)
        self._score_fns = {}
        reference = agent.clone_model()  # a frozen copy (LoRA: the adapters-off view)
        self.ref_model = None if cfg.precompute_ref_log_probs else reference
        self._ref_table = None
        if cfg.precompute_ref_log_probs:  # s_ref of every pair now; the reference is not kept
            table = self._score_pairs(self.source.encoded, reference)
            self._score_fns.pop(id(reference))
            self._ref_table = tf.Variable(table, trainable=False, name="ref_log_probs")
        del reference
        self._grads = agent.compile_fn(self._grad_step, [seq] * 6 + [vec, vec, num, num])

    def _trackables(self):
        out = super()._trackables()
        if self._ref_table is not None:
            out["ref_log_probs"] = self._ref_table
        return out

    # ------------------------------------------------------------------ graph
    def _completion_logps(self, prompt_ids, prompt_mask, completion_ids, completion_mask, model=None):
        """Per-pair s(y): the sum ("sigmoid") or per-token mean ("ipo") of log pi of the completion tokens: (B,)."""
        mask = tf.cast(completion_mask, tf.float32)
        logp = self.agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask, model=model) * mask
        total = tf.reduce_sum(logp, axis=1)
        if self.config.loss_type == "ipo":
            total = total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return total

    def _score_fn(self, model):
        """A compiled ``(prompt ids, mask, completion ids, mask) -> s(y)`` (B,) under ``model`` (None: the policy)."""
        key = id(model)
        if key not in self._score_fns:
            seq = tf.TensorSpec([None, None], tf.int32)
            self._score_fns[key] = self.agent.compile_fn(
                lambda a, b, c, d: self._completion_logps(a, b, c, d, model), [seq] * 4)
        return self._score_fns[key]

    def _score_pairs(self, encoded, model, chunk: int = 64):
        """(N, 2) s(y_w), s(y_l) of every encoded pair under ``model`` (None: the policy; no gradient), in chunks."""
        ids, mask, c_ids, c_mask, r_ids, r_mask = encoded
        fn = self._score_fn(model)
        out = []
        for start in range(0, len(ids), chunk):
            sl = slice(start, start + chunk)
            out.append(np.stack([fn(ids[sl], mask[sl], comp[sl], comp_mask[sl]).numpy()
                                 for comp, comp_mask in ((c_ids, c_mask), (r_ids, r_mask))], axis=1))
        return np.concatenate(out, axis=0).astype(np.float32)

    def _grad_step(self, prompt_ids, prompt_mask, chosen_ids, chosen_mask, rejected_ids, rejected_mask,
                   ref_chosen, ref_rejected, total_rows, total_tokens):
        """Gradients of one chunk's share (its pairs / all pairs) of the batch's mean loss, and its share of
        every logged mean. Chosen and rejected go through the model as one batch."""
        cfg = self.config
        rows = tf.shape(prompt_ids)[0]
        width = tf.maximum(tf.shape(chosen_ids)[1], tf.shape(rejected_ids)[1])

        def pad(x):
            return tf.pad(x, [[0, 0], [0, width - tf.shape(x)[1]]])

        both_prompt = tf.concat([prompt_ids, prompt_ids], axis=0)
        both_prompt_mask = tf.concat([prompt_mask, prompt_mask], axis=0)
        both = tf.concat([pad(chosen_ids), pad(rejected_ids)], axis=0)
        both_mask = tf.concat([pad(chosen_mask), pad(rejected_mask)], axis=0)
        share = tf.cast(rows, tf.float32) / total_rows
        variables = self.agent.trainable_variables
        with tf.GradientTape() as tape:
            logps = self._completion_logps(both_prompt, both_prompt_mask, both, both_mask)  # (2B,)
            chosen, rejected = logps[:rows], logps[rows:]
            losses, chosen_rewards, rejected_rewards = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, cfg.beta,
                                                                cfg.loss_type, cfg.label_smoothing)
            loss = tf.reduce_mean(losses) * share
        grads = tape.gradient(loss, variables)
        mean = lambda x: tf.reduce_mean(tf.cast(x, tf.float32)) * share  # noqa: E731
        return grads, {"loss": loss, "rewards/chosen": mean(chosen_rewards), "rewards/rejected": mean(rejected_rewards),
                       "rewards/margins": mean(chosen_rewards - rejected_rewards),
                       "rewards/accuracies": mean(chosen_rewards > rejected_rewards),
                       "logps/chosen": mean(tf.stop_gradient(chosen)), "logps/rejected": mean(tf.stop_gradient(rejected))}

    # ------------------------------------------------------------------ python loop
    def _reference(self, indices, batch):
        """(B, 2) reference s(y_w), s(y_l) of a batch: the precomputed table's rows, or scored now."""
        if self._ref_table is not None:
            return tf.gather(self._ref_table, indices).numpy()
        return self._score_pairs(batch, self.ref_model, chunk=len(indices))

    def score(self, batch, per_token: bool = False):
        """The reference's s(y_w), s(y_l) of a :class:`~tf_rl_text.experience.PairBatch` (the precomputed table's
        rows, or scored now), beside the pairs' tokens."""
        if per_token:
            raise ValueError("DPO scores preference pairs, not sampled tokens: explain(trainer.agent, prompts, "
                             "reference=...) shows the policy's tokens")
        ref = self._reference(batch.indices, batch.columns)
        return Scored(batch, [tf.constant(x) for x in batch.columns] + [tf.constant(ref[:, 0]), tf.constant(ref[:, 1])])

    def optimize(self, scored) -> dict:
        """One DPO update on the scored pairs."""
        info = self.check_update(self.accumulate(self._grads, scored.tensors, self.agent.trainable_variables))
        self.num_updates += 1
        return info

    def _postfix(self, stats) -> dict:
        return {"loss": f"{stats['loss']:.3f}", "margin": f"{stats['rewards/margins']:.2f}",
                "acc": f"{stats['rewards/accuracies']:.2f}"}

    def evaluate_pairs(self, pairs=None) -> dict:
        """On ``pairs`` (default: the training pairs), with the current policy: ``accuracy`` (share of pairs
        whose implicit reward ranks chosen first), ``margin`` (mean implicit-reward margin), ``loss`` (mean
        DPO loss) and ``logp_margin`` (mean s(y_w) - s(y_l) of the policy itself)."""
        pairs = self.pairs if pairs is None else pairs
        encoded = encode_pairs(self.agent, pairs, self.config.max_new_tokens)
        policy = self._score_pairs(encoded, None)
        reference = self.ref_model
        if reference is None and pairs is self.pairs:
            ref = self._ref_table.numpy()
        elif reference is None:
            raise ValueError("evaluate_pairs on new pairs needs a reference model, and this trainer precomputed its "
                             "reference log-probs for the training pairs only (precompute_ref_log_probs=True)")
        else:
            ref = self._score_pairs(encoded, reference)
        losses, cr, rr = dpo_loss(tf.constant(policy[:, 0]), tf.constant(policy[:, 1]), tf.constant(ref[:, 0]),
                                  tf.constant(ref[:, 1]), self.config.beta, self.config.loss_type,
                                  self.config.label_smoothing)
        cr, rr = cr.numpy(), rr.numpy()
        return {"accuracy": float(np.mean(cr > rr)), "margin": float(np.mean(cr - rr)),
                "loss": float(np.mean(losses.numpy())), "logp_margin": float(np.mean(policy[:, 0] - policy[:, 1])),
                "pairs": len(pairs)}

    def evaluate(self, prompts=None, references=None, greedy: bool = True, seed: int = 0) -> float:
        """With a reward env (``env=``): the mean reward of (greedy by default) completions of ``prompts``
        (default: the env's prompts), as every trainer's ``evaluate``. Without one: the implicit-reward accuracy
        on the training pairs (:meth:`evaluate_pairs` has every pair metric)."""
        if self.env is None:
            if prompts is not None:
                raise ValueError("evaluate(prompts) needs a reward to score completions: build the trainer with env=a "
                                 "TextGenerationEnv, or use evaluate_pairs(pairs)")
            return self.evaluate_pairs()["accuracy"]
        return super().evaluate(prompts, references, greedy, seed)  # rolls out in the reward env

    # ------------------------------------------------------------------ export
    def _export_kwargs(self):
        name = self.algorithm.lower().replace(" ", "_")
        return {"metadata": {"algorithm": name, "beta": self.config.beta, "loss_type": self.config.loss_type}}


# --------------------------------------------------------------------------- online DPO
@dataclasses.dataclass
class OnlineDPOConfig(DPOConfig):
    """Settings of :class:`OnlineDPOTrainer`: :class:`DPOConfig`'s, with the pairs sampled each step from the env's
    ``batch_size`` prompts, ``max_new_tokens`` long (the env's: this config's ``batch_size`` and
    ``max_new_tokens`` are not used)."""

    num_generations: int = 2
    """Completions sampled per prompt each step; the best and the worst by the reward make its pair."""

    def validate(self):
        super().validate()
        check(is_int_at_least(self.num_generations, 2), "num_generations", "an integer >= 2", self.num_generations)
        if self.precompute_ref_log_probs:
            raise ValueError("precompute_ref_log_probs=True needs a fixed set of pairs; online DPO samples new ones "
                             "every step: set it to False")


class OnlineDPOTrainer(DPOTrainer):
    """Online DPO (Guo et al. 2024): each step samples ``num_generations`` completions per prompt from the
    current policy, ranks them with the env's reward (a reward function, a loaded reward model...), pairs
    each prompt's best with its worst (prompts whose samples all score the same give no pair) and takes a
    DPO step on those pairs against the frozen reference. The pairs use the sampled tokens themselves.

    Args:
      agent, env: the policy and a :class:`~tf_rl_text.TextGenerationEnv` whose reward ranks the samples.
      config: an :class:`OnlineDPOConfig`.
      run_dir, ...: see :class:`~tf_rl_text.trainers.base.Trainer`.
    """

    algorithm = "online DPO"
    config_class = OnlineDPOConfig
    resume_must_match = ("loss_type", "num_generations")

    def __init__(self, agent, env, config: OnlineDPOConfig | None = None, **kwargs):
        self.pairs = None
        self._init_dpo(agent, env, config if config is not None else OnlineDPOConfig(), **kwargs)

    @classmethod
    def for_run(cls, agent, env, config, pairs, **kwargs):
        return cls(agent, env, config, **kwargs)  # it samples its own pairs

    def make_source(self):
        return EnvRollouts(self.env, self.agent, self.config.num_generations)

    def score(self, batch, per_token: bool = False):
        """Each prompt's best and worst sample by the reward as a pair (prompts whose samples all score the same
        give none), with the reference's s(y_w), s(y_l). ``per_token``: the policy's and the reference's
        log-probs of every sampled token."""
        g = self.config.num_generations
        rewards = np.asarray(batch.rewards, np.float64).reshape(-1, g)
        best, worst = rewards.argmax(axis=1), rewards.argmin(axis=1)
        keep = np.flatnonzero(rewards.max(axis=1) > rewards.min(axis=1))
        stats = {"reward_mean": float(rewards.mean()), "reward_std": float(rewards.std()),  # over float64 rewards
                 "pairs": float(len(keep)), "frac_prompts_paired": float(len(keep) / len(rewards))}
        scored = Scored(batch, rewards=np.asarray(batch.rewards, np.float32), extra={"stats": stats})
        if len(keep):
            chosen_rows, rejected_rows = keep * g + best[keep], keep * g + worst[keep]
            stats["reward_gap"] = float(np.mean(rewards[keep, best[keep]] - rewards[keep, worst[keep]]))
            pairs = [batch.prompt_ids[chosen_rows], batch.prompt_mask[chosen_rows],
                     batch.completion_ids[chosen_rows], batch.completion_mask[chosen_rows],
                     batch.completion_ids[rejected_rows], batch.completion_mask[rejected_rows]]
            ref = self._score_pairs(pairs, self.ref_model, chunk=len(keep))
            scored.tensors = [tf.constant(x) for x in pairs] + [tf.constant(ref[:, 0]), tf.constant(ref[:, 1])]
        if per_token:
            scored.tokens = self.token_scores(rollout_ids(batch))
        return scored

    def optimize(self, scored) -> dict:
        """One DPO update on the step's pairs (none when every prompt's samples scored alike)."""
        if not scored.tensors:  # every prompt's samples scored alike: nothing to prefer
            return {"loss": float("nan")}
        chunks = min(int(scored.tensors[0].shape[0]), self.config.grad_accumulation_steps)
        info = self.check_update(self.accumulate(self._grads, scored.tensors, self.agent.trainable_variables, chunks))
        self.num_updates += 1
        return info

    def statistics(self, batch, scored, info) -> dict:
        stats = super().statistics(batch, scored, info)
        stats.update(scored.extra["stats"])
        return stats

    def _postfix(self, stats) -> dict:
        return {"reward": f"{stats['reward_mean']:.3f}", "pairs": f"{stats['pairs']:.0f}"}

    def evaluate(self, prompts=None, references=None, greedy: bool = True, seed: int = 0) -> float:
        """Mean reward of (greedy by default) completions of ``prompts`` (default: all env prompts)."""
        return Trainer.evaluate(self, prompts, references, greedy, seed)

    def evaluate_pairs(self, pairs=None) -> dict:
        if pairs is None:
            raise ValueError("online DPO has no fixed training pairs; pass pairs=... (e.g. held-out preference pairs)")
        return super().evaluate_pairs(pairs)


__all__ = ["DPOConfig", "DPOTrainer", "OnlineDPOConfig", "OnlineDPOTrainer", "dpo_loss", "DPO_LOSSES"]
