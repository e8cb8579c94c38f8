"""What ``tf-rl-text`` does with a config: build the agent, data, reward and trainer; run it into
a run folder; export, evaluate and plot. The CLI (``tf_rl_text/cli.py``) is a thin layer over this.

Run folder (RUN_DIR)::

    config.yaml       the config as it ran (every field, --set and --quick applied)
    checkpoints/      the trainer base's checkpoints (ckpt-STEP): the whole run state - model, optimizer,
                      reference model, value head, RNGs, the env's prompt order, the metrics history -
                      so rerunning `train` with the same --run-dir resumes exactly
    tokenizer/        the policy's tokenizer (a from-scratch seq2seq tokenizer is trained on the data)
    tensorboard/      namespaced scalars per step (tf_rl_text.callbacks.TensorBoard: rollout/reward_mean,
                      objective/kl, loss/policy...; tensorboard --logdir RUN_DIR/tensorboard)
    metrics.jsonl     one JSON object per step (tf_rl_text.callbacks.JSONLLogger): "step" and the trainer's
                      statistics (reward_mean, kl, policy_loss, ...)
    export/           the final SavedModel (tf_rl_text.load(RUN_DIR/export))
    plots/training.png  reward, KL and losses against step
    summary.json      the final evaluation
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from tf_rl_text.configfile import TASK_SOURCES, ConfigError, RunConfig, to_dict

# --------------------------------------------------------------------------- data
def load_data(cfg: RunConfig):
    """(train, dev, test, note): PromptDatasets. ``dev`` chooses the kept checkpoint (run.keep_best) and
    is ``test`` itself when the data has no dev split; without references all three are the prompts."""
    from tf_rl_text import data
    from tf_rl_text.defaults import load_prompts

    d = cfg.data
    if d.source == "prompts":
        ds = data.PromptDataset([d.prefix + p for p in load_prompts()], None, "embedded prompts")
        train, dev, test, note = ds, ds, ds, f"the {len(ds)} embedded prompts"
    elif d.source == "file":
        fmt = d.format or ("csv" if d.path.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")) else "jsonl")
        loader = data.load_csv if fmt == "csv" else data.load_jsonl
        ds = loader(d.path, prompt_field=d.prompt_field, reference_field=d.reference_field, prefix=d.prefix)
        train, dev = ds.split(1.0 - d.eval_fraction, shuffle=True, seed=0) if ds.has_references else (ds, ds)
        test, note = dev, f"{d.path}: {len(ds)} prompts"
    else:
        try:
            train, dev, test, note = data.task_splits(d.source, d.data_dir, d.eval_fraction)
        except (ValueError, FileNotFoundError) as e:
            raise ConfigError(f"{cfg.source}: data.data_dir {d.data_dir!r}: {e}") from None
        if d.prefix:
            same = dev is test
            train, dev, test = (x.map_prompts(lambda p: d.prefix + p) for x in (train, dev, test))
            dev = test if same else dev
    same = dev is test
    if d.limit is not None:
        train = train.take(min(d.limit, len(train)))
    if d.eval_limit is not None:
        test = test.take(min(d.eval_limit, len(test)))
    dev = test if same else (dev.take(min(d.dev_limit, len(dev))) if d.dev_limit else dev)
    if not len(train):
        raise ConfigError(f"{cfg.source}: data ({d.source}) holds no training examples")
    return train, dev, test, note


# --------------------------------------------------------------------------- agent
def build_agent(cfg: RunConfig, train, tokenizer_dir: str | None = None):
    """The RLAgent of the config: a local folder, the embedded GPT-2, or a from-scratch seq2seq model."""
    from tf_rl_text.agent import RLAgent
    from tf_rl_text.defaults import default_model, default_tokenizer
    from tf_rl_text.precision import with_precision
    from tf_rl_text._compat import keras

    m, seed = cfg.model, cfg.run.seed
    keras.utils.set_random_seed(seed)
    if m.path:
        from transformers import AutoConfig, AutoTokenizer, TFAutoModelForCausalLM, TFAutoModelForSeq2SeqLM

        config = AutoConfig.from_pretrained(m.path)
        cls = TFAutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else TFAutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(m.path)
        model = cls.from_pretrained(m.path)
    elif m.kind == "causal":
        tokenizer = default_tokenizer()
        model = default_model(tokenizer, n_layer=m.layers, n_embd=m.width, n_head=max(1, m.width // 16), seed=seed)
    else:
        from tf_rl_text.defaults import default_seq2seq_model, train_tokenizer

        max_positions = max(cfg.data.max_source_tokens, cfg.run.max_new_tokens) + 8
        if tokenizer_dir and os.path.isdir(tokenizer_dir):  # the run's own tokenizer (export, resume)
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        else:
            tokenizer = train_tokenizer(train.prompts + train.first_references(), vocab_size=m.vocab_size,
                                        model_max_length=max_positions)
        model = default_seq2seq_model(tokenizer, arch=m.arch, d_model=m.width, layers=m.layers,
                                      heads=max(1, m.width // 32), max_positions=max_positions, seed=seed)
    if m.precision != "float32":
        model = with_precision(model, m.precision)
    return RLAgent(model, tokenizer, seed=seed)


# --------------------------------------------------------------------------- reward
_CLASSIFIER_TRAINING = ("train_data", "train_size", "val_size", "epochs", "max_length", "learning_rate", "output",
                        "dynamic_padding")


def _classifier_reward(args, cfg, log):
    """A ClassifierReward over a trained folder (``model``) or MiniLM fine-tuned on ``train_data``;
    ``reward.info`` says where it came from and its held-out accuracy."""
    from tf_rl_text.rewards import ClassifierReward, load_labelled_texts, minilm_path, train_reward_model

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
        log(f"reward model: {folder} (held-out accuracy "
            f"{'not recorded' if accuracy is None else f'{accuracy:.3f}'})")
        reward.info = {"reward_model": os.path.abspath(folder), "rm_val_accuracy": accuracy}
        return reward
    if "train_data" not in args:
        raise ConfigError(f"{cfg.source}: reward classifier needs model: FOLDER (a trained classifier) or "
                          "train_data: FOLDER|FILE (labelled sentences to train one on)")
    path = args.pop("train_data")
    try:
        texts, labels = load_labelled_texts(path)
    except (ValueError, FileNotFoundError) as e:
        raise ConfigError(f"{cfg.source}: reward.train_data {path!r}: {e}") from None
    train_size, val_size, epochs = args.pop("train_size", None), args.pop("val_size", None), args.pop("epochs", 3)
    max_length, lr, output = args.pop("max_length", 64), args.pop("learning_rate", 5e-5), args.pop("output", None)
    dynamic_padding = args.pop("dynamic_padding", True)
    if args:
        raise ConfigError(f"{cfg.source}: reward classifier: unknown argument(s) {sorted(args)}; known: model, "
                          f"{', '.join(_CLASSIFIER_TRAINING)}, label, include_prompt")
    order = np.random.default_rng(cfg.run.seed).permutation(len(texts))
    n_val = len(texts) // 5  # the same held-out 20% whatever the training size
    val, train = order[:n_val], order[n_val:]
    if train_size:
        train = train[: int(train_size)]
    val = val[: int(val_size)] if val_size else val
    log(f"reward model: MiniLM (all-MiniLM-L6-v2) + a classifier head on {len(train)} labelled sentences, "
        f"{epochs} epoch(s); held out: {len(val)}")
    result = train_reward_model(
        minilm_path(), ([texts[i] for i in train], [labels[i] for i in train]),
        validation_data=([texts[i] for i in val], [labels[i] for i in val]), epochs=int(epochs), batch_size=32,
        learning_rate=float(lr), max_length=int(max_length), output_dir=output, seed=cfg.run.seed, verbose=0,
        dynamic_padding=bool(dynamic_padding))
    log(f"reward model held-out accuracy {result.val_accuracy:.3f} ({result.num_val} sentences; "
        f"{result.train_time_s:.0f} s)" + (f" -> {output}" if output else ""))
    reward = ClassifierReward(result.model, result.tokenizer, label=label, include_prompt=include_prompt)
    reward.info = {"reward_model": result.output_dir, "rm_val_accuracy": result.val_accuracy,
                   "rm_num_train": result.num_train, "rm_num_val": result.num_val}
    return reward


def _exported_reward_model(args, cfg, log):
    """A pairwise reward model exported by ``export_reward_model``, loaded with ``tf_rl_text.load``."""
    import tf_rl_text
    from tf_rl_text.rewards.pairwise import LoadedRewardModel

    args = dict(args)
    path = args.pop("path", None)
    if args or not path:
        raise ConfigError(f"{cfg.source}: reward reward_model takes path: FOLDER (an exported reward model) and "
                          f"nothing else, got {sorted(args) or 'no path'}")
    if not os.path.isdir(path):
        raise ConfigError(f"{cfg.source}: reward.path {path!r} is not a folder; export a reward model there first "
                          "(train_pairwise_reward_model(..., output_dir=FOLDER), docs/preferences.md)")
    try:
        reward = tf_rl_text.load(path)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"{cfg.source}: reward.path: {e}") from None
    if not isinstance(reward, LoadedRewardModel):
        raise ConfigError(f"{cfg.source}: reward.path {path!r} holds a {type(reward).__name__}, not a reward model "
                          "(export_reward_model writes one)")
    accuracy = reward.metadata.get("history", [{}])[-1].get("val_accuracy")
    log(f"reward model: {path} (pairwise; held-out accuracy {'not recorded' if accuracy is None else f'{accuracy:.3f}'})")
    reward.info = {"reward_model": os.path.abspath(path), "rm_val_accuracy": accuracy}
    return reward


def build_reward(spec: dict, cfg: RunConfig, log=print):
    """A reward function from its config mapping ({name: ..., ...arguments})."""
    from tf_rl_text import rewards

    args = {k: v for k, v in spec.items() if k not in ("name", "weight")}
    name = spec["name"]
    if ":" in name:
        return import_reward(name, args, cfg.source)
    try:
        if name == "sentiment":
            if args:
                raise TypeError(f"sentiment takes no arguments, got {sorted(args)}")
            return rewards.default_sentiment_reward()
        if name == "lexicon":
            return rewards.LexiconReward(**args)
        if name == "bleu":
            return rewards.BleuReward(**args)
        if name == "rouge":
            return rewards.RougeReward(**args)
        if name == "similarity":
            return rewards.SimilarityReward(**args)
        if name == "classifier":
            return _classifier_reward(args, cfg, log)
        if name == "reward_model":
            return _exported_reward_model(args, cfg, log)
        components = {}
        weights = {}
        for i, c in enumerate(args.pop("components")):
            key = f"{c['name']}_{i}" if c["name"] in components else c["name"]
            components[key], weights[key] = build_reward(c, cfg, log), float(c.get("weight", 1.0))
        return rewards.CompositeReward(components, weights=weights, **args)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cfg.source}: reward {name}: {e}") from None


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


def zero_reward(completions, prompts=None, references=None):
    """The reward of a rebuilt run that only exports (the real one is not needed, nor trained again)."""
    return [0.0] * len(completions)


# --------------------------------------------------------------------------- trainer
def upbeat_demonstrations(reward_fn, count, prompt_words=3):
    """(prompts, completions): corpus sentences the reward scores > 0, split after the first words."""
    from tf_rl_text.defaults import load_corpus

    prompts, completions = [], []
    for sentence in load_corpus():
        words = sentence.split()
        if len(words) <= prompt_words + 1:
            continue
        prompt, rest = " ".join(words[:prompt_words]), " " + " ".join(words[prompt_words:])
        if reward_fn([rest], [prompt], None)[0] > 0:
            prompts.append(prompt)
            completions.append(rest)
        if len(prompts) == count:
            break
    return prompts, completions


@dataclasses.dataclass
class Built:
    agent: object
    trainer: object
    train: object
    dev: object
    test: object
    reward: object
    warm_start_losses: list = dataclasses.field(default_factory=list)
    notes: dict = dataclasses.field(default_factory=dict)


def make_strategy(cfg: RunConfig):
    """The tf.distribute strategy of ``run.strategy`` (made once per process: a multi-worker one must exist
    before TensorFlow runs any op)."""
    from tf_rl_text.distribute import make_strategy as make

    key = cfg.run.strategy
    if key not in _STRATEGIES:
        try:
            _STRATEGIES[key] = make(key)
        except ValueError as e:  # multi_worker without TF_CONFIG
            raise ConfigError(f"{cfg.source}: run.strategy: {e}") from None
    return _STRATEGIES[key]


_STRATEGIES = {}


def build(cfg: RunConfig, run_dir: str | None = None, warm_start: bool = True, reward=True, progress=True, log=print,
          resume: bool = False):
    """Agent, data, reward and trainer of ``cfg``; the warm start runs unless ``warm_start=False``
    (a resumed run or an export restores the weights from the checkpoint instead).

    ``resume=True``: the trainer is built with ``run_dir=run_dir`` (and ``run.checkpoint_every``),
    so it restores the run's latest checkpoint (weights, optimizer, RNGs, env order, history...)
    at construction and :meth:`train` checkpoints into ``run_dir/checkpoints``. Otherwise the
    trainer has no run folder (``run_dir`` only locates the run's tokenizer)."""
    from tf_rl_text.env import TextGenerationEnv
    from tf_rl_text.defaults import load_corpus
    from tf_rl_text.trainers.mle import fit_pairs, warm_start as mle_warm_start

    strategy = make_strategy(cfg)
    train, dev, test, data_note = load_data(cfg)
    same = dev is test
    log(f"data: {data_note}; train {len(train)}, " + (f"held-out {len(test)}" if same else
                                                       f"dev {len(dev)} (chooses the checkpoint), test {len(test)}"))
    with strategy.scope():  # the model's variables belong to the strategy (docs/distributed.md)
        agent = build_agent(cfg, train, os.path.join(run_dir, "tokenizer") if run_dir else None)
    model = agent.model
    model_note = (f"{type(model).__name__} " + (f"from {cfg.model.path}" if cfg.model.path else "from scratch")
                  + f", {model.count_params() / 1e6:.2f}M parameters, vocabulary {len(agent.tokenizer)}")
    log(f"model: {model_note}")
    tok, r = agent.tokenizer, cfg.run
    if agent.is_encoder_decoder or cfg.data.source in TASK_SOURCES:
        train, test = (x.truncate_prompts(tok, cfg.data.max_source_tokens) for x in (train, test))
        dev = test if same else dev.truncate_prompts(tok, cfg.data.max_source_tokens)
    reward_fn = build_reward(cfg.reward, cfg, log) if reward else zero_reward
    try:  # before the warm start: a prompt that does not fit the model's context is a config mistake
        if train.has_references or agent.is_encoder_decoder:
            env = train.to_env(tok, reward_fn, batch_size=r.batch_size, max_new_tokens=r.max_new_tokens,
                               encoder_decoder=agent.is_encoder_decoder, seed=r.seed,
                               context_length=agent.context_length, reward_timeout_s=r.reward_timeout_s)
        else:
            env = TextGenerationEnv(train.prompts, tok, reward_fn=reward_fn, batch_size=r.batch_size,
                                    max_new_tokens=r.max_new_tokens, seed=r.seed, reward_timeout_s=r.reward_timeout_s)
    except ValueError as e:
        raise ConfigError(f"{cfg.source}: run.max_new_tokens {r.max_new_tokens}: {e}") from None
    losses = []
    if warm_start and r.warm_start_steps:
        t0 = time.time()
        if train.has_references:
            losses = fit_pairs(agent, train.prompts, train.first_references(), steps=r.warm_start_steps,
                               batch_size=2 * r.batch_size, learning_rate=r.warm_start_lr,
                               max_prompt_tokens=cfg.data.max_source_tokens, max_target_tokens=r.max_new_tokens,
                               seed=r.seed, progress=progress, strategy=strategy)
        else:
            losses = mle_warm_start(agent, load_corpus(), steps=r.warm_start_steps, learning_rate=r.warm_start_lr,
                                    seed=r.seed, progress=progress, strategy=strategy)
        log(f"warm start: token NLL {losses[0]:.2f} -> {np.mean(losses[-20:]):.2f} over {len(losses)} steps "
            f"({time.time() - t0:.0f} s)")
    try:
        from tf_rl_text.trainers import registry

        cls = registry.trainer_class(cfg.algorithm)
        kwargs = {"run_dir": run_dir, "checkpoint_every": r.checkpoint_every} if resume and run_dir else {}
        if getattr(cls, "learns_from", "env") == "pairs":  # DPO: preference pairs; the env scores evaluations
            pairs = preference_pairs(cfg, agent, train, reward_fn, run_dir, log)
            trainer = cls(agent, pairs, cfg.trainer, env=env, strategy=strategy, **kwargs)
        else:
            trainer = cls(agent, env, cfg.trainer, strategy=strategy, **kwargs)
    except ValueError as e:  # a setting that does not fit the model or the data (context length, minibatches...)
        raise ConfigError(f"{cfg.source}: {e}") from None
    if cfg.algorithm == "q_learning" and r.demonstrations and warm_start and not trainer.global_step:
        demo_prompts, demo_completions = upbeat_demonstrations(reward_fn, r.demonstrations)
        if demo_prompts:
            trainer.add_demonstrations(demo_prompts, demo_completions)
            log(f"demonstrations: {len(demo_prompts)} corpus sentences the reward scores > 0, e.g. "
                f"{demo_prompts[0]!r} -> {demo_completions[0]!r}")
    return Built(agent, trainer, train, dev, test, reward_fn, [float(x) for x in losses],
                 {"data": data_note, "model": model_note})


def preference_pairs(cfg: RunConfig, agent, train, reward_fn, run_dir, log=print):
    """The pairs a DPO run learns from: ``data.preferences`` (a jsonl), else pairs made from the reward (each
    training prompt's best against its worst of ``data.preference_samples`` samples of the warm-started model),
    written to ``run_dir/preferences.jsonl`` so a resumed run learns from the same pairs."""
    from tf_rl_text.preferences import load_preferences, make_preference_pairs

    if cfg.data.preferences:
        pairs = load_preferences(cfg.data.preferences)
        log(f"preferences: {len(pairs)} pairs from {cfg.data.preferences}")
        return pairs
    saved = os.path.join(run_dir, "preferences.jsonl") if run_dir else None
    if saved and os.path.isfile(saved):
        pairs = load_preferences(saved)
        log(f"preferences: the run's {len(pairs)} pairs from {saved}")
        return pairs
    n = cfg.data.preference_samples
    pairs = make_preference_pairs(agent, train.prompts, reward_fn, n=n, max_new_tokens=cfg.run.max_new_tokens,
                                  seed=cfg.run.seed, references=train.references if train.has_references else None,
                                  batch_size=cfg.run.batch_size)
    log(f"preferences: {len(pairs)} pairs made from the reward (best vs worst of {n} samples per prompt, "
        f"{len(train) - len(pairs)} prompts with all samples alike left out), e.g. {pairs.prompts[0]!r}: "
        f"{pairs.chosen[0]!r} over {pairs.rejected[0]!r}")
    if saved:
        os.makedirs(run_dir, exist_ok=True)
        tmp = saved + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for p, c, r in zip(pairs.prompts, pairs.chosen, pairs.rejected):
                f.write(json.dumps({"prompt": p, "chosen": c, "rejected": r}) + "\n")
        os.replace(tmp, saved)
    return pairs


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


# --------------------------------------------------------------------------- the training loop
def callbacks_for(run_dir: str) -> list:
    """The run folder's loggers: RUN_DIR/metrics.jsonl (a resumed run drops the lines past its
    checkpoint) and RUN_DIR/tensorboard (namespaced scalars: rollout/reward_mean, objective/kl...).
    The trainer adds its progress bar itself (``train(..., progress=True)``)."""
    from tf_rl_text import callbacks as cb

    return [cb.JSONLLogger(os.path.join(run_dir, "metrics.jsonl")), cb.TensorBoard(os.path.join(run_dir, "tensorboard"))]


def _keep_best(built: Built, cfg: RunConfig, before: dict, log):
    """EvalCallback on the dev set keeping the best ``run.keep_best`` (the warm start's score competes)."""
    from tf_rl_text import metrics
    from tf_rl_text.callbacks import EvalCallback, LambdaCallback

    metric, trainer = cfg.run.keep_best, built.trainer

    def score(t):
        if metric == "reward":
            refs = built.dev.references if built.dev.has_references else None
            return {metric: t.evaluate(built.dev.prompts, refs)}
        return {metric: metrics.evaluate(t.acting_agent, built.dev, metrics=[metric], max_new_tokens=cfg.run.max_new_tokens,
                                          batch_size=max(cfg.run.batch_size, 32))[metric]}

    start = before.get(metric) if built.dev is built.test and not trainer.global_step else None
    if start is None and not trainer.global_step:
        start = score(trainer)[metric]

    def report(step, logs):
        if not trainer.history:  # the warm start's score, logged at its step before any RL step
            return
        n = min(cfg.run.eval_every or cfg.run.steps, len(trainer.history)) or 1
        reward = _finite_mean([h.get("reward_mean") for h in trainer.history[-n:]])  # DPO samples nothing
        log(f"  RL step {step}: dev {metric} {logs[metric]:.4f} (best {keep.best_score:.4f} at step {keep.best_step})"
            + ("" if reward is None else f", mean sampled reward {reward:.4f}"))

    keep = EvalCallback(built.dev, metrics=score, every=cfg.run.eval_every, keep_best=metric, start_score=start,
                        evaluate_at_start=not trainer.global_step)
    return [keep, LambdaCallback(on_eval_end=report)], keep


FITTED_REWARD = 0.8
"""A mean sampled training reward (metric scale 0..1) at or above this at the first RL step means the
warm start already reproduces its training pairs."""


def rl_note(cfg: RunConfig, history, num_train: int, num_dev: int, tie: float | None = None) -> str:
    """Why a run whose RL never beat the warm start on the dev set did not help, with the run's own numbers.
    ``tie``: the one score every dev check (the warm start's included) had, when they were all equal."""
    first = history[0].get("reward_mean")  # None for DPO: it learns from pairs, it samples nothing
    lead = "Why RL did not help:"
    if tie is not None:
        why = ("so the metric could not tell them apart. Use one that can (sacrebleu, sentence_bleu or rougeL, on "
               "more dev examples)") if tie == 0 else "RL did not change the dev outputs enough to move it"
        lead += (f" RL was discarded on a tie: every dev check, the warm start's included, scored exactly {tie:.4f} on "
                 f"run.keep_best={cfg.run.keep_best}; {why}.")
    lines = [f"{lead} {'No' if tie is not None else 'no'} RL checkpoint beat the warm start on the {num_dev} held-out "
             "pairs."]
    if first is None:
        lines.append(f"{cfg.run.steps} steps at learning rate {cfg.trainer.learning_rate:g} did not carry over to the "
                     "held-out prompts: try more run.steps, a higher trainer.learning_rate, or run.eval_every.")
    elif first >= FITTED_REWARD:
        lines.append(
            f"The reward is scored on the {num_train} training pairs, and the warm start already reproduces them:"
            f"\nits sampled outputs earned a mean reward of {first:.2f} (at most 1.0) at the first RL step. Self-critical"
            f"\nREINFORCE learns from samples that beat the greedy output, and here few do, so the updates are mostly"
            f"\nnoise, and noise on {num_dev} held-out pairs lowers the metric more often than it raises it.")
        if cfg.run.warm_start_steps > 150:
            lines.append(
                "A shorter warm start (run.warm_start_steps=150 trainer.learning_rate=2e-4 run.eval_every=10) leaves RL"
                "\nroom on the training prompts, but on data this small what RL learns there barely carries over to"
                "\nheld-out pairs (docs/tasks-and-results.md). Real data (data.data_dir) gives RL more room.")
    else:
        lines.append(f"Its sampled outputs earned a mean reward of {first:.2f} on the training pairs at the first RL "
                     f"step; {cfg.run.steps} steps at learning\nrate {cfg.trainer.learning_rate:g} did not carry over "
                     "to the held-out pairs: try more run.steps, a higher trainer.learning_rate, or run.eval_every.")
    return "\n".join(lines).replace("\n", "\n  ")


# --------------------------------------------------------------------------- evaluation
def evaluate_run(built: Built, cfg: RunConfig):
    """(scores, completions) on the test set: the greedy mean reward, the sampled one (``run.eval_samples``
    completions per prompt, a fixed seed) and, with references, the text metrics of ``run.eval_metrics``."""
    from tf_rl_text import metrics

    wanted, held, trainer = cfg.run.metric_list, built.test, built.trainer
    refs = held.references if held.has_references else None
    out, completions = {}, None
    if "reward" in wanted:
        out["reward"] = trainer.evaluate(held.prompts, refs)
    if cfg.run.eval_samples:
        rollout = trainer.env.rollout(trainer.acting_agent, num_samples=cfg.run.eval_samples, seed=12345,
                                      prompts=list(held.prompts), references=refs)
        out["sampled_reward"] = float(np.mean(rollout.rewards))
    text = [m for m in wanted if m != "reward"]
    if text and held.has_references:
        scores, completions = metrics.evaluate(trainer.acting_agent, held, metrics=text,
                                               max_new_tokens=cfg.run.max_new_tokens,
                                               batch_size=max(cfg.run.batch_size, 32), return_completions=True)
        scores.pop("num_examples", None)
        out.update(scores)
    return out, completions


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


def _finite_mean(values):
    """Mean of the finite values; None when there are none (explained variance is NaN when every return of a
    rollout is equal): JSON has no NaN."""
    finite = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _show(scores: dict) -> str:
    return ", ".join(f"{k} {v:+.4f}" if "reward" in k else f"{k} {v:.4f}" for k, v in scores.items())


def train_run(cfg: RunConfig, run_dir: str, progress: bool = True, log=print, export_dir: str | None = None,
              scratch: bool = False, load_back: bool = False, num_samples: int = 3) -> dict:
    """``tf-rl-text train`` (and every example script): build, (resume or warm start,) evaluate, train
    (keeping the best dev checkpoint with ``run.keep_best``), export to ``export_dir`` (default
    RUN_DIR/export), evaluate again, plot. Returns the summary (also RUN_DIR/summary.json).

    ``scratch``: the run folder is a script's default scratch space (see :func:`claim_run_dir`).
    ``load_back``: the summary's ``num_samples`` greedy samples come from the export loaded back
    with :func:`tf_rl_text.load` (what a user does in another process), not from the live model.
    Under a multi-worker strategy only the chief writes files, and holds the run folder's lock
    (``RUN_DIR/.lock``) for the whole run: a second process on the same folder stops with an error."""
    from tf_rl_text import distribute
    from tf_rl_text._compat import tf
    from tf_rl_text.checkpoint import run_folder_lock

    t0 = time.time()
    strategy = make_strategy(cfg)  # first: a multi-worker strategy must exist before TensorFlow runs any op
    if cfg.run.deterministic:
        tf.config.experimental.enable_op_determinism()
        tf.keras.utils.set_random_seed(cfg.run.seed)
    chief = distribute.is_chief(strategy)
    if not chief:
        return _train_run(cfg, run_dir, progress, log, export_dir, load_back, num_samples, strategy, chief, t0)
    with run_folder_lock(run_dir):  # a second process on this folder stops here, before it touches anything
        pass
    claim_run_dir(cfg, run_dir, scratch, log)
    with run_folder_lock(run_dir):  # held for the whole run: warm start, before.json, training, export
        return _train_run(cfg, run_dir, progress, log, export_dir, load_back, num_samples, strategy, chief, t0)


def _train_run(cfg, run_dir, progress, log, export_dir, load_back, num_samples, strategy, chief, t0) -> dict:
    import tf_rl_text

    resume = has_checkpoint(run_dir)
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        write_run_config(cfg, run_dir)
    built = build(cfg, run_dir, warm_start=not resume, progress=progress, log=log, resume=True)
    trainer, agent = built.trainer, built.agent
    if chief:
        agent.tokenizer.save_pretrained(os.path.join(run_dir, "tokenizer"))
    before_file = os.path.join(run_dir, "before.json")
    if resume:  # the weights are past the warm start: the run's own "before" numbers, when it recorded them
        before = json.load(open(before_file)) if os.path.isfile(before_file) else {}
    else:
        before, _ = evaluate_run(built, cfg)
        log(f"before RL ({len(built.test)} held-out prompts, greedy): {_show(before)}")
        if chief:
            with open(before_file, "w") as f:
                json.dump(before, f)
    callbacks, keep = callbacks_for(run_dir), None
    if cfg.run.keep_best and cfg.run.steps:
        more, keep = _keep_best(built, cfg, before, log)
        callbacks += more
    start_step = trainer.global_step
    if trainer.restored_from:
        log(f"resumed from {trainer.restored_from} at step {start_step}")
    trainer.train(cfg.run.steps, callbacks=callbacks, progress=progress)
    kept, note = "the last RL step", None
    if keep is not None and keep.best_step is not None and keep.best_step != trainer.global_step:
        kept = "the warm-started model" if keep.best_step == 0 else f"the checkpoint of RL step {keep.best_step}"
        log(f"RL did not improve the dev {cfg.run.keep_best} after step {keep.best_step}: kept {kept} "
            f"({keep.best_score:.4f})")
        if keep.best_step == 0 and trainer.history:
            scores = [logs[cfg.run.keep_best] for _, logs in keep.results]
            tie = scores[0] if len(scores) > 1 and all(x == scores[0] for x in scores) else None
            note = rl_note(cfg, trainer.history, len(built.train), len(built.dev), tie)
            log("  " + note)
    kept_at = keep.best_step if keep is not None and keep.best_step is not None else trainer.global_step
    export = trainer.export(export_dir or os.path.join(run_dir, "export"),
                            metadata={"step": kept_at, "latest_step": trainer.global_step})
    if keep is not None and keep.best_step == 0 and before:  # the warm-started weights are back: same scores
        after = dict(before)
    else:
        after, _ = evaluate_run(built, cfg)
    log(f"after RL ({kept}): {_show(after)}")
    history, prompts = trainer.history, built.test.prompts[:num_samples]
    if load_back and chief:
        outputs, where = tf_rl_text.load(export).generate(prompts), f"loaded back from {export}"
    else:
        outputs, where = agent.generate_text(prompts, cfg.run.max_new_tokens), "the trained model"
    sep = " => " if agent.is_encoder_decoder else " |"
    log(f"greedy samples ({where}):\n" + "\n".join(f"  {p}{sep}{c}" for p, c in zip(prompts, outputs)))
    tail = history[-10:]
    last10 = {k: _finite_mean([h.get(k) for h in tail]) for k in (tail[0] if tail else {})
              if isinstance(tail[0][k], (int, float)) and not k.endswith(("_s", "step"))}
    if last10:
        log("last 10 steps: " + ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in last10.items()
                                          if k not in ("update", "lr")))
    summary = {
        "algorithm": cfg.algorithm,
        "config": cfg.source,
        "steps": trainer.global_step,
        "resumed_from_step": start_step if resume else None,
        **{f"{k}_before": v for k, v in before.items()},
        **{f"{k}_after": v for k, v in after.items()},
        "kept": kept,
        "rl_discarded": bool(keep is not None and keep.best_step == 0 and trainer.history),
        "rl_note": note,
        "dev_history": [(step, logs[cfg.run.keep_best]) for step, logs in keep.results] if keep else None,
        "train_reward_last10": _finite_mean([h.get("reward_mean") for h in tail]) if tail else None,
        "train_kl_last10": (float(np.mean([h["kl"] for h in tail])) if tail and "kl" in tail[0] else None),
        "train_last10": last10,
        "train_last": {k: v for k, v in (history[-1] if history else {}).items() if isinstance(v, (int, float))
                       and np.isfinite(v)},
        "warm_start_nll_first_last": [built.warm_start_losses[0], built.warm_start_losses[-1]]
        if built.warm_start_losses else None,
        "num_train": len(built.train), "num_dev": len(built.dev), "num_test": len(built.test),
        "dev_is_test": built.dev is built.test,
        "export": os.path.abspath(export),
        "run_dir": os.path.abspath(run_dir),
        **built.notes,
        **getattr(built.reward, "info", {}),
        "samples": [{"prompt": p, "completion": c} for p, c in zip(prompts, outputs)],
        "weights_sha256": weights_fingerprint(agent.model),  # the same on every worker of a distributed run
        "is_chief": chief,
        "encoder_decoder": agent.is_encoder_decoder,
        "wall_time_s": round(time.time() - t0, 1),
    }
    log(f"weights sha256: {summary['weights_sha256']}")
    if not chief:
        log(f"non-chief worker: the chief exported the SavedModel to {export} and writes the run folder")
        return summary
    try:
        summary["plot"] = plot_run(run_dir)["path"]
    except ValueError as e:  # no steps: nothing to plot
        summary["plot"] = None
        log(f"no plot: {e}")
    with open(os.path.join(run_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary


def export_run(run_dir: str, out: str, serving_only: bool = False, log=print) -> str:
    """``tf-rl-text export``: rebuild the run's trainer from RUN_DIR/config.yaml, restore its latest
    checkpoint and export it (no warm start, no reward model trained again)."""
    from tf_rl_text.configfile import load_config

    config_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(config_path):
        raise ConfigError(f"{run_dir!r} is not a run folder (no config.yaml); pass the --run-dir of `tf-rl-text train`")
    here, there = os.path.realpath(run_dir), os.path.realpath(out)
    if there == here or here.startswith(there + os.sep):
        raise ConfigError(f"cannot export {run_dir!r} to {out!r}: an export replaces its whole folder, which would "
                          f"delete the run; pass a new folder, e.g. {os.path.join(run_dir, 'export')}")
    if not has_checkpoint(run_dir):  # before building anything
        raise ConfigError(f"{run_dir!r} holds no checkpoint (nothing in {os.path.join(run_dir, 'checkpoints')}); "
                          "train it first with `tf-rl-text train CONFIG --run-dir RUN_DIR`, or pass a run folder "
                          "that has checkpoints/")
    cfg = load_config(config_path)
    built = build(cfg, run_dir, warm_start=False, reward=False, progress=False, log=log)
    try:
        found = built.trainer.restore(run_dir)
    except ValueError as e:  # checkpoints of another model or config
        raise ConfigError(f"{run_dir!r}: {e}") from None
    if not found:  # the checkpoint vanished while the model was built
        raise ConfigError(f"{run_dir!r} holds no checkpoint any more; rerun `tf-rl-text train` on it")
    trainer = built.trainer
    latest = trainer.global_step
    kept = kept_step(run_dir)
    if kept is not None and kept != latest:  # the run kept another step's weights (run.keep_best): export those
        from tf_rl_text._compat import tf

        tf.train.Checkpoint(model=trainer.acting_agent.model).read(os.path.join(run_dir, "best", "model")).expect_partial()
        log(f"restored step {latest} of {run_dir}; exporting the model the run kept: step {kept} (best dev "
            f"{_best_record(run_dir).get('metric')}), as the run's own export did")
    else:
        log(f"restored step {latest} of {run_dir}")
    return trainer.export(out, serving_only=serving_only,
                          metadata={"step": latest if kept is None else kept, "latest_step": latest})


def _best_record(run_dir) -> dict:
    path = os.path.join(run_dir, "best", "best.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def kept_step(run_dir) -> int | None:
    """The step whose weights a run kept (``run.keep_best``: RUN_DIR/best), or None (the last step)."""
    step = _best_record(run_dir).get("step")
    return None if step is None else int(step)


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
