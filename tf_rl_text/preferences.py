"""Preference data: pairs of completions of one prompt, the preferred one first.

    pairs = load_preferences("prefs.jsonl")               # {"prompt", "chosen", "rejected"} per line
    train, held_out = pairs.split(test_fraction=0.1)
    pairs = make_preference_pairs(agent, prompts, reward_fn, n=4)   # best vs worst of 4 samples by a reward

A jsonl line is either the standard form ``{"prompt": str, "chosen": str, "rejected": str}`` or the
conversational one, ``{"chosen": [messages], "rejected": [messages]}`` with messages
``{"role", "content"}`` (and an optional ``"prompt": [messages]``). In the conversational form the
prompt is every message before the last (the shared conversation so far) and the completions are
the last messages' contents; the prompt's messages are joined by newlines, ``"role: content"``, as
text (these models have no chat template). Completions are tokenized on their own, after the
prompt's tokens (as TRL does), so a completion that continues a word needs its leading space.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from tf_rl_text.data import DataFormatError
from tf_rl_text.data.files import jsonl_records


@dataclasses.dataclass
class PreferencePairs:
    """Aligned lists: ``chosen[i]`` is preferred over ``rejected[i]`` as a completion of ``prompts[i]``."""

    prompts: list
    chosen: list
    rejected: list
    source: str = "pairs"

    def __post_init__(self):
        n = {len(self.prompts), len(self.chosen), len(self.rejected)}
        if len(n) != 1:
            raise ValueError(f"prompts, chosen and rejected must have one entry per pair; got {len(self.prompts)}, "
                             f"{len(self.chosen)} and {len(self.rejected)}")
        for i, (p, c, r) in enumerate(zip(self.prompts, self.chosen, self.rejected)):
            _check_pair(p, c, r, f"{self.source}, pair {i}")

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, indices) -> "PreferencePairs":
        idx = [int(i) for i in indices]
        return PreferencePairs([self.prompts[i] for i in idx], [self.chosen[i] for i in idx],
                               [self.rejected[i] for i in idx], self.source)

    def split(self, test_fraction: float = 0.1, seed: int = 0) -> tuple:
        """(train, held-out) by a seeded shuffle; the held-out part has at least one pair."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        if len(self) < 2:
            raise ValueError(f"splitting needs at least 2 pairs, got {len(self)}")
        order = np.random.RandomState(seed).permutation(len(self))
        n_test = min(len(self) - 1, max(1, int(round(test_fraction * len(self)))))
        return self.subset(order[n_test:]), self.subset(order[:n_test])


def _check_pair(prompt, chosen, rejected, where):
    for name, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, str):
            raise DataFormatError(f"{where}: {name!r} must be text, got {type(value).__name__}")
        if name != "prompt" and not value.strip():
            raise DataFormatError(f"{where}: {name!r} is empty; a preference pair needs two non-empty completions")
    if not prompt.strip():
        raise DataFormatError(f"{where}: 'prompt' is empty; give the text both completions answer")
    if chosen == rejected:
        raise DataFormatError(f"{where}: 'chosen' and 'rejected' are the same text ({chosen[:60]!r}); a pair must "
                              "differ, or it teaches nothing")


def _messages_text(messages, where, name):
    if not isinstance(messages, list) or not messages:
        raise DataFormatError(f"{where}: {name!r} must be a non-empty list of messages {{role, content}}")
    for m in messages:
        if not isinstance(m, dict) or "content" not in m:
            raise DataFormatError(f"{where}: each message of {name!r} needs 'role' and 'content', got {m!r}"[:200])
    return messages


def pair_from_record(record: dict, where: str = "record") -> tuple:
    """(prompt, chosen, rejected) of one record, standard or conversational (see the module docstring)."""
    if not isinstance(record, dict):
        raise DataFormatError(f"{where}: a preference record is a JSON object, got {type(record).__name__}")
    missing = [k for k in ("chosen", "rejected") if k not in record]
    if missing:
        raise DataFormatError(f"{where}: missing {missing}; a record needs 'chosen' and 'rejected' (and 'prompt' "
                              f"unless they are message lists), got keys {sorted(record)}")
    chosen, rejected = record["chosen"], record["rejected"]
    if isinstance(chosen, list) or isinstance(rejected, list):  # conversational
        chosen = _messages_text(chosen, where, "chosen")
        rejected = _messages_text(rejected, where, "rejected")
        prompt_messages = record.get("prompt")
        if prompt_messages is None:
            prompt_messages = chosen[:-1]
            if rejected[:-1] != prompt_messages:
                raise DataFormatError(f"{where}: 'chosen' and 'rejected' must share every message but the last (the "
                                      "conversation so far), or give it as 'prompt'")
        elif isinstance(prompt_messages, list):
            prompt_messages = _messages_text(prompt_messages, where, "prompt")
            chosen, rejected = chosen[-1:], rejected[-1:]
        if isinstance(prompt_messages, list):
            if not prompt_messages:
                raise DataFormatError(f"{where}: the conversation has no prompt messages before the completions")
            prompt = "\n".join(f"{m.get('role', 'user')}: {m['content']}" for m in prompt_messages)
        else:
            prompt = prompt_messages
        chosen, rejected = chosen[-1]["content"], rejected[-1]["content"]
    else:
        if "prompt" not in record:
            raise DataFormatError(f"{where}: missing 'prompt'; a record with text completions needs 'prompt', "
                                  f"'chosen' and 'rejected', got keys {sorted(record)}")
        prompt = record["prompt"]
    _check_pair(prompt, chosen, rejected, where)
    return prompt, chosen, rejected


def load_preferences(path: str, limit: int | None = None) -> PreferencePairs:
    """Preference pairs from a jsonl file (``.jsonl.gz`` too), one record a line (see the module docstring).
    Every bad line is an error naming the file and the line: not JSON, a missing field, an empty
    completion, chosen equal to rejected."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"preference file not found: {path}")
    prompts, chosen, rejected = [], [], []
    for lineno, record in jsonl_records(path, skip_blank=True):
        p, c, r = pair_from_record(record, f"{path}, line {lineno}")
        prompts.append(p)
        chosen.append(c)
        rejected.append(r)
        if limit is not None and len(prompts) >= limit:
            break
    if not prompts:
        raise DataFormatError(f"{path}: no preference records")
    return PreferencePairs(prompts, chosen, rejected, source=path)


def make_preference_pairs(agent, prompts, reward_fn, n: int = 4, max_new_tokens: int = 16, seed: int = 0,
                          references=None, batch_size: int = 8, min_gap: float = 0.0) -> PreferencePairs:
    """Pairs from any reward: ``n`` sampled completions per prompt, the best (by ``reward_fn``) chosen over
    the worst, as the DPO paper built its sentiment pairs. Prompts whose best and worst rewards differ by
    ``min_gap`` or less (or whose two completions are the same text) give no pair."""
    from tf_rl_text.env import TextGenerationEnv

    if int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2 (a pair needs two samples to compare), got {n}")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("make_preference_pairs needs at least one prompt")
    env = TextGenerationEnv(prompts, agent.tokenizer, reward_fn, references=references, batch_size=batch_size,
                            max_new_tokens=max_new_tokens, shuffle=False, agent=agent)
    out_p, out_c, out_r = [], [], []
    for start in range(0, len(prompts), batch_size):
        part = prompts[start:start + batch_size]
        refs = None if references is None else list(references)[start:start + batch_size]
        rollout = env.rollout(agent, num_samples=int(n), seed=seed + start, prompts=part, references=refs)
        rewards = np.asarray(rollout.rewards, np.float64).reshape(len(part), n)
        texts = np.asarray(rollout.completions, dtype=object).reshape(len(part), n)
        for i, prompt in enumerate(part):
            best, worst = int(np.argmax(rewards[i])), int(np.argmin(rewards[i]))
            c, r = texts[i, best], texts[i, worst]
            if rewards[i, best] - rewards[i, worst] > min_gap and c != r and c.strip() and r.strip():
                out_p.append(prompt)
                out_c.append(c)
                out_r.append(r)
    if not out_p:
        raise ValueError(f"no prompt gave two completions with different rewards (n={n}, min_gap={min_gap}); raise n, "
                         "sample more diversely, or check the reward function")
    return PreferencePairs(out_p, out_c, out_r, source="make_preference_pairs")


__all__ = ["PreferencePairs", "load_preferences", "make_preference_pairs", "pair_from_record"]
