#!/usr/bin/env python
"""The DPO paper's controlled sentiment experiment at CPU scale (Rafailov et al. 2023, section 6.1): expected
ground-truth reward against KL(pi || pi_ref) for DPO (a beta sweep), REINFORCE/RLOO and PPO (a KL-coefficient
sweep), preferred-only fine-tuning and best-of-n, each point over seeds.

Setup:
- the policy: the embedded GPT-2, warm-started on review sentences (``$TF_RL_TEXT_DATA/sentiment``), which is
  the reference pi_ref;
- the ground truth: a MiniLM sentiment classifier fine-tuned on the same labelled sentences (P(positive) of
  prompt + completion);
- prompts: the first 2-8 words of review sentences the classifier did not train on;
- preference pairs: per training prompt, the best against the worst of 4 samples of pi_ref by the ground
  truth, as the paper built them.

Each point: ``reward`` (mean ground truth of sampled completions of the held-out prompts), ``kl`` (Monte-Carlo
KL(pi || pi_ref) per completion on those samples), ``ref_ppl`` (pi_ref's perplexity of them). Best-of-n's KL is
the analytic bound log n - (n - 1) / n. Writes ``docs/results/preferences.json`` and a frontier PNG (``tf-rl-text plot docs/results/preferences.json``
redraws it).

    python benchmarks/preferences_frontier.py                  # 3 seeds, the full sweep (an hour or more on 2 cores)
    python benchmarks/preferences_frontier.py --scale long --out docs/results/preferences_long.json \
        --work docs/results/preferences_work                   # 4x the updates (240), same pi_ref and pairs
    python benchmarks/preferences_frontier.py --scale tiny     # a smoke run (tiny models, 1 seed)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

import tf_rl_text  # noqa: E402,F401
from tf_rl_text import (DPOConfig, DPOTrainer, PPOConfig, PPOTrainer, ReinforceConfig, ReinforceTrainer,  # noqa: E402
                        RLAgent, TextGenerationEnv, warm_start)
from tf_rl_text.trainers.mle import fit_pairs  # noqa: E402
from tf_rl_text.defaults import default_model, default_tokenizer  # noqa: E402
from tf_rl_text.preferences import make_preference_pairs  # noqa: E402
from tf_rl_text.workflow.plots import plot_frontier  # noqa: E402
from _common import (cached_weights, resume_records, sample_against_reference, sentiment_classifier,  # noqa: E402
                     write_json_atomic)

SCALES = {
    "full": dict(seeds=3, warm_steps=600, prompts_train=256, prompts_test=128, steps=60, batch=8, new_tokens=16,
                 classifier_train=1600, classifier_epochs=2, dpo_betas=[0.05, 0.1, 0.3, 1.0],
                 kl_coefs=[0.02, 0.05, 0.1, 0.3], best_of=[1, 2, 4, 8, 16], layers=None, width=None),
    "long": dict(seeds=3, warm_steps=600, prompts_train=256, prompts_test=128, steps=240, batch=8, new_tokens=16,
                 classifier_train=1600, classifier_epochs=2, dpo_betas=[0.05, 0.1, 0.3, 1.0],
                 kl_coefs=[0.02, 0.05, 0.1, 0.3], best_of=[1, 2, 4, 8, 16], layers=None, width=None),
    "tiny": dict(seeds=1, warm_steps=20, prompts_train=16, prompts_test=8, steps=2, batch=4, new_tokens=6,
                 classifier_train=64, classifier_epochs=1, dpo_betas=[0.1], kl_coefs=[0.05], best_of=[1, 2],
                 layers=1, width=32),
}


def review_data(data_dir):
    from tf_rl_text.rewards import load_labelled_texts

    texts, labels = load_labelled_texts(os.path.join(data_dir, "sentiment"))
    order = np.random.RandomState(0).permutation(len(texts))
    return [texts[i] for i in order], [labels[i] for i in order]


def prompts_of(texts, rng):
    out = []
    for t in texts:
        words = t.split()
        if len(words) >= 4:
            out.append(" ".join(words[:int(rng.randint(2, min(8, len(words) - 1) + 1))]))
    return out


def ground_truth(texts, labels, c, work):
    """The MiniLM sentiment classifier (trained once, kept under ``work`` so a resumed run scores alike)."""
    from tf_rl_text.rewards import minilm_path, train_reward_model

    return sentiment_classifier(os.path.join(work, "classifier"), lambda folder: train_reward_model(
        minilm_path(), (texts[:c["classifier_train"]], labels[:c["classifier_train"]]), epochs=c["classifier_epochs"],
        batch_size=32, max_length=48, verbose=0, seed=0, output_dir=folder))


def reference_policy(tokenizer, texts, c, work):
    """pi_ref: the embedded GPT-2 warm-started on the classifier's training sentences (kept in ``work`` so a resumed
    run starts from the same weights). Returns (agent_for(seed): a fresh agent at pi_ref's weights, the frozen
    reference model)."""
    size = {} if c["layers"] is None else dict(n_layer=c["layers"], n_embd=c["width"], n_head=2)
    base = RLAgent(default_model(tokenizer, seed=0, **size), tokenizer, seed=0)
    warm = cached_weights(base.model, os.path.join(work, "warm_start.npz"), lambda: warm_start(
        base, texts[:c["classifier_train"]], steps=c["warm_steps"], progress=False))

    def agent_for(seed):
        agent = RLAgent(default_model(tokenizer, seed=0, **size), tokenizer, seed=seed)
        agent.model.set_weights(warm)
        return agent

    return agent_for, base.clone_model()


def save_points(path, points, c, args, t0, complete):
    """Write every point so far (atomically): a run that stops resumes from here."""
    result = {"benchmark": "preferences_frontier", "scale": args.scale, "complete": complete, "points": points,
              "cpu_s": round(t0 + time.process_time(), 1), "settings": c,
              "command": " ".join(["python benchmarks/preferences_frontier.py", *args.argv])}
    write_json_atomic(path, result)
    return result


def measure(agent, ref_model, prompts, reward, c, seed):
    """Mean ground truth, Monte-Carlo KL(pi || pi_ref) and pi_ref's perplexity of one sample per prompt."""
    sample = sample_against_reference(agent, ref_model, prompts, c["new_tokens"], seed)
    return {"reward": float(np.mean(reward(sample["texts"], prompts))), "kl": sample["kl"], "ref_ppl": sample["ref_ppl"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--data-dir", default=os.environ.get("TF_RL_TEXT_DATA"))
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "results", "preferences.json"))
    ap.add_argument("--work", default=None, help="where the classifier and warm start are kept between resumed runs "
                                                 "(default: OUT's name + '_work')")
    ap.add_argument("--fresh", action="store_true", help="ignore the points already in OUT (default: resume)")
    args = ap.parse_args(argv)
    args.argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--fresh"]
    if not args.data_dir:
        ap.error("--data-dir or $TF_RL_TEXT_DATA: the folder holding sentiment/")
    c = SCALES[args.scale]
    work = args.work or os.path.splitext(args.out)[0] + "_work"
    os.makedirs(work, exist_ok=True)
    points, cpu_before = resume_records(args.out, c, "points", "frontier", args.fresh)
    done = {(p["method"], p["setting"], p["seed"]) for p in points}
    t0 = cpu_before - time.process_time()
    texts, labels = review_data(args.data_dir)
    reward = ground_truth(texts, labels, c, work)
    rng = np.random.RandomState(1)
    held = prompts_of(texts[c["classifier_train"]:], rng)  # sentences the classifier did not train on
    train_prompts, test_prompts = held[:c["prompts_train"]], held[c["prompts_train"]:c["prompts_train"] + c["prompts_test"]]
    tokenizer = default_tokenizer()
    agent_for, ref_model = reference_policy(tokenizer, texts, c, work)

    def record(p):
        points.append(p)
        save_points(args.out, points, c, args, t0, complete=False)
        print(f"[frontier] {p['method']} {p['setting']} seed {p['seed']}: reward {p['reward']:.3f}, KL {p['kl']:.2f} "
              f"({len(points)} points, {t0 + time.process_time():.0f} CPU s)", file=sys.stderr, flush=True)

    def add(method, setting, seed, agent, extra=None):
        record(dict(method=method, setting=setting, seed=seed,
                    **measure(agent, ref_model, test_prompts, reward, c, seed), **(extra or {})))

    def todo(method, setting, seed):
        return (method, setting, seed) not in done

    for seed in range(c["seeds"]):
        if todo("reference", None, seed):
            add("reference", None, seed, agent_for(seed))
        if any(todo("dpo", b, seed) for b in c["dpo_betas"]) or todo("preferred_ft", None, seed):
            pairs = make_preference_pairs(agent_for(seed), train_prompts, reward, n=4, max_new_tokens=c["new_tokens"],
                                          seed=seed, batch_size=c["batch"])
        for beta in c["dpo_betas"]:
            if not todo("dpo", beta, seed):
                continue
            agent = agent_for(seed)
            DPOTrainer(agent, pairs, DPOConfig(beta=beta, learning_rate=3e-4, batch_size=c["batch"],
                                               max_new_tokens=c["new_tokens"], seed=seed)).train(
                c["steps"], progress=False)
            add("dpo", beta, seed, agent, {"pairs": len(pairs)})
        if todo("preferred_ft", None, seed):
            agent = agent_for(seed)  # preferred-only fine-tuning: maximum likelihood on the chosen completions
            fit_pairs(agent, pairs.prompts, pairs.chosen, steps=c["steps"], batch_size=c["batch"], learning_rate=3e-4,
                      max_target_tokens=c["new_tokens"], seed=seed, progress=False)
            add("preferred_ft", None, seed, agent)
        for kl in c["kl_coefs"]:
            for name, cls, config in (("rloo", ReinforceTrainer, ReinforceConfig(learning_rate=3e-4, baseline="rloo",
                                                                                num_samples_per_prompt=4, kl_coef=kl)),
                                      ("ppo", PPOTrainer, PPOConfig(learning_rate=3e-4, num_samples_per_prompt=4,
                                                                    kl_coef=kl, adaptive_kl=False))):
                if not todo(name, kl, seed):
                    continue
                agent = agent_for(seed)
                env = TextGenerationEnv(train_prompts, tokenizer, reward, batch_size=c["batch"],
                                        max_new_tokens=c["new_tokens"], seed=seed)
                cls(agent, env, config).train(c["steps"], progress=False)
                add(name, kl, seed, agent)
        for n in c["best_of"]:
            if not todo("best_of_n", n, seed):
                continue
            agent = agent_for(seed)
            best = agent.generate_text(test_prompts, max_new_tokens=c["new_tokens"], best_of=n, reward_fn=reward,
                                       seed=seed)
            record({"method": "best_of_n", "setting": n, "seed": seed,
                    "reward": float(np.mean(reward(best, test_prompts))),
                    "kl": math.log(n) - (n - 1) / n, "ref_ppl": None})
    result = save_points(args.out, points, c, args, t0, complete=True)
    result["plot"] = plot_frontier(points, os.path.splitext(args.out)[0] + "_frontier.png",
                                   title="Reward against KL on the sentiment task")["path"]
    print(json.dumps({k: v for k, v in result.items() if k != "points"}))
    return result


if __name__ == "__main__":
    main()
