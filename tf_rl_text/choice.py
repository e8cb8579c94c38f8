"""A sequence classifier as the policy: actions are choices, not tokens.

With a ``TF...ForSequenceClassification`` model (BERT, MiniLM, DistilBERT, RoBERTa...), the agent's
action in state s is one of the choices available in s, and

    pi(a | s) = softmax over the available choices of the classifier's logits / temperature.

Two kinds of state, one agent:

* **candidates** (``ChoiceEnv(prompts, tokenizer, reward_fn, candidates=...)``): each state is a
  prompt (a dialogue context, a document...) with its own list of candidate texts; the classifier
  scores every (prompt, candidate) pair (a ``num_labels=1`` model's logit, or the logit of
  ``score_label``), and the chosen candidate is the completion the reward function scores. With
  ``select=k`` an episode picks k candidates one after another without replacement (extractive
  summarization as sequential sentence selection, Narayan et al. 2018, "Ranking Sentences for
  Extractive Summarization with Reinforcement Learning"); the completion is the chosen candidates
  in their original order, and

      log pi(a_1..a_k | s) = sum_t [ z(a_t) - logsumexp_{a available at step t} z(a) ]

  (Plackett-Luce; sampling it = Gumbel top-k of the scores).
* **labels** (``ChoiceEnv(prompts, tokenizer, reward_fn, labels=[...])``): a one-step contextual
  bandit over the classifier's ``num_labels`` outputs; the completion is the chosen label's name.

``RLAgent(classifier)`` returns a :class:`ChoiceAgent` (the article's ``agent = RLAgent(model)``
over ``TFBertForSequenceClassification``). The trainers are in :mod:`tf_rl_text.trainers.choice`
(REINFORCE with the library's baselines, and Q-learning with the logits read as Q-values).

Example::

    from transformers import TFBertForSequenceClassification
    from tf_rl_text import RLAgent
    from tf_rl_text.choice import ChoiceEnv
    from tf_rl_text.trainers.choice import ChoiceReinforceTrainer

    model = TFBertForSequenceClassification.from_pretrained(folder, num_labels=2)
    env = ChoiceEnv(texts, tokenizer, reward_fn, labels=["negative", "positive"], references=gold)
    agent = RLAgent(model)                                  # a ChoiceAgent
    trainer = ChoiceReinforceTrainer(agent, env)
    for episode in range(100):
        trainer.step()
    trainer.export("saved_models/chooser"); tf_rl_text.load("saved_models/chooser").choose(["great film"])
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
from typing import Callable, Sequence

import numpy as np
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from tf_rl_text.env import BatchedEnv
from tf_rl_text import ops
from tf_rl_text._compat import tf
from tf_rl_text.policy import PolicyBase
from tf_rl_text.tokens import resolve_tokenizer

NEG = -1e9
"""The logit of an unavailable choice (a padded candidate slot, or one already selected)."""

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


# --------------------------------------------------------------------------- model families
def is_sequence_classifier(model) -> bool:
    """True for a Hugging Face ``TF...ForSequenceClassification`` model."""
    return type(model).__name__.endswith("ForSequenceClassification") or any(
        c.__name__.endswith("ForSequenceClassification") for c in type(model).__mro__)


# --------------------------------------------------------------------------- pure math
def mask_choices(logits, choice_mask):
    """``logits`` where ``choice_mask`` is 1, :data:`NEG` elsewhere (same shape)."""
    return tf.where(tf.cast(choice_mask, tf.bool), logits, tf.cast(NEG, logits.dtype))


def step_logits(logits, choice_mask, actions, action_mask):
    """The logits at each of k sequential choices, previous choices removed: (B, k, C).

    logits: (B, C) scores of the state's choices; choice_mask: (B, C) 1 = available at the start;
    actions: (B, k) int32 chosen indices in order; action_mask: (B, k) 1 = that step was taken.
    """
    num_choices = tf.shape(logits)[1]
    chosen = tf.one_hot(actions, num_choices, dtype=logits.dtype) * tf.cast(action_mask, logits.dtype)[..., None]
    removed = tf.cumsum(chosen, axis=1, exclusive=True)  # (B, k, C): chosen before step t
    available = tf.cast(choice_mask, logits.dtype)[:, None, :] * (1.0 - removed)
    return mask_choices(tf.broadcast_to(logits[:, None, :], tf.shape(available)), available)


def selection_log_probs(logits, choice_mask, actions, action_mask):
    """log pi(a_t | s_t) of k sequential choices without replacement (Plackett-Luce): (B, k).

    0 where ``action_mask`` is 0. With k = 1 this is log softmax over the available choices.
    """
    per_step = step_logits(logits, choice_mask, actions, action_mask)  # (B, k, C)
    logp = ops.gather_log_probs(per_step, actions)  # (B, k)
    return logp * tf.cast(action_mask, logp.dtype)


def sample_selection(logits, choice_mask, k, seed, greedy=False):
    """k choices without replacement per row: Gumbel top-k of the masked logits (= sequential sampling
    from the softmax); greedy: the k highest. Returns (actions (B, k) int32, action_mask (B, k) int32):
    rows with fewer than k available choices take them all, the rest of the row is masked."""
    masked = mask_choices(logits, choice_mask)
    if not greedy:
        uniform = tf.random.stateless_uniform(tf.shape(masked), seed, minval=1e-20, maxval=1.0)
        masked = masked - tf.math.log(-tf.math.log(uniform))
    width = tf.minimum(k, tf.shape(masked)[1])
    actions = tf.math.top_k(masked, k=width).indices  # (B, k')
    actions = tf.pad(actions, [[0, 0], [0, k - width]])
    available = tf.reduce_sum(tf.cast(choice_mask, tf.int32), axis=1)  # (B,)
    action_mask = tf.cast(tf.range(k)[None, :] < available[:, None], tf.int32)
    return tf.cast(actions * action_mask, tf.int32), action_mask


# --------------------------------------------------------------------------- encoding
def encode_pair(tokenizer, a, b=None, max_length=128):
    """The tokenizer's encoding of the pair (a, b) in at most ``max_length`` tokens, ``a`` (the prompt)
    truncated first; both when ``b`` (the candidate) alone is too long. An empty ``a``: ``b`` alone."""
    if b is not None and not a:
        a, b = b, None
    if b is None:
        return tokenizer(a, truncation=True, max_length=max_length)
    try:
        return tokenizer(a, b, truncation="only_first", max_length=max_length)
    except Exception:  # noqa: BLE001 (the fast tokenizers raise a bare Exception when a alone cannot make room)
        return tokenizer(a, b, truncation="longest_first", max_length=max_length)


def encode_choices(tokenizer, prompts, candidates=None, max_length=128, num_choices=None, length=None):
    """Token ids for choice states, as numpy int32 arrays.

    candidates given (one list per prompt): every (prompt, candidate) pair, the prompt truncated first
    -> ``input_ids``, ``attention_mask``, ``token_type_ids`` (B, C, L) and ``choice_mask`` (B, C),
    C = ``num_choices`` or the longest list; an empty prompt encodes the candidate alone.
    candidates None: each prompt alone -> (B, L) arrays. L = the longest encoding, or ``length``.
    """
    def encode(a, b=None):
        enc = encode_pair(tokenizer, a, b, max_length)
        return enc["input_ids"], enc.get("token_type_ids") or [0] * len(enc["input_ids"])

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if candidates is None:
        rows = [[encode(p)] for p in prompts]
        choice_mask = None
    else:
        if len(candidates) != len(prompts):
            raise ValueError(f"candidates must hold one list per prompt: got {len(candidates)} lists for "
                             f"{len(prompts)} prompts")
        width = max([len(c) for c in candidates] + [num_choices or 0, 1])
        rows = [[encode(p, c) for c in cands] for p, cands in zip(prompts, candidates)]
        choice_mask = np.zeros((len(prompts), width), np.int32)
        for i, cands in enumerate(candidates):
            choice_mask[i, : len(cands)] = 1
    seq = length or max([len(ids) for row in rows for ids, _ in row] + [1])
    width = 1 if candidates is None else choice_mask.shape[1]
    ids = np.full((len(prompts), width, seq), pad, np.int32)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for i, row in enumerate(rows):
        for j, (tokens, token_types) in enumerate(row):
            n = min(len(tokens), seq)
            ids[i, j, :n], mask[i, j, :n], types[i, j, :n] = tokens[:n], 1, token_types[:n]
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if candidates is None:
        return {k: v[:, 0] for k, v in out.items()}, None
    return out, choice_mask


# --------------------------------------------------------------------------- agent
class ChoiceAgent(PolicyBase):
    """A policy over choices, pi(a | s) = softmax of a sequence classifier's logits over the choices in s.

    ``RLAgent(classifier)`` returns one: a sibling of the token policy on
    :class:`~tf_rl_text.policy.PolicyBase` (model, tokenizer, RNG, compiled functions, LoRA, saving). Args:
      model: a Hugging Face ``TF...ForSequenceClassification`` model.
      tokenizer: its tokenizer; None: loaded from the model's folder (``config.name_or_path``).
      temperature: softmax temperature of pi (sampling and log-probabilities).
      seed: seed of the agent's random generator.
      max_length: the most tokens of one (prompt, candidate) pair; the prompt is truncated first.
      score_label: in candidates mode, the logit that scores a pair: the only one of a
        ``num_labels=1`` model, else this label (index or name; default the last label).
      autograph: as for :class:`RLAgent` (off by default: HF's BERT-family code is plain graph code).

    Candidates mode: inputs (B, C, L) -> logits (B, C); labels mode: inputs (B, L) -> logits (B, num_labels).
    """

    def __init__(self, model, tokenizer=None, temperature: float = 1.0, seed: int | None = None,
                 max_length: int = 128, score_label=None, autograph: bool | None = None, **unused):
        if unused:
            raise TypeError(f"ChoiceAgent got arguments it does not take: {sorted(unused)} (they are for "
                            f"generating models; a classifier picks among choices)")
        if not is_sequence_classifier(model):
            raise TypeError(
                f"ChoiceAgent needs a sequence classifier (TF...ForSequenceClassification, e.g. "
                f"TFBertForSequenceClassification), got {type(model).__name__}; a model that generates tokens "
                f"takes RLAgent(model, tokenizer) with TextGenerationEnv")
        if temperature is None or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if int(max_length) != max_length or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2, got {max_length!r}")
        config = model.config
        self.model = model
        self.tokenizer = resolve_tokenizer(model, tokenizer)
        if self.tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token")
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.num_labels = int(config.num_labels)
        self.labels = [str(config.id2label.get(i, i)) for i in range(self.num_labels)]
        if score_label is None:
            score_label = self.num_labels - 1
        if isinstance(score_label, str):
            if score_label not in self.labels:
                raise ValueError(f"score_label {score_label!r} is not one of the model's labels {self.labels}")
            score_label = self.labels.index(score_label)
        if int(score_label) != score_label or not 0 <= score_label < self.num_labels:
            raise ValueError(f"score_label must be an index in [0, {self.num_labels}) or a label name, got {score_label!r}")
        self.score_label = int(score_label)
        self.max_length = min(int(max_length), int(getattr(config, "max_position_embeddings", max_length)))
        self.temperature = float(temperature)
        self.top_k = 0
        self.is_encoder_decoder = False
        self.padding_side = "right"
        self.vocab_size = int(config.vocab_size)
        self.autograph = False if autograph is None else bool(autograph)
        self.uses_token_types = "token_type_ids" in getattr(self.tokenizer, "model_input_names", ())
        self._init_rng(seed)
        if not model.built:
            model(model.dummy_inputs, training=False)
        self._logits_fn = self.compile_fn(self.choice_logits, reduce_retracing=True)
        self._select_fns = {}

    # ------------------------------------------------------------------ scoring
    def classifier_logits(self, input_ids, attention_mask, token_type_ids=None, training=False, model=None):
        """The classifier's raw logits for flat inputs (N, L): (N, num_labels) float32."""
        model = self.model if model is None else model
        kwargs = {"token_type_ids": token_type_ids} if self.uses_token_types and token_type_ids is not None else {}
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=training, **kwargs).logits
        return tf.cast(logits, tf.float32)

    def choice_logits(self, input_ids, attention_mask, token_type_ids, choice_mask=None, training=False, model=None):
        """Logits z(s, a) of every choice, :data:`NEG` where unavailable: (B, C), not temperature-scaled.

        Candidates mode: inputs (B, C, L), one (prompt, candidate) pair per choice, C = choice_mask's
        width. Labels mode: inputs (B, L), the choices are the ``num_labels`` outputs.
        """
        if input_ids.shape.rank == 3:
            shape = tf.shape(input_ids)
            flat = [tf.reshape(x, [-1, shape[2]]) for x in (input_ids, attention_mask, token_type_ids)]
            logits = self.classifier_logits(*flat, training=training, model=model)[:, self.score_label]
            logits = tf.reshape(logits, shape[:2])  # (B, C)
        elif input_ids.shape.rank == 2:
            if self.num_labels < 2:
                raise ValueError("a one-label classifier offers a single choice; load it with num_labels=N >= 2 "
                                 "for a choice among labels, or give the environment candidates to score")
            logits = self.classifier_logits(input_ids, attention_mask, token_type_ids, training, model)
        else:
            raise ValueError(f"input_ids must be (B, L) for a choice among labels or (B, C, L) for a choice among "
                             f"candidates, got rank {input_ids.shape.rank}")
        if choice_mask is None:
            return logits
        return mask_choices(logits, choice_mask)

    def log_probs_of_choices(self, inputs, choice_mask, actions, action_mask, training=False):
        """log pi(a_t | s_t) of k sequential choices: (B, k). ``inputs``: dict of the three (B, [C,] L) tensors."""
        logits = self.choice_logits(inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"],
                                    choice_mask, training)
        return selection_log_probs(logits / self.temperature, choice_mask, actions, action_mask)

    def probabilities(self, inputs, choice_mask):
        """pi(. | s) over the choices (B, C), numpy."""
        logits = self._logits_fn(*[tf.constant(inputs[k], tf.int32) for k in INPUT_NAMES],
                                 tf.constant(choice_mask, tf.int32))
        return tf.nn.softmax(logits / self.temperature, axis=-1).numpy()

    # ------------------------------------------------------------------ acting
    def encode(self, prompts, candidates=None, num_choices=None, length=None):
        """(inputs, choice_mask) numpy arrays for states: see :func:`encode_choices`; labels mode's
        choice_mask is all ones (B, num_labels)."""
        inputs, choice_mask = encode_choices(self.tokenizer, prompts, candidates, self.max_length, num_choices, length)
        if choice_mask is None:
            choice_mask = np.ones((len(prompts), self.num_labels), np.int32)
        return inputs, choice_mask

    def select_fn(self, greedy: bool, rank: int = 3):
        """The compiled ``f(input_ids, attention_mask, token_type_ids, choice_mask, k, seed) -> (actions,
        action_mask)``; inputs of ``rank`` 3 (B, C, L) candidate pairs or 2 (B, L) texts. One trace each."""
        key = (bool(greedy), int(rank))
        if key not in self._select_fns:
            def fn(input_ids, attention_mask, token_type_ids, choice_mask, k, seed):
                logits = self.choice_logits(input_ids, attention_mask, token_type_ids, choice_mask)
                return sample_selection(logits / self.temperature, choice_mask, k, seed, greedy)

            signature = [tf.TensorSpec([None] * rank, tf.int32) for _ in INPUT_NAMES] + [
                tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32)]
            self._select_fns[key] = self.compile_fn(fn, signature)
        return self._select_fns[key]

    def select(self, inputs, choice_mask, k: int = 1, greedy: bool = False, seed=None):
        """k choices per state (sampled from pi without replacement, or the k most likely): numpy
        (actions (B, k), action_mask (B, k))."""
        if int(k) != k or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        seed = self._next_seed() if seed is None else tf.constant([int(seed), 0], tf.int32)
        actions, action_mask = self.select_fn(bool(greedy), np.ndim(inputs["input_ids"]))(
            *[tf.constant(inputs[n], tf.int32) for n in INPUT_NAMES], tf.constant(choice_mask, tf.int32),
            tf.constant(int(k), tf.int32), seed)
        return actions.numpy(), action_mask.numpy()

    def act(self, time_step, greedy: bool = False):
        """One choice per row for a :class:`ChoiceEnv` time step: (B,) int32."""
        obs = time_step.observation
        if "choice_mask" not in obs:
            raise TypeError(f"{type(self.model).__name__} is a classifier: it picks among choices and cannot act in "
                            f"a token-by-token TextGenerationEnv; use tf_rl_text.choice.ChoiceEnv")
        actions, _ = self.select({n: obs[n] for n in INPUT_NAMES}, obs["choice_mask"], 1, greedy)
        return actions[:, 0]

    def choose(self, prompts, candidates=None, k: int = 1):
        """Greedy choices, texts in: candidates mode -> the chosen candidate(s) (k > 1: joined in their
        original order); labels mode -> the chosen label names."""
        inputs, choice_mask = self.encode(list(prompts), candidates)
        actions, action_mask = self.select(inputs, choice_mask, k, greedy=True)
        return completions_of(actions, action_mask, candidates, self.labels)

    # ------------------------------------------------------------------ what a classifier cannot do
    TOKEN_POLICY_METHODS = frozenset({"generate", "generate_text", "generate_fn", "log_probs", "completion_forward",
                                      "completion_logits", "sequence_log_probs", "token_logits", "causal_lm",
                                      "attach_value_head", "encode_prompts", "decode_completions"})
    """What only a token policy has: asked of a choice policy, they raise a TypeError that says what to use."""

    def __getattr__(self, name):
        if name in ChoiceAgent.TOKEN_POLICY_METHODS:
            raise TypeError(
                f"{type(self.model).__name__} is a sequence classifier: its actions are choices, it does not generate "
                f"tokens (no {name}). Use tf_rl_text.choice.ChoiceEnv with tf_rl_text.trainers.choice."
                f"ChoiceReinforceTrainer / ChoiceQLearningTrainer; generating text (TextGenerationEnv, ReinforceTrainer, "
                f"PPO...) needs a causal LM (TFAutoModelForCausalLM) or an encoder-decoder (TFAutoModelForSeq2SeqLM)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def completions_of(actions, action_mask, candidates, labels):
    """The completion texts of choices: candidates in their original order joined by spaces, or label names."""
    out = []
    for i, (row, m) in enumerate(zip(np.asarray(actions), np.asarray(action_mask))):
        picked = sorted(int(a) for a, keep in zip(row, m) if keep)
        if candidates is None:
            out.append(" ".join(labels[a] for a in picked))
        else:
            out.append(" ".join(candidates[i][a] for a in picked))
    return out


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
            "input_ids": array_spec.BoundedArraySpec(shape, np.int32, 0, vocab - 1, name="input_ids"),
            "attention_mask": array_spec.BoundedArraySpec(shape, np.int32, 0, 1, name="attention_mask"),
            "token_type_ids": array_spec.BoundedArraySpec(shape, np.int32, 0, 1, name="token_type_ids"),
            "choice_mask": array_spec.BoundedArraySpec((self.num_choices,), np.int32, 0, 1, name="choice_mask"),
        }
        self._action_spec = array_spec.BoundedArraySpec((), np.int32, 0, self.num_choices - 1, name="choice")
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
        return ts.restart(self._observation(), batch_size=self._batch_size)

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
            return ts.termination(self._observation(), self.last_rewards)
        return ts.transition(self._observation(), np.zeros(b, np.float32), discount=np.ones(b, np.float32))


def check_choice_agent(agent, where):
    """A clear error when a generating agent meets a choice environment or trainer."""
    if not isinstance(agent, ChoiceAgent):
        model = getattr(agent, "model", agent)
        raise TypeError(
            f"{where} needs a choice policy over a sequence classifier (RLAgent(TF...ForSequenceClassification) "
            f"returns one), got {type(agent).__name__} over {type(model).__name__}, which generates tokens: "
            f"train it with TextGenerationEnv and ReinforceTrainer / PPOTrainer / QLearningTrainer")


# --------------------------------------------------------------------------- export
CHOICE_FORMAT = "tf_rl_text.choice/1"


def export_choice_policy(agent, path, select=1, labels=None, train_step=None, optimizer=None, metadata=None):
    """Write a choice policy as a SavedModel at ``path``; returns ``path``.

    Signatures (plain TF: ``tf.saved_model.load(path).choose(...)``):

    * ``choose`` (= ``serving_default``): ``input_ids``, ``attention_mask``, ``token_type_ids``
      (B, C, L) pairs [or (B, L) texts for a choice among labels], ``choice_mask`` (B, C) ->
      ``choice`` (B,) the most likely choice, ``probabilities`` (B, C) pi(. | s), ``ranking`` (B, k)
      the ``select`` most likely choices in order and ``ranking_mask`` (B, k) (0 past a row's choices);
    * ``train_step`` (when given): one update of the trainer, e.g. REINFORCE's
      (inputs, choice_mask, actions, action_mask, advantages) -> ``loss``.

    An agent with LoRA adapters exports the merged plain classifier (as :func:`~tf_rl_text.export.export_policy`
    does), without ``train_step`` and optimizer state (metadata ``lora`` says so); the live model is unchanged.
    """
    from tf_rl_text.savedmodel import METADATA_FILE, TOKENIZER_DIR, Unsaved, check_replaceable, write_atomically
    from tf_rl_text.validation import check_writable_folder

    check_writable_folder(path, "export")  # before the (slow) tracing, as export_policy
    check_replaceable(path)
    lora = getattr(agent, "lora", None)
    if lora is not None:  # the merged plain model, as export_policy writes it: no adapter training in it
        train_step = optimizer = None
        metadata = dict(metadata or {}, lora=lora.export_metadata())
    candidates_mode = labels is None
    rank = 3 if candidates_mode else 2
    specs = [tf.TensorSpec([None] * rank, tf.int32, name=n) for n in INPUT_NAMES]
    specs.append(tf.TensorSpec([None, None], tf.int32, name="choice_mask"))
    k, temperature = int(select), agent.temperature

    def choose(input_ids, attention_mask, token_type_ids, choice_mask):
        logits = agent.choice_logits(input_ids, attention_mask, token_type_ids, choice_mask)
        probabilities = tf.nn.softmax(logits / temperature, axis=-1)
        ranking, ranking_mask = sample_selection(logits, choice_mask, k, tf.constant([0, 0]), greedy=True)
        return {"choice": tf.argmax(logits, axis=-1, output_type=tf.int32), "probabilities": probabilities,
                "ranking": ranking, "ranking_mask": ranking_mask}

    module = tf.Module()
    module._holder = Unsaved(agent)
    module.model_variables = list(agent.model.variables)
    module.choose = agent.compile_fn(choose, specs)
    signatures = {"serving_default": module.choose, "choose": module.choose}
    if train_step is not None:
        fn, signature = train_step
        module.train_step = tf.function(fn, input_signature=signature)
        signatures["train_step"] = module.train_step
    if optimizer is not None:
        module.optimizer = optimizer
    meta = {"format": CHOICE_FORMAT, "mode": "candidates" if candidates_mode else "labels", "select": k,
            "labels": labels, "max_length": agent.max_length, "temperature": temperature,
            "model_type": getattr(agent.model.config, "model_type", None), "signatures": sorted(signatures)}
    meta.update(metadata or {})

    def write(folder):
        with lora.merged() if lora is not None else contextlib.nullcontext():  # traced, saved merged
            tf.saved_model.save(module, folder, signatures=signatures)
        agent.tokenizer.save_pretrained(os.path.join(folder, TOKENIZER_DIR))
        with open(os.path.join(folder, METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=1, default=str)

    # one atomic writer for every export: a failed or killed write never leaves a folder that looks complete
    return write_atomically(path, write)


class LoadedChoicePolicy:
    """A choice policy loaded from its SavedModel: texts in, choice out. ``tf_rl_text.load`` returns one."""

    def __init__(self, path, metadata):
        from transformers import AutoTokenizer

        from tf_rl_text.savedmodel import TOKENIZER_DIR

        self.path, self.metadata = path, metadata
        self.module = tf.saved_model.load(path)
        self.tokenizer = AutoTokenizer.from_pretrained(os.path.join(path, TOKENIZER_DIR))
        self.labels = metadata.get("labels")
        self.select = int(metadata.get("select", 1))

    def scores(self, prompts, candidates=None):
        """The exported ``choose`` on texts: dict of numpy ``choice``, ``probabilities``, ``ranking``."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if (candidates is None) != (self.labels is not None):
            raise ValueError("this policy chooses among " + ("its labels: call choose(texts)" if self.labels is not None
                             else "candidates: call choose(prompts, candidates) with one list of texts per prompt"))
        inputs, choice_mask = encode_choices(self.tokenizer, list(prompts), candidates, int(self.metadata["max_length"]))
        if choice_mask is None:
            choice_mask = np.ones((len(prompts), len(self.labels)), np.int32)
        out = self.module.choose(*[tf.constant(inputs[n]) for n in INPUT_NAMES], tf.constant(choice_mask))
        return {k: v.numpy() for k, v in out.items()}

    def choose(self, prompts, candidates=None):
        """The greedy choice of each state as text: the chosen candidate(s) (``select`` > 1: joined in their
        original order) or the chosen label's name."""
        out = self.scores(prompts, candidates)
        return completions_of(out["ranking"], out["ranking_mask"], candidates, self.labels)


__all__ = ["ChoiceAgent", "ChoiceEnv", "ChoiceRollout", "LoadedChoicePolicy", "encode_choices", "encode_pair", "export_choice_policy",
           "is_sequence_classifier", "mask_choices", "sample_selection", "selection_log_probs", "step_logits"]
