#!/usr/bin/env python
"""GRPO's reward per CPU second for ``num_iterations`` (mu) 1, 2 and 4 on the quick task
(``configs/grpo.yaml --quick``: the embedded GPT-2, warm-started on the embedded corpus, the
sentiment reward on the embedded prompts).

One warm start (the config's, seed 0) is shared by every run. Each run: a fresh GRPOTrainer from
those weights with the config's settings and ``num_iterations=mu``, trained until ``--cpu-s`` process
CPU seconds of training (``time.process_time()`` around ``trainer.step()`` only); every ``--eval-every``
steps the greedy reward on the 64 held-out prompts is measured (outside the budget). Seeds vary the
sampling and the prompt order. Prints progress on stderr and one JSON line: per mu, the held-out
greedy reward at each CPU mark (mean over seeds, with each seed's), steps, updates and the final
training reward.

    python benchmarks/grpo_iterations.py                      # mu 1, 2, 4; 3 seeds; 12 CPU s each
    python benchmarks/grpo_iterations.py --cpu-s 10 --seeds 1 # quick look
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

from tf_rl_text import configfile, workflow  # noqa: E402
from tf_rl_text.trainers.grpo import GRPOConfig, GRPOTrainer  # noqa: E402


def run(cfg, built, warm_weights, mu, seed, cpu_budget, eval_every, marks):
    import dataclasses

    from tf_rl_text import RLAgent, TextGenerationEnv

    agent = built.agent
    agent.model.set_weights(warm_weights)
    agent = RLAgent(agent.model, agent.tokenizer, seed=seed)
    env = TextGenerationEnv(built.train.prompts, agent.tokenizer, built.reward, batch_size=cfg.run.batch_size,
                            max_new_tokens=cfg.run.max_new_tokens, seed=seed)
    config = GRPOConfig(**{**dataclasses.asdict(cfg.trainer), "num_iterations": mu})
    trainer = GRPOTrainer(agent, env, config)
    test = list(built.test.prompts)

    def held_out():
        return trainer.evaluate(prompts=test, references=None)

    curve = [{"cpu_s": 0.0, "steps": 0, "reward": held_out()}]
    cpu = 0.0
    while cpu < cpu_budget:
        t0 = time.process_time()
        stats = trainer.step()
        cpu += time.process_time() - t0
        if trainer.global_step % eval_every == 0 or cpu >= cpu_budget:
            curve.append({"cpu_s": round(cpu, 2), "steps": trainer.global_step, "reward": held_out(),
                          "train_reward": stats["reward"], "kl": stats.get("kl")})
    at = {}
    for m in marks[:-1]:  # the last evaluation at or before each CPU mark; the budget's: the final one
        at[str(m)] = [p for p in curve if p["cpu_s"] <= m + 1e-9][-1]["reward"]
    at[str(marks[-1])] = curve[-1]["reward"]
    print(f"[grpo_iterations] mu={mu} seed={seed}: {trainer.global_step} steps, {trainer.num_updates} updates, "
          f"held-out reward {curve[0]['reward']:+.3f} -> {curve[-1]['reward']:+.3f} in {cpu:.1f} CPU s",
          file=sys.stderr, flush=True)
    return {"curve": curve, "at_cpu_s": at, "steps": trainer.global_step, "updates": trainer.num_updates,
            "final_reward": curve[-1]["reward"], "train_reward_last10": float(np.mean(
                [h["reward"] for h in trainer.history[-10:]]))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", default="1,2,4", help="num_iterations values (default 1,2,4)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per value (default 3)")
    ap.add_argument("--cpu-s", type=float, default=12.0, help="training CPU seconds per run (default 12: the quick task saturates soon after)")
    ap.add_argument("--eval-every", type=int, default=2, help="steps between held-out evaluations (default 2)")
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "grpo.yaml"))
    args = ap.parse_args(argv)
    cfg = configfile.load_config(args.config, quick=True)
    t0 = time.process_time()
    built = workflow.build(cfg, progress=False, log=lambda m: print(f"[grpo_iterations] {m}", file=sys.stderr))
    warm_cpu = time.process_time() - t0
    warm = built.agent.model.get_weights()
    marks = [round(args.cpu_s * f / 8, 2) for f in range(1, 9)]  # eighths of the budget
    result = {"benchmark": "grpo_iterations", "config": os.path.relpath(args.config, REPO) + " --quick",
              "cpu_budget_s": args.cpu_s, "seeds": args.seeds, "warm_start_cpu_s": round(warm_cpu, 1),
              "marks_cpu_s": marks, "by_iterations": {}}
    for mu in [int(x) for x in args.iterations.split(",")]:
        runs = [run(cfg, built, warm, mu, seed, args.cpu_s, args.eval_every, marks) for seed in range(args.seeds)]
        result["by_iterations"][str(mu)] = {
            "held_out_reward_at_cpu_s": {str(m): round(float(np.mean([r["at_cpu_s"][str(m)] for r in runs])), 4)
                                         for m in marks},
            "per_seed_final": [round(r["final_reward"], 4) for r in runs],
            "steps": [r["steps"] for r in runs], "updates": [r["updates"] for r in runs],
            "train_reward_last10": round(float(np.mean([r["train_reward_last10"] for r in runs])), 4),
            "start_reward": round(runs[0]["curve"][0]["reward"], 4),
            "curves": [r["curve"] for r in runs],
        }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
