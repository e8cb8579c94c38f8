#!/usr/bin/env python
"""Soft Q-learning for text: learn upbeat sentences from the agent's own samples plus a few good texts.

The article's value-based route (section 4.2), offline: it runs configs/train_q_learning.yaml, the
same run as `tf-rl-text train configs/train_q_learning.yaml` (every flag is a field of it). A small
GPT-2 and BPE tokenizer built from the corpus that ships in the package, a short maximum-likelihood
warm start, then a Q-learning trainer in which the LM logits ARE the Q-values (soft Q-learning,
Guo et al. 2021: V(s) = logsumexp Q(s, .)). Each step it collects episodes with a Boltzmann
policy (softmax(Q), i.e. sampling from the LM), stores them in a replay ring buffer, and makes
TD updates on minibatches that mix the replay with demonstrations: upbeat sentences of the
corpus, split into a prompt (the first words) and a completion (the rest)
(tf_rl_text.workflow.upbeat_demonstrations). The reward is the sentiment score of the REINFORCE
example (+1 more positive than negative words, -1 the reverse, 0 a tie). It prints the greedy and
sampled reward before and after, exports a SavedModel with a ``q_values`` signature and a TD
``train_step`` to saved_models/, and loads it back.

    python examples/train_q_learning.py            # the default run (a few minutes on 2 CPU cores)
    python examples/train_q_learning.py --quick    # a smoke run (under 90 s)
"""
import os

import tf_rl_text
from tf_rl_text._compat import tf
from tf_rl_text.scripts import run_script, script_args

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "train_q_learning.yaml")
FLAGS = {
    "--steps": "run.steps",
    "--warm-start-steps": "run.warm_start_steps",
    "--target": "trainer.target",
    "--demonstrations": "run.demonstrations",
    "--demonstration-fraction": "trainer.demonstration_fraction",
    "--batch-size": "run.batch_size",
    "--minibatch-size": "trainer.batch_size",
    "--max-new-tokens": "run.max_new_tokens",
    "--learning-rate": "trainer.learning_rate",
    "--reward-scale": "trainer.reward_scale",
    "--target-update-period": "trainer.target_update_period",
    "--model": "model.path",
}


def best_next_token(summary):
    """The loaded export's q_values for the first sample's prompt: (shape, the argmax next token)."""
    policy = tf_rl_text.load(summary["export"])
    ids, mask = policy._encode([summary["samples"][0]["prompt"]])
    q = policy.module.q_values(tf.constant(ids), tf.constant(mask))["q_values"]  # (1, L, V)
    return tuple(q.shape), policy.tokenizer.decode([int(tf.argmax(q[0, -1]))])


def main(argv=None):
    cfg, args = script_args(CONFIG, FLAGS, argv, __doc__.split("\n\n")[0], skip_warm_start_with_model=True)

    def metrics(s):
        if os.path.isdir(s["export"]):  # a non-chief worker has no export
            shape, best = best_next_token(s)
            print(f"loaded q_values for {s['samples'][0]['prompt']!r}: shape {shape}, best next token {best!r}")
        return {"saved_model": s["export"], "target": cfg.trainer.target, "precision": cfg.model.precision,
                "steps": cfg.run.steps, "td_updates": s["train_last"].get("update"),
                "demonstrations": cfg.run.demonstrations, "warm_start_steps": cfg.run.warm_start_steps,
                "samples_after": [x["completion"] for x in s["samples"]]}
    return run_script(cfg, args, metrics)


if __name__ == "__main__":
    main()
