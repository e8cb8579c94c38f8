"""Text scores of completions against references: the tokenizer, BLEU (nltk and sacreBLEU), ROUGE, distinct-n and
length.
"""
from __future__ import annotations

import functools
import re
import warnings
from typing import Sequence

import numpy as np


_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def tokenize(text: str) -> list:
    """Lowercase, split on whitespace, split punctuation off: ``"A dog, running."`` -> ``['a', 'dog', ',', 'running', '.']``."""
    return _TOKEN.findall(text.lower())


def as_list(reference) -> list:
    if isinstance(reference, str):
        return [reference]
    if isinstance(reference, (list, tuple)) and reference and all(isinstance(r, str) for r in reference):
        return list(reference)
    raise ValueError(f"a reference must be a string or a non-empty list of strings, got {reference!r}")


def check_pairs(hypotheses, references, what="hypotheses"):
    if isinstance(hypotheses, str):
        raise ValueError(f"{what} must be a list of strings, got a single string; wrap it in a list")
    if references is None:
        raise ValueError(f"references are needed to score {what}; got None")
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"need one reference (or list of references) per text: got {len(references)} "
                         f"references for {len(hypotheses)} {what}")
    for i, r in enumerate(references):
        if r is None:
            raise ValueError(f"references[{i}] is None; every scored text needs a reference")
    return hypotheses, [as_list(r) for r in references]


def smoothing_function(smoothing):
    from nltk.translate.bleu_score import SmoothingFunction

    if smoothing is None:
        return SmoothingFunction().method0
    if isinstance(smoothing, str):
        fn = getattr(SmoothingFunction(), smoothing, None)
        if fn is None or not smoothing.startswith("method"):
            raise ValueError(f"smoothing must be None, a callable or 'method0'..'method7', got {smoothing!r}")
        return fn
    if callable(smoothing):
        return smoothing
    raise ValueError(f"smoothing must be None, a callable or 'method0'..'method7', got {smoothing!r}")


def bleu_weights(max_n):
    if int(max_n) != max_n or max_n < 1:
        raise ValueError(f"max_n must be an integer >= 1, got {max_n!r}")
    return tuple([1.0 / max_n] * int(max_n))


# --------------------------------------------------------------------------- BLEU
def sentence_bleu(hypothesis: str, references, max_n: int = 4, smoothing="method1") -> float:
    """Smoothed sentence BLEU in [0, 1] of one hypothesis against a reference or list of references.

    nltk ``sentence_bleu`` on :func:`tokenize` tokens, uniform weights up to ``max_n``-grams,
    ``SmoothingFunction().method1`` by default. An empty hypothesis scores 0. As in nltk, a
    hypothesis shorter than ``max_n`` tokens has no ``max_n``-grams and method1 gives those orders
    epsilon = 0.1: a perfect 3-token match scores ``0.1 ** (1/4)`` = 0.56 (pass ``max_n`` lower for
    very short texts).
    """
    from nltk.translate import bleu_score

    refs = [tokenize(r) for r in as_list(references)]
    hyp = tokenize(hypothesis)
    if not hyp:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bleu_score.sentence_bleu(refs, hyp, weights=bleu_weights(max_n), smoothing_function=smoothing_function(smoothing)))


def sentence_bleu_batch(hypotheses: Sequence[str], references: Sequence, max_n: int = 4, smoothing="method1") -> list:
    """:func:`sentence_bleu` of each hypothesis against its reference(s): a list of floats."""
    hypotheses, references = check_pairs(hypotheses, references)
    smooth = smoothing_function(smoothing)
    return [sentence_bleu(h, r, max_n, smooth) for h, r in zip(hypotheses, references)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence, max_n: int = 4, smoothing=None) -> float:
    """Corpus BLEU in [0, 1] (n-gram counts pooled over the corpus), no smoothing by default.

    nltk ``corpus_bleu`` on :func:`tokenize` tokens. It is 0 when no hypothesis shares a
    ``max_n``-gram with its references.
    """
    from nltk.translate import bleu_score

    hypotheses, references = check_pairs(hypotheses, references)
    if not hypotheses:
        raise ValueError("corpus_bleu needs at least one hypothesis, got an empty list")
    refs = [[tokenize(r) for r in rs] for rs in references]
    hyps = [tokenize(h) for h in hypotheses]
    if not any(hyps):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bleu_score.corpus_bleu(refs, hyps, weights=bleu_weights(max_n), smoothing_function=smoothing_function(smoothing)))


def sacrebleu_corpus(hypotheses: Sequence[str], references: Sequence, tokenize: str = "13a",
                     lowercase: bool = False) -> float:
    """Corpus BLEU as sacreBLEU reports it: 0..100, cased, on detokenized text, ``13a`` tokenizer.

    ``sacrebleu.corpus_bleu`` with its defaults (exponential brevity penalty, no smoothing).
    Multi-reference examples may have different numbers of references: the shorter lists are
    padded with their own first reference, which changes no n-gram clip count and no closest
    reference length, so the score is that of the unpadded references.
    """
    import sacrebleu

    hypotheses, references = check_pairs(hypotheses, references)
    if not hypotheses:
        raise ValueError("sacrebleu_corpus needs at least one hypothesis, got an empty list")
    width = max(len(rs) for rs in references)
    streams = [[rs[i] if i < len(rs) else rs[0] for rs in references] for i in range(width)]
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams, tokenize=tokenize, lowercase=lowercase).score)


# --------------------------------------------------------------------------- ROUGE
@functools.lru_cache(maxsize=8)
def rouge_scorer(rouge_types: tuple = ROUGE_TYPES, use_stemmer: bool = True):
    """A cached ``rouge_score.rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)``."""
    from rouge_score import rouge_scorer as rs

    for t in rouge_types:
        if t not in ("rougeL", "rougeLsum") and not (t.startswith("rouge") and t[5:].isdigit()):
            raise ValueError(f"unknown ROUGE type {t!r}; use 'rouge1', 'rouge2', ..., 'rougeL' or 'rougeLsum'")
    return rs.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)


def rouge_f1_batch(hypotheses: Sequence[str], references: Sequence, rouge_type: str = "rougeL",
                   use_stemmer: bool = True) -> list:
    """ROUGE F1 of each hypothesis against its reference(s) (best over several): a list of floats."""
    hypotheses, references = check_pairs(hypotheses, references)
    scorer = rouge_scorer((rouge_type,), use_stemmer)
    out = []
    for h, rs in zip(hypotheses, references):
        score = scorer.score(rs[0], h) if len(rs) == 1 else scorer.score_multi(rs, h)
        out.append(float(score[rouge_type].fmeasure))
    return out


def rouge(hypotheses: Sequence[str], references: Sequence, rouge_types: Sequence[str] = ROUGE_TYPES,
          use_stemmer: bool = True) -> dict:
    """Mean ROUGE F1 over the corpus for each type: ``{'rouge1': ..., 'rouge2': ..., 'rougeL': ...}``."""
    hypotheses, references = check_pairs(hypotheses, references)
    if not hypotheses:
        raise ValueError("rouge needs at least one hypothesis, got an empty list")
    scorer = rouge_scorer(tuple(rouge_types), use_stemmer)
    totals = dict.fromkeys(rouge_types, 0.0)
    for h, rs in zip(hypotheses, references):
        score = scorer.score(rs[0], h) if len(rs) == 1 else scorer.score_multi(rs, h)
        for t in rouge_types:
            totals[t] += score[t].fmeasure
    return {t: totals[t] / len(hypotheses) for t in rouge_types}


# --------------------------------------------------------------------------- diversity, length
def distinct_n(texts: Sequence[str], n: int = 1) -> float:
    """distinct-n (Li et al. 2016): distinct n-grams / total n-grams over all ``texts``; 0 if there are none."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if isinstance(texts, str):
        raise ValueError("texts must be a list of strings, got a single string; wrap it in a list")
    seen, total = set(), 0
    for text in texts:
        toks = tokenize(text)
        grams = [tuple(toks[i: i + n]) for i in range(len(toks) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else 0.0


def mean_length(texts: Sequence[str]) -> float:
    """Mean number of :func:`tokenize` tokens per text (0 for an empty list)."""
    texts = list(texts)
    return float(np.mean([len(tokenize(t)) for t in texts])) if texts else 0.0


__all__ = [
    "tokenize", "sentence_bleu", "sentence_bleu_batch", "corpus_bleu", "sacrebleu_corpus", "rouge_scorer",
    "rouge_f1_batch", "rouge", "distinct_n", "mean_length", "ROUGE_TYPES",
]
