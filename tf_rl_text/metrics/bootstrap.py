"""sacreBLEU sufficient statistics and the paired bootstrap: is system A better than B on the same test set?"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tf_rl_text.metrics.text import check_pairs


# --------------------------------------------------------------------------- sacreBLEU, paired bootstrap
def sacrebleu_stats(hypotheses: Sequence[str], references: Sequence) -> np.ndarray:
    """Per-sentence sufficient statistics of sacreBLEU (cased, detokenized input, its 13a tokenizer).

    Returns an int array (N, 10): hypothesis length, reference length, matched 1..4-grams,
    total 1..4-grams; sum rows and pass them to :func:`bleu_from_stats` for corpus BLEU. A
    multi-reference example uses all its references (sacreBLEU's rules). Unlike :func:`corpus_bleu`
    (nltk on lowercased :func:`tokenize` tokens, 0..1), this is the score papers report (x100).
    """
    from sacrebleu.metrics import BLEU

    hypotheses, references = check_pairs(hypotheses, references)
    width = max((len(r) for r in references), default=1)
    streams = [[rs[j] if j < len(rs) else None for rs in references] for j in range(width)]
    stats = BLEU()._extract_corpus_statistics(hypotheses, streams)
    return np.asarray(stats, np.int64).reshape(len(hypotheses), 10)


def bleu_from_stats(stats) -> np.ndarray:
    """Corpus BLEU (x100) from summed sacreBLEU statistics, as ``sacrebleu.corpus_bleu`` computes it
    (exp smoothing of zero n-gram matches). ``stats``: (10,) or (R, 10) (one corpus per row);
    returns a float or an (R,) array."""
    stats = np.asarray(stats, np.float64)
    single = stats.ndim == 1
    stats = np.atleast_2d(stats)
    sys_len, ref_len = stats[:, 0], stats[:, 1]
    correct, total = stats[:, 2:6], stats[:, 6:10]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len, np.where(sys_len > 0, np.exp(1 - ref_len / np.maximum(sys_len, 1)), 0.0), 1.0)
        zero = correct == 0
        halvings = np.cumsum(zero, axis=1)  # exp smoothing: the k-th zero-match order gets 1 / (2^k * total)
        precision = np.where(zero, 100.0 / (2.0 ** halvings * total), 100.0 * correct / total)
        alive = np.cumprod(total > 0, axis=1).astype(bool)  # sacreBLEU stops at the first order with no n-grams
        logs = np.where(alive & (precision > 0), np.log(np.where(precision > 0, precision, 1.0)), -9999999999.0)
        score = bp * np.exp(logs.sum(axis=1) / 4)
    score = np.where(correct.sum(axis=1) == 0, 0.0, score)
    return float(score[0]) if single else score


def paired_bootstrap(a, b, statistic=None, num_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """Paired bootstrap (Koehn 2004) of ``statistic(a) - statistic(b)`` over test examples.

    a, b: per-example values of two systems on the same examples, (N,) or (N, D) (e.g. one
    ROUGE-L F1 per summary, or :func:`sacrebleu_stats` rows). Each resample draws N example
    indices with replacement and scores both systems on the same draw. ``statistic`` maps an
    (R, N[, D]) array of resampled rows to (R,) scores; default: the mean over examples. For
    corpus BLEU use ``lambda rows: bleu_from_stats(rows.sum(axis=1))``.

    Returns ``{"delta": statistic(a) - statistic(b) on the full set, "low", "high": the
    (1 - confidence)/2 and (1 + confidence)/2 percentiles of the resampled deltas, "p_not_better":
    the fraction of resamples with delta <= 0, "num_resamples"}``.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or len(a) == 0:
        raise ValueError(f"a and b must be non-empty per-example arrays of one shape (N,) or (N, D), got "
                         f"{a.shape} and {b.shape}")
    if int(num_resamples) != num_resamples or num_resamples < 1:
        raise ValueError(f"num_resamples must be an integer >= 1, got {num_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if statistic is None:
        def statistic(rows):
            return rows.mean(axis=1) if rows.ndim == 2 else rows.mean(axis=1).mean(axis=-1)
    n = len(a)
    delta = float(np.asarray(statistic(a[None]) - statistic(b[None])).reshape(-1)[0])
    rng = np.random.RandomState(seed)
    deltas = []
    for start in range(0, int(num_resamples), 100):  # chunks bound the memory of (R, N, D) draws
        idx = rng.randint(0, n, size=(min(100, int(num_resamples) - start), n))
        deltas.append(np.asarray(statistic(a[idx]) - statistic(b[idx]), np.float64).reshape(-1))
    deltas = np.concatenate(deltas)
    tail = (1 - confidence) / 2 * 100
    return {"delta": delta, "low": float(np.percentile(deltas, tail)), "high": float(np.percentile(deltas, 100 - tail)),
            "p_not_better": float(np.mean(deltas <= 0)), "num_resamples": int(num_resamples)}


__all__ = [
    "sacrebleu_stats", "bleu_from_stats", "paired_bootstrap",
]
