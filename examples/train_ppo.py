#!/usr/bin/env python
"""Train a language model with PPO (or A2C) and a value head to write upbeat sentences, then
export it (with a `values` signature) and load it back.

The actor-critic version of examples/train_text_rl.py, offline, on the embedded default: a
small GPT-2 and BPE tokenizer built from the corpus that ships in the package, a short
maximum-likelihood warm start on that corpus, then PPO (GAE, clipped ratio, minibatch epochs,
per-token KL penalty to the warm-started model) or A2C against a sentiment reward (+1 for a
completion with more positive than negative words, -1 for the reverse).

    python examples/train_ppo.py                 # PPO, the default run (a few minutes on 2 CPU cores)
    python examples/train_ppo.py --algo a2c      # A2C instead
    python examples/train_ppo.py --quick         # a smoke run (under 90 s)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing

import tf_rl_text  # noqa: E402  (sets up TensorFlow before transformers)
from tf_rl_text import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer, TextGenerationEnv, load_prompts  # noqa: E402
from tf_rl_text.rewards import default_sentiment_reward  # noqa: E402
from _common import (run_strategy, add_precision_flag, add_run_flags, check_fits, check_model_folder, make_agent,  # noqa: E402
                     mean_reward, non_negative_float, non_negative_int, positive_float, positive_int, finish_run, resumed_note,
                     run_callbacks, seed_int, start_run, trainer_run_kwargs, warm_start_on_corpus, write_metrics)

EXAMPLE = "train_ppo"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="PPO / A2C fine-tuning of a small GPT-2 with a value head toward upbeat text (offline, embedded default).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--algo", default="ppo", choices=["ppo", "a2c"], help="actor-critic algorithm")
    p.add_argument("--quick", action="store_true", help="smoke run: fewer warm-start steps and rollouts (under 90 s)")
    p.add_argument("--episodes", type=positive_int("--episodes"), default=None, help="rollouts (each one batch of episodes); default 100, --quick 25")
    p.add_argument("--warm-start-steps", type=non_negative_int("--warm-start-steps"), default=None, help="maximum-likelihood steps on the corpus; default 600, --quick 200")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=8, help="prompts per rollout")
    p.add_argument("--samples-per-prompt", type=positive_int("--samples-per-prompt"), default=4, help="completions per prompt")
    p.add_argument("--max-new-tokens", type=positive_int("--max-new-tokens"), default=16, help="tokens generated per completion")
    p.add_argument("--learning-rate", type=positive_float("--learning-rate"), default=None, help="Adam step size; default 1e-4 (PPO), 3e-4 (A2C)")
    p.add_argument("--kl-coef", type=non_negative_float("--kl-coef"), default=0.05, help="beta of the per-token KL penalty to the warm-started model")
    p.add_argument("--adaptive-kl", action="store_true", help="adapt beta toward --kl-target (Ziegler et al. 2019)")
    p.add_argument("--kl-target", type=positive_float("--kl-target"), default=6.0, help="target KL per completion (nats) of the adaptive controller")
    p.add_argument("--epochs", type=positive_int("--epochs"), default=4, help="PPO: passes over each rollout")
    p.add_argument("--minibatches", type=positive_int("--minibatches"), default=4, help="PPO: minibatches per epoch")
    p.add_argument("--model", default=None, help="a local folder with a pretrained TF causal LM and tokenizer "
                   "(from save_pretrained) instead of the embedded default; skips the warm start unless --warm-start-steps is given")
    add_precision_flag(p)
    p.add_argument("--seed", type=seed_int(), default=0, help="random seed (model init, sampling, prompt order)")
    p.add_argument("--output", default=None, help="folder the SavedModel is exported to (default saved_models/train_<algo>)")
    p.add_argument("--metrics-file", default=None, help="write a JSON summary (reward_before, reward_after, kl_after, saved_model, ...) here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_run_flags(p, EXAMPLE)
    args = p.parse_args(argv)
    check_model_folder(p, args.model)
    if args.episodes is None:
        args.episodes = 25 if args.quick else 100
    if args.warm_start_steps is None:
        args.warm_start_steps = 0 if args.model else (200 if args.quick else 600)
    if args.learning_rate is None:
        args.learning_rate = 1e-4 if args.algo == "ppo" else 3e-4
    if args.output is None:
        args.output = os.path.join(os.path.dirname(HERE), "saved_models", f"train_{args.algo}")
    if args.minibatches > args.batch_size * args.samples_per_prompt:
        p.error(f"--minibatches {args.minibatches} exceeds the {args.batch_size * args.samples_per_prompt} completions "
                "of a rollout (--batch-size x --samples-per-prompt)")
    return args


def _mean_or_none(values):
    """Mean over the finite values; None when there are none (explained variance is NaN when every
    return in a rollout is equal): JSON has no NaN."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _show(value):
    return "n/a" if value is None else f"{value:.3f}"


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    show = not args.no_progress
    start_run(args, os.path.join("runs", EXAMPLE))
    agent = make_agent(args.model, args.seed, args.precision, run_strategy(args))
    tokenizer = agent.tokenizer
    prompts = load_prompts()
    check_fits(tokenizer, prompts, args.max_new_tokens)  # before any training
    warm_start_on_corpus(agent, args.warm_start_steps, args.seed, show, run_strategy(args))

    # The environment: prompts in, rewarded completions out. The actor is the LM, the critic a
    # value head on its last hidden states (the trainer attaches a fresh one).
    env = TextGenerationEnv(prompts, tokenizer, reward_fn=default_sentiment_reward(), batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, seed=args.seed)
    common = dict(learning_rate=args.learning_rate, num_samples_per_prompt=args.samples_per_prompt,
                  kl_coef=args.kl_coef, adaptive_kl=args.adaptive_kl, kl_target=args.kl_target)
    samples = prompts[:4]
    reward_before = mean_reward(None, prompts, seed=12345, env=env, agent=agent)  # before a resume loads weights
    print(f"\nreward before {args.algo.upper()}: {reward_before:+.3f}  (mean over {len(prompts)} prompts x 4 samples; range -1..1)")
    for p, c in zip(samples, agent.generate_text(samples, args.max_new_tokens, seed=1)):
        print(f"  {p} |{c}")

    # One rollout per iteration, then the algorithm's updates (PPO: epochs x minibatches; A2C: one),
    # until the run has made args.episodes rollouts, checkpointing into --run-dir.
    run = trainer_run_kwargs(args)
    if args.algo == "ppo":
        trainer = PPOTrainer(agent, env, PPOConfig(num_epochs=args.epochs, num_minibatches=args.minibatches, **common),
                             **run)
    else:
        trainer = A2CTrainer(agent, env, A2CConfig(**common), **run)
    if trainer.restored_from:
        print(resumed_note(trainer))
    trainer.train(args.episodes, callbacks=run_callbacks(), progress=show)
    last = trainer.history[-10:]
    kl_after = float(np.mean([h["kl"] for h in last]))
    print("\nlast 10 rollouts: " + ", ".join(
        f"{k} {_show(_mean_or_none([h[k] for h in last]))}"
        for k in ("reward_mean", "kl", "kl_coef", "entropy", "value_loss", "clip_fraction", "explained_variance")))

    # Test the model.
    reward_after = mean_reward(trainer, prompts, seed=12345)
    print(f"reward after {args.algo.upper()}:  {reward_after:+.3f}  (KL to the warm-started model {kl_after:.2f} nats per completion)")
    for p, c in zip(samples, agent.generate_text(samples, args.max_new_tokens, seed=1)):
        print(f"  {p} |{c}")

    path = trainer.export(args.output)
    policy = tf_rl_text.load(path)  # what a user does in another process
    loaded = policy.generate(samples)
    ids, mask = agent.encode_prompts(samples)
    values = policy.module.values(input_ids=ids, attention_mask=mask)["values"].numpy()
    print(f"\nexported SavedModel: {path}\nloaded back, greedy completions and V(prompt):")
    for p, c, v in zip(samples, loaded, values[:, -1]):
        print(f"  V={v:+.2f}  {p} |{c}")
    metrics = {
        "algo": args.algo,
        "precision": args.precision,
        "reward_before": reward_before,
        "reward_after": reward_after,
        "kl_after": kl_after,
        "saved_model": os.path.abspath(path),
        "episodes": args.episodes,
        "warm_start_steps": args.warm_start_steps,
        "explained_variance_after": _mean_or_none([h["explained_variance"] for h in last]),  # None: undefined
        "kl_coef_after": trainer.kl_coef,
        "wall_time_s": round(time.time() - start, 1),
        "samples_after": loaded,
    }
    write_metrics(metrics, args.metrics_file)
    finish_run(args, metrics)
    print(f"done in {metrics['wall_time_s']} s")
    return metrics


if __name__ == "__main__":
    main()
