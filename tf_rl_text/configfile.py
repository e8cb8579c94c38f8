"""Run configuration files (YAML or JSON) for ``tf-rl-text train``, mapped onto dataclasses.

A config file has these sections (all optional but ``algorithm``)::

    algorithm: reinforce          # reinforce | a2c | ppo | q_learning | grpo | online_dpo | dpo
    model:   {...}                # ModelSection: the embedded default, a from-scratch seq2seq, or a local folder
    data:    {...}                # DataSection: the embedded prompts, a jsonl/csv file, or a task's data
    reward:  {name: ..., ...}     # a reward by name with its arguments; "composite" sums components
    trainer: {...}                # the algorithm's config dataclass (ReinforceConfig, PPOConfig, ...)
    run:     {...}                # RunSection: steps, warm start, batch size, max_new_tokens, seed, ...
    quick:   {run: {...}, ...}    # merged over the sections above by ``--quick`` (a smoke run)
    real_data: {run: {...}, ...}  # merged when data.data_dir is set and not --quick (sizes for real data)

Field types come from the dataclasses through transformers' ``HfArgumentParser`` (the same
parser that reads ``TrainingArguments``); the field docstrings are the help text
(``tf-rl-text config ALGO``). Every mistake -- an unknown field, a wrong type, a bad value, a
missing file -- raises :class:`ConfigError` with one line naming the field, the value and the file.

Paths: ``$TF_RL_TEXT_DATA`` expands to the shared real-data folder
(:func:`tf_rl_text.data.shared_data_dir`); a relative path in a file is relative to that file,
one given with ``--set`` to the working directory.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os

from tf_rl_text.rewards import registry as reward_registry
from tf_rl_text.data.tasks import TASKS
from tf_rl_text.trainers import registry
from tf_rl_text.configsections import (SECTIONS, DataSection, ModelSection, RunSection,
                                       algorithm_config_class, build_section)
from tf_rl_text.validation import DATA_ENV_VAR, ConfigError

# --------------------------------------------------------------------------- the whole file
@dataclasses.dataclass
class RunConfig:
    """A validated config: the algorithm, its trainer config and the other sections."""

    algorithm: str
    trainer: object
    model: ModelSection
    data: DataSection
    reward: dict
    run: RunSection
    source: str = ""
    raw: dict = dataclasses.field(default_factory=dict)
    """The merged sections as read (after --set and --quick), written to RUN_DIR/config.yaml."""


def read_file(path: str) -> dict:
    """The mapping in a YAML (.yaml/.yml) or JSON (.json) file; ConfigError on a missing or malformed file."""
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} not found; pass a YAML or JSON file (see configs/)")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        content = json.loads(text, object_pairs_hook=_json_no_duplicates(path)) if path.endswith(".json") \
            else yaml.load(text, Loader=_unique_key_loader(path))  # noqa: S506 - a SafeLoader subclass
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        first = " ".join(str(e).split())
        raise ConfigError(f"{path}: not valid {'JSON' if path.endswith('.json') else 'YAML'}: {first}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of sections ({', '.join(SECTIONS)}), got {content!r}")
    return content


def _unique_key_loader(path: str):
    """A ``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently, so a second ``trainer:`` block would replace the first without a word)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError:
                    continue  # an unhashable key: SafeLoader's own error names it
                if key in seen:
                    raise ConfigError(f"{path}, line {key_node.start_mark.line + 1}: {key!r} is given twice (first on "
                                      f"line {seen[key] + 1}); YAML would keep only the last one. Merge the two into "
                                      "one")
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def _json_no_duplicates(path: str):
    def hook(pairs):
        out = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f"{path}: {key!r} is given twice in one object; JSON would keep only the last one. "
                                  "Merge the two into one")
            out[key] = value
        return out

    return hook


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "reward":
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _section_fields(algorithm):
    out = {"model": ModelSection, "data": DataSection, "run": RunSection}
    if algorithm in registry.names():
        out["trainer"] = algorithm_config_class(algorithm)
    return {s: {f.name for f in dataclasses.fields(c) if f.init} for s, c in out.items()}


def apply_sets(raw: dict, sets, source: str) -> dict:
    """``--set section.field=value`` (or ``field=value`` when only one section has that field), value parsed as YAML."""
    import yaml

    raw = copy.deepcopy(raw)
    for item in sets or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set run.steps=10")
        key, text = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if value is not None and isinstance(value, str) and any(key.endswith(p) for p in _PATH_FIELDS):
            value = os.path.abspath(os.path.expandvars(_expand_data_var(value)))  # relative to the working directory
        if key == "algorithm":
            raw["algorithm"] = value
            continue
        if "." in key:
            section, field = key.split(".", 1)
        else:
            owners = [s for s, names in _section_fields(raw.get("algorithm")).items() if key in names]
            if len(owners) != 1:
                why = "is in no section" if not owners else f"is in several sections ({', '.join(owners)}); prefix one"
                raise ConfigError(f"--set {key}={text}: unknown field {key!r}: it {why} (e.g. --set run.steps=10; "
                                  f"list the fields with `tf-rl-text config {raw.get('algorithm') or 'ALGO'}`)")
            section, field = owners[0], key
        if section not in SECTIONS or section in ("algorithm", "quick"):
            raise ConfigError(f"--set {key}={text}: unknown section {section!r}; sections: model, data, reward, trainer, run")
        target = raw.setdefault(section, {}) or {}
        raw[section] = target
        if not isinstance(target, dict):
            raise ConfigError(f"--set {key}: section {section!r} of {source} is not a mapping")
        target[field] = value
    return raw


_PATH_FIELDS = ("model.path", "data.path", "data.data_dir", "reward.model", "reward.train_data", "reward.train_pairs",
                "reward.output", "reward.path")


DATA_VAR = DATA_ENV_VAR  # defined once, in validation.py


def data_folder():
    """The real-data folder: ``$TF_RL_TEXT_DATA``, else the package's default guess (None when there is none)."""
    folder = os.environ.get(DATA_VAR)
    if folder:
        return folder
    try:
        from tf_rl_text.data import shared_data_dir

        return shared_data_dir()
    except (FileNotFoundError, ValueError, ImportError):
        return None


def _expand_data_var(value: str) -> str:
    tokens = ("${" + DATA_VAR + "}", "$" + DATA_VAR)
    if not any(t in value for t in tokens):
        return value
    folder = data_folder()
    if not folder:
        raise ConfigError(f"{value!r} names ${DATA_VAR}, which is not set: set {DATA_VAR} to the folder that holds "
                          "the real data sets, or give the path itself")
    folder = os.path.abspath(os.path.expanduser(folder))  # a relative $TF_RL_TEXT_DATA: from the working directory
    for token in tokens:
        value = value.replace(token, folder)
    return value


def _resolve_path(value, base_dir):
    if not isinstance(value, str) or not value:
        return value
    try:
        value = _expand_data_var(value)
    except ConfigError:  # $TF_RL_TEXT_DATA unset: said by _check_exists if the path is still used after --set
        return value
    value = os.path.expanduser(os.path.expandvars(value))
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))


def _resolve_paths(raw: dict, base_dir: str) -> dict:
    raw = copy.deepcopy(raw)
    if isinstance(raw.get("quick"), dict):  # the quick section's paths too
        raw["quick"] = _resolve_paths(raw["quick"], base_dir)
    for section, field in (("model", "path"), ("data", "path"), ("data", "data_dir"), ("data", "preferences")):
        if isinstance(raw.get(section), dict) and field in raw[section]:
            raw[section][field] = _resolve_path(raw[section][field], base_dir)

    def fix_reward(r):
        if isinstance(r, dict):
            for k in ("model", "train_data", "train_pairs", "output", "path"):
                if k in r:
                    r[k] = _resolve_path(r[k], base_dir)
            for c in r.get("components") or []:
                fix_reward(c)
    fix_reward(raw.get("reward"))
    return raw


def _check_exists(cfg: RunConfig):
    src = cfg.source
    checks = [("model.path", cfg.model.path), ("data.path", cfg.data.path), ("data.data_dir", cfg.data.data_dir)]

    def reward_paths(r, where):
        for k in ("model",) if "model" in r else ("train_data",):  # with a trained model, train_data is not read
            if k in r:
                checks.append((f"{where}.{k}", r[k]))
        if "train_pairs" in r:
            checks.append((f"{where}.train_pairs", r["train_pairs"]))
        for i, c in enumerate(r.get("components") or []):
            reward_paths(c, f"{where}.components[{i}]")
    reward_paths(cfg.reward, "reward")
    if cfg.model.path and not os.path.isdir(cfg.model.path):
        raise ConfigError(f"{src}: model.path {cfg.model.path!r} is not a folder; pass a local folder written by "
                          "save_pretrained")
    for where, path in checks:
        if path and DATA_VAR in str(path):
            try:
                _expand_data_var(path)
            except ConfigError as e:
                raise ConfigError(f"{src}: {where}: {e}") from None
        if path and not os.path.exists(path):
            hint, folder = "", data_folder()
            if folder and str(path).startswith(folder):
                hint = (f" (the real-data folder is {folder}: set {DATA_VAR} to the folder that holds the data "
                        "sets, or point the field elsewhere)")
            if not hint:
                hint = ("; correct the path (relative to the config file, or to the working directory for --set) "
                        "or create it")
            raise ConfigError(f"{src}: {where} {path!r} does not exist{hint}")
    if cfg.model.path and not os.path.isfile(os.path.join(cfg.model.path, "config.json")):
        raise ConfigError(f"{src}: model.path {cfg.model.path!r} has no config.json, so it is not a saved model; "
                          "pass a local folder written by save_pretrained")


def load_config(path: str, sets=None, quick: bool = False, blame_sets: bool = True) -> RunConfig:
    """Read, merge (``--set``, then the ``quick`` section with ``quick=True``) and validate a config file.
    A bad value that came from ``--set`` is blamed on that ``--set``, not on the file (``blame_sets=False``:
    leave the message as it is, e.g. for an example script whose flags became the sets)."""
    try:
        return _load_config(path, sets, quick)
    except ConfigError as e:
        message = str(e)
        if not blame_sets or not message.startswith(f"{path}: "):
            raise
        body = message[len(path) + 2:]
        for item in sets or []:
            key = item.split("=", 1)[0].strip()
            section, _, field = key.rpartition(".")
            named = (f"{key} " in body or f"{key}," in body or f"{key}:" in body
                     or (section and body.startswith(f"{section}: {field} ")) or (not section and f" {field} " in body))
            if named:
                raise ConfigError(f"--set {item}: {body} (the value comes from --set, not from {path})") from None
        raise


def _load_config(path: str, sets=None, quick: bool = False) -> RunConfig:
    raw = _resolve_paths(read_file(path), os.path.dirname(os.path.abspath(path)))
    for key in raw:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), SECTIONS, 1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"{path}: unknown section {key!r}; {hint}sections: {', '.join(SECTIONS)}")
    parts = {}
    for name in ("quick", "real_data"):
        parts[name] = raw.pop(name, None) or {}
        if not isinstance(parts[name], dict):
            raise ConfigError(f"{path}: section {name!r} must be a mapping of sections, got {parts[name]!r}")
        for key in parts[name]:
            if key not in SECTIONS or key in ("quick", "real_data"):
                raise ConfigError(f"{path}: unknown section {name}.{key}; sections: {', '.join(SECTIONS[:-2])}")
    if quick:
        raw = _merge(raw, parts["quick"])
    elif parts["real_data"] and (apply_sets(raw, sets, path).get("data") or {}).get("data_dir"):
        raw = _merge(raw, parts["real_data"])  # sizes for real data (data.data_dir set here or by --set)
    raw = apply_sets(raw, sets, path)
    algorithm = raw.get("algorithm")
    if algorithm not in registry.names():  # read now: an algorithm registered after import counts
        raise ConfigError(f"{path}: algorithm must be one of {list(registry.names())}, got {algorithm!r}")
    source = (raw.get("data") or {}).get("source", DataSection.source)
    task = TASKS.get(source)  # a config without a reward (or eval_metrics) gets its task's
    reward = raw.get("reward") or dict(task.reward if task else {"name": "sentiment"})
    reward_registry.check_spec(reward, path)
    if task is not None and "eval_metrics" not in (raw.get("run") or {}):
        raw = dict(raw, run=dict(raw.get("run") or {}, eval_metrics=task.metrics))
    cfg = RunConfig(
        algorithm=algorithm,
        trainer=build_section(algorithm_config_class(algorithm), raw.get("trainer"), "trainer", path),
        model=build_section(ModelSection, raw.get("model"), "model", path),
        data=build_section(DataSection, raw.get("data"), "data", path),
        reward=reward,
        run=build_section(RunSection, raw.get("run"), "run", path),
        source=path,
        raw=raw,
    )
    if task is not None and task.source_text and cfg.model.kind == "causal" and not cfg.model.path \
            and not cfg.model.keras_hub:
        raise ConfigError(f"{path}: data.source {cfg.data.source!r} needs model.kind seq2seq (or a model.path), "
                          "got model.kind 'causal' (the embedded GPT-2 knows only the embedded corpus)")
    _check_exists(cfg)
    return cfg


def to_dict(cfg: RunConfig) -> dict:
    """The config as it ran: every section with every field (defaults filled in)."""
    return {"algorithm": cfg.algorithm, "model": dataclasses.asdict(cfg.model), "data": dataclasses.asdict(cfg.data),
            "reward": cfg.reward, "trainer": dataclasses.asdict(cfg.trainer), "run": dataclasses.asdict(cfg.run)}


__all__ = ["RunConfig", "load_config", "to_dict", "read_file", "apply_sets", "data_folder"]
