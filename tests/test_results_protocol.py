"""The results protocol (benchmarks/results.py, issue 15) on a tiny slice, and the statistics it
rests on (metrics.sacrebleu_stats / bleu_from_stats / paired_bootstrap / permutation_test), checked by hand."""
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



def test_permutation_test_by_hand():
    # a = [1, 2], b = [3, 4]: the 6 ways to choose a's two values out of {1, 2, 3, 4} give differences in means
    # -2 ({1,2}), -1 ({1,3}), 0 ({1,4}, {2,3}), +1 ({2,4}), +2 ({3,4}); |d| >= 2 for 2 of 6: p = 1/3, exactly
    out = metrics.permutation_test([1.0, 2.0], [3.0, 4.0])
    assert out == {"delta": -2.0, "p": pytest.approx(1 / 3), "num_permutations": 6, "exact": True}
    # one value each side: the two labellings give +-|d|, both extreme: p = 1 whatever the values
    assert metrics.permutation_test([5.0], [0.0])["p"] == 1.0
    # 6 against 6 (924 splits): the enumeration, and 900 random relabellings (fewer than 924, so sampled),
    # agree within 3 standard errors of the sampled p (sqrt(0.2 * 0.8 / 900) = 0.013)
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, 6), rng.normal(1.2, 1.0, 6)
    exact = metrics.permutation_test(a, b)
    sampled = metrics.permutation_test(a, b, num_permutations=900, seed=3)
    assert exact["exact"] and exact["num_permutations"] == 924 and not sampled["exact"]
    assert sampled["p"] == pytest.approx(exact["p"], abs=0.04) and 0.0 < exact["p"] < 0.2, (exact, sampled)
    # a difference no relabelling reaches but the observed one: the sampled p is its floor, 1 / (1 + R)
    far = metrics.permutation_test(np.arange(10.0) + 100, np.arange(10.0), num_permutations=999)
    assert far["p"] == pytest.approx(1 / 1000) and far["delta"] == 100.0
    # identical groups: every relabelling is as extreme as the observed 0
    assert metrics.permutation_test([1.0, 1.0, 1.0], [1.0, 1.0])["p"] == 1.0
    with pytest.raises(ValueError, match="at least one value each, got 0 and 2"):
        metrics.permutation_test([], [1.0, 2.0])


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


@pytest.fixture(scope="module")
def results():
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import results

    return results


def test_settings_and_sweep_parsing(results):
    s = results.settings_for("translation", "full", ["rl_cpu_s=600", "mle_coef=0.5", "train_limit=none"])
    assert (s.rl_cpu_s, s.mle_coef, s.train_limit, s.dev_limit) == (600.0, 0.5, None, 300)
    with pytest.raises(ValueError, match="dev_limit must be >= 300"):
        results.settings_for("translation", "full", ["dev_limit=100"])
    with pytest.raises(ValueError, match=r"--set rl_cpu_s: 'fast' is not a float"):
        results.settings_for("translation", "full", ["rl_cpu_s=fast"])
    grid = results.parse_sweep(["mle_coef=0,0.5", "kl_coef=0.02,0.1"])
    assert grid == {"mle_coef": [0.0, 0.5], "kl_coef": [0.02, 0.1]}
    configs = results.sweep_configs(grid)
    assert configs[0] == {"mle_coef": 0.0, "kl_coef": 0.02} and len(configs) == 4
    assert results.config_tag(configs[-1]) == "kl_coef=0.1,mle_coef=0.5" and results.config_tag({}) == "base"
    with pytest.raises(ValueError, match="NAME one of"):
        results.parse_sweep(["vocab_size=10,20"])  # a warm-start setting cannot be swept on one warm start
    assert results.constant_reward(["a", "b", "c"], None, None) == [1.0, 1.0, 1.0]


def test_warm_start_schedule_halves_on_plateau_then_stops_on_patience(tmp_path, results, monkeypatch):
    """Scripted dev scores, checked by hand: plateau 2 -> halve (twice at most), then patience 2 -> stop."""
    root = _multi30k_slice(tmp_path / "data")
    s = results.settings_for("translation", "tiny", ["mle_eval_every=5", "mle_plateau=2", "mle_halvings=2",
                                                     "mle_patience=2", "mle_lr=0.01"])
    t = results.Task("translation", s, str(tmp_path / "work"), str(root), log=lambda *a: None)
    # start, then one per check (every 5 updates)
    script = iter([0.0, 1.0, 2.0, 2.0, 1.5, 3.0, 3.0, 2.0, 4.0, 3.0, 1.0, 9.0])
    monkeypatch.setattr(results.Task, "dev_check", lambda self, agent: (next(script), 1.0))
    state = results.warm_stage(t)
    steps = [h[0] for h in state["history"]]
    assert steps == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    # 15: no new best (1), 20: (2) -> halve; 25: best 3.0; 30, 35: (2) -> halve, the last; 40: best 4.0;
    # 45, 50: two checks without a new best after the last halving -> stop (converged)
    assert state["halving_steps"] == [20, 35]
    assert [h[2] for h in state["history"]] == [0.01] * 5 + [0.005] * 3 + [0.0025] * 3  # lr used up to each check
    assert state["converged"] is True and state["done"] is True
    assert (state["best"], state["best_step"], state["step"], state["lr"]) == (4.0, 40, 50, 0.0025)
    assert state["cpu_s"] > 0 and state["wall_s"] > 0
    # the best weights were written at the best check; the mid-stage checkpoints are gone
    assert os.path.exists(t.path("warm", "best.npz")) and not os.path.exists(t.path("warm", "checkpoints"))
    # a finished stage is not run again
    monkeypatch.setattr(results.Task, "dev_check", lambda self, agent: pytest.fail("a finished stage reran"))
    assert results.warm_stage(t) == state


def test_the_restart_test_adopts_a_restart_that_gains_beyond_noise_and_stops_when_one_does_not(tmp_path, results,
                                                                                              monkeypatch):
    """Issue 40's restart test, scripted: restart 1 translates every dev sentence where W0 said nothing right (its
    paired interval is above 0): it becomes W0; restart 2 says what W0 says (interval [0, 0]): converged."""
    import filecmp

    root = _multi30k_slice(tmp_path / "data")
    s = results.settings_for("translation", "tiny", ["mle_eval_every=5", "mle_plateau=1", "mle_halvings=1",
                                                     "mle_patience=1", "mle_restarts=3"])
    t = results.Task("translation", s, str(tmp_path / "work"), str(root), log=lambda *a: None)
    monkeypatch.setattr(results.Task, "dev_check", lambda self, agent: (1.0, 1.0))  # every stage: a flat dev curve
    refs = t.dev.references
    wrong = [f"nichts {i}" for i in range(len(refs))]
    right = [r if isinstance(r, str) else r[0] for r in refs]
    said = iter([wrong, right, right, right, right])  # restart 1: W0, restart; restart 2: W0, restart; W0's outputs

    def scripted_score(task, agent, ds, settings):
        outputs = next(said)
        stats = metrics.sacrebleu_stats(outputs, ds.references)
        return float(metrics.bleu_from_stats(stats.sum(axis=0))), stats, outputs

    monkeypatch.setattr(results, "score", scripted_score)
    state = results.warm_stage(t)
    first, second = state["restarts"]
    assert first["adopted"] and first["ci95"][0] > 0 and first["best_dev"] == pytest.approx(100.0) and first["start_dev"] == 0.0
    assert not second["adopted"] and second["ci95"] == [0.0, 0.0] and second["gain"] == 0.0
    assert state["restart_converged"] is True and state["best"] == pytest.approx(100.0)
    # W0 is restart 1's best weights now; the plateau rule's W0 is kept beside it
    assert filecmp.cmp(t.path("warm", "best.npz"), t.path("warm", "restart0", "best.npz"), shallow=False)
    assert os.path.exists(t.path("warm", "plateau_best.npz"))
    monkeypatch.setattr(results, "score", lambda *a: pytest.fail("a converged restart test ran again"))
    assert results.warm_stage(t)["restarts"] == state["restarts"]


def test_peakiness_is_the_entropy_and_top1_probability_of_the_greedy_tokens(results, tokenizer):
    """A policy that spreads its mass evenly over two tokens: entropy ln 2 and top-1 probability 1/2 at every
    token of its greedy outputs (hand-computed); one that puts it on one token: 0 and 1."""
    import tensorflow as tf

    from conftest import make_tiny_model
    from tf_rl_text import RLAgent

    def flat_over(tokens):
        bias = np.full([len(tokenizer)], -1e9, np.float32)
        bias[tokens] = 0.0

        class Flat(RLAgent):
            def process_logits(self, logits):
                return tf.zeros_like(logits) + tf.constant(bias[: logits.shape[-1]])

        return Flat(make_tiny_model(tokenizer), tokenizer)

    s = results.Settings(max_new_tokens=3, eval_batch_size=2)
    prompts = ["the movie was", "my day", "our dinner"]
    two = results.peakiness(flat_over([5, 9]), prompts, s)
    assert two["entropy"] == pytest.approx(np.log(2), abs=1e-5) and two["top1_probability"] == pytest.approx(0.5)
    assert two["tokens"] == 9  # 3 prompts x 3 tokens (neither is EOS)
    one = results.peakiness(flat_over([5]), prompts, s)
    assert one["entropy"] == pytest.approx(0.0, abs=1e-5) and one["top1_probability"] == pytest.approx(1.0)


def test_a_checkpoint_with_one_output_for_most_inputs_is_never_kept(tmp_path, results, monkeypatch):
    """SciTLDR's dev ROUGE-L peaked on a template ("We propose a new method for learning ...") said to every input:
    a check below min_unique_share counts as no new best, however high it scores."""
    root = _multi30k_slice(tmp_path / "data")
    s = results.settings_for("translation", "tiny", ["mle_eval_every=5", "mle_plateau=1", "mle_halvings=0",
                                                     "mle_patience=2", "min_unique_share=0.5"])
    t = results.Task("translation", s, str(tmp_path / "work"), str(root), log=lambda *a: None)
    # (dev score, distinct share): the random start and the first two checks are templates
    script = iter([(0.0, 0.2), (5.0, 0.1), (6.0, 0.3), (2.0, 0.9), (1.0, 0.9), (1.5, 0.9)])
    monkeypatch.setattr(results.Task, "dev_check", lambda self, agent: next(script))
    state = results.warm_stage(t)
    # not the templates' 5.0 and 6.0; and they did not count towards the patience (no model to have a plateau yet)
    assert (state["best"], state["best_step"], state["step"]) == (2.0, 15, 25)
    assert [h[1] for h in state["history"]] == [0.0, 5.0, 6.0, 2.0, 1.0, 1.5]  # every check is still on the curve
    assert state["dev_unique"] == [[0, 0.2], [5, 0.1], [10, 0.3], [15, 0.9], [20, 0.9], [25, 0.9]]


def test_warm_start_resumes_from_its_last_check_after_a_crash(tmp_path, results, monkeypatch):
    root = _multi30k_slice(tmp_path / "data")
    s = results.settings_for("translation", "tiny", ["mle_eval_every=4", "mle_plateau=1", "mle_halvings=1",
                                                     "mle_patience=2", "mle_max_cpu_s=30"])
    t = results.Task("translation", s, str(tmp_path / "work"), str(root), log=lambda *a: None)
    real = results.Task.dev_check
    calls = {"n": 0}

    def crash_on_fourth(self, agent):
        calls["n"] += 1
        if calls["n"] == 4:  # the check of step 12 dies: steps 4 and 8 are saved
            raise KeyboardInterrupt
        return [0.0, 1.0, 0.5][calls["n"] - 1], 1.0

    monkeypatch.setattr(results.Task, "dev_check", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        results.warm_stage(t)
    saved = json.load(open(t.path("warm", "state.json")))
    assert saved["step"] == 8 and saved["halving_steps"] == [8] and saved["lr"] == pytest.approx(s.mle_lr / 2)
    assert os.path.exists(t.path("warm", "checkpoints", "ckpt-8.index"))
    # the rerun restores step 8 (weights and Adam state) and its halved learning rate, and continues
    monkeypatch.setattr(results.Task, "dev_check", real)
    state = results.warm_stage(t)
    steps = [h[0] for h in state["history"]]
    assert steps[:3] == [0, 4, 8] and steps[3] == 12 and steps == sorted(set(steps))
    assert state["segments"] == 2 and state["done"]
    assert state["history"][3][2] == pytest.approx(s.mle_lr / 2)
    # a changed warm-start setting is refused by name
    other = results.settings_for("translation", "tiny", ["mle_eval_every=5"])
    with pytest.raises(ValueError, match=r"other settings \(mle_eval_every: 4 there, 5 now"):
        results.Task("translation", other, str(tmp_path / "work"), str(root), log=lambda *a: None)


def test_protocol_end_to_end_on_a_tiny_slice(tmp_path, results):
    root = _multi30k_slice(tmp_path / "data")
    s = results.settings_for("translation", "tiny", ["mle_eval_every=20", "mle_lr=0.01", "rl_max_steps=2",
                                                     "rl_eval_every=1", "test_limit=3", "rl_seeds=2",
                                                     "constant_lr_factor=10"])
    kwargs = dict(data_dir=str(root), work_dir=str(tmp_path / "work"), export_dir=str(tmp_path / "exports"),
                  results_dir=str(tmp_path / "results"), scale="tiny", log=lambda *a: None,
                  sweep={"mle_coef": [0.0, 0.5]})
    # stage by stage: the warm start alone writes its part of the document
    assert results.run_protocol("translation", s, stop_after="warm", **kwargs) is None
    doc = json.load(open(tmp_path / "results" / "translation.json"))
    assert doc["warm_start"]["done"] and doc["warm_start"]["converged"] in (True, False) and doc["seeds"] == []
    assert doc["warm_start"]["cpu_s"] > 0 and doc["warm_start"]["dev_history"][0][0] == 0
    # the same command continues: the sweep, the seeds, the scores
    doc = results.run_protocol("translation", s, **kwargs)
    assert doc["metric"] == "sacrebleu" and [e["seed"] for e in doc["seeds"]] == [0, 1]
    sweep = doc["sweep"]
    assert [r["tag"] for r in sweep["runs"]] == ["mle_coef=0.0", "mle_coef=0.5"]
    best = max(sweep["runs"], key=lambda r: r["dev_best"])  # chosen on dev (ties: the first)
    assert sweep["chosen"] == [r for r in sweep["runs"] if r["dev_best"] == best["dev_best"]][0]["tag"]
    for e in doc["seeds"]:
        for key in ("test_mle", "test_control", "test_constant", "test_rl", "ci95", "ci95_vs_control",
                    "ci95_vs_constant", "perplexity", "kl_to_warm_start", "cpu_s", "wall_s", "rl_config"):
            assert key in e, key
        assert e["config"] == sweep["chosen"] and e["steps"]["rl"] == 2 and e["steps"]["constant"] == 2
        for gain, key in (("gain", "ci95"), ("gain_vs_control", "ci95_vs_control"),
                          ("gain_vs_constant", "ci95_vs_constant")):
            low, high = e[key]
            assert low - 1e-9 <= e[gain] <= high + 1e-9
        # the MLE control trained at least the CPU seconds the RL seed did; the constant run, with baseline none
        assert e["cpu_s"]["control"] >= e["cpu_s"]["rl"] > 0
        assert e["rl_config"]["baseline"] == "rloo"
    # the constant control at the better on dev (seed 0) of the RL rate and 10x it; every seed at that rate
    tags = results.constant_tags(results.rl_settings(s, {}), doc["sweep"]["chosen"])
    states = [json.load(open(tmp_path / "work" / "constant" / tag / "seed0" / "state.json")) for tag in tags]
    assert [x["config"]["learning_rate"] for x in states] == pytest.approx([s.rl_lr, 10 * s.rl_lr])
    chosen = states[1] if states[1]["best"] > states[0]["best"] else states[0]
    assert all(e["constant_config"]["learning_rate"] == chosen["config"]["learning_rate"] for e in doc["seeds"])
    const = states[0]
    assert const["config"]["baseline"] == "none" and const["rewards"] == [1.0, 1.0]
    assert doc["mean_gain"] == pytest.approx(np.mean([e["test_rl"] - e["test_mle"] for e in doc["seeds"]]))
    assert doc["num_examples"] == {"train": 24, "dev": 4, "test": 3}
    assert doc["warm_start"]["test"] == doc["seeds"][0]["test_mle"]
    assert os.path.exists(tmp_path / "results" / "translation_dev_curve.png")

    # both exports, loaded back, serve the test set: their greedy outputs score exactly the recorded numbers
    e = doc["seeds"][0]
    assert [x["source"] for x in e["samples"]] == EN[:3]
    for stage, key in (("mle", "test_mle"), ("rl", "test_rl")):
        outputs = [x[stage] for x in e["samples"]]
        assert metrics.bleu_from_stats(metrics.sacrebleu_stats(outputs, DE[:3]).sum(axis=0)) == pytest.approx(e[key])
    assert os.path.exists(os.path.join(REPO, e["exports"]["mle"], "saved_model.pb"))
    best = max(doc["seeds"], key=lambda e: (e["dev_rl"], -e["seed"]))["seed"]  # the best dev seed's export is kept
    assert sorted(os.listdir(tmp_path / "exports" / "translation")) == ["mle", f"rl_seed{best}", "stages"]
    kept = [x for x in doc["seeds"] if x["seed"] == best][0]
    import tf_rl_text

    assert tf_rl_text.load(str(tmp_path / "exports" / "translation" / f"rl_seed{best}")).generate(EN[:3]) == [
        x["rl"] for x in kept["samples"]]

    table = results.summary_table(str(tmp_path / "results"), tasks=["translation"])
    assert "| translation | warm start |" in table and "| translation | 0 |" in table and "| translation | 1 |" in table
    assert f"{doc['mean_gain']:+.2f}" in table and f"{doc['mean_gain_vs_constant']:+.2f}" in table

    # another machine: the work folder is gone, the records (stage states, scores, tokenizer) and the exports
    # remain; the same command rebuilds the same document without training or scoring anything again, and W0's
    # weights come back from the mle export, bit for bit
    import shutil

    assert sorted(os.listdir(tmp_path / "exports" / "translation" / "stages")) == [
        "constant", "control", "rl", "scores", "settings.json", "tokenizer", "warm"]
    assert os.listdir(tmp_path / "exports" / "translation" / "stages" / "warm") == ["state.json"]
    w0 = results.load_weights(str(tmp_path / "work" / "warm" / "best.npz"))
    shutil.rmtree(tmp_path / "work")
    lines = []
    again = results.run_protocol("translation", s, **dict(kwargs, log=lines.append))
    assert not [x for x in lines if "s training)" in x or "start, dev" in x or "resumed" in x or "  test " in x], lines
    for a, b in zip(again["seeds"], doc["seeds"]):
        assert (a["test_rl"], a["test_constant"], a["test_control"], a["ci95"]) == (
            b["test_rl"], b["test_constant"], b["test_control"], b["ci95"])
    again_w0 = results.load_weights(str(tmp_path / "work" / "warm" / "best.npz"))
    assert len(again_w0) == len(w0) and all((x == y).all() for x, y in zip(again_w0, w0))


def test_a_degenerate_warm_start_stops_the_protocol_before_rl(results, tmp_path):
    """SciTLDR's first full warm start (dropout 0) kept a step-200 model that said "We propose a new method for
    learning ..." to every abstract: RL against it would prove nothing, so the protocol stops there."""
    import types

    R = results
    t = types.SimpleNamespace(task="summarization", s=R.Settings(), path=lambda *p: str(tmp_path.joinpath(*p)))
    warm = {"dev_unique_share": 0.02, "best_step": 200, "dev_samples": ["We propose a new method."] * 2}
    with pytest.raises(R.DegenerateWarmStart, match=r"only 2% of its greedy dev outputs differ \(min_unique_share 50%\)"):
        R.check_not_degenerate(t, warm)
    R.check_not_degenerate(t, dict(warm, dev_unique_share=0.9))  # a real model passes
    assert R.settings_for("summarization", "full").dropout == 0.1 and R.settings_for("translation", "full").dropout == 0


# --------------------------------------------------------------------------- issue 40 step 4: preferences
@pytest.fixture(scope="module")
def budget_study():
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    import preferences_budget

    return preferences_budget


def test_every_preference_method_gets_the_rl_runs_label_budget(budget_study):
    c = budget_study.SCALES["full"]
    assert budget_study.label_budget(c) == 240 * 8 * 4 == 7680
    # online DPO: two samples of each of 8 prompts an update, so 480 updates spend the same 7,680 calls
    assert budget_study.label_budget(c) // (2 * c["batch"]) == 480


def test_the_matched_kl_test_by_hand(budget_study):
    c = dict(budget_study.SCALES["tiny"], seeds=3, learning_rates=[1e-4, 1e-3], kl_coefs=[0.05], betas=[0.1],
             kl_bins=[0.0, 5.0, 50.0], bootstrap=2000)

    def point(method, setting, lr, seed, reward, kl, val=None):
        p = {"method": method, "setting": setting, "lr": lr, "seed": seed,
             "test": {"reward": reward, "kl": kl, "distinct_2": 0.5}}
        if val is not None:
            p["val"] = {"reward": val}
        return p

    points = []
    # RLOO: the larger rate wins the sweep on held-out prompts; its seeds reward 0.8, 0.82, 0.84 at KL ~3
    points += [point("rloo", 0.05, 1e-4, 0, 0.5, 1.0, val=0.4), point("rloo", 0.05, 1e-3, 0, 0.8, 3.0, val=0.7)]
    points += [point("rloo", 0.05, 1e-3, s, r, 3.0) for s, r in ((1, 0.82), (2, 0.84))]
    # DPO: the smaller rate wins (ties go to the smaller rate too); rewards 0.6, 0.7, 0.65 at KL ~4
    points += [point("dpo", 0.1, 1e-4, 0, 0.6, 4.0, val=0.5), point("dpo", 0.1, 1e-3, 0, 0.9, 20.0, val=0.5)]
    points += [point("dpo", 0.1, 1e-4, s, r, 4.0) for s, r in ((1, 0.7), (2, 0.65))]
    # online DPO: only seed 0 at one rate so far: its sweep is incomplete, so it is in no bin
    points += [point("online_dpo", 0.1, 1e-4, 0, 0.99, 1.0, val=0.9)]
    assert budget_study.chosen_rates(points, c) == {("rloo", 0.05): 1e-3, ("dpo", 0.1): 1e-4}
    # PPO at a mean KL slightly below 0 (a Monte-Carlo estimate) counts in the first bin, not in none
    points += [point("ppo", 0.05, lr, 0, 0.5, -0.1, val=0.3) for lr in (1e-4, 1e-3)]
    points += [point("ppo", 0.05, 1e-4, s, 0.5, -0.1) for s in (1, 2)]
    assert budget_study.matched_kl_test(points, c)["bins"][0]["methods"]["ppo"]["kl"] == pytest.approx(-0.1)
    points = [p for p in points if p["method"] != "ppo"]
    out = budget_study.matched_kl_test(points, c)
    low, high = out["bins"]
    assert low["kl_bin"] == [0.0, 5.0] and high["methods"] == {} and high["ahead"] == []
    rloo, dpo = low["methods"]["rloo"], low["methods"]["dpo"]
    assert rloo["reward"] == pytest.approx(0.82) and dpo["reward"] == pytest.approx(0.65)
    assert rloo["rewards"] == [0.8, 0.82, 0.84] and dpo["lr"] == 1e-4 and dpo["kl"] == pytest.approx(4.0)
    # seed-level bootstrap of 3 values: the interval lies within their range; RLOO's lowest seed (0.8) is above
    # DPO's mean, so RLOO is ahead; DPO's interval reaches 0.7 at most, below RLOO's mean: not ahead
    assert 0.8 <= rloo["ci95"][0] <= rloo["ci95"][1] <= 0.84 and 0.6 <= dpo["ci95"][0] <= dpo["ci95"][1] <= 0.7
    assert low["ahead"] == [["rloo", "dpo"]]
    # with 3 seeds, drawing the lowest value three times has probability 1/27 = 3.7% > 2.5% (and likewise the
    # highest): the 95% interval is the seeds' whole range, so "ahead" means the lowest seed is above the other's mean
    assert budget_study.bootstrap_mean([1.0, 2.0, 3.0], 4000) == [1.0, 3.0]
    assert rloo["ci95"] == pytest.approx([0.8, 0.84])
    # with 10 seeds it is narrower than the range: 0..9, mean 4.5, standard error 2.87 / sqrt(10) = 0.91
    lo, hi = budget_study.bootstrap_mean(np.arange(10.0), 10000)
    assert 2.5 < lo < 3.2 and 5.8 < hi < 6.5
