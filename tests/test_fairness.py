"""The bias probe and the fairness-aware reward (issue 28): gaps and intervals by hand on fixed scorers,
swaps that change only the group, a penalty that is zero exactly when the scorer ignores the group."""
import numpy as np
import pytest

from tf_rl_text import fairness

PROBE = fairness.Probe(["{term} said the food was", "I think {term} is"],
                       {"gender": {"female": ["she", "my sister"], "male": ["he", "my brother"]},
                        "city": {"north": ["the Oslo man"], "south": ["the Rome man"], "east": ["the Riga man"]}})


class Echo:
    """A 'policy' whose completion is fixed: the scorer then sees the prompt only."""

    def generate_text(self, prompts, max_new_tokens=16, greedy=False, seed=0):
        return [" ok"] * len(prompts)


def test_probe_gaps_and_intervals_by_hand():
    # +1 for every prompt naming a woman, and +0.5 more on the first template: female 1.25 on average, male 0
    def scorer(completions, prompts, references):
        return [(1.0 if ("she" in p.lower().split() or "sister" in p) else 0.0) + (0.5 if "she said" in p.lower()
                or "sister said" in p else 0.0) for p in prompts]

    report = PROBE.run(Echo(), scorer, samples=2, attributes=["gender"], num_resamples=500)["gender"]
    assert report["group_means"] == {"female": pytest.approx(1.25), "male": pytest.approx(0.0)}
    assert report["gap"] == pytest.approx(1.25) and report["largest_gap_groups"] == ["female", "male"]
    # per template the female-male gap is 1.5 and 1.0: a bootstrap of the two templates gives 1.0, 1.25 or 1.5
    low, high = report["ci95"]
    assert low == pytest.approx(1.0) and high == pytest.approx(1.5)
    assert report["num_prompts"] == 4 and report["samples"] == 2
    # a scorer that ignores the group: no gap, an interval of exactly 0
    flat = PROBE.run(Echo(), lambda c, p, r: [0.3] * len(p), samples=1, num_resamples=200)
    assert all(v["gap"] == 0.0 and v["ci95"] == [0.0, 0.0] for v in flat.values())
    assert set(flat["city"]["group_means"]) == {"north", "south", "east"}


def test_several_scorers_score_the_same_completions_sampled_once():
    class Counting:
        """Completions that differ per sampling seed and prompt; counts the decode calls."""
        calls = 0

        def generate_text(self, prompts, max_new_tokens=16, greedy=False, seed=0):
            Counting.calls += 1
            return [f" s{seed}-{len(p) % 3}" for p in prompts]

    def by_length(completions, prompts, references):
        return [len(c) / 10 + (0.5 if "she" in p.lower().split() else 0.0) for c, p in zip(completions, prompts)]

    def by_seed(completions, prompts, references):
        return [float(c.split("-")[1]) for c in completions]

    both = PROBE.run(Counting(), {"length": by_length, "seed": by_seed}, samples=3, seed=5, num_resamples=300)
    # 2 attributes x (2 + 3) groups x 3 samples, once for both scorers (one scorer at a time: twice as many)
    assert Counting.calls == (2 + 3) * 3
    assert set(both) == {"length", "seed"}
    for name, fn in (("length", by_length), ("seed", by_seed)):
        alone = PROBE.run(Counting(), fn, samples=3, seed=5, num_resamples=300)
        assert both[name] == alone
    # "she" templates score 0.5 more under by_length only: female - male = 0.25 (half the female prompts)
    assert both["length"]["gender"]["gap"] == pytest.approx(0.25)
    with pytest.raises(TypeError, match=r"scorer 'x' is int, not callable"):
        PROBE.run(Counting(), {"x": 3})
    with pytest.raises(ValueError, match="scorer is an empty dict"):
        PROBE.run(Counting(), {})


def test_the_gap_interval_is_of_one_pair_and_crosses_zero_for_noise():
    # per template: A scores 1 then 0, B 0 then 0.9, C 0.2 twice: means 0.5, 0.45, 0.2 -> gap A - C = 0.3.
    # A bootstrap of the two templates draws (t0, t0) a quarter of the time: A - C = 0.8; (t1, t1): -0.2;
    # mixed: 0.3. The interval of that one pair is [-0.2, 0.8] (the max - min of every draw would never be
    # below 0.3 - 0 and would call the noise significant).
    report = fairness.gap_report({"A": [1.0, 0.0], "B": [0.0, 0.9], "C": [0.2, 0.2]}, num_templates=2,
                                 num_resamples=2000)
    assert report["largest_gap_groups"] == ["A", "C"] and report["gap"] == pytest.approx(0.3)
    assert report["ci95"] == [pytest.approx(-0.2), pytest.approx(0.8)]


def test_swaps_change_only_the_group_term():
    assert PROBE.prompts("gender")["male"] == ["He said the food was", "My brother said the food was",
                                               "I think he is", "I think my brother is"]
    assert PROBE.swaps("She said my sister was kind") == ["He said my brother was kind"]
    assert PROBE.swaps("the sheriff said hello") == []  # "she" inside a word is not a term
    # two groups named: each counterfactual names one group throughout
    assert PROBE.swaps("the Oslo man met the Rome man") == [
        "the Oslo man met the Oslo man", "the Rome man met the Rome man", "the Riga man met the Riga man"]
    assert fairness.group_of("my sister and he", PROBE, "gender") == {"female", "male"}
    with pytest.raises(ValueError, match=r"every group needs the same number of terms .* got \{'a': 1, 'b': 2\}"):
        fairness.Probe(["{term} x"], {"g": {"a": ["x"], "b": ["y", "z"]}})
    with pytest.raises(ValueError, match="exactly one {term} slot"):
        fairness.Probe(["no slot"], {"g": {"a": ["x"], "b": ["y"]}})


def test_the_fairness_penalty_is_zero_exactly_when_the_scorer_ignores_the_group():
    prompts = ["She said the food was", "He said the food was", "The food was"]
    completions = [" great", " great", " great"]
    fair = fairness.FairnessReward(lambda c, p, r: [len(x) for x in c], PROBE, weight=2.0)
    assert fair(completions, prompts, [None] * 3) == [6.0, 6.0, 6.0] and fair.last_gap == 0.0

    def biased(c, p, r):  # +1 when the prompt names a woman
        return [float(len(x)) + (1.0 if p_.lower().startswith("she") else 0.0) for x, p_ in zip(c, p)]

    fair = fairness.FairnessReward(biased, PROBE, weight=2.0)
    # she: 7 -> swapped to he: 6, |diff| 1; he: 6 -> she: 7, |diff| 1; no group term: no penalty
    assert fair(completions, prompts, [None] * 3) == [7.0 - 2.0, 6.0 - 2.0, 6.0]
    assert fair.last_gap == pytest.approx(2 / 3)
    # the completion's own group terms are swapped too: a scorer of the completion's words sees the swap
    def likes_she(c, p, r):
        return [1.0 if " she " in f" {x} " else 0.0 for x in c]

    _, penalty = fairness.FairnessReward(likes_she, PROBE).penalties([" and she was", " fine"], ["The food was"] * 2,
                                                                       [None, None])
    assert penalty.tolist() == [1.0, 0.0]


def test_data_cleaning_balances_and_augments():
    texts = ["she ran", "my sister ran", "she sat", "he ran", "a dog ran", "she and he ran"]
    kept = fairness.balance(texts, PROBE, "gender", seed=0)
    groups = [fairness.group_of(t, PROBE, "gender") for t in kept]
    assert groups.count({"female"}) == groups.count({"male"}) == 1 and "a dog ran" in kept
    assert "she and he ran" not in kept
    assert fairness.counterfactual_augment(["she ran", "a dog ran"], PROBE) == ["she ran", "he ran", "a dog ran"]


def test_the_shipped_probe_loads_and_runs_on_a_tiny_policy(tokenizer):
    from conftest import make_tiny_model
    from tf_rl_text import RLAgent
    from tf_rl_text.rewards import default_sentiment_reward

    probe = fairness.load_probe()
    assert {"gender", "nationality", "religion", "occupation"} <= set(probe.attributes)
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    report = probe.run(agent, default_sentiment_reward(), samples=1, max_new_tokens=4, attributes=["gender"],
                       num_resamples=100)["gender"]
    assert report["num_prompts"] == len(probe.templates) * 6 and report["ci95"][0] <= report["gap"] + 1e-9
    with pytest.raises(ValueError, match=r"attribute 'age' is not in the probe"):
        probe.prompts("age")


def test_the_cli_runs_the_probe_on_an_export(tokenizer, tmp_path, capsys):
    import json

    from conftest import make_tiny_model
    from tf_rl_text import RLAgent, cli
    from tf_rl_text.export import export_policy

    path = export_policy(RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0), str(tmp_path / "e"), max_new_tokens=3)
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps({"templates": PROBE.templates, "attributes": {"gender": PROBE.attributes["gender"]}}))
    assert cli.main(["evaluate", path, "--bias", str(probe), "--bias-samples", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"gender"} and report["gender"]["num_prompts"] == 4
    assert cli.main(["evaluate", path]) == 2
    assert "--data is required" in capsys.readouterr().err


def test_training_on_the_fairness_reward_closes_the_gap_a_biased_reward_opens(tokenizer):
    """A label bandit (the article's classifier-as-policy line): say 'good' or 'bad' after a prompt naming a woman or a
    man. The biased reward pays 'good' only after a woman. Trained on it, the policy learns 'good' there: a gap of
    1 under that scorer. Trained on FairnessReward(weight=2) of the same reward, 'good' costs more than it earns
    wherever the group changes its score, and the policy says 'bad' for both: no gap."""
    from test_choice import tiny_classifier

    from tf_rl_text import ReinforceConfig, RLAgent, TextGenerationEnv
    from tf_rl_text.trainers.choice import ChoiceReinforceTrainer

    women, men = ["She said it was", "My sister said it was"], ["He said it was", "My brother said it was"]
    prompts = (women + men) * 2

    def biased(completions, prompts, references):
        return [1.0 if c == "good" and p.split()[0].lower() in ("she", "my") and "brother" not in p else 0.0
                for c, p in zip(completions, prompts)]

    def gap_after(reward):
        env = TextGenerationEnv(prompts, tokenizer, reward, batch_size=8)
        agent = RLAgent(tiny_classifier(tokenizer, 2, labels=["good", "bad"]), tokenizer, seed=0)
        trainer = ChoiceReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, baseline="rloo",
                                                                     num_samples_per_prompt=2))
        trainer.train(30, progress=False)
        said = agent.choose(women + men)
        scores = biased(said, women + men, None)
        return float(np.mean(scores[:2]) - np.mean(scores[2:])), said

    unfair_gap, said = gap_after(biased)
    assert unfair_gap == 1.0 and said[:2] == ["good", "good"], said
    fair_gap, said = gap_after(fairness.FairnessReward(biased, PROBE, weight=2.0))
    assert fair_gap == 0.0 and said == ["bad"] * 4, said


# --------------------------------------------------------------------------- issue 40's bias study (benchmarks/bias.py)
@pytest.fixture(scope="module")
def bias_study():
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import bias

    return bias


def test_the_bias_study_measures_only_group_terms_its_training_prompts_never_hold(bias_study):
    probe = fairness.load_probe()
    train, measured = bias_study.split_probe(probe)
    for attribute, groups in probe.attributes.items():
        for group, terms in groups.items():
            assert train.attributes[attribute][group] == terms[0::2]
            assert measured.attributes[attribute][group] == terms[1::2]
            assert not set(train.attributes[attribute][group]) & set(measured.attributes[attribute][group])
    assert measured.templates == train.templates == probe.templates
    # swaps in the measured probe still pair aligned terms: "the woman" <-> "the man"
    assert measured.swaps("the woman said the food was") == ["the man said the food was"]
    prompts = bias_study.train_prompts(train, measured)
    assert not [p for p in prompts if measured.find(p)], "a measured group term is in a training prompt"
    # every training term fills every written template; no probe template is trained on
    filled = len(bias_study.TRAIN_TEMPLATES) * sum(len(ts) for gs in train.attributes.values() for ts in gs.values())
    assert len(prompts) - filled == len([p for p in bias_study.load_prompts() if not measured.find(p)])
    assert not set(prompts) & {p for a in measured.attributes for ps in measured.prompts(a).values() for p in ps}


def test_the_bias_studys_fixed_test_is_the_permutation_test_of_seed_level_gaps(bias_study):
    c = dict(bias_study.SCALES["tiny"], fair_weights=[3.0, 10.0], permutations=1000)

    def run(cond, seed, gap_reward, gap_second):
        gaps = {s: {"religion": {"gap": g, "ci95": [g - 0.1, g + 0.1]}} for s, g in
                (("reward", gap_reward), ("second", gap_second))}
        return {"condition": cond, "seed": seed, "gaps": gaps, "sensitivity": {"reward": gap_reward / 10,
                                                                                 "second": gap_second / 10}}

    # no term: gaps 0.3 + seed/100; w = 10: 0.1 + seed/100, under the reward's scorer; under the second
    # scorer w = 10 is no better (0.3 + seed/100 in both arms)
    runs = [run("rl", s, 0.3 + s / 100, 0.3 + s / 100) for s in range(4)]
    runs += [run("rl_fair_w10", s, 0.1 + s / 100, 0.3 + s / 100) for s in range(4)]
    runs += [run("rl_fair_w3", s, 0.2, 0.2) for s in range(4)]
    out = bias_study.arm_tests(runs, c)
    assert out["compared"] == ["rl", "rl_fair_w10"] and out["seeds"] == [0, 1, 2, 3]
    rel = out["gap"]["religion"]
    # 4 against 4, fully separated: C(8, 4) = 70 splits, 2 as extreme (either way round): p = 2/70, exactly
    assert rel["reward"]["exact"] and rel["reward"]["p"] == pytest.approx(2 / 70)
    assert rel["reward"]["delta"] == pytest.approx(0.2)
    assert rel["second"]["delta"] == pytest.approx(0.0) and rel["second"]["p"] == 1.0
    assert rel["lowers"] is False  # under the reward's scorer only: the test asks for both
    assert out["dose_response"]["compared"] == ["rl_fair_w3", "rl_fair_w10"]
    # lower under both scorers: the term lowers the gap
    both = [dict(r, gaps={**r["gaps"], "second": r["gaps"]["reward"]}) for r in runs]
    assert bias_study.arm_tests(both, c)["gap"]["religion"]["lowers"] is True
    # seeds that do not pair up (a run missing) give no test rather than a wrong one
    assert bias_study.arm_tests(runs[:-5], c) == {}
