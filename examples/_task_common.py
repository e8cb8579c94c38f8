"""The shared flow of the three task examples (translation.py, summarization.py, dialogue.py).

    load data -> split train / held-out -> tokenizer + small encoder-decoder from scratch
    (or a local pretrained folder with --model) -> maximum-likelihood warm start (fit_pairs)
    -> metrics.evaluate -> self-critical REINFORCE with the task metric as reward
    -> keep the best checkpoint by held-out metric -> metrics.evaluate -> export, load back.

A task example only says what differs: where its data comes from, its metric and reward, and
its sizes. Nothing here is imported by the package.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)  # run from a checkout without installing

import tf_rl_text  # noqa: E402  (sets up TensorFlow before transformers)
from tf_rl_text import PromptDataset, ReinforceConfig, ReinforceTrainer, RLAgent, fit_pairs, metrics  # noqa: E402
from tf_rl_text.defaults import default_seq2seq_model, train_tokenizer  # noqa: E402
from tf_rl_text.callbacks import EvalCallback, LambdaCallback  # noqa: E402
from _common import (run_strategy, add_precision_flag, add_run_flags, check_model_folder, in_precision,  # noqa: E402
                     non_negative_float, non_negative_int, positive_float, positive_int, finish_run, resumed_note,
                     run_callbacks, seed_int, start_run, trainer_run_kwargs, user_errors, write_metrics)


@dataclasses.dataclass
class Sizes:
    """Everything that differs between the embedded default, --quick and real data (--data)."""

    vocab_size: int = 1000
    d_model: int = 64
    layers: int = 2
    warm_start_steps: int = 600
    warm_start_lr: float = 2e-3
    rl_steps: int = 60
    learning_rate: float = 5e-5
    batch_size: int = 16
    samples_per_prompt: int = 2
    max_source_tokens: int = 48
    max_new_tokens: int = 24
    eval_every: int = 0  # 0 = only at the end of RL
    train_limit: int | None = None
    dev_limit: int | None = None
    eval_limit: int | None = None


@dataclasses.dataclass
class Task:
    name: str
    """Folder name under saved_models/ and the metrics file's "task"."""
    description: str
    metric: str
    """The key of metrics.evaluate's result that is the task metric (also the RL reward's metric)."""
    eval_metrics: list
    reward_fn: Callable
    load_default: Callable
    """() -> (train, dev, test, note): the embedded data."""
    load_data: Callable
    """(path, args) -> (train, dev, test, note): real data from --data PATH."""
    sizes: Sizes
    quick: Sizes
    real: Sizes
    data_help: str
    prefix_help: str = ""

    @property
    def eval_metrics_keys(self):
        """The result keys metrics.evaluate returns for ``eval_metrics``."""
        expand = {"rouge": ["rouge1", "rouge2", "rougeL"], "distinct": ["distinct_1", "distinct_2"],
                  "length": ["mean_length"]}
        return [k for m in self.eval_metrics for k in expand.get(m, [m])]


# --------------------------------------------------------------------------- flags
SIZE_FLAGS = {  # flag -> (Sizes field, parser, help)
    "--vocab-size": ("vocab_size", positive_int("--vocab-size"), "BPE vocabulary of the tokenizer trained on the training texts"),
    "--d-model": ("d_model", positive_int("--d-model"), "width of the from-scratch encoder-decoder"),
    "--layers": ("layers", positive_int("--layers"), "encoder layers (and as many decoder layers)"),
    "--warm-start-steps": ("warm_start_steps", non_negative_int("--warm-start-steps"),
                           "maximum-likelihood (fit_pairs) steps before RL; 0 skips the warm start"),
    "--warm-start-lr": ("warm_start_lr", positive_float("--warm-start-lr"), "Adam step size of the warm start"),
    "--rl-steps": ("rl_steps", non_negative_int("--rl-steps"), "REINFORCE updates; 0 skips RL"),
    "--learning-rate": ("learning_rate", positive_float("--learning-rate"),
                        "Adam step size of the RL updates (small: RL must not undo the warm start)"),
    "--batch-size": ("batch_size", positive_int("--batch-size"), "prompts per batch (warm start x2, RL, evaluation)"),
    "--samples-per-prompt": ("samples_per_prompt", positive_int("--samples-per-prompt"),
                             "sampled completions per prompt in an RL batch (one greedy decode each is the baseline)"),
    "--max-source-tokens": ("max_source_tokens", positive_int("--max-source-tokens"), "sources are cut to this many tokens"),
    "--max-new-tokens": ("max_new_tokens", positive_int("--max-new-tokens"), "tokens generated per output (and target cut)"),
    "--eval-every": ("eval_every", non_negative_int("--eval-every"),
                     "evaluate the held-out metric every N RL steps to keep the best checkpoint (0: only at the end)"),
    "--train-limit": ("train_limit", positive_int("--train-limit"), "use only the first N training pairs"),
    "--dev-limit": ("dev_limit", positive_int("--dev-limit"), "held-out pairs that choose the checkpoint"),
    "--eval-limit": ("eval_limit", positive_int("--eval-limit"), "held-out (test) pairs the metric is reported on"),
}


def _fmt(sizes: Sizes, field):
    value = getattr(sizes, field)
    return "all" if value is None else value


def parse_args(task: Task, argv=None):
    lines = [f"{flag[2:]}: default {_fmt(task.sizes, f)}, --quick {_fmt(task.quick, f)}, --data {_fmt(task.real, f)}"
             for flag, (f, _, _) in SIZE_FLAGS.items()]
    p = argparse.ArgumentParser(
        description=task.description,
        epilog="Size defaults (a flag overrides them):\n  " + "\n  ".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true",
                   help="smoke run on a slice of the data with a tiny model (about 25 s on 2 idle CPU cores)")
    p.add_argument("--data", default=None, help=task.data_help)
    p.add_argument("--model", default=None,
                   help="a local folder with a pretrained TF model and tokenizer (save_pretrained), loaded with "
                        "TFAutoModelForSeq2SeqLM (or TFAutoModelForCausalLM) + AutoTokenizer, instead of a "
                        "from-scratch model; the warm start still runs unless --warm-start-steps 0")
    p.add_argument("--prefix", default="", help="text put before every source, e.g. " + (task.prefix_help or "'summarize: '")
                   + " for a pretrained T5 (default: none)")
    p.add_argument("--arch", default="t5", choices=["t5", "bart"], help="from-scratch encoder-decoder kind (default: t5)")
    p.add_argument("--kl-coef", type=non_negative_float("--kl-coef"), default=0.0,
                   help="weight of a per-token KL penalty to the warm-started model during RL (default: 0, off)")
    add_precision_flag(p)
    p.add_argument("--seed", type=seed_int(), default=0, help="random seed: model init, batches, sampling (default: 0)")
    p.add_argument("--output", default=os.path.join(REPO, "saved_models", task.name),
                   help=f"folder the SavedModel is exported to (default: saved_models/{task.name})")
    p.add_argument("--metrics-file", default=None,
                   help="write a JSON summary here: metric_name, metric_before (after the warm start), metric_after "
                        "(after RL), saved_model, the full evaluations, sizes, wall time")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for flag, (field, parser, help_text) in SIZE_FLAGS.items():
        p.add_argument(flag, dest=field, type=parser, default=None, help=help_text)
    add_run_flags(p, task.name)
    args = p.parse_args(argv)
    if args.data is not None and not os.path.exists(args.data):
        p.error(f"--data {args.data!r} does not exist; pass a folder or file ({task.data_help})")
    check_model_folder(p, args.model)
    base = task.quick if args.quick else (task.real if args.data else task.sizes)
    sizes = dataclasses.replace(base)
    for _, (field, _, _) in SIZE_FLAGS.items():
        if getattr(args, field) is not None:
            setattr(sizes, field, getattr(args, field))
    if sizes.vocab_size < 260:
        p.error(f"--vocab-size must be >= 260 (256 bytes + 3 special tokens), got {sizes.vocab_size}")
    args.sizes = sizes
    return args


# --------------------------------------------------------------------------- data helpers
def split_held_out(ds: PromptDataset, fraction: float = 0.8, seed: int = 0):
    """Shuffle (fixed seed) and cut into train / held-out."""
    return ds.split(fraction, shuffle=True, seed=seed)


def limit(ds: PromptDataset, n):
    return ds if n is None else ds.take(min(n, len(ds)))


# --------------------------------------------------------------------------- model
def build_agent(args, train: PromptDataset, seed: int):
    """(agent, note): a pretrained --model, or a tokenizer + encoder-decoder trained/built from scratch,
    built in the scope of --strategy."""
    with run_strategy(args).scope():
        return _build_agent(args, train, seed)


def _build_agent(args, train: PromptDataset, seed: int):
    s = args.sizes
    if args.model:
        from transformers import AutoConfig, AutoTokenizer, TFAutoModelForCausalLM, TFAutoModelForSeq2SeqLM

        config = AutoConfig.from_pretrained(args.model)
        cls = TFAutoModelForSeq2SeqLM if getattr(config, "is_encoder_decoder", False) else TFAutoModelForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        model = cls.from_pretrained(args.model)
        return (RLAgent(in_precision(model, args.precision), tokenizer, seed=seed),
                f"pretrained {type(model).__name__} from {args.model}")
    max_positions = max(s.max_source_tokens, s.max_new_tokens) + 8
    tokenizer = train_tokenizer(train.prompts + train.first_references(), vocab_size=s.vocab_size,
                                model_max_length=max_positions)
    model = default_seq2seq_model(tokenizer, arch=args.arch, d_model=s.d_model, layers=s.layers,
                                  heads=max(1, s.d_model // 32), max_positions=max_positions, seed=seed)
    note = (f"from-scratch {type(model).__name__}: {s.layers}+{s.layers} layers, width {s.d_model}, "
            f"{model.count_params() / 1e6:.2f}M parameters, BPE vocabulary {len(tokenizer)}")
    return RLAgent(in_precision(model, args.precision), tokenizer, seed=seed), note


# --------------------------------------------------------------------------- evaluation
def evaluate(task: Task, agent, ds: PromptDataset, s: Sizes, metric_list=None):
    return metrics.evaluate(agent, ds, metrics=metric_list or task.eval_metrics, max_new_tokens=s.max_new_tokens,
                            greedy=True, batch_size=max(s.batch_size, 32))


def _show(result: dict, keys):
    return ", ".join(f"{k} {result[k]:.4f}" for k in keys if k in result)


def print_samples(prompts, outputs, references, n=3):
    for p, o, r in list(zip(prompts, outputs, references))[:n]:
        r = r if isinstance(r, str) else r[0]
        print(f"  source: {p[:150]!r}\n  output: {o.strip()!r}\n  reference: {r!r}")


# --------------------------------------------------------------------------- why RL did not help
FITTED_REWARD = 0.8
"""A mean sampled training reward (metric scale 0..1) at or above this at the first RL step means the
warm start already reproduces its training pairs."""


def why_rl_did_not_help(task: Task, trainer, train, dev, s: Sizes) -> str:
    """A plain explanation, with the run's own numbers, for a run whose RL never beat the warm start."""
    first = trainer.history[0]["reward_mean"]
    lines = [f"  Why RL did not help: no RL checkpoint beat the warm start on the {len(dev)} held-out pairs."]
    if first >= FITTED_REWARD:
        lines.append(
            f"  The reward is scored on the {len(train)} training pairs, and the warm start already reproduces them:"
            f"\n  its sampled outputs earned a mean reward of {first:.2f} (at most 1.0) at the first RL step. Self-critical"
            f"\n  REINFORCE learns from samples that beat the greedy output, and here few do, so the updates are mostly"
            f"\n  noise, and noise on {len(dev)} held-out pairs lowers the metric more often than it raises it.")
        if s.warm_start_steps > 150:
            lines.append(
                "  A shorter warm start (--warm-start-steps 150 --learning-rate 2e-4 --eval-every 10) leaves RL room on the"
                "\n  training prompts, but on data this small what RL learns there barely carries over to held-out pairs"
                "\n  (README: measured runs). Real data (--data) gives RL more room.")
    else:
        lines.append(f"  Its sampled outputs earned a mean reward of {first:.2f} on the training pairs at the first RL step; "
                     f"{s.rl_steps} steps at learning\n  rate {s.learning_rate:g} did not carry over to the held-out "
                     f"pairs: try more --rl-steps, a higher --learning-rate, or --eval-every.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the flow
def run(task: Task, argv=None) -> dict:
    args = parse_args(task, argv)
    s = args.sizes
    start = time.time()
    show = not args.no_progress
    start_run(args, os.path.join("runs", task.name))
    tf_rl_text._compat.tf.random.set_seed(args.seed)

    # 1. data: train / dev (chooses the checkpoint) / test (reports the metric)
    if args.data:
        with user_errors(f"--data {args.data}"):
            train, dev, test, data_note = task.load_data(args.data, args)
    else:
        train, dev, test, data_note = task.load_default(args)
    same = dev is test  # embedded data: one held-out set both chooses the checkpoint and reports the metric
    if args.prefix:
        train, dev, test = (d.map_prompts(lambda p: args.prefix + p) for d in (train, dev, test))
    train, test = limit(train, s.train_limit), limit(test, s.eval_limit)
    dev = test if same else limit(dev, s.dev_limit)
    print(f"[{task.name}] data: {data_note}\n  train {len(train)} pairs, "
          + (f"held-out {len(test)} pairs (choose the checkpoint and report the metric)" if same
             else f"dev {len(dev)} pairs (choose the checkpoint), test {len(test)} pairs (report the metric)"))

    # 2. tokenizer + model
    agent, model_note = build_agent(args, train, args.seed)
    print(f"  model: {model_note}")
    tok = agent.tokenizer
    train, test = (d.truncate_prompts(tok, s.max_source_tokens) for d in (train, test))
    dev = test if same else dev.truncate_prompts(tok, s.max_source_tokens)

    # 3. maximum-likelihood warm start on (source, first reference) pairs
    warm_losses = []
    if s.warm_start_steps:
        warm_losses = fit_pairs(agent, train.prompts, train.first_references(), steps=s.warm_start_steps,
                                batch_size=2 * s.batch_size, learning_rate=s.warm_start_lr,
                                max_prompt_tokens=s.max_source_tokens, max_target_tokens=s.max_new_tokens,
                                seed=args.seed, progress=show, strategy=run_strategy(args))
        print(f"  warm start: token NLL {warm_losses[0]:.3f} -> {sum(warm_losses[-20:]) / len(warm_losses[-20:]):.3f} "
              f"over {len(warm_losses)} steps ({time.time() - start:.0f} s so far)")

    before, before_outputs = metrics.evaluate(agent, test, metrics=task.eval_metrics, max_new_tokens=s.max_new_tokens,
                                              greedy=True, batch_size=max(s.batch_size, 32), return_completions=True)
    dev_score = before[task.metric] if same else evaluate(task, agent, dev, s, [task.metric])[task.metric]
    print(f"\nafter the warm start (held-out, greedy): {_show(before, task.eval_metrics_keys)}")
    print_samples(test.prompts, before_outputs, test.references)

    # 4. RL: self-critical REINFORCE, reward = the task metric per output; keep the best checkpoint on dev
    env = train.to_env(tok, task.reward_fn, batch_size=s.batch_size, max_new_tokens=s.max_new_tokens,
                       encoder_decoder=agent.is_encoder_decoder, seed=args.seed,
                       context_length=agent.context_length)
    config = ReinforceConfig(learning_rate=s.learning_rate, baseline="self_critical",
                             num_samples_per_prompt=s.samples_per_prompt, kl_coef=args.kl_coef)
    # checkpoints into --run-dir (a rerun resumes when train() starts); tf_rl_text.callbacks.EvalCallback
    # scores dev every eval_every steps, keeps the best weights (the warm start competes) and puts them back
    trainer = ReinforceTrainer(agent, env, config, **trainer_run_kwargs(args), auto_resume=False)

    def dev_metric(t):
        return {task.metric: evaluate(task, agent, dev, s, [task.metric])[task.metric]}

    def report(step, logs):
        n = min(s.eval_every or s.rl_steps, len(trainer.history)) or 1
        reward = sum(h["reward_mean"] for h in trainer.history[-n:]) / n
        print(f"  RL step {step}: held-out {task.metric} {logs[task.metric]:.4f} (best {evaluation.best_score:.4f} at "
              f"step {evaluation.best_step}), mean sampled reward {reward:.4f}")

    evaluation = EvalCallback(dev, metrics=dev_metric, every=s.eval_every, keep_best=task.metric, start_score=dev_score)
    kept = "the last RL step"
    if s.rl_steps:
        trainer.train(s.rl_steps, progress=show,
                      callbacks=[evaluation, LambdaCallback(on_eval_end=report), *run_callbacks()])
        if trainer.restored_from:
            print(f"  {resumed_note(trainer)}")
        done = trainer.global_step
        if evaluation.best_step != done:
            kept = ("the warm-started model" if evaluation.best_step == 0
                    else f"the checkpoint of RL step {evaluation.best_step}")
            print(f"  RL did not improve the held-out {task.metric} after step {evaluation.best_step}: "
                  f"kept {kept} ({evaluation.best_score:.4f})")
    dev_history = [(step, logs[task.metric]) for step, logs in evaluation.results] or [(0, dev_score)]

    rl_note = why_rl_did_not_help(task, trainer, train, dev, s) if s.rl_steps and evaluation.best_step == 0 else None
    if rl_note:
        print(rl_note)

    after, after_outputs = metrics.evaluate(agent, test, metrics=task.eval_metrics, max_new_tokens=s.max_new_tokens,
                                            greedy=True, batch_size=max(s.batch_size, 32), return_completions=True)
    gain = after[task.metric] - before[task.metric]
    print(f"\nafter RL ({kept}): {_show(after, task.eval_metrics_keys)}")
    print(f"  {task.metric}: {before[task.metric]:.4f} -> {after[task.metric]:.4f} ({gain:+.4f}) over {s.rl_steps} RL steps")
    print_samples(test.prompts, after_outputs, test.references)

    # 5. export, load back as a user would, generate
    path = trainer.export(args.output)
    policy = tf_rl_text.load(path)
    loaded = policy.generate(test.prompts[:3])
    print(f"\nexported SavedModel: {path}\nloaded back, greedy outputs:")
    print_samples(test.prompts, loaded, test.references)

    result = {
        "task": task.name,
        "metric_name": task.metric,
        "precision": args.precision,
        "metric_before": float(before[task.metric]),
        "metric_after": float(after[task.metric]),
        "metric_gain": float(gain),
        "kept": kept,
        "rl_note": rl_note,
        "dev_history": dev_history,
        "saved_model": os.path.abspath(path),
        "eval_before": before,
        "eval_after": after,
        "warm_start_nll_first_last": [warm_losses[0], warm_losses[-1]] if warm_losses else None,
        "rl_reward_first_last": ([trainer.history[0]["reward_mean"], trainer.history[-1]["reward_mean"]]
                                 if trainer.history else None),
        "data": data_note,
        "model": model_note,
        "num_train": len(train),
        "num_dev": len(dev),
        "num_test": len(test),
        "dev_is_test": same,
        "sizes": dataclasses.asdict(s),
        "seed": args.seed,
        "samples_after": [{"source": p, "output": o} for p, o in zip(test.prompts[:3], loaded)],
        "wall_time_s": round(time.time() - start, 1),
    }
    write_metrics(result, args.metrics_file)
    finish_run(args, result)
    print(f"done in {result['wall_time_s']} s")
    return result
