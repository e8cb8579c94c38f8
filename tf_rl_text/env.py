"""TextGenerationEnv: prompts in, rewarded completions out, as a batched tf-agents PyEnvironment.

(A tf-agents ``PyEnvironment`` where tf-agents is installed, Python <= 3.11; elsewhere the same API from
:mod:`tf_rl_text.specs`' stand-ins. :mod:`tf_rl_text.gymnasium_env` is its Gymnasium face.)

RL framing: the state s_t is the prompt plus the tokens generated so far, an action a_t is the
next token id, one episode is one completion, and the reward ``R(x, y)`` arrives on the last
step from a reward function ``reward_fn(completions, prompts, references) -> floats``.

Two ways to drive it:

* token by token, the tf-agents way (``reset()`` / ``step(actions)``), e.g. with
  :meth:`RLAgent.act` - simple, one model call per token;
* a whole batch of episodes at once with :meth:`TextGenerationEnv.rollout`, which lets the agent
  generate every completion in one compiled graph (KV cache) and scores them. Trainers use this.

Batching: the ``batch_size`` rows of a batch run in lockstep. A row that emits EOS is finished;
its later actions are ignored (it is padded). The step turns ``LAST`` for the whole batch when
every row has finished or ``max_new_tokens`` tokens have been generated; every row's reward is
on that step.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable, Sequence

import numpy as np
from tf_rl_text import specs
from tf_rl_text.adapters import CAUSAL_LM
from tf_rl_text.tokens import ids_to_texts, pad_token_ids, texts_to_ids
from tf_rl_text.validation import check_prompts

SAMPLING_KEYS = ("temperature", "top_k", "top_p", "repetition_penalty", "min_new_tokens", "stop_token_ids")
"""The :meth:`RLAgent.generate` keywords ``TextGenerationEnv(sampling=...)`` and ``rollout`` accept."""

Rollout = collections.namedtuple(
    "Rollout",
    ["prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "rewards", "prompts", "completions", "references"],
)
Rollout.__doc__ = """One batch of episodes from :meth:`TextGenerationEnv.rollout`.

prompt_ids/prompt_mask: (B, P) int32, left padded; completion_ids/completion_mask: (B, T) int32;
rewards: (B,) float32; prompts, completions: lists of B strings; references: list of B (or None).
"""


class RewardTimeoutError(RuntimeError):
    """The reward function did not return within ``reward_timeout_s``."""


class StopRequested(BaseException):
    """SIGINT/SIGTERM arrived while a trainer waited for the reward function: the step is abandoned (nothing
    was trained on it) and the trainer saves its last complete state. A ``BaseException``, like
    ``KeyboardInterrupt``, so that ``except Exception`` in a reward function does not swallow it."""


STOP = threading.Event()
"""Set by a training trainer's SIGINT/SIGTERM handler; a reward call waiting under a timeout stops on it."""
IN_REWARD = threading.Event()
"""Set while the main thread runs a reward function directly (no timeout): the handler may then raise
:class:`StopRequested` into it instead of waiting for it to return."""


def _call_reward(fn, args, timeout, name, where):
    """``fn(*args)``; with ``timeout`` (seconds) in a worker thread, waited for in short slices so that a
    stop request (SIGTERM/SIGINT during training) is seen at once, and a hung function fails by name."""
    if timeout is None:
        IN_REWARD.set()
        try:
            return fn(*args)
        finally:
            IN_REWARD.clear()
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            box["error"] = err

    worker = threading.Thread(target=run, name=f"reward {name}", daemon=True)
    start = time.monotonic()
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        if STOP.is_set():
            raise StopRequested(f"stopped while reward_fn {name} ran {where}")
        if worker.is_alive() and time.monotonic() - start > timeout:
            raise RewardTimeoutError(
                f"reward_fn {name} did not return within reward_timeout_s={timeout:g} s {where}; nothing was trained on "
                "this batch. Fix the reward function (a hung call, a server that does not answer?) or raise the timeout "
                "(its thread is left running in the background)")
    if "error" in box:
        raise box["error"]
    return box["value"]


class ShuffledDraws:
    """States (prompts, preference pairs...) drawn ``batch_size`` at a time in shuffled epochs, with the
    order, cursor and RNG as a JSON-able :meth:`state_dict` that trainers keep in their checkpoints.
    A subclass sets ``self.prompts`` (one per state) and ``self._batch_size`` and calls :meth:`_init_draws`."""

    def _init_draws(self, num_states: int, seed, shuffle: bool):
        self._rng = np.random.RandomState(seed)
        self.shuffle = shuffle
        self._order = np.arange(num_states)
        self._cursor = num_states  # forces a fresh (shuffled) epoch on first draw

    def reseed(self, seed) -> None:
        """Start the draws afresh from ``seed`` (a new shuffled epoch, as after construction)."""
        self._init_draws(len(self.prompts), seed, self.shuffle)

    def next_indices(self, n=None):
        """The next ``n`` (default batch_size) state indices, in shuffled epochs."""
        n = self._batch_size if n is None else n
        picked = []
        while len(picked) < n:
            if self._cursor >= len(self._order):
                self._order = self._rng.permutation(len(self.prompts)) if self.shuffle else np.arange(len(self.prompts))
                self._cursor = 0
            take = self._order[self._cursor : self._cursor + n - len(picked)]
            self._cursor += len(take)
            picked.extend(int(i) for i in take)
        return picked

    def state_dict(self) -> dict:
        """The prompt order, cursor and shuffle RNG state (JSON-able): what decides the next batches.
        Trainers save it in their checkpoints so a resumed run draws the same states."""
        name, keys, pos, has_gauss, cached = self._rng.get_state()
        return {"order": [int(i) for i in self._order], "cursor": int(self._cursor),
                "rng": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}

    def load_state_dict(self, state: dict) -> None:
        """Put back what :meth:`state_dict` returned."""
        self._order = np.asarray(state["order"], dtype=np.int64)
        self._cursor = int(state["cursor"])
        name, keys, pos, has_gauss, cached = state["rng"]
        self._rng.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))


class BatchedEnv(ShuffledDraws, specs.PyEnvironment):
    """What :class:`TextGenerationEnv` and :class:`~tf_rl_text.choice.ChoiceEnv` share: ``batch_size``
    episodes in lockstep (a batched tf-agents ``PyEnvironment``), their states drawn in shuffled
    epochs (:meth:`next_indices`; :meth:`state_dict` for checkpoints), and the reward function's
    output checked in one place (:meth:`compute_rewards`).

    A subclass sets ``self._batch_size``, ``self._observation_spec``, ``self._action_spec``,
    ``self.prompts`` (one per state), ``self.reward_fn``, ``self.num_reward_batches = 0`` and calls
    :meth:`_init_draws` in its ``__init__``; it writes ``_reset`` and ``_step``.
    """

    # ------------------------------------------------------------ specs
    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    # ------------------------------------------------------------ rewards
    def compute_rewards(self, completions, prompts, references, reward_fn=None):
        """Call the reward function (``reward_fn``, default the env's own) and check what it returns: (B,) float32.

        Anything else (an exception, the wrong count, a non-number, NaN or Inf) raises an error
        that names the reward function and the batch; the trainers compute rewards before their
        update, so nothing is trained on the batch.
        """
        self.num_reward_batches += 1
        reward_fn = self.reward_fn if reward_fn is None else reward_fn
        name = getattr(reward_fn, "__name__", None) or type(reward_fn).__name__
        where = f"on batch {self.num_reward_batches}"
        timeout = getattr(self, "reward_timeout_s", None)
        try:
            raw = _call_reward(reward_fn, (list(completions), list(prompts), list(references)), timeout, name, where)
        except RewardTimeoutError:
            raise
        except Exception as err:
            raise RuntimeError(
                f"reward_fn {name} raised {type(err).__name__} {where}: {err}. Nothing was trained on this batch; "
                "fix the reward function (it must return one finite number per completion)"
            ) from err
        try:
            if raw is None or isinstance(raw, (str, bytes, dict)):
                raise TypeError(f"got {type(raw).__name__}, not a sequence of numbers")
            rewards = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"reward_fn {name} must return numbers, one per completion; {where} it returned "
                             f"{str(raw)[:80]} ({err})") from None
        rewards = rewards.reshape(-1)
        if rewards.shape[0] != len(completions):
            raise ValueError(
                f"reward_fn {name} returned {rewards.shape[0]} rewards for {len(completions)} completions {where}; "
                "it must return exactly one number per completion"
            )
        bad = np.flatnonzero(~np.isfinite(rewards))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"reward_fn {name} returned {rewards[i]} (not finite) for completion {i}: {completions[i][:60]!r} "
                f"{where}; rewards must be finite numbers. Nothing was trained on this batch"
            )
        return rewards.astype(np.float32)


class TextGenerationEnv(BatchedEnv):
    """A batched text-generation environment (tf-agents ``PyEnvironment``).

    Args:
      prompts: the prompts episodes start from (non-empty list of strings).
      tokenizer: the policy's tokenizer (Hugging Face).
      reward_fn: ``reward_fn(completions, prompts, references) -> sequence of floats``, one
        finite number per completion.
      references: optional, one per prompt (a string, a list of strings, or None), passed to
        the reward function.
      batch_size: prompts per batch (rows of a time step).
      max_new_tokens: the most tokens one episode generates (>= 1).
      context_length: the model's context; prompts longer than ``context_length -
        max_new_tokens`` are rejected. Defaults to the tokenizer's ``model_max_length``.
      shuffle, seed: prompts are drawn in shuffled epochs (reproducible for a fixed seed).
      reward_timeout_s: fail the batch with :class:`RewardTimeoutError`, naming the reward function,
        when it has not returned after this many seconds (None: wait as long as it takes). The call
        then runs in a worker thread, and SIGINT/SIGTERM during it still stop training cleanly.
      sampling: keyword arguments of :meth:`RLAgent.generate` for every :meth:`rollout`: ``top_p``,
        ``repetition_penalty``, ``min_new_tokens``, ``stop_token_ids``, ``temperature``, ``top_k``
        (e.g. ``{"top_p": 0.9, "min_new_tokens": 2}``); unset ones are the agent's.
      agent: the agent that will act; the observation layout and the context rule are its model
        family's (``agent.family``, :mod:`tf_rl_text.adapters`). A causal LM sees one left-padded
        sequence, prompt then completion; an encoder-decoder (T5, BART...) sees the source
        (``input_ids``, ``attention_mask``, right padded) plus the tokens generated so far
        (``decoder_input_ids``, ``decoder_attention_mask``). Default: the causal layout.
        (Whole-batch :meth:`rollout` works with any agent either way.)

    Example::

        env = TextGenerationEnv(["the movie was"], tokenizer,
                                reward_fn=lambda completions, prompts, refs: [len(c) / 50 for c in completions],
                                batch_size=2, max_new_tokens=8)
        time_step = env.reset()
        while not time_step.is_last().all():
            time_step = env.step(agent.act(time_step))
        print(env.completions, time_step.reward)
    """

    def __init__(
        self,
        prompts: Sequence[str],
        tokenizer,
        reward_fn: Callable,
        references: Sequence | None = None,
        batch_size: int = 8,
        max_new_tokens: int = 16,
        context_length: int | None = None,
        shuffle: bool = True,
        seed: int | None = 0,
        sampling: dict | None = None,
        reward_timeout_s: float | None = None,
        agent=None,
    ):
        super().__init__(handle_auto_reset=True)  # step() after LAST starts a new batch
        if reward_timeout_s is not None and not (isinstance(reward_timeout_s, (int, float)) and reward_timeout_s > 0):
            raise ValueError(f"reward_timeout_s must be a number of seconds > 0 (or None: no limit), got "
                             f"{reward_timeout_s!r}")
        self.reward_timeout_s = None if reward_timeout_s is None else float(reward_timeout_s)
        prompts = check_prompts(prompts)  # a list of non-blank strings
        if not prompts:
            raise ValueError("prompts is empty; TextGenerationEnv needs at least one prompt")
        if references is not None:
            references = list(references)
            if len(references) != len(prompts):
                raise ValueError(
                    f"references must have one entry per prompt: got {len(references)} references for {len(prompts)} prompts"
                )
        if not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable (completions, prompts, references) -> floats, got {reward_fn!r}")
        if int(max_new_tokens) != max_new_tokens or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise ValueError("the tokenizer has neither a pad token nor an EOS token, so batches cannot be padded; "
                                 "set tokenizer.pad_token (e.g. to an existing token such as its EOS)")
            tokenizer.pad_token = tokenizer.eos_token
        self.sampling = self._check_sampling(sampling or {})
        self.tokenizer = tokenizer
        self.num_reward_batches = 0  # reward_fn calls so far; errors name the batch
        self.reward_fn = reward_fn
        self.prompts = prompts
        self.references = references
        self.max_new_tokens = int(max_new_tokens)
        self._batch_size = int(batch_size)
        if context_length is None:
            context_length = getattr(tokenizer, "model_max_length", None)
            if context_length is None or context_length > 1e6:  # "unlimited" sentinel of HF tokenizers
                context_length = None
        self.context_length = context_length
        self.family = self._family(agent)
        self._prompt_tokens = texts_to_ids(tokenizer, prompts)
        for p, ids in zip(prompts, self._prompt_tokens):
            needed = self.family.tokens_needed(len(ids), self.max_new_tokens)
            if context_length is not None and needed > context_length:
                raise ValueError(
                    f"prompt {p[:60]!r} is {len(ids)} tokens; with max_new_tokens={self.max_new_tokens} that exceeds "
                    f"the model's context of {context_length} tokens. Shorten the prompt or lower max_new_tokens"
                )
        self.max_prompt_length = max(1, max(len(ids) for ids in self._prompt_tokens))
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id
        vocab = len(tokenizer)
        self._observation_spec = self.family.observation_spec(self.max_prompt_length, self.max_new_tokens, vocab)
        self._action_spec = specs.BoundedArraySpec((), np.int32, 0, vocab - 1, name="token")
        self._init_draws(len(prompts), seed, shuffle)
        self.batch_prompts: list[str] = []
        self.batch_references: list = []
        self.completions: list[str] = []
        self.last_rewards: np.ndarray | None = None

    @staticmethod
    def _family(agent):
        """The observation layout's family: the agent's (a causal LM's without one)."""
        if agent is None:
            return CAUSAL_LM
        family = getattr(agent, "family", None)
        if family is None:
            raise ValueError(f"agent must be an RLAgent (it has .family, its model's adapter), got {agent!r}")
        return family

    @property
    def encoder_decoder(self) -> bool:
        """Whether observations keep source and target apart (the family's layout; read-only)."""
        return self.family.seq2seq

    # ------------------------------------------------------------ prompts
    def next_prompts(self, batch_size: int | None = None):
        """Draw the next ``batch_size`` prompts (and references) in shuffled epochs."""
        picked = self.next_indices(batch_size)
        prompts = [self.prompts[i] for i in picked]
        refs = [self.references[i] for i in picked] if self.references is not None else [None] * len(picked)
        return prompts, refs

    # ------------------------------------------------------------ whole-batch episodes
    @staticmethod
    def _check_sampling(sampling):
        unknown = sorted(set(sampling) - set(SAMPLING_KEYS))
        if unknown:
            raise ValueError(f"unknown sampling setting(s) {unknown}; the generate keywords a rollout takes are "
                             f"{', '.join(SAMPLING_KEYS)}")
        return dict(sampling)

    def rollout(self, agent, num_samples: int = 1, greedy: bool = False, seed=None, prompts=None, references=None,
                reward_fn=None, **sampling):
        """Run one batch of episodes with ``agent.generate`` (compiled, KV cache) and score them.

        Each of ``batch_size`` prompts is repeated ``num_samples`` times in consecutive rows
        (what leave-one-out and group baselines need). Pass ``prompts`` (and ``references``) to
        roll out a given list instead of drawing the next batch. ``sampling``: generate keywords
        (``top_p=0.9``...) for this rollout, over the env's ``sampling``. ``reward_fn``: scores this
        rollout instead of the env's own (the env is not changed). Returns a :class:`Rollout`.
        """
        sampling = {**self.sampling, **self._check_sampling(sampling)}
        if greedy:  # the nucleus only shapes sampling; a greedy rollout (evaluation, SCST) keeps the other controls
            sampling.pop("top_p", None)
        if prompts is None:
            prompts, references = self.next_prompts()
        elif references is None:
            references = [None] * len(prompts)
        prompts = [p for p in prompts for _ in range(num_samples)]
        references = [r for r in references for _ in range(num_samples)]
        ids, mask = agent.encode_prompts(prompts, min_length=self.max_prompt_length)
        gen = agent.generate(ids, mask, max_new_tokens=self.max_new_tokens, greedy=greedy, seed=seed, **sampling)
        completion_ids, completion_mask = gen.completion_ids.numpy(), gen.completion_mask.numpy()
        completions = agent.decode_completions(completion_ids, completion_mask)
        rewards = self.compute_rewards(completions, prompts, references, reward_fn)
        self.batch_prompts, self.batch_references, self.completions, self.last_rewards = (
            prompts, references, completions, rewards)
        return Rollout(ids, mask, completion_ids, completion_mask, rewards, prompts, completions, references)

    # ------------------------------------------------------------ token-by-token episodes
    @property
    def ended_with_eos(self) -> np.ndarray:
        """(batch_size,) bool: the rows of the token-by-token episode that have emitted EOS so far."""
        return self._finished.copy()

    def _observation(self):
        return self.family.observe(self._ids, self._mask, self._generated, self._generated_mask, self.max_new_tokens,
                                   self.pad_token_id)

    def _reset(self):
        self.batch_prompts, self.batch_references = self.next_prompts()
        length = self.observation_spec()["input_ids"].shape[0]
        b = self._batch_size
        tokens = texts_to_ids(self.tokenizer, self.batch_prompts)
        # causal: left padded, so generated tokens follow the prompt; encoder source: right padded
        self._ids, self._mask = pad_token_ids(tokens, self.pad_token_id, self.family.padding_side, min_length=length)
        self._generated = np.zeros((b, 0), np.int32)
        self._generated_mask = np.zeros((b, 0), np.int32)
        self._finished = np.zeros(b, bool)
        self.completions = []
        return specs.restart(self._observation(), batch_size=b)

    def _step(self, action):
        action = np.asarray(action, dtype=np.int32).reshape(-1)
        if action.shape[0] != self._batch_size:
            raise ValueError(f"step expects one action per row ({self._batch_size}), got {action.shape[0]}")
        live = ~self._finished
        token = np.where(live, action, self.pad_token_id).astype(np.int32)
        self._ids, self._mask = self.family.grow(self._ids, self._mask, token, live)
        self._generated = np.concatenate([self._generated, token[:, None]], axis=1)
        self._generated_mask = np.concatenate([self._generated_mask, live[:, None].astype(np.int32)], axis=1)
        if self.eos_token_id is not None:
            self._finished |= live & (token == self.eos_token_id)
        b = self._batch_size
        if self._finished.all() or self._generated.shape[1] >= self.max_new_tokens:
            self.completions = ids_to_texts(self.tokenizer, self._generated, self._generated_mask)
            rewards = self.compute_rewards(self.completions, self.batch_prompts, self.batch_references)
            self.last_rewards = rewards
            return specs.termination(self._observation(), rewards)
        return specs.transition(self._observation(), np.zeros(b, np.float32), discount=np.ones(b, np.float32))


__all__ = ["TextGenerationEnv", "Rollout", "BatchedEnv", "ShuffledDraws"]
