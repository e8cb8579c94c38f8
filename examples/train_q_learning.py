#!/usr/bin/env python
"""Soft Q-learning for text: learn upbeat sentences from the agent's own samples plus a few good texts.

The article's value-based route (section 4.2), offline, on the embedded default: a small GPT-2
and BPE tokenizer built from the corpus that ships in the package, a short maximum-likelihood
warm start, then a Q-learning trainer in which the LM logits ARE the Q-values (soft Q-learning,
Guo et al. 2021: V(s) = logsumexp Q(s, .)). Each step it collects episodes with a Boltzmann
policy (softmax(Q), i.e. sampling from the LM), stores them in a replay ring buffer, and makes
TD updates on minibatches that mix the replay with demonstrations: upbeat sentences of the
corpus, split into a prompt (the first words) and a completion (the rest). The reward is the
sentiment score of the REINFORCE example (+1 more positive than negative words, -1 the
reverse, 0 a tie). It prints the greedy reward before and after, exports a SavedModel with a
``q_values`` signature and a TD ``train_step`` to saved_models/, and loads it back.

    python examples/train_q_learning.py            # the default run (a few minutes on 2 CPU cores)
    python examples/train_q_learning.py --quick    # a smoke run (under 90 s)
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
from tf_rl_text import QLearningConfig, QLearningTrainer, TextGenerationEnv, load_corpus, load_prompts  # noqa: E402
from tf_rl_text._compat import keras, tf  # noqa: E402
from tf_rl_text.rewards import default_sentiment_reward  # noqa: E402
from _common import (run_strategy, add_precision_flag, add_run_flags, check_fits, check_model_folder, make_agent,  # noqa: E402
                     non_negative_int, positive_float, positive_int, finish_run, resumed_note, run_callbacks, seed_int, start_run,
                     trainer_run_kwargs, warm_start_on_corpus, write_metrics)

EXAMPLE = "train_q_learning"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Soft Q-learning of a small GPT-2 toward upbeat text from its own samples plus demonstrations "
                    "(offline, embedded default).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="smoke run: fewer warm-start steps and updates (under 90 s)")
    p.add_argument("--steps", type=positive_int("--steps"), default=None, help="trainer steps (each: one batch of episodes + TD updates); "
                   "default 150, --quick 40")
    p.add_argument("--warm-start-steps", type=non_negative_int("--warm-start-steps"), default=None, help="maximum-likelihood steps on the corpus; "
                   "default 600, --quick 250")
    p.add_argument("--target", default="soft", choices=["q_learning", "sarsa", "expected_sarsa", "soft"],
                   help="TD target")
    p.add_argument("--demonstrations", type=non_negative_int("--demonstrations"), default=64,
                   help="upbeat corpus sentences used as demonstrations (0 = learn from own samples only)")
    p.add_argument("--demonstration-fraction", type=float, default=0.75, help="share of each minibatch from demonstrations")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=8, help="prompts per collection step")
    p.add_argument("--minibatch-size", type=positive_int("--minibatch-size"), default=32, help="episodes per TD update")
    p.add_argument("--max-new-tokens", type=positive_int("--max-new-tokens"), default=16, help="tokens generated per completion")
    p.add_argument("--learning-rate", type=positive_float("--learning-rate"), default=1e-3, help="Adam step size of the TD updates")
    p.add_argument("--reward-scale", type=positive_float("--reward-scale"), default=5.0, help="rewards are multiplied by this in the TD target")
    p.add_argument("--target-update-period", type=positive_int("--target-update-period"), default=10, help="updates between target-network copies")
    p.add_argument("--model", default=None, help="a local folder with a pretrained TF causal LM and tokenizer "
                   "(from save_pretrained) instead of the embedded default; skips the warm start unless "
                   "--warm-start-steps is given")
    add_precision_flag(p)
    p.add_argument("--seed", type=seed_int(), default=0, help="random seed (model init, sampling, prompt order)")
    p.add_argument("--output", default=os.path.join(os.path.dirname(HERE), "saved_models", "train_q_learning"),
                   help="folder the SavedModel is exported to")
    p.add_argument("--metrics-file", default=None,
                   help="write a JSON summary (reward_before, reward_after, saved_model, ...) here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_run_flags(p, EXAMPLE)
    args = p.parse_args(argv)
    check_model_folder(p, args.model)
    if args.steps is None:
        args.steps = 40 if args.quick else 150
    if args.warm_start_steps is None:
        args.warm_start_steps = 0 if args.model else (250 if args.quick else 600)
    if not 0.0 <= args.demonstration_fraction <= 1.0:
        p.error(f"--demonstration-fraction must be in [0, 1], got {args.demonstration_fraction}")
    return args


def upbeat_demonstrations(reward_fn, count, prompt_words=3):
    """(prompts, completions) from corpus sentences the reward scores +1: first words / the rest."""
    prompts, completions = [], []
    for sentence in load_corpus():
        words = sentence.split()
        if len(words) <= prompt_words + 1:
            continue
        prompt, rest = " ".join(words[:prompt_words]), " " + " ".join(words[prompt_words:])
        if reward_fn([rest])[0] > 0:
            prompts.append(prompt)
            completions.append(rest)
        if len(prompts) == count:
            break
    return prompts, completions


def sampled_reward(trainer, prompts, seed):
    """Mean reward of 4 sampled (Boltzmann) completions of every prompt, fixed seed."""
    rollout = trainer.env.rollout(trainer.policy, num_samples=4, seed=seed, prompts=prompts)
    return float(np.mean(rollout.rewards))


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    show = not args.no_progress
    start_run(args, os.path.join("runs", EXAMPLE))
    keras.utils.set_random_seed(args.seed)  # Keras initializers draw from Python's random: seed it too
    agent = make_agent(args.model, args.seed, args.precision, run_strategy(args))
    tokenizer = agent.tokenizer
    prompts = load_prompts()
    check_fits(tokenizer, prompts, args.max_new_tokens)  # before any training
    warm_start_on_corpus(agent, args.warm_start_steps, args.seed, show, run_strategy(args))

    # The environment: prompts in, rewarded completions out.
    reward_fn = default_sentiment_reward()
    env = TextGenerationEnv(prompts, tokenizer, reward_fn=reward_fn, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, seed=args.seed)
    config = QLearningConfig(
        target=args.target, learning_rate=args.learning_rate, reward_scale=args.reward_scale,
        exploration="boltzmann", temperature=1.0,  # act by sampling softmax(Q): the LM's own distribution
        batch_size=args.minibatch_size, target_update_period=args.target_update_period,
        demonstration_fraction=args.demonstration_fraction,
    )
    # checkpoints into --run-dir; a rerun resumes when train() starts (after the "before" numbers below)
    trainer = QLearningTrainer(agent, env, config, **trainer_run_kwargs(args), auto_resume=False)
    if args.demonstrations:
        demo_prompts, demo_completions = upbeat_demonstrations(reward_fn, args.demonstrations)
        trainer.add_demonstrations(demo_prompts, demo_completions)  # scored by the env's reward: all +1
        print(f"demonstrations: {len(demo_prompts)} upbeat corpus sentences, e.g. "
              f"{demo_prompts[0]!r} -> {demo_completions[0]!r}")

    samples = prompts[:4]
    reward_before = trainer.evaluate()  # greedy: argmax_a Q(s, a), all prompts
    sampled_before = sampled_reward(trainer, prompts, seed=12345)
    print(f"\nreward before: greedy {reward_before:+.3f}, sampled {sampled_before:+.3f}  "
          f"(mean over {len(prompts)} prompts; range -1..1)")
    for p, c in zip(samples, agent.generate_text(samples, args.max_new_tokens, greedy=True)):
        print(f"  {p} |{c}")

    trainer.train(args.steps, callbacks=run_callbacks(), progress=show)
    if trainer.restored_from:
        print(resumed_note(trainer))

    reward_after = trainer.evaluate()
    sampled_after = sampled_reward(trainer, prompts, seed=12345)
    print(f"\nreward after:  greedy {reward_after:+.3f}, sampled {sampled_after:+.3f}  "
          f"({trainer.num_updates} TD updates, {len(trainer.replay)} episodes in replay)")
    for p, c in zip(samples, agent.generate_text(samples, args.max_new_tokens, greedy=True)):
        print(f"  {p} |{c}")

    path = trainer.export(args.output)
    policy = tf_rl_text.load(path)  # what a user does in another process
    loaded = policy.generate(samples)
    ids, mask = agent.encode_prompts(samples[:1])
    q = policy.module.q_values(tf.constant(ids), tf.constant(mask))["q_values"]  # (1, L, V)
    best = policy.tokenizer.decode([int(tf.argmax(q[0, -1]))])
    print(f"\nexported SavedModel: {path}\nloaded back, greedy completions:")
    for p, c in zip(samples, loaded):
        print(f"  {p} |{c}")
    print(f"loaded q_values for {samples[0]!r}: shape {tuple(q.shape)}, best next token {best!r}")
    metrics = {
        "reward_before": reward_before,
        "reward_after": reward_after,
        "sampled_reward_before": sampled_before,
        "sampled_reward_after": sampled_after,
        "saved_model": os.path.abspath(path),
        "target": args.target,
        "precision": args.precision,
        "steps": args.steps,
        "td_updates": trainer.num_updates,
        "demonstrations": args.demonstrations,
        "warm_start_steps": args.warm_start_steps,
        "wall_time_s": round(time.time() - start, 1),
        "samples_after": loaded,
    }
    write_metrics(metrics, args.metrics_file)
    finish_run(args, metrics)
    print(f"done in {metrics['wall_time_s']} s")
    return metrics


if __name__ == "__main__":
    main()
