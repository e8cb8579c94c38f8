#!/usr/bin/env python
"""Issue 28's result: the positive-reviews policy trained with and without the fairness term, its bias
measured by the counterfactual probe before and after, with what the task reward and KL cost (3 seeds).

Setup (the positive-reviews example, configs/positive_reviews.yaml, with prompts that name people):
- the scorer and task reward: a MiniLM sentiment classifier fine-tuned on the labelled review sentences
  (``$TF_RL_TEXT_DATA/sentiment``), P(positive | prompt + completion); ``--classifier FOLDER`` reuses a
  trained one (the preferences frontier keeps its own in ``docs/results/preferences_work/classifier``);
- the policy: the embedded GPT-2 warm-started on the embedded review corpus (pi_ref);
- training prompts: the example's 64 prompts plus 8 templates written here (not the probe's) filled with
  every group term of the shipped probe, so the batch holds people of every group;
- REINFORCE with the leave-one-out baseline and a KL leash, as the example; ``fair``: the same reward
  wrapped in ``FairnessReward(weight=W)`` (W = 3 and 10) (minus W x the mean |score change| under group-term swaps);
- the measurement, on the shipped probe's 10 templates (none trained on): per attribute the largest gap
  between group means with its paired-bootstrap 95% interval; ``reward``: the mean P(positive) over all
  probe prompts; ``sensitivity``: the mean |score change| under swaps (what the fairness term penalises);
  ``kl``: Monte-Carlo KL(pi || pi_ref) per completion on those samples.

    python benchmarks/bias.py                  # 3 seeds (about an hour on 2 cores)
    python benchmarks/bias.py --scale tiny     # a smoke run (tiny models, 1 seed)

Writes ``docs/results/bias.json`` after every run (a stopped run resumes from it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv, warm_start  # noqa: E402
from tf_rl_text import fairness  # noqa: E402
from tf_rl_text.defaults import default_model, default_tokenizer, load_corpus, load_prompts  # noqa: E402
from _common import (cached_weights, resume_records, sample_against_reference, sentiment_classifier,  # noqa: E402
                     write_json_atomic)

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

SCALES = {
    "full": dict(seeds=3, warm_steps=600, steps=120, batch=8, samples_per_prompt=4, new_tokens=16, kl_coef=0.05,
                 fair_weights=[3.0, 10.0], probe_samples=4, classifier_train=1600, classifier_epochs=2, layers=None,
                 width=None),
    "tiny": dict(seeds=1, warm_steps=20, steps=2, batch=4, samples_per_prompt=2, new_tokens=6, kl_coef=0.05,
                 fair_weights=[3.0], probe_samples=1, classifier_train=64, classifier_epochs=1, layers=1, width=32),
}


def classifier(args, c):
    """The sentiment scorer: a trained folder, or MiniLM fine-tuned here on the labelled sentences."""
    from tf_rl_text.rewards import load_labelled_texts, minilm_path, train_reward_model

    if args.classifier and not os.path.exists(os.path.join(args.classifier, "config.json")):
        raise SystemExit(f"--classifier {args.classifier}: no config.json there; pass a folder written by "
                         "train_reward_model(output_dir=...) or leave it out to train one")

    def train(folder):
        texts, labels = load_labelled_texts(os.path.join(args.data_dir, "sentiment"))
        order = np.random.RandomState(0).permutation(len(texts))[:c["classifier_train"]]
        return train_reward_model(minilm_path(), ([texts[i] for i in order], [labels[i] for i in order]),
                                  epochs=c["classifier_epochs"], batch_size=32, max_length=48, verbose=0, seed=0,
                                  output_dir=folder)

    return sentiment_classifier(args.classifier or os.path.join(args.work, "classifier"), train)


def train_prompts(probe):
    terms = [t for groups in probe.attributes.values() for ts in groups.values() for t in ts]
    return list(load_prompts()) + [fairness._fill(t, term) for t in TRAIN_TEMPLATES for term in terms]


def measure(agent, ref_model, probe, scorer, c, seed):
    """The probe's report plus the task reward, the counterfactual sensitivity and KL on the probe's prompts."""
    report = probe.run(agent, scorer, samples=c["probe_samples"], seed=1000 + seed, max_new_tokens=c["new_tokens"])
    prompts = list(dict.fromkeys(p for a in probe.attributes for ps in probe.prompts(a).values() for p in ps))
    sample = sample_against_reference(agent, ref_model, prompts, c["new_tokens"], 2000 + seed)
    base, penalty = fairness.FairnessReward(scorer, probe).penalties(sample["texts"], prompts, [None] * len(prompts))
    return {"gaps": {a: {k: r[k] for k in ("gap", "ci95", "largest_gap_groups", "group_means")}
                     for a, r in report.items()},
            "reward": float(base.mean()), "sensitivity": float(penalty.mean()), "kl": sample["kl"]}


def summary(runs):
    """Per condition and attribute: the mean gap over seeds and how many seeds' intervals exclude 0."""
    out = {}
    for cond in dict.fromkeys(r["condition"] for r in runs):
        group = [r for r in runs if r["condition"] == cond]
        attrs = list(group[0]["gaps"])
        out[cond] = {"seeds": len(group),
                     "reward": float(np.mean([r["reward"] for r in group])),
                     "sensitivity": float(np.mean([r["sensitivity"] for r in group])),
                     "kl": float(np.mean([r["kl"] for r in group])),
                     "gap": {a: float(np.mean([r["gaps"][a]["gap"] for r in group])) for a in attrs},
                     "gap_ci_excludes_0": {a: sum(r["gaps"][a]["ci95"][0] > 0 for r in group) for a in attrs}}
    return out


def save(path, runs, c, args, cpu, complete):
    result = {"benchmark": "bias", "scale": args.scale, "complete": complete, "settings": c,
              "train_templates": TRAIN_TEMPLATES, "runs": runs, "summary": summary(runs) if runs else {},
              "cpu_s": round(cpu, 1),
              "command": "python benchmarks/bias.py" + (f" --scale {args.scale}" if args.scale != "full" else "")}
    write_json_atomic(path, result)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--data-dir", default=os.environ.get("TF_RL_TEXT_DATA"))
    ap.add_argument("--classifier", default=None, help="a trained sentiment classifier folder (default: train one)")
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "results", "bias.json"))
    ap.add_argument("--work", default=None, help="where the classifier and warm start are kept (default OUT_work)")
    ap.add_argument("--fresh", action="store_true", help="ignore the runs already in OUT (default: resume)")
    args = ap.parse_args(argv)
    c = SCALES[args.scale]
    if not args.data_dir and not args.classifier:
        ap.error("--data-dir or $TF_RL_TEXT_DATA (the folder holding sentiment/), or --classifier FOLDER")
    args.work = args.work or os.path.splitext(args.out)[0] + "_work"
    os.makedirs(args.work, exist_ok=True)
    runs, cpu_before = resume_records(args.out, c, "runs", "bias", args.fresh)
    done = {(r["condition"], r["seed"]) for r in runs}
    t0 = cpu_before - time.process_time()

    scorer = classifier(args, c)
    probe = fairness.load_probe()
    tokenizer = default_tokenizer()
    size = {} if c["layers"] is None else dict(n_layer=c["layers"], n_embd=c["width"], n_head=2)
    base = RLAgent(default_model(tokenizer, seed=0, **size), tokenizer, seed=0)
    warm = cached_weights(base.model, os.path.join(args.work, "warm_start.npz"),
                          lambda: warm_start(base, load_corpus(), steps=c["warm_steps"], progress=False))
    ref_model = base.clone_model()
    prompts = train_prompts(probe)

    def agent_for(seed):
        agent = RLAgent(default_model(tokenizer, seed=0, **size), tokenizer, seed=seed)
        agent.model.set_weights(warm)
        return agent

    conditions = [("warm_start", None), ("rl", None)] + [(f"rl_fair_w{w:g}", w) for w in c["fair_weights"]]
    for seed in range(c["seeds"]):
        for cond, weight in conditions:
            if (cond, seed) in done:
                continue
            agent = agent_for(seed)
            extra = {}
            if cond != "warm_start":
                reward = scorer if weight is None else fairness.FairnessReward(scorer, probe, weight=weight)
                env = TextGenerationEnv(prompts, tokenizer, reward, batch_size=c["batch"],
                                        max_new_tokens=c["new_tokens"], seed=seed)
                config = ReinforceConfig(learning_rate=3e-4, baseline="rloo", kl_coef=c["kl_coef"],
                                         num_samples_per_prompt=c["samples_per_prompt"], reward_normalization=True,
                                         reward_clip=5.0, seed=seed)
                logs = ReinforceTrainer(agent, env, config).train(c["steps"], progress=False)
                extra = {"train_reward_last10": float(np.mean([s["reward_mean"] for s in logs[-10:]]))}
            runs.append({"condition": cond, "weight": weight, "seed": seed,
                         **measure(agent, ref_model, probe, scorer, c, seed), **extra})
            r = runs[-1]
            save(args.out, runs, c, args, t0 + time.process_time(), complete=False)
            print(f"[bias] {cond} seed {seed}: reward {r['reward']:.3f}, sensitivity {r['sensitivity']:.4f}, "
                  f"KL {r['kl']:.2f}, gaps " + ", ".join(f"{a} {g['gap']:.3f}" for a, g in r["gaps"].items())
                  + f" ({t0 + time.process_time():.0f} CPU s)", file=sys.stderr, flush=True)
    result = save(args.out, runs, c, args, t0 + time.process_time(), complete=True)
    print(json.dumps(result["summary"], indent=1))
    return result


if __name__ == "__main__":
    main()
