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
from tf_rl_text.metrics.text import (ROUGE_TYPES, corpus_bleu, distinct_n, mean_length, rouge, rouge_f1_batch,
                                     rouge_scorer, sacrebleu_corpus, sentence_bleu, sentence_bleu_batch, tokenize)
from tf_rl_text.metrics.evaluation import (DEFAULT_METRICS, METRICS, evaluate, generate_completions, perplexity,
                                           reference_nll, score_texts)
from tf_rl_text.metrics.bootstrap import bleu_from_stats, paired_bootstrap, permutation_test, sacrebleu_stats

__all__ = [
    "DEFAULT_METRICS", "METRICS", "ROUGE_TYPES",
    "bleu_from_stats", "paired_bootstrap", "permutation_test", "sacrebleu_stats",
    "corpus_bleu", "distinct_n", "evaluate", "generate_completions", "mean_length", "perplexity", "reference_nll",
    "rouge", "rouge_f1_batch", "rouge_scorer", "sacrebleu_corpus", "score_texts", "sentence_bleu",
    "sentence_bleu_batch", "tokenize",
]
