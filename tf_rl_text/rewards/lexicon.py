"""Rewards computed from words or tokens: cheap, transparent, good for showing the idea."""
from __future__ import annotations

import re
from typing import Iterable

from tf_rl_text.tokens import text_to_ids

_WORD = re.compile(r"[a-z']+")


class LexiconReward:
    """Sentence sentiment from two word lists: +1 if a completion has more positive than
    negative words, -1 if more negative, 0 on a tie (including none of either).

    The sign (not the count) keeps the reward from paying for repeating one good word; the
    KL leash to the starting model keeps the text fluent.

    Example::

        reward = LexiconReward(positive={"good", "great"}, negative={"bad"})
        reward(["a good day", "a bad day", "a day"])   # [1.0, -1.0, 0.0]
    """

    def __init__(self, positive: Iterable[str], negative: Iterable[str] = ()):
        self.positive = {w.lower() for w in positive}
        self.negative = {w.lower() for w in negative}
        if not self.positive:
            raise ValueError("positive must hold at least one word, got an empty list")
        overlap = self.positive & self.negative
        if overlap:
            raise ValueError(f"words cannot be both positive and negative: {sorted(overlap)}")

    def score(self, text: str) -> float:
        words = _WORD.findall(text.lower())
        pos = sum(w in self.positive for w in words)
        neg = sum(w in self.negative for w in words)
        return float((pos > neg) - (neg > pos))

    def __call__(self, completions, prompts=None, references=None):
        return [self.score(c) for c in completions]


class TokenFrequencyReward:
    """Fraction of a completion's tokens equal to ``target_token_id`` (0 for an empty one).

    The toy reward of the tests and the shared benchmark ("fraction of completion tokens equal
    to w7"): its optimum is known (1.0) and a random policy scores about 1/vocabulary.
    """

    def __init__(self, tokenizer, target_token_id: int):
        vocab = len(tokenizer)
        if not 0 <= int(target_token_id) < vocab:
            raise ValueError(f"target_token_id must be in [0, {vocab}), got {target_token_id}")
        self.tokenizer = tokenizer
        self.target_token_id = int(target_token_id)

    def __call__(self, completions, prompts=None, references=None):
        out = []
        for text in completions:
            ids = text_to_ids(self.tokenizer, text)
            out.append(sum(i == self.target_token_id for i in ids) / len(ids) if ids else 0.0)
        return out


def default_sentiment_reward() -> LexiconReward:
    """The example's reward: :class:`LexiconReward` over the embedded corpus' word lists."""
    from tf_rl_text.defaults import load_lexicon

    positive, negative = load_lexicon()
    return LexiconReward(positive, negative)
