"""Conversations and tools: multi-turn episodes where the policy talks, something answers, and the whole
exchange is rewarded (issue 39).

An episode is up to ``max_turns`` policy turns. Between them the **other side** answers: any object with

    reset(task) -> the opening messages (a list of {"role", "content"} dicts, or one user message as a str)
    step(policy_message: str) -> (reply, reward, done)     # or (reply, reward, done, fault)

``reply`` is a message dict (or a str, read as a user message) or None; ``reward`` is this turn's
reward; ``done`` ends the episode. :class:`tf_rl_text.tools.ToolUse` is the other side for tools (Python functions
the policy calls as ``NAME(ARGUMENTS)``, parsed strictly, run outside the graph with a timeout);
:class:`ScriptedUser` answers from a function. A fresh copy of the other side (``copy.deepcopy``, or a
call when it is a factory function) plays each episode.

**The message format** is Hugging Face's: ``{"role": "system" | "user" | "assistant" | "tool", "content":
str}``. The observation is the whole conversation so far: rendered with the tokenizer's chat template
when it has one, else in the plain role-tagged form (:func:`render_plain`)::

    User: what is 17 + 25?
    Assistant: calc(17+25)
    Tool: 42
    Assistant: 42

**How an episode becomes training rows.** Each policy turn is one row: its prompt is the conversation
so far as token ids (the opening, then each earlier policy turn exactly as sampled, without its EOS, and
each reply rendered), its completion the turn's own tokens. So the loss, the KL to the reference and
the entropy count **only the policy's own tokens**: the other side's tokens are context, never a
completion (their log-probs change the loss by exactly 0; ``tests/test_conversation.py`` checks this
against the masked loss over the whole conversation). A row's reward is the episode's return from that
turn on (the sum of this and the later turns' rewards): REINFORCE, RLOO and GRPO credit every token of a
turn with the return that followed it, PPO and A2C run GAE over the turn's tokens with that return at its
last token. Rows are ordered turn by turn, and within a turn as the episodes are (a task's
``num_samples`` episodes in consecutive rows), so leave-one-out and group baselines compare the samples
of one task at one turn; an episode that has ended gives an empty row (no tokens, return 0) at the later
turns.

**Faults the other side brings** end up in the transcript and the step's statistics (``faults/KIND``),
never as a crash or a lost step:

* ``tool_error``: a tool raised; the policy sees ``Tool: error: ...`` and the episode goes on;
* ``tool_timeout``: a tool did not return within its ``timeout_s``; the same;
* ``malformed_call``: a turn that starts like a call (``calc(``) but is not one; the same;
* ``env_error``: the other side's ``step`` raised: the episode ends, with ``fault_reward``;
* ``context_overflow``: the next turn would not fit in the model's context: the episode ends, with
  ``overflow_reward`` added to the last turn;
* ``max_turns``: the episode was still going after ``max_turns`` policy turns (it ends there).

Each episode's transcript (``rollout.transcripts``) lists its messages, with a ``{"role": "event"}``
entry naming each fault.

**Decoding keeps its key/value cache across turns** (``turn_cache="auto"``, the default, where the model
allows: :meth:`RLAgent.generate_turn`): the first turn reads the opening once; each later turn feeds only the
other side's reply and the next cue through the cache and decodes on, instead of re-reading the whole
conversation. A turn's EOS and padding stay in the cache masked out, so positions and attention are those of
re-encoding (the test compares log-probs). ``turn_cache=False``, a model whose cache cannot continue (an
encoder-decoder, ``generation_cache="none"``, KerasHub's rotary backbones) or a repetition penalty re-encode the
conversation every turn with ``generate``.
"""
from __future__ import annotations

import collections
import copy

import numpy as np

from tf_rl_text.env import Rollout, ShuffledDraws, StopRequested
from tf_rl_text.tokens import ids_to_texts, pad_token_ids, text_to_ids

ROLES = ("system", "user", "assistant", "tool")
PLAIN_TAGS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
FAULTS = ("tool_error", "tool_timeout", "malformed_call", "env_error", "context_overflow", "max_turns")

ConversationRollout = collections.namedtuple(
    "ConversationRollout", Rollout._fields + ("episodes", "turns", "episode_returns", "transcripts", "faults"))
ConversationRollout.__doc__ = """One batch of conversations from :meth:`ConversationEnv.rollout`: the
:class:`~tf_rl_text.env.Rollout` fields, one row per policy turn (see the module docstring), and
``episodes`` (R,) each row's episode, ``turns`` (R,) its turn (-1: an empty row of an ended episode),
``episode_returns`` (E,) each episode's total reward, ``transcripts`` (E lists of messages) and
``faults`` (E lists of (turn, kind, detail))."""


# --------------------------------------------------------------------------- messages
def as_message(message, role: str = "user") -> dict:
    """A message dict from a dict or a plain string (read as a ``role`` message), checked."""
    if isinstance(message, str):
        message = {"role": role, "content": message}
    if not isinstance(message, dict) or set(message) - {"role", "content", "name"} or "content" not in message:
        raise ValueError(f"a message is a dict {{'role': ..., 'content': ...}} or a string, got {message!r}")
    if message.get("role") not in ROLES:
        raise ValueError(f"a message's role must be one of {ROLES}, got {message.get('role')!r}")
    if not isinstance(message["content"], str):
        raise ValueError(f"a message's content must be a string, got {type(message['content']).__name__}")
    return {"role": message["role"], "content": message["content"]}


def render_plain(messages, cue: bool = True) -> str:
    """The plain role-tagged form: one ``Role: content`` line a message (roles System, User, Assistant,
    Tool; a content that starts with a space, as a sampled turn does, follows the colon directly), then
    ``Assistant:`` (the cue for the policy's next turn) when ``cue``."""
    lines = [f"{PLAIN_TAGS[m['role']]}:{'' if m['content'][:1].isspace() else ' '}{m['content']}"
             for m in map(as_message, messages)]  # a sampled turn keeps its own leading space
    return "\n".join(lines + (["Assistant:"] if cue else []))


class Renderer:
    """Messages as token ids: the tokenizer's chat template when it has one (``add_generation_prompt``),
    else :func:`render_plain`. :meth:`opening` renders the first messages; :meth:`after_turn` the ids that
    follow a policy turn (the reply, and the cue for the next turn): the difference of the rendered
    conversation with and without them, so the sequence the policy sees is the rendering of the whole
    conversation."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.template = getattr(tokenizer, "chat_template", None)

    def text(self, messages, cue: bool = True) -> str:
        if self.template:
            return self.tokenizer.apply_chat_template([as_message(m) for m in messages], tokenize=False,
                                                      add_generation_prompt=cue)
        return render_plain(messages, cue)

    def opening(self, messages) -> list:
        return text_to_ids(self.tokenizer, self.text(messages), verbose=False)

    def after_turn(self, history, reply) -> list:
        """Ids of ``reply`` (None: no reply) and the next cue, after the conversation ``history`` whose last
        message is the policy's turn."""
        before = self.text(history, cue=False)
        after = self.text(list(history) + ([reply] if reply is not None else []), cue=True)
        if not after.startswith(before):  # a template that rewrites earlier turns: plain form for the reply
            return text_to_ids(self.tokenizer, "\n" + render_plain([reply] if reply is not None else []),
                               verbose=False)
        return text_to_ids(self.tokenizer, after[len(before):], verbose=False)


class ScriptedUser:
    """A user played by a function: ``reply(task, turn, policy_message) -> str | None`` (None ends the
    episode) and ``reward(task, turn, policy_message) -> float`` for each policy turn. ``opening(task)``
    gives the first messages (default: ``str(task)`` as a user message)."""

    def __init__(self, reply, reward, opening=None):
        self.reply_fn, self.reward_fn, self.opening_fn = reply, reward, opening
        self.task, self.turn = None, 0

    def reset(self, task):
        self.task, self.turn = task, 0
        return self.opening_fn(task) if self.opening_fn else [{"role": "user", "content": str(task)}]

    def step(self, text: str):
        reward = float(self.reward_fn(self.task, self.turn, text))
        reply = self.reply_fn(self.task, self.turn, text)
        self.turn += 1
        return (None if reply is None else {"role": "user", "content": reply}), reward, reply is None


# --------------------------------------------------------------------------- the environment
class ConversationEnv(ShuffledDraws):
    """Tasks in, rewarded multi-turn conversations out: the environment of conversation training.

    Args:
      tasks: what the other side's ``reset`` takes, one per episode start (a list).
      tokenizer: the policy's tokenizer (its chat template, when it has one, renders the conversation).
      environment: the other side (see the module docstring); a fresh ``copy.deepcopy`` plays each episode,
        or, when it is a function (a class, a factory), a fresh ``environment()``.
      max_turns: policy turns per episode at most.
      max_new_tokens: tokens per policy turn at most (a turn also ends at EOS).
      batch_size: tasks per batch (each ``num_samples`` times: the episodes of a rollout).
      overflow_reward: added to the last turn of an episode ended because its next turn would not fit in the
        model's context. fault_reward: the reward of a turn whose ``step`` raised (the episode ends).
      seed, shuffle: the task order (shuffled epochs, checkpointed like a TextGenerationEnv's).
      sampling: generate keywords for every turn (``top_p``...).
      turn_cache: "auto" (keep the decode's key/value cache across turns where the agent allows it, else
        re-encode each turn), True (keep it; an agent that cannot is a ValueError naming why) or False (re-encode).

    Trainers take it as their ``env``: every rollout is rows of policy turns (a
    :class:`ConversationRollout`); ``evaluate`` is the mean episode return.
    """

    reward_fn = None
    """None: the rewards come from the other side (GRPO's ``reward_funcs`` do not apply)."""

    def __init__(self, tasks, tokenizer, environment, max_turns: int = 3, max_new_tokens: int = 16,
                 batch_size: int = 4, overflow_reward: float = 0.0, fault_reward: float = 0.0, seed=0,
                 shuffle: bool = True, sampling: dict | None = None, turn_cache="auto"):
        tasks = list(tasks)
        if turn_cache not in ("auto", True, False):
            raise ValueError(f"turn_cache must be 'auto', True or False, got {turn_cache!r}")
        self.turn_cache = turn_cache
        if not tasks:
            raise ValueError("ConversationEnv needs at least one task, got none")
        for name, value in (("max_turns", max_turns), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not (callable(environment) or (hasattr(environment, "reset") and hasattr(environment, "step"))):
            raise ValueError("environment must have reset(task) and step(policy_message) (or be a function that "
                             f"makes one), got {environment!r}")
        self.tasks = tasks
        self.prompts = tasks  # what evaluate rolls out by default: every task
        self.references = None
        self.tokenizer = tokenizer
        self.environment = environment
        self.renderer = Renderer(tokenizer)
        self.max_turns, self.max_new_tokens, self._batch_size = int(max_turns), int(max_new_tokens), int(batch_size)
        self.overflow_reward, self.fault_reward = float(overflow_reward), float(fault_reward)
        self.sampling = dict(sampling or {})
        self.eos_token_id = tokenizer.eos_token_id
        self.num_reward_batches = 0
        self._init_draws(len(tasks), seed, shuffle)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def statistics(self, rollout) -> dict:
        """What a trainer logs of a batch: :func:`conversation_statistics`."""
        return conversation_statistics(rollout)

    def keeps_cache(self, agent, sampling) -> bool:
        """Whether a rollout with ``agent`` and these ``sampling`` keywords keeps the cache across turns."""
        if self.turn_cache is False:
            return False
        blocker = agent.turn_cache_blocker(sampling.get("repetition_penalty"))
        if blocker and self.turn_cache is True:
            raise ValueError(f"turn_cache=True but this rollout cannot keep the cache across turns: {blocker}; "
                             f"use turn_cache='auto' (re-encode where it cannot) or False")
        return blocker is None

    def _other_side(self):
        env = self.environment
        return env() if callable(env) and not hasattr(env, "step") else copy.deepcopy(env)

    def rollout(self, agent, num_samples: int = 1, greedy: bool = False, seed=None, prompts=None, references=None,
                reward_fn=None, **sampling) -> ConversationRollout:
        """One batch of conversations: the next ``batch_size`` tasks (or ``prompts``: a list of tasks), each
        played ``num_samples`` times, turn by turn with ``agent.generate`` (greedy or sampled; ``seed`` makes a
        sampled rollout reproducible). Returns a :class:`ConversationRollout`."""
        if reward_fn is not None:
            raise ValueError("a ConversationEnv's rewards come from its other side (environment.step); reward_fn "
                             "does not apply: build the trainer without reward_funcs")
        tasks = [self.tasks[i] for i in self.next_indices()] if prompts is None else list(prompts)
        tasks = [t for t in tasks for _ in range(int(num_samples))]
        self.num_reward_batches += 1
        play = _Episodes(self, agent, tasks)
        play.run(greedy, seed, {**self.sampling, **sampling})
        rollout = play.rows()
        # what TensorBoard's sample table shows, as a TextGenerationEnv keeps it: the rows (policy turns)
        self.batch_prompts, self.completions, self.last_rewards = rollout.prompts, rollout.completions, rollout.rewards
        return rollout


class _Episodes:
    """The episodes of one rollout, played turn by turn (all active episodes' turns in one generate call)."""

    def __init__(self, env, agent, tasks):
        self.env, self.agent = env, agent
        if agent.family.seq2seq:
            raise NotImplementedError("conversations are supported for causal LMs; an encoder-decoder would need "
                                      "its source re-encoded every turn")
        n = len(tasks)
        self.sides = [env._other_side() for _ in range(n)]
        self.transcripts = [[as_message(m) for m in _messages(side.reset(task))] for side, task in zip(self.sides, tasks)]
        self.contexts = [env.renderer.opening(t) for t in self.transcripts]
        self.turn_rows = [[] for _ in range(n)]  # per episode: (context ids, turn ids, reward)
        self.faults = [[] for _ in range(n)]
        self.done = [False] * n
        self.pending = [None] * n  # per episode: the ids added since its last turn (what the cache has not read)
        self.tasks = tasks
        for e, ids in enumerate(self.contexts):
            if agent.family.tokens_needed(len(ids), env.max_new_tokens) > agent.context_length:
                raise ValueError(f"task {tasks[e]!r} opens with {len(ids)} tokens: with max_new_tokens="
                                 f"{env.max_new_tokens} it exceeds the model's context of {agent.context_length}")

    def fault(self, e, turn, kind, detail, ends: bool):
        self.faults[e].append((turn, kind, detail))
        self.transcripts[e].append({"role": "event", "content": f"{kind}: {detail}"})
        if ends:
            self.done[e] = True

    def run(self, greedy, seed, sampling):
        env, agent = self.env, self.agent
        eos = agent.eos_token_id
        cached, state = env.keeps_cache(agent, sampling), None
        for turn in range(env.max_turns):
            active = [e for e in range(len(self.tasks)) if not self.done[e]]
            if not active:
                break
            turn_seed = None if seed is None else int(seed) + 1000 * turn
            if cached:  # every episode keeps its row (ended ones decode nothing): the cache's rows stay in place
                rows = list(range(len(self.tasks)))
                gen, state = self.cached_turn(state, greedy, turn_seed, sampling)
            else:
                rows = active
                ids, mask = pad_token_ids([self.contexts[e] for e in active], agent.pad_token_id, agent.padding_side)
                gen = agent.generate(ids, mask, max_new_tokens=env.max_new_tokens, greedy=greedy, seed=turn_seed,
                                     **sampling)
            out_ids, out_mask = gen.completion_ids.numpy(), gen.completion_mask.numpy()
            texts = ids_to_texts(agent.tokenizer, out_ids, out_mask)
            for row, e in enumerate(rows):
                if e in active:
                    turn_ids = [int(t) for t, m in zip(out_ids[row], out_mask[row]) if m]
                    self.step(e, turn, turn_ids, texts[row], eos)
        for e in range(len(self.tasks)):
            if not self.done[e]:
                self.fault(e, env.max_turns - 1, "max_turns", f"still going after {env.max_turns} policy turns", True)

    def cached_turn(self, state, greedy, seed, sampling):
        """One turn on the cache kept from the last (:meth:`RLAgent.generate_turn`): only the tokens added since
        are read. The first turn, or one where an episode added no tokens, reads the whole conversations."""
        agent, n = self.agent, len(self.tasks)
        fresh = state is None or any(not self.done[e] and not self.pending[e] for e in range(n))
        chunks = self.contexts if fresh else [[] if self.done[e] else self.pending[e] for e in range(n)]
        ids, mask = pad_token_ids(chunks, agent.pad_token_id, "left")
        return agent.generate_turn(ids, mask, None if fresh else state, finished=np.asarray(self.done),
                                   max_new_tokens=self.env.max_new_tokens, greedy=greedy, seed=seed, **sampling)

    def step(self, e, turn, turn_ids, text, eos):
        env, agent = self.env, self.agent
        self.transcripts[e].append({"role": "assistant", "content": text})
        try:
            out = self.sides[e].step(text)
            reply, reward, done = out[0], float(out[1]), bool(out[2])
            fault = out[3] if len(out) > 3 else None
        except StopRequested:
            raise
        except Exception as err:  # noqa: BLE001 - the other side's bug ends this episode, named, not the run
            self.turn_rows[e].append((list(self.contexts[e]), turn_ids, env.fault_reward))
            self.fault(e, turn, "env_error", f"{type(err).__name__}: {err}", True)
            return
        self.turn_rows[e].append((list(self.contexts[e]), turn_ids, reward))
        if reply is not None:
            reply = as_message(reply)
            self.transcripts[e].append(reply)
        if fault:
            kind, detail = fault if isinstance(fault, tuple) else (str(fault), "")
            self.fault(e, turn, kind, detail, False)
        if done:
            self.done[e] = True
            return
        if turn + 1 >= env.max_turns:  # no next turn to make room for: the episode ends at max_turns (run)
            return
        history = [m for m in self.transcripts[e] if m["role"] != "event"]
        said = turn_ids[:-1] if turn_ids and turn_ids[-1] == eos else turn_ids
        reply_ids = env.renderer.after_turn(history[:-1] if reply is not None else history, reply)
        context = self.contexts[e] + said + reply_ids
        if agent.family.tokens_needed(len(context), env.max_new_tokens) > agent.context_length:
            context_rows = self.turn_rows[e]
            last = context_rows[-1]
            context_rows[-1] = (last[0], last[1], last[2] + env.overflow_reward)
            self.fault(e, turn, "context_overflow", f"the next turn needs {len(context)} + {env.max_new_tokens} tokens, "
                       f"more than the model's context of {agent.context_length}", True)
            return
        self.contexts[e], self.pending[e] = context, reply_ids

    def rows(self) -> ConversationRollout:
        agent = self.agent
        n = len(self.tasks)
        turns = max(len(r) for r in self.turn_rows)
        returns = [np.cumsum([r[2] for r in rows][::-1])[::-1] if rows else np.zeros(0) for rows in self.turn_rows]
        contexts, completions, rewards, episodes, turn_of = [], [], [], [], []
        for t in range(turns):
            for e in range(n):
                if t < len(self.turn_rows[e]):
                    context, turn_ids, _ = self.turn_rows[e][t]
                    contexts.append(context), completions.append(turn_ids), rewards.append(returns[e][t])
                    turn_of.append(t)
                else:  # the episode has ended: an empty row keeps the groups of a turn together
                    contexts.append(self.turn_rows[e][-1][0] if self.turn_rows[e] else self.contexts[e])
                    completions.append([]), rewards.append(0.0), turn_of.append(-1)
                episodes.append(e)
        prompt_ids, prompt_mask = pad_token_ids(contexts, agent.pad_token_id, agent.padding_side)
        completion_ids, completion_mask = pad_token_ids(completions, agent.pad_token_id, "right")
        prompts = ids_to_texts(agent.tokenizer, prompt_ids, prompt_mask)
        texts = ids_to_texts(agent.tokenizer, completion_ids, completion_mask)
        episode_returns = np.array([float(np.sum([r[2] for r in rows])) for rows in self.turn_rows], np.float32)
        return ConversationRollout(
            prompt_ids, prompt_mask, completion_ids, completion_mask, np.asarray(rewards, np.float32), prompts, texts,
            [None] * len(contexts), np.asarray(episodes), np.asarray(turn_of), episode_returns, self.transcripts,
            self.faults)


def _messages(opening):
    if isinstance(opening, str):
        return [{"role": "user", "content": opening}]
    return list(opening)


def conversation_statistics(rollout) -> dict:
    """Per batch: the mean episode return, policy turns per episode, and each fault kind's count."""
    stats = {"reward_mean": float(np.mean(rollout.episode_returns)), "reward_std": float(np.std(rollout.episode_returns)),
             "turns": float(np.mean([sum(1 for m in t if m["role"] == "assistant") for t in rollout.transcripts]))}
    real = np.asarray(rollout.turns) >= 0
    stats["completion_length"] = float(np.mean(np.sum(rollout.completion_mask, axis=1)[real]))
    counts = collections.Counter(kind for faults in rollout.faults for _, kind, _ in faults)
    stats.update({f"faults/{kind}": float(counts.get(kind, 0)) for kind in FAULTS})
    return stats


__all__ = ["ConversationEnv", "ConversationRollout", "Renderer", "ScriptedUser", "render_plain", "as_message",
           "conversation_statistics", "FAULTS"]
