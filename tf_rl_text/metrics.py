"""Evaluation metrics: perplexity, BLEU, ROUGE, distinct-n, length; and :func:`evaluate`.

Conventions (stated once, used everywhere, including the BLEU / ROUGE rewards):

* **Tokenization for BLEU, distinct-n and length**: :func:`tokenize` lowercases, then splits on
  whitespace and splits punctuation off as separate tokens (regex ``\\w+|[^\\w\\s]``, Unicode
  aware, so "Männern," -> ``["männern", ","]``).
* **BLEU** (Papineni et al. 2002) via ``nltk.translate.bleu_score``, uniform weights up to 4-grams,
  scores in [0, 1] (not x100). :func:`sentence_bleu` uses ``SmoothingFunction().method1`` (Lin & Och
  2004: add epsilon=0.1 to zero n-gram counts) because one sentence often has no matching 4-gram;
  :func:`corpus_bleu` uses no smoothing (the standard corpus statistic).
* **sacreBLEU** (Post 2018): :func:`sacrebleu_corpus` is ``sacrebleu.corpus_bleu`` on the raw
  (cased, detokenized) texts with its standard ``13a`` tokenizer, no lowercasing, scores x100 (0..100)
  as sacreBLEU and papers report them. Use it to compare with published figures; the nltk BLEU above
  (lowercased, own tokenizer, 0..1) is for the reward and for comparing runs of this library.
* **ROUGE** (Lin 2004) via ``rouge_score.rouge_scorer.RougeScorer(types, use_stemmer=True)``, F1.
  rouge_score uses its own tokenizer (lowercase, drops non ``[a-z0-9]`` characters, Porter
  stemmer), so it is meant for English. Multi-reference: the best F1 over references
  (``RougeScorer.score_multi``).
* **distinct-n** (Li et al. 2016): distinct n-grams / total n-grams over all texts (corpus level).
* **Perplexity**: exp of the mean negative log-likelihood per reference token, given the prompt,
  under the agent's policy (``agent.log_probs``, i.e. at the agent's temperature). Each reference
  is followed by EOS (``add_eos=True``), which counts as a token.

References may be a string or a list of strings (multi-reference) per example.

Example::

    from tf_rl_text import metrics
    metrics.sentence_bleu("a man sleeps on a couch", ["a man is sleeping on a couch"])
    metrics.rouge(["a man sleeps"], ["a man is sleeping"])          # {'rouge1': ..., 'rouge2': ..., 'rougeL': ...}
    metrics.evaluate(agent, dataset, metrics=["bleu", "rouge", "perplexity"], max_new_tokens=24)
"""
from __future__ import annotations

import functools
import math
import re
import warnings
from typing import Sequence

import numpy as np

from tf_rl_text.tokens import pad_token_ids, text_to_ids

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def tokenize(text: str) -> list:
    """Lowercase, split on whitespace, split punctuation off: ``"A dog, running."`` -> ``['a', 'dog', ',', 'running', '.']``."""
    return _TOKEN.findall(text.lower())


def _as_list(reference) -> list:
    if isinstance(reference, str):
        return [reference]
    if isinstance(reference, (list, tuple)) and reference and all(isinstance(r, str) for r in reference):
        return list(reference)
    raise ValueError(f"a reference must be a string or a non-empty list of strings, got {reference!r}")


def _check_pairs(hypotheses, references, what="hypotheses"):
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
    return hypotheses, [_as_list(r) for r in references]


def _smoothing(smoothing):
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


def _weights(max_n):
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

    refs = [tokenize(r) for r in _as_list(references)]
    hyp = tokenize(hypothesis)
    if not hyp:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bleu_score.sentence_bleu(refs, hyp, weights=_weights(max_n), smoothing_function=_smoothing(smoothing)))


def sentence_bleu_batch(hypotheses: Sequence[str], references: Sequence, max_n: int = 4, smoothing="method1") -> list:
    """:func:`sentence_bleu` of each hypothesis against its reference(s): a list of floats."""
    hypotheses, references = _check_pairs(hypotheses, references)
    smooth = _smoothing(smoothing)
    return [sentence_bleu(h, r, max_n, smooth) for h, r in zip(hypotheses, references)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence, max_n: int = 4, smoothing=None) -> float:
    """Corpus BLEU in [0, 1] (n-gram counts pooled over the corpus), no smoothing by default.

    nltk ``corpus_bleu`` on :func:`tokenize` tokens. It is 0 when no hypothesis shares a
    ``max_n``-gram with its references.
    """
    from nltk.translate import bleu_score

    hypotheses, references = _check_pairs(hypotheses, references)
    if not hypotheses:
        raise ValueError("corpus_bleu needs at least one hypothesis, got an empty list")
    refs = [[tokenize(r) for r in rs] for rs in references]
    hyps = [tokenize(h) for h in hypotheses]
    if not any(hyps):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bleu_score.corpus_bleu(refs, hyps, weights=_weights(max_n), smoothing_function=_smoothing(smoothing)))


def sacrebleu_corpus(hypotheses: Sequence[str], references: Sequence, tokenize: str = "13a",
                     lowercase: bool = False) -> float:
    """Corpus BLEU as sacreBLEU reports it: 0..100, cased, on detokenized text, ``13a`` tokenizer.

    ``sacrebleu.corpus_bleu`` with its defaults (exponential brevity penalty, no smoothing).
    Multi-reference examples may have different numbers of references: the shorter lists are
    padded with their own first reference, which changes no n-gram clip count and no closest
    reference length, so the score is that of the unpadded references.
    """
    import sacrebleu

    hypotheses, references = _check_pairs(hypotheses, references)
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
    hypotheses, references = _check_pairs(hypotheses, references)
    scorer = rouge_scorer((rouge_type,), use_stemmer)
    out = []
    for h, rs in zip(hypotheses, references):
        score = scorer.score(rs[0], h) if len(rs) == 1 else scorer.score_multi(rs, h)
        out.append(float(score[rouge_type].fmeasure))
    return out


def rouge(hypotheses: Sequence[str], references: Sequence, rouge_types: Sequence[str] = ROUGE_TYPES,
          use_stemmer: bool = True) -> dict:
    """Mean ROUGE F1 over the corpus for each type: ``{'rouge1': ..., 'rouge2': ..., 'rougeL': ...}``."""
    hypotheses, references = _check_pairs(hypotheses, references)
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


# --------------------------------------------------------------------------- perplexity
def _encode_references(tokenizer, refs, add_eos, eos_id):
    out = []
    for r in refs:
        ids = list(text_to_ids(tokenizer, r, verbose=False))  # long ones: our own warning
        if add_eos and eos_id is not None and eos_id >= 0:
            ids.append(int(eos_id))
        if not ids:
            raise ValueError(f"reference {r!r} encodes to no tokens and add_eos=False; nothing to score")
        out.append(ids)
    return out


def reference_nll(agent, prompts: Sequence[str], references: Sequence, batch_size: int = 16, add_eos: bool = True):
    """Total negative log-likelihood (nats) of the references given their prompts, and the token count.

    Works for any agent with ``encode_prompts(texts)``, ``tokenizer``, ``pad_token_id``,
    ``eos_token_id`` and ``log_probs(prompt_ids, prompt_mask, completion_ids, completion_mask)``
    (:class:`~tf_rl_text.agent.RLAgent`, causal or seq2seq). Each reference of a multi-reference
    example is scored as its own pair. For a causal agent, sequences longer than the model's
    context are cut: the prompt keeps its last tokens, the reference its first ones; an empty
    prompt is replaced by the BOS (else EOS) token so the first reference token is predicted
    from something.

    Returns ``(nll, num_tokens)``: a float and an int.
    """
    from tf_rl_text._compat import tf

    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prompts, references = _check_pairs(prompts, references, what="prompts")
    pairs = [(p, r) for p, rs in zip(prompts, references) for r in rs]
    if not pairs:
        raise ValueError("perplexity needs at least one (prompt, reference) pair, got none")
    tokenizer = agent.tokenizer
    pad_id = int(agent.pad_token_id)
    eos_id = getattr(agent, "eos_token_id", tokenizer.eos_token_id)
    causal = not getattr(agent, "is_encoder_decoder", False)
    context = int(getattr(agent, "context_length", 0) or 0)
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos_id
    completions = _encode_references(tokenizer, [r for _, r in pairs], add_eos, eos_id)
    order = sorted(range(len(pairs)), key=lambda i: len(completions[i]))  # similar lengths together: less padding
    total_nll, total_tokens, truncated = 0.0, 0, 0
    for b in range(0, len(order), int(batch_size)):
        idx = order[b: b + int(batch_size)]
        prompt_ids, prompt_mask = agent.encode_prompts([pairs[i][0] for i in idx])
        prompt_ids, prompt_mask = np.array(prompt_ids, np.int32), np.array(prompt_mask, np.int32)
        comps = [completions[i] for i in idx]
        max_t = max(len(c) for c in comps)
        if context:
            max_t = min(max_t, context - 1 if causal else context)
        if causal:
            empty = prompt_mask.sum(axis=1) == 0
            prompt_ids[empty, -1], prompt_mask[empty, -1] = start_id, 1  # left padded: last column is the slot
            if context and prompt_ids.shape[1] + max_t > context:
                keep = context - max_t
                prompt_ids, prompt_mask = prompt_ids[:, -keep:], prompt_mask[:, -keep:]
                empty = prompt_mask.sum(axis=1) == 0
                prompt_ids[empty, -1], prompt_mask[empty, -1] = start_id, 1
        truncated += sum(len(c) > max_t for c in comps)
        comp_ids, comp_mask = pad_token_ids([c[:max_t] for c in comps], pad_id, "right", max_t)
        logp = agent.log_probs(tf.constant(prompt_ids), tf.constant(prompt_mask), tf.constant(comp_ids),
                               tf.constant(comp_mask))  # (B, T), 0 on padding
        logp = np.asarray(logp, np.float64) * comp_mask
        total_nll -= float(logp.sum())
        total_tokens += int(comp_mask.sum())
    if truncated:
        warnings.warn(
            f"{truncated} of {len(pairs)} references are longer than the model's context of {context} tokens; "
            "only their first tokens were scored", stacklevel=2,
        )
    return total_nll, total_tokens


def perplexity(agent, prompts: Sequence[str], references: Sequence, batch_size: int = 16, add_eos: bool = True) -> float:
    """exp(mean NLL per reference token given the prompt): see :func:`reference_nll`.

    A model whose every logit is equal (uniform over V tokens) has perplexity exactly V.
    """
    nll, tokens = reference_nll(agent, prompts, references, batch_size=batch_size, add_eos=add_eos)
    return float(math.exp(nll / tokens))


# --------------------------------------------------------------------------- evaluate
METRICS = ("bleu", "sacrebleu", "sentence_bleu", "rouge", "rouge1", "rouge2", "rougeL", "distinct", "distinct_1", "distinct_2",
           "length", "perplexity")
DEFAULT_METRICS = ("bleu", "sacrebleu", "sentence_bleu", "rouge", "distinct", "length", "perplexity")
_NEED_REFERENCES = {"bleu", "sacrebleu", "sentence_bleu", "rouge", "rouge1", "rouge2", "rougeL", "perplexity"}


def _check_metrics(metrics):
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; choose from {list(METRICS)}")
    return metrics


def generate_completions(agent, prompts: Sequence[str], max_new_tokens: int = 32, greedy: bool = True,
                         batch_size: int = 16, seed: int | None = 0) -> list:
    """``agent.generate_text`` over ``prompts`` in batches of ``batch_size``: one completion per prompt."""
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prompts = list(prompts)
    out = []
    for b in range(0, len(prompts), int(batch_size)):
        out.extend(agent.generate_text(prompts[b: b + int(batch_size)], max_new_tokens=max_new_tokens,
                                       greedy=greedy, seed=seed))
    return out


def score_texts(completions: Sequence[str], references: Sequence | None = None,
                metrics: Sequence[str] = ("bleu", "sentence_bleu", "rouge", "distinct", "length")) -> dict:
    """The text metrics of :func:`evaluate` for given completions (no model): a dict of floats.

    Keys: ``bleu`` (corpus, nltk, 0..1), ``sacrebleu`` (corpus, 0..100, cased: :func:`sacrebleu_corpus`),
    ``sentence_bleu`` (mean, method1), ``rouge1``/``rouge2``/``rougeL``
    (mean F1; ``rouge`` asks for all three), ``distinct_1``/``distinct_2`` (``distinct`` asks for
    both), ``mean_length`` (``length``). ``perplexity`` is ignored here (it needs a model).
    """
    metrics = _check_metrics(metrics)
    completions = list(completions)
    needed = _NEED_REFERENCES.intersection(metrics) - {"perplexity"}
    if needed and references is None:
        raise ValueError(f"metrics {sorted(needed)} need references; the dataset has none")
    result = {}
    if "bleu" in metrics:
        result["bleu"] = corpus_bleu(completions, references)
    if "sacrebleu" in metrics:
        result["sacrebleu"] = sacrebleu_corpus(completions, references)
    if "sentence_bleu" in metrics:
        result["sentence_bleu"] = float(np.mean(sentence_bleu_batch(completions, references)))
    types = [t for t in ROUGE_TYPES if "rouge" in metrics or t in metrics]
    if types:
        result.update(rouge(completions, references, types))
    for n in (1, 2):
        if "distinct" in metrics or f"distinct_{n}" in metrics:
            result[f"distinct_{n}"] = distinct_n(completions, n)
    if "length" in metrics:
        result["mean_length"] = mean_length(completions)
    return result


def evaluate(agent, dataset, metrics: Sequence[str] = DEFAULT_METRICS, max_new_tokens: int = 32, greedy: bool = True,
             batch_size: int = 16, seed: int | None = 0, return_completions: bool = False):
    """Generate a completion for every prompt of ``dataset`` and score it against its references.

    Args:
      agent: an :class:`~tf_rl_text.agent.RLAgent` (anything with ``generate_text`` and, for
        perplexity, ``log_probs``).
      dataset: a :class:`~tf_rl_text.data.PromptDataset` (or a list of prompt strings, then only
        ``distinct``/``length`` can be asked for).
      metrics: names from :data:`METRICS`; see :func:`score_texts` for the keys. ``perplexity``
        scores the references under the agent (:func:`perplexity`), no generation involved.
      max_new_tokens, greedy, seed: passed to ``agent.generate_text`` (greedy by default: a
        deterministic evaluation).
      batch_size: prompts per generation / scoring batch.
      return_completions: also return the generated texts.

    Returns a dict of floats (plus ``num_examples``), or ``(dict, completions)``.
    """
    metrics = _check_metrics(metrics)
    prompts = list(dataset.prompts) if hasattr(dataset, "prompts") else list(dataset)
    references = getattr(dataset, "references", None)
    if not prompts:
        raise ValueError("evaluate needs at least one prompt; the dataset is empty")
    needed = _NEED_REFERENCES.intersection(metrics)
    if needed and references is None:
        raise ValueError(f"metrics {sorted(needed)} need references; the dataset has none "
                         "(load one with references, or ask only for 'distinct'/'length')")
    text_metrics = [m for m in metrics if m != "perplexity"]
    completions = []
    if text_metrics or return_completions:
        completions = generate_completions(agent, prompts, max_new_tokens, greedy, batch_size, seed)
    result = score_texts(completions, references, text_metrics) if text_metrics else {}
    if "perplexity" in metrics:
        result["perplexity"] = perplexity(agent, prompts, references, batch_size=batch_size)
    result["num_examples"] = float(len(prompts))
    return (result, completions) if return_completions else result


# --------------------------------------------------------------------------- sacreBLEU, paired bootstrap
def sacrebleu_stats(hypotheses: Sequence[str], references: Sequence) -> np.ndarray:
    """Per-sentence sufficient statistics of sacreBLEU (cased, detokenized input, its 13a tokenizer).

    Returns an int array (N, 10): hypothesis length, reference length, matched 1..4-grams,
    total 1..4-grams; sum rows and pass them to :func:`bleu_from_stats` for corpus BLEU. A
    multi-reference example uses all its references (sacreBLEU's rules). Unlike :func:`corpus_bleu`
    (nltk on lowercased :func:`tokenize` tokens, 0..1), this is the score papers report (x100).
    """
    from sacrebleu.metrics import BLEU

    hypotheses, references = _check_pairs(hypotheses, references)
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
    "DEFAULT_METRICS",
    "METRICS",
    "bleu_from_stats",
    "paired_bootstrap",
    "sacrebleu_stats",
    "corpus_bleu",
    "distinct_n",
    "evaluate",
    "generate_completions",
    "mean_length",
    "perplexity",
    "reference_nll",
    "rouge",
    "rouge_f1_batch",
    "rouge_scorer",
    "sacrebleu_corpus",
    "score_texts",
    "sentence_bleu",
    "sentence_bleu_batch",
    "tokenize",
]
