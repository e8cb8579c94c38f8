#!/usr/bin/env python
"""Tokens/s of batched sampling (RLAgent.generate: compiled loop, KV cache) on the shared
workload's model, at batch 1, 16, 64 and 256, beside the FLOP-bound limit of this machine.

    python benchmarks/generate.py                 # prints one JSON line last
    python benchmarks/generate.py --peak-gflops 155
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from _common import DEFAULT_WORKLOAD, PRECISIONS, build_model, forward_flops_per_token, load_workload  # noqa: E402

import numpy as np  # noqa: E402

from tf_rl_text.cpu import available_cores, use_cores  # noqa: E402
from tf_rl_text._compat import tf  # noqa: E402
from rl_step import ExactLengthAgent  # noqa: E402


def measured_matmul_gflops(n=2048, repeats=5, dtype="float32"):
    """Matmul throughput of this machine through TensorFlow in ``dtype`` (the FLOP-bound reference).

    One n x n matmul per core, side by side in one graph, so the peak counts every core under
    either thread layout (with use_cores() one matmul runs on one core).
    """
    cores = available_cores()
    pairs = [(tf.cast(tf.random.normal([n, n]), dtype), tf.cast(tf.random.normal([n, n]), dtype)) for _ in range(cores)]
    f = tf.function(lambda: tf.add_n([tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)) for a, b in pairs]))
    f().numpy()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f().numpy()
        best = min(best, time.perf_counter() - t0)
    return cores * 2 * n**3 / best / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default=DEFAULT_WORKLOAD)
    ap.add_argument("--batches", default="1,16,64,256", help="comma-separated batch sizes")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per batch size (median reported)")
    ap.add_argument("--peak-gflops", type=float, default=None, help="override the measured matmul peak")
    ap.add_argument("--layout", default="cores", choices=["cores", "tf-default"],
                    help="cores: tf_rl_text.cpu.use_cores() (one op per core, one generation shard per core); "
                         "tf-default: TensorFlow's own thread pools, one shard")
    ap.add_argument("--precision", default="float32", choices=PRECISIONS,
                    help="mixed_bfloat16: bfloat16 math over float32 weights; the bound then uses the bfloat16 "
                         "matmul peak")
    args = ap.parse_args(argv)
    if args.layout == "cores":
        use_cores()
    w, tokenizer, prompts = load_workload(args.workload)
    model = build_model(w["model"], tokenizer, w["seed"], args.precision)
    agent = ExactLengthAgent(model, tokenizer, seed=w["seed"])
    n_new, p = w["completion_tokens"], w["prompt_words"]
    peak = args.peak_gflops or measured_matmul_gflops(
        dtype="bfloat16" if args.precision == "mixed_bfloat16" else "float32")
    flop_per_new_token = np.mean([forward_flops_per_token(w["model"], p + i + 1) for i in range(n_new)])
    rows = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        ids, mask = agent.encode_prompts([prompts[i % len(prompts)] for i in range(batch)])
        agent.generate(ids, mask, n_new, seed=0)  # warm-up (first call traces)
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            out = agent.generate(ids, mask, n_new, seed=r)
            out.completion_ids.numpy()
            times.append(time.perf_counter() - t0)
        median = float(np.median(times))
        tokens_per_s = batch * n_new / median
        bound = peak * 1e9 / flop_per_new_token  # tokens/s if every FLOP ran at the matmul peak
        rows[batch] = {"median_s": round(median, 4), "tokens_per_s": round(tokens_per_s, 1),
                       "flop_bound_tokens_per_s": round(bound, 1), "fraction_of_bound": round(tokens_per_s / bound, 3)}
        print(f"batch {batch}: {tokens_per_s:.0f} tokens/s ({tokens_per_s / bound:.1%} of the FLOP bound)", file=sys.stderr)
    result = {"benchmark": "generate", "new_tokens": n_new, "prompt_tokens": p, "peak_matmul_gflops": round(peak, 1),
              "gflop_per_token": round(flop_per_new_token / 1e9, 5), "batches": rows,
              "traces": agent.generate_fn(greedy=False).experimental_get_tracing_count(),
              "layout": args.layout, "generation_shards": agent.generation_shards, "precision": args.precision}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
