"""Keras-style callbacks for :meth:`Trainer.train <tf_rl_text.trainers.base.Trainer.train>`.

A callback overrides any of ``on_train_begin(trainer)``, ``on_step_end(step, logs)``,
``on_eval_end(step, logs)`` and ``on_train_end(logs)``; ``step`` is the trainer's global step
after the step (1 for the first), ``logs`` the step's statistics (floats). Built-ins:

* :class:`TensorBoard` - namespaced scalars (``rollout/reward_mean``, ``objective/kl``,
  ``objective/kl_coef``, ``loss/policy``, ``loss/value``, ``policy/entropy``,
  ``policy/clip_fraction``, ``time/step_s``, ``lr``, ...) and sample completions as text;
* :class:`JSONLLogger` - one JSON line per step (a resumed run drops the lines past its checkpoint);
* :class:`ProgressBar` - tqdm;
* :class:`CheckpointCallback` - a checkpoint every N steps;
* :class:`EvalCallback` - a held-out evaluation every N steps that keeps the best weights.

Example::

    from tf_rl_text.callbacks import EvalCallback, JSONLLogger, TensorBoard
    trainer = ReinforceTrainer(agent, env, config, run_dir="runs/demo")
    trainer.train(200, callbacks=[TensorBoard("runs/demo/tensorboard"), JSONLLogger("runs/demo/metrics.jsonl"),
                                  EvalCallback(dev_set, ["bleu"], every=50, keep_best="bleu")])
"""
from __future__ import annotations

import json
import math
import os
import warnings

from tf_rl_text._compat import tf

SCALAR_NAMES = {
    "reward_mean": "rollout/reward_mean",
    "reward_std": "rollout/reward_std",
    "completion_length": "rollout/completion_length",
    "kl": "objective/kl",
    "kl_coef": "objective/kl_coef",
    "loss": "loss/total",
    "policy_loss": "loss/policy",
    "value_loss": "loss/value",
    "td_error": "loss/td_error",
    "entropy": "policy/entropy",
    "clip_fraction": "policy/clip_fraction",
    "approx_kl": "policy/approx_kl",
    "advantage_mean": "policy/advantage_mean",
    "explained_variance": "value/explained_variance",
    "q_taken": "value/q_taken",
    "target": "value/td_target",
    "epsilon": "policy/epsilon",
    "grad_norm": "optim/grad_norm",
    "step_time_s": "time/step_s",
    "lr": "lr",
}
"""The trainers' statistic names -> TensorBoard tags (TRL/cleanrl style); others go under ``train/``."""


def scalar_name(key: str) -> str:
    return SCALAR_NAMES.get(key, f"train/{key}")


class Callback:
    """Base class: every hook does nothing. ``self.trainer`` is set by ``on_train_begin``."""

    trainer = None

    def on_train_begin(self, trainer):
        self.trainer = trainer

    def on_step_end(self, step: int, logs: dict):
        pass

    def on_eval_end(self, step: int, logs: dict):
        pass

    def on_train_end(self, logs: dict):
        pass


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_step_end=lambda step, logs: ...)``."""

    def __init__(self, on_train_begin=None, on_step_end=None, on_eval_end=None, on_train_end=None):
        self._fns = {"on_train_begin": on_train_begin, "on_step_end": on_step_end, "on_eval_end": on_eval_end,
                     "on_train_end": on_train_end}

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        if self._fns["on_train_begin"]:
            self._fns["on_train_begin"](trainer)

    def on_step_end(self, step, logs):
        if self._fns["on_step_end"]:
            self._fns["on_step_end"](step, logs)

    def on_eval_end(self, step, logs):
        if self._fns["on_eval_end"]:
            self._fns["on_eval_end"](step, logs)

    def on_train_end(self, logs):
        if self._fns["on_train_end"]:
            self._fns["on_train_end"](logs)


class CallbackList(Callback):
    """Calls each hook of every callback in order; ``on_eval_end`` of one reaches all others."""

    def __init__(self, callbacks=()):
        self.callbacks = []
        for c in callbacks:
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks must be tf_rl_text.callbacks.Callback objects, got {type(c).__name__}; "
                                "wrap a function in LambdaCallback(on_step_end=fn)")
            self.callbacks.append(c)
            c.callback_list = self

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        for c in self.callbacks:
            c.on_train_begin(trainer)
        for c in self.callbacks:  # every callback is ready: work that reports to the others (EvalCallback)
            ready = getattr(c, "on_train_ready", None)
            if ready is not None:
                ready()

    def on_step_end(self, step, logs):
        for c in self.callbacks:
            c.on_step_end(step, logs)

    def on_eval_end(self, step, logs):
        for c in self.callbacks:
            c.on_eval_end(step, logs)

    def on_train_end(self, logs):
        for c in self.callbacks:
            c.on_train_end(logs)


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------- TensorBoard
class TensorBoard(Callback):
    """Scalars of every step under namespaced tags (:data:`SCALAR_NAMES`), evaluation results under
    ``eval/``, and every ``samples_every`` steps a text summary ``samples/completions`` with the
    last batch's prompts, completions and rewards (up to ``num_samples``).

    ``log_dir`` defaults to ``run_dir/tensorboard`` of the trainer. View with
    ``tensorboard --logdir RUN_DIR/tensorboard``.
    """

    def __init__(self, log_dir: str | None = None, samples_every: int = 10, num_samples: int = 4,
                 eval_text=None):
        if int(samples_every) != samples_every or samples_every < 0:
            raise ValueError(f"samples_every must be an integer >= 0 (0 = no text samples), got {samples_every}")
        self.log_dir = log_dir
        self.samples_every = int(samples_every)
        self.num_samples = int(num_samples)
        if eval_text is not None and not callable(eval_text):
            raise ValueError(f"eval_text must be a function trainer -> markdown text (e.g. "
                             f"tf_rl_text.explain.credit_text('a prompt')), got {eval_text!r}")
        self.eval_text = eval_text
        """``fn(trainer) -> str``: logged as the text summary ``eval/text`` at every evaluation, e.g.
        :func:`tf_rl_text.explain.credit_text` (one sample's per-token credit)."""
        self.writer = None

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        if self.log_dir is None:
            if not trainer.run_dir:
                raise ValueError("TensorBoard() needs a log_dir when the trainer has no run_dir")
            self.log_dir = os.path.join(trainer.run_dir, "tensorboard")
        self.active = getattr(trainer, "is_chief", True)  # only the chief of a multi-worker run writes events
        if self.writer is None and self.active:
            self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_step_end(self, step, logs):
        if self.writer is None:
            return
        with self.writer.as_default(step=int(step)):
            for key, value in logs.items():
                value = _finite(value)
                if value is not None and key != "update":
                    tf.summary.scalar(scalar_name(key), value)
            if self.samples_every and step % self.samples_every == 0:
                text = self._samples()
                if text:
                    tf.summary.text("samples/completions", text)
        self.writer.flush()

    def _samples(self):
        env = getattr(self.trainer, "env", None)
        completions = list(getattr(env, "completions", []) or [])[: self.num_samples]
        if not completions:
            return ""
        prompts = list(getattr(env, "batch_prompts", []) or [])
        rewards = getattr(env, "last_rewards", None)
        rows = ["| prompt | completion | reward |", "|---|---|---|"]
        for i, c in enumerate(completions):
            p = prompts[i] if i < len(prompts) else ""
            r = f"{float(rewards[i]):+.3f}" if rewards is not None and i < len(rewards) else ""
            rows.append(f"| {p!s} | {c!s} | {r} |".replace("\n", " "))
        return "\n".join(rows)

    def on_eval_end(self, step, logs):
        if self.writer is None:
            return
        with self.writer.as_default(step=int(step)):
            for key, value in logs.items():
                value = _finite(value)
                if value is not None:
                    tf.summary.scalar(f"eval/{key}", value)
            if self.eval_text is not None:
                tf.summary.text("eval/text", self.eval_text(self.trainer))
        self.writer.flush()

    def on_train_end(self, logs):
        if self.writer is not None:
            self.writer.flush()


# --------------------------------------------------------------------------- JSONL
def read_jsonl(path: str, torn: str = "skipped") -> list:
    """The rows of a JSON-lines file; a line that is not whole JSON (cut by a kill) is left out with a
    warning naming the file and the line (``torn``: what happens to it)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                warnings.warn(f"{path}, line {lineno}: not a whole JSON line (cut by a kill?): {line.strip()[:60]!r}; "
                              f"{torn}")
    return rows


class JSONLLogger(Callback):
    """One line ``{"step": s, **logs}`` per step (``{"step": s, "eval": {...}}`` per evaluation)
    appended to ``path`` (default ``run_dir/metrics.jsonl``). When a run resumes from a checkpoint
    at step k, the lines after step k (written before the crash, replayed now) are dropped first,
    so the file reads as one uninterrupted run."""

    def __init__(self, path: str | None = None):
        self.path = path

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        if self.path is None:
            if not trainer.run_dir:
                raise ValueError("JSONLLogger() needs a path when the trainer has no run_dir")
            self.path = os.path.join(trainer.run_dir, "metrics.jsonl")
        self.active = getattr(trainer, "is_chief", True)  # only the chief of a multi-worker run writes
        if not self.active:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if os.path.exists(self.path):
            rows = [row for row in read_jsonl(self.path, "dropped, and its step rebuilt from the checkpoint")
                    if isinstance(row, dict) and row.get("step", 0) <= trainer.global_step]
            rows = self._fill_from_history(rows, trainer)
            tmp = self.path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(row, default=float) + "\n" for row in rows)
            os.replace(tmp, self.path)

    @staticmethod
    def _fill_from_history(rows, trainer):
        """Every step up to the checkpoint's once, in order: a step whose line is missing (cut by a kill)
        comes back from the trainer's history, which the checkpoint holds."""
        history = getattr(trainer, "history", None) or []
        steps = {r["step"] for r in rows if "eval" not in r}
        for step in range(1, min(trainer.global_step, len(history)) + 1):
            if step not in steps:
                logs = history[step - 1]
                rows.append({"step": step, **{k: _finite(v) if not isinstance(v, str) else v for k, v in logs.items()}})
        return sorted(rows, key=lambda r: (r["step"], "eval" in r))

    def _write(self, row):
        if not getattr(self, "active", True):
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")

    def on_step_end(self, step, logs):
        self._write({"step": int(step), **{k: _finite(v) if not isinstance(v, str) else v for k, v in logs.items()}})

    def on_eval_end(self, step, logs):
        self._write({"step": int(step), "eval": {k: _finite(v) for k, v in logs.items()}})


# --------------------------------------------------------------------------- progress bar
class ProgressBar(Callback):
    """A tqdm bar from the run's current step to its target, showing ``postfix(logs)``."""

    def __init__(self, desc: str | None = None, unit: str = "step", postfix=None):
        self.desc, self.unit, self.postfix = desc, unit, postfix
        self.bar = None

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        from tqdm.auto import tqdm

        start = trainer.global_step
        target = getattr(trainer, "target_step", start)
        self.bar = tqdm(total=max(0, target - start), desc=self.desc or getattr(trainer, "algorithm", "train"),
                        unit=self.unit)
        self._last = start
        self._timed_from = None  # the step after which the rate (and so the ETA) is measured

    def on_step_end(self, step, logs):
        self.bar.update(step - self._last)
        self._last = step
        if self._timed_from is None:  # the first step traces the graphs (seconds to minutes): keep it out of the rate
            self._timed_from = done = self.bar.n
            total = self.bar.total
            self.bar.reset(total=total)  # restarts the clock and the smoothed rate
            self.bar.initial = self.bar.n = self.bar.last_print_n = done
            self.bar.refresh()
        if self.postfix is not None:
            self.bar.set_postfix(**self.postfix(logs))

    def on_train_end(self, logs):
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- checkpoints
class CheckpointCallback(Callback):
    """Save the trainer's checkpoint (its ``run_dir/checkpoints``) every ``every`` steps."""

    def __init__(self, every: int):
        if int(every) != every or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every}")
        self.every = int(every)

    def on_step_end(self, step, logs):
        if step % self.every == 0:
            self.trainer.save_checkpoint()


class EvalCallback(Callback):
    """Evaluate on held-out data every ``every`` steps (and at the end); keep the best weights.

    Args:
      dataset: a :class:`~tf_rl_text.data.PromptDataset` (or a list of prompts) for
        :func:`tf_rl_text.metrics.evaluate`.
      metrics: metric names for :func:`tf_rl_text.metrics.evaluate`, or a function
        ``fn(trainer) -> dict of floats``.
      every: evaluate every this many steps (0 = only at the end).
      keep_best: the metric (a key of the results) whose best value is kept, or None. The best
        weights are saved to ``run_dir/best`` (a ``tf.train.Checkpoint`` of the model plus
        ``best.json``; kept in memory without a run_dir); at the end of training the model is
        set back to them unless ``restore_best=False``. The score before training (step
        ``trainer.global_step`` at the start) competes too, so RL that only hurts keeps the start.
      mode: "max" or "min" (for a loss-like metric).
      max_new_tokens, batch_size: passed to :func:`tf_rl_text.metrics.evaluate`.
      evaluate_at_start: evaluate before the first step (with ``keep_best``); ``start_score``: the
        starting score when the caller measured it already (no evaluation, the weights are kept).

    After training: ``best_score``, ``best_step``, ``results`` (list of (step, dict)).
    """

    def __init__(self, dataset, metrics=("reward",), every: int = 0, keep_best: str | None = None, mode: str = "max",
                 restore_best: bool = True, max_new_tokens: int | None = None, batch_size: int = 32,
                 evaluate_at_start: bool = True, start_score: float | None = None):
        if int(every) != every or every < 0:
            raise ValueError(f"every must be an integer >= 0 (0 = only at the end), got {every}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.dataset, self.metrics, self.every = dataset, metrics, int(every)
        self.keep_best, self.mode, self.restore_best = keep_best, mode, restore_best
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.evaluate_at_start = evaluate_at_start
        self.start_score = start_score
        self.best_score = None
        self.best_step = None
        self.results: list = []
        self._best_weights = None
        self._last_eval = None

    # ------------------------------------------------------------------ helpers
    def evaluate_now(self) -> dict:
        trainer = self.trainer
        if callable(self.metrics):
            return {k: float(v) for k, v in self.metrics(trainer).items()}
        from tf_rl_text import metrics as metrics_module

        return metrics_module.evaluate(trainer.acting_agent, self.dataset, metrics=list(self.metrics),
                                       max_new_tokens=self.max_new_tokens or trainer.env.max_new_tokens,
                                       greedy=True, batch_size=self.batch_size)

    @property
    def best_dir(self):
        run_dir = getattr(self.trainer, "run_dir", None)
        return os.path.join(run_dir, "best") if run_dir else None

    def _better(self, score):
        if self.best_score is None:
            return True
        return score > self.best_score if self.mode == "max" else score < self.best_score

    def _model(self):
        return self.trainer.acting_agent.model

    def _save_best(self, step, score):
        self.best_score, self.best_step = float(score), int(step)
        if self.best_dir and not getattr(self.trainer, "is_chief", True):
            # a non-chief worker: the save is collective, so it saves too, into a removed temp folder,
            # and keeps the (identical) best weights in memory instead of reading the chief's files
            from tf_rl_text import distribute

            with distribute.write_dir(self.best_dir, self.trainer.strategy) as tmp:
                tf.train.Checkpoint(model=self._model()).write(os.path.join(tmp, "model"))
            self._best_weights = [v.numpy() for v in self._model().weights]
        elif self.best_dir:
            ckpt = tf.train.Checkpoint(model=self._model())
            os.makedirs(self.best_dir, exist_ok=True)
            ckpt.write(os.path.join(self.best_dir, "model"))
            tmp = os.path.join(self.best_dir, "best.json.tmp")
            with open(tmp, "w") as f:
                json.dump({"score": self.best_score, "step": self.best_step, "metric": self.keep_best}, f)
            os.replace(tmp, os.path.join(self.best_dir, "best.json"))  # the pointer last: always consistent
        else:
            self._best_weights = [v.numpy() for v in self._model().weights]

    def _run(self, step):
        logs = self.evaluate_now()
        self.results.append((int(step), logs))
        self._last_eval = int(step)
        if self.keep_best is not None:
            if self.keep_best not in logs:
                raise ValueError(f"keep_best={self.keep_best!r} is not among the evaluation's results {sorted(logs)}")
            if self._better(logs[self.keep_best]):
                self._save_best(step, logs[self.keep_best])
        listeners = getattr(self, "callback_list", None)  # TensorBoard, JSONL... hear about the evaluation
        if listeners is not None:
            listeners.on_eval_end(step, logs)
        return logs

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        saved = os.path.join(self.best_dir, "best.json") if self.best_dir else None
        if saved and os.path.exists(saved):  # a resumed run: the best so far competes
            with open(saved) as f:
                best = json.load(f)
            self.best_score, self.best_step = best["score"], best["step"]
            self._resumed = True
        else:
            self._resumed = False

    def on_train_ready(self):
        """After every callback's on_train_begin: the starting score competes for the best."""
        if self._resumed or self.keep_best is None:
            return
        if self.start_score is not None:  # measured by the caller already: keep the starting weights with it
            logs = {self.keep_best: float(self.start_score)}
            self.results.append((self.trainer.global_step, logs))
            self._save_best(self.trainer.global_step, self.start_score)
            listeners = getattr(self, "callback_list", None)  # logged like any evaluation (the plot's first point)
            if listeners is not None:
                listeners.on_eval_end(self.trainer.global_step, logs)
        elif self.evaluate_at_start:
            self._run(self.trainer.global_step)

    def on_step_end(self, step, logs):
        if self.every and step % self.every == 0:
            self._run(step)

    def on_train_end(self, logs):
        step = self.trainer.global_step
        if self._last_eval != step:
            self._run(step)
        if self.keep_best is not None and self.restore_best and self.best_step is not None and self.best_step != step:
            self.restore_best_weights()

    def restore_best_weights(self):
        """Set the model to the best weights seen (from ``run_dir/best`` or memory)."""
        if self._best_weights is not None:
            for v, w in zip(self._model().weights, self._best_weights):
                v.assign(w)
        elif self.best_dir and os.path.exists(os.path.join(self.best_dir, "best.json")):
            tf.train.Checkpoint(model=self._model()).read(os.path.join(self.best_dir, "model")).expect_partial()


def default_callbacks(trainer, tensorboard: bool = True, jsonl: bool = True) -> list:
    """TensorBoard and JSONL logging into the trainer's run_dir (empty without one)."""
    if not getattr(trainer, "run_dir", None):
        return []
    out = []
    if tensorboard:
        out.append(TensorBoard())
    if jsonl:
        out.append(JSONLLogger())
    return out


__all__ = ["Callback", "LambdaCallback", "CallbackList", "TensorBoard", "JSONLLogger", "ProgressBar",
           "CheckpointCallback", "EvalCallback", "SCALAR_NAMES", "scalar_name", "default_callbacks"]
