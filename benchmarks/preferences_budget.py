#!/usr/bin/env python
"""Issue 40, step 4 (preferences): RL against DPO with **equal label budgets**, a learning-rate sweep per method,
and the matched-KL test fixed before the runs (docs/results.md, "Issue 40, step 4").

The task, the policy and the ground truth are the preference frontier's (benchmarks/preferences_frontier.py): the
embedded GPT-2 warm-started on review sentences is pi_ref; a MiniLM sentiment classifier is the ground truth;
prompts are the first words of review sentences it did not train on, split into training, held-out (for choosing
the learning rate) and test prompts.

**The label budget.** An RL run of ``rl_steps`` updates of ``batch`` prompts x ``samples_per_prompt`` samples calls
the ground truth ``rl_steps x batch x samples_per_prompt`` times (7,680 at full scale). Every method gets that
many calls:
- ``rloo`` (REINFORCE, leave-one-out baseline) and ``ppo``: the calls score their own samples, as before;
- ``dpo``: **fresh pairs**, two samples of pi_ref per pair, best over worst by the ground truth: ``budget / 2``
  pairs (a pair whose two samples score alike is dropped; its calls still count), over the training prompts
  again and again with new sampling seeds, then one pass over them (``ceil(pairs / batch)`` updates);
- ``online_dpo`` (Guo et al. 2024): two samples of the current policy per prompt, best over worst, one DPO
  update per ``batch`` prompts: ``budget / (2 x batch)`` updates.

**The sweep.** Each method's KL setting (``kl_coef`` for RLOO and PPO, ``beta`` for both DPOs) is trained at
each of ``learning_rates`` with seed 0; the rate with the highest mean ground truth on the held-out prompts is
kept for that setting, and seeds 1.. run at it. Every point records the reward, the KL, pi_ref's perplexity,
**distinct-2** and sample texts, on the test prompts (and the held-out ones for the sweep).

**The test, fixed before the runs.** Points are grouped by the KL bin their mean KL over seeds falls in
(``kl_bins``; a slightly negative Monte-Carlo KL counts in the first bin, one past the last edge in the last). In each bin and for each method, its highest-reward setting there gives the method's reward there,
with a 95% bootstrap interval over seeds (10,000 resamples). A method is ahead of another in a bin only where its
interval's lower end is above the other's mean.

    python benchmarks/preferences_budget.py --data-dir ../shared/data            # about 2 CPU-hours
    python benchmarks/preferences_budget.py --data-dir ../shared/data --scale tiny   # a smoke run

Writes ``docs/results/preferences_budget.json`` after every point; the same command resumes from it (the
classifier, pi_ref and the fresh pairs are kept in ``docs/results/preferences_budget_work/``).
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from tf_rl_text import (DPOConfig, DPOTrainer, OnlineDPOConfig, OnlineDPOTrainer, PPOConfig, PPOTrainer,  # noqa: E402
                        ReinforceConfig, ReinforceTrainer, TextGenerationEnv, metrics)
from tf_rl_text.defaults import default_tokenizer  # noqa: E402
from tf_rl_text.preferences import PreferencePairs, make_preference_pairs  # noqa: E402
from _common import (resume_records, sample_against_reference, sentiment_study_args,  # noqa: E402
                     write_json_atomic)
from preferences_frontier import ground_truth, prompts_of, reference_policy, review_data  # noqa: E402

METHODS = ("rloo", "ppo", "dpo", "online_dpo")
SCALES = {
    "full": dict(seeds=3, warm_steps=600, prompts_train=256, prompts_val=64, prompts_test=128, rl_steps=240, batch=8,
                 samples_per_prompt=4, new_tokens=16, classifier_train=1600, classifier_epochs=2,
                 learning_rates=[1e-4, 3e-4, 1e-3], kl_coefs=[0.02, 0.05, 0.1, 0.3], betas=[0.05, 0.1, 0.3, 1.0],
                 kl_bins=[0.0, 2.0, 4.0, 8.0, 16.0, 64.0], bootstrap=10000, samples_kept=4, layers=None, width=None),
    "tiny": dict(seeds=2, warm_steps=10, prompts_train=8, prompts_val=4, prompts_test=4, rl_steps=2, batch=4,
                 samples_per_prompt=2, new_tokens=4, classifier_train=48, classifier_epochs=1,
                 learning_rates=[3e-4, 1e-3], kl_coefs=[0.05], betas=[0.1], kl_bins=[0.0, 1.0, 1000.0],
                 bootstrap=200, samples_kept=2, layers=1, width=32),
}


def label_budget(c) -> int:
    """The ground-truth calls of one RL run: every method gets this many."""
    return c["rl_steps"] * c["batch"] * c["samples_per_prompt"]


def fresh_pairs(agent, prompts, reward, c, seed) -> tuple:
    """``label_budget / 2`` pairs of two fresh pi_ref samples each (the training prompts over and over, a new
    sampling seed each round), best over worst; returns (pairs, ground-truth calls made)."""
    wanted = label_budget(c) // 2
    out, calls, round_ = [[], [], []], 0, 0
    while calls < 2 * wanted:
        take = prompts[:min(len(prompts), wanted - calls // 2)]
        pairs = make_preference_pairs(agent, take, reward, n=2, max_new_tokens=c["new_tokens"],
                                      seed=10_000 * (seed + 1) + 1_000 * round_, batch_size=c["batch"])
        for part, values in zip(out, (pairs.prompts, pairs.chosen, pairs.rejected)):
            part += list(values)
        calls += 2 * len(take)
        round_ += 1
    return PreferencePairs(*out, source="fresh pi_ref pairs"), calls


def measure(agent, ref_model, prompts, reward, c, seed) -> dict:
    """On one sample per prompt: the mean ground truth, Monte-Carlo KL(pi || pi_ref), pi_ref's perplexity,
    distinct-2 and the first ``samples_kept`` texts."""
    sample = sample_against_reference(agent, ref_model, prompts, c["new_tokens"], seed)
    return {"reward": float(np.mean(reward(sample["texts"], prompts))), "kl": sample["kl"],
            "ref_ppl": sample["ref_ppl"], "distinct_2": metrics.distinct_n(sample["texts"], 2),
            "samples": [{"prompt": p, "completion": t} for p, t in zip(prompts, sample["texts"])][:c["samples_kept"]]}


def train(method, setting, lr, seed, agent, data, c):
    """Train ``agent`` by ``method`` within the label budget; returns what the point records of the training."""
    reward, prompts = data["reward"], data["train"]
    env = TextGenerationEnv(prompts, agent.tokenizer, reward, batch_size=c["batch"], max_new_tokens=c["new_tokens"],
                            seed=seed)
    if method in ("rloo", "ppo"):
        if method == "rloo":
            trainer = ReinforceTrainer(agent, env, ReinforceConfig(
                learning_rate=lr, baseline="rloo", num_samples_per_prompt=c["samples_per_prompt"], kl_coef=setting,
                seed=seed))
        else:
            trainer = PPOTrainer(agent, env, PPOConfig(
                learning_rate=lr, num_samples_per_prompt=c["samples_per_prompt"], kl_coef=setting, adaptive_kl=False,
                seed=seed))
        trainer.train(c["rl_steps"], progress=False)
        return {"steps": c["rl_steps"], "label_calls": label_budget(c)}
    if method == "dpo":
        pairs, calls = data["pairs"][seed]
        steps = math.ceil(len(pairs.prompts) / c["batch"])  # one pass over the fresh pairs
        DPOTrainer(agent, pairs, DPOConfig(beta=setting, learning_rate=lr, batch_size=c["batch"],
                                           max_new_tokens=c["new_tokens"], seed=seed)).train(steps, progress=False)
        return {"steps": steps, "label_calls": calls, "pairs": len(pairs.prompts)}
    steps = label_budget(c) // (2 * c["batch"])
    OnlineDPOTrainer(agent, env, OnlineDPOConfig(beta=setting, learning_rate=lr, num_generations=2,
                                                 seed=seed)).train(steps, progress=False)
    return {"steps": steps, "label_calls": steps * 2 * c["batch"]}


def settings_of(method, c) -> list:
    return c["kl_coefs"] if method in ("rloo", "ppo") else c["betas"]


def chosen_rates(points, c) -> dict:
    """{(method, setting): the learning rate whose seed-0 run had the highest held-out reward} (ties: the
    smaller rate), for every (method, setting) whose sweep is complete."""
    out = {}
    for m in METHODS:
        for s in settings_of(m, c):
            sweep = {p["lr"]: p["val"]["reward"] for p in points
                     if p["method"] == m and p["setting"] == s and p["seed"] == 0}
            if len(sweep) == len(c["learning_rates"]):
                out[(m, s)] = max(sorted(sweep), key=lambda lr: sweep[lr])
    return out


def bootstrap_mean(values, resamples: int, seed: int = 0) -> list:
    """95% percentile interval of the mean of ``values`` (seed-level), resampling them with replacement."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def matched_kl_test(points, c) -> dict:
    """The fixed test: per KL bin, each method's best setting there (mean over its seeds at the chosen rate),
    with a seed-level 95% bootstrap interval; ``ahead``: [a, b] where a's interval is above b's mean."""
    rates = chosen_rates(points, c)
    final = {}
    for (m, s), lr in rates.items():
        runs = sorted((p for p in points if p["method"] == m and p["setting"] == s and p["lr"] == lr),
                      key=lambda p: p["seed"])
        if len(runs) == c["seeds"]:
            final[(m, s)] = runs
    edges = c["kl_bins"]
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        entries = {}
        for (m, s), runs in final.items():
            kl = float(np.mean([p["test"]["kl"] for p in runs]))
            # a Monte-Carlo KL near 0 can come out slightly negative: below the first edge counts in the first bin,
            # and beyond the last edge in the last
            placed = min(max(kl, edges[0]), np.nextafter(edges[-1], -np.inf))
            if not lo <= placed < hi:
                continue
            rewards = [p["test"]["reward"] for p in runs]
            entry = {"setting": s, "lr": runs[0]["lr"], "kl": kl, "reward": float(np.mean(rewards)),
                     "rewards": rewards, "ci95": bootstrap_mean(rewards, c["bootstrap"]),
                     "distinct_2": float(np.mean([p["test"]["distinct_2"] for p in runs]))}
            if m not in entries or entry["reward"] > entries[m]["reward"]:
                entries[m] = entry
        ahead = [[a, b] for a in entries for b in entries if a != b and entries[a]["ci95"][0] > entries[b]["reward"]]
        bins.append({"kl_bin": [lo, hi], "methods": entries, "ahead": ahead})
    return {"bins": bins, "chosen_rates": [{"method": m, "setting": s, "lr": lr} for (m, s), lr in rates.items()]}


def save(path, points, c, args, cpu, complete, context):
    result = {"benchmark": "preferences_budget", "protocol": "issue 40, step 4", "scale": args.scale,
              "complete": complete, "settings": c, "label_budget": label_budget(c), **context, "points": points,
              "test": matched_kl_test(points, c) if complete else {}, "cpu_s": round(cpu, 1),
              "command": "python benchmarks/preferences_budget.py --data-dir DATA" + (
                  f" --scale {args.scale}" if args.scale != "full" else "")}
    write_json_atomic(path, result)
    return result


def main(argv=None):
    args = sentiment_study_args(__doc__, SCALES, os.path.join(REPO, "docs", "results", "preferences_budget.json"),
                                "where the classifier, pi_ref and the pairs are kept", argv)
    c, work = SCALES[args.scale], args.work
    points, cpu_before = resume_records(args.out, c, "points", "preferences", args.fresh)
    done = {(p["method"], p["setting"], p["lr"], p["seed"]) for p in points}
    t0 = cpu_before - time.process_time()

    texts, labels = review_data(args.data_dir)
    reward = ground_truth(texts, labels, c, work)
    held = prompts_of(texts[c["classifier_train"]:], np.random.RandomState(1))
    n_train, n_val = c["prompts_train"], c["prompts_val"]
    data = {"reward": reward, "train": held[:n_train], "val": held[n_train:n_train + n_val],
            "test": held[n_train + n_val:n_train + n_val + c["prompts_test"]], "pairs": {}}
    agent_for, ref_model = reference_policy(default_tokenizer(), texts, c, work)
    context = {"prompts": {k: len(data[k]) for k in ("train", "val", "test")}}

    def record(point):
        points.append(point)
        save(args.out, points, c, args, t0 + time.process_time(), False, context)
        print(f"[preferences] {point['method']} {point['setting']} lr {point['lr']:g} seed {point['seed']}: test "
              f"reward {point['test']['reward']:.3f}, KL {point['test']['kl']:.2f}, distinct-2 "
              f"{point['test']['distinct_2']:.3f} ({len(points)} points, {t0 + time.process_time():.0f} CPU s)",
              file=sys.stderr, flush=True)

    def run(method, setting, lr, seed):
        if (method, setting, lr, seed) in done:
            return
        if method == "dpo" and seed not in data["pairs"]:
            path = os.path.join(work, f"fresh_pairs_seed{seed}.json")  # kept, so a resumed run trains on the same
            if os.path.exists(path):
                with open(path) as f:
                    kept = json.load(f)
                data["pairs"][seed] = (PreferencePairs(kept["prompts"], kept["chosen"], kept["rejected"],
                                                       source=path), kept["label_calls"])
            else:
                pairs, calls = fresh_pairs(agent_for(seed), data["train"], reward, c, seed)
                write_json_atomic(path, {"prompts": pairs.prompts, "chosen": pairs.chosen, "rejected": pairs.rejected,
                                         "label_calls": calls})
                data["pairs"][seed] = (pairs, calls)
        agent = agent_for(seed)
        info = train(method, setting, lr, seed, agent, data, c)
        point = {"method": method, "setting": setting, "lr": lr, "seed": seed, **info,
                 "test": measure(agent, ref_model, data["test"], reward, c, 2000 + seed)}
        if seed == 0:
            point["val"] = measure(agent, ref_model, data["val"], reward, c, 3000)
        record(point)

    for seed in range(c["seeds"]):  # pi_ref itself: KL 0
        if ("reference", None, 0.0, seed) not in done:
            record({"method": "reference", "setting": None, "lr": 0.0, "seed": seed, "steps": 0, "label_calls": 0,
                    "test": measure(agent_for(seed), ref_model, data["test"], reward, c, 2000 + seed)})
    for method in METHODS:  # the sweep: seed 0 at every rate
        for setting in settings_of(method, c):
            for lr in c["learning_rates"]:
                run(method, setting, lr, 0)
    rates = chosen_rates(points, c)
    for seed in range(1, c["seeds"]):  # the other seeds at each setting's chosen rate
        for (method, setting), lr in rates.items():
            run(method, setting, lr, seed)
    result = save(args.out, points, c, args, t0 + time.process_time(), True, context)
    print(json.dumps(result["test"], indent=1))
    return result


if __name__ == "__main__":
    main()
