#!/usr/bin/env python
"""Steps per second of a REINFORCE step (rollout + update) on 1 device (the default strategy)
vs MirroredStrategy over 2 logical CPU devices, each in its own process (logical devices must
be set before TensorFlow starts).

Workload: a 2-layer, 64-wide GPT-2 over the embedded tokenizer, 8 prompts x 4 samples = 32
completions of 16 tokens, RLOO baseline, KL 0.05 to a frozen reference, Adam 1e-4. Logical CPU
devices share the same cores, so on a CPU machine no speed-up is expected: the benchmark shows
what the split costs; the point of the CPU runs is correctness (tests/test_distribute.py).

Prints progress on stderr and one JSON line as the last line of stdout.

    python benchmarks/distribute.py                 # 3 warm-up steps, 10 timed steps per setup
    python benchmarks/distribute.py --steps 20
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def one(devices: int, steps: int, warmup: int) -> dict:
    sys.path.insert(0, REPO)
    from tf_rl_text._compat import tf

    if devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
    from tf_rl_text.defaults import default_model, default_tokenizer

    strategy = (tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
                if devices > 1 else tf.distribute.get_strategy())
    tokenizer = default_tokenizer()
    with strategy.scope():
        agent = RLAgent(default_model(tokenizer, n_layer=2, n_embd=64, n_head=2, seed=0), tokenizer, seed=0)
    prompts = ["the movie was", "my day", "our dinner", "i really enjoyed", "the food", "a", "the band", "she"]
    env = TextGenerationEnv(prompts, tokenizer, lambda c, p, r: [len(x) / 40.0 for x in c], batch_size=8,
                            max_new_tokens=16, seed=0)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-4, baseline="rloo",
                                                           num_samples_per_prompt=4, kl_coef=0.05),
                               strategy=strategy)
    for _ in range(warmup):
        trainer.step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    elapsed = time.perf_counter() - start
    return {"devices": devices, "replicas": strategy.num_replicas_in_sync, "strategy": type(strategy).__name__,
            "steps": steps, "steps_per_s": steps / elapsed}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(one(args.child, args.steps, args.warmup)))
        return
    results = []
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    for devices in (1, 2):
        print(f"timing {devices} device(s)...", file=sys.stderr)
        out = subprocess.run([sys.executable, __file__, "--child", str(devices), "--steps", str(args.steps),
                              "--warmup", str(args.warmup)], env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    one_dev, two_dev = results
    print(json.dumps({"benchmark": "distribute", "cpu_count": os.cpu_count(),
                      "one_device_steps_per_s": round(one_dev["steps_per_s"], 3),
                      "mirrored_2_logical_cpus_steps_per_s": round(two_dev["steps_per_s"], 3),
                      "speedup": round(two_dev["steps_per_s"] / one_dev["steps_per_s"], 3),
                      "steps": args.steps, "warmup": args.warmup}))


if __name__ == "__main__":
    main()
