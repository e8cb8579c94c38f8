"""Callbacks that act on the run: checkpoints every N steps, held-out evaluation with keep-best, and the defaults
a run folder gets.
"""
from __future__ import annotations

import json
import os

from tf_rl_text._compat import tf
from tf_rl_text.callbacks.base import Callback
from tf_rl_text.callbacks.recording import JSONLLogger, TensorBoard


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


__all__ = ["CheckpointCallback", "EvalCallback", "default_callbacks"]
