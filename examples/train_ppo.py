#!/usr/bin/env python
"""Train a language model with PPO (or A2C) and a value head to write upbeat sentences, then
export it (with a `values` signature) and load it back.

The actor-critic version of examples/train_text_rl.py: it runs configs/train_ppo.yaml, the same run
as `tf-rl-text train configs/train_ppo.yaml` (every flag is a field of it), offline, on the
embedded default: a small GPT-2 and BPE tokenizer built from the corpus that ships in the
package, a short maximum-likelihood warm start on that corpus, then PPO (GAE, clipped ratio,
minibatch epochs, per-token KL penalty to the warm-started model) or A2C against a sentiment
reward (+1 for a completion with more positive than negative words, -1 for the reverse).
reward_before/reward_after in the metrics file: the mean reward of 4 sampled completions per prompt.

    python examples/train_ppo.py                 # PPO, the default run (a few minutes on 2 CPU cores)
    python examples/train_ppo.py --algo a2c      # A2C instead (learning rate 3e-4 unless given)
    python examples/train_ppo.py --quick         # a smoke run (under 90 s)
"""
import dataclasses
import os

import tf_rl_text
from tf_rl_text.scripts import RL_SCRIPT_FLAGS, run_script, script_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = {
    "--algo": "algorithm",
    **RL_SCRIPT_FLAGS,
    "--adaptive-kl": "trainer.adaptive_kl",
    "--kl-target": "trainer.kl_target",
    "--epochs": "trainer.num_epochs",
    "--minibatches": "trainer.num_minibatches",
    "--model": "model.path",
}


def values_of(summary):
    """V(prompt) of the samples' prompts from the loaded export's `values` signature."""
    policy = tf_rl_text.load(summary["export"])
    ids, mask = policy._encode([x["prompt"] for x in summary["samples"]])
    return policy.module.values(input_ids=ids, attention_mask=mask)["values"].numpy()[:, -1].tolist()


def main(argv=None):
    cfg, args = script_args(os.path.join(ROOT, "configs", "train_ppo.yaml"), FLAGS, argv, __doc__.split("\n\n")[0],
                            skip_warm_start_with_model=True)
    if cfg.algorithm == "a2c":
        if args.learning_rate is None:  # A2C's single update per rollout takes a larger step
            cfg.trainer = dataclasses.replace(cfg.trainer, learning_rate=3e-4)
        if args.output == os.path.join(ROOT, "saved_models", "train_ppo"):
            args.output = os.path.join(ROOT, "saved_models", "train_a2c")

    def metrics(s):
        values = values_of(s) if os.path.isdir(s["export"]) else None  # a non-chief worker has no export
        for x, v in zip(s["samples"], values or []):
            print(f"  V={v:+.2f}  {x['prompt']} |{x['completion']}")
        return {"algo": cfg.algorithm, "precision": cfg.model.precision, "reward_before": s.get("sampled_reward_before"),
                "reward_after": s["sampled_reward_after"], "kl_after": s["train_kl_last10"], "saved_model": s["export"],
                "episodes": cfg.run.steps, "warm_start_steps": cfg.run.warm_start_steps, "values_after": values,
                "explained_variance_after": s["train_last10"].get("explained_variance"),
                "kl_coef_after": s["train_last"].get("kl_coef"),
                "samples_after": [x["completion"] for x in s["samples"]]}
    return run_script(cfg, args, metrics)


if __name__ == "__main__":
    main()
