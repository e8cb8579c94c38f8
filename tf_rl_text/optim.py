"""The optimizer side of the trainers: Adam/AdamW from a config, the learning-rate schedule,
and :func:`apply_clipped`, the package's one clip-and-apply block.

* :func:`make_optimizer`: Adam (AdamW with ``weight_decay``, biases and layer norms excluded);
* :class:`WarmupSchedule`: a linear warm-up, then "constant", "linear" or "cosine" decay,
  counted in trainer steps (:func:`learning_rate_at` is its plain-Python value);
* :func:`apply_clipped`: clip to a global norm and apply, optionally only when finite.
"""
from __future__ import annotations

import math
from tf_rl_text._compat import keras, tf

__all__ = ["LR_SCHEDULES", "NO_DECAY", "learning_rate_at", "WarmupSchedule", "make_optimizer", "apply_clipped"]

LR_SCHEDULES = ("constant", "linear", "cosine")
NO_DECAY = ("bias", "beta", "gamma", "layer_norm", "layernorm", "LayerNorm", "ln_")  # kept out of weight decay


def learning_rate_at(config, step) -> float:
    """The schedule's learning rate after ``step`` trainer steps (plain Python; the graph version
    is :class:`WarmupSchedule`)."""
    return float(WarmupSchedule.from_config(config).value(float(step)))


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The package's one learning-rate schedule: lr(s) = peak * (s + 1) / warmup for s < warmup (step 0
    already moves the weights), then constant, linear or cosine decay to ``min_lr_ratio * peak`` at
    ``total``. ``s`` is ``step_var`` when given (a trainer's step counter, not the optimizer's update count,
    so PPO's several updates per step share one rate), else the step Keras passes (the optimizer's
    iterations: the classifier reward model's training, rewards/training.py)."""

    def __init__(self, peak: float, kind: str = "constant", warmup: int = 0, total: int = 0, min_lr_ratio: float = 0.0,
                 step_var=None):
        if kind not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {kind!r}")
        self.peak = float(peak)
        self.kind = kind
        self.warmup = int(warmup)
        self.total = int(total or 0)
        self.floor = float(min_lr_ratio) * self.peak
        self.step_var = step_var

    @classmethod
    def from_config(cls, config, step_var=None):
        """From a trainer config's ``learning_rate``, ``lr_schedule``, ``warmup_steps``, ``total_steps`` and
        ``min_lr_ratio``."""
        return cls(config.learning_rate, config.lr_schedule, config.warmup_steps, config.total_steps or 0,
                   config.min_lr_ratio, step_var)

    def value(self, s):
        s = tf.cast(s, tf.float32)
        peak = tf.constant(self.peak, tf.float32)
        if self.warmup:
            warm = peak * tf.minimum(1.0, (s + 1.0) / float(self.warmup))  # step 0 already moves the weights
        else:
            warm = peak
        if self.kind == "constant":
            return warm
        frac = tf.clip_by_value((s - self.warmup) / float(max(1, self.total - self.warmup)), 0.0, 1.0)
        if self.kind == "linear":
            decayed = self.floor + (self.peak - self.floor) * (1.0 - frac)
        else:
            decayed = self.floor + (self.peak - self.floor) * 0.5 * (1.0 + tf.cos(math.pi * frac))
        return tf.where(s < self.warmup, warm, decayed)

    def __call__(self, step):
        return self.value(self.step_var if self.step_var is not None else step)

    def get_config(self):
        return {"peak": self.peak, "kind": self.kind, "warmup": self.warmup, "total": self.total,
                "min_lr_ratio": self.floor / self.peak if self.peak else 0.0}


def make_optimizer(config, step_var=None):
    """Adam (or AdamW when ``weight_decay`` > 0) with the config's learning-rate schedule.

    A constant rate without warm-up is a plain float (bit-identical to ``Adam(learning_rate)``).
    """
    if config.lr_schedule == "constant" and not config.warmup_steps:
        lr = float(config.learning_rate)
    else:
        lr = WarmupSchedule.from_config(config, step_var)
    if config.weight_decay:
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=float(config.weight_decay))
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY))
        return opt
    return keras.optimizers.Adam(learning_rate=lr)


def apply_clipped(optimizer, grads, variables, max_grad_norm=None, only_if_finite=False, loss=None,
                  aggregated=False):
    """Clip ``grads`` to the global norm ``max_grad_norm`` (None: no clipping), apply them; returns
    the norm before clipping. The one clip-and-apply block of the package (graph or eager code).

    ``only_if_finite``: apply only if the gradient norm (and ``loss``, when given) is finite;
    otherwise no variable is written, the optimizer's slots and step counter included. The
    trainers use it and then refuse the step (:func:`tf_rl_text.trainers.guard.check_update`).

    The norm is that of the dense gradient: ``tf.linalg.global_norm`` on an ``IndexedSlices``
    gradient (an embedding's) squares each slice separately, so a token that occurs twice in the
    batch would count as two rows instead of their sum; that made the norm, and with it the
    clipping, depend on how the batch is split.

    ``aggregated=True``: ``grads`` are already summed over a strategy's replicas (an explicit
    all-reduce before the clip, so the norm is that of the global gradient); the optimizer
    then applies them without summing again."""
    grad_norm = tf.linalg.global_norm([tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                                       for g in grads])

    def apply():
        clipped = grads
        if max_grad_norm is not None:
            clipped, _ = tf.clip_by_global_norm(grads, max_grad_norm, use_norm=grad_norm)
        if aggregated:
            optimizer.apply_gradients(zip(clipped, variables), skip_gradients_aggregation=True)
        else:
            optimizer.apply_gradients(zip(clipped, variables))
        return tf.constant(True)

    if not only_if_finite:
        apply()
        return grad_norm
    finite = tf.math.is_finite(grad_norm)  # inf or nan if any gradient element is
    if loss is not None:
        finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(loss)))
    tf.cond(finite, apply, lambda: tf.constant(False))
    return grad_norm
