#!/usr/bin/env python
"""Train a language model with REINFORCE to write upbeat sentences, then export and reload it.

This is the article's example, end to end and offline:

    env = TextGenerationEnv(prompts, tokenizer, reward_fn)
    agent = RLAgent(model, tokenizer)
    for episode in range(num_episodes):
        ... one batch of episodes, one policy-gradient update ...
    # test the model

With no arguments it runs configs/train_text_rl.yaml, the same run as `tf-rl-text train
configs/train_text_rl.yaml` (tf_rl_text.workflow): a small GPT-2 and BPE tokenizer built from the
corpus that ships in the package, a short maximum-likelihood warm start on that corpus, then
REINFORCE (leave-one-out baseline, KL leash to the warm-started model) against a sentiment reward
(+1 for a completion with more positive than negative words, -1 for the reverse). Every flag is a
field of that config. The policy is exported as a SavedModel under saved_models/ and loaded back.
In the metrics file, reward_before/reward_after are the mean reward of 4 sampled completions per
prompt (fixed seed); greedy_reward_* the greedy one.

    python examples/train_text_rl.py            # the default run (a few minutes on 2 CPU cores)
    python examples/train_text_rl.py --quick    # a smoke run (about 20 s on 2 idle CPU cores)
"""
import os

from tf_rl_text.scripts import RL_SCRIPT_FLAGS, run_script, script_args

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "train_text_rl.yaml")
FLAGS = {
    **RL_SCRIPT_FLAGS,
    "--baseline": "trainer.baseline",
    "--model": "model.path",
}


def parse_args(argv=None):
    """(cfg, args): the config with the flags applied as --set, and the script's own flags."""
    return script_args(CONFIG, FLAGS, argv, __doc__.split("\n\n")[0], skip_warm_start_with_model=True)


def main(argv=None):
    cfg, args = parse_args(argv)
    return run_script(cfg, args, lambda s: {
        "reward_before": s.get("sampled_reward_before"), "reward_after": s["sampled_reward_after"],
        "greedy_reward_before": s.get("reward_before"), "greedy_reward_after": s["reward_after"],
        "kl_after": s["train_kl_last10"], "saved_model": s["export"], "episodes": cfg.run.steps,
        "warm_start_steps": cfg.run.warm_start_steps, "baseline": cfg.trainer.baseline,
        "precision": cfg.model.precision, "samples_after": [x["completion"] for x in s["samples"]]})


if __name__ == "__main__":
    main()
