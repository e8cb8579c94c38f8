"""Plots of a run folder's metrics.jsonl: reward, KL and losses against step."""
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


def _kl_coef(run_dir):
    """trainer.kl_coef of the run's config.yaml (None when unknown)."""
    import yaml

    path = os.path.join(run_dir, "config.yaml")
    try:
        with open(path, encoding="utf-8") as f:
            return ((yaml.safe_load(f) or {}).get("trainer") or {}).get("kl_coef")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def plot_run(run_dir: str, out: str | None = None) -> dict:
    """Write RUN_DIR/plots/training.png (or ``out``): reward, KL and the losses against step, and the
    held-out (dev) evaluations (the ``eval`` lines of metrics.jsonl) as points; integer step ticks; the KL
    panel says "no KL penalty" when ``trainer.kl_coef`` is 0.

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
    kl_off = _kl_coef(run_dir) == 0
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
            panel, notes[title] = {}, "no KL penalty (trainer.kl_coef is 0): no reference model, nothing measured"
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


__all__ = ["read_metrics", "plot_run", "PANELS"]
