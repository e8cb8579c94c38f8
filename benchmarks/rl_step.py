#!/usr/bin/env python
"""Time one RL step of the shared workload (../shared/bench/rl_step) with our REINFORCE/RLOO
trainer: 16 prompts x 4 sampled completions of exactly 24 tokens, reward = share of the target
word, leave-one-out baseline, KL 0.05 to a frozen reference, Adam 1e-4, one update per batch.

Prints progress on stderr and one JSON line (the figures) as the last line of stdout.

    python benchmarks/rl_step.py                       # the workload as shipped
    python benchmarks/rl_step.py --steps 500           # memory check: RSS after 50 vs after 500 steps
    python benchmarks/rl_step.py --precision mixed_bfloat16   # bfloat16 math, float32 weights
    python benchmarks/rl_step.py --model keras_hub     # the same GPT-2 (same weights) as a KerasHub GPT2CausalLM
"""
from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from _common import (PRECISIONS, SCORING_PASSES, add_run_flags, build_model, load_run, peak_rss_mb,  # noqa: E402
                     step_gflop, time_steps)

import numpy as np  # noqa: E402

from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv  # noqa: E402
from tf_rl_text.cpu import use_cores  # noqa: E402
from tf_rl_text._compat import tf  # noqa: E402


class ExactLengthAgent(RLAgent):
    """The workload samples exactly ``completion_tokens`` tokens: EOS is never chosen (a hook)."""

    def process_logits(self, logits):
        return logits + tf.one_hot(self.eos_token_id, self.vocab_size, on_value=-1e9, dtype=logits.dtype)


def make_trainer(algo, agent, env, w, jit=False):
    """The workload's trainer: one update per batch of prompts_per_step x completions_per_prompt."""
    k = w["completions_per_prompt"]
    if algo == "rloo":
        return ReinforceTrainer(agent, env, ReinforceConfig(
            learning_rate=w["learning_rate"], baseline="rloo", num_samples_per_prompt=k, kl_coef=w["kl_coef"],
            max_grad_norm=None, jit_compile=jit))
    if algo == "grpo":  # TRL's GRPOTrainer as a user runs it: its defaults but the workload's beta, lr, no clipping
        from tf_rl_text import GRPOConfig, GRPOTrainer

        return GRPOTrainer(agent, env, GRPOConfig(
            learning_rate=w["learning_rate"], num_generations=k, beta=w["kl_coef"], num_iterations=1,
            max_grad_norm=None))
    if algo in ("ppo", "a2c"):
        from tf_rl_text import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer

        common = dict(learning_rate=w["learning_rate"], num_samples_per_prompt=k, kl_coef=w["kl_coef"],
                      max_grad_norm=None)
        if algo == "ppo":  # one epoch, one minibatch: one update per batch, as the workload says
            return PPOTrainer(agent, env, PPOConfig(num_epochs=1, num_minibatches=1, **common))
        return A2CTrainer(agent, env, A2CConfig(**common))
    from tf_rl_text import QLearningConfig, QLearningTrainer

    # Boltzmann exploration samples from softmax(processed Q), so the no-EOS hook still holds
    return QLearningTrainer(agent, env, QLearningConfig(
        target="soft", learning_rate=w["learning_rate"], num_samples_per_prompt=k, batch_size=env.batch_size * k,
        exploration="boltzmann", max_grad_norm=None))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_flags(ap)
    ap.add_argument("--layout", default="cores", choices=["cores", "tf-default"],
                    help="cores: tf_rl_text.cpu.use_cores() (one op per core, one generation shard per core); "
                         "tf-default: TensorFlow's own thread pools, one shard")
    ap.add_argument("--inter-op", type=int, default=0, help="TF inter-op threads (overrides --layout)")
    ap.add_argument("--intra-op", type=int, default=0, help="TF intra-op threads (overrides --layout)")
    ap.add_argument("--jit", action="store_true", help="compile the update with XLA (ReinforceConfig.jit_compile)")
    ap.add_argument("--algo", default="rloo", choices=sorted(SCORING_PASSES),
                    help="rloo: REINFORCE with the leave-one-out baseline (the workload); ppo / a2c: actor-critic "
                         "(one update per batch, value head); soft_q: soft Q-learning (one TD update per batch); grpo: "
                         "GRPOTrainer (group advantages, clipped ratio, k3 KL, one iteration)")
    ap.add_argument("--model", default="transformers", choices=["transformers", "keras_hub"],
                    help="transformers: the workload's TFGPT2LMHeadModel; keras_hub: the same model, same weights, "
                         "as a KerasHub GPT2CausalLM (tf_rl_text.kerashub.from_transformers)")
    ap.add_argument("--precision", default="float32", choices=PRECISIONS,
                    help="mixed_bfloat16: bfloat16 math over float32 weights (tf_rl_text.precision.with_precision)")
    args = ap.parse_args(argv)
    if args.inter_op or args.intra_op:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op)
    elif args.layout == "cores":
        use_cores()
    w, tokenizer, prompts, steps, warmup = load_run(args)
    tf.random.set_seed(w["seed"])
    model = build_model(w["model"], tokenizer, w["seed"], args.precision)
    if args.model == "keras_hub":
        import tempfile

        from tf_rl_text.kerashub import from_transformers

        model = from_transformers(model, tempfile.mkdtemp(prefix="rl_step_keras_hub_"))
    agent = ExactLengthAgent(model, tokenizer, temperature=w["temperature"], seed=w["seed"])
    target = w["target_word"]

    def reward(completions, prompts, references):
        out = []
        for c in completions:
            words = c.split()
            out.append(sum(x == target for x in words) / len(words) if words else 0.0)
        return out

    env = TextGenerationEnv(prompts, tokenizer, reward, batch_size=w["prompts_per_step"],
                            max_new_tokens=w["completion_tokens"], context_length=w["model"]["n_positions"],
                            seed=w["seed"])
    trainer = make_trainer(args.algo, agent, env, w, args.jit)
    actor = getattr(trainer, "policy", agent)  # Q-learning acts with its Q-policy
    times, rss, time_to_first, _ = time_steps(trainer.step, warmup, steps,
                                              lambda stats: f"reward {stats['reward_mean']:.3f}")
    lengths = {int(v) for v in np.sum(trainer.env.rollout(actor, num_samples=1).completion_mask, axis=1)}
    assert lengths == {w["completion_tokens"]}, f"completions must be exactly {w['completion_tokens']} tokens: {lengths}"
    gflop = step_gflop(w, args.algo)
    median = float(np.median(times))
    seqs = w["prompts_per_step"] * w["completions_per_prompt"]
    result = {
        "benchmark": "rl_step", "model": args.model, "algo": args.algo, "precision": args.precision, "jit_compile": args.jit,
        "timed_steps": len(times),
        "median_step_s": round(median, 4), "min_step_s": round(float(np.min(times)), 4),
        "max_step_s": round(float(np.max(times)), 4), "seqs_per_s": round(seqs / median, 2),
        "time_to_first_step_s": round(time_to_first, 2), "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_mb_after_step": rss, "gflop_per_step": round(gflop, 2), "gflops_achieved": round(gflop / median, 1),
        "update_traces": (trainer._update if hasattr(trainer, "_update") else trainer._grads  # GRPO: its chunk grads
                          ).experimental_get_tracing_count(),
        "generate_traces": actor.generate_fn(greedy=False).experimental_get_tracing_count(),
        # the issue's TRL 1.16 figure from another day; side_by_side.py measures TRL in the same run
        "issue_trl_median_step_s": 1.41, "speedup_vs_issue_trl_figure": round(1.41 / median, 2),
        "layout": args.layout, "generation_shards": agent.generation_shards,
        "tf": tf.__version__, **({"keras_hub": __import__("keras_hub").__version__} if args.model == "keras_hub" else {}),
        "numpy": np.__version__, "python": sys.version.split()[0],
        "threads": [tf.config.threading.get_inter_op_parallelism_threads(),
                                          tf.config.threading.get_intra_op_parallelism_threads()],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
