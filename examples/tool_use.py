#!/usr/bin/env python
"""Tool use with a verifiable reward: a small model learns to call a calculator, then GRPO raises its accuracy.

Each task is an addition (``"432+197"``). The other side is a calculator tool (``calc``): a turn that is
exactly ``calc(ARGUMENTS)`` gets the result back as a tool message, any other turn is the answer, and the
reward is 1 for the exact sum, else 0 (``tf_rl_text.tools.ToolUse``). The steps:

1. a tiny GPT-2 (byte-level tokenizer of the embedded corpus) is warm-started by maximum likelihood on
   ``demos`` demonstrations of the call format (``calc(a+b)``, then the result copied as the answer);
2. GRPO (``num_generations`` conversations per task, up to 3 policy turns each) trains on the training
   additions against the exact-match reward;
3. greedy accuracy before and after on held-out additions of the same range, on larger numbers (operands of
   4 digits, never seen), each with the tool and with the tool disabled (the calculator answers
   ``error: ...``), and the share of episodes whose call got the right result.

Settings come from examples/tool_use.yaml (its ``quick:`` section with --quick). Results: one JSON object
(``--out``), every seed's numbers and their mean.

    python examples/tool_use.py --quick                          # 1 seed, a smoke run (about a minute)
    python examples/tool_use.py --out docs/results/tool_use.json # 3 seeds (docs/conversations.md has them)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tf_rl_text import GRPOConfig, GRPOTrainer, RLAgent, default_model, default_tokenizer  # noqa: E402
from tf_rl_text.conversation import ConversationEnv, render_plain  # noqa: E402
from tf_rl_text.tools import ToolUse  # noqa: E402
from tf_rl_text.scripts import example_settings, write_json  # noqa: E402
from tf_rl_text.trainers.mle import fit_pairs  # noqa: E402

CONFIG = os.path.join(ROOT, "examples", "tool_use.yaml")


def calc(arguments: str):
    """The calculator: integers and + - * ( ) only."""
    if not arguments.strip() or set(arguments) - set("0123456789+-*() "):
        raise ValueError(f"not an arithmetic expression: {arguments!r}")
    return eval(arguments, {"__builtins__": {}})  # noqa: S307 - digits and operators only (checked above)


def calculator_off(arguments: str):
    raise RuntimeError("the calculator is off")


calculator_off.__name__ = "calc"


def additions(n, low, high, seed, exclude=()):
    rng, out, seen = random.Random(seed), [], set(exclude)
    while len(out) < n:
        a, b = rng.randint(low, high), rng.randint(low, high)
        if (a, b) not in seen:
            seen.add((a, b))
            out.append({"question": f"{a}+{b}", "answer": a + b, "pair": (a, b)})
    return out


def exact(answer, task):
    return float(answer.strip() == str(task["answer"]))


def demonstrations(tasks):
    """(context, target) pairs of the call format: the opening -> the call; the call's result -> the answer."""
    prompts, targets = [], []
    for task in tasks:
        opening = [{"role": "user", "content": task["question"]}]
        call = f" calc({task['question']})"
        prompts += [render_plain(opening), render_plain(opening + [{"role": "assistant", "content": call},
                                                                   {"role": "tool", "content": str(task["answer"])}])]
        targets += [call, f" {task['answer']}"]
    return prompts, targets


def accuracy(agent, tokenizer, tasks, tool, cfg) -> dict:
    env = ConversationEnv(tasks, tokenizer, ToolUse([tool], answer_reward=exact), max_turns=cfg["max_turns"],
                          max_new_tokens=cfg["turn_tokens"], batch_size=len(tasks), shuffle=False)
    rollout = env.rollout(agent, greedy=True, prompts=tasks)
    called = [any(m["role"] == "tool" and m["content"] == str(t["answer"]) for m in tr)
              for tr, t in zip(rollout.transcripts, tasks)]
    return {"accuracy": float(np.mean(rollout.episode_returns)), "correct_call": float(np.mean(called)),
            "example": rollout.transcripts[0]}


def evaluate(agent, tokenizer, sets, cfg) -> dict:
    out = {}
    for name, tasks in sets.items():
        with_tool = accuracy(agent, tokenizer, tasks, calc, cfg)
        out[name] = {"accuracy": with_tool["accuracy"], "correct_call": with_tool["correct_call"],
                     "accuracy_tool_disabled": accuracy(agent, tokenizer, tasks, calculator_off, cfg)["accuracy"],
                     "example": with_tool["example"]}
    return out


def run_seed(seed, cfg, log=print) -> dict:
    tokenizer = default_tokenizer()
    train = additions(cfg["train_tasks"], 0, cfg["max_operand"], seed)
    demos = train[: cfg["demos"]]
    sets = {"held_out": additions(cfg["eval_tasks"], 0, cfg["max_operand"], 1000 + seed, [t["pair"] for t in train]),
            "larger_numbers": additions(cfg["eval_tasks"], 1000, 9999, 2000 + seed)}
    agent = RLAgent(default_model(tokenizer, n_layer=cfg["layers"], n_embd=cfg["width"], n_head=cfg["heads"],
                                  n_positions=cfg["positions"], seed=seed), tokenizer, seed=seed)
    t0 = time.time()
    losses = fit_pairs(agent, *demonstrations(demos), steps=cfg["warm_steps"], batch_size=32,
                       learning_rate=cfg["warm_lr"], seed=seed, progress=False)
    warm_s = time.time() - t0
    before = evaluate(agent, tokenizer, sets, cfg)
    log(f"seed {seed}: warm start on {len(demos)} demonstrations, NLL {losses[0]:.2f} -> {np.mean(losses[-10:]):.3f} "
        f"({warm_s:.0f} s); held-out accuracy {before['held_out']['accuracy']:.2f}")
    env = ConversationEnv(train, tokenizer, ToolUse([calc], answer_reward=exact), max_turns=cfg["max_turns"],
                          max_new_tokens=cfg["turn_tokens"], batch_size=cfg["batch_size"], seed=seed)
    trainer = GRPOTrainer(agent, env, GRPOConfig(num_generations=cfg["num_generations"], learning_rate=cfg["rl_lr"],
                                                 seed=seed))
    t0 = time.time()
    history = trainer.train(cfg["rl_steps"], progress=False)
    rl_s = time.time() - t0
    after = evaluate(agent, tokenizer, sets, cfg)
    log(f"seed {seed}: GRPO {cfg['rl_steps']} steps ({rl_s:.0f} s), train return "
        f"{history[0]['reward_mean']:.2f} -> {np.mean([h['reward_mean'] for h in history[-5:]]):.2f}; held-out "
        f"accuracy {before['held_out']['accuracy']:.2f} -> {after['held_out']['accuracy']:.2f}")
    return {"seed": seed, "before": before, "after": after, "warm_start_nll": [float(losses[0]), float(losses[-1])],
            "train_return": [h["reward_mean"] for h in history], "warm_seconds": warm_s, "rl_seconds": rl_s,
            "faults": {k: float(sum(h.get(k, 0.0) for h in history)) for k in history[-1] if k.startswith("faults/")}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the config's quick section: a smoke run")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default: the config's)")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    cfg = example_settings(CONFIG, args.quick)
    seeds = range(args.seeds if args.seeds is not None else cfg["seeds"])
    runs = [run_seed(s, cfg) for s in seeds]
    summary = {}
    for when in ("before", "after"):
        for name in runs[0][when]:
            for key in ("accuracy", "correct_call", "accuracy_tool_disabled"):
                summary[f"{name}/{key}_{when}"] = float(np.mean([r[when][name][key] for r in runs]))
    result = {"command": "python examples/tool_use.py" + (" --quick" if args.quick else ""), "settings": cfg,
              "seeds": len(runs), "mean": summary, "runs": runs}
    print(json.dumps(summary, indent=1))
    if args.out:
        write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
