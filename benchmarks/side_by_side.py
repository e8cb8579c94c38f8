#!/usr/bin/env python
"""Ours vs the PyTorch peer on one machine, in one run: benchmarks/rl_step.py (this Python, TF)
and benchmarks/peer_torch.py (a Python with torch, kept out of the TF environment) run one at a
time, alternately (ours, peer, ours, peer, ...), ``--rounds`` times each, as subprocesses.

Each child prints progress on stderr (passed through here) and its figures as the last JSON
line of stdout. This prints one JSON line: each side's median of the per-run median step
times, ``speedup_vs_torch_peer`` = peer median / ours median (above 1: ours is faster), and the
per-round figures. peer_torch.py is a TRL-equivalent core, not TRL itself (see its docstring):
it skips TRL's own overhead, so this ratio is conservative against TRL.

    python benchmarks/side_by_side.py                        # 2 rounds, the shipped workload
    python benchmarks/side_by_side.py --rounds 1 --steps 5   # quick look
    TORCH_PYTHON=/path/to/python python benchmarks/side_by_side.py
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
KEEP = ("median_step_s", "min_step_s", "max_step_s", "seqs_per_s", "time_to_first_step_s", "peak_rss_mb",
        "gflops_achieved", "threads")


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
    ap.add_argument("--torch-python", default=DEFAULT_TORCH_PYTHON,
                    help="Python with torch for peer_torch.py (default: $TORCH_PYTHON or /work/torchenv/bin/python)")
    ap.add_argument("--workload", default=None, help="workload folder passed to both sides")
    ap.add_argument("--steps", type=int, default=None, help="timed steps passed to both sides")
    ap.add_argument("--warmup", type=int, default=None, help="warm-up steps passed to both sides")
    ap.add_argument("--torch-threads", type=int, default=2, help="peer_torch.py --threads (default 2)")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {args.rounds}")
    if not (os.path.isfile(args.torch_python) and os.access(args.torch_python, os.X_OK)):
        raise SystemExit(f"--torch-python {args.torch_python!r} is not an executable; make a venv with torch "
                         "(python -m venv --system-site-packages /work/torchenv && "
                         "/work/torchenv/bin/pip install torch) or pass --torch-python / set TORCH_PYTHON")
    common = []
    for flag, value in (("--workload", args.workload), ("--steps", args.steps), ("--warmup", args.warmup)):
        if value is not None:
            common += [flag, str(value)]
    ours_cmd = [sys.executable, os.path.join(HERE, "rl_step.py"), *common]
    peer_cmd = [args.torch_python, os.path.join(HERE, "peer_torch.py"), *common, "--threads", str(args.torch_threads)]
    rounds = []
    for r in range(args.rounds):
        ours = run_side(f"round {r + 1}/{args.rounds} ours (rl_step.py)", ours_cmd)
        peer = run_side(f"round {r + 1}/{args.rounds} torch peer (peer_torch.py)", peer_cmd)
        rounds.append({"round": r + 1,
                       "ours": {k: ours[k] for k in (*KEEP, "tf", "wall_s", "loadavg_1min") if k in ours},
                       "torch_peer": {k: peer[k] for k in (*KEEP, "torch", "wall_s", "loadavg_1min") if k in peer}})
    ours_med = statistics.median(x["ours"]["median_step_s"] for x in rounds)
    peer_med = statistics.median(x["torch_peer"]["median_step_s"] for x in rounds)
    result = {
        "benchmark": "side_by_side", "rounds": args.rounds, "order": "ours, peer alternately",
        "ours_median_step_s": round(ours_med, 4), "torch_peer_median_step_s": round(peer_med, 4),
        "speedup_vs_torch_peer": round(peer_med / ours_med, 2),
        "per_round": rounds,
        "ours_cmd": " ".join(ours_cmd), "peer_cmd": " ".join(peer_cmd),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
