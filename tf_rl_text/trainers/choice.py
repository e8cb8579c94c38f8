"""Training a choice policy (a sequence classifier, :mod:`tf_rl_text.choice`) with REINFORCE or Q-learning.

REINFORCE (Williams 1992) over an episode of k choices a_1..a_k with reward R:

    L = -(1/B) sum_i (R_i - b_i) sum_t log pi(a_it | s_it)  -  c_e * mean_t H(pi(. | s_it))

with the library's baselines (:class:`~tf_rl_text.trainers.reinforce.ReinforceConfig`: moving average,
self-critical = the greedy choice's reward, RLOO, GRPO) and its advantage/loss functions
(``reinforce_advantages``, ``reinforce_loss``). For k sequential choices this is REFRESH's objective
(Narayan et al. 2018) with a baseline.

Q-learning reads the logits as Q-values, Q(s_t, a) = z(s_t, a) (the scores of the choices still
available at step t), and regresses them on one-step TD targets (``ops.q_td_targets``):
y_t = r_t + gamma max_{a available at t+1} Q(s_{t+1}, a), y_k = R (one step: y = R). The targets come
from the same network, without gradient. Behaviour: epsilon-greedy over the available choices.

Both trainers stand on :class:`~tf_rl_text.trainers.base.Trainer`: the optimizer and learning-rate
schedule come from the config, each update runs through the update runner (``update.py``)
with the algorithm's gradient function, and ``train(num_steps, callbacks=...)``, ``run_dir`` checkpoints and exact resume
work as for the token trainers. The environment is a :class:`~tf_rl_text.choice.ChoiceEnv`, or a
``TextGenerationEnv`` (prompts, reward function) read as a one-step choice among the classifier's labels.

Example::

    trainer = ChoiceReinforceTrainer(RLAgent(classifier), ChoiceEnv(...), ReinforceConfig(baseline="rloo",
                                     num_samples_per_prompt=4, learning_rate=1e-4))
    trainer.train(100); print(trainer.evaluate()); trainer.export("saved_models/chooser")
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import tf
from tf_rl_text.checkpoint import numpy_rng_state, set_numpy_rng_state
from tf_rl_text.choice.agent import completions_of
from tf_rl_text.choice.env import ChoiceEnv, check_choice_agent
from tf_rl_text.choice.export import export_choice_policy
from tf_rl_text.choice.selection import INPUT_NAMES, step_logits
from tf_rl_text.experience import EnvRollouts, Scored
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.validation import check
from tf_rl_text.trainers.reinforce import ReinforceConfig, RewardBaselines, reinforce_advantages, reinforce_loss


def _input_specs(env):
    rank = 2 if env.candidates is None else 3
    specs = [tf.TensorSpec([None] * rank, tf.int32, name=n) for n in INPUT_NAMES]
    return specs + [tf.TensorSpec([None, None], tf.int32, name="choice_mask"),
                    tf.TensorSpec([None, None], tf.int32, name="actions"),
                    tf.TensorSpec([None, None], tf.int32, name="action_mask")]


def _check(agent, env, name):
    """The environment to train on: a ChoiceEnv, or a TextGenerationEnv read as a one-step choice among the
    classifier's labels (its prompts, references, reward function and batch size; the completion is the
    chosen label's name)."""
    from tf_rl_text.env import TextGenerationEnv

    check_choice_agent(agent, name)
    if isinstance(env, TextGenerationEnv):
        if agent.num_labels < 2:
            raise ValueError(
                f"{name} reads a TextGenerationEnv as a one-step choice among the classifier's labels, but "
                f"{type(agent.model).__name__} has num_labels={agent.num_labels}: load it with num_labels=N >= 2, or "
                f"give ChoiceEnv(prompts, tokenizer, reward_fn, candidates=...) to score candidate texts")
        env = ChoiceEnv(env.prompts, env.tokenizer, env.reward_fn, labels=agent.labels, references=env.references,
                        batch_size=env.batch_size, max_length=agent.max_length, shuffle=env.shuffle)
    if not isinstance(env, ChoiceEnv):
        raise TypeError(f"{name} needs a tf_rl_text.choice.ChoiceEnv (states with choices) or a TextGenerationEnv "
                        f"(a choice among the classifier's labels), got {type(env).__name__}")
    return env


class _ChoiceTrainer(Trainer):
    """What both choice trainers share on top of :class:`~tf_rl_text.trainers.base.Trainer`: the
    environment check, the rollout tensors, evaluation over state indices and the choice export.

    Args: agent (a ChoiceAgent), env (a ChoiceEnv or a TextGenerationEnv read as a choice among labels),
    config, and ``run_dir``, ``checkpoint_every``, ``keep_checkpoints``, ``auto_resume`` as for every trainer.
    """

    algorithm = ""

    def __init__(self, agent, env, config=None, **kwargs):
        env = _check(agent, env, type(self).__name__)
        super().__init__(agent, env, config, **kwargs)
        if self.config.grad_accumulation_steps != 1:
            raise ValueError(f"grad_accumulation_steps must be 1 for {type(self).__name__} (a choice batch is one "
                             f"update), got {self.config.grad_accumulation_steps}; lower env.batch_size instead")
        if self.distributed:
            raise ValueError(f"{type(self).__name__} does not support a distribution strategy yet (a choice batch is "
                             "one update on one device): build it without strategy=")
        self.optimizer.build(agent.trainable_variables)  # slots now: the update traces once, restore matches

    def _tensors(self, rollout):
        return [tf.constant(rollout.inputs[n], tf.int32) for n in INPUT_NAMES] + [
            tf.constant(rollout.choice_mask, tf.int32), tf.constant(rollout.actions, tf.int32),
            tf.constant(rollout.action_mask, tf.int32)]

    def _update(self, *tensors):
        """One update of the whole batch through the update runner (:meth:`Trainer.accumulate`), with
        the algorithm's :meth:`_batch_grad_step`."""
        return self.accumulate(self._batch_grads, list(tensors), self.agent.trainable_variables, 1)

    def evaluate(self, indices=None, greedy: bool = True, batch_size: int = 64, seed: int = 0) -> float:
        """Mean reward of the (greedy by default) choices over the states ``indices`` (default: all)."""
        indices = list(range(len(self.env.prompts))) if indices is None else list(indices)
        rewards = []
        for start in range(0, len(indices), batch_size):
            rewards.extend(self.env.rollout(self.agent, greedy=greedy, seed=seed,
                                            indices=indices[start:start + batch_size]).rewards)
        return float(np.mean(rewards))

    def export(self, path: str | None = None) -> str:
        """Write the policy as a SavedModel (``choose`` + ``train_step``; see
        :func:`tf_rl_text.choice.export_choice_policy`); ``tf_rl_text.load(path).choose(...)`` serves it.
        ``path`` defaults to ``run_dir/export``."""
        if path is None:
            if not self.run_dir:
                raise ValueError("export needs a path (this trainer has no run_dir to default to)")
            path = os.path.join(self.run_dir, "export")
        fn, signature = self.export_train_step()
        return export_choice_policy(
            self.agent, path, select=self.env.select, labels=self.env.labels, train_step=(fn, signature),
            optimizer=self.optimizer,
            metadata={"algorithm": self.algorithm, "config": dataclasses.asdict(self.config), "updates": self.num_updates,
                      "global_step": self.global_step})


# --------------------------------------------------------------------------- REINFORCE
def choice_reinforce_loss(logp, action_mask, rewards, baseline, entropy=None, entropy_coef=0.0):
    """REINFORCE over k choices: logp, action_mask (B, k); rewards, baseline (B,); entropy (B, k) or None.

    L = -(1/B) sum_i (R_i - b_i) sum_t logp_it - entropy_coef * mean entropy (a per-episode sum,
    batch mean), through the library's ``reinforce_advantages`` and ``reinforce_loss``.
    """
    advantages = reinforce_advantages(rewards, baseline, action_mask)  # (B, k): R - b at every step taken
    return reinforce_loss(logp, action_mask, advantages, entropy, entropy_coef)


class ChoiceReinforceTrainer(RewardBaselines, _ChoiceTrainer):
    """REINFORCE for a choice policy. Args: agent (a ChoiceAgent), env (a ChoiceEnv), config (a
    :class:`ReinforceConfig`; ``kl_coef`` must be 0, ``gamma`` is unused: the reward is per episode)."""

    algorithm = "reinforce"

    config_class = ReinforceConfig

    def __init__(self, agent, env, config: ReinforceConfig | None = None, **kwargs):
        super().__init__(agent, env, config, **kwargs)
        if self.config.kl_coef:
            raise ValueError(f"kl_coef must be 0 for a choice policy (no KL leash here), got {self.config.kl_coef}")
        self._init_baselines()
        self._batch_grads = agent.compile_fn(self._batch_grad_step, _input_specs(self.env) + [
            tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32),
            tf.TensorSpec([], tf.float32)], jit_compile=self.config.jit_compile)

    def _batch_grad_step(self, input_ids, attention_mask, token_type_ids, choice_mask, actions, action_mask, rewards,
                         baseline, total_rows, total_tokens):
        """The gradient of the batch's loss (the update runner's one-chunk case)."""
        cfg = self.config
        with tf.GradientTape() as tape:
            logits = self.agent.choice_logits(input_ids, attention_mask, token_type_ids, choice_mask, training=True)
            logits = logits / self.agent.temperature  # (B, C)
            per_step = step_logits(logits, choice_mask, actions, action_mask)  # (B, k, C)
            logp = ops.gather_log_probs(per_step, actions) * tf.cast(action_mask, tf.float32)  # (B, k)
            entropy = ops.entropy_from_logits(per_step if cfg.entropy_coef else tf.stop_gradient(per_step))
            loss, info = choice_reinforce_loss(logp, action_mask, rewards, baseline, entropy, cfg.entropy_coef)
            loss = tf.debugging.check_numerics(loss, "REINFORCE loss is NaN or Inf (check rewards and learning rate)")
        variables = self.agent.trainable_variables
        return tape.gradient(loss, variables), {"loss": loss, "policy_loss": info["policy_loss"],
                                                "entropy": info["entropy"]}

    def _greedy_rewards(self, rollout, k):
        return self.env.rollout(self.agent, greedy=True, indices=rollout.indices[::k]).rewards

    def score(self, batch, per_token: bool = False):
        """The batch's rewards (normalised / clipped when configured) and baseline (``config.baseline``)."""
        if per_token:
            raise ValueError("a choice policy picks candidates, not tokens: explain shows token policies only")
        rewards, baseline = self._baseline(batch)
        return Scored(batch, self._tensors(batch) + [tf.constant(rewards, tf.float32), tf.cast(baseline, tf.float32)],
                      np.asarray(batch.rewards, np.float32), np.asarray(baseline))

    def optimize(self, scored) -> dict:
        out = self._update(*scored.tensors)
        self.num_updates += 1
        return out

    def export_train_step(self):
        """REINFORCE as the SavedModel's ``train_step``: f(input_ids, attention_mask, token_type_ids,
        choice_mask, actions, action_mask, advantages (B,)) -> {"loss"}: the trainer's own gradient
        function (advantages as rewards, a zero baseline) through the update runner. Returns (fn, signature)."""
        from tf_rl_text.update import apply_update

        agent, trainer = self.agent, self

        def grad_fn(input_ids, attention_mask, token_type_ids, choice_mask, actions, action_mask, advantages,
                    total_rows, total_tokens):
            grads, info = trainer._batch_grad_step(input_ids, attention_mask, token_type_ids, choice_mask, actions,
                                                   action_mask, advantages, tf.zeros_like(advantages), total_rows,
                                                   total_tokens)
            return grads, {"loss": info["loss"]}

        def train_step(*batch):  # one update of the batch through the update runner
            info = apply_update(grad_fn, batch, agent.trainable_variables, trainer.optimizer,
                                trainer.config.max_grad_norm)
            return {"loss": info["loss"]}

        return agent.graph_code(train_step), _input_specs(self.env) + [tf.TensorSpec([None], tf.float32, name="advantages")]


# --------------------------------------------------------------------------- Q-learning
@dataclasses.dataclass
class ChoiceQConfig(TrainerConfig):
    """Settings of :class:`ChoiceQLearningTrainer` (validated on construction). The optimizer, schedule
    and clipping fields come from :class:`~tf_rl_text.trainers.base.TrainerConfig`."""

    gamma: float = 1.0
    """Discount between the k choices of an episode."""
    epsilon: float = 0.2
    """Epsilon-greedy exploration: a uniformly random available choice with this probability."""
    jit_compile: bool = False
    """Compile the update with XLA."""

    def validate(self):
        super().validate()
        check(0.0 <= self.gamma <= 1.0, "gamma", "in [0, 1]", self.gamma)
        check(0.0 <= self.epsilon <= 1.0, "epsilon", "in [0, 1]", self.epsilon)


def choice_q_loss(q_steps, actions, action_mask, rewards, gamma=1.0):
    """Mean over the steps taken of 0.5 (Q(s_t, a_t) - y_t)^2, with y_t from ``ops.q_td_targets``.

    q_steps: (B, k, C) Q-values at each step, unavailable choices at :data:`tf_rl_text.choice.NEG`;
    actions, action_mask: (B, k); rewards: (B,) the episode's reward (arrives at its last step).
    Returns (loss, info).
    """
    mask = tf.cast(action_mask, tf.float32)
    q_taken = tf.gather(q_steps, actions, axis=-1, batch_dims=2)  # (B, k)
    step_rewards = ops.last_token_rewards(tf.cast(rewards, tf.float32), mask)  # (B, k)
    targets = ops.q_td_targets(q_steps, actions, step_rewards, mask, gamma, kind="q_learning")  # no gradient
    loss = ops.masked_mean(0.5 * tf.square(q_taken - targets), mask)
    return loss, {"q_mean": ops.masked_mean(q_taken, mask), "target_mean": ops.masked_mean(targets, mask)}


class EpsilonGreedyChoices(EnvRollouts):
    """The experience of :class:`ChoiceQLearningTrainer`: each batch is the greedy choices of the env's next
    states with, at each step of each episode and with probability ``epsilon``, a uniformly random available
    choice instead (drawn from ``rng``, a ``numpy`` RandomState the trainer checkpoints), then rewarded."""

    def __init__(self, env, agent, epsilon: float, rng):
        super().__init__(env, agent)
        self.epsilon = float(epsilon)
        self.rng = rng

    def next(self):
        greedy = self.env.rollout(self.agent, greedy=True)
        actions, mask = greedy.actions.copy(), greedy.action_mask
        if self.epsilon:
            for i in range(actions.shape[0]):
                available = list(np.flatnonzero(greedy.choice_mask[i]))
                chosen = []
                for t in range(actions.shape[1]):
                    if not mask[i, t]:
                        break
                    a = actions[i, t]
                    if self.rng.rand() < self.epsilon or a in chosen:
                        a = self.rng.choice([c for c in available if c not in chosen])
                    if a in chosen:  # pragma: no cover
                        a = next(c for c in available if c not in chosen)
                    chosen.append(int(a))
                actions[i, : len(chosen)] = chosen
        prompts, candidates, refs = self.env.states(greedy.indices)
        completions = completions_of(actions, mask, candidates, self.env.labels)
        rewards = self.env.compute_rewards(completions, prompts, refs)
        return greedy._replace(actions=actions, rewards=rewards, completions=completions)


class ChoiceQLearningTrainer(_ChoiceTrainer):
    """Q-learning for a choice policy: the classifier's logits are Q(s, a). Args: agent, env, config
    (:class:`ChoiceQConfig`). Greedy choices (``evaluate``, the export) take argmax_a Q(s, a)."""

    algorithm = "q_learning"

    config_class = ChoiceQConfig

    def __init__(self, agent, env, config: ChoiceQConfig | None = None, **kwargs):
        super().__init__(agent, env, config, **kwargs)
        self._rng = np.random.RandomState(agent.seed)  # epsilon-greedy draws
        self._batch_grads = agent.compile_fn(self._batch_grad_step, _input_specs(self.env) + [
            tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float32)],
            jit_compile=self.config.jit_compile)

    def make_source(self):
        return EpsilonGreedyChoices(self.env, self.agent, self.config.epsilon, self._rng)

    def _python_state(self):
        return {"explore_rng": numpy_rng_state(self._rng)}

    def _load_python_state(self, state):
        set_numpy_rng_state(self._rng, state["explore_rng"])

    def _q_steps(self, input_ids, attention_mask, token_type_ids, choice_mask, actions, action_mask, training=False):
        q = self.agent.choice_logits(input_ids, attention_mask, token_type_ids, choice_mask, training=training)
        return step_logits(q, choice_mask, actions, action_mask)  # (B, k, C)

    def _batch_grad_step(self, input_ids, attention_mask, token_type_ids, choice_mask, actions, action_mask, rewards,
                         total_rows, total_tokens):
        """The gradient of the batch's TD loss (the update runner's one-chunk case)."""
        with tf.GradientTape() as tape:
            q_steps = self._q_steps(input_ids, attention_mask, token_type_ids, choice_mask, actions, action_mask, True)
            loss, info = choice_q_loss(q_steps, actions, action_mask, rewards, self.config.gamma)
            loss = tf.debugging.check_numerics(loss, "Q-learning loss is NaN or Inf (check rewards and learning rate)")
        variables = self.agent.trainable_variables
        return tape.gradient(loss, variables), {"loss": loss, **info}

    def score(self, batch, per_token: bool = False):
        """The epsilon-greedy episodes as the TD update reads them (its targets come from the same Q pass)."""
        if per_token:
            raise ValueError("a choice policy picks candidates, not tokens: explain shows token policies only")
        return Scored(batch, self._tensors(batch) + [tf.constant(batch.rewards, tf.float32)],
                      np.asarray(batch.rewards, np.float32))

    def optimize(self, scored) -> dict:
        out = self._update(*scored.tensors)
        self.num_updates += 1
        return out

    def export_train_step(self):
        """The TD update as ``train_step``: f(inputs..., choice_mask, actions, action_mask, rewards (B,)) -> {"loss"}."""
        from tf_rl_text.update import apply_update

        def train_step(*batch):  # the trainer's own gradient function, through the update runner
            info = apply_update(self._batch_grad_step, batch, self.agent.trainable_variables, self.optimizer,
                                self.config.max_grad_norm)
            return {"loss": info["loss"]}

        return self.agent.graph_code(train_step), _input_specs(self.env) + [tf.TensorSpec([None], tf.float32, name="rewards")]


__all__ = ["ChoiceQConfig", "ChoiceQLearningTrainer", "ChoiceReinforceTrainer", "choice_q_loss", "choice_reinforce_loss"]
