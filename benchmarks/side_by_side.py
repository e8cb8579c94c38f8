#!/usr/bin/env python
"""Ours vs the peers on one machine, in one run: benchmarks/rl_step.py (this Python, TF),
benchmarks/peer_torch.py (plain PyTorch, a Python with torch) and benchmarks/peer_trl.py (the real
TRL RLOOTrainer, a Python with TRL; both kept out of the TF environment) run one at a time,
alternately per round (ours, torch peer, TRL peer, ours, ...), ``--rounds`` times each, as
subprocesses.

Each child prints progress on stderr (passed through here) and its figures as the last JSON
line of stdout. This prints one JSON line: each side's median of the per-run median step
times, ``speedup_vs_torch_peer`` = torch peer median / ours median and ``speedup_vs_trl`` = TRL
peer median / ours median (above 1: ours is faster), and the per-round figures.
peer_torch.py is a TRL-equivalent core, not TRL itself (see its docstring): it skips TRL's own
overhead, so its ratio is conservative against TRL; peer_trl.py is TRL 1.13 itself (see its
docstring for where TRL's step differs from the workload).

    python benchmarks/side_by_side.py                        # 2 rounds, the shipped workload, both peers
    python benchmarks/side_by_side.py --rounds 1 --steps 5   # quick look
    python benchmarks/side_by_side.py --peers trl            # ours vs TRL only
    python benchmarks/side_by_side.py --precision mixed_bfloat16   # every side in bfloat16 math
    python benchmarks/side_by_side.py --peers keras_hub      # ours on the HF GPT-2 vs the same GPT-2 in KerasHub
    TORCH_PYTHON=/path/to/python TRL_PYTHON=/path/to/python python benchmarks/side_by_side.py

``--peers`` defaults to every peer whose Python exists (torch: $TORCH_PYTHON or
/work/torchenv/bin/python; trl: $TRL_PYTHON or /work/trlenv/bin/python); a peer named in
``--peers`` whose Python is missing is an error.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TORCH_PYTHON = os.environ.get("TORCH_PYTHON", "/work/torchenv/bin/python")
DEFAULT_TRL_PYTHON = os.environ.get("TRL_PYTHON", "/work/trlenv/bin/python")
DEFAULT_STACK_PYTHON = os.environ.get("STACK_PYTHON", "/work/stack215/bin/python")
KEEP = ("median_step_s", "min_step_s", "max_step_s", "seqs_per_s", "time_to_first_step_s", "peak_rss_mb",
        "gflops_achieved", "threads")
# peer name -> (script, key in the per-round figures, extra figures kept, how to make its Python)
PEERS = {
    "torch": ("peer_torch.py", "torch_peer", ("torch", "transformers"),
              "python -m venv --system-site-packages /work/torchenv && /work/torchenv/bin/pip install torch"),
    "trl": ("peer_trl.py", "trl_peer", ("trl", "torch", "transformers", "median_step_interval_s",
                                        "gflop_per_step_trl_executed"),
            "python -m venv /work/trlenv && /work/trlenv/bin/pip install --no-index --find-links /opt/pypi/files "
            "--find-links /opt/wheels torch==2.13.0 trl==1.13.0"),
    # ours again, this Python, the same GPT-2 as a KerasHub (Keras 3) GPT2CausalLM (docs/models.md)
    "keras_hub": ("rl_step.py", "keras_hub", ("keras_hub", "tf"), "pip install '.[keras-hub]'"),
    # ours again, in another Python with another TensorFlow stack (docs/install.md: the 2023 stack, TF 2.15)
    "stack": ("rl_step.py", "other_stack", ("tf", "numpy", "python"),
              "python3.11 -m venv /work/stack215 && /work/stack215/bin/pip install 'tensorflow~=2.15.1' "
              "'tf-keras~=2.15.1' 'tensorflow-probability~=0.23.0' 'tf-agents~=0.19.0' 'transformers>=4.46,<4.55' "
              "tokenizers nltk rouge-score 'numpy<2' tqdm pyyaml matplotlib sacrebleu"),
}


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def run_side(name: str, cmd: list[str], env: dict | None = None) -> dict:
    """Run one benchmark to completion; return its last stdout JSON line (a dict)."""
    print(f"[side_by_side] {name}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env, cwd=os.path.dirname(HERE))
    wall = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed (exit {proc.returncode}, {wall:.0f} s): {' '.join(cmd)}\n"
                         f"stdout tail: {lines[-5:]}")
    try:
        result = json.loads(lines[-1])
    except json.JSONDecodeError as e:
        raise SystemExit(f"{name}: last stdout line is not JSON ({e}): {lines[-1][:200]!r}") from None
    result["wall_s"] = round(wall, 1)
    # the 1-minute load average around the run: other work on the machine shows here (torch with
    # as many threads as cores slows down sharply when another process takes a core)
    result["loadavg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(f"[side_by_side] {name}: median {result.get('median_step_s')} s/step ({wall:.0f} s wall)",
          file=sys.stderr, flush=True)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating (default 2)")
    ap.add_argument("--peers", default=None,
                    help="comma-separated peers to run against ours: torch, trl, stack, keras_hub (default: torch and trl "
                         "where their Python exists; stack and keras_hub only when named)")
    ap.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON,
                    help="Python with torch for peer_torch.py (default: $TORCH_PYTHON or /work/torchenv/bin/python)")
    ap.add_argument("--trl-python", default=DEFAULT_TRL_PYTHON,
                    help="Python with TRL for peer_trl.py (default: $TRL_PYTHON or /work/trlenv/bin/python)")
    ap.add_argument("--stack-python", default=DEFAULT_STACK_PYTHON,
                    help="another Python for the 'stack' peer: ours (rl_step.py) on that Python's TensorFlow stack "
                         "(default: $STACK_PYTHON or /work/stack215/bin/python, the TF 2.15 stack)")
    ap.add_argument("--workload", default=None, help="workload folder passed to every side")
    ap.add_argument("--steps", type=int, default=None, help="timed steps passed to every side")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps passed to every side")
    ap.add_argument("--torch-threads", type=int, default=2, help="peer_torch.py --threads (default 2)")
    ap.add_argument("--trl-threads", type=int, default=2, help="peer_trl.py --threads (default 2)")
    ap.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"),
                    help="every side in this precision: mixed_bfloat16 = rl_step.py --precision mixed_bfloat16 and "
                         "the peers' --bf16 (torch autocast to bfloat16; weights and optimizer float32 everywhere)")
    ap.add_argument("--algo", default="rloo", choices=("rloo", "grpo"),
                    help="rloo: the workload (REINFORCE/RLOO vs RLOOTrainer); grpo: GRPOTrainer on both sides "
                         "(TRL peer only: peer_torch.py is RLOO)")
    args = ap.parse_args(argv)
    if args.algo == "grpo" and args.peers is None:
        args.peers = "trl"
    if args.algo == "grpo" and "torch" in args.peers:
        raise SystemExit("--algo grpo: the torch peer is an RLOO core only; use --peers trl")
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    pythons = {"torch": args.torch_python, "trl": args.trl_python, "stack": args.stack_python,
               "keras_hub": sys.executable}
    threads = {"torch": args.torch_threads, "trl": args.trl_threads}
    if args.peers is None:
        peers = [p for p in ("torch", "trl") if _is_executable(pythons[p])]
        for p in ("torch", "trl"):
            if p not in peers:
                print(f"[side_by_side] skipping the {p} peer: no Python at {pythons[p]!r} "
                      f"(make one: {PEERS[p][3]}; or pass --{p}-python)", file=sys.stderr, flush=True)
        if not peers:
            raise SystemExit("no peer Python found: " + "; ".join(
                f"--{p}-python {pythons[p]!r} ({PEERS[p][3]})" for p in PEERS))
    else:
        peers = [p.strip() for p in args.peers.split(",") if p.strip()]
        unknown = [p for p in peers if p not in PEERS]
        if unknown or not peers:
            raise SystemExit(f"--peers: unknown {unknown or args.peers!r}; choose from {', '.join(PEERS)}")
        peers = list(dict.fromkeys(peers))
        for p in peers:
            if not _is_executable(pythons[p]):
                raise SystemExit(f"--{p}-python {pythons[p]!r} is not an executable; make a venv "
                                 f"({PEERS[p][3]}) or pass --{p}-python / set {p.upper()}_PYTHON")
    common = []
    for flag, value in (("--workload", args.workload), ("--steps", args.steps), ("--warmup", args.warmup)):
        if value is not None:
            common += [flag, str(value)]
    bf16 = args.precision == "mixed_bfloat16"
    algo = ["--algo", args.algo] if args.algo != "rloo" else []
    ours_cmd = [sys.executable, os.path.join(HERE, "rl_step.py"), *common, *algo,
                *(["--precision", args.precision] if bf16 else [])]
    peer_cmds = {p: [pythons[p], os.path.join(HERE, PEERS[p][0]), *common, "--threads", str(threads[p]),
                     *(["--bf16"] if bf16 else []), *algo] for p in peers if p not in ("stack", "keras_hub")}
    if "stack" in peers:  # the same script as ours, in the other Python
        peer_cmds["stack"] = [pythons["stack"], *ours_cmd[1:]]
    if "keras_hub" in peers:  # the same script and Python, the model as KerasHub's
        peer_cmds["keras_hub"] = [*ours_cmd, "--model", "keras_hub"]
    rounds = []
    for r in range(args.rounds):
        ours = run_side(f"round {r + 1}/{args.rounds} ours (rl_step.py)", ours_cmd)
        entry = {"round": r + 1,
                 "ours": {k: ours[k] for k in (*KEEP, "tf", "numpy", "python", "wall_s", "loadavg_1min") if k in ours}}
        for p in peers:
            script, key, extra, _ = PEERS[p]
            res = run_side(f"round {r + 1}/{args.rounds} {p} peer ({script})", peer_cmds[p])
            entry[key] = {k: res[k] for k in (*KEEP, *extra, "wall_s", "loadavg_1min") if k in res}
        rounds.append(entry)
    ours_med = statistics.median(x["ours"]["median_step_s"] for x in rounds)
    result = {
        "benchmark": "side_by_side", "algo": args.algo, "rounds": args.rounds, "peers": peers, "precision": args.precision,
        "order": "per round: " + ", ".join(["ours", *(f"{p} peer" for p in peers)]),
        "ours_median_step_s": round(ours_med, 4),
    }
    for p in peers:
        key = PEERS[p][1]
        med = statistics.median(x[key]["median_step_s"] for x in rounds)
        result[f"{key}_median_step_s"] = round(med, 4)
    if "torch" in peers:
        result["speedup_vs_torch_peer"] = round(result["torch_peer_median_step_s"] / ours_med, 2)
    if "stack" in peers:
        result["speedup_vs_other_stack"] = round(result["other_stack_median_step_s"] / ours_med, 2)
    if "keras_hub" in peers:
        result["keras_hub_vs_transformers_step_ratio"] = round(result["keras_hub_median_step_s"] / ours_med, 2)
    if "trl" in peers:
        result["speedup_vs_trl"] = round(result["trl_peer_median_step_s"] / ours_med, 2)
    result["per_round"] = rounds
    result["ours_cmd"] = " ".join(ours_cmd)
    for p in peers:
        result[f"{p}_peer_cmd"] = " ".join(peer_cmds[p])
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
