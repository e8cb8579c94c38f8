"""Plots of a run folder's metrics.jsonl (reward, KL and losses against step), and of a reward-against-KL
frontier (``benchmarks/preferences_frontier.py``'s JSON)."""
from __future__ import annotations

import os


# --------------------------------------------------------------------------- plots
PANELS = (
    ("reward", ("rollout/reward_mean", "reward_mean")),
    ("KL to the reference (nats per completion)", ("objective/kl", "kl")),
    ("losses", ("loss/policy", "loss/value", "policy_loss", "value_loss", "td_loss", "loss")),
)


def read_metrics(run_dir: str) -> list:
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise ValueError(f"{run_dir!r} has no metrics.jsonl; pass the --run-dir of `tf-rl-text train`")
    from tf_rl_text.callbacks import read_jsonl

    return read_jsonl(path)  # a line cut by a kill is skipped with a warning: the rest of the file still plots


def plot_run(run_dir: str, out: str | None = None) -> dict:
    """Write RUN_DIR/plots/training.png (or ``out``): reward, KL and the losses against step, and the
    held-out (dev) evaluations (the ``eval`` lines of metrics.jsonl) as points; integer step ticks; the KL
    panel says "no KL penalty" when every step logged ``kl_coef`` 0, or none (an algorithm without one:
    Q-learning, DPO).

    Returns ``{"path": ..., "curves": {panel: {label: (steps, values)}}}``: the plotted data (a panel with a
    note instead of curves has ``{}``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    records = read_metrics(run_dir)
    steps = [r for r in records if "eval" not in r]
    if not steps:
        raise ValueError(f"{run_dir!r}: metrics.jsonl is empty (no training step ran)")
    kl_off = all(not r.get("kl_coef") for r in steps)  # every algorithm logs its KL coefficient as kl_coef
    curves, notes = {}, {}
    for title, keys in PANELS:
        panel = {}
        for key in keys:
            points = [(r["step"], r[key]) for r in steps if r.get(key) is not None]
            if points and not (title == "losses" and key == "loss" and panel):
                panel[key] = ([p[0] for p in points], [p[1] for p in points])
            if title != "losses" and panel:
                break
        if title.startswith("KL") and kl_off:  # a flat 0 would read as "the policy did not move"
            panel, notes[title] = {}, "no KL penalty (kl_coef is 0): no reference model, nothing measured"
        if panel or title in notes:
            curves[title] = panel
    held = {}  # the held-out (dev) evaluations: run.keep_best / eval_every, the warm start's at its step
    for r in records:
        for key, value in (r.get("eval") or {}).items():
            if isinstance(value, (int, float)) and key != "num_examples":
                held.setdefault(key, ([], []))
                held[key][0].append(r["step"])
                held[key][1].append(value)
    if held:
        curves["held-out evaluation (dev set)"] = held
    fig, axes = plt.subplots(len(curves), 1, figsize=(7, 2.6 * len(curves)), sharex=True, squeeze=False)
    for ax, (title, panel) in zip(axes[:, 0], curves.items()):
        marker = "o" if title.startswith("held-out") else None
        for label, (x, y) in panel.items():
            ax.plot(x, y, label=label, linewidth=1.2, marker=marker, markersize=4)
        if title in notes:
            ax.text(0.5, 0.5, notes[title], ha="center", va="center", transform=ax.transAxes, fontsize=9)
            ax.set_yticks([])
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        if len(panel) > 1 or title == "losses" or marker:
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(os.path.basename(os.path.abspath(run_dir)), fontsize=10)
    fig.tight_layout()
    out = out or os.path.join(run_dir, "plots", "training.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return {"path": out, "curves": curves}


def frontier_curves(points) -> dict:
    """{method: [(setting, mean KL, mean reward, min reward, max reward)] sorted by KL}, over seeds."""
    import numpy as np

    curves = {}
    for i, p in enumerate(points):
        missing = [k for k in ("method", "reward", "kl") if not isinstance(p, dict) or k not in p]
        if missing:
            raise ValueError(f"point {i} lacks {missing}; a frontier point has 'method', 'setting', 'reward' and 'kl' "
                             "(as benchmarks/preferences_frontier.py writes them)")
    for method in dict.fromkeys(p["method"] for p in points):
        rows = []
        for setting in dict.fromkeys(p.get("setting") for p in points if p["method"] == method):
            group = [p for p in points if p["method"] == method and p.get("setting") == setting]
            r = [float(p["reward"]) for p in group]
            rows.append((setting, float(np.mean([p["kl"] for p in group])), float(np.mean(r)), min(r), max(r)))
        curves[method] = sorted(rows, key=lambda row: row[1])
    return curves


def plot_frontier(points, out: str | None = None, title: str = "Reward against KL") -> dict:
    """Reward against KL(pi || pi_ref), one line per method through its settings: means over seeds, bars the
    seed range. ``points``: a list of points, or the path of a JSON holding them under ``"points"`` (as
    ``benchmarks/preferences_frontier.py`` writes; ``out`` then defaults to NAME_frontier.png beside it).
    Returns ``{"path": out, "curves": frontier_curves(points)}``."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if isinstance(points, str):
        path = points
        with open(path) as f:
            points = json.load(f)
        points = points.get("points") if isinstance(points, dict) else None
        if not isinstance(points, list):
            raise ValueError(f"{path}: no 'points' list; a frontier JSON is what benchmarks/preferences_frontier.py "
                             "writes (or pass a run folder to plot its curves)")
        out, title = out or os.path.splitext(path)[0] + "_frontier.png", os.path.basename(path)
    if out is None:
        raise ValueError("plot_frontier needs out (the PNG path) when given a list of points")
    curves = frontier_curves(points)
    if not curves:
        raise ValueError("no points to plot")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method, rows in curves.items():
        x, y = [r[1] for r in rows], [r[2] for r in rows]
        ax.errorbar(x, y, yerr=[[r[2] - r[3] for r in rows], [r[4] - r[2] for r in rows]], marker="o", capsize=2,
                    label=method)
    ax.set_xlabel("KL(pi || pi_ref) per completion (nats)")
    ax.set_ylabel("reward")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return {"path": out, "curves": curves}


__all__ = ["read_metrics", "plot_run", "PANELS", "plot_frontier", "frontier_curves"]
