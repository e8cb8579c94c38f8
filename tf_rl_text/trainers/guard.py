"""Refused updates: a gradient step is applied only if its loss and gradients are finite.

Inside a trainer's compiled update, the update runner (:mod:`tf_rl_text.update`, through
:func:`tf_rl_text.optim.apply_clipped` with ``only_if_finite=True``) clips and applies
the gradients only when the loss and the global gradient norm are finite, so a NaN or Inf leaves
the weights *and* the optimizer state (Adam's moments, its step counter) exactly as they were.
Back in Python, :func:`check_update` (``Trainer.check_update(info)``) reads the update's ``loss``
and ``grad_norm`` and raises a :class:`NonFiniteUpdateError` naming the step and the quantity.
"""
from __future__ import annotations

import math


class NonFiniteUpdateError(FloatingPointError):
    """An update was refused because its loss or gradients were NaN or Inf; nothing was changed.

    Attributes: ``step`` (the step the update belonged to, 1-based), ``quantity`` ("loss" or
    "gradient norm") and ``value`` (its value, nan or inf).
    """

    def __init__(self, message, step=None, quantity=None, value=None):
        super().__init__(message)
        self.step, self.quantity, self.value = step, quantity, value


def check_update(info: dict, step: int, algorithm: str, learning_rate=None, where: str = "") -> dict:
    """Raise :class:`NonFiniteUpdateError` if ``info["loss"]`` or ``info["grad_norm"]`` (the outputs of
    an update made with ``apply_clipped(..., only_if_finite=True, loss=loss)``) is not finite: that
    update was not applied. ``step``: the step it belongs to; ``where``: extra context. Returns ``info``."""
    for key, quantity in (("loss", "loss"), ("grad_norm", "gradient norm")):
        if key not in info:
            continue
        value = float(info[key])
        if not math.isfinite(value):
            lr = f" (now {learning_rate:g})" if learning_rate is not None else ""
            raise NonFiniteUpdateError(
                f"{algorithm} step {step}{where} refused: the {quantity} is {value}; the update was not applied, so "
                f"the weights and optimizer state are as they were before it. Check the rewards and advantages, or "
                f"lower learning_rate{lr}",
                step=step, quantity=quantity, value=value,
            )
    return info


__all__ = ["NonFiniteUpdateError", "check_update"]
