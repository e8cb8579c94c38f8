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
import random
import time

import numpy as np

from tf_rl_text.configfile import TASK_SOURCES, ConfigError, RunConfig, to_dict

# --------------------------------------------------------------------------- data
CONTEXT_TURNS = 2  # dialogue: the previous two turns are the prompt


def _conversation_pairs(conversations, name):
    from tf_rl_text.data import PromptDataset

    prompts, refs = [], []
    for turns in conversations:
        for i in range(1, len(turns)):
            prompts.append("\n".join(turns[max(0, i - CONTEXT_TURNS): i]))
            refs.append(turns[i])
    return PromptDataset(prompts, refs, name)


def _split_conversations(path):
    """The embedded dialogue jsonl ({"turns": [...]}) split 80/20 by conversation, as (context, reply) pairs."""
    from tf_rl_text import data

    conversations = []
    with data.open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            record = json.loads(line)
            turns = record.get("turns") if isinstance(record, dict) else None
            if not isinstance(turns, list) or len(turns) < 2:
                raise data.DataFormatError(f"{path}, line {lineno}: expected {{\"turns\": [at least 2 strings]}}")
            conversations.append([str(t).strip() for t in turns])
    random.Random(0).shuffle(conversations)
    cut = int(round(0.8 * len(conversations)))
    return _conversation_pairs(conversations[:cut], "train"), _conversation_pairs(conversations[cut:], "held-out")


def load_data(cfg: RunConfig):
    """(train, held_out): PromptDatasets (held_out may be the same prompts when there are no references)."""
    from tf_rl_text import data, load_prompts
    from tf_rl_text.defaults import task_data_path

    d = cfg.data
    if d.source == "prompts":
        ds = data.PromptDataset([d.prefix + p for p in load_prompts()], None, "embedded prompts")
        train, held_out = ds, ds
    elif d.source == "file":
        fmt = d.format or ("csv" if d.path.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")) else "jsonl")
        loader = data.load_csv if fmt == "csv" else data.load_jsonl
        ds = loader(d.path, prompt_field=d.prompt_field, reference_field=d.reference_field, prefix=d.prefix)
        if ds.has_references:
            train, held_out = ds.split(1.0 - d.eval_fraction, shuffle=True, seed=0)
        else:
            train, held_out = ds, ds
    elif d.data_dir is None:  # a task's embedded data
        if d.source == "dialogue":
            train, held_out = _split_conversations(task_data_path("dialogue"))
        else:
            loader = data.load_summarization if d.source == "summarization" else (
                lambda p: data.load_jsonl(p, "source", "target"))
            train, held_out = loader(task_data_path(d.source)).split(1.0 - d.eval_fraction, shuffle=True, seed=0)
    else:  # a task's real data folder
        if d.source == "translation":
            train = data.load_translation(d.data_dir, split="train")
            held_out = data.load_translation(d.data_dir, split="test_2016_flickr")
        elif d.source == "summarization":
            train = data.load_summarization(d.data_dir, split="train", max_source_words=d.max_source_tokens)
            held_out = data.load_summarization(d.data_dir, split="test", max_source_words=d.max_source_tokens)
        else:
            train = data.load_dialogue(d.data_dir, split="valid_freq", context_turns=CONTEXT_TURNS)
            held_out = data.load_dialogue(d.data_dir, split="test_freq", context_turns=CONTEXT_TURNS)
    if d.prefix and d.source != "prompts" and d.source != "file":
        train, held_out = (x.map_prompts(lambda p: d.prefix + p) for x in (train, held_out))
    if d.limit is not None:
        train = train.take(min(d.limit, len(train)))
    if d.eval_limit is not None:
        held_out = held_out.take(min(d.eval_limit, len(held_out)))
    if not len(train):
        raise ConfigError(f"{cfg.source}: data ({d.source}) holds no training examples")
    return train, held_out


# --------------------------------------------------------------------------- agent
def build_agent(cfg: RunConfig, train, tokenizer_dir: str | None = None):
    """The RLAgent of the config: a local folder, the embedded GPT-2, or a from-scratch seq2seq model."""
    from tf_rl_text import RLAgent, default_model, default_tokenizer, with_precision
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
def _classifier_reward(args, cfg, log):
    from tf_rl_text.rewards import ClassifierReward, load_labelled_texts, minilm_path, train_reward_model

    args = dict(args)
    label, include_prompt = args.pop("label", 1), args.pop("include_prompt", True)
    if "model" in args:
        folder = args.pop("model")
        return ClassifierReward.from_pretrained(folder, label=label, include_prompt=include_prompt, **args)
    if "train_data" not in args:
        raise ConfigError(f"{cfg.source}: reward classifier needs model: FOLDER (a trained classifier) or "
                          "train_data: FOLDER|FILE (labelled sentences to train one on)")
    texts, labels = load_labelled_texts(args.pop("train_data"))
    train_size, epochs = args.pop("train_size", None), args.pop("epochs", 3)
    max_length, lr, output = args.pop("max_length", 64), args.pop("learning_rate", 5e-5), args.pop("output", None)
    if args:
        raise ConfigError(f"{cfg.source}: reward classifier: unknown argument(s) {sorted(args)}; known: model, train_data, "
                          "train_size, epochs, max_length, learning_rate, output, label, include_prompt")
    order = np.random.default_rng(cfg.run.seed).permutation(len(texts))
    n_val = len(texts) // 5
    val, train = order[:n_val], order[n_val:]
    if train_size:
        train, val = train[: int(train_size)], val[: max(32, int(train_size) // 2)]
    log(f"reward model: MiniLM + a classifier head on {len(train)} labelled sentences, {epochs} epoch(s)")
    result = train_reward_model(
        minilm_path(), ([texts[i] for i in train], [labels[i] for i in train]),
        validation_data=([texts[i] for i in val], [labels[i] for i in val]), epochs=int(epochs), batch_size=32,
        learning_rate=float(lr), max_length=int(max_length), output_dir=output, seed=cfg.run.seed, verbose=0)
    log(f"reward model held-out accuracy {result.val_accuracy:.3f} ({result.num_val} sentences)")
    return ClassifierReward(result.model, result.tokenizer, label=label, include_prompt=include_prompt)


def build_reward(spec: dict, cfg: RunConfig, log=print):
    """A reward function from its config mapping ({name: ..., ...arguments})."""
    from tf_rl_text import rewards

    args = {k: v for k, v in spec.items() if k not in ("name", "weight")}
    name = spec["name"]
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
        components = {}
        weights = {}
        for i, c in enumerate(args.pop("components")):
            key = f"{c['name']}_{i}" if c["name"] in components else c["name"]
            components[key], weights[key] = build_reward(c, cfg, log), float(c.get("weight", 1.0))
        return rewards.CompositeReward(components, weights=weights, **args)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cfg.source}: reward {name}: {e}") from None


def zero_reward(completions, prompts=None, references=None):
    """The reward of a rebuilt run that only exports (the real one is not needed, nor trained again)."""
    return [0.0] * len(completions)


# --------------------------------------------------------------------------- trainer
def upbeat_demonstrations(reward_fn, count, prompt_words=3):
    """(prompts, completions): corpus sentences the reward scores > 0, split after the first words."""
    from tf_rl_text import load_corpus

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
    held_out: object
    reward: object


def build(cfg: RunConfig, run_dir: str | None = None, warm_start: bool = True, reward=True, progress=True, log=print,
          resume: bool = False):
    """Agent, data, reward and trainer of ``cfg``; the warm start runs unless ``warm_start=False``
    (a resumed run or an export restores the weights from the checkpoint instead).

    ``resume=True``: the trainer is built with ``run_dir=run_dir`` (and ``run.checkpoint_every``),
    so it restores the run's latest checkpoint (weights, optimizer, RNGs, env order, history...)
    at construction and :meth:`train` checkpoints into ``run_dir/checkpoints``. Otherwise the
    trainer has no run folder (``run_dir`` only locates the run's tokenizer)."""
    import tf_rl_text
    from tf_rl_text import TextGenerationEnv, fit_pairs, load_corpus
    from tf_rl_text import warm_start as mle_warm_start

    from tf_rl_text.distribute import make_strategy

    train, held_out = load_data(cfg)
    strategy = make_strategy(cfg.run.strategy)
    with strategy.scope():  # the model's variables belong to the strategy (docs/distributed.md)
        agent = build_agent(cfg, train, os.path.join(run_dir, "tokenizer") if run_dir else None)
    tok, r = agent.tokenizer, cfg.run
    if agent.is_encoder_decoder or cfg.data.source in TASK_SOURCES:
        train = train.truncate_prompts(tok, cfg.data.max_source_tokens)
        held_out = held_out.truncate_prompts(tok, cfg.data.max_source_tokens)
    reward_fn = build_reward(cfg.reward, cfg, log) if reward else zero_reward
    try:  # before the warm start: a prompt that does not fit the model's context is a config mistake
        if train.has_references or agent.is_encoder_decoder:
            env = train.to_env(tok, reward_fn, batch_size=r.batch_size, max_new_tokens=r.max_new_tokens,
                               encoder_decoder=agent.is_encoder_decoder, seed=r.seed,
                               context_length=agent.context_length)
        else:
            env = TextGenerationEnv(train.prompts, tok, reward_fn=reward_fn, batch_size=r.batch_size,
                                    max_new_tokens=r.max_new_tokens, seed=r.seed)
    except ValueError as e:
        raise ConfigError(f"{cfg.source}: {e}") from None
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
        cls = {"reinforce": tf_rl_text.ReinforceTrainer, "a2c": tf_rl_text.A2CTrainer, "ppo": tf_rl_text.PPOTrainer,
               "q_learning": tf_rl_text.QLearningTrainer}[cfg.algorithm]
        kwargs = {"run_dir": run_dir, "checkpoint_every": r.checkpoint_every} if resume and run_dir else {}
        trainer = cls(agent, env, cfg.trainer, strategy=strategy, **kwargs)
    except ValueError as e:  # a setting that does not fit the model or the data (context length, minibatches...)
        raise ConfigError(f"{cfg.source}: {e}") from None
    if cfg.algorithm == "q_learning" and r.demonstrations and warm_start and not trainer.global_step:
        demo_prompts, demo_completions = upbeat_demonstrations(reward_fn, r.demonstrations)
        if demo_prompts:
            trainer.add_demonstrations(demo_prompts, demo_completions)
            log(f"demonstrations: {len(demo_prompts)} corpus sentences the reward scores > 0")
    return Built(agent, trainer, train, held_out, reward_fn)


# --------------------------------------------------------------------------- checkpoints
def has_checkpoint(run_dir) -> bool:
    """Whether ``run_dir/checkpoints`` holds a checkpoint of the trainer base (then train resumes)."""
    from tf_rl_text._compat import tf

    return bool(run_dir) and tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")) is not None


# --------------------------------------------------------------------------- the training loop
def callbacks_for(run_dir: str) -> list:
    """The run folder's loggers: RUN_DIR/metrics.jsonl (a resumed run drops the lines past its
    checkpoint) and RUN_DIR/tensorboard (namespaced scalars: rollout/reward_mean, objective/kl...).
    The trainer adds its progress bar itself (``train(..., progress=True)``)."""
    from tf_rl_text import callbacks as cb

    return [cb.JSONLLogger(os.path.join(run_dir, "metrics.jsonl")), cb.TensorBoard(os.path.join(run_dir, "tensorboard"))]


def _run(trainer, cfg: RunConfig, run_dir: str, progress: bool = True, log=print) -> dict:
    """Train to ``run.steps`` with the trainer base (it restored run_dir's checkpoint when built and
    checkpoints every ``run.checkpoint_every`` steps and at the end), then export RUN_DIR/export."""
    start_step = trainer.global_step
    if trainer.restored_from:
        log(f"resumed from {trainer.restored_from} at step {start_step}")
    steps = trainer.train(cfg.run.steps, callbacks=callbacks_for(run_dir), progress=progress)
    path = trainer.export(os.path.join(run_dir, "export"))
    return {"start_step": start_step, "steps_run": len(steps), "step": trainer.global_step, "export": path}


# --------------------------------------------------------------------------- evaluation
def evaluate_run(built: Built, cfg: RunConfig) -> dict:
    """The final evaluation: greedy mean reward and, with references, the text metrics on the held-out set."""
    from tf_rl_text import metrics

    wanted = cfg.run.metric_list
    out = {}
    held = built.held_out
    if "reward" in wanted:
        refs = held.references if held.has_references else None
        out["reward"] = built.trainer.evaluate(held.prompts, refs)
    text = [m for m in wanted if m != "reward"]
    if text and held.has_references:
        out.update(metrics.evaluate(built.agent, held, metrics=text, max_new_tokens=cfg.run.max_new_tokens,
                                    batch_size=32))
        out.pop("num_examples", None)
    return out


def write_run_config(cfg: RunConfig, run_dir: str):
    import yaml

    with open(os.path.join(run_dir, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)


def train_run(cfg: RunConfig, run_dir: str, progress: bool = True, log=print) -> dict:
    """``tf-rl-text train``: build, (resume or warm start,) train, export, evaluate, plot. Returns the summary."""
    t0 = time.time()
    os.makedirs(run_dir, exist_ok=True)
    resume = has_checkpoint(run_dir)
    write_run_config(cfg, run_dir)
    built = build(cfg, run_dir, warm_start=not resume, progress=progress, log=log, resume=True)
    built.agent.tokenizer.save_pretrained(os.path.join(run_dir, "tokenizer"))
    before = None
    if not resume and "reward" in cfg.run.metric_list:
        held = built.held_out
        before = built.trainer.evaluate(held.prompts, held.references if held.has_references else None)
    result = _run(built.trainer, cfg, run_dir, progress=progress, log=log)
    evaluation = evaluate_run(built, cfg)
    history = built.trainer.history
    tail = history[-10:]
    summary = {
        "algorithm": cfg.algorithm,
        "config": cfg.source,
        "steps": result["step"],
        "resumed_from_step": result["start_step"] if resume else None,
        "reward_before": before,
        **{f"{k}_after": v for k, v in evaluation.items()},
        "train_reward_last10": float(np.mean([h["reward_mean"] for h in tail])) if tail else None,
        "train_kl_last10": (float(np.mean([h["kl"] for h in tail])) if tail and "kl" in tail[0] else None),
        "export": os.path.abspath(result["export"]),
        "wall_time_s": round(time.time() - t0, 1),
    }
    samples = built.held_out.prompts[:3]
    sep = " => " if built.agent.is_encoder_decoder else ""
    summary["samples"] = [p + sep + c
                          for p, c in zip(samples, built.agent.generate_text(samples, cfg.run.max_new_tokens))]
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
    log(f"restored step {built.trainer.global_step} of {run_dir}")
    return built.trainer.export(out, serving_only=serving_only)


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
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_run(run_dir: str, out: str | None = None) -> dict:
    """Write RUN_DIR/plots/training.png (or ``out``): reward, KL and the losses against step.

    Returns ``{"path": ..., "curves": {panel: {label: (steps, values)}}}``: the plotted data.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    if not records:
        raise ValueError(f"{run_dir!r}: metrics.jsonl is empty (no training step ran)")
    curves = {}
    for title, keys in PANELS:
        panel = {}
        for key in keys:
            points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
            if points and not (title == "losses" and key == "loss" and panel):
                panel[key] = ([p[0] for p in points], [p[1] for p in points])
            if title != "losses" and panel:
                break
        if panel:
            curves[title] = panel
    fig, axes = plt.subplots(len(curves), 1, figsize=(7, 2.6 * len(curves)), sharex=True, squeeze=False)
    for ax, (title, panel) in zip(axes[:, 0], curves.items()):
        for label, (x, y) in panel.items():
            ax.plot(x, y, label=label, linewidth=1.2)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if len(panel) > 1 or title == "losses":
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.suptitle(os.path.basename(os.path.abspath(run_dir)), fontsize=10)
    fig.tight_layout()
    out = out or os.path.join(run_dir, "plots", "training.png")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return {"path": out, "curves": curves}
