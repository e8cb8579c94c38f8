"""Building a run from a config: its data, agent, reward, trainer (with the warm start) and preference pairs."""
from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from tf_rl_text.configfile import RunConfig
from tf_rl_text.validation import ConfigError


# --------------------------------------------------------------------------- data
def load_data(cfg: RunConfig):
    """(train, dev, test, note): PromptDatasets. ``dev`` chooses the kept checkpoint (run.keep_best) and
    is ``test`` itself when the data has no dev split; without references all three are the prompts."""
    from tf_rl_text import data

    d = cfg.data
    if d.source == "file":
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
    if m.keras_hub:
        return build_keras_hub_agent(m, seed, RLAgent, default_tokenizer)
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


def build_keras_hub_agent(m, seed, agent_class, default_tokenizer):
    """The RLAgent of ``model.keras_hub``: a model built from fields over the embedded tokenizer, or a preset."""
    from tf_rl_text import kerashub

    if m.keras_hub in ("gpt2", "llama"):
        tokenizer = default_tokenizer()
        lm = kerashub.build(m.keras_hub, len(tokenizer), num_layers=m.layers, hidden_size=m.width,
                            num_heads=max(1, m.width // 16), context_length=tokenizer.model_max_length, seed=seed)
        model = kerashub.KerasHubLM(lm, context_length=tokenizer.model_max_length)
    else:
        model, tokenizer = kerashub.load_preset(m.keras_hub)
    if m.precision != "float32":
        from tf_rl_text.precision import with_precision

        model = with_precision(model, m.precision)
    return agent_class(model, tokenizer, seed=seed)


# --------------------------------------------------------------------------- reward
def build_reward(spec: dict, cfg: RunConfig, log=print):
    """A reward function from its config mapping ({name: ..., ...arguments}): :func:`tf_rl_text.rewards.registry.build`."""
    from tf_rl_text.rewards import registry

    return registry.build(spec, registry.BuildContext(cfg.source, cfg.run.seed, log))


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
    from tf_rl_text.data.tasks import TASKS

    task = TASKS.get(cfg.data.source)
    if agent.family.seq2seq or (task is not None and task.source_text):
        train, test = (x.truncate_prompts(tok, cfg.data.max_source_tokens) for x in (train, test))
        dev = test if same else dev.truncate_prompts(tok, cfg.data.max_source_tokens)
    reward_fn = build_reward(cfg.reward, cfg, log) if reward else zero_reward
    try:  # before the warm start: a prompt that does not fit the model's context is a config mistake
        if train.has_references or agent.family.seq2seq:
            env = train.to_env(tok, reward_fn, batch_size=r.batch_size, max_new_tokens=r.max_new_tokens,
                               agent=agent, seed=r.seed,
                               context_length=agent.context_length, reward_timeout_s=r.reward_timeout_s)
        else:
            env = TextGenerationEnv(train.prompts, tok, reward_fn=reward_fn, batch_size=r.batch_size,
                                    max_new_tokens=r.max_new_tokens, seed=r.seed, reward_timeout_s=r.reward_timeout_s,
                                    agent=agent)
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
        # each trainer class takes what it learns from (DPO: preference pairs, made only when it asks)
        trainer = cls.for_run(agent, env, cfg.trainer, lambda: preference_pairs(cfg, agent, train, reward_fn,
                                                                                run_dir, log),
                              strategy=strategy, **kwargs)
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


__all__ = ["load_data", "build_agent", "build_reward", "zero_reward", "upbeat_demonstrations", "Built", "make_strategy", "build", "preference_pairs"]
