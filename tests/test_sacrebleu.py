"""sacreBLEU next to the nltk BLEU: hand-checkable sentences (scores x100, cased, 13a tokenizer)."""
import pytest

from tf_rl_text import metrics


def test_sacrebleu_by_hand_one_substitution():
    # 6 tokens each, "the" -> "a": 1-4-gram precisions 5/6, 3/5, 2/4, 1/3; same length, no brevity penalty
    hand = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert metrics.sacrebleu_corpus(["the cat sat on a mat"], ["the cat sat on the mat"]) == pytest.approx(hand, rel=1e-9)
    assert hand == pytest.approx(53.728, abs=1e-3)


def test_sacrebleu_is_cased_and_splits_punctuation_while_nltk_bleu_lowercases():
    # 13a splits the final "." off: 7 tokens; only "The" vs "the" differs -> 6/7, 5/6, 4/5, 3/4
    hand = 100 * (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25
    hyp, ref = ["The cat sat on the mat."], ["the cat sat on the mat."]
    assert metrics.sacrebleu_corpus(hyp, ref) == pytest.approx(hand, rel=1e-9)
    assert metrics.sacrebleu_corpus(hyp, ref, lowercase=True) == pytest.approx(100.0)
    assert metrics.corpus_bleu(hyp, ref) == pytest.approx(1.0)  # nltk BLEU: lowercased, 0..1


def test_sacrebleu_multi_reference_uneven_counts_and_score_texts_key():
    hyps = ["the cat sat on a mat", "a dog runs"]
    refs = [["the cat sat on the mat", "a cat sat on a mat"], "a dog runs"]
    # every n-gram of the first hypothesis is in one of its two references ("the cat sat on" in the
    # first, "cat sat on a", "sat on a mat" in the second): 100, as for the exact second pair
    assert metrics.sacrebleu_corpus(hyps, refs) == pytest.approx(100.0)
    out = metrics.score_texts(["the cat sat on a mat"], ["the cat sat on the mat"], metrics=["bleu", "sacrebleu"])
    assert out["sacrebleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel=1e-9)
    assert out["bleu"] == pytest.approx(out["sacrebleu"] / 100, rel=1e-9)  # same tokens here: nltk == sacreBLEU / 100
    with pytest.raises(ValueError, match="reference"):
        metrics.sacrebleu_corpus(["a"], ["a", "b"])
