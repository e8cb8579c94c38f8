"""Subprocess side of tests/test_distribute.py (not collected): TensorFlow's devices must be set
before it initialises them, so each scenario runs in a fresh process.

    [DISTRIBUTE_MODEL=keras_hub_gpt2|keras_hub_llama] python tests/distribute_worker.py mirrored OUT_JSON [FAMILIES]
        On 2 logical CPU devices: for each trainer family (REINFORCE, PPO, Q-learning, MLE) one
        update of a global batch under MirroredStrategy and the same update under the default
        strategy from the same weights; writes the largest weight difference, how far the
        weights moved, and the two updates' logged statistics.

    TF_CONFIG=... python tests/distribute_worker.py multi_worker RUN_DIR NUM_STEPS OUT_NPZ
        One worker of a MultiWorkerMirroredStrategy run (REINFORCE, 1 logical CPU per worker):
        trains NUM_STEPS steps with checkpoints and TensorBoard into RUN_DIR, exports to
        RUN_DIR/export (unless a 5th argument "no_export"), writes its final weights to OUT_NPZ.
"""
import json
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tf_rl_text  # noqa: E402,F401
from tf_rl_text._compat import tf  # noqa: E402

PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed", "the food", "a"]


def length_reward(completions, prompts, references):
    return [len(c.split()) / 4.0 + 0.1 * len(c) for c in completions]


def tiny(tokenizer):
    """The tiny GPT-2: Hugging Face's, or with DISTRIBUTE_MODEL=keras_hub_gpt2 / keras_hub_llama a KerasHub one."""
    kind = os.environ.get("DISTRIBUTE_MODEL", "transformers")
    if kind.startswith("keras_hub_"):
        from tf_rl_text import kerashub

        return kerashub.build(kind[len("keras_hub_"):], len(tokenizer), num_layers=1, hidden_size=32, num_heads=2,
                              seed=0)
    from tf_rl_text.defaults import default_model

    return default_model(tokenizer, n_layer=1, n_embd=32, n_head=2, seed=0)


def weights(model):
    return [v.numpy() for v in (model.causal_lm.weights if hasattr(model, "causal_lm") else model.weights)]


def max_diff(a, b):
    return float(max(np.max(np.abs(x - y)) for x, y in zip(a, b)))


def family(name, tokenizer, strategy):
    """Build (under strategy's scope) and run one update of family ``name``; returns (weights after, stats)."""
    from tf_rl_text import (GRPOConfig, GRPOTrainer, PPOConfig, PPOTrainer, QLearningConfig, QLearningTrainer,
                            ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv)
    from tf_rl_text.trainers.mle import warm_start

    with strategy.scope():
        agent = RLAgent(tiny(tokenizer), tokenizer, seed=0)
    # odd global batches (3 or 5 rows): the replicas' shares differ (2 + 1, 3 + 2 rows), so a mean of
    # per-replica means would differ from the global mean
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=3, max_new_tokens=5, seed=0)
    if name == "mle":
        texts = ["the movie was great fun", "my day was long", "a b c", "our dinner was very very good", "x"]
        losses = warm_start(agent, texts, steps=1, batch_size=5, learning_rate=1e-2, progress=False,
                            strategy=strategy)
        return weights(agent.model), {"loss": losses[0]}
    if name == "reinforce":
        trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, baseline="moving_average",
                                                               kl_coef=0.1, normalize_advantages=True,
                                                               entropy_coef=0.01, max_grad_norm=0.5),
                                   strategy=strategy)
    elif name == "ppo":
        trainer = PPOTrainer(agent, env, PPOConfig(learning_rate=1e-2, num_epochs=1,
                                                   num_minibatches=1, kl_coef=0.05), strategy=strategy)
    elif name == "grpo":  # 3 prompts x 3 completions = 9 rows (5 + 4), two clipped updates, the KL term
        trainer = GRPOTrainer(agent, env, GRPOConfig(learning_rate=1e-2, num_generations=3, num_iterations=2,
                                                     beta=0.1, epsilon=0.05), strategy=strategy)
    elif name == "q_learning":
        trainer = QLearningTrainer(agent, env, QLearningConfig(learning_rate=1e-2, batch_size=5,
                                                               target_update_period=1),
                                   strategy=strategy)
    stats = trainer.step()
    model = trainer.q_model if name == "q_learning" else agent.model
    out = weights(model)
    if name == "ppo":
        out += weights(trainer.value_head)
    if name == "q_learning":
        out += weights(trainer.target_model)
    stats = {k: v for k, v in stats.items() if k not in ("step_time_s",)}
    stats["replicas"] = strategy.num_replicas_in_sync
    return out, stats


def mirrored(out_path):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tf_rl_text.defaults import default_tokenizer

    tokenizer = default_tokenizer()
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    mirrored_strategy = tf.distribute.MirroredStrategy(devices)
    start = weights(tiny(tokenizer))
    result = {"devices": devices}
    for name in (sys.argv[3].split(",") if len(sys.argv) > 3 else ("reinforce", "ppo", "q_learning", "grpo", "mle")):
        single, single_stats = family(name, tokenizer, tf.distribute.get_strategy())
        multi, multi_stats = family(name, tokenizer, mirrored_strategy)
        result[name] = {"max_diff": max_diff(single, multi), "moved": max_diff(single[:len(start)], start),
                        "single": single_stats, "mirrored": multi_stats}
    with open(out_path, "w") as f:
        json.dump(result, f)


def multi_worker(run_dir, num_steps, out_npz, export="export"):
    from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
    from tf_rl_text.callbacks import default_callbacks
    from tf_rl_text.defaults import default_tokenizer

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tokenizer = default_tokenizer()
    with strategy.scope():
        agent = RLAgent(tiny(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=4, seed=0)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, num_samples_per_prompt=2,
                                                           kl_coef=0.1), run_dir=run_dir, checkpoint_every=2,
                               strategy=strategy)
    print(f"resumed {trainer.global_step} chief={trainer.is_chief}", flush=True)
    trainer.train(int(num_steps), progress=False, callbacks=default_callbacks(trainer))
    if export == "export":
        trainer.export()
    np.savez(out_npz, *weights(agent.model))
    print(f"done {trainer.global_step} reward {trainer.history[-1]['reward_mean']:.4f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        mirrored(sys.argv[2])
    else:
        multi_worker(*sys.argv[2:6])
