"""The results protocol (benchmarks/results.py, issue 15) on a tiny slice, and the statistics it
rests on (metrics.sacrebleu_stats / bleu_from_stats / paired_bootstrap), checked by hand."""
import gzip
import json
import os
import sys

import numpy as np
import pytest

from tf_rl_text import metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------- statistics by hand
def test_bleu_from_stats_by_hand_and_as_sacrebleu_computes_it():
    import sacrebleu

    hyps = ["A cat sat on the mat .", "Hello world", "the dog runs fast today"]
    refs = ["The cat sat on the mat .", "Hello there world", ["a dog runs very fast today", "the dog runs"]]
    stats = metrics.sacrebleu_stats(hyps, refs)
    # sentence 1: 7 tokens ("A" != "The": cased), matches 6/7, 5/6, 4/5, 3/4, lengths equal
    assert stats[0].tolist() == [7, 7, 6, 5, 4, 3, 7, 6, 5, 4]
    assert metrics.bleu_from_stats(stats[0]) == pytest.approx(100 * (6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25)
    # sentence 2: no 3-grams at all -> BLEU 0 (sacreBLEU stops at the first order without n-grams)
    assert metrics.bleu_from_stats(stats[1]) == 0.0
    # corpus: summed statistics, exp smoothing and multi-reference as sacrebleu.corpus_bleu
    streams = [["The cat sat on the mat .", "Hello there world", "a dog runs very fast today"],
               [None, None, "the dog runs"]]
    assert metrics.bleu_from_stats(stats.sum(axis=0)) == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score)
    rows = np.stack([stats.sum(axis=0), stats[0]])  # (R, 10) -> (R,)
    assert metrics.bleu_from_stats(rows) == pytest.approx([sacrebleu.corpus_bleu(hyps, streams).score, 80.910671])


def test_paired_bootstrap_by_hand():
    # two examples, a = [1, 0], b = [0, 0]: a resample holds example 0 twice (delta 1, p 1/4), once
    # (delta 0.5, p 1/2) or never (delta 0, p 1/4)
    out = metrics.paired_bootstrap([1.0, 0.0], [0.0, 0.0], num_resamples=4000, seed=0)
    assert out["delta"] == 0.5
    assert (out["low"], out["high"]) == (0.0, 1.0)
    assert out["p_not_better"] == pytest.approx(0.25, abs=0.03)
    # a constant improvement of 2 on every example: every resample's delta is exactly 2
    b = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    shifted = metrics.paired_bootstrap(b + 2, b, num_resamples=50)
    assert [shifted[k] for k in ("delta", "low", "high")] == pytest.approx([2.0, 2.0, 2.0], abs=1e-12)
    assert shifted["p_not_better"] == 0.0
    # corpus BLEU: a system identical to the other has delta 0 on every resample
    stats = metrics.sacrebleu_stats(["a b c d", "a b"], ["a b c d", "a b c"])
    same = metrics.paired_bootstrap(stats, stats, lambda r: metrics.bleu_from_stats(r.sum(axis=1)), num_resamples=20)
    assert (same["low"], same["high"]) == (0.0, 0.0)
    with pytest.raises(ValueError, match=r"one shape .* got \(2,\) and \(3,\)"):
        metrics.paired_bootstrap([1, 2], [1, 2, 3])


# --------------------------------------------------------------------------- the protocol, end to end
EN = ["a dog runs in the park .", "a man rides a bike .", "two girls play in the sand .", "a cat sleeps ."]
DE = ["ein Hund rennt im Park .", "ein Mann fährt Fahrrad .", "zwei Mädchen spielen im Sand .", "eine Katze schläft ."]


def _multi30k_slice(root):
    folder = root / "multi30k"
    os.makedirs(folder)
    for split, n in (("train", 24), ("val", 4), ("test_2016_flickr", 6)):
        for lang, texts in (("en", EN), ("de", DE)):
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(texts[i % 4] for i in range(n)) + "\n")
    return root


def test_protocol_end_to_end_on_a_tiny_slice(tmp_path):
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import results


    root = _multi30k_slice(tmp_path / "data")
    s = results.settings_for("translation", "tiny", ["mle_max_steps=40", "mle_eval_every=20", "rl_max_steps=2",
                                                          "test_limit=3"])
    entry = results.run_protocol("translation", 3, s, data_dir=str(root), export_dir=str(tmp_path / "exports"),
                                 results_dir=str(tmp_path / "results"), scale="tiny", log=lambda *a: None)
    with open(tmp_path / "results" / "translation.json") as f:
        doc = json.load(f)
    assert doc["metric"] == "sacrebleu" and [e["seed"] for e in doc["seeds"]] == [3]
    seed = doc["seeds"][0]
    for key in ("test_mle", "test_control", "test_rl", "ci95", "dev_mle", "dev_rl", "dev_control", "perplexity",
                "kl_to_warm_start", "wall_s", "settings", "rl_config", "exports"):
        assert key in seed, key
    assert doc["mean_gain"] == pytest.approx(seed["test_rl"] - seed["test_mle"])
    low, high = seed["ci95"]
    assert low <= seed["test_rl"] - seed["test_mle"] + 1e-9 and seed["test_rl"] - seed["test_mle"] <= high + 1e-9
    assert seed["steps"]["rl"] == 2 and seed["num_examples"] == {"train": 24, "dev": 4, "test": 3}
    assert seed["wall_s"]["rl_train"] > 0 and seed["wall_s"]["control_train"] >= seed["wall_s"]["rl_train"]
    assert seed["dev_mle"] > 0  # the warm start learned the slice (dev is the training sentences)

    # both exports, loaded back by the protocol (tf_rl_text.load), served the whole (3-sentence) test set: their
    # greedy outputs score exactly the recorded test numbers
    assert [x["source"] for x in seed["samples"]] == EN[:3]
    for stage, key in (("mle", "test_mle"), ("rl", "test_rl")):
        outputs = [x[stage] for x in seed["samples"]]
        assert metrics.bleu_from_stats(metrics.sacrebleu_stats(outputs, DE[:3]).sum(axis=0)) == pytest.approx(seed[key])
        assert os.path.exists(os.path.join(REPO, seed["exports"][stage], "saved_model.pb"))
    assert entry["test_mle"] == seed["test_mle"]

    # a second seed joins the file; the summary table shows both and the mean gain over them
    results.write_entry("translation", dict(entry, seed=4, test_rl=entry["test_mle"] + 1.0, gain=1.0),
                        str(tmp_path / "results"))
    with open(tmp_path / "results" / "translation.json") as f:
        doc = json.load(f)
    assert [e["seed"] for e in doc["seeds"]] == [3, 4]
    assert doc["mean_gain"] == pytest.approx((seed["test_rl"] - seed["test_mle"] + 1.0) / 2)
    table = results.summary_table(str(tmp_path / "results"), tasks=["translation"])
    assert "| translation | sacrebleu | 3 |" in table and "| translation | sacrebleu | 4 |" in table
    assert f"{doc['mean_gain']:+.2f}" in table
