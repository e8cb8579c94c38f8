#!/usr/bin/env python
"""Train a language model with REINFORCE to write upbeat sentences, then export and reload it.

This is the article's example, end to end and offline:

    env = TextGenerationEnv(prompts, tokenizer, reward_fn)
    agent = RLAgent(model, tokenizer)
    for episode in range(num_episodes):
        ... one batch of episodes, one policy-gradient update ...
    # test the model

With no arguments it uses the embedded default: a small GPT-2 and BPE tokenizer built from the
corpus that ships in the package, a short maximum-likelihood warm start on that corpus, then
REINFORCE (leave-one-out baseline, KL leash to the warm-started model) against a sentiment
reward (+1 for a completion with more positive than negative words, -1 for the reverse). The
policy is exported as a SavedModel under saved_models/ and loaded back for generation.

    python examples/train_text_rl.py            # the default run (a few minutes on 2 CPU cores)
    python examples/train_text_rl.py --quick    # a smoke run (about 20 s on 2 idle CPU cores)
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
from tf_rl_text import ReinforceConfig, ReinforceTrainer, TextGenerationEnv, load_prompts  # noqa: E402
from tf_rl_text.rewards import default_sentiment_reward  # noqa: E402
from _common import (run_strategy, weights_fingerprint, add_precision_flag, add_run_flags, check_fits, check_model_folder, make_agent,  # noqa: E402
                     mean_reward, non_negative_float, non_negative_int, positive_float, positive_int, finish_run, resumed_note,
                     run_callbacks, seed_int, start_run, trainer_run_kwargs, warm_start_on_corpus, write_metrics)

EXAMPLE = "train_text_rl"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="REINFORCE fine-tuning of a small GPT-2 toward upbeat text (offline, embedded default).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="smoke run: fewer warm-start steps and episodes (about 20 s on 2 idle CPU cores)")
    p.add_argument("--episodes", type=positive_int("--episodes"), default=None, help="RL updates (each one batch of episodes); default 150, --quick 40")
    p.add_argument("--warm-start-steps", type=non_negative_int("--warm-start-steps"), default=None, help="maximum-likelihood steps on the corpus; default 600, --quick 250")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=8, help="prompts per RL batch")
    p.add_argument("--samples-per-prompt", type=positive_int("--samples-per-prompt"), default=4, help="completions per prompt (leave-one-out baseline)")
    p.add_argument("--max-new-tokens", type=positive_int("--max-new-tokens"), default=16, help="tokens generated per completion")
    p.add_argument("--learning-rate", type=positive_float("--learning-rate"), default=3e-4, help="Adam step size of the RL updates")
    p.add_argument("--kl-coef", type=non_negative_float("--kl-coef"), default=0.05, help="weight of the per-token KL penalty to the warm-started model")
    p.add_argument("--baseline", default="rloo", choices=["none", "moving_average", "self_critical", "rloo", "grpo"],
                   help="REINFORCE baseline")
    p.add_argument("--model", default=None, help="a local folder with a pretrained TF causal LM and tokenizer "
                   "(from save_pretrained) instead of the embedded default; skips the warm start unless --warm-start-steps is given")
    add_precision_flag(p)
    p.add_argument("--seed", type=seed_int(), default=0, help="random seed (model init, sampling, prompt order)")
    p.add_argument("--output", default=os.path.join(os.path.dirname(HERE), "saved_models", "train_text_rl"),
                   help="folder the SavedModel is exported to")
    p.add_argument("--metrics-file", default=None, help="write a JSON summary (reward_before, reward_after, saved_model, ...) here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_run_flags(p, EXAMPLE)
    args = p.parse_args(argv)
    check_model_folder(p, args.model)
    if args.episodes is None:
        args.episodes = 40 if args.quick else 150
    if args.warm_start_steps is None:
        args.warm_start_steps = 0 if args.model else (250 if args.quick else 600)
    if args.baseline in ("rloo", "grpo") and args.samples_per_prompt < 2:
        p.error(f"--baseline {args.baseline} needs --samples-per-prompt >= 2, got {args.samples_per_prompt}")
    return args


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

    # The environment: prompts in, rewarded completions out.
    env = TextGenerationEnv(prompts, tokenizer, reward_fn=default_sentiment_reward(), batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, seed=args.seed)
    config = ReinforceConfig(learning_rate=args.learning_rate, baseline=args.baseline,
                             num_samples_per_prompt=args.samples_per_prompt, kl_coef=args.kl_coef)

    samples = prompts[:4]
    reward_before = mean_reward(None, prompts, seed=12345, env=env, agent=agent)  # before a resume loads weights
    print(f"\nreward before RL: {reward_before:+.3f}  (mean over {len(prompts)} prompts x 4 samples; range -1..1)")
    for p, c in zip(samples, agent.generate_text(samples, args.max_new_tokens, seed=1)):
        print(f"  {p} |{c}")

    # The article's loop: one batch of episodes and one update per iteration (trainer.train runs
    # trainer.step() until the run has made args.episodes updates, checkpointing into --run-dir).
    trainer = ReinforceTrainer(agent, env, config, **trainer_run_kwargs(args))
    if trainer.restored_from:
        print(resumed_note(trainer))
    trainer.train(args.episodes, callbacks=run_callbacks(), progress=show)
    kl_after = float(np.mean([h["kl"] for h in trainer.history[-10:]]))

    # Test the model.
    reward_after = mean_reward(trainer, prompts, seed=12345)
    print(f"\nreward after RL:  {reward_after:+.3f}  (KL to the warm-started model {kl_after:.2f} nats per completion)")
    for p, c in zip(samples, agent.generate_text(samples, args.max_new_tokens, seed=1)):
        print(f"  {p} |{c}")

    path = trainer.export(args.output)
    print(f"weights sha256: {weights_fingerprint(agent.model)}")  # the same on every worker of a distributed run
    if not trainer.is_chief:  # a non-chief worker wrote no export: the chief's is the run's
        print(f"non-chief worker: the chief exported the SavedModel to {path}")
        return {}
    policy = tf_rl_text.load(path)  # what a user does in another process
    loaded = policy.generate(samples)
    print(f"\nexported SavedModel: {path}\nloaded back, greedy completions:")
    for p, c in zip(samples, loaded):
        print(f"  {p} |{c}")
    metrics = {
        "reward_before": reward_before,
        "reward_after": reward_after,
        "kl_after": kl_after,
        "saved_model": os.path.abspath(path),
        "episodes": args.episodes,
        "warm_start_steps": args.warm_start_steps,
        "baseline": args.baseline,
        "precision": args.precision,
        "run_dir": os.path.abspath(args.run_dir),
        "wall_time_s": round(time.time() - start, 1),
        "samples_after": loaded,
    }
    write_metrics(metrics, args.metrics_file)
    finish_run(args, metrics)
    print(f"done in {metrics['wall_time_s']} s")
    return metrics


if __name__ == "__main__":
    main()
