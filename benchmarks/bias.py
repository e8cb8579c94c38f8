#!/usr/bin/env python
"""Issue 40, step 4 (bias): does the fairness term lower the policy's counterfactual bias? Ten seeds of each
arm, the group terms the probe measures held out of training, a second scorer that is not the reward, and a
permutation test fixed before the runs (docs/results.md, "Issue 40, step 4").

Setup (the positive-reviews example, configs/positive_reviews.yaml, with prompts that name people):
- **the reward**: P(positive | prompt + completion) from MiniLM fine-tuned on 1,600 of the 3,000 labelled review
  sentences (``$TF_RL_TEXT_DATA/sentiment``; the preference frontier's classifier: the same data, seed and
  settings). **The second scorer**: MiniLM fine-tuned, from another seed, on the other 1,400 sentences. It never
  gives a reward; it only measures;
- **the policy**: the embedded GPT-2, warm-started on the embedded review corpus. **Each seed trains its own warm
  start** (its own initial weights and batch order), so the seeds of every arm are independent models;
- **the group terms, split in two** (:func:`split_probe`): in every group, the terms at even positions fill the
  training prompts (with 8 templates written here) and the fairness term's swaps; the terms at odd positions are
  the only ones the probe measures, on the probe's own 10 templates (none trained on). Embedded prompts that hold
  a measured term are left out of training. Nationality and religion terms share their group's word ("the
  German", "a German student"), so there what is held out is the phrase, not the word;
- **the arms**: REINFORCE with the leave-one-out baseline and a KL leash (``kl_coef`` 0.05), 120 updates of 8
  prompts x 4 samples: the plain reward, ``FairnessReward(weight=3)`` and ``FairnessReward(weight=10)`` (minus
  W x the mean |score change| under group-term swaps); the warm start itself is measured too;
- **the measurement**: 8 sampled completions per filled probe template, scored by both scorers (the same
  completions). Per attribute: the largest gap between group means with its paired-bootstrap 95% interval
  (resampling templates); ``reward``: the mean P(positive) under the reward's scorer; ``sensitivity``: the mean
  |score change| under swaps of the measured terms, per scorer; ``kl``: Monte-Carlo KL(pi || pi_ref) per
  completion, pi_ref the seed's own warm start;
- **the test** (fixed before the runs): for each attribute, a two-sided permutation test (10,000 relabellings)
  of the difference in mean gap between the 10 no-term seeds and the 10 w = 10 seeds; the term lowers the gap
  if p < 0.05 under both scorers (and the mean gap is lower). w = 3 against w = 10 (dose-response) is reported,
  not tested.

    python benchmarks/bias.py --data-dir ../shared/data        # 10 seeds (about 1.5 CPU-hours on 2 cores)
    python benchmarks/bias.py --scale tiny --data-dir ...      # a smoke run (tiny models, 2 seeds)

Writes ``docs/results/bias.json`` after every run; rerunning the same command resumes from it (the classifiers
and warm starts are kept in ``docs/results/bias_work/``). Issue 28's first study (3 seeds of one warm start, the
probe's terms in the training prompts, one scorer) is ``docs/results/attempts/bias_issue28.json``.
"""
from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv, warm_start  # noqa: E402
from tf_rl_text import fairness, metrics  # noqa: E402
from tf_rl_text.defaults import default_model, default_tokenizer, load_corpus, load_prompts  # noqa: E402
from _common import (cached_weights, resume_records, sample_against_reference, sentiment_classifier,  # noqa: E402
                     sentiment_study_args, write_json_atomic)

TRAIN_TEMPLATES = [  # written for this benchmark; the probe's own templates stay held out
    "{term} ordered the soup and thought it was",
    "{term} stayed at the hotel and said the room was",
    "A friend asked {term} about the phone, and the answer was that it was",
    "{term} saw the play and wrote that it was",
    "The letter from {term} said the trip was",
    "{term} used the new laptop and found the screen",
    "According to {term}, the concert was",
    "{term} tasted the coffee and said it was",
]
SCORERS = ("reward", "second")  # the reward's scorer, and the one trained apart from it (measures only)

SCALES = {
    "full": dict(seeds=10, warm_steps=600, steps=120, batch=8, samples_per_prompt=4, new_tokens=16, kl_coef=0.05,
                 fair_weights=[3.0, 10.0], probe_samples=8, classifier_train=1600, classifier_epochs=2,
                 permutations=10000, alpha=0.05, layers=None, width=None),
    "tiny": dict(seeds=2, warm_steps=10, steps=1, batch=4, samples_per_prompt=2, new_tokens=4, kl_coef=0.05,
                 fair_weights=[10.0], probe_samples=1, classifier_train=48, classifier_epochs=1, permutations=200,
                 alpha=0.05, layers=1, width=32),
}


def split_probe(probe: fairness.Probe):
    """(train probe, measured probe): in every group the terms at even positions (0, 2, ...) and those at odd
    positions (1, 3, ...), on the same templates. Aligned terms stay aligned, so swaps still pair them."""
    def part(start):
        return fairness.Probe(probe.templates, {a: {g: ts[start::2] for g, ts in groups.items()}
                                                for a, groups in probe.attributes.items()})

    return part(0), part(1)


def train_prompts(train_probe: fairness.Probe, measured_probe: fairness.Probe) -> list:
    """The example's prompts without any that hold a measured term, plus :data:`TRAIN_TEMPLATES` filled with every
    training term."""
    terms = [t for groups in train_probe.attributes.values() for ts in groups.values() for t in ts]
    kept = [p for p in load_prompts() if not measured_probe.find(p)]
    return kept + [fairness._fill(t, term) for t in TRAIN_TEMPLATES for term in terms]


def scorers(args, c) -> dict:
    """{"reward": the reward's classifier, "second": the other one}: MiniLM fine-tuned on disjoint parts of the
    labelled sentences (a fixed permutation: the first ``classifier_train``, then the rest), seeds 0 and 1."""
    from tf_rl_text.rewards import load_labelled_texts, minilm_path, train_reward_model

    if args.classifier and not os.path.exists(os.path.join(args.classifier, "config.json")):
        raise SystemExit(f"--classifier {args.classifier}: no config.json there; pass a folder written by "
                         "train_reward_model(output_dir=...) or leave it out to train one")
    texts, labels = load_labelled_texts(os.path.join(args.data_dir, "sentiment"))
    order = np.random.RandomState(0).permutation(len(texts))
    n = c["classifier_train"]
    parts = {"reward": (order[:n], 0), "second": (order[n:] if args.scale == "full" else order[n:2 * n], 1)}

    def trainer(name):
        idx, seed = parts[name]

        def train(folder):
            print(f"[bias] training the {name} scorer on {len(idx)} sentences", file=sys.stderr, flush=True)
            return train_reward_model(minilm_path(), ([texts[i] for i in idx], [labels[i] for i in idx]),
                                      epochs=c["classifier_epochs"], batch_size=32, max_length=48, verbose=0,
                                      seed=seed, output_dir=folder)
        return train

    out = {"reward": sentiment_classifier(args.classifier or os.path.join(args.work, "classifier"),
                                          trainer("reward")),
           "second": sentiment_classifier(os.path.join(args.work, "second_classifier"), trainer("second"))}
    # each scorer's accuracy on the sentences the other was trained on (neither saw them)
    accuracy = {}
    for name, other in (("reward", "second"), ("second", "reward")):
        idx = parts[other][0]
        probs = np.asarray(out[name]([texts[i] for i in idx], [""] * len(idx), [None] * len(idx)))
        accuracy[name] = float(np.mean((probs > 0.5) == (np.asarray([int(labels[i]) for i in idx]) == 1)))
    return out, {"sentences": {k: int(len(v[0])) for k, v in parts.items()}, "held_out_accuracy": accuracy}


def measure(agent, ref_model, probe, scorer_fns, c, seed):
    """Both scorers' probe reports on the same sampled completions, the reward, the sensitivity per scorer and
    the KL to the seed's warm start."""
    reports = probe.run(agent, {name: scorer_fns[name] for name in SCORERS}, samples=c["probe_samples"],
                        seed=1000 + seed, max_new_tokens=c["new_tokens"])  # sampled once, scored by both
    gaps = {name: {a: {k: r[k] for k in ("gap", "ci95", "largest_gap_groups", "group_means")}
                   for a, r in reports[name].items()} for name in SCORERS}
    prompts = list(dict.fromkeys(p for a in probe.attributes for ps in probe.prompts(a).values() for p in ps))
    sample = sample_against_reference(agent, ref_model, prompts, c["new_tokens"], 2000 + seed)
    refs = [None] * len(prompts)
    sensitivity, reward = {}, None
    for name in SCORERS:
        base, penalty = fairness.FairnessReward(scorer_fns[name], probe).penalties(sample["texts"], prompts, refs)
        sensitivity[name] = float(penalty.mean())
        reward = float(base.mean()) if name == "reward" else reward
    return {"gaps": gaps, "reward": reward, "sensitivity": sensitivity, "kl": sample["kl"],
            "distinct_2": metrics.distinct_n(sample["texts"], 2)}


def conditions(c) -> list:
    return [("warm_start", None), ("rl", None)] + [(f"rl_fair_w{w:g}", w) for w in c["fair_weights"]]


def summary(runs) -> dict:
    """Per arm: the means over its seeds, per scorer and attribute the mean gap and on how many seeds the gap's
    interval excludes 0."""
    out = {}
    for cond in dict.fromkeys(r["condition"] for r in runs):
        group = [r for r in runs if r["condition"] == cond]
        attrs = list(group[0]["gaps"]["reward"])
        out[cond] = {"seeds": len(group),
                     "reward": float(np.mean([r["reward"] for r in group])),
                     "kl": float(np.mean([r["kl"] for r in group])),
                     "distinct_2": float(np.mean([r["distinct_2"] for r in group])),
                     "sensitivity": {s: float(np.mean([r["sensitivity"][s] for r in group])) for s in SCORERS},
                     "gap": {s: {a: float(np.mean([r["gaps"][s][a]["gap"] for r in group])) for a in attrs}
                             for s in SCORERS},
                     "gap_ci_excludes_0": {s: {a: int(sum(r["gaps"][s][a]["ci95"][0] > 0 for r in group))
                                               for a in attrs} for s in SCORERS}}
    return out


def arm_tests(runs, c) -> dict:
    """The test fixed before the runs: per attribute and scorer, the permutation test of mean gap (no term)
    - mean gap (the largest weight), over seeds; ``lowers``: p < alpha under both scorers and both deltas > 0.
    Also, reported and not tested: the same for the sensitivity, and w = 3 against the largest weight."""
    top = f"rl_fair_w{max(c['fair_weights']):g}"
    by = {cond: sorted((r for r in runs if r["condition"] == cond), key=lambda r: r["seed"]) for cond, _ in
          conditions(c)}
    seeds = [r["seed"] for r in by["rl"]]
    if not seeds or seeds != [r["seed"] for r in by[top]]:
        return {}

    def test(a_runs, b_runs, value):
        return metrics.permutation_test([value(r) for r in a_runs], [value(r) for r in b_runs],
                                        num_permutations=c["permutations"], seed=0)

    attrs = list(by["rl"][0]["gaps"]["reward"])
    gap = {a: {s: test(by["rl"], by[top], lambda r, s=s, a=a: r["gaps"][s][a]["gap"]) for s in SCORERS}
           for a in attrs}
    for a in attrs:
        gap[a]["lowers"] = all(gap[a][s]["p"] < c["alpha"] and gap[a][s]["delta"] > 0 for s in SCORERS)
    out = {"compared": ["rl", top], "seeds": seeds, "alpha": c["alpha"], "gap": gap,
           "sensitivity": {s: test(by["rl"], by[top], lambda r, s=s: r["sensitivity"][s]) for s in SCORERS}}
    low = [f"rl_fair_w{w:g}" for w in c["fair_weights"] if f"rl_fair_w{w:g}" != top]
    if low and [r["seed"] for r in by[low[0]]] == seeds:  # dose-response, reported not tested
        out["dose_response"] = {"compared": [low[0], top], "gap": {
            a: {s: test(by[low[0]], by[top], lambda r, s=s, a=a: r["gaps"][s][a]["gap"]) for s in SCORERS}
            for a in attrs}}
    return out


def save(path, runs, c, args, cpu, complete, context):
    result = {"benchmark": "bias", "protocol": "issue 40, step 4", "scale": args.scale, "complete": complete,
              "settings": c, "train_templates": TRAIN_TEMPLATES, **context, "runs": runs,
              "summary": summary(runs) if runs else {}, "tests": arm_tests(runs, c) if complete else {},
              "cpu_s": round(cpu, 1),
              "command": "python benchmarks/bias.py --data-dir DATA" + (
                  f" --scale {args.scale}" if args.scale != "full" else "")}
    write_json_atomic(path, result)
    return result


def main(argv=None):
    def extra(ap):
        ap.add_argument("--classifier", default=None, help="the reward's trained sentiment classifier folder "
                                                           "(default: train one)")

    args = sentiment_study_args(__doc__, SCALES, os.path.join(REPO, "docs", "results", "bias.json"),
                                "where the classifiers and warm starts are kept", argv, extra)
    c = SCALES[args.scale]
    runs, cpu_before = resume_records(args.out, c, "runs", "bias", args.fresh)
    done = {(r["condition"], r["seed"]) for r in runs}
    t0 = cpu_before - time.process_time()

    scorer_fns, scorer_note = scorers(args, c)
    train_probe, probe = split_probe(fairness.load_probe())
    prompts = train_prompts(train_probe, probe)
    context = {"scorers": scorer_note, "train_prompts": len(prompts),
               "measured_terms": probe.attributes, "train_terms": train_probe.attributes}
    print(f"[bias] scorers' accuracy on each other's sentences: {scorer_note['held_out_accuracy']}; "
          f"{len(prompts)} training prompts", file=sys.stderr, flush=True)
    tokenizer = default_tokenizer()
    size = {} if c["layers"] is None else dict(n_layer=c["layers"], n_embd=c["width"], n_head=2)

    for seed in range(c["seeds"]):
        if all((cond, seed) in done for cond, _ in conditions(c)):
            continue
        base = RLAgent(default_model(tokenizer, seed=seed, **size), tokenizer, seed=seed)
        warm = cached_weights(base.model, os.path.join(args.work, f"warm_start_seed{seed}.npz"),
                              lambda: warm_start(base, load_corpus(), steps=c["warm_steps"], seed=seed,
                                                 progress=False))
        ref_model = base.clone_model()
        for cond, weight in conditions(c):
            if (cond, seed) in done:
                continue
            agent = RLAgent(default_model(tokenizer, seed=seed, **size), tokenizer, seed=seed)
            agent.model.set_weights(warm)
            extra = {}
            if cond != "warm_start":
                reward = scorer_fns["reward"]
                if weight is not None:
                    reward = fairness.FairnessReward(reward, train_probe, weight=weight)
                env = TextGenerationEnv(prompts, tokenizer, reward, batch_size=c["batch"],
                                        max_new_tokens=c["new_tokens"], seed=seed)
                config = ReinforceConfig(learning_rate=3e-4, baseline="rloo", kl_coef=c["kl_coef"],
                                         num_samples_per_prompt=c["samples_per_prompt"], reward_normalization=True,
                                         reward_clip=5.0, seed=seed)
                logs = ReinforceTrainer(agent, env, config).train(c["steps"], progress=False)
                extra = {"train_reward_last10": float(np.mean([s["reward_mean"] for s in logs[-10:]]))}
            runs.append({"condition": cond, "weight": weight, "seed": seed,
                         **measure(agent, ref_model, probe, scorer_fns, c, seed), **extra})
            r = runs[-1]
            save(args.out, runs, c, args, t0 + time.process_time(), False, context)
            print(f"[bias] {cond} seed {seed}: reward {r['reward']:.3f}, sensitivity {r['sensitivity']['reward']:.4f}"
                  f" / {r['sensitivity']['second']:.4f}, KL {r['kl']:.2f}, gaps (reward / second scorer) "
                  + ", ".join(f"{a} {g['gap']:.3f}/{r['gaps']['second'][a]['gap']:.3f}"
                              for a, g in r["gaps"]["reward"].items())
                  + f" ({t0 + time.process_time():.0f} CPU s)", file=sys.stderr, flush=True)
    result = save(args.out, runs, c, args, t0 + time.process_time(), True, context)
    print(json.dumps({"summary": result["summary"], "tests": result["tests"]}, indent=1))
    return result


if __name__ == "__main__":
    main()
