"""Callbacks that record a run: TensorBoard scalars and samples, the metrics.jsonl log, the progress bar."""
from __future__ import annotations

import json
import os
import warnings

from tf_rl_text._compat import tf
from tf_rl_text.callbacks.base import Callback, finite, scalar_name


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
                value = finite(value)
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
                value = finite(value)
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
                rows.append({"step": step, **{k: finite(v) if not isinstance(v, str) else v for k, v in logs.items()}})
        return sorted(rows, key=lambda r: (r["step"], "eval" in r))

    def _write(self, row):
        if not getattr(self, "active", True):
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")

    def on_step_end(self, step, logs):
        self._write({"step": int(step), **{k: finite(v) if not isinstance(v, str) else v for k, v in logs.items()}})

    def on_eval_end(self, step, logs):
        self._write({"step": int(step), "eval": {k: finite(v) for k, v in logs.items()}})


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


__all__ = ["TensorBoard", "read_jsonl", "JSONLLogger", "ProgressBar"]
