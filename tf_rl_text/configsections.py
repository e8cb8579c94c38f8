"""The sections of a run config (``model``, ``data``, ``run``) as dataclasses, and reading any config
dataclass (a section or an algorithm's trainer config) from a mapping: field types through
transformers' ``HfArgumentParser``, field docstrings as help text (``tf-rl-text config ALGO``), and a
:class:`~tf_rl_text.validation.ConfigError` naming the field, the value and the file for every mistake.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import inspect
import json
import textwrap

from tf_rl_text.data import tasks
from tf_rl_text.trainers import registry
from tf_rl_text.rewards import registry as reward_registry
from tf_rl_text.validation import ConfigError


def data_sources() -> tuple:
    """What ``data.source`` accepts: every task of :data:`tf_rl_text.data.tasks.TASKS`, and ``file``."""
    return (*tasks.TASKS, "file")


SECTIONS = ("algorithm", "model", "data", "reward", "trainer", "run", "quick", "real_data")


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
    keras_hub: str | None = None
    """A KerasHub (Keras 3) causal LM instead of a Hugging Face one: gpt2 or llama = built from layers and width
    over the embedded tokenizer; a local preset folder (save_to_preset) or a preset name in KerasHub's cache =
    loaded with keras_hub.models.CausalLM.from_preset. null = Hugging Face (path / kind)."""

    def __post_init__(self):
        _choice("kind", self.kind, ("causal", "seq2seq"))
        if self.keras_hub is not None and (self.path or self.kind != "causal"):
            raise ValueError(f"model.keras_hub={self.keras_hub!r} names the policy already; leave model.path null and "
                             f"model.kind causal (got path={self.path!r}, kind={self.kind!r})")
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
    """A task (tf_rl_text.data.TASKS: prompts = the embedded prompts; translation, summarization, dialogue = a
    task's embedded data, or its real data from data_dir), or file = a jsonl/csv file (path)."""
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
        _choice("source", self.source, data_sources())  # read now: a task registered after import counts
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
    lines.extend(reward_registry.describe())
    return "\n".join(lines)


__all__ = ["SECTIONS", "data_sources", "ModelSection", "DataSection", "RunSection",
           "field_docs", "build_section", "algorithm_config_class", "describe"]
