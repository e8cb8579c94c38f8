"""ChoiceEnv: a batch of prompts, each with its candidates (or the classifier's labels), as one-step
or sequential selection episodes with rewards (the tf-agents contract).
"""
from __future__ import annotations

import collections
from typing import Callable, Sequence

import numpy as np

from tf_rl_text import specs
from tf_rl_text.choice.agent import ChoiceAgent, completions_of
from tf_rl_text.choice.selection import encode_choices
from tf_rl_text.env import BatchedEnv


# --------------------------------------------------------------------------- environment
ChoiceRollout = collections.namedtuple(
    "ChoiceRollout",
    ["inputs", "choice_mask", "actions", "action_mask", "rewards", "prompts", "completions", "references", "indices"],
)
ChoiceRollout.__doc__ = """One batch of choice episodes from :meth:`ChoiceEnv.rollout`.

inputs: dict of ``input_ids``/``attention_mask``/``token_type_ids`` (B, C, L) or (B, L) int32;
choice_mask: (B, C); actions, action_mask: (B, k) the choices in order; rewards: (B,) float32;
prompts, completions, references: lists of B; indices: (B,) the states' rows in the environment.
"""


class ChoiceEnv(BatchedEnv):
    """Episodes whose actions are choices (a tf-agents ``PyEnvironment``, sibling of TextGenerationEnv).

    Args:
      prompts: one per state (a context, a document, a text to label).
      tokenizer: the classifier's tokenizer.
      reward_fn: ``reward_fn(completions, prompts, references) -> floats``, as for TextGenerationEnv;
        a completion is the chosen candidate (k > 1: the chosen ones joined in their original order)
        or the chosen label's name.
      candidates: one list of candidate texts per prompt (candidates mode), or None (labels mode).
      labels: labels mode: the names of the classifier's outputs (a list), or their number.
      references: optional, one per prompt, passed to the reward function.
      select: k, the choices one episode makes (without replacement; candidates mode).
      batch_size, shuffle, seed: states per batch, drawn in shuffled epochs.
      max_length: tokens per encoded (prompt, candidate) pair, the observation's last axis.

    Token by token: ``reset()`` -> ``step(choice)`` x k; each observation holds the encoded pairs
    and ``choice_mask`` (the choices still available); the reward arrives on the last step.
    """

    def __init__(self, prompts: Sequence[str], tokenizer, reward_fn: Callable, candidates: Sequence | None = None,
                 labels=None, references: Sequence | None = None, select: int = 1, batch_size: int = 8,
                 max_length: int = 128, shuffle: bool = True, seed: int | None = 0):
        super().__init__(handle_auto_reset=True)
        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings, got a single string; wrap it in a list")
        prompts = list(prompts)
        if not prompts:
            raise ValueError("prompts is empty; ChoiceEnv needs at least one state")
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise ValueError(f"prompts[{i}] must be a string, got {type(p).__name__}: {p!r}")
        if not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable (completions, prompts, references) -> floats, got {reward_fn!r}")
        if (candidates is None) == (labels is None):
            raise ValueError("give exactly one of candidates= (one list of texts per prompt: choose among them) or "
                             "labels= (the classifier's label names: a one-step choice among labels)")
        if candidates is not None:
            candidates = [list(c) for c in candidates]
            if len(candidates) != len(prompts):
                raise ValueError(f"candidates must hold one list per prompt: got {len(candidates)} for {len(prompts)} prompts")
            for i, c in enumerate(candidates):
                if not c or not all(isinstance(t, str) for t in c):
                    raise ValueError(f"candidates[{i}] must be a non-empty list of strings, got {c!r}")
        if labels is not None:
            labels = [str(i) for i in range(int(labels))] if isinstance(labels, int) else [str(x) for x in labels]
            if len(labels) < 2:
                raise ValueError(f"labels must name at least 2 choices, got {labels!r}")
        if references is not None:
            references = list(references)
            if len(references) != len(prompts):
                raise ValueError(f"references must have one entry per prompt: got {len(references)} for {len(prompts)}")
        if int(select) != select or select < 1 or (labels is not None and select != 1):
            raise ValueError(f"select must be an integer >= 1 (and 1 for a choice among labels), got {select!r}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.prompts, self.candidates, self.labels, self.references = prompts, candidates, labels, references
        self.tokenizer, self.reward_fn = tokenizer, reward_fn
        self.num_reward_batches = 0  # reward_fn calls so far (TextGenerationEnv.compute_rewards names the batch)
        self.select, self.max_length, self._batch_size = int(select), int(max_length), int(batch_size)
        self.num_choices = len(labels) if labels is not None else max(len(c) for c in candidates)
        vocab = len(tokenizer)
        shape = (self.max_length,) if candidates is None else (self.num_choices, self.max_length)
        self._observation_spec = {
            "input_ids": specs.BoundedArraySpec(shape, np.int32, 0, vocab - 1, name="input_ids"),
            "attention_mask": specs.BoundedArraySpec(shape, np.int32, 0, 1, name="attention_mask"),
            "token_type_ids": specs.BoundedArraySpec(shape, np.int32, 0, 1, name="token_type_ids"),
            "choice_mask": specs.BoundedArraySpec((self.num_choices,), np.int32, 0, 1, name="choice_mask"),
        }
        self._action_spec = specs.BoundedArraySpec((), np.int32, 0, self.num_choices - 1, name="choice")
        self._init_draws(len(prompts), seed, shuffle)
        self.completions: list[str] = []
        self.last_rewards = None

    def states(self, indices):
        """(prompts, candidates or None, references) of the given state indices."""
        prompts = [self.prompts[i] for i in indices]
        candidates = [self.candidates[i] for i in indices] if self.candidates is not None else None
        refs = [self.references[i] for i in indices] if self.references is not None else [None] * len(indices)
        return prompts, candidates, refs

    def encode(self, indices, length=None):
        prompts, candidates, _ = self.states(indices)
        inputs, choice_mask = encode_choices(self.tokenizer, prompts, candidates, self.max_length,
                                             None if candidates is None else self.num_choices, length)
        if choice_mask is None:
            choice_mask = np.ones((len(indices), self.num_choices), np.int32)
        return inputs, choice_mask

    # ------------------------------------------------------------ whole-batch episodes
    def rollout(self, agent, num_samples: int = 1, greedy: bool = False, seed=None, indices=None):
        """One batch of episodes (all k choices of a state in one compiled call) and their rewards.

        Each state is repeated ``num_samples`` times in consecutive rows; ``indices`` rolls out these
        states instead of the next batch. Returns a :class:`ChoiceRollout`.
        """
        check_choice_agent(agent, "ChoiceEnv.rollout")
        if self.labels is not None and agent.num_labels != len(self.labels):
            raise ValueError(f"the environment offers {len(self.labels)} labels {self.labels}, but the classifier "
                             f"{type(agent.model).__name__} has num_labels={agent.num_labels}; load it with "
                             f"num_labels={len(self.labels)}")
        indices = self.next_indices() if indices is None else list(indices)
        indices = [i for i in indices for _ in range(num_samples)]
        inputs, choice_mask = self.encode(indices)
        actions, action_mask = agent.select(inputs, choice_mask, self.select, greedy, seed)
        prompts, candidates, refs = self.states(indices)
        completions = completions_of(actions, action_mask, candidates, self.labels)
        rewards = self.compute_rewards(completions, prompts, refs)
        self.completions, self.last_rewards = completions, rewards
        return ChoiceRollout(inputs, choice_mask, actions, action_mask, rewards, prompts, completions, refs,
                             np.asarray(indices))

    # ------------------------------------------------------------ step by step
    def _observation(self):
        return dict(self._inputs, choice_mask=self._available.copy())

    def _reset(self):
        self._indices = self.next_indices()
        self._inputs, self._available = self.encode(self._indices, length=self.max_length)
        self._needed = np.minimum(self._available.sum(axis=1), self.select)
        self._chosen = [[] for _ in self._indices]
        self.completions = []
        return specs.restart(self._observation(), batch_size=self._batch_size)

    def _step(self, action):
        action = np.asarray(action, dtype=np.int32).reshape(-1)
        if action.shape[0] != self._batch_size:
            raise ValueError(f"step expects one choice per row ({self._batch_size}), got {action.shape[0]}")
        for i, a in enumerate(action):
            if len(self._chosen[i]) >= self._needed[i]:
                continue  # this row's episode is over; its action is ignored
            if not 0 <= a < self.num_choices or not self._available[i, a]:
                raise ValueError(f"row {i}: choice {a} is not available; available choices: "
                                 f"{np.flatnonzero(self._available[i]).tolist()}")
            self._chosen[i].append(int(a))
            if self.candidates is not None:
                self._available[i, a] = 0
        b = self._batch_size
        if all(len(c) >= n for c, n in zip(self._chosen, self._needed)):
            prompts, candidates, refs = self.states(self._indices)
            k = self.select
            actions = np.array([c + [0] * (k - len(c)) for c in self._chosen], np.int32)
            mask = np.array([[1] * len(c) + [0] * (k - len(c)) for c in self._chosen], np.int32)
            self.completions = completions_of(actions, mask, candidates, self.labels)
            self.last_rewards = self.compute_rewards(self.completions, prompts, refs)
            return specs.termination(self._observation(), self.last_rewards)
        return specs.transition(self._observation(), np.zeros(b, np.float32), discount=np.ones(b, np.float32))


def check_choice_agent(agent, where):
    """A clear error when a generating agent meets a choice environment or trainer."""
    if not isinstance(agent, ChoiceAgent):
        model = getattr(agent, "model", agent)
        raise TypeError(
            f"{where} needs a choice policy over a sequence classifier (RLAgent(TF...ForSequenceClassification) "
            f"returns one), got {type(agent).__name__} over {type(model).__name__}, which generates tokens: "
            f"train it with TextGenerationEnv and ReinforceTrainer / PPOTrainer / QLearningTrainer")


__all__ = ["ChoiceEnv", "check_choice_agent", "ChoiceRollout"]
