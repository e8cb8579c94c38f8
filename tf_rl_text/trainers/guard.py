"""Refused updates: a gradient step is applied only if its loss and gradients are finite.

Inside a trainer's compiled update, :func:`apply_if_finite` replaces
``optimizer.apply_gradients``: it clips and applies the gradients only when the loss and the
global gradient norm are finite, so a NaN or Inf leaves the weights *and* the optimizer state
(Adam's moments, its step counter) exactly as they were. Back in Python, :func:`check_update`
turns the flags it returned into a :class:`NonFiniteUpdateError` naming the step and the quantity.

    grad_norm, finite = apply_if_finite(self.optimizer, loss, grads, variables, cfg.max_grad_norm)
    ...
    out = self._update(...)
    check_update(out, step=self.num_updates + 1, algorithm="REINFORCE", learning_rate=cfg.learning_rate)
"""
from __future__ import annotations

from tf_rl_text._compat import tf

FLAG_KEYS = ("loss_is_finite", "grads_are_finite")


class NonFiniteUpdateError(FloatingPointError):
    """An update was refused because its loss or gradients were NaN or Inf; nothing was changed.

    Attributes: ``step`` (the update that was refused, 1-based), ``quantity`` ("loss" or
    "gradient norm") and ``value`` (its value, nan or inf).
    """

    def __init__(self, message, step=None, quantity=None, value=None):
        super().__init__(message)
        self.step, self.quantity, self.value = step, quantity, value


def apply_if_finite(optimizer, loss, grads, variables, max_grad_norm=None):
    """Graph code: clip ``grads`` to ``max_grad_norm`` and apply them, only if all is finite.

    Returns ``(grad_norm, flags)``: the global norm before clipping and a dict of the two float
    flags :func:`check_update` reads (merge it into the update's outputs).
    """
    grad_norm = tf.linalg.global_norm(grads)
    loss_ok = tf.reduce_all(tf.math.is_finite(loss))
    grads_ok = tf.math.is_finite(grad_norm)  # inf or nan if any gradient element is

    def apply():
        clipped = grads
        if max_grad_norm is not None:
            clipped, _ = tf.clip_by_global_norm(grads, max_grad_norm, use_norm=grad_norm)
        optimizer.apply_gradients(zip(clipped, variables))
        return tf.constant(True)

    tf.cond(tf.logical_and(loss_ok, grads_ok), apply, lambda: tf.constant(False))
    return grad_norm, {"loss_is_finite": tf.cast(loss_ok, tf.float32), "grads_are_finite": tf.cast(grads_ok, tf.float32)}


def check_update(out: dict, step: int, algorithm: str, learning_rate=None, where: str = "") -> dict:
    """Pop the flags :func:`apply_if_finite` put in ``out``; raise if the update was refused.

    ``step``: the number the refused update would have had; ``where``: extra context (a PPO
    minibatch). Returns ``out`` without the flags.
    """
    loss_ok = float(out.pop("loss_is_finite", 1.0))
    grads_ok = float(out.pop("grads_are_finite", 1.0))
    if loss_ok and grads_ok:
        return out
    if not loss_ok:
        quantity, value = "loss", float(out.get("loss", float("nan")))
    else:
        quantity, value = "gradient norm", float(out.get("grad_norm", float("nan")))
    lr = f" (now {learning_rate:g})" if learning_rate is not None else ""
    raise NonFiniteUpdateError(
        f"{algorithm} step {step}{where} refused: the {quantity} is {value}; the update was not applied, so the "
        f"weights and optimizer state are as they were before it. Check the rewards and advantages, or lower "
        f"learning_rate{lr}",
        step=step, quantity=quantity, value=value,
    )


__all__ = ["NonFiniteUpdateError", "apply_if_finite", "check_update", "FLAG_KEYS"]
