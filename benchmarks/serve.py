"""Serving throughput and latency of a loaded export: ``tf_rl_text.load(path).generate`` at batch
1 and 16, from 1 thread and from ``--threads`` threads (greedy, every request ``--max-new-tokens``).

    python benchmarks/serve.py                       # exports default_model() (GPT-2 2 x 64) first
    python benchmarks/serve.py --export saved_models/my_policy --requests 400 --threads 8

Prints a table on stderr and one JSON object on the last line of stdout: for each
``batch{B}_threads{T}``, requests/s, sequences/s and p50/p95/p99 latency of one request (ms).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORDS = "the movie was great and my day went really well but i did not enjoy the ending at all".split()


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def requests_of(batch, n, seed):
    rng = random.Random(seed)
    return [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))) for _ in range(batch)] for _ in range(n)]


def run(policy, batch, threads, n, seed=0):
    requests = requests_of(batch, n, seed)
    latencies = []

    def serve(request):
        start = time.perf_counter()
        policy.generate(request)
        latencies.append(time.perf_counter() - start)

    for request in requests_of(batch, 3, seed + 1):  # warm-up
        serve(request)
    latencies.clear()
    start = time.perf_counter()
    if threads == 1:
        for request in requests:
            serve(request)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(serve, requests))
    wall = time.perf_counter() - start
    ms = [x * 1000 for x in latencies]
    return {"requests": n, "requests_per_s": round(n / wall, 2), "sequences_per_s": round(n * batch / wall, 2),
            "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "p99_ms": round(percentile(ms, 99), 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", help="a folder written by trainer.export(path); default: export default_model()")
    parser.add_argument("--requests", type=positive_int, default=200, help="requests per configuration")
    parser.add_argument("--threads", type=positive_int, default=8, help="threads of the multi-threaded runs")
    parser.add_argument("--max-new-tokens", type=positive_int, default=16, help="tokens per completion (new export)")
    args = parser.parse_args()

    import tensorflow as tf

    import tf_rl_text

    path = args.export
    if path is None:
        agent = tf_rl_text.RLAgent(tf_rl_text.default_model(), tf_rl_text.default_tokenizer(), seed=0)
        path = os.path.join(tempfile.mkdtemp(prefix="serve_bench_"), "policy")
        tf_rl_text.export_policy(agent, path, max_new_tokens=args.max_new_tokens)
    policy = tf_rl_text.load(path)
    results = {}
    for batch in (1, 16):
        for threads in (1, args.threads):
            key = f"batch{batch}_threads{threads}"
            results[key] = run(policy, batch, threads, args.requests)
            r = results[key]
            print(f"{key:>18}: {r['requests_per_s']:8.2f} req/s {r['sequences_per_s']:9.2f} seq/s  "
                  f"p50 {r['p50_ms']:8.2f} ms  p95 {r['p95_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms", file=sys.stderr)
    results["setup"] = {"export": args.export or "default_model() (GPT-2 2 layers x 64, vocabulary 512)",
                        "max_new_tokens": policy.max_new_tokens, "cpu_cores": os.cpu_count(),
                        "tensorflow": tf.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
