"""Value-based trainers for text: Q-learning, SARSA, expected SARSA and soft Q-learning.

The token-level MDP: the state s_t is the prompt plus the tokens so far, an action is the next
token, the reward R(x, y) arrives at the last token. By default the LM's (processed, raw, not
temperature-scaled) logits ARE the Q-values, Q(s_t, a) = logits(s_t)[a]; with
``QLearningConfig(q_values="head")`` a separate :class:`~tf_rl_text.heads.QHead` on the last
hidden states gives them instead. The loss regresses Q on a one-step TD target computed with a
target network Q_bar (Mnih et al. 2015):

    L = mean over completion tokens of huber(Q(s_t, a_t) - y_t)        (a per-token mean)

    "q_learning":     y_t = r_t + gamma max_a' Q_bar(s_{t+1}, a')            (Watkins 1989)
    "sarsa":          y_t = r_t + gamma Q_bar(s_{t+1}, a_{t+1})             (Rummery & Niranjan 1994)
    "expected_sarsa": y_t = r_t + gamma sum_a' pi(a'|s_{t+1}) Q_bar(s_{t+1}, a')   (van Seijen et al. 2009)
    "soft":           y_t = r_t + gamma logsumexp_a' Q_bar(s_{t+1}, a')      (Guo et al. 2021, soft
                      Q-learning for text: the logits are Q-values, V = logsumexp Q, pi = softmax Q)

with y_T = r_T at each completion's last token (no bootstrap) and 0 on padding (the math is in
:mod:`tf_rl_text.ops`: ``q_td_targets``). The target network is a hard copy every
``target_update_period`` updates, or Polyak averaging with ``target_update_tau`` < 1. Acting is
epsilon-greedy or Boltzmann (softmax(Q / temperature)); evaluation is greedy (argmax Q).

With LoRA adapters on the agent (``agent.attach_lora(...)`` before building the trainer) only the
adapters (and the Q head) train, and the target network is the same frozen base run with a copy of
the adapters (:class:`~tf_rl_text.lora.AdapterCopy`): no second copy of the weights (docs/lora.md).

Learning is off-policy from a replay buffer (:class:`ReplayBuffer`, a ring buffer in
tf.Variables) of the agent's own episodes, plus a second buffer of demonstrations - good texts
such as a dataset's references (:meth:`QLearningTrainer.add_demonstrations`), a fixed share of
every minibatch. Learning from a few good texts is what Q-learning offers over policy gradient.

Example::

    from tf_rl_text import (QLearningConfig, QLearningTrainer, RLAgent, TextGenerationEnv,
                            default_model, default_tokenizer)
    tokenizer = default_tokenizer()
    agent = RLAgent(default_model(tokenizer, n_layer=1, n_embd=32, n_head=2), tokenizer, seed=0)
    env = TextGenerationEnv(["the movie was"], tokenizer, references=["great and fun."],
                            reward_fn=lambda c, p, r: [float("great" in x) for x in c],
                            batch_size=4, max_new_tokens=6)
    trainer = QLearningTrainer(agent, env, QLearningConfig(target="soft", learning_rate=1e-3))
    trainer.add_demonstrations()          # the env's references, scored by its reward
    trainer.train(20, progress=False)
    print(trainer.evaluate())             # mean reward of greedy completions
    trainer.export("saved_models/q_policy")   # + q_values and train_step signatures
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tf_rl_text import ops
from tf_rl_text.experience import EnvRollouts, ReplaySource, Scored, rollout_ids
from tf_rl_text.replay import ReplayBuffer, concat_batches
from tf_rl_text._compat import tf
from tf_rl_text.heads import QHeadModel, clone_q_model, q_target_pairs
from tf_rl_text.tokens import pad_token_ids, texts_to_ids
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.trainers.q_policy import EXPLORATIONS, QPolicyAgent, completion_q_values

TARGETS = ops.TD_TARGETS  # ("q_learning", "sarsa", "expected_sarsa", "soft")
Q_SOURCES = ("logits", "head")
LOSSES = ops.TD_LOSSES  # ("huber", "mse")


@dataclasses.dataclass
class QLearningConfig(TrainerConfig):
    """Settings of :class:`QLearningTrainer` (validated on construction). The optimizer, schedule,
    clipping and accumulation fields come from :class:`~tf_rl_text.trainers.base.TrainerConfig`."""

    target: str = "soft"
    """TD target: "q_learning", "sarsa", "expected_sarsa" or "soft" (the default: Guo et al. 2021
    found soft Q-learning the one that works when the LM logits are the Q-values)."""
    q_values: str = "logits"
    """Where Q(s, .) comes from: "logits" (the LM's processed logits) or "head" (a QHead on the last hidden states)."""
    gamma: float = 1.0
    """Discount; 1.0 = the sequence reward reaches every token undiminished."""
    loss: str = "huber"
    """Regression loss on the TD error: "huber" (DQN's choice, Mnih et al. 2015) or "mse" (0.5 * error^2)."""
    huber_delta: float = 1.0
    """Where the Huber loss turns from quadratic to linear."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before they enter the TD target (Guo et al. scale rewards)."""
    target_update_period: int = 10
    """Update the target network every this many gradient updates."""
    target_update_tau: float = 1.0
    """1.0 = hard copy; < 1 = Polyak averaging Q_bar <- tau Q + (1 - tau) Q_bar."""
    exploration: str = "epsilon_greedy"
    """Acting policy for the agent's own episodes: "epsilon_greedy" or "boltzmann" (softmax(Q / temperature))."""
    epsilon: float = 0.1
    """Epsilon of epsilon-greedy at the start."""
    epsilon_final: float = 0.1
    """Epsilon after ``epsilon_decay_steps`` collection steps (linear decay)."""
    epsilon_decay_steps: int = 0
    """Collection steps over which epsilon decays linearly (0 = constant ``epsilon``)."""
    temperature: float = 1.0
    """Boltzmann temperature (exploration="boltzmann") and the expected-SARSA policy's temperature."""
    num_samples_per_prompt: int = 1
    """Episodes per prompt collected in one step (env.batch_size prompts per step)."""
    collect_rollouts: bool = True
    """Collect the agent's own episodes each step; False = learn from demonstrations alone."""
    batch_size: int = 32
    """Episodes per gradient update, sampled uniformly from the buffers."""
    updates_per_step: int = 1
    """Gradient updates after each collection step."""
    replay_capacity: int = 10_000
    """Episodes the replay ring buffer holds before the oldest are overwritten."""
    demonstration_fraction: float = 0.25
    """Share of each minibatch drawn from the demonstrations, when there are both (0..1)."""

    def validate(self):
        super().validate()
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.q_values not in Q_SOURCES:
            raise ValueError(f"q_values must be one of {Q_SOURCES}, got {self.q_values!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.exploration not in EXPLORATIONS:
            raise ValueError(f"exploration must be one of {EXPLORATIONS}, got {self.exploration!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not self.huber_delta > 0:
            raise ValueError(f"huber_delta must be > 0, got {self.huber_delta}")
        if not self.reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {self.reward_scale}")
        if not 0.0 < self.target_update_tau <= 1.0:
            raise ValueError(f"target_update_tau must be in (0, 1] (1 = hard copy), got {self.target_update_tau}")
        for name in ("epsilon", "epsilon_final", "demonstration_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for name in ("target_update_period", "num_samples_per_prompt", "batch_size", "updates_per_step",
                     "replay_capacity"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value}")
        if int(self.epsilon_decay_steps) != self.epsilon_decay_steps or self.epsilon_decay_steps < 0:
            raise ValueError(f"epsilon_decay_steps must be an integer >= 0, got {self.epsilon_decay_steps}")


# --------------------------------------------------------------------------- pure functions
# --------------------------------------------------------------------------- trainer
class QLearningTrainer(Trainer):
    """Q-learning, SARSA, expected SARSA or soft Q-learning over tokens, from replay and demonstrations.

    Args:
      agent: the :class:`~tf_rl_text.RLAgent` to train; with ``q_values="logits"`` its model's
        logits are the Q-values and its greedy decode is the learned policy.
      env: the :class:`~tf_rl_text.TextGenerationEnv` that supplies prompts and rewards.
      config: a :class:`QLearningConfig`.

    Attributes: ``policy`` (a :class:`QPolicyAgent`: greedy / epsilon-greedy / Boltzmann over Q),
    ``target_model`` (the target network), ``replay`` and ``demonstrations`` (:class:`ReplayBuffer`).

    Each :meth:`step` collects one batch of episodes with the exploring policy (unless
    ``collect_rollouts=False``), stores them, then makes ``updates_per_step`` compiled TD
    updates on minibatches from the replay buffer and the demonstrations. Papers: Watkins 1989
    (Q-learning), Mnih et al. 2015 (target network, Huber loss, replay), van Seijen et al. 2009
    (expected SARSA), Guo et al. 2021 (soft Q-learning for text generation).
    """

    algorithm = "Q-learning"
    config_class = QLearningConfig

    def __init__(self, agent, env, config: QLearningConfig | None = None, **kwargs):
        super().__init__(agent, env, config, **kwargs)
        cfg = self.config
        if agent.family.seq2seq and cfg.q_values == "head":
            raise NotImplementedError(
                f"q_values='head' wraps a causal LM; {type(agent.model).__name__} is an encoder-decoder model: "
                "use q_values='logits' (its decoder logits are the Q-values)")
        model = QHeadModel(agent.model) if cfg.q_values == "head" else agent.model
        self.q_model = model
        self.policy = QPolicyAgent(model, agent, cfg.exploration, cfg.epsilon, cfg.temperature)
        # with LoRA: the same frozen base, a copy of the adapters (and head): no second copy of the weights
        self.target_model = clone_q_model(model, lora=agent.lora)
        self.target_policy = QPolicyAgent(self.target_model, agent, cfg.exploration, cfg.epsilon, cfg.temperature)
        # (online, target) pairs: whole networks by variable name (frozen layers move in Keras' variable
        # order); with LoRA the adapters and the Q head only
        pairs = q_target_pairs(model, self.target_model)
        self._online_variables = [o for o, _ in pairs]
        self._target_variables = [t for _, t in pairs]
        self.optimizer.build(self.policy.trainable_variables)  # slots now, so the compiled update is traced once
        replay = ReplayBuffer(cfg.replay_capacity, env.max_prompt_length, env.max_new_tokens,
                              agent.pad_token_id, seed=self.policy.seed, prompt_padding=agent.padding_side)
        # episodes of the exploring policy into the replay buffer, minibatches out (with the demonstrations)
        self.source = ReplaySource(EnvRollouts(env, self.policy, cfg.num_samples_per_prompt), replay, cfg.batch_size,
                                   cfg.updates_per_step, cfg.demonstration_fraction, agent.pad_token_id,
                                   agent.padding_side, collect_each_step=cfg.collect_rollouts)
        self._demo_rows: list[np.ndarray] | None = None
        self.num_steps = 0
        seq = tf.TensorSpec([None, None], tf.int32)
        vec = tf.TensorSpec([None], tf.float32)
        num = tf.TensorSpec([], tf.float32)
        self._grads = agent.compile_fn(self._grad_step, [seq, seq, seq, seq, vec, num, num])
        # the sync touches no model code (an explicit tf.cond over variables): plain graph code
        self._sync = tf.function(self._sync_target, input_signature=[tf.TensorSpec([], tf.float32)], autograph=False)

    @property
    def replay(self) -> ReplayBuffer:
        """The replay buffer of the exploring policy's episodes (the source's)."""
        return self.source.replay

    @property
    def demonstrations(self) -> ReplayBuffer | None:
        """The demonstrations buffer (:meth:`add_demonstrations`), or None."""
        return self.source.demonstrations

    # ------------------------------------------------------------------ run state
    @property
    def acting_agent(self):
        return self.policy

    def _trackables(self):
        out = dict(super()._trackables(), q_model=self.q_model, target_model=self.target_model,
                   policy_rng=self.policy.rng, epsilon=self.policy.epsilon, replay=self.replay)
        if self.demonstrations is not None:
            out["demonstrations"] = self.demonstrations
        return out

    def _python_state(self):
        return {"num_steps": self.num_steps}

    def _load_python_state(self, state):
        self.num_steps = int(state["num_steps"])

    # ------------------------------------------------------------------ graph
    def q_values(self, input_ids, attention_mask):
        """Q(s_t, .) for every prefix of (B, L) sequences: (B, L, V); position t is the state after token t.
        Causal LMs; for encoder-decoders use :func:`completion_q_values` (source + target tokens)."""
        return self.policy.token_logits(tf.convert_to_tensor(input_ids, tf.int32),
                                        tf.convert_to_tensor(attention_mask, tf.int32))

    def _sync_target(self, tau):
        """Q_bar <- tau * Q + (1 - tau) * Q_bar (tau = 1: an exact copy)."""
        for target, online in zip(self._target_variables, self._online_variables):
            if self.config.target_update_tau >= 1.0:
                target.assign(online)
            else:
                target.assign(tau * online + (1.0 - tau) * target)
        return tf.constant(True)

    def sync_target_network(self):
        """Copy (or Polyak-average, per the config) the online network into the target network now."""
        self._sync(tf.constant(self.config.target_update_tau, tf.float32))

    def _td_loss(self, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, tape):
        """The TD loss of a batch and its statistics; the target network runs outside ``tape``."""
        cfg = self.config
        mask = tf.cast(completion_mask, tf.float32)  # (B, T)
        with tape.stop_recording():
            token_rewards = ops.last_token_rewards(rewards * cfg.reward_scale, mask)  # (B, T), R at the last token
            target_q = completion_q_values(self.target_policy, prompt_ids, prompt_mask, completion_ids,
                                           completion_mask)
        q = completion_q_values(self.policy, prompt_ids, prompt_mask, completion_ids, completion_mask)  # (B,T,V)
        probs = tf.stop_gradient(self.policy.policy_probs(q)) if cfg.target == "expected_sarsa" else None
        targets = ops.q_td_targets(target_q, completion_ids, token_rewards, mask, cfg.gamma, cfg.target, probs)
        q_taken = tf.gather(q, completion_ids, axis=-1, batch_dims=2)  # (B, T): Q(s_t, a_t)
        loss, info = ops.td_loss(q_taken, targets, mask, cfg.loss, cfg.huber_delta)
        return loss, {"loss": loss, "td_error": info["td_error"], "q_taken": info["q_taken"], "target": info["target"]}

    def _sync_if_due(self, applied=True):
        """After an update: sync the target network when the update count is a multiple of the period
        (and the update was ``applied``: a refused one leaves the target network alone too)."""
        cfg = self.config
        synced = tf.logical_and(applied, tf.equal(self.optimizer.iterations % cfg.target_update_period, 0))
        # the target network moves only here
        tf.cond(synced, lambda: self._sync_target(tf.constant(cfg.target_update_tau, tf.float32)),
                lambda: tf.constant(False))
        return tf.cast(synced, tf.float32)

    def _train_step(self, *tensors):
        """One TD update through the update runner and the target sync (the export's ``train_step``)."""
        from tf_rl_text.update import apply_update

        info = apply_update(self._grad_step, tensors, self.policy.trainable_variables, self.optimizer,
                            self.config.max_grad_norm)
        info["target_synced"] = self._sync_if_due(tf.logical_and(tf.math.is_finite(info["loss"]),
                                                                 tf.math.is_finite(info["grad_norm"])))
        return info

    def _grad_step(self, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, total_rows, total_tokens):
        """Gradients of one chunk's share (tokens / total_tokens) of the per-token-mean TD loss."""
        share = tf.reduce_sum(tf.cast(completion_mask, tf.float32)) / total_tokens
        variables = self.policy.trainable_variables
        with tf.GradientTape() as tape:
            loss, info = self._td_loss(prompt_ids, prompt_mask, completion_ids, completion_mask, rewards, tape)
            loss = loss * share
        return tape.gradient(loss, variables), {k: v * share for k, v in info.items()}

    def update(self, batch: dict) -> dict:
        """One TD update on a sampled ``batch`` (split into ``grad_accumulation_steps`` chunks when > 1)."""
        tensors = [batch[name] for name in ReplayBuffer.FIELDS]
        info = self.check_update(self.accumulate(self._grads, tensors, self.policy.trainable_variables))
        if "_sync_fn" not in self.__dict__:
            self._sync_fn = tf.function(self._sync_if_due, autograph=False)
        info["target_synced"] = self._sync_fn()
        return info

    # ------------------------------------------------------------------ data
    def add_demonstrations(self, prompts=None, completions=None, rewards=None, references=None) -> int:
        """Store demonstrations (prompt -> good completion) that every minibatch draws from.

        With no arguments the env's references are the demonstrations (each reference of each
        prompt; a reference may be a list of strings). ``rewards`` default to the env's reward
        function on the completions, with ``references`` (default: the completions themselves)
        passed as its references. Returns the number of demonstrations stored in total.
        """
        if prompts is None and completions is None:
            if self.env.references is None:
                raise ValueError("the env has no references to use as demonstrations; pass prompts= and completions=")
            prompts, completions = [], []
            for p, ref in zip(self.env.prompts, self.env.references):
                for r in ([ref] if isinstance(ref, str) else list(ref or [])):
                    prompts.append(p)
                    completions.append(r)
        if prompts is None or completions is None or isinstance(prompts, str) or isinstance(completions, str):
            raise ValueError("pass prompts and completions as two lists of strings of the same length")
        prompts, completions = list(prompts), list(completions)
        if len(prompts) != len(completions) or not prompts:
            raise ValueError(f"need one completion per prompt (and at least one): got {len(prompts)} prompts and "
                             f"{len(completions)} completions")
        prompt_ids, prompt_mask = self.policy.encode_prompts(prompts)
        eos = [self.agent.eos_token_id] if self.agent.eos_token_id >= 0 else []
        tokens = [ids + eos for ids in texts_to_ids(self.agent.tokenizer, completions)]
        width = max(len(t) for t in tokens)
        needed = self.agent.family.tokens_needed(prompt_ids.shape[1], width)
        if needed > self.agent.context_length:
            raise ValueError(f"a demonstration is {prompt_ids.shape[1]} prompt + {width} completion tokens, more than "
                             f"the model's context of {self.agent.context_length}; shorten it")
        completion_ids, completion_mask = pad_token_ids(tokens, self.agent.pad_token_id, "right")
        if rewards is None:
            texts = self.policy.decode_completions(completion_ids, completion_mask)
            refs = completions if references is None else list(references)
            rewards = self.env.compute_rewards(texts, prompts, refs)
        rewards = np.asarray(rewards, np.float32).reshape(-1)
        if rewards.shape[0] != len(prompts):
            raise ValueError(f"rewards must have one number per demonstration ({len(prompts)}), got {rewards.shape[0]}")
        new = [prompt_ids, prompt_mask, completion_ids, completion_mask, rewards]
        if self._demo_rows is not None:  # rebuild one buffer that holds every demonstration
            joined = concat_batches(dict(zip(ReplayBuffer.FIELDS, self._demo_rows)), dict(zip(ReplayBuffer.FIELDS, new)),
                                    self.agent.pad_token_id, self.agent.padding_side)
            new = [joined[name].numpy() for name in ReplayBuffer.FIELDS]
        self._demo_rows = new
        self.source.demonstrations = ReplayBuffer(len(new[4]), new[0].shape[1], new[2].shape[1],
                                                  self.agent.pad_token_id, seed=self.policy.seed + 1,
                                                  name="demonstrations", prompt_padding=self.agent.padding_side)
        self.demonstrations.add(*new)
        if self.restored_from:  # a resumed run re-adds its demonstrations: put back the saved buffer's state
            tf.train.Checkpoint(demonstrations=self.demonstrations).read(self.restored_from).expect_partial()
        return len(self.demonstrations)

    def epsilon_at(self, step: int) -> float:
        """Epsilon after ``step`` collection steps: linear from ``epsilon`` to ``epsilon_final``."""
        cfg = self.config
        if cfg.epsilon_decay_steps == 0:
            return cfg.epsilon
        frac = min(1.0, step / cfg.epsilon_decay_steps)
        return cfg.epsilon + frac * (cfg.epsilon_final - cfg.epsilon)

    # ------------------------------------------------------------------ the loop's parts
    def score(self, batch, per_token: bool = False):
        """The step's replay minibatches as the TD update reads them (the targets are computed in the update,
        from the target network). ``per_token``: a rollout's Q(s_t, a_t), TD targets and log-probs of the
        acting policy (see :meth:`token_credit`)."""
        if per_token:
            return self.token_credit(batch)
        return Scored(batch, [[m[name] for name in ReplayBuffer.FIELDS] for m in batch.minibatches])

    def optimize(self, scored) -> dict:
        """``updates_per_step`` TD updates (one per minibatch), then epsilon's decay by one collection step.
        Returns the last update's statistics."""
        out = {}
        for tensors in scored.tensors:
            out = self.update(dict(zip(ReplayBuffer.FIELDS, tensors)))
            self.num_updates += 1
        self.num_steps += 1
        self.policy.epsilon.assign(self.epsilon_at(self.num_steps))
        return out

    def statistics(self, batch, scored, info) -> dict:
        return dict(super().statistics(batch, scored, info), epsilon=float(self.policy.epsilon.numpy()))

    def token_credit(self, rollout):
        """Q(s_t, a_t), the TD target and log pi of the acting policy for each token of ``rollout``."""
        cfg = self.config
        ids = rollout_ids(rollout)
        mask = tf.cast(ids[3], tf.float32)
        rewards = np.asarray(rollout.rewards, np.float32)
        q = completion_q_values(self.policy, *ids)  # (B, T, V)
        target_q = completion_q_values(self.target_policy, *ids)
        token_rewards = ops.last_token_rewards(tf.constant(rewards) * cfg.reward_scale, mask)
        probs = self.policy.policy_probs(q) if cfg.target == "expected_sarsa" else None
        log_pi = tf.math.log(tf.maximum(self.policy.policy_probs(q), 1e-30))
        tokens = {"log_prob": tf.gather(log_pi, ids[2], axis=-1, batch_dims=2) * mask,
                  "q": tf.gather(q, ids[2], axis=-1, batch_dims=2) * mask,
                  "td_target": ops.q_td_targets(target_q, ids[2], token_rewards, mask, cfg.gamma, cfg.target, probs)}
        return Scored(rollout, ids, rewards, tokens=tokens)

    def _postfix(self, stats):
        shown = {"td": f"{stats['td_error']:.3f}"}
        if "reward_mean" in stats:
            shown["reward"] = f"{stats['reward_mean']:.3f}"
        return shown

    # ------------------------------------------------------------------ export
    def export_train_step(self):
        """The TD update for the SavedModel's ``train_step`` signature, with its input signature.

        f(input_ids, attention_mask (B, P) left padded, completion_ids, completion_mask (B, T),
        rewards (B,)) makes one update (target network synced on the configured schedule) and
        returns the loss and statistics before the update. (The prompt inputs are named as in every
        other export; exports written before 2026-12-06 call them prompt_ids and prompt_mask.)
        """
        signature = [
            tf.TensorSpec([None, None], tf.int32, name="input_ids"),
            tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
            tf.TensorSpec([None, None], tf.int32, name="completion_ids"),
            tf.TensorSpec([None, None], tf.int32, name="completion_mask"),
            tf.TensorSpec([None], tf.float32, name="rewards"),
        ]
        return self.agent.graph_code(self._train_step), signature

    training_only_extras = ("target_variables", "sync_target_network")

    def _export_kwargs(self):
        """Signatures besides the policy's (``generate`` is greedy: argmax Q; ``sample`` the exploring
        policy): ``q_values`` (``input_ids``, ``attention_mask`` (B, L) -> ``q_values`` (B, L, V)),
        ``train_step`` (one TD update, see :meth:`export_train_step`) and ``sync_target_network``. With LoRA
        the export is the merged plain model: ``q_values`` only (no adapters there to train or sync from)."""
        def per_prefix(input_ids, attention_mask):
            return {"q_values": self.policy.token_logits(input_ids, attention_mask)}

        def per_completion(input_ids, attention_mask, completion_ids, completion_mask):  # Q over decoder states
            return {"q_values": completion_q_values(self.policy, input_ids, attention_mask, completion_ids,
                                                    completion_mask)}

        q_values = self.agent.family.head_export(per_prefix, per_completion)

        def sync_target_network():
            return {"synced": self._sync_target(tf.constant(self.config.target_update_tau, tf.float32))}

        if self.agent.lora is not None:  # the merged plain model: no adapters to train or to sync a target from
            return {"extra_objects": {"epsilon": self.policy.epsilon},
                    "extra_functions": {"q_values": q_values},
                    "metadata": {"algorithm": f"q_learning/{self.config.target}"}}
        return {
            "train_step": self.export_train_step(),
            "extra_objects": {"target_variables": list(self._target_variables), "epsilon": self.policy.epsilon},
            "extra_functions": {"q_values": q_values,
                                "sync_target_network": (tf.autograph.experimental.do_not_convert(sync_target_network),
                                                        [])},
            "metadata": {"algorithm": f"q_learning/{self.config.target}"},
        }


__all__ = ["QLearningConfig", "QLearningTrainer"]
