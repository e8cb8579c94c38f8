"""Reference-based rewards: sentence BLEU and ROUGE F1 of each completion against its reference(s).

They follow the reward contract ``reward_fn(completions, prompts, references) -> list[float]``
over a whole batch, with each reference a string or a list of strings (multi-reference). The
scoring is exactly :mod:`tf_rl_text.metrics` (same tokenization, same smoothing), so a reward
that rises during training is the evaluation metric rising.
"""
from __future__ import annotations

from tf_rl_text.metrics import text as metrics_text


def _references(name, completions, references):
    if isinstance(completions, str):
        raise ValueError(f"{name}: completions must be a list of strings, got a single string")
    if references is None:
        raise ValueError(
            f"{name} needs references, got None; build the environment with references "
            "(TextGenerationEnv(..., references=...) or PromptDataset.to_env)"
        )
    if len(references) != len(completions):
        raise ValueError(f"{name}: got {len(references)} references for {len(completions)} completions; need one each")
    return references


class BleuReward:
    """Smoothed sentence BLEU (Papineni et al. 2002) of each completion, in [0, 1].

    :func:`tf_rl_text.metrics.sentence_bleu`: lowercase + whitespace/punctuation tokenization,
    uniform weights up to ``max_n``-grams, nltk ``SmoothingFunction().method1`` by default (an
    unsmoothed sentence BLEU is 0 for most short sentences, which gives no learning signal).
    ``scale`` multiplies the score (e.g. 100 for the usual BLEU points).

    Example::

        reward = BleuReward()
        reward(["a man sleeps on a couch"], references=[["a man is sleeping on a couch", "a man on a sofa"]])
        env = TextGenerationEnv(prompts, tokenizer, BleuReward(), references=references)
    """

    def __init__(self, max_n: int = 4, smoothing="method1", scale: float = 1.0):
        metrics_text.bleu_weights(max_n)  # validates max_n
        self.smoothing_fn = metrics_text.smoothing_function(smoothing)  # validates smoothing
        self.max_n, self.smoothing, self.scale = int(max_n), smoothing, float(scale)

    def __call__(self, completions, prompts=None, references=None):
        references = _references("BleuReward", completions, references)
        scores = metrics_text.sentence_bleu_batch(completions, references, self.max_n, self.smoothing_fn)
        return [self.scale * s for s in scores]

    def __repr__(self):
        return f"BleuReward(max_n={self.max_n}, smoothing={self.smoothing!r}, scale={self.scale})"


class RougeReward:
    """ROUGE F1 (Lin 2004) of each completion, in [0, 1]; ROUGE-L (longest common subsequence) by default.

    ``rouge_score.rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)``; with several
    references, the best F1 (``score_multi``). rouge_score's tokenizer keeps only ``[a-z0-9]``,
    so use it for English targets (summaries, dialogue); for German use :class:`BleuReward`.

    Example::

        reward = RougeReward()                 # ROUGE-L F1
        reward(["the cat sat"], references=["the cat sat down"])   # [0.857...]
    """

    def __init__(self, rouge_type: str = "rougeL", use_stemmer: bool = True, scale: float = 1.0):
        metrics_text.rouge_scorer((rouge_type,), use_stemmer)  # validates rouge_type
        self.rouge_type, self.use_stemmer, self.scale = rouge_type, bool(use_stemmer), float(scale)

    def __call__(self, completions, prompts=None, references=None):
        references = _references("RougeReward", completions, references)
        scores = metrics_text.rouge_f1_batch(completions, references, self.rouge_type, self.use_stemmer)
        return [self.scale * s for s in scores]

    def __repr__(self):
        return f"RougeReward(rouge_type={self.rouge_type!r}, use_stemmer={self.use_stemmer}, scale={self.scale})"


def bleu_reward(completions, prompts=None, references=None):
    """Sentence BLEU (method1 smoothing) of each completion: ``BleuReward()(completions, prompts, references)``."""
    return BleuReward()(completions, prompts, references)


def rouge_l_reward(completions, prompts=None, references=None):
    """ROUGE-L F1 (stemmed) of each completion: ``RougeReward("rougeL")(completions, prompts, references)``."""
    return RougeReward("rougeL")(completions, prompts, references)


__all__ = ["BleuReward", "RougeReward", "bleu_reward", "rouge_l_reward"]
