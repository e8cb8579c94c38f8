"""The run folder: claiming it (resume, or move a finished or foreign run aside), its config and kept step."""
from __future__ import annotations

import json
import os

import numpy as np

from tf_rl_text.configfile import RunConfig, to_dict
from tf_rl_text.validation import ConfigError


# --------------------------------------------------------------------------- checkpoints
def has_checkpoint(run_dir) -> bool:
    """Whether ``run_dir/checkpoints`` holds a checkpoint of the trainer base (then train resumes): the one
    answer the CLI and the trainer's restore share. The files decide, not the index file, which is
    rebuilt from them when it is missing, damaged or names a checkpoint that is gone."""
    from tf_rl_text.checkpoint import repair_checkpoint_index

    return bool(run_dir) and bool(repair_checkpoint_index(os.path.join(run_dir, "checkpoints")))


RESUMABLE_CHANGES = {"run": ("steps", "checkpoint_every", "strategy", "eval_metrics", "eval_samples", "deterministic")}
"""Fields a rerun on the same run folder may change (it still resumes): how long, how watched, on what devices."""


def claim_run_dir(cfg: RunConfig, run_dir: str, scratch: bool = False, log=print):
    """Make sure ``run_dir`` holds this run (or nothing). A run folder whose config.yaml differs from ``cfg``
    (beyond :data:`RESUMABLE_CHANGES`) is an error; with ``scratch=True`` (an example's default folder) it is
    moved aside to ``RUN_DIR.old`` (``.old2``, ``.old3``... when that exists: nothing is deleted) instead, and
    so is a finished run (summary.json): a new run starts."""
    import yaml

    record = os.path.join(run_dir, "config.yaml")
    if not has_checkpoint(run_dir):
        trained = _trained_without_checkpoint(run_dir)
        if not trained:
            return
        if not scratch:
            raise ConfigError(f"{run_dir!r} holds a run ({trained}) but no complete checkpoint to resume it from; "
                              "starting over would overwrite it. Pass a new run folder, or delete this one to start "
                              "over")
        _move_aside(run_dir, f"a run without a complete checkpoint ({trained})", log)
        return
    if not os.path.isfile(record):
        raise ConfigError(f"{run_dir!r} holds checkpoints but no config.yaml (the record of the settings it was trained "
                          "with), so it cannot be checked against this config; put the run's config.yaml back, or pass "
                          "a new run folder")
    try:
        with open(record, encoding="utf-8") as f:
            found = yaml.safe_load(f)
        if not isinstance(found, dict):
            raise ValueError(f"it holds {type(found).__name__}, not a mapping of sections")
    except (yaml.YAMLError, ValueError, UnicodeDecodeError) as e:
        first = " ".join(str(e).split())[:200]
        raise ConfigError(f"{record} is damaged ({first}); put back the run's config.yaml (the settings it was trained "
                          "with), or pass a new run folder") from None
    found = _flat(found)
    wanted = _flat(yaml.safe_load(yaml.safe_dump(to_dict(cfg))))
    ignored = {f"{s}.{k}" for s, names in RESUMABLE_CHANGES.items() for k in names}
    changed = sorted(k for k in set(found) | set(wanted) if k not in ignored and found.get(k) != wanted.get(k))
    finished = os.path.isfile(os.path.join(run_dir, "summary.json"))
    if not changed and not (scratch and finished):
        return
    why = f"a run with other settings ({', '.join(changed)} differ)" if changed else "a finished run"
    if not scratch:
        raise ConfigError(f"{run_dir!r} holds {why}; rerun with the same settings to resume it, or pass a new run "
                          "folder")
    _move_aside(run_dir, why, log)


def _trained_without_checkpoint(run_dir) -> str | None:
    """What shows that ``run_dir`` held a run that trained (checkpoint files, logged steps, a summary), or None."""
    folder = os.path.join(run_dir, "checkpoints")
    if os.path.isdir(folder) and any(n.startswith("ckpt-") for n in os.listdir(folder)):
        return f"checkpoint files in {folder}, none complete"
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if os.path.isfile(metrics) and os.path.getsize(metrics) > 0:
        return "its metrics.jsonl has logged steps"
    if os.path.isfile(os.path.join(run_dir, "summary.json")):
        return "a summary.json"
    return None


def _move_aside(run_dir, why, log):
    aside = run_dir + ".old"
    n = 1
    while os.path.exists(aside):  # earlier runs are kept: RUN_DIR.old, RUN_DIR.old2, ...
        n += 1
        aside = f"{run_dir}.old{n}"
    os.replace(run_dir, aside)
    log(f"{run_dir} held {why}; moved it to {aside} (nothing deleted) and starting a new run")


def _flat(config: dict) -> dict:
    """``{"section.field": value}`` of a config mapping (the reward as one value)."""
    return {f"{s}.{k}": v for s, part in config.items() if isinstance(part, dict) and s != "reward"
            for k, v in part.items()} | {s: v for s, v in config.items() if not isinstance(v, dict) or s == "reward"}


def weights_fingerprint(model) -> str:
    """sha256 of all of ``model``'s weights as raw bytes (bit-exact: equal on workers that hold the same weights)."""
    import hashlib

    digest = hashlib.sha256()
    for v in model.weights:
        digest.update(np.ascontiguousarray(v.numpy()).tobytes())
    return digest.hexdigest()[:16]


def write_run_config(cfg: RunConfig, run_dir: str):
    import yaml

    with open(os.path.join(run_dir, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)


def best_record(run_dir) -> dict:
    path = os.path.join(run_dir, "best", "best.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def kept_step(run_dir) -> int | None:
    """The step whose weights a run kept (``run.keep_best``: RUN_DIR/best), or None (the last step)."""
    step = best_record(run_dir).get("step")
    return None if step is None else int(step)


__all__ = ["has_checkpoint", "claim_run_dir", "weights_fingerprint", "write_run_config", "best_record", "kept_step", "RESUMABLE_CHANGES"]
