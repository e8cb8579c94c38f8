"""Actor-critic trainers for language models: A2C and PPO, with a value head, GAE and a KL leash.

The actor is the LM's policy pi(a_t | s_t) (it picks tokens); the critic is a value head
V(s_t) on the LM's last hidden states (it values states). Both share the LM's body and are
trained together by one optimizer. One rollout = ``env.batch_size`` prompts x
``num_samples_per_prompt`` completions.

Per-token rewards (the article's reward, shaped by a KL leash to the frozen starting model)::

    r_t = -beta * (log pi_old(a_t | s_t) - log pi_ref(a_t | s_t))  +  R(x, y) at the last token

Advantages by GAE(gamma, lambda) (Schulman et al. 2016), on the values of the rollout::

    delta_t = r_t + gamma V(s_{t+1}) - V(s_t)          (V = 0 after the last token)
    A_t = sum_l (gamma lambda)^l delta_{t+l}            G_t = A_t + V(s_t)   (the critic's target)

A2C (synchronous advantage actor-critic, Mnih et al. 2016): one update per rollout, lambda = 1
by default so that A_t = G_t - V(s_t) exactly::

    L = -mean_t A_t log pi(a_t | s_t)  +  c_v 0.5 mean_t (V(s_t) - G_t)^2  -  c_e mean_t H(pi(. | s_t))

PPO (Schulman et al. 2017), as practitioners use it to fine-tune LMs (Ziegler et al. 2019):
several epochs over shuffled minibatches of one rollout, advantages whitened per rollout,
rho_t = pi(a_t | s_t) / pi_old(a_t | s_t)::

    L = -mean_t min(rho_t A_t, clip(rho_t, 1-eps, 1+eps) A_t)
        + c_v 0.5 mean_t max((V - G)^2, (V_old + clip(V - V_old, -eps_v, eps_v) - G)^2)
        - c_e mean_t H(pi(. | s_t))

Every ``mean_t`` is a per-token mean over the completion tokens of the (mini)batch. beta is
fixed, or adaptive (Ziegler et al. 2019): beta <- beta (1 + clip((KL - target)/target, -0.2, 0.2) n / horizon)
with KL the mean per-completion KL of the rollout and n its number of completions. PPO's epoch
loop stops early when the approximate KL between the rollout's policy and the current one
exceeds ``early_stop_kl``. Each update runs through the update runner (``update.py``),
traced once.

Example::

    trainer = PPOTrainer(agent, env, PPOConfig(kl_coef=0.05, adaptive_kl=True))
    for update in range(100):
        stats = trainer.step()      # reward_mean, kl, entropy, value_loss, clip_fraction, explained_variance...
    trainer.export("saved_models/ppo_policy")   # + a `values` signature
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tf_rl_text import ops
from tf_rl_text.ops import a2c_loss, ppo_loss
from tf_rl_text._compat import tf
from tf_rl_text.experience import Scored, rollout_ids
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.validation import check, is_int_at_least
from tf_rl_text.trainers.reinforce import KL_ESTIMATORS


# --------------------------------------------------------------------------- configs
@dataclasses.dataclass
class ActorCriticConfig(TrainerConfig):
    """What A2C and PPO share (see :class:`A2CConfig` and :class:`PPOConfig` for their defaults).
    The optimizer (one, for the policy and the value head), schedule, clipping and accumulation
    fields come from :class:`~tf_rl_text.trainers.base.TrainerConfig`."""

    gamma: float = 1.0
    """Discount of the per-token rewards (1.0: the usual choice for one completion)."""
    gae_lambda: float = 0.95
    """lambda of GAE: 1.0 = Monte-Carlo advantages G_t - V(s_t), 0.0 = one-step TD advantages."""
    num_samples_per_prompt: int = 1
    """Completions per prompt in a rollout."""
    vf_coef: float = 0.1
    """c_v, the weight of the value loss."""
    entropy_coef: float = 0.0
    """c_e, the weight of the entropy bonus."""
    kl_coef: float = 0.05
    """beta of the per-token KL penalty to the frozen starting model (0 = off; the start value if adaptive)."""
    adaptive_kl: bool = False
    """Adapt beta toward ``kl_target`` (Ziegler et al. 2019) after every rollout."""
    kl_target: float = 6.0
    """Target KL to the reference, nats per completion (Ziegler et al. 2019 used 6)."""
    kl_horizon: int = 10000
    """Horizon of the adaptive controller, in completions (larger = slower changes of beta)."""
    kl_estimator: str = "kl"
    """Per-token KL estimate in the reward: "kl", "abs", "mse" or "low_var" (see ops.kl_penalty)."""
    whiten_advantages: bool = True
    """Normalise advantages to zero mean, unit variance over the rollout's completion tokens."""

    def validate(self):
        super().validate()
        check(0.0 <= self.gamma <= 1.0, "gamma", "in [0, 1]", self.gamma)
        check(0.0 <= self.gae_lambda <= 1.0, "gae_lambda", "in [0, 1]", self.gae_lambda)
        check(is_int_at_least(self.num_samples_per_prompt, 1), "num_samples_per_prompt", "an integer >= 1",
              self.num_samples_per_prompt)
        check(self.vf_coef >= 0, "vf_coef", ">= 0", self.vf_coef)
        check(self.entropy_coef >= 0, "entropy_coef", ">= 0", self.entropy_coef)
        check(self.kl_coef >= 0, "kl_coef", ">= 0", self.kl_coef)
        if self.adaptive_kl and not self.kl_coef > 0:
            raise ValueError(f"adaptive_kl needs a starting kl_coef > 0 (beta is adapted multiplicatively), got {self.kl_coef}")
        check(self.kl_target > 0, "kl_target", "> 0 (nats per completion)", self.kl_target)
        check(self.kl_horizon > 0, "kl_horizon", "> 0", self.kl_horizon)
        check(self.kl_estimator in KL_ESTIMATORS, "kl_estimator", f"one of {KL_ESTIMATORS}", self.kl_estimator)


@dataclasses.dataclass
class A2CConfig(ActorCriticConfig):
    """A2C: one update per rollout; advantage = return - V (lambda = 1), value loss, entropy bonus."""

    learning_rate: float = 1e-4
    gae_lambda: float = 1.0
    """1.0 makes A_t = G_t - V(s_t), the textbook A2C advantage."""
    vf_coef: float = 0.5
    """Value-loss weight of A2C (Mnih et al. 2016; Stable-Baselines3's default)."""
    entropy_coef: float = 0.01
    whiten_advantages: bool = False


@dataclasses.dataclass
class PPOConfig(ActorCriticConfig):
    """PPO with GAE, clipping, minibatch epochs, whitening, a KL leash and an early stop."""

    num_epochs: int = 4
    """Passes over one rollout (Schulman et al. 2017 used 3-10)."""
    num_minibatches: int = 4
    """Each epoch splits the shuffled rollout into this many minibatches, one update each."""
    clip_range: float = 0.2
    """eps of the clipped ratio clip(rho, 1 - eps, 1 + eps)."""
    clip_range_value: float | None = 0.2
    """eps_v of the clipped value loss (None = plain squared error)."""
    early_stop_kl: float | None = 0.1
    """Stop this rollout's epochs when the approximate per-token KL(pi_old || pi) exceeds it (None = never)."""

    def validate(self):
        super().validate()
        if int(self.num_epochs) != self.num_epochs or self.num_epochs < 1:
            raise ValueError(f"num_epochs must be an integer >= 1, got {self.num_epochs}")
        if int(self.num_minibatches) != self.num_minibatches or self.num_minibatches < 1:
            raise ValueError(f"num_minibatches must be an integer >= 1, got {self.num_minibatches}")
        if not 0.0 < self.clip_range < 1.0:
            raise ValueError(f"clip_range must be in (0, 1), got {self.clip_range}")
        if self.clip_range_value is not None and not self.clip_range_value > 0:
            raise ValueError(f"clip_range_value must be > 0 or None, got {self.clip_range_value}")
        if self.early_stop_kl is not None and not self.early_stop_kl > 0:
            raise ValueError(f"early_stop_kl must be > 0 or None, got {self.early_stop_kl}")


# --------------------------------------------------------------------------- trainers
class _ActorCriticTrainer(Trainer):
    """The rollout, targets, compiled update, loop and export that A2C and PPO share.

    A subclass sets ``algorithm`` and writes :meth:`loss` (the pure loss of its algorithm)
    and :meth:`updates` (which updates run on one scored rollout).
    """

    algorithm = "actor-critic"
    config_class = ActorCriticConfig
    unit = "rollout"

    def __init__(self, agent, env, config=None, **kwargs):
        super().__init__(agent, env, config, **kwargs)
        config = self.config
        self.value_head = agent.value_head if agent.value_head is not None else agent.attach_value_head()
        self.variables = list(agent.trainable_variables) + list(self.value_head.trainable_variables)
        self.optimizer.build(self.variables)  # slots now, so the compiled update is traced once
        self.ref_model = agent.clone_model() if config.kl_coef > 0 else None
        self.kl_coef = float(config.kl_coef)  # beta; changes after each rollout when adaptive
        self.rng = np.random.RandomState(agent.seed if config.seed is None else config.seed)
        seq = tf.TensorSpec([None, None], tf.int32)
        tok = tf.TensorSpec([None, None], tf.float32)
        num = tf.TensorSpec([], tf.float32)
        self._targets = agent.compile_fn(self._targets_step, [seq] * 4 + [
            tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32)])
        self._score = agent.compile_fn(self._score_step, [seq] * 4)
        self._from_scores = agent.compile_fn(self._targets_from_scores, [tok] * 4 + [
            tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32)])
        self._grads = agent.compile_fn(self._grad_step, [seq] * 4 + [tok] * 4 + [num, num])

    # ------------------------------------------------------------------ run state
    def _trackables(self):
        return dict(super()._trackables(), value_head=self.value_head)

    def _python_state(self):
        from tf_rl_text.checkpoint import numpy_rng_state

        return {"kl_coef": self.kl_coef, "rng": numpy_rng_state(self.rng)}

    def _load_python_state(self, state):
        from tf_rl_text.checkpoint import set_numpy_rng_state

        self.kl_coef = float(state["kl_coef"])
        set_numpy_rng_state(self.rng, state["rng"])

    # ------------------------------------------------------------------ graph
    def _score_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask):
        """One forward pass over (a chunk of) a rollout, no gradient: log pi (B, T), values (B, T) and
        log pi_ref (B, T) of the completion tokens (log pi itself when there is no reference)."""
        mask = tf.cast(completion_mask, tf.float32)
        logits, values = self.agent.completion_logits_and_values(prompt_ids, prompt_mask, completion_ids,
                                                                 completion_mask)  # (B, T, V), (B, T)
        logp = ops.gather_log_probs(logits, completion_ids) * mask  # (B, T)
        if self.ref_model is not None:
            ref_logp = self.agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask, model=self.ref_model)
        else:
            ref_logp = logp
        return logp, values * mask, ref_logp

    def _targets_from_scores(self, logp, values, ref_logp, mask, rewards, kl_coef):
        """The whole rollout's KL penalty, advantages and returns from its scores: all (B, T)."""
        cfg = self.config
        kl = ops.kl_penalty(logp, ref_logp, mask, cfg.kl_estimator)  # (B, T)
        token_rewards = ops.last_token_rewards(rewards, mask) - kl_coef * kl  # (B, T)
        advantages, returns = ops.generalized_advantages(token_rewards, values, mask, cfg.gamma, cfg.gae_lambda)
        if cfg.whiten_advantages:
            advantages = ops.masked_whiten(advantages, mask)
        return {
            "log_probs": logp, "values": values, "advantages": advantages, "returns": returns,
            "kl": tf.reduce_mean(ops.masked_sum(ops.kl_penalty(logp, ref_logp, mask, "kl"), mask, axis=1)),
            "explained_variance": ops.explained_variance(values, returns, mask),
        }

    def _targets_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, kl_coef):
        """Score a rollout once: old log-probs, values, KL to the reference, advantages and returns."""
        logp, values, ref_logp = self._score_step(prompt_ids, prompt_mask, completion_ids, completion_mask)
        return self._targets_from_scores(logp, values, ref_logp, tf.cast(completion_mask, tf.float32), rewards,
                                         kl_coef)

    def _scoring_chunks(self, rows):
        """Row chunks the rollout is scored in: 1 (the whole rollout at once) unless the update is
        memory-lean (``grad_accumulation_steps`` > 1); then no chunk is larger than an update's chunk,
        so the full-vocabulary logits of the whole rollout never exist at once."""
        k = self.config.grad_accumulation_steps
        return 1 if k == 1 else min(rows, k * getattr(self.config, "num_minibatches", 1))  # PPO: per minibatch

    def score_rollout(self, ids, rewards, kl_coef):
        """:meth:`_targets_step` over the rollout ``ids`` (prompt ids/mask, completion ids/mask), in
        :meth:`_scoring_chunks` row chunks when the update is memory-lean (same numbers, less memory)."""
        rows = int(ids[0].shape[0])
        k = self._scoring_chunks(rows)
        if k == 1:
            return self._targets(*ids, rewards, kl_coef)
        parts = [self._score(*[tf.gather(t, index) for t in ids]) for index in np.array_split(np.arange(rows), k)]
        logp, values, ref_logp = (tf.concat([p[i] for p in parts], axis=0) for i in range(3))
        return self._from_scores(logp, values, ref_logp, tf.cast(ids[3], tf.float32), rewards, kl_coef)

    def _loss_and_info(self, prompt_ids, prompt_mask, completion_ids, completion_mask, old_logp, old_values,
                       advantages, returns):
        mask = tf.cast(completion_mask, tf.float32)
        logits, values = self.agent.completion_logits_and_values(prompt_ids, prompt_mask, completion_ids,
                                                                 completion_mask)
        logp = ops.gather_log_probs(logits, completion_ids) * mask  # (B, T)
        # (B, T); only logged when there is no entropy bonus: no backward pass through it then
        entropy = ops.entropy_from_logits(logits if self.config.entropy_coef else tf.stop_gradient(logits))
        loss, info = self.loss(logp, old_logp, values, old_values, advantages, returns, mask, entropy)
        info = dict(info, loss=loss, approx_kl=ops.approx_kl(logp, old_logp, mask))
        return loss, info

    def _grad_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, old_logp, old_values,
                   advantages, returns, total_rows, total_tokens):
        """Gradients of one chunk's share of the (per-token mean) loss: loss x tokens / total_tokens."""
        share = tf.reduce_sum(tf.cast(completion_mask, tf.float32)) / total_tokens
        with tf.GradientTape() as tape:
            loss, info = self._loss_and_info(prompt_ids, prompt_mask, completion_ids, completion_mask, old_logp,
                                             old_values, advantages, returns)
            loss = loss * share
        grads = tape.gradient(loss, self.variables)
        return grads, {k: v * share for k, v in info.items()}

    def update(self, batch):
        """One gradient update on ``batch`` (split into ``grad_accumulation_steps`` chunks when > 1)."""
        info = self.accumulate(self._grads, batch, self.variables)
        # NaN/Inf: this update was not applied and the step stops here (earlier PPO minibatches stay applied)
        return self.check_update(info)

    def loss(self, logp, old_logp, values, old_values, advantages, returns, mask, entropy):
        raise NotImplementedError

    def updates(self, batch):
        """Run this algorithm's updates on one scored rollout (``batch``: the ids, then old log-probs, old
        values, advantages and returns); returns a list of update infos."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the loop's parts
    def score(self, batch, per_token: bool = False):
        """One pass over the rollout, no gradient: old log-probs, values, the KL to the reference, GAE
        advantages and returns (the rewards carry the current KL coefficient). ``per_token``: also entropy,
        log ratio, value, advantage and return of every token."""
        ids = rollout_ids(batch)
        kl_coef = self.kl_coef
        scores = self.score_rollout(ids, tf.constant(batch.rewards, tf.float32), tf.constant(kl_coef, tf.float32))
        tensors = ids + [scores["log_probs"], scores["values"], scores["advantages"], scores["returns"]]
        scored = Scored(batch, tensors, np.asarray(batch.rewards, np.float32),
                        extra={"kl": float(scores["kl"]), "kl_coef": kl_coef,
                               "explained_variance": float(scores["explained_variance"])})
        if per_token:
            mask = tf.cast(ids[3], tf.float32)
            scored.tokens = dict(self.token_scores(ids, estimator=self.config.kl_estimator),
                                 value=scores["values"], advantage=scores["advantages"] * mask,
                                 **{"return": scores["returns"] * mask})
        return scored

    def optimize(self, scored) -> dict:
        """The algorithm's :meth:`updates` on the scored rollout, then the adaptive KL coefficient's move.
        Returns the mean of the updates' statistics, with ``gradient_steps``."""
        cfg = self.config
        infos = self.updates(scored.tensors)
        if cfg.adaptive_kl:
            self.kl_coef = ops.adaptive_kl_coef(self.kl_coef, scored.extra["kl"], cfg.kl_target, cfg.kl_horizon,
                                                len(scored.rewards))
        self.num_updates += 1
        out = {k: float(np.mean([float(i[k]) for i in infos])) for k in infos[0]}
        out["gradient_steps"] = len(infos)
        return out

    def statistics(self, batch, scored, info) -> dict:
        stats = super().statistics(batch, scored, info)
        stats.update(kl=scored.extra["kl"],  # per-completion KL to the reference (k1 estimate), rollout mean
                     kl_coef=scored.extra["kl_coef"],  # the beta this rollout's rewards used
                     explained_variance=scored.extra["explained_variance"])
        return stats

    def _postfix(self, stats):
        return {"reward": f"{stats['reward_mean']:.3f}", "kl": f"{stats['kl']:.2f}"}

    # ------------------------------------------------------------------ export
    def export_train_step(self):
        """This algorithm's compiled update, as the SavedModel's ``train_step``: f(input_ids,
        attention_mask, completion_ids, completion_mask, old_log_probs, old_values, advantages,
        returns) with prompts (B, P) as for ``generate`` and completions and their rollout
        statistics (B, T). Returns the loss (before the update) and its parts. Returns (fn, signature).
        """
        from tf_rl_text.savedmodel import COMPLETION_SPECS

        signature = [
            tf.TensorSpec([None, None], tf.int32, name="input_ids"),
            tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
            *COMPLETION_SPECS,
            *[tf.TensorSpec([None, None], tf.float32, name=n) for n in ("old_log_probs", "old_values", "advantages",
                                                                         "returns")],
        ]
        from tf_rl_text.update import apply_update

        def train_step(*batch):  # the trainer's own gradient function, through the update runner
            return apply_update(self._grad_step, batch, self.variables, self.optimizer, self.config.max_grad_norm)

        return self.agent.graph_code(train_step), signature

    def _export_kwargs(self):
        """A ``values`` signature besides the policy's. Causal LMs: ``input_ids``, ``attention_mask``
        (B, L) -> ``values`` (B, L), V(s_t) of every prefix. Encoder-decoders: source ``input_ids``,
        ``attention_mask`` (B, P) and ``completion_ids``, ``completion_mask`` (B, T) -> ``values``
        (B, T), V of the decoder state that chose each completion token (0 where the mask is 0)."""
        agent = self.agent

        def per_completion(input_ids, attention_mask, completion_ids, completion_mask):
            _, v = agent.completion_logits_and_values(input_ids, attention_mask, completion_ids, completion_mask)
            return {"values": v * tf.cast(completion_mask, v.dtype)}

        def per_prefix(input_ids, attention_mask):
            return {"values": agent.values(input_ids, attention_mask)}

        values = agent.family.head_export(per_prefix, per_completion)
        return {
            "train_step": self.export_train_step(),
            "extra_objects": {"value_head": self.value_head},  # its variables are not the model's
            "extra_functions": {"values": values},
            "metadata": {"kl_coef": self.kl_coef},
        }


class A2CTrainer(_ActorCriticTrainer):
    """Synchronous advantage actor-critic (A2C; Mnih et al. 2016, "Asynchronous Methods for Deep
    Reinforcement Learning") for a language model with a value head.

    One rollout, one compiled update: A_t = G_t - V(s_t), value loss 0.5 (V - G)^2, entropy bonus.

    Example::

        from tf_rl_text import A2CConfig, A2CTrainer, RLAgent, TextGenerationEnv, default_model, default_tokenizer
        from tf_rl_text.rewards import TokenFrequencyReward
        tokenizer = default_tokenizer()
        agent = RLAgent(default_model(tokenizer), tokenizer, seed=0)
        env = TextGenerationEnv(["the movie was", "my day"], tokenizer, TokenFrequencyReward(tokenizer, 264),
                                batch_size=4, max_new_tokens=6)
        trainer = A2CTrainer(agent, env, A2CConfig(learning_rate=1e-2))
        for update in range(20):
            stats = trainer.step()
        print(stats["reward_mean"], stats["value_loss"], stats["explained_variance"])
    """

    algorithm = "A2C"
    config_class = A2CConfig

    def loss(self, logp, old_logp, values, old_values, advantages, returns, mask, entropy):
        cfg = self.config
        return a2c_loss(logp, values, advantages, returns, mask, entropy, cfg.vf_coef, cfg.entropy_coef)

    def updates(self, batch):
        return [self.update(batch)]  # on-policy: exactly one gradient step per rollout


class PPOTrainer(_ActorCriticTrainer):
    """Proximal Policy Optimization (Schulman et al. 2017, "Proximal Policy Optimization
    Algorithms") with GAE (Schulman et al. 2016) and a per-token KL penalty to the starting model
    with a fixed or adaptive coefficient (Ziegler et al. 2019, "Fine-Tuning Language Models from
    Human Preferences").

    Each :meth:`step` is one rollout, then ``num_epochs`` passes over it in ``num_minibatches``
    shuffled minibatches (one compiled update each), stopping early when the approximate KL to
    the rollout's policy exceeds ``early_stop_kl``.

    Example::

        from tf_rl_text import PPOConfig, PPOTrainer, RLAgent, TextGenerationEnv, default_model, default_tokenizer
        from tf_rl_text.rewards import TokenFrequencyReward
        tokenizer = default_tokenizer()
        agent = RLAgent(default_model(tokenizer), tokenizer, seed=0)
        env = TextGenerationEnv(["the movie was", "my day"], tokenizer, TokenFrequencyReward(tokenizer, 264),
                                batch_size=4, max_new_tokens=6)
        trainer = PPOTrainer(agent, env, PPOConfig(learning_rate=3e-3, num_samples_per_prompt=4))
        for update in range(20):
            stats = trainer.step()
        print(stats["reward_mean"], stats["kl"], stats["clip_fraction"], stats["explained_variance"])
        trainer.export("/tmp/ppo_policy")   # signatures generate, sample, log_probs, train_step, values
    """

    algorithm = "PPO"
    config_class = PPOConfig

    def loss(self, logp, old_logp, values, old_values, advantages, returns, mask, entropy):
        cfg = self.config
        return ppo_loss(logp, old_logp, values, old_values, advantages, returns, mask, entropy, cfg.clip_range,
                        cfg.clip_range_value, cfg.vf_coef, cfg.entropy_coef)

    def updates(self, batch):
        cfg = self.config
        rows = int(batch[0].shape[0])
        if cfg.num_minibatches > rows:
            raise ValueError(
                f"num_minibatches={cfg.num_minibatches} exceeds the rollout's {rows} completions; "
                "lower num_minibatches or raise batch_size / num_samples_per_prompt"
            )
        infos = []
        for epoch in range(cfg.num_epochs):
            for index in np.array_split(self.rng.permutation(rows), cfg.num_minibatches):
                info = self.update([tf.gather(x, index) for x in batch])
                infos.append(info)
                if cfg.early_stop_kl is not None and float(info["approx_kl"]) > cfg.early_stop_kl:
                    return infos  # the policy moved too far from the rollout's: stop this rollout's epochs
        return infos


__all__ = ["ActorCriticConfig", "A2CConfig", "A2CTrainer", "PPOConfig", "PPOTrainer", "a2c_loss", "ppo_loss"]
