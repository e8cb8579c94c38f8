"""The callback protocol: :class:`Callback`, :class:`LambdaCallback`, :class:`CallbackList`, and the TensorBoard
names of the trainers' statistics.
"""
from __future__ import annotations

import math


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


def finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


__all__ = ["scalar_name", "Callback", "LambdaCallback", "CallbackList", "SCALAR_NAMES"]
