"""Building a run from a config: its data, agent, reward, trainer (with the warm start) and preference pairs."""
from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from tf_rl_text.configfile import TASK_SOURCES, ConfigError, RunConfig


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


__all__ = ["load_data", "build_agent", "build_reward", "import_reward", "zero_reward", "upbeat_demonstrations", "Built", "make_strategy", "build", "preference_pairs"]
