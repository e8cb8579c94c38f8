"""sacreBLEU sufficient statistics, the paired bootstrap (is system A better than B on the same test set?) and the
permutation test (do two groups of runs, e.g. seeds of two training arms, differ in mean?)."""
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


def permutation_test(a, b, num_permutations: int = 10000, seed: int = 0) -> dict:
    """Two-sided permutation test of ``mean(a) - mean(b)`` for two independent groups (e.g. the seed-level
    results of two training arms).

    Under the null hypothesis the labels are exchangeable: the test relabels the pooled values, keeping the
    group sizes, and counts relabellings whose |difference in means| is at least the observed one. When the
    number of distinct relabellings, C(len(a) + len(b), len(a)), is at most ``num_permutations`` every one is
    enumerated and ``p`` is exact; otherwise ``num_permutations`` random relabellings (seeded) give
    ``p = (1 + count) / (1 + num_permutations)``, which counts the observed labelling (never 0).

    Returns ``{"delta": mean(a) - mean(b), "p": two-sided p, "num_permutations": relabellings used, "exact"}``.
    """
    import itertools
    import math

    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    if len(a) < 1 or len(b) < 1:
        raise ValueError(f"a and b need at least one value each, got {len(a)} and {len(b)}")
    if int(num_permutations) != num_permutations or num_permutations < 1:
        raise ValueError(f"num_permutations must be an integer >= 1, got {num_permutations!r}")
    pooled, k = np.concatenate([a, b]), len(a)
    n = len(pooled)
    delta = float(a.mean() - b.mean())
    tol = 1e-12 * max(1.0, float(np.abs(pooled).max()))  # ties of the observed difference count as extreme
    total = pooled.sum()

    def diffs(first_sums):
        return first_sums / k - (total - first_sums) / (n - k)

    if math.comb(n, k) <= num_permutations:
        sums = np.asarray([pooled[list(c)].sum() for c in itertools.combinations(range(n), k)])
        extreme = np.abs(diffs(sums)) >= abs(delta) - tol
        return {"delta": delta, "p": float(extreme.mean()), "num_permutations": int(len(sums)), "exact": True}
    rng = np.random.default_rng(seed)
    count = 0
    for start in range(0, int(num_permutations), 1000):
        m = min(1000, int(num_permutations) - start)
        order = np.argsort(rng.random((m, n)), axis=1)[:, :k]  # a uniform random subset of k indices per row
        count += int(np.sum(np.abs(diffs(pooled[order].sum(axis=1))) >= abs(delta) - tol))
    return {"delta": delta, "p": (1 + count) / (1 + int(num_permutations)), "num_permutations": int(num_permutations),
            "exact": False}


__all__ = [
    "sacrebleu_stats", "bleu_from_stats", "paired_bootstrap", "permutation_test",
]
