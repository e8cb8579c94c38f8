"""Scores that need the policy (reference perplexity) and :func:`evaluate`: generate on a dataset and score."""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np

from tf_rl_text.metrics.text import (ROUGE_TYPES, check_pairs, corpus_bleu, distinct_n, mean_length, rouge,
                                     sacrebleu_corpus, sentence_bleu_batch)
from tf_rl_text.tokens import pad_token_ids, text_to_ids


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
    (:class:`~tf_rl_text.agent.RLAgent`, causal or seq2seq), plus ``family`` (its model family's adapter,
    :mod:`tf_rl_text.adapters`; without one, the agent is taken as causal). Each reference of a multi-reference
    example is scored as its own pair. For a causal agent, sequences longer than the model's
    context are cut: the prompt keeps its last tokens, the reference its first ones; an empty
    prompt is replaced by the BOS (else EOS) token so the first reference token is predicted
    from something.

    Returns ``(nll, num_tokens)``: a float and an int.
    """
    from tf_rl_text._compat import tf

    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    prompts, references = check_pairs(prompts, references, what="prompts")
    pairs = [(p, r) for p, rs in zip(prompts, references) for r in rs]
    if not pairs:
        raise ValueError("perplexity needs at least one (prompt, reference) pair, got none")
    tokenizer = agent.tokenizer
    pad_id = int(agent.pad_token_id)
    eos_id = getattr(agent, "eos_token_id", tokenizer.eos_token_id)
    from tf_rl_text.adapters import CAUSAL_LM

    causal = not getattr(agent, "family", CAUSAL_LM).seq2seq
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


__all__ = [
    "reference_nll", "perplexity", "generate_completions", "score_texts", "evaluate", "METRICS", "DEFAULT_METRICS",
]
