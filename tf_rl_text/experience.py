"""Where a trainer's experience comes from, apart from how it learns from it (issue 38).

A **source** yields batches; it does not know the algorithm. A trainer
(:class:`tf_rl_text.trainers.base.Trainer`) owns the one loop::

    batch  = source.next()            # rollouts, preference pairs, replay minibatches...
    scored = trainer.score(batch)     # log-probs, values, advantages, KL: what the update and explain need
    info   = trainer.optimize(scored) # the algorithm's update(s), through the one update runner
    stats  = trainer.statistics(batch, scored, info)   # + the source's own figures (reward, length)

(tf-agents separates drivers that collect from ``TFAgent.train(experience)``; Stable Baselines3
has ``collect_rollouts`` and ``train``.) The sources here:

* :class:`EnvRollouts`: on-policy episodes from an env (``TextGenerationEnv`` or ``ChoiceEnv``),
  ``num_samples`` per prompt in consecutive rows (the groups RLOO and GRPO compare), scored by the
  env's reward or by a reward function given to the source (GRPO's weighted reward functions);
* :class:`PreferencePairSource`: preference pairs (a file's, or pairs made from a reward), drawn
  ``batch_size`` at a time in shuffled epochs and encoded once;
* :class:`ReplaySource`: episodes collected into a replay buffer (and demonstrations), sampled
  ``updates_per_step`` minibatches at a time (Q-learning).

Every source has ``state_dict()`` / ``load_state_dict()`` (what decides its next batches; the
trainer's checkpoint keeps it, so a resumed run draws the same ones), ``statistics(batch)`` (the
figures every algorithm logs the same way) and ``max_new_tokens`` (what an export generates).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import tf
from tf_rl_text.env import ShuffledDraws
from tf_rl_text.replay import concat_batches
from tf_rl_text.tokens import encode_texts


@dataclasses.dataclass
class Scored:
    """What an algorithm's ``score(batch)`` returns and its ``optimize(scored)`` reads.

    ``batch``: what the source yielded; ``tensors``: the update's inputs; ``rewards``, ``baseline``: (B,)
    per sequence where the algorithm has them; ``tokens``: per-token (B, T) quantities (filled when
    ``score(batch, per_token=True)``: what :func:`tf_rl_text.explain.explain` shows); ``extra``: anything
    else the algorithm's ``optimize`` or ``statistics`` reads (its own names)."""

    batch: object
    tensors: list = dataclasses.field(default_factory=list)
    rewards: np.ndarray | None = None
    baseline: np.ndarray | None = None
    tokens: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)


class ExperienceSource:
    """What every source has; see the module docstring. A subclass writes :meth:`next`."""

    env = None
    """The environment its batches come from, or None (preference pairs)."""
    rollouts = None
    """The :class:`EnvRollouts` its episodes come from (explain rolls out through it), or None."""

    def next(self):
        """The next batch."""
        raise NotImplementedError

    def state_dict(self):
        """JSON-able state that decides the next batches (None: nothing to keep)."""
        return None

    def load_state_dict(self, state) -> None:
        """Put back what :meth:`state_dict` returned."""

    def statistics(self, batch) -> dict:
        """The figures of a batch every algorithm logs alike (floats)."""
        return {}

    @property
    def max_new_tokens(self) -> int | None:
        return None if self.env is None else self.env.max_new_tokens


def rollout_ids(rollout) -> list:
    """A rollout's prompt ids, prompt mask, completion ids and completion mask as int32 tensors: what a policy's
    ``log_probs`` / ``completion_logits`` (and :func:`token_scores`) take."""
    return [tf.constant(x) for x in (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                     rollout.completion_mask)]


def token_scores(agent, ids, ref_model=None, estimator: str = "kl") -> dict:
    """log pi, entropy and (with ``ref_model``) log pi_ref, log ratio and the ``estimator`` KL
    (:func:`tf_rl_text.ops.kl_penalty`) of the completion tokens of ``ids`` (prompt ids/mask, completion
    ids/mask) under ``agent``: (B, T) each, 0 on padding."""
    prompt_ids, prompt_mask, completion_ids, completion_mask = ids
    mask = tf.cast(completion_mask, tf.float32)
    logits = agent.completion_logits(prompt_ids, prompt_mask, completion_ids, completion_mask)  # (B, T, V)
    log_softmax = tf.nn.log_softmax(logits, axis=-1)
    logp = tf.gather(log_softmax, completion_ids, axis=-1, batch_dims=2) * mask  # (B, T)
    out = {"log_prob": logp, "entropy": ops.entropy_from_log_probs(log_softmax) * mask}
    if ref_model is not None:
        ref = agent.log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask, model=ref_model) * mask
        out.update(ref_log_prob=ref, log_ratio=(logp - ref) * mask, kl=ops.kl_penalty(logp, ref, mask, estimator))
    return out


def rollout_statistics(rollout) -> dict:
    """Mean and std of a rollout's rewards and its mean completion length (tokens); choice rollouts
    (no completion tokens) give the rewards only."""
    stats = {"reward_mean": float(np.mean(rollout.rewards)), "reward_std": float(np.std(rollout.rewards))}
    mask = getattr(rollout, "completion_mask", None)
    if mask is not None:
        stats["completion_length"] = float(np.mean(np.sum(mask, axis=1)))
    return stats


class EnvRollouts(ExperienceSource):
    """On-policy episodes: each :meth:`next` is ``env.rollout(agent, num_samples)`` (the env's next
    ``batch_size`` prompts, each sampled ``num_samples`` times in consecutive rows).

    ``reward_fn``: scores the completions instead of the env's own reward (the env is not changed);
    None = the env's. :meth:`rollout` rolls out given prompts the same way (evaluation, explain)."""

    def __init__(self, env, agent, num_samples: int = 1, reward_fn=None):
        self.env = env
        self.agent = agent
        self.num_samples = int(num_samples)
        self.reward_fn = reward_fn
        self.rollouts = self

    def rollout(self, agent=None, **kwargs):
        """``env.rollout`` with this source's agent (or ``agent``), sample count and reward function;
        keyword arguments as ``env.rollout`` takes them (``greedy``, ``seed``, ``prompts``...)."""
        kwargs.setdefault("num_samples", self.num_samples)
        if self.reward_fn is not None:
            kwargs["reward_fn"] = self.reward_fn
        return self.env.rollout(self.agent if agent is None else agent, **kwargs)

    def next(self):
        return self.rollout()

    def state_dict(self):
        return self.env.state_dict() if hasattr(self.env, "state_dict") else None

    def load_state_dict(self, state) -> None:
        if state is not None and hasattr(self.env, "load_state_dict"):
            self.env.load_state_dict(state)

    def statistics(self, batch) -> dict:
        """The env's own figures of its rollouts when it has them (a ConversationEnv's), else :func:`rollout_statistics`."""
        own = getattr(self.env, "statistics", None)
        return own(batch) if own is not None else rollout_statistics(batch)


def encode_pairs(agent, pairs, max_new_tokens):
    """(prompt ids, prompt mask, chosen ids, chosen mask, rejected ids, rejected mask) int32 arrays, one row a
    pair; completions cut at ``max_new_tokens`` tokens (EOS included) and right padded."""
    ids, mask = agent.encode_prompts(list(pairs.prompts))
    out = [ids, mask]
    for texts in (pairs.chosen, pairs.rejected):
        c_ids, c_mask = encode_texts(agent.tokenizer, list(texts), max_new_tokens)
        width = max(1, int(c_mask.sum(axis=1).max()))
        out += [c_ids[:, :width], c_mask[:, :width]]
    context = getattr(agent, "context_length", None)
    longest = max(out[3].shape[1], out[5].shape[1])
    if context is not None and agent.family.tokens_needed(ids.shape[1], longest) > context:
        raise ValueError(f"the longest prompt ({ids.shape[1]} tokens) and completion ({longest} tokens) exceed the "
                         f"model's context of {context} tokens together; shorten the prompts or lower "
                         "max_new_tokens")
    return out


class PreferencePairSource(ShuffledDraws, ExperienceSource):
    """Preference pairs (a :class:`~tf_rl_text.preferences.PreferencePairs`), ``batch_size`` at a time in
    shuffled epochs (order and RNG checkpointed), encoded once: prompts as the agent encodes them,
    completions right padded and followed by EOS. Each :meth:`next` is a :class:`PairBatch`."""

    def __init__(self, pairs, agent, batch_size: int, max_new_tokens: int, seed=0):
        if len(pairs) == 0:
            raise ValueError("DPO needs at least one preference pair, got none")
        self.pairs = pairs
        self.prompts = list(pairs.prompts)
        self._batch_size = int(batch_size)
        self._max_new_tokens = int(max_new_tokens)
        self.encoded = encode_pairs(agent, pairs, max_new_tokens)
        self._init_draws(len(pairs), seed, shuffle=True)

    @property
    def max_new_tokens(self) -> int:
        """What an export of the policy generates by default: the pairs' completion length."""
        return self._max_new_tokens

    def batch(self, indices):
        return [x[indices] for x in self.encoded]

    def next(self) -> "PairBatch":
        indices = np.asarray(self.next_indices(), np.int64)
        return PairBatch(indices, self.batch(indices))


@dataclasses.dataclass
class PairBatch:
    """A batch of preference pairs: their ``indices`` in the source's pairs and ``columns``, the six int32
    arrays of :func:`encode_pairs` (prompt ids/mask, chosen ids/mask, rejected ids/mask) of those rows."""

    indices: np.ndarray
    columns: list


@dataclasses.dataclass
class ReplayBatch:
    """One :class:`ReplaySource` draw: the episodes collected this step (or None) and the minibatches
    (dicts of tensors, :data:`ReplayBuffer.FIELDS`) the step's updates learn from."""

    rollout: object
    minibatches: list


class ReplaySource(ExperienceSource):
    """Episodes collected into a replay buffer, and sampled from it: each :meth:`next` collects one
    batch with ``rollouts`` (an :class:`EnvRollouts`, e.g. of an exploring Q policy; with
    ``collect_each_step=False`` it collects nothing and learns from what the buffers hold), stores it in
    ``replay``, then samples ``updates_per_step`` minibatches of
    ``batch_size`` episodes, ``demonstration_fraction`` of each from ``demonstrations`` (a second
    buffer, set later, e.g. by ``QLearningTrainer.add_demonstrations``; all of it while ``replay`` is
    empty). The buffers keep their own contents and RNGs in the trainer's checkpoint."""

    def __init__(self, rollouts, replay, batch_size: int, updates_per_step: int = 1,
                 demonstration_fraction: float = 0.0, pad_token_id: int = 0, padding_side: str = "left",
                 collect_each_step: bool = True):
        self.rollouts = rollouts
        self.collect_each_step = bool(collect_each_step)
        self.env = rollouts.env
        self.replay = replay
        self.demonstrations = None
        self.batch_size = int(batch_size)
        self.updates_per_step = int(updates_per_step)
        self.demonstration_fraction = float(demonstration_fraction)
        self.pad_token_id = int(pad_token_id)
        self.padding_side = padding_side

    def sample(self):
        """One minibatch from the replay buffer and the demonstrations (a dict of tensors)."""
        has_replay, has_demos = len(self.replay) > 0, self.demonstrations is not None
        if not has_replay and not has_demos:
            raise ValueError("nothing to learn from: set collect_rollouts=True or call trainer.add_demonstrations(...)")
        n_demo = 0
        if has_demos:
            n_demo = self.batch_size if not has_replay else int(round(self.batch_size * self.demonstration_fraction))
        demos = self.demonstrations.sample(n_demo) if n_demo else None
        replay = self.replay.sample(self.batch_size - n_demo) if self.batch_size - n_demo else None
        return concat_batches(replay, demos, self.pad_token_id, self.padding_side)

    def next(self) -> ReplayBatch:
        rollout = None
        if self.collect_each_step:
            rollout = self.rollouts.next()
            self.replay.add(rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask,
                            rollout.rewards)
        # the buffers' own RNGs draw the minibatches; the updates between them touch neither
        return ReplayBatch(rollout, [self.sample() for _ in range(self.updates_per_step)])

    def state_dict(self):
        return self.rollouts.state_dict()

    def load_state_dict(self, state) -> None:
        self.rollouts.load_state_dict(state)

    def statistics(self, batch) -> dict:
        stats = {} if batch.rollout is None else rollout_statistics(batch.rollout)
        stats["replay_size"] = len(self.replay)
        return stats


__all__ = ["ExperienceSource", "EnvRollouts", "PreferencePairSource", "ReplaySource", "ReplayBatch", "PairBatch", "Scored",
           "encode_pairs", "rollout_ids", "rollout_statistics", "token_scores"]
