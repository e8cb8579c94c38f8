#!/usr/bin/env python
"""The results protocol (issues 15 and 25): does RL beat a *finished* maximum-likelihood model, an
equal-compute maximum-likelihood control and a constant-reward control, on real data?

    python benchmarks/results.py --task translation                  # Multi30k en->de, every stage
    python benchmarks/results.py --task summarization                # SciTLDR
    python benchmarks/results.py --task translation --stop-after warm   # only the warm start
    python benchmarks/results.py --summary                           # one table: every seed, both controls
    python benchmarks/results.py --baselines     # lead-1 etc., pooled intervals, sacreBLEU signature (from the records)

Rerunning the same command continues where it stopped: each stage writes its checkpoint at every dev
evaluation and its result when it finishes, in ``--work-dir`` (default ``runs/results/<task>``), and
``docs/results/<task>.json`` is rebuilt from the finished stages each time one lands. Budgets are
**process CPU seconds** (``time.process_time()``: every thread of this process), so other work on the
machine changes how long a stage takes but not what its budget buys; wall seconds are recorded too.

Data: ``--data-dir`` or ``$TF_RL_TEXT_DATA`` (the folder holding multi30k/, scitldr/, topical_chat/).

The stages of one task (one warm start, ``rl_seeds`` RL seeds from it):

1. ``warm``: BPE tokenizer on the training texts, a T5 encoder-decoder from scratch, maximum likelihood
   (``fit_pairs``, one Adam state) with a dev evaluation (greedy, ``dev_limit`` >= 300 examples) every
   ``mle_eval_every`` updates. The learning rate **halves on a plateau** (``mle_plateau`` evaluations
   without a new best dev), at most ``mle_halvings`` times; after the last halving it **stops once dev
   has not improved for** ``mle_patience`` evaluations: then ``converged`` is true. ``mle_max_cpu_s``
   caps it (then ``converged`` is false). The best dev weights are the warm start W0; its dev curve is
   saved (JSON and PNG). Regularisation: ``dropout`` (T5's, training only) and ``label_smoothing`` (of the
   targets). **The restart test** (``mle_restarts`` > 0, issue 40): a fresh Adam restarts from W0 at the
   schedule's last learning rate under the same schedule; if its best dev beats W0's beyond noise (paired
   bootstrap over dev examples, 95% interval above 0) it becomes W0 and another restart follows, at most
   ``mle_restarts`` times; ``restart_converged`` records whether one finally did not gain.
2. ``sweep``: RL configurations (``--sweep NAME=V1,V2``, default ``mle_coef=0,0.5``) on seed 0, each for
   ``rl_cpu_s``; the one with the best **dev** score is the final configuration (test is not looked at).
3. per seed ``n`` (0 .. ``rl_seeds``-1; the seed varies sampling, data order and every RNG of RL):
   ``rl``: REINFORCE from W0 (task metric per sample as reward, leave-one-out baseline over k samples,
   KL leash to W0, optional mixed objective), dev every ``rl_eval_every`` updates, best dev kept (W0
   competes), ``rl_cpu_s`` of training CPU; ``constant``: the same run with every reward replaced by 1
   and no baseline (Choshen et al. 2019: it only sharpens the distribution; with ``constant_lr_factor`` at the
   better on dev, seed 0, of the RL rate and that multiple of it); ``control``: maximum
   likelihood from W0 at the warm start's last learning rate for the CPU seconds the RL run trained,
   with as many dev checks, best dev kept.
4. ``score``: the whole test set, greedy, once per final policy; paired bootstrap 95% intervals of
   RL - W0, RL - control, RL - constant; reference perplexity; KL(pi || W0) per sequence (Monte Carlo
   on the policy's samples); peakiness (the mean entropy and top-1 probability over the greedy outputs' tokens); serving-only exports ``saved_models/results/<task>/mle`` and ``rl_seed<N>``
   of the seed with the best dev score (the others are removed once every seed is scored: ~10 MB each).

Metrics (x100): translation and dialogue: sacreBLEU (cased, detokenized, 13a; corpus level; the
bootstrap resamples sentence statistics); summarization: ROUGE-L F1 (stemmed, best reference, mean).
``--scale`` picks sizes (``full``: the protocol; ``tiny``: the CI slice); ``--set NAME=VALUE`` overrides
one (a changed warm-start setting needs a new ``--work-dir``: the protocol refuses to mix them).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import shutil
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

import tf_rl_text  # noqa: E402  (sets up TensorFlow before transformers)
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, data, metrics, ops  # noqa: E402
from tf_rl_text.trainers.mle import fit_pairs  # noqa: E402
from tf_rl_text._compat import keras, tf  # noqa: E402
from tf_rl_text.defaults import default_seq2seq_model, train_tokenizer  # noqa: E402
from tf_rl_text.export import export_policy  # noqa: E402
from tf_rl_text.rewards import BleuReward, RougeReward  # noqa: E402

TASKS = ("translation", "summarization", "dialogue")
METRIC_NAMES = {"translation": "sacrebleu", "summarization": "rougeL_f1_best_ref", "dialogue": "sacrebleu"}
SCITLDR_SOURCE_WORDS = 120
STAGES = ("warm", "sweep", "all")


@dataclasses.dataclass
class Settings:
    vocab_size: int = 4000
    d_model: int = 128
    layers: int = 2
    dropout: float = 0.0  # T5 dropout_rate during maximum-likelihood training (RL and scoring run without it)
    label_smoothing: float = 0.0  # of the maximum-likelihood targets (warm start and MLE control; fit_pairs)
    max_source_tokens: int = 48
    max_new_tokens: int = 40
    train_limit: int | None = None
    dev_limit: int | None = 300
    test_limit: int | None = None  # None: the whole test set (the protocol); CI only cuts it
    # warm start: MLE, learning rate halved on a dev plateau, stop after the last halving's patience
    mle_lr: float = 2e-3
    mle_batch_size: int = 64
    mle_eval_every: int = 250
    mle_plateau: int = 2  # evaluations without a new best dev before the learning rate halves
    mle_halvings: int = 3  # halvings before the final patience
    mle_patience: int = 3  # after the last halving: evaluations without a new best before stopping
    mle_max_cpu_s: float = 14400.0  # a cap, not the plan: hitting it records converged = false
    # the restart test (issue 40): after the plateau rule stops, a fresh Adam restarts from W0 at the schedule's last
    # learning rate (the same schedule); a restart whose dev score beats W0's beyond noise (its paired-bootstrap 95%
    # interval on dev above 0) becomes W0 and another restart follows, at most this many; 0 = no restart test
    mle_restarts: int = 0
    min_unique_share: float = 0.5  # W0 must give this share of distinct greedy dev outputs, or RL does not start
    # RL (one configuration; the sweep varies some of these)
    rl_baseline: str = "rloo"
    rl_samples_per_prompt: int = 4
    rl_batch_size: int = 16
    rl_lr: float = 1e-4
    kl_coef: float = 0.02
    entropy_coef: float = 0.0
    mle_coef: float = 0.0  # the mixed objective: RL loss + mle_coef * reference NLL (Paulus et al. 2018)
    rl_cpu_s: float = 900.0  # training CPU seconds per RL run (and per control run)
    rl_max_steps: int = 100000
    rl_eval_every: int = 25
    rl_seeds: int = 3
    # the constant-reward control's learning rate (issue 40): 0 = the RL configuration's; > 0 = the better on dev
    # (seed 0) of that and rl_lr x this factor, so the control is not weak only by its step size
    constant_lr_factor: float = 0.0
    # measurement
    kl_samples: int = 200
    bootstrap_resamples: int = 1000
    eval_batch_size: int = 64


# settings the warm start depends on: a work folder's warm start is reused only when these match
WARM_FIELDS = ("vocab_size", "d_model", "layers", "dropout", "label_smoothing", "max_source_tokens", "max_new_tokens",
               "train_limit", "dev_limit", "mle_lr", "mle_batch_size", "mle_eval_every", "mle_plateau", "mle_halvings", "mle_patience",
               "mle_restarts")
# settings an RL run depends on (the sweep's grid names some of them)
RL_FIELDS = ("rl_baseline", "rl_samples_per_prompt", "rl_batch_size", "rl_lr", "kl_coef", "entropy_coef", "mle_coef",
             "rl_cpu_s", "rl_max_steps", "rl_eval_every")
DEFAULT_SWEEP = {"mle_coef": [0.0, 0.5]}

SCALES = {
    "full": {},
    "tiny": dict(vocab_size=300, d_model=32, layers=1, max_source_tokens=16, max_new_tokens=8, train_limit=24,
                 dev_limit=6, test_limit=8, mle_lr=1e-2, mle_batch_size=8, mle_eval_every=10, mle_plateau=1,
                 mle_halvings=1, mle_patience=1, mle_max_cpu_s=120, rl_samples_per_prompt=2, rl_batch_size=4,
                 rl_lr=1e-3, rl_cpu_s=60, rl_max_steps=4, rl_eval_every=2, rl_seeds=2, kl_samples=4,
                 bootstrap_resamples=200, eval_batch_size=16, min_unique_share=0.0),
}
TASK_SCALE = {  # per-task differences from a scale
    ("summarization", "full"): dict(max_source_tokens=160, max_new_tokens=40, mle_batch_size=32, rl_batch_size=8,
                                    mle_eval_every=200, dropout=0.1),
    ("summarization", "tiny"): dict(max_source_tokens=24),
    ("dialogue", "full"): dict(max_source_tokens=96),
}


def _parse_value(current, value: str):
    if value.lower() == "none":
        return None
    if isinstance(current, str):
        return value
    if isinstance(current, float) or (current is None and "." in value):
        return float(value)
    return int(value)


def settings_for(task: str, scale: str, overrides=()) -> Settings:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    s = Settings(**{**SCALES[scale], **TASK_SCALE.get((task, scale), {})})
    fields = {f.name for f in dataclasses.fields(Settings)}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--set takes NAME=VALUE with NAME one of {sorted(fields)}, got {item!r}")
        try:
            setattr(s, key, _parse_value(getattr(s, key), value))
        except ValueError:
            raise ValueError(f"--set {key}: {value!r} is not a {type(getattr(s, key)).__name__}") from None
    if s.dev_limit is not None and s.dev_limit < 300 and scale != "tiny":
        raise ValueError(f"dev_limit must be >= 300 (or none: the whole dev set) for a converged warm start that "
                         f"a reader can trust, got {s.dev_limit}")
    return s


def parse_sweep(items) -> dict:
    """``["mle_coef=0,0.5", "kl_coef=0.02,0.1"]`` -> ``{"mle_coef": [0.0, 0.5], "kl_coef": [0.02, 0.1]}``."""
    grid = {}
    defaults = Settings()
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or key not in RL_FIELDS or not values:
            raise ValueError(f"--sweep takes NAME=V1,V2,... with NAME one of {RL_FIELDS}, got {item!r}")
        grid[key] = [_parse_value(getattr(defaults, key), v) for v in values.split(",")]
    return grid


def sweep_configs(grid: dict) -> list:
    """Every combination of the grid, as override dicts (the first is the grid's first values)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] or [{}]


def config_tag(overrides: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "base"


# --------------------------------------------------------------------------- data
def load_task_data(task: str, data_dir: str | None):
    """(train, dev, test) PromptDatasets of a task from the shared data folder."""
    if task == "translation":
        return tuple(data.load_translation(split=s, data_dir=data_dir) for s in ("train", "val", "test_2016_flickr"))
    if task == "summarization":
        return tuple(data.load_summarization(split=s, max_source_words=SCITLDR_SOURCE_WORDS, data_dir=data_dir)
                     for s in ("train", "dev", "test"))
    if task == "dialogue":  # Topical-Chat here has valid_freq and test_freq: valid_freq is cut 90/10 into train/dev
        train, dev = data.load_dialogue(split="valid_freq", data_dir=data_dir).split(0.9, shuffle=True, seed=0)
        return train, dev, data.load_dialogue(split="test_freq", data_dir=data_dir)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _limit(ds, n):
    return ds if n is None else ds.take(min(int(n), len(ds)))


# --------------------------------------------------------------------------- scoring
def per_example(task: str, outputs, references):
    """Per-example statistics the task metric and its bootstrap need: sacreBLEU rows or ROUGE-L F1s."""
    if task == "summarization":
        return np.asarray(metrics.rouge_f1_batch(outputs, references, "rougeL"), np.float64) * 100
    return metrics.sacrebleu_stats(outputs, references)


def corpus_score(task: str, stats) -> float:
    stats = np.asarray(stats)
    return float(stats.mean()) if task == "summarization" else float(metrics.bleu_from_stats(stats.sum(axis=0)))


def bootstrap_statistic(task: str):
    if task == "summarization":
        return None  # the mean
    return lambda rows: metrics.bleu_from_stats(rows.sum(axis=1))


def score(task, agent, ds, s: Settings):
    outputs = metrics.generate_completions(agent, ds.prompts, max_new_tokens=s.max_new_tokens, greedy=True,
                                           batch_size=s.eval_batch_size)
    stats = per_example(task, outputs, ds.references)
    return corpus_score(task, stats), stats, outputs


def extra_metrics(outputs) -> dict:
    return {"distinct_2": metrics.distinct_n(outputs, 2), "mean_length": metrics.mean_length(outputs)}


def kl_to_reference(agent, reference_model, prompts, s: Settings, seed: int) -> float:
    """Mean over sampled sequences of sum_t [log pi(y_t) - log pi_W0(y_t)], y ~ pi: a Monte-Carlo KL(pi || W0)."""
    total, count = 0.0, 0
    for b in range(0, len(prompts), s.eval_batch_size):
        ids, mask = agent.encode_prompts(prompts[b: b + s.eval_batch_size])
        gen = agent.generate(ids, mask, max_new_tokens=s.max_new_tokens, greedy=False, seed=seed + b)
        cm = tf.cast(gen.completion_mask, tf.float32)
        lp = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask) * cm
        ref = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask, model=reference_model) * cm
        total += float(tf.reduce_sum(lp - ref))
        count += int(ids.shape[0])
    return total / max(count, 1)


def peakiness(agent, prompts, s: Settings) -> dict:
    """What sharpening did (issue 40): over every token of the greedy outputs, the mean entropy (nats) of the
    policy's next-token distribution and the mean probability of its most likely token."""
    entropy, top1, count = 0.0, 0.0, 0.0
    for b in range(0, len(prompts), s.eval_batch_size):
        ids, mask = agent.encode_prompts(prompts[b: b + s.eval_batch_size])
        gen = agent.generate(ids, mask, max_new_tokens=s.max_new_tokens, greedy=True)
        logits = agent.completion_logits(ids, mask, gen.completion_ids, gen.completion_mask)
        tokens = tf.cast(gen.completion_mask, tf.float32)
        entropy += float(tf.reduce_sum(ops.entropy_from_logits(logits) * tokens))
        top1 += float(tf.reduce_sum(tf.reduce_max(tf.nn.softmax(logits, axis=-1), axis=-1) * tokens))
        count += float(tf.reduce_sum(tokens))
    return {"entropy": entropy / max(count, 1.0), "top1_probability": top1 / max(count, 1.0), "tokens": int(count)}


# --------------------------------------------------------------------------- files of the work folder
def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


def write_json(path: str, obj) -> None:
    """Write atomically (a killed process leaves the old file or the new one, never half of one)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_plain(obj), f, indent=1)
    os.replace(tmp, path)


def read_json(path: str):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def save_weights(path: str, weights) -> None:
    tmp = path + ".tmp.npz"
    np.savez(tmp, *weights)
    os.replace(tmp, path)


def load_weights(path: str) -> list:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


class CpuClock:
    """Process CPU seconds and wall seconds of the work done between ``start`` and ``stop`` calls."""

    def __init__(self, cpu_s: float = 0.0, wall_s: float = 0.0):
        self.cpu_s, self.wall_s, self._t = float(cpu_s), float(wall_s), None

    def start(self):
        self._t = (time.process_time(), time.perf_counter())

    def stop(self):
        if self._t is not None:
            self.cpu_s += time.process_time() - self._t[0]
            self.wall_s += time.perf_counter() - self._t[1]
            self._t = None

    def running_cpu(self) -> float:
        return self.cpu_s + (time.process_time() - self._t[0] if self._t is not None else 0.0)


def device_note() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU x{len(gpus)}" if gpus else f"CPU ({os.cpu_count()} cores, {platform.machine()})"


# --------------------------------------------------------------------------- the task's shared pieces
class Task:
    """Data, tokenizer and model builder of one task, shared by every stage (built once per process)."""

    def __init__(self, task: str, s: Settings, work_dir: str, data_dir=None, log=print):
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self.task, self.s, self.work_dir, self.log = task, s, work_dir, log
        os.makedirs(work_dir, exist_ok=True)
        self._check_settings()
        train, dev, test = load_task_data(task, data_dir)
        train, dev, test = _limit(train, s.train_limit), _limit(dev, s.dev_limit), _limit(test, s.test_limit)
        self.max_positions = max(s.max_source_tokens, s.max_new_tokens) + 8
        tok_dir = os.path.join(work_dir, "tokenizer")
        if os.path.exists(os.path.join(tok_dir, "tokenizer.json")):
            from transformers import PreTrainedTokenizerFast

            self.tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
        else:
            self.tokenizer = train_tokenizer(train.prompts + train.first_references(), vocab_size=s.vocab_size,
                                             model_max_length=self.max_positions)
            tmp = tok_dir + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            self.tokenizer.save_pretrained(tmp)
            shutil.rmtree(tok_dir, ignore_errors=True)
            os.replace(tmp, tok_dir)
        self.train, self.dev, self.test = (d.truncate_prompts(self.tokenizer, s.max_source_tokens)
                                           for d in (train, dev, test))
        log(f"[{task}] train {len(self.train)}, dev {len(self.dev)}, test {len(self.test)} examples; work folder "
            f"{work_dir}")

    def _check_settings(self):
        path = os.path.join(self.work_dir, "settings.json")
        mine = {k: getattr(self.s, k) for k in WARM_FIELDS}
        recorded = read_json(path)
        if recorded is None:
            write_json(path, {"task": self.task, "warm_start_settings": mine})
            return
        if recorded.get("task") != self.task:
            raise ValueError(f"the work folder {self.work_dir} holds the task {recorded.get('task')!r}, not "
                             f"{self.task!r}; pass another --work-dir")
        defaults = Settings()  # a field added later: a folder written before it had the default
        old = {k: recorded["warm_start_settings"].get(k, getattr(defaults, k)) for k in mine}
        diff = {k: (old[k], v) for k, v in mine.items() if old[k] != v}
        if diff:
            text = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
            raise ValueError(f"the work folder {self.work_dir} holds a warm start with other settings ({text}); "
                             f"rerun with those settings or pass a new --work-dir")

    def agent(self, seed: int, weights=None):
        s = self.s
        model = default_seq2seq_model(self.tokenizer, d_model=s.d_model, layers=s.layers,
                                      heads=max(1, s.d_model // 32), max_positions=self.max_positions, seed=0,
                                      dropout=s.dropout)
        if weights is not None:
            model.set_weights(weights)
        return RLAgent(model, self.tokenizer, seed=seed)

    def model_note(self, agent) -> str:
        s = self.s
        return (f"T5 from scratch: {s.layers}+{s.layers} layers, width {s.d_model}, "
                f"{agent.model.count_params() / 1e6:.2f}M parameters, BPE vocabulary {len(self.tokenizer)}")

    def dev_check(self, agent) -> tuple:
        """(dev score, share of distinct greedy dev outputs). A checkpoint whose share is below
        ``min_unique_share`` (one template for most inputs) is never kept as a stage's best, whatever it scores."""
        value, _, outputs = score(self.task, agent, self.dev, self.s)
        return value, len(set(outputs)) / max(len(outputs), 1)

    def keepable(self, unique_share: float) -> bool:
        return unique_share >= self.s.min_unique_share

    def path(self, *parts) -> str:
        return os.path.join(self.work_dir, *parts)


# --------------------------------------------------------------------------- stage: MLE (warm start / control)
def mle_stage(t: Task, stage_dir: str, seed: int, start_weights, lr: float, budget_cpu_s: float,
              eval_every_steps: int | None, eval_every_cpu_s: float | None, schedule: bool, label: str) -> dict:
    """Maximum likelihood from ``start_weights`` with dev checks, best dev weights kept (the start
    competes), resumable from ``stage_dir``. ``schedule``: the warm start's plateau schedule (halve,
    then stop on patience); else it runs until ``budget_cpu_s`` of training CPU (the control).

    Returns the stage's state (``done``, ``best``, ``best_step``, ``history`` [(step, dev, lr)],
    ``cpu_s``, ``wall_s``, ``converged``...); the best weights are ``stage_dir/best.npz``.
    """
    s, log = t.s, t.log
    state_path = os.path.join(stage_dir, "state.json")
    state = read_json(state_path)
    if state is not None and state.get("done"):
        return state
    os.makedirs(stage_dir, exist_ok=True)
    agent = t.agent(seed, start_weights)
    optimizer = keras.optimizers.Adam(lr)
    ckpt = tf.train.Checkpoint(model=agent.model, optimizer=optimizer)
    ckpt_dir = os.path.join(stage_dir, "checkpoints")
    if state is None:
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # a crash before the first state.json: start over
        start, unique = t.dev_check(agent)
        if not t.keepable(unique):  # a random start (warm start) is no candidate: any kept model must beat -inf
            start = float("-inf") if start_weights is None else start
        state = {"done": False, "best": start, "best_step": 0, "step": 0, "lr": lr, "halvings": 0, "bad": 0,
                 "history": [[0, max(start, 0.0), lr]], "dev_unique": [[0, unique]], "halving_steps": [], "cpu_s": 0.0,
                 "wall_s": 0.0, "eval_cpu_s": 0.0, "segments": 0, "converged": None}
        save_weights(os.path.join(stage_dir, "best.npz"), agent.model.get_weights())
        log(f"  {label}: start, dev {max(start, 0.0):.2f}" + ("" if np.isfinite(start) else
                                                           f" (degenerate: {unique:.0%} distinct outputs, not kept)"))
    else:
        path = os.path.join(ckpt_dir, f"ckpt-{state['step']}")
        ckpt.restore(path)  # deferred for the optimizer's slots: they load when the first update builds them
        log(f"  {label}: resumed at step {state['step']} (dev best {state['best']:.2f} at {state['best_step']}, "
            f"{state['cpu_s']:.0f} CPU s so far)")
    optimizer.learning_rate.assign(state["lr"])
    manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=2, checkpoint_name="ckpt")
    clock = CpuClock(state["cpu_s"], state["wall_s"])
    base_step = state["step"]
    next_check = {"cpu": state["cpu_s"] + (eval_every_cpu_s or 0.0)}

    def stop_now():
        return state["cpu_s"] >= budget_cpu_s

    def callback(step, loss, _train_seconds):
        step += base_step
        due = (eval_every_steps and step % eval_every_steps == 0) or (
            eval_every_cpu_s and clock.running_cpu() >= next_check["cpu"])
        over = clock.running_cpu() >= budget_cpu_s
        if not (due or over):
            return False
        clock.stop()
        state["cpu_s"], state["wall_s"], state["step"] = clock.cpu_s, clock.wall_s, step
        t0 = time.process_time()
        value, unique = t.dev_check(agent)
        state["history"].append([step, value, state["lr"]])
        state.setdefault("dev_unique", []).append([step, unique])
        if value > state["best"] and t.keepable(unique):
            state.update(best=value, best_step=step, bad=0)
            save_weights(os.path.join(stage_dir, "best.npz"), agent.model.get_weights())
            mark = " (best)"
        elif not np.isfinite(state["best"]):  # no keepable check yet: no model whose plateau the schedule could see
            mark = f" (degenerate: {unique:.0%} distinct outputs, not kept)"
        else:
            state["bad"] += 1
            mark = "" if t.keepable(unique) else f" (degenerate: {unique:.0%} distinct outputs, not kept)"
            if schedule and state["halvings"] < s.mle_halvings and state["bad"] >= s.mle_plateau:
                state["lr"] /= 2
                state["halvings"] += 1
                state["bad"] = 0
                state["halving_steps"].append(step)
                optimizer.learning_rate.assign(state["lr"])
                mark += f" -> learning rate halved to {state['lr']:.2e}"
            elif schedule and state["halvings"] >= s.mle_halvings and state["bad"] >= s.mle_patience:
                state["converged"] = True
        if over and state["converged"] is None and schedule:
            state["converged"] = False
        log(f"    {label} step {step}: nll {loss:.3f}, dev {value:.2f}{mark} ({state['cpu_s']:.0f} CPU s, "
            f"{state['wall_s']:.0f} s training)")
        manager.save(checkpoint_number=step)
        state["eval_cpu_s"] += time.process_time() - t0
        finished = state["converged"] is not None if schedule else over
        if finished:
            state["done"] = True
        write_json(state_path, state)
        next_check["cpu"] = clock.cpu_s + (eval_every_cpu_s or 0.0)
        clock.start()
        return finished

    if not stop_now():
        state["segments"] += 1
        clock.start()
        fit_pairs(agent, t.train.prompts, t.train.first_references(), steps=10 ** 9, batch_size=s.mle_batch_size,
                  learning_rate=state["lr"], max_prompt_tokens=s.max_source_tokens, max_target_tokens=s.max_new_tokens,
                  seed=seed * 1000 + state["segments"], progress=False, optimizer=optimizer, callback=callback,
                  label_smoothing=s.label_smoothing)
        clock.stop()
    state["done"] = True
    write_json(state_path, state)
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the best weights are kept; the mid-stage checkpoints are not
    return state


def warm_stage(t: Task, seed: int = 0) -> dict:
    s = t.s
    t.log(f"[{t.task}] warm start: MLE, lr {s.mle_lr} halved after {s.mle_plateau} dev checks without a new best "
          f"(at most {s.mle_halvings} times), then stop after {s.mle_patience}; dev every {s.mle_eval_every} "
          f"updates on {len(t.dev)} examples; cap {s.mle_max_cpu_s:.0f} CPU s")
    state = mle_stage(t, t.path("warm"), seed, None, s.mle_lr, s.mle_max_cpu_s, s.mle_eval_every, None, True,
                      "warm start")
    t.log(f"  warm start: best dev {state['best']:.2f} at step {state['best_step']} of {state['step']}, converged "
          f"{state['converged']}, {state['cpu_s']:.0f} CPU s ({state['wall_s']:.0f} s wall)")
    if s.mle_restarts:
        state = restart_test(t, state, seed)
    if "dev_unique_share" not in state:  # is W0 a summariser/translator at all, or one sentence for every input?
        _, _, outputs = score(t.task, t.agent(seed, load_weights(t.path("warm", "best.npz"))), t.dev, s)
        state.update(dev_unique_share=len(set(outputs)) / max(len(outputs), 1),
                     dev_distinct_2=metrics.distinct_n(outputs, 2), dev_samples=outputs[:5])
        write_json(t.path("warm", "state.json"), state)
    t.log(f"  warm start outputs on dev: {state['dev_unique_share']:.0%} distinct, distinct-2 "
          f"{state['dev_distinct_2']:.3f}; e.g. {state['dev_samples'][0][:80]!r}")
    return state


def restart_test(t: Task, state: dict, seed: int) -> dict:
    """Issue 40's convergence test of the warm start: a fresh-Adam restart from W0 (``warm/best.npz``) at the
    schedule's last learning rate, run by the same plateau schedule (``warm/restart<i>``); when its best dev score
    beats W0's beyond noise (the paired-bootstrap 95% interval of restart - W0 over dev examples above 0) it becomes
    W0 (the plateau rule's W0 is kept as ``warm/plateau_best.npz``) and the next restart follows; at most
    ``mle_restarts``. Records ``restarts`` (each restart's dev scores, interval and whether it was adopted) and
    ``restart_converged`` (true when a restart no longer gained) in the warm start's state."""
    s = t.s
    restarts = state.setdefault("restarts", [])
    w0_path = t.path("warm", "best.npz")
    if not os.path.exists(t.path("warm", "plateau_best.npz")):
        shutil.copyfile(w0_path, t.path("warm", "plateau_best.npz"))
    while state.get("restart_converged") is None:
        i = len(restarts)
        if i >= s.mle_restarts:
            state["restart_converged"] = False
            break
        lr = s.mle_lr * 0.5 ** s.mle_halvings
        stage_dir = t.path("warm", f"restart{i}")
        t.log(f"  restart test {i + 1}/{s.mle_restarts}: fresh Adam from W0 (dev {state['best']:.2f}) at lr {lr:.2e}")
        r = mle_stage(t, stage_dir, seed + 100 * (i + 1), load_weights(w0_path), lr, s.mle_max_cpu_s, s.mle_eval_every,
                      None, True, f"restart {i + 1}")
        w0_value, w0_stats, _ = score(t.task, t.agent(seed, load_weights(w0_path)), t.dev, s)
        r_value, r_stats, _ = score(t.task, t.agent(seed, load_weights(os.path.join(stage_dir, "best.npz"))), t.dev, s)
        interval = pooled_interval(t.task, [r_stats], [w0_stats], s.bootstrap_resamples)
        adopted = interval["ci95"][0] > 0
        restarts.append({"start_dev": w0_value, "best_dev": r_value, "best_step": r["best_step"], "steps": r["step"],
                         "cpu_s": r["cpu_s"], "gain": interval["delta"], "ci95": interval["ci95"], "adopted": adopted})
        t.log(f"  restart {i + 1}: dev {w0_value:.2f} -> {r_value:.2f} ({interval['delta']:+.2f}, 95% CI "
              f"[{interval['ci95'][0]:+.2f}, {interval['ci95'][1]:+.2f}]): "
              + ("beyond noise, it becomes W0" if adopted else "within noise: W0 is converged"))
        if adopted:
            shutil.copyfile(os.path.join(stage_dir, "best.npz"), w0_path)
            state.update(best=r_value, lr=r["lr"])
            state.pop("dev_unique_share", None)  # W0 changed: its dev outputs are read again
        else:
            state["restart_converged"] = True
        write_json(t.path("warm", "state.json"), state)
    return state


def check_not_degenerate(t: Task, warm: dict) -> None:
    """Refuse to run RL against a W0 that answers most inputs with the same text: beating it would prove nothing."""
    share = warm["dev_unique_share"]
    if warm.get("best_step") == 0 and not np.isfinite(warm.get("best", 0.0)):
        raise DegenerateWarmStart(
            f"[{t.task}] no dev check of the warm start gave distinct outputs for at least {t.s.min_unique_share:.0%} of "
            f"the dev inputs, so there is no W0 to start RL from; change the warm start in a new --work-dir (the record "
            f"is in {t.path('warm', 'state.json')})")
    if share < t.s.min_unique_share:
        raise DegenerateWarmStart(
            f"[{t.task}] the warm start W0 (dev best at step {warm['best_step']}) is degenerate: only {share:.0%} of its "
            f"greedy dev outputs differ (min_unique_share {t.s.min_unique_share:.0%}); e.g. "
            f"{warm['dev_samples'][:2]}. RL against it would measure nothing. Change the warm start (--set dropout=..., "
            "--set mle_lr=..., a larger model or more data) in a new --work-dir; the record is in "
            f"{t.path('warm', 'state.json')}")


class DegenerateWarmStart(RuntimeError):
    """The warm start gives (nearly) one output for every input: the RL stages do not start."""


# --------------------------------------------------------------------------- stage: RL (and the constant-reward control)
def constant_reward(completions, prompts, references):
    """The constant-reward control's reward: 1 for every completion (Choshen et al. 2019)."""
    return [1.0] * len(completions)


def rl_settings(s: Settings, overrides: dict) -> Settings:
    return dataclasses.replace(s, **overrides)


def rl_stage(t: Task, stage_dir: str, seed: int, warm_weights, s: Settings, constant: bool, label: str) -> dict:
    """REINFORCE from W0 for ``s.rl_cpu_s`` training CPU seconds with a dev check every ``rl_eval_every``
    updates (best dev kept, W0 competes); ``constant``: every reward 1 and no baseline. Resumable."""
    log = t.log
    state_path = os.path.join(stage_dir, "state.json")
    state = read_json(state_path)
    if state is not None and state.get("done"):
        return state
    os.makedirs(stage_dir, exist_ok=True)
    tf.random.set_seed(seed)
    agent = t.agent(seed, warm_weights)
    reward = constant_reward if constant else (RougeReward("rougeL") if t.task == "summarization" else BleuReward())
    env = t.train.to_env(agent.tokenizer, reward, batch_size=s.rl_batch_size, max_new_tokens=s.max_new_tokens,
                         agent=agent, seed=seed, context_length=agent.context_length)
    config = ReinforceConfig(learning_rate=s.rl_lr, baseline="none" if constant else s.rl_baseline,
                             num_samples_per_prompt=s.rl_samples_per_prompt, kl_coef=s.kl_coef,
                             entropy_coef=s.entropy_coef, mle_coef=s.mle_coef)
    trainer = ReinforceTrainer(agent, env, config, run_dir=stage_dir, checkpoint_every=0, keep_checkpoints=2,
                               auto_resume=False)
    if state is None:
        shutil.rmtree(trainer.checkpoint_dir, ignore_errors=True)  # a crash before the first state.json: start over
        trainer.restored_from = ""
        start, unique = t.dev_check(agent)
        state = {"done": False, "best": start, "best_step": 0, "step": 0, "history": [[0, start]],
                 "dev_unique": [[0, unique]], "rewards": [],
                 "kl": [], "cpu_s": 0.0, "wall_s": 0.0, "config": dataclasses.asdict(config), "constant": constant}
        save_weights(os.path.join(stage_dir, "best.npz"), agent.model.get_weights())
    else:
        path = os.path.join(trainer.checkpoint_dir, f"ckpt-{state['step']}")
        trainer.checkpoint.restore(path).assert_existing_objects_matched()  # the step state.json records
        trainer.restored_from = path
        trainer._after_restore()
        log(f"  {label}: resumed at update {state['step']} ({state['cpu_s']:.0f} CPU s so far)")
    clock = CpuClock(state["cpu_s"], state["wall_s"])
    while state["cpu_s"] < s.rl_cpu_s and trainer.global_step < s.rl_max_steps:
        clock.start()
        done_before = len(trainer.history)
        # with a run folder, train(n) runs until global_step n, and saves the checkpoint of that step
        trainer.train(min(trainer.global_step + s.rl_eval_every, s.rl_max_steps), progress=False)
        clock.stop()
        recent = trainer.history[done_before:]
        state["rewards"].append(float(np.mean([h["reward_mean"] for h in recent])))
        state["kl"].append(float(np.mean([h.get("kl", 0.0) for h in recent])))
        value, unique = t.dev_check(agent)
        state["step"] = trainer.global_step
        state["history"].append([trainer.global_step, value])
        state.setdefault("dev_unique", []).append([trainer.global_step, unique])
        mark = "" if t.keepable(unique) else f" (degenerate: {unique:.0%} distinct outputs, not kept)"
        if value > state["best"] and t.keepable(unique):
            state.update(best=value, best_step=trainer.global_step)
            save_weights(os.path.join(stage_dir, "best.npz"), agent.model.get_weights())
            mark = " (best)"
        state["cpu_s"], state["wall_s"] = clock.cpu_s, clock.wall_s
        write_json(state_path, state)
        log(f"    {label} update {trainer.global_step}: reward {state['rewards'][-1]:.3f}, kl {state['kl'][-1]:.3f}, "
            f"dev {value:.2f}{mark} ({state['cpu_s']:.0f} CPU s, {state['wall_s']:.0f} s training)")
    state["done"] = True
    write_json(state_path, state)
    shutil.rmtree(os.path.join(stage_dir, "checkpoints"), ignore_errors=True)
    log(f"  {label}: best dev {state['best']:.2f} at update {state['best_step']} of {state['step']} "
        f"({state['cpu_s']:.0f} CPU s)")
    return state


# --------------------------------------------------------------------------- stage: test scoring
def score_stage(t: Task, name: str, weights_path: str, seed: int, warm_model=None, export_to: str | None = None,
                metadata=None) -> dict:
    """Test score (and per-example statistics), reference perplexity, KL to W0 and outputs of one
    final policy, once; cached in ``work/scores/<name>.json``; exported when ``export_to`` is given."""
    path = t.path("scores", f"{name}.json")
    cached = read_json(path)
    if cached is not None and (export_to is None or "export" in cached  # exported once (maybe removed since)
                               or not os.path.exists(weights_path)):  # recorded on another machine, weights not kept
        return cached
    s = t.s
    agent = t.agent(seed, load_weights(weights_path))
    clock = CpuClock()
    clock.start()
    value, stats, outputs = score(t.task, agent, t.test, s)
    ppl = metrics.perplexity(agent, t.test.prompts, t.test.references, batch_size=s.eval_batch_size)
    kl = None if warm_model is None else kl_to_reference(agent, warm_model, t.test.prompts[: s.kl_samples], s, seed)
    peaks = peakiness(agent, t.test.prompts, s)
    clock.stop()
    out = {"name": name, "test": value, "stats": stats, "outputs": outputs, "perplexity": ppl, "kl_to_warm_start": kl,
           "peakiness": peaks, "extra": extra_metrics(outputs), "cpu_s": clock.cpu_s, "wall_s": clock.wall_s}
    if export_to is not None:
        export_policy(agent, export_to, s.max_new_tokens, serving_only=True,
                      metadata=dict(metadata or {}, task=t.task, test_score=value, metric=METRIC_NAMES[t.task]))
        loaded = tf_rl_text.load(export_to).generate(t.test.prompts[:3])
        if loaded != outputs[:3]:
            raise RuntimeError(f"the export {export_to} generates {loaded!r}, the live policy {outputs[:3]!r}")
        out["export"] = os.path.relpath(export_to, REPO)
    write_json(path, out)
    t.log(f"  test {name}: {value:.2f} (perplexity {ppl:.2f}{'' if kl is None else f', KL to W0 {kl:.3f}'})")
    return out


# --------------------------------------------------------------------------- the protocol
def run_protocol(task: str, s: Settings, data_dir=None, work_dir=None, export_dir=None, results_dir=None,
                 scale: str = "custom", sweep: dict | None = None, stop_after: str = "all", log=print,
                 command: str | None = None, record_dir: str | None = None) -> dict | None:
    """Run (or continue) every stage of ``task``; returns the results document (None when stopped early).

    ``record_dir`` (default ``<export_dir>/<task>/stages``): what each finished stage leaves for a later
    run on another machine: its ``state.json``, its test scores, and the warm start's weights and
    tokenizer; a run whose work folder lacks them copies them from there first.
    """
    if stop_after not in STAGES:
        raise ValueError(f"stop_after must be one of {STAGES}, got {stop_after!r}")
    work_dir = work_dir or os.path.join(REPO, "runs", "results", task)
    export_dir = export_dir or os.path.join(REPO, "saved_models", "results")
    results_dir = results_dir or os.path.join(REPO, "docs", "results")
    record_dir = record_dir or os.path.join(export_dir, task, "stages")
    sweep = DEFAULT_SWEEP if sweep is None else sweep
    tf.random.set_seed(0)
    np.random.seed(0)
    restore_records(record_dir, work_dir, os.path.join(export_dir, task, "mle"))
    t = Task(task, s, work_dir, data_dir, log)
    context = {"scale": scale, "command": command, "device": device_note(), "sweep_grid": sweep}
    update = lambda: write_results(t, context, results_dir)  # noqa: E731
    record = lambda *parts: save_record(t, record_dir, *parts)  # noqa: E731
    export = lambda name: os.path.join(export_dir, task, name)  # noqa: E731

    # 1. the warm start, scored on test once and exported
    warm = warm_stage(t, seed=0)
    record("settings.json"), record("tokenizer"), record("warm", "state.json")  # W0's weights: the mle export
    score_stage(t, "mle", t.path("warm", "best.npz"), 0, export_to=export("mle"), metadata={"stage": "mle warm start"})
    warm_weights = load_weights(t.path("warm", "best.npz"))
    record("scores", "mle.json")
    update()
    plot_curves(t, results_dir)
    if stop_after == "warm":
        return None
    check_not_degenerate(t, warm)

    # 2. the sweep on seed 0, dev only
    configs = sweep_configs(sweep)
    for overrides in configs:
        tag = config_tag(overrides)
        rl_stage(t, t.path("rl", tag, "seed0"), 0, warm_weights, rl_settings(s, overrides), False,
                 f"sweep {tag} seed 0")
        record("rl", tag, "seed0", "state.json")
        update()
    chosen = choose_config(t, configs)
    tag = config_tag(chosen)
    log(f"  sweep: chose {tag} (best dev)")
    if stop_after == "sweep":
        return None

    # 3. seeds: RL, the constant-reward control and the equal-compute MLE control; each scored on test once
    #    it is finished (test never feeds back: the configuration was chosen on dev above)
    final = rl_settings(s, chosen)
    warm_model = t.agent(0, warm_weights).model
    # the constant control's candidate rates (constant_tags: the RL rate, and with constant_lr_factor its multiple),
    # each run on seed 0 when there is a choice; the one best on dev serves every seed
    rates = dict(zip(constant_tags(final, tag),
                     (final, rl_settings(final, {"rl_lr": final.rl_lr * final.constant_lr_factor}))))
    for ctag in rates if len(rates) > 1 else []:
        rl_stage(t, t.path("constant", ctag, "seed0"), 0, warm_weights, rates[ctag], True, f"constant {ctag} seed 0")
        record("constant", ctag, "seed0", "state.json")
    ctag = choose_constant(t, final, tag)
    constant = rates[ctag]
    for n in range(s.rl_seeds):
        rl = rl_stage(t, t.path("rl", tag, f"seed{n}"), n, warm_weights, final, False, f"RL seed {n}")
        record("rl", tag, f"seed{n}", "state.json")
        score_stage(t, f"rl_seed{n}", t.path("rl", tag, f"seed{n}", "best.npz"), n, warm_model,
                    export_to=export(f"rl_seed{n}"), metadata={"stage": "rl", "seed": n, "config": tag})
        record("scores", f"rl_seed{n}.json")
        update()
        rl_stage(t, t.path("constant", ctag, f"seed{n}"), n, warm_weights, constant, True, f"constant-reward seed {n}")
        record("constant", ctag, f"seed{n}", "state.json")
        score_stage(t, f"constant_seed{n}", t.path("constant", ctag, f"seed{n}", "best.npz"), n, warm_model)
        record("scores", f"constant_seed{n}.json")
        update()
        checks = max(1, len(rl["history"]) - 1)
        mle_stage(t, t.path("control", tag, f"seed{n}"), 1000 + n, warm_weights, warm["lr"], rl["cpu_s"], None,
                  rl["cpu_s"] / checks, False, f"MLE control seed {n}")
        record("control", tag, f"seed{n}", "state.json")
        score_stage(t, f"control_seed{n}", t.path("control", tag, f"seed{n}", "best.npz"), n, warm_model)
        record("scores", f"control_seed{n}.json")
        doc = update()
        plot_curves(t, results_dir)
    keep_best_seed_export(t, doc, export_dir)
    return update()


def keep_best_seed_export(t: Task, doc: dict, export_dir: str) -> None:
    """Keep the export of the RL seed with the best **dev** score (``rl_seed<N>``, N in the document) beside
    ``mle``; the other seeds' exports are removed (each is ~10 MB; every seed's test outputs and numbers
    are in the document, and its weights can be trained again from the recorded W0)."""
    seeds = [e for e in doc["seeds"] if "test_rl" in e]
    if len(seeds) < t.s.rl_seeds:
        return
    best = max(seeds, key=lambda e: (e["dev_rl"], -e["seed"]))["seed"]
    for e in seeds:
        path = os.path.join(export_dir, t.task, f"rl_seed{e['seed']}")
        if e["seed"] != best and os.path.isdir(path):
            shutil.rmtree(path)
    t.log(f"  kept the export of RL seed {best} (best dev score) beside mle: {os.path.join(export_dir, t.task)}")


def save_record(t: Task, record_dir: str, *parts) -> None:
    """Copy a finished stage's file (or folder) from the work folder into ``record_dir`` (once)."""
    src, dst = t.path(*parts), os.path.join(record_dir, *parts)
    if os.path.exists(dst) or not os.path.exists(src):
        return
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = dst + ".tmp"
    if os.path.isdir(src):
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
    else:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def restore_records(record_dir: str, work_dir: str, mle_export: str | None = None) -> None:
    """Copy into the work folder every recorded file it lacks (a run continued on another machine); the
    warm start's weights come back from the ``mle`` export (its variables are the model's, in order)."""
    if not os.path.isdir(record_dir):
        return
    for root, _dirs, files in os.walk(record_dir):
        for name in files:
            src = os.path.join(root, name)
            dst = os.path.join(work_dir, os.path.relpath(src, record_dir))
            if not os.path.exists(dst):
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
    weights = os.path.join(work_dir, "warm", "best.npz")
    state = read_json(os.path.join(work_dir, "warm", "state.json"))
    if state and state.get("done") and not os.path.exists(weights) and mle_export and \
            os.path.exists(os.path.join(mle_export, "saved_model.pb")):
        loaded = tf.saved_model.load(mle_export)
        save_weights(weights, [v.numpy() for v in loaded.model_variables])


def choose_config(t: Task, configs) -> dict:
    """The sweep's configuration with the best dev score (seed 0); ties go to the earlier one."""
    best, chosen = -np.inf, configs[0]
    for overrides in configs:
        state = read_json(t.path("rl", config_tag(overrides), "seed0", "state.json"))
        if state and state.get("done") and state["best"] > best:
            best, chosen = state["best"], overrides
    return chosen


def constant_tags(s: Settings, tag: str) -> list:
    """The constant-reward control's candidate folders under ``constant/``: ``tag`` (the RL configuration's
    learning rate), and with ``constant_lr_factor`` also ``tag,lr=<rl_lr x factor>``."""
    return [tag] + ([f"{tag},lr={s.rl_lr * s.constant_lr_factor:g}"] if s.constant_lr_factor else [])


def choose_constant(t: Task, s: Settings, tag: str) -> str:
    """The constant control's folder with the best dev score on seed 0 (ties: the RL configuration's rate)."""
    best, chosen = -np.inf, tag
    for ctag in constant_tags(s, tag):
        state = read_json(t.path("constant", ctag, "seed0", "state.json"))
        if state and state.get("done") and state["best"] > best:
            best, chosen = state["best"], ctag
    return chosen


# --------------------------------------------------------------------------- the results document
def write_results(t: Task, context: dict, results_dir: str) -> dict:
    """Rebuild ``results_dir/<task>.json`` from the work folder's finished stages."""
    s, task = t.s, t.task
    stat = bootstrap_statistic(task)
    warm = read_json(t.path("warm", "state.json")) or {}
    scores = {}
    for name in os.listdir(t.path("scores")) if os.path.isdir(t.path("scores")) else []:
        if name.endswith(".json"):
            scores[name[:-5]] = read_json(t.path("scores", name))
    mle = scores.get("mle")
    sweep = []
    for overrides in sweep_configs(context["sweep_grid"]):
        state = read_json(t.path("rl", config_tag(overrides), "seed0", "state.json"))
        if state:
            sweep.append({"config": overrides, "tag": config_tag(overrides), "done": state.get("done", False),
                          "dev_best": state["best"], "best_update": state["best_step"], "updates": state["step"],
                          "cpu_s": state["cpu_s"], "dev_history": state["history"]})
    chosen = choose_config(t, sweep_configs(context["sweep_grid"])) if sweep and all(x["done"] for x in sweep) else None
    tag = config_tag(chosen) if chosen is not None else None
    seeds = []
    for n in range(s.rl_seeds):
        if tag is None:
            break
        rl = read_json(t.path("rl", tag, f"seed{n}", "state.json"))
        const = read_json(t.path("constant", choose_constant(t, rl_settings(s, chosen), tag), f"seed{n}", "state.json"))
        control = read_json(t.path("control", tag, f"seed{n}", "state.json"))
        if not rl:
            continue
        entry = {"seed": n, "config": tag, "dev_mle": warm.get("best"),
                 "dev_rl": rl["best"], "dev_constant": const and const["best"], "dev_control": control and control["best"],
                 "dev_history": {"rl": rl["history"], "constant": const and const["history"],
                                 "control": control and control["history"]},
                 "rl_reward_per_check": rl["rewards"], "rl_kl_per_check": rl["kl"],
                 "steps": {"rl": rl["step"], "rl_best": rl["best_step"],
                           "constant": const and const["step"], "constant_best": const and const["best_step"],
                           "control": control and control["step"], "control_best": control and control["best_step"]},
                 "cpu_s": {"rl": rl["cpu_s"], "constant": const and const["cpu_s"], "control": control and control["cpu_s"]},
                 "wall_s": {"rl": rl["wall_s"], "constant": const and const["wall_s"],
                            "control": control and control["wall_s"]},
                 "rl_config": rl["config"], "constant_config": const and const["config"], "stages_done": {"rl": rl.get("done", False),
                                                            "constant": bool(const and const.get("done")),
                                                            "control": bool(control and control.get("done"))}}
        got = {k: scores.get(f"{k}_seed{n}") for k in ("rl", "constant", "control")}
        if mle is not None and all(got.values()):
            base = np.asarray(mle["stats"])
            entry.update(test_mle=mle["test"], test_rl=got["rl"]["test"], test_constant=got["constant"]["test"],
                         test_control=got["control"]["test"])
            entry["gain"] = entry["test_rl"] - entry["test_mle"]
            entry["gain_vs_control"] = entry["test_rl"] - entry["test_control"]
            entry["gain_vs_constant"] = entry["test_rl"] - entry["test_constant"]
            rl_stats = np.asarray(got["rl"]["stats"])
            for key, other in (("ci95", base), ("ci95_vs_control", np.asarray(got["control"]["stats"])),
                               ("ci95_vs_constant", np.asarray(got["constant"]["stats"]))):
                ci = metrics.paired_bootstrap(rl_stats, other, stat, s.bootstrap_resamples, seed=n)
                entry[key] = [ci["low"], ci["high"]]
            entry["rl_beats_mle"] = entry["ci95"][0] > 0
            if "peakiness" in mle:  # scored since issue 40: what sharpening did, per arm
                entry["peakiness"] = {"mle": mle["peakiness"], **{k: got[k].get("peakiness") for k in got}}
            entry["rl_beats_control"] = entry["ci95_vs_control"][0] > 0
            entry["rl_beats_constant"] = entry["ci95_vs_constant"][0] > 0
            entry["perplexity"] = {"mle": mle["perplexity"], "rl": got["rl"]["perplexity"],
                                   "constant": got["constant"]["perplexity"], "control": got["control"]["perplexity"],
                                   "rl_over_mle": got["rl"]["perplexity"] / mle["perplexity"]}
            entry["kl_to_warm_start"] = {k: got[k]["kl_to_warm_start"] for k in got}
            entry["kl_to_warm_start"]["num_samples"] = min(s.kl_samples, len(t.test))
            entry["extra_test_metrics"] = {"mle": mle["extra"], **{k: got[k]["extra"] for k in got}}
            entry["exports"] = {"mle": mle.get("export"), "rl": got["rl"].get("export")}
            entry["samples"] = [{"source": p, "reference": r, "mle": a, "rl": b} for p, r, a, b in
                                zip(t.test.prompts[:3], t.test.references[:3], mle["outputs"][:3],
                                    got["rl"]["outputs"][:3])]
        seeds.append(entry)
    scored = [e for e in seeds if "test_rl" in e]
    doc = {
        "task": task,
        "metric": METRIC_NAMES[task],
        "metric_scale": "x100",
        "protocol": "issue 25: one converged warm start, RL seeds from it, equal-compute MLE and constant-reward "
                    "controls, budgets in process CPU seconds, configuration chosen on dev, test scored once",
        "ci": "paired bootstrap 95% interval over test examples of test_rl - test_mle (ci95), of test_rl - "
              "test_control (ci95_vs_control) and of test_rl - test_constant (ci95_vs_constant)",
        "warm_start": {
            "seeds": "one warm start (seed 0); the RL seeds vary sampling, data order and every RNG of RL",
            "dev_history": warm.get("history"), "dev_unique": warm.get("dev_unique"),
            "min_unique_share": s.min_unique_share, "halving_steps": warm.get("halving_steps"),
            "converged": warm.get("converged"), "done": warm.get("done", False), "best_dev": warm.get("best"),
            "best_step": warm.get("best_step"), "steps": warm.get("step"), "final_lr": warm.get("lr"),
            "cpu_s": warm.get("cpu_s"), "wall_s": warm.get("wall_s"), "eval_cpu_s": warm.get("eval_cpu_s"),
            "test": mle and mle["test"], "test_perplexity": mle and mle["perplexity"],
            "dev_unique_share": warm.get("dev_unique_share"), "dev_distinct_2": warm.get("dev_distinct_2"),
            "dev_samples": warm.get("dev_samples"),
            "restarts": warm.get("restarts"), "restart_converged": warm.get("restart_converged"),
            "degenerate": (None if warm.get("dev_unique_share") is None
                           else warm["dev_unique_share"] < s.min_unique_share),
            "plot": f"docs/results/{task}_dev_curve.png",
        },
        "sweep": {"grid": context["sweep_grid"], "seed": 0, "selection": "best dev score", "runs": sweep,
                  "chosen": tag},
        "seeds": seeds,
        "mean_gain": float(np.mean([e["gain"] for e in scored])) if scored else None,
        "mean_gain_vs_control": float(np.mean([e["gain_vs_control"] for e in scored])) if scored else None,
        "mean_gain_vs_constant": float(np.mean([e["gain_vs_constant"] for e in scored])) if scored else None,
        "num_examples": {"train": len(t.train), "dev": len(t.dev), "test": len(t.test)},
        "model": t.model_note(t.agent(0)) if "model_note" not in context else context["model_note"],
        "settings": dataclasses.asdict(s),
        "scale": context["scale"],
        "device": context["device"],
        "command": context["command"],
    }
    context["model_note"] = doc["model"]
    write_json(os.path.join(results_dir, f"{task}.json"), doc)
    return doc


def plot_curves(t: Task, results_dir: str) -> str | None:
    """The warm start's dev curve (learning-rate halvings marked) beside the RL seeds' dev curves."""
    doc = read_json(os.path.join(results_dir, f"{t.task}.json"))
    if not doc or not doc["warm_start"]["dev_history"]:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    hist = np.asarray(doc["warm_start"]["dev_history"], dtype=float)
    a.plot(hist[:, 0], hist[:, 1], marker="o", ms=3, label="dev check")
    unique = dict((int(step), share) for step, share in (doc["warm_start"].get("dev_unique") or []))
    low = doc["warm_start"].get("min_unique_share", 0.0)
    bad = [(x, y) for x, y in hist[:, :2] if unique.get(int(x), 1.0) < low]
    if bad:  # one output for most inputs: never kept, whatever it scored
        a.plot(*zip(*bad), "x", color="red", ms=7, label=f"degenerate (< {low:.0%} distinct outputs): not kept")
    best = doc["warm_start"].get("best_step")
    if best is not None and doc["warm_start"].get("best_dev") is not None:
        a.plot([best], [doc["warm_start"]["best_dev"]], "*", color="green", ms=12, label="W0 (kept)")
    a.legend(fontsize=7)
    for x in doc["warm_start"]["halving_steps"] or []:
        a.axvline(x, color="grey", ls="--", lw=0.8)
    a.set(title=f"{t.task}: MLE warm start (dashed: lr halved; converged={doc['warm_start']['converged']})",
          xlabel="update", ylabel=f"dev {doc['metric']}")
    for e in doc["seeds"]:
        for arm, style in (("rl", "-"), ("constant", ":"), ("control", "--")):
            h = e["dev_history"].get(arm)
            if h:
                h = np.asarray(h, dtype=float)
                b.plot(h[:, 0], h[:, 1], style, label=f"{arm} seed {e['seed']}")
    b.set(title="from W0: RL, constant reward, MLE control (dev)", xlabel="update", ylabel=f"dev {doc['metric']}")
    if doc["seeds"]:
        b.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(results_dir, f"{t.task}_dev_curve.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- what the page compares with
def sacrebleu_signature(hypotheses, references) -> tuple:
    """``(signature, score)``: sacreBLEU's own corpus BLEU of ``hypotheses`` and its signature, with the settings
    ``metrics.sacrebleu_stats`` + ``bleu_from_stats`` (and ``metrics.sacrebleu_corpus``) use: ``BLEU()``'s defaults
    (cased, 13a tokenizer, exp smoothing). The score checks a recorded one; the signature is what a reader needs."""
    from sacrebleu.metrics import BLEU

    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    width = max(len(r) for r in refs)
    streams = [[rs[j] if j < len(rs) else None for rs in refs] for j in range(width)]
    bleu = BLEU()
    value = bleu.corpus_score(list(hypotheses), streams).score
    return str(bleu.get_signature()), float(value)


def lead_sentences(n: int = 1, split: str = "test", data_dir: str | None = None) -> list:
    """The first ``n`` source sentences of each SciTLDR abstract, in file order: the lead-n extractive baseline
    (the whole abstract, not the ``SCITLDR_SOURCE_WORDS`` the models read)."""
    out, file = [], os.path.join(data.shared_data_dir(data_dir), "scitldr", f"{split}.jsonl")
    for _, record in data.files.jsonl_records(file):
        source = record["source"]
        sentences = [x.strip() for x in ([source] if isinstance(source, str) else source) if x.strip()]
        out.append(" ".join(sentences[:n]))
    return out


def pooled_interval(task: str, a_runs, b_runs, num_resamples: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap over test examples of the mean over seeds of (a_s - b_s), one interval for all seeds:
    each resample draws the same test examples for every seed and both systems. ``a_runs``, ``b_runs``: per
    seed, the per-example statistics ``per_example`` gives (ROUGE-L F1s, or sacreBLEU rows)."""
    k = len(a_runs)
    a = np.concatenate([np.asarray(x, np.float64).reshape(len(x), -1) for x in a_runs], axis=1)
    b = np.concatenate([np.asarray(x, np.float64).reshape(len(x), -1) for x in b_runs], axis=1)
    stat = None  # summarization: the mean over examples and seeds

    if task != "summarization":
        def stat(rows):
            r, n = rows.shape[:2]
            summed = rows.reshape(r, n, k, 10).sum(axis=1).reshape(r * k, 10)
            return np.asarray(metrics.bleu_from_stats(summed)).reshape(r, k).mean(axis=1)

    ci = metrics.paired_bootstrap(a, b, stat, num_resamples, seed=seed)
    return {"delta": ci["delta"], "ci95": [ci["low"], ci["high"]], "p_not_better": ci["p_not_better"],
            "seeds": k, "num_resamples": num_resamples}


def record_baselines(task: str, results_dir: str, record_dir: str, data_dir: str | None = None) -> dict:
    """Add what ``docs/results.md`` compares with to ``results_dir/<task>.json``, from the committed records
    (``record_dir``: the per-policy test outputs and statistics) and the data; trains and generates nothing.

    Both tasks: ``pooled``, one paired-bootstrap interval over the seeds of RL - W0, RL - MLE control and
    RL - constant. Translation: ``sacrebleu``, the signature, with W0's recorded outputs rescored by sacreBLEU
    itself (it must give the recorded score). Summarization: ``baselines``, lead-1, lead-2 and one fixed
    sentence (W0's first dev output) for every abstract, scored by ``per_example`` (the scorer of every
    figure), and the paired intervals of W0 and of each seed's RL and constant control against lead-1.
    The protocol rebuilds the JSON without these keys: rerun ``--baselines`` after it."""
    path = os.path.join(results_dir, f"{task}.json")
    doc = read_json(path)
    scores = {name[:-5]: read_json(os.path.join(record_dir, "scores", name))
              for name in os.listdir(os.path.join(record_dir, "scores")) if name.endswith(".json")}
    seeds = [e["seed"] for e in doc["seeds"] if "test_rl" in e]
    resamples = doc["settings"]["bootstrap_resamples"]
    test = load_task_data(task, data_dir)[2]
    w0 = scores["mle"]
    check = per_example(task, w0["outputs"], test.references)
    if abs(corpus_score(task, check) - w0["test"]) > 1e-6:
        raise RuntimeError(f"{task}: W0's recorded outputs score {corpus_score(task, check)}, the record says "
                           f"{w0['test']}: the data or the scorer is not the one the records were made with")
    stats = {name: np.asarray(r["stats"], np.float64) for name, r in scores.items()}
    doc["pooled"] = {"how": "paired bootstrap over test examples (the same draw for every seed) of the mean over "
                            "the seeds of the per-seed difference; python benchmarks/results.py --baselines"}
    for key, other in (("rl_vs_mle", lambda n: "mle"), ("rl_vs_control", lambda n: f"control_seed{n}"),
                       ("rl_vs_constant", lambda n: f"constant_seed{n}")):
        doc["pooled"][key] = pooled_interval(task, [stats[f"rl_seed{n}"] for n in seeds],
                                             [stats[other(n)] for n in seeds], resamples)
    if task == "summarization":
        systems = {"lead_1": ("the first sentence of each test abstract", lead_sentences(1, data_dir=data_dir)),
                   "lead_2": ("the first two sentences of each test abstract", lead_sentences(2, data_dir=data_dir)),
                   "constant_sentence": ("one fixed sentence for every abstract: W0's first dev output",
                                         [doc["warm_start"]["dev_samples"][0]] * len(test))}
        base = {"how": "scored like every figure on the page: ROUGE-L F1 x100, stemmed, best over every reference, "
                       "mean over all test abstracts; intervals: paired bootstrap 95% over test abstracts; "
                       "python benchmarks/results.py --baselines",
                "num_examples": len(test),
                "reference_mean_length": metrics.mean_length([r for rs in test.references for r in rs])}
        for name, (how, outputs) in systems.items():
            stats[name] = per_example(task, outputs, test.references)
            base[name] = {"what": how, "test": corpus_score(task, stats[name]), **extra_metrics(outputs)}
        base["constant_sentence"]["text"] = doc["warm_start"]["dev_samples"][0]
        vs = {"mle": ("mle", 0)}
        for n in seeds:
            vs.update({f"rl_seed{n}": (f"rl_seed{n}", n), f"constant_seed{n}": (f"constant_seed{n}", n)})
        base["vs_lead_1"] = {}
        for key, (name, n) in vs.items():
            ci = metrics.paired_bootstrap(stats[name], stats["lead_1"], None, resamples, seed=n)
            base["vs_lead_1"][key] = {"delta": ci["delta"], "ci95": [ci["low"], ci["high"]]}
        base["vs_lead_1"]["rl_pooled"] = pooled_interval(task, [stats[f"rl_seed{n}"] for n in seeds],
                                                         [stats["lead_1"]] * len(seeds), resamples)
        doc["baselines"] = base
    else:
        signature, value = sacrebleu_signature(w0["outputs"], test.references)
        doc["sacrebleu"] = {"signature": signature, "w0_rescored": value,
                            "how": "sacrebleu.metrics.BLEU() (the settings of metrics.sacrebleu_stats and "
                                   "sacrebleu_corpus) on W0's recorded test outputs; python benchmarks/results.py "
                                   "--baselines"}
    write_json(path, doc)
    return doc


def summary_table(results_dir: str, tasks=TASKS) -> str:
    rows = ["| task | seed | W0 (MLE) | MLE control | constant reward | RL | RL - W0 [95% CI] | RL - MLE control "
            "[95% CI] | RL - constant [95% CI] | ppl W0 -> RL | KL(RL‖W0) | RL CPU s |", "|" + "---|" * 12]

    def ci(e, key, gain):
        return f"{e[gain]:+.2f} [{e[key][0]:+.2f}, {e[key][1]:+.2f}]"

    for task in tasks:
        doc = read_json(os.path.join(results_dir, f"{task}.json"))
        if not doc:
            continue
        w = doc.get("warm_start", {})
        if w.get("best_dev") is not None:
            test = "" if w.get("test") is None else f"{w['test']:.2f}"
            rows.append(f"| {task} | warm start | {test} | | | | "
                        f"dev {w['best_dev']:.2f} at update {w['best_step']} of {w['steps']}, converged "
                        f"{w['converged']}, {w['cpu_s']:.0f} CPU s | | | | | |")
        for e in doc["seeds"]:
            if "test_rl" not in e:
                rows.append(f"| {task} | {e['seed']} | | | | | dev: W0 {e['dev_mle']:.2f}, RL {e['dev_rl']:.2f} "
                            f"(stages done: {e['stages_done']}) | | | | | {e['cpu_s']['rl']:.0f} |")
                continue
            rows.append(f"| {task} | {e['seed']} | {e['test_mle']:.2f} | {e['test_control']:.2f} | "
                        f"{e['test_constant']:.2f} | {e['test_rl']:.2f} | {ci(e, 'ci95', 'gain')} | "
                        f"{ci(e, 'ci95_vs_control', 'gain_vs_control')} | {ci(e, 'ci95_vs_constant', 'gain_vs_constant')} "
                        f"| {e['perplexity']['mle']:.1f} -> {e['perplexity']['rl']:.1f} | "
                        f"{e['kl_to_warm_start']['rl']:.3f} | {e['cpu_s']['rl']:.0f} |")
        if doc.get("mean_gain") is not None:
            n = sum("test_rl" in e for e in doc["seeds"])
            rows.append(f"| {task} | mean of {n} | | | | | {doc['mean_gain']:+.2f} | {doc['mean_gain_vs_control']:+.2f} "
                        f"| {doc['mean_gain_vs_constant']:+.2f} | | | |")
    for task in tasks:
        doc = read_json(os.path.join(results_dir, f"{task}.json")) or {}
        if task != "summarization" and doc.get("sacrebleu"):
            rows.append(f"\n{task}: sacreBLEU {doc['sacrebleu']['signature']}")
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--task", choices=TASKS)
    p.add_argument("--scale", choices=sorted(SCALES), default="full")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one setting")
    p.add_argument("--sweep", action="append", default=None, metavar="NAME=V1,V2",
                   help=f"an RL setting the dev sweep varies (repeatable; default {DEFAULT_SWEEP})")
    p.add_argument("--stop-after", choices=STAGES, default="all", help="stop after this stage (rerun to continue)")
    p.add_argument("--data-dir", default=None, help="folder with multi30k/, scitldr/, topical_chat/ "
                                                    "(default: $TF_RL_TEXT_DATA)")
    p.add_argument("--work-dir", default=None, help="stage checkpoints and results (default: runs/results/<task>)")
    p.add_argument("--export-dir", default=None, help="default: saved_models/results")
    p.add_argument("--results-dir", default=None, help="default: docs/results")
    p.add_argument("--summary", action="store_true", help="print the table of every recorded seed and exit")
    p.add_argument("--baselines", action="store_true",
                   help="add the baselines, pooled intervals and sacreBLEU signature to the results JSON from the "
                        "committed records, and exit (--task: one task; default: translation and summarization)")
    args = p.parse_args(argv)
    results_dir = args.results_dir or os.path.join(REPO, "docs", "results")
    if args.summary:
        print(summary_table(results_dir))
        return None
    if args.baselines:
        export_dir = args.export_dir or os.path.join(REPO, "saved_models", "results")
        for task in [args.task] if args.task else ["translation", "summarization"]:
            record_baselines(task, results_dir, os.path.join(export_dir, task, "stages"), args.data_dir)
            print(f"results.py: baselines of {task} written to {os.path.join(results_dir, task + '.json')}")
        return None
    if not args.task:
        p.error("--task is required (or --summary)")
    try:
        s = settings_for(args.task, args.scale, args.set)
        sweep = None if args.sweep is None else parse_sweep(args.sweep)
    except ValueError as e:
        p.error(str(e))
    command = "python benchmarks/results.py " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        return run_protocol(args.task, s, args.data_dir, args.work_dir, args.export_dir, results_dir, args.scale,
                            sweep=sweep, stop_after=args.stop_after, command=command)
    except DegenerateWarmStart as e:
        print(f"results.py: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
