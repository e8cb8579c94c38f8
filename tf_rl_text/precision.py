"""Mixed precision: bfloat16 math over float32 weights (Keras' ``"mixed_bfloat16"`` policy).

On CPUs with AVX512-BF16 (or AMX) oneDNN runs bfloat16 matmuls at about twice the float32 rate
(400 vs 200 GFLOP/s for a 2048^3 matmul on the 2-core benchmark machine), and a training update
is mostly matmuls. On a CPU without them (AVX2 only, e.g. many AMD EPYC machines) it is a poor
choice, and :func:`with_precision` warns (:func:`native_bfloat16`): oneDNN runs no bfloat16 kernels
there (``TF_ENABLE_ONEDNN_OPTS=0`` gives bit-identical results), Eigen converts per op, a 2048^3
matmul ran at 81 GFLOP/s in bfloat16 vs 89 in float32, and the sparse-reward toy task of
``tests/test_precision.py`` at 4 prompts x 4 samples reached a mean reward above 0.5 in 41 steps on
3 of 10 model seeds in bfloat16 vs 10 of 10 in float32 (at 8 prompts: 9 of 10 in bfloat16), although
the gradient at the same weights and batch matched float32's (cosine 1.0000). TF 2.15 and 2.21 gave
the same bfloat16 figures there, so it is the CPU path, not the TensorFlow version (docs/install.md). Under ``"mixed_bfloat16"`` the weights and the optimizer stay float32; each
layer computes in bfloat16. The agent hands every logit (and value) to the trainers as float32,
so log-softmax, KL, advantages and losses are float32 math.

    import tf_rl_text
    model = tf_rl_text.precision.with_precision(model, "mixed_bfloat16")   # a copy, same weights
    agent = tf_rl_text.RLAgent(model, tokenizer)                  # train as usual

Building or loading the model under Keras' global policy does the same::

    tf_rl_text._compat.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = TFAutoModelForCausalLM.from_pretrained(path)

The frozen reference (:meth:`~tf_rl_text.RLAgent.clone_model`) and Q-learning's target network
are built with the same policy as the model they copy. Generation casts each weight to bfloat16
once per call, not at every token (:func:`weights_cast_once`). ``"mixed_float16"`` is refused: float16
gradients need loss scaling, which the trainers do not do (and CPUs have no fast float16 matmul).
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings

from tf_rl_text._compat import keras, tf

POLICIES = ("float32", "mixed_bfloat16")
"""The dtype policies :func:`with_precision` accepts."""


def _check_policy(policy) -> str:
    name = getattr(policy, "name", policy)
    if name == "mixed_float16":
        raise ValueError("policy 'mixed_float16' is not supported: float16 gradients need loss scaling, which the "
                         "trainers do not do; use 'mixed_bfloat16' (float32's exponent range: no loss scaling needed)")
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
    own = getattr(model, "copy_model", None)  # a wrapper that copies itself (tf_rl_text.kerashub.KerasHubLM)
    if own is not None:
        return own(policy)
    with global_policy(policy_of(model) if policy is None else policy):
        copy = type(model)(model.config)
        copy(copy.dummy_inputs, training=False)
    return copy


NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16", "avx512f")
"""CPU flags (``/proc/cpuinfo``) under which oneDNN runs bfloat16 kernels: native bfloat16 dot products
(AVX512-BF16, AMX) or AVX-512's emulation of them."""


def native_bfloat16(cpuinfo: str = "/proc/cpuinfo"):
    """Whether this machine computes bfloat16 natively: True with a GPU, or a CPU whose flags include one of
    :data:`NATIVE_BFLOAT16_FLAGS` (and oneDNN is neither off nor limited below AVX-512 by
    ``TF_ENABLE_ONEDNN_OPTS=0`` / ``ONEDNN_MAX_CPU_ISA``); False on a CPU without them; None where the flags
    cannot be read (not Linux)."""
    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return None
    if flags is None:
        return None
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa and not (isa.startswith("AVX512") or isa.startswith("AVX10") or isa in ("ALL", "DEFAULT")):
        return False
    return any(flag in flags for flag in NATIVE_BFLOAT16_FLAGS)


def warn_if_emulated_bfloat16(policy: str) -> bool:
    """Warn (and return True) when ``policy`` is ``"mixed_bfloat16"`` on a machine without native bfloat16."""
    if policy != "mixed_bfloat16" or native_bfloat16() is not False:
        return False
    warnings.warn(
        "mixed_bfloat16 on a CPU without AVX-512/AVX512-BF16/AMX (or with oneDNN limited below them): TensorFlow "
        "emulates bfloat16 here, which is no faster than float32 and was measured to learn less (a sparse-reward toy "
        "task: 3 of 10 seeds vs 10 of 10 in float32). Use float32 on this machine (see tf_rl_text/precision.py)",
        UserWarning, stacklevel=3)
    return True


def with_precision(model, policy: str = "mixed_bfloat16"):
    """A copy of a Hugging Face TF model with the same (float32) weights that computes under ``policy``.

    ``"mixed_bfloat16"``: bfloat16 math, float32 weights (see the module docstring);
    ``"float32"``: back to full precision. The copy keeps ``model.trainable``. Saving it with
    ``save_pretrained`` writes float32 weights that load into either precision.
    """
    from transformers import TFPreTrainedModel

    name = _check_policy(policy)
    if getattr(model, "copy_model", None) is not None:  # a KerasHub policy: the copy under a Keras 3 dtype policy
        warn_if_emulated_bfloat16(name)
        return model.copy_model(name)
    if not isinstance(model, TFPreTrainedModel):
        raise TypeError(f"model must be a Hugging Face TF model (e.g. TFAutoModelForCausalLM), got {type(model).__name__}")
    warn_if_emulated_bfloat16(name)
    return copy_model(model, name)


def copy_model(model, policy=None, trainable=None):
    """A new model of ``model``'s class and config holding a copy of its weights.

    It computes under ``policy`` (default: ``model``'s own, see :func:`new_like`); ``trainable``
    defaults to ``model.trainable``. :func:`with_precision` and ``RLAgent.clone_model`` (the KL
    reference) are this. Weights are copied by variable name (:func:`copy_variables`), so a model
    with frozen layers (which Keras lists last) copies correctly.
    """
    own = getattr(model, "copy_model", None)  # a wrapper that copies itself (tf_rl_text.kerashub.KerasHubLM)
    if own is not None:
        return own(policy, trainable)
    copy = new_like(model, policy)
    try:
        copy_variables(model.weights, copy.weights)
    except ValueError as err:
        raise ValueError(f"cannot copy {type(model).__name__} under {policy_of(copy)!r}: {err}") from None
    copy.trainable = model.trainable if trainable is None else trainable
    return copy


def variable_key(variable) -> str:
    """A variable's name without its model's own (instance-numbered) scope and the ``:0`` suffix:
    ``tfgpt2lm_head_model_1/transformer/wte/embeddings:0`` -> ``transformer/wte/embeddings``."""
    name = variable.name.split(":")[0]
    return name.split("/", 1)[1] if "/" in name else name


def paired_variables(source, dest):
    """``[(s, d), ...]``: each variable of ``dest`` with the ``source`` variable of the same
    :func:`variable_key`. Pairing by name, not position: Keras lists frozen (non-trainable) weights
    after the trainable ones, so two copies of one architecture list them in different orders when
    one has a frozen layer. Raises ValueError naming the first variable without a partner or with
    a different shape."""
    source, dest = list(source), list(dest)
    if len(source) != len(dest):
        raise ValueError(f"its rebuilt copy has different weights ({len(source)} source vs {len(dest)} copy variables)")
    by_key = {variable_key(v): v for v in source}
    if len(by_key) != len(source) or len({variable_key(v) for v in dest}) != len(dest):
        pairs = list(zip(source, dest))  # names not unique (unusual custom model): by position, shapes checked
    else:
        missing = [variable_key(v) for v in dest if variable_key(v) not in by_key]
        if missing:
            raise ValueError(f"its rebuilt copy has different weights: no source variable for {missing[:3]}")
        pairs = [(by_key[variable_key(d)], d) for d in dest]
    for s, d in pairs:
        if tuple(s.shape) != tuple(d.shape):
            raise ValueError(f"its rebuilt copy has different weights: {variable_key(d)} is {tuple(d.shape)} in "
                             f"the copy, {tuple(s.shape)} in the source")
    return pairs


def copy_variables(source, dest):
    """Assign every variable of ``dest`` its namesake's value from ``source`` (:func:`paired_variables`)."""
    for s, d in paired_variables(source, dest):
        d.assign(s)
    return list(dest)


# --------------------------------------------------------------------------- decoding: one cast per call
_casts = threading.local()  # the cache of the decode function being traced on this thread, if any


def _visible(tensor) -> bool:
    """Whether ``tensor`` can be used in the graph being built (its own graph or an enclosing one)."""
    graph = tf.compat.v1.get_default_graph()
    while graph is not None:
        if graph is tensor.graph:
            return True
        graph = getattr(graph, "outer_graph", None)
    return False


def _cached_cast(key, make):
    cache = getattr(_casts, "cache", None)
    if cache is None:
        return make()
    tensor = cache.get(key)
    if tensor is None or not _visible(tensor):
        tensor = cache[key] = make()
    return tensor


def cast_weight(variable, dtype):
    """``tf.cast(variable, dtype)``, made once per traced decode call inside :func:`weights_cast_once`."""
    if variable.dtype == dtype:
        return variable
    return _cached_cast((id(variable), dtype), lambda: tf.cast(variable, dtype))


@contextlib.contextmanager
def weights_cast_once(model):
    """While tracing a decode loop: each mixed-precision weight is read and cast to bfloat16 once.

    Under ``"mixed_bfloat16"`` every layer call reads its float32 weights and casts them to
    bfloat16 (Keras' ``AutoCastVariable``). In a decode loop that is every generated token:
    ~0.2 ns per weight, which at 32 rows per core costs more than the bfloat16 matmul saves.
    Weights do not change during one generation, so inside this block the first read of each
    weight (the prefill, before the loop) is cached and every later step reuses it: batch-64
    generation on the benchmark workload 150 -> 119 ms, batch 1 86 -> 32 ms. Numerically the same
    cast. A float32 model (no ``AutoCastVariable``) is traced unchanged.
    """
    classes = {type(v) for v in getattr(model, "variables", ()) if type(v).__name__ == "AutoCastVariable"}
    if not classes or getattr(_casts, "cache", None) is not None:  # float32, or already inside a decode trace
        yield
        return
    originals = {cls: (cls.value, cls._dense_var_to_tensor) for cls in classes}

    def patch(cls, value, dense):
        def cached_value(self):
            if not self._should_cast():
                return value(self)
            return _cached_cast((id(self), self._cast_dtype), lambda: value(self))

        def cached_dense(self, dtype=None, name=None, as_ref=False):
            if as_ref or not self._should_cast() or (dtype is not None and dtype != self._cast_dtype):
                return dense(self, dtype=dtype, name=name, as_ref=as_ref)
            return cached_value(self)

        cls.value, cls._dense_var_to_tensor = cached_value, cached_dense

    _casts.cache = {}
    try:
        for cls, (value, dense) in originals.items():
            patch(cls, value, dense)
        yield
    finally:
        for cls, (value, dense) in originals.items():
            cls.value, cls._dense_var_to_tensor = value, dense
        _casts.cache = None


__all__ = ["POLICIES", "policy_of", "global_policy", "new_like", "copy_model", "copy_variables", "paired_variables", "variable_key", "with_precision", "cast_weight",
           "weights_cast_once"]
