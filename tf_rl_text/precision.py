"""Mixed precision: bfloat16 math over float32 weights (Keras' ``"mixed_bfloat16"`` policy).

On CPUs with AVX512-BF16 (or AMX) oneDNN runs bfloat16 matmuls at about twice the float32 rate
(400 vs 200 GFLOP/s for a 2048^3 matmul on the 2-core benchmark machine), and a training update
is mostly matmuls. Under ``"mixed_bfloat16"`` the weights and the optimizer stay float32; each
layer computes in bfloat16. The agent hands every logit (and value) to the trainers as float32,
so log-softmax, KL, advantages and losses are float32 math.

    import tf_rl_text
    model = tf_rl_text.with_precision(model, "mixed_bfloat16")   # a copy, same weights
    agent = tf_rl_text.RLAgent(model, tokenizer)                  # train as usual

Building or loading the model under Keras' global policy does the same::

    tf_rl_text._compat.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = TFAutoModelForCausalLM.from_pretrained(path)

The frozen reference (:meth:`~tf_rl_text.RLAgent.clone_model`) and Q-learning's target network
are built with the same policy as the model they copy. ``"mixed_float16"`` is refused: float16
gradients need loss scaling, which the trainers do not do (and CPUs have no fast float16 matmul).
"""
from __future__ import annotations

import contextlib

from tf_rl_text._compat import keras

POLICIES = ("float32", "mixed_bfloat16")
"""The dtype policies :func:`with_precision` accepts."""


def _check_policy(policy) -> str:
    name = getattr(policy, "name", policy)
    if name == "mixed_float16":
        raise ValueError("policy 'mixed_float16' is not supported: float16 gradients need loss scaling, which the "
                         "trainers do not do; use 'mixed_bfloat16' (same speed-up, float32's exponent range)")
    if name not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    return name


def policy_of(model) -> str:
    """The name of the Keras dtype policy ``model`` computes under ("float32", "mixed_bfloat16", ...).

    A wrapper without a policy of its own (such as Q-learning's ``QHeadModel``) reports its ``lm``'s.
    """
    policy = getattr(model, "dtype_policy", None)
    if policy is None and hasattr(model, "lm"):
        return policy_of(model.lm)
    return getattr(policy, "name", "float32")


@contextlib.contextmanager
def global_policy(policy):
    """Keras' global dtype policy set to ``policy`` inside the block, restored after (even on error)."""
    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(old)


def new_like(model, policy=None):
    """A new, built model of ``model``'s class and config (fresh weights) under ``policy``.

    ``policy`` defaults to ``model``'s own, so copies compute like the original.
    """
    with global_policy(policy_of(model) if policy is None else policy):
        copy = type(model)(model.config)
        copy(copy.dummy_inputs, training=False)
    return copy


def with_precision(model, policy: str = "mixed_bfloat16"):
    """A copy of a Hugging Face TF model with the same (float32) weights that computes under ``policy``.

    ``"mixed_bfloat16"``: bfloat16 math, float32 weights (see the module docstring);
    ``"float32"``: back to full precision. The copy keeps ``model.trainable``. Saving it with
    ``save_pretrained`` writes float32 weights that load into either precision.
    """
    name = _check_policy(policy)
    if getattr(model, "config", None) is None or not hasattr(model, "dummy_inputs"):
        raise TypeError(f"model must be a Hugging Face TF model (e.g. TFAutoModelForCausalLM), got {type(model).__name__}")
    copy = new_like(model, name)
    source, dest = model.weights, copy.weights
    if [tuple(v.shape) for v in source] != [tuple(v.shape) for v in dest]:
        raise ValueError(f"cannot convert {type(model).__name__} to {name}: its rebuilt copy has different weights")
    copy.set_weights(model.get_weights())
    copy.trainable = model.trainable
    return copy


__all__ = ["POLICIES", "policy_of", "global_policy", "new_like", "with_precision"]
