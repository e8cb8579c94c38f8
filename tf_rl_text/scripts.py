"""Example scripts over config files: an example in examples/ is a config in configs/ plus a table
of flags, each flag a field of that config, run by the same code as ``tf-rl-text train``::

    FLAGS = {"--episodes": "run.steps", "--kl-coef": "trainer.kl_coef"}
    cfg, args = script_args("configs/train_text_rl.yaml", FLAGS)   # = load_config(..., --set run.steps=N ...)
    summary = run_script(cfg, args)                                   # = workflow.train_run into --run-dir

The flags' help text, types and defaults come from the config's dataclasses (the field docstrings
``tf-rl-text config`` prints) and the file; a bad value exits 2 with one line naming the flag.
"""
from __future__ import annotations

import dataclasses
import json
import os

from tf_rl_text.configfile import RunConfig, _merge, load_config, read_file, to_dict
from tf_rl_text.trainers import registry
from tf_rl_text.configsections import (DataSection, ModelSection, RunSection, algorithm_config_class,
                                       field_docs)
from tf_rl_text.validation import ConfigError
from tf_rl_text.rewards.registry import REWARD_ARGS

SCRIPT_FLAGS = {  # every example script takes these (its own flags come on top)
    "--seed": "run.seed",
    "--precision": "model.precision",
    "--checkpoint-every": "run.checkpoint_every",
    "--deterministic": "run.deterministic",
    "--strategy": "run.strategy",
}


RL_SCRIPT_FLAGS = {  # the policy-gradient examples (train_text_rl.py, train_ppo.py, positive_reviews.py)
    "--episodes": "run.steps",
    "--warm-start-steps": "run.warm_start_steps",
    "--batch-size": "run.batch_size",
    "--samples-per-prompt": "trainer.num_samples_per_prompt",
    "--max-new-tokens": "run.max_new_tokens",
    "--learning-rate": "trainer.learning_rate",
    "--kl-coef": "trainer.kl_coef",
}


TASK_SCRIPT_FLAGS = {  # the task examples (translation.py, summarization.py, dialogue.py)
    "--data": "data.data_dir",
    "--model": "model.path",
    "--prefix": "data.prefix",
    "--arch": "model.arch",
    "--kl-coef": "trainer.kl_coef",
    "--vocab-size": "model.vocab_size",
    "--d-model": "model.width",
    "--layers": "model.layers",
    "--warm-start-steps": "run.warm_start_steps",
    "--warm-start-lr": "run.warm_start_lr",
    "--rl-steps": "run.steps",
    "--learning-rate": "trainer.learning_rate",
    "--batch-size": "run.batch_size",
    "--samples-per-prompt": "trainer.num_samples_per_prompt",
    "--max-source-tokens": "data.max_source_tokens",
    "--max-new-tokens": "run.max_new_tokens",
    "--eval-every": "run.eval_every",
    "--train-limit": "data.limit",
    "--dev-limit": "data.dev_limit",
    "--eval-limit": "data.eval_limit",
}


def _field(raw: dict, path: str):
    """(dataclass, field name, value in ``raw``) of a flag's ``section.field`` (reward fields: no dataclass)."""
    if "." not in path:  # "algorithm"
        return None, path, raw.get(path)
    section, name = path.split(".", 1)
    classes = {"model": ModelSection, "data": DataSection, "run": RunSection}
    if section == "trainer":
        classes["trainer"] = algorithm_config_class(raw.get("algorithm") or "reinforce")
    cls = classes.get(section)
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
    if cls and name not in fields:
        raise ValueError(f"flag field {path!r}: {cls.__name__} has no field {name!r}")
    default = fields[name].default if name in fields else None
    return cls, name, (raw.get(section) or {}).get(name, default)


def flag_text(text: str, flags: dict, source: str = "") -> str:
    """``text`` (a ConfigError or a note) with the config's ``section.field`` names replaced by the script's flags."""
    import re

    if source:
        text = text.replace(f"{source}: ", "")
    inverse = {path: flag for flag, path in flags.items()}
    m = re.match(r"(\w+): (\w+)\b(.*)", text, re.S)  # "run: steps must be >= 0" (a dataclass's own message)
    if m and f"{m[1]}.{m[2]}" in inverse:
        text = inverse[f"{m[1]}.{m[2]}"] + m[3]
    for path in sorted(inverse, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(path)}\b", inverse[path], text)
    return text


def script_args(config: str, flags: dict, argv=None, description: str = "", name: str | None = None,
                skip_warm_start_with_model: bool = False):
    """``(cfg, args)`` of an example script whose flags are fields of ``config`` (a file in configs/).

    ``flags`` maps a flag to a field, ``{"--episodes": "run.steps", "--kl-coef": "trainer.kl_coef"}``
    (plus :data:`SCRIPT_FLAGS`); the help text, type and default of each come from the config's
    dataclasses (the field docstrings, as ``tf-rl-text config`` prints them) and the file, and a
    given flag is a ``--set`` of its field, so the script runs exactly ``tf-rl-text train CONFIG
    --set ...``. Every script also takes ``--quick`` (the config's quick section), ``--run-dir``,
    ``--output``, ``--metrics-file`` and ``--no-progress``. A bad value exits 2 with one line
    naming the flag. ``skip_warm_start_with_model``: ``--model`` sets ``run.warm_start_steps``
    to 0 unless that flag is given too.
    """
    import argparse

    flags = {**flags, **{k: v for k, v in SCRIPT_FLAGS.items() if k not in flags}}
    name = name or os.path.splitext(os.path.basename(config))[0]
    base = read_file(config)
    quick = _merge(base, base.get("quick") or {})
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f"Every flag is a field of {os.path.relpath(config)} (the same run as "
                                     f"`tf-rl-text train {os.path.relpath(config)} --set FIELD=VALUE`).")
    parser.add_argument("--quick", action="store_true", help="a smoke run: the config's quick section")
    for flag, path in flags.items():
        cls, field, default = _field(base, path)
        quick_default = _field(quick, path)[2]
        doc = field_docs(cls).get(field, "") if cls else REWARD_ARGS.get(field, "") + (
            "The algorithm: one of " + ", ".join(registry.names()) + "." if path == "algorithm" else "")
        shown = f"{default}" + (f", --quick {quick_default}" if quick_default != default else "")
        if flag == "--model" and skip_warm_start_with_model:
            doc += " Given, the warm start is skipped unless --warm-start-steps is given too."
        help_text = f"{doc} [{path}; default {shown}]".strip().replace("%", "%%")
        if cls and isinstance(default, bool) and default is False:
            parser.add_argument(flag, action="store_const", const="true", default=None, help=help_text)
        else:
            parser.add_argument(flag, default=None, metavar=field.upper(), help=help_text)
    root = os.path.dirname(os.path.dirname(os.path.abspath(config)))
    parser.add_argument("--run-dir", default=os.path.join("runs", name),
                        help=f"run folder: checkpoints/, tensorboard/, metrics.jsonl, summary.json (default runs/{name}). "
                             "Rerunning the same command resumes from its last checkpoint (after a crash or Ctrl-C)")
    parser.add_argument("--output", default=os.path.join(root, "saved_models", name),
                        help=f"folder the SavedModel is exported to (default saved_models/{name})")
    parser.add_argument("--metrics-file", default=None, help="also write the JSON summary here")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    dest = {flag: flag.lstrip("-").replace("-", "_") for flag in flags}
    given = {flag: getattr(args, dest[flag]) for flag in flags if getattr(args, dest[flag]) is not None}
    sets = [f"{flags[flag]}={value}" for flag, value in given.items()]
    if skip_warm_start_with_model and given.get("--model") and "run.warm_start_steps" not in (flags[f] for f in given):
        sets.append("run.warm_start_steps=0")
    try:
        cfg = load_config(config, sets, quick=args.quick, blame_sets=False)  # flag_text names the flag instead
    except ConfigError as e:
        parser.error(flag_text(str(e), flags, config))
    args.flags = flags
    return cfg, args


def run_script(cfg: RunConfig, args, metrics=None, num_samples: int = 4) -> dict:
    """What an example script does with :func:`script_args`' ``(cfg, args)``: ``workflow.train_run`` into
    ``--run-dir`` (its default folder is scratch space: a finished or different run there is moved aside),
    exporting to ``--output`` and loading the export back; then ``--metrics-file`` gets the summary plus
    ``metrics(summary)`` (the script's own keys). A mistake found while building exits with one line."""
    import sys

    from tf_rl_text.workflow.train import train_run

    default_dir = os.path.join("runs", os.path.splitext(os.path.basename(cfg.source))[0])
    try:
        summary = train_run(cfg, args.run_dir, progress=not args.no_progress, export_dir=args.output,
                            scratch=os.path.abspath(args.run_dir) == os.path.abspath(default_dir), load_back=True,
                            num_samples=num_samples, log=lambda text: print(flag_text(text, args.flags), flush=True))
    except ConfigError as e:
        sys.exit("error: " + flag_text(str(e), args.flags, cfg.source))
    summary.update(metrics(summary) if metrics else {})
    if args.metrics_file and summary["is_chief"]:
        write_json(summary, args.metrics_file)
    print(f"done in {summary['wall_time_s']} s; run folder {args.run_dir}, SavedModel {summary['export']}")
    return summary


def write_json(obj, path: str) -> None:
    """``obj`` as indented JSON at ``path``, its folder made: a script's metrics or results file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)


def example_settings(path: str, quick: bool = False) -> dict:
    """The settings of a script that is not a ``tf-rl-text train`` run (examples/tool_use.yaml...): the YAML
    file's fields, with its ``quick:`` section merged over them when ``quick``."""
    import yaml

    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    settings = {k: v for k, v in raw.items() if k != "quick"}
    if quick:
        settings.update(raw.get("quick") or {})
    return settings


def task_script(config: str, description: str, argv=None) -> dict:
    """A task example (translation.py, summarization.py, dialogue.py): ``config`` run with the flags of
    :data:`TASK_SCRIPT_FLAGS`; the metrics file names the task metric
    (``run.keep_best``) before RL (after the warm start) and after, on the test set."""
    cfg, args = script_args(config, TASK_SCRIPT_FLAGS, argv, description)
    metric = cfg.run.keep_best

    def metrics(s):
        before, after = s.get(f"{metric}_before"), s[f"{metric}_after"]
        print(f"{metric}: {before if before is None else f'{before:.4f}'} -> {after:.4f} over {cfg.run.steps} RL "
              f"steps (kept {s['kept']})")
        return {"task": cfg.data.source, "metric_name": metric, "metric_before": before, "metric_after": after,
                "metric_gain": None if before is None else after - before, "saved_model": s["export"],
                "precision": cfg.model.precision, "seed": cfg.run.seed, "dev_is_test": s["dev_is_test"],
                "settings": to_dict(cfg),
                "samples_after": [{"source": x["prompt"], "output": x["completion"]} for x in s["samples"]]}
    return run_script(cfg, args, metrics, num_samples=3)


__all__ = ["SCRIPT_FLAGS", "TASK_SCRIPT_FLAGS", "script_args", "flag_text", "run_script", "task_script", "write_json",
           "example_settings"]
