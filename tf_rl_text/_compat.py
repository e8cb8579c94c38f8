"""The one place that deals with TensorFlow / Keras / transformers import order.

transformers' TF code sets ``TF_USE_LEGACY_KERAS=1`` when it is imported; if TensorFlow was
imported before without it, ``tensorflow_probability`` can fail with
``ImportError: Keras cannot be imported`` (see STACK.md). Setting the variable before the first
``import tensorflow`` and importing tfp before transformers avoids that in every order. It also
keeps start-up notices users cannot act on out of their output (TF's C++ info lines, gym's).
"""
import contextlib
import io
import logging
import os

import sys  # noqa: E402

_TF_WAS_IMPORTED = "tensorflow" in sys.modules
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TF's C++ log lines: on a CPU machine every process prints "E ... Unable to register cuDNN/cuFFT/cuBLAS factory"
# and "E ... SetPriority unimplemented" (harmless, level ERROR), so only FATAL ones stay. Errors that matter reach
# Python as exceptions; set TF_CPP_MIN_LOG_LEVEL=0 before importing tf_rl_text to see every line again.
_QUIET = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _quiet_native_stderr(enabled: bool):
    """TensorFlow 2.20+ writes "WARNING: All log messages before absl::InitializeLog() ..." and "I0000 ...
    cudart_stub.cc ... Could not find cuda drivers" straight to file descriptor 2 while it loads, before
    TF_CPP_MIN_LOG_LEVEL applies. While TensorFlow and tfp are imported (only then) descriptor 2 goes to
    /dev/null, unless the user set TF_CPP_MIN_LOG_LEVEL themselves; an import error still raises as usual."""
    if not enabled:
        yield
        return
    try:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover - no descriptor 2 (some embedded interpreters)
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _alias_legacy_keras():
    """TensorFlow maps ``tensorflow.compat.v2.keras`` to tf-keras only when TF_USE_LEGACY_KERAS=1 was set before it
    loaded. transformers' TF classes set the variable only after importing TensorFlow, so after
    ``from transformers import TFGPT2LMHeadModel`` tfp 0.25's ``from tensorflow.compat.v2.keras import *`` fails
    (tf.keras is already tf-keras there). Register tf-keras under that name, as TensorFlow would have."""
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1" or "tensorflow.compat.v2.keras" in sys.modules:
        return
    try:
        import tensorflow.compat.v2.keras  # noqa: F401
    except ImportError:
        try:
            import tf_keras as _tf_keras
        except ImportError:  # pragma: no cover - tf-keras is a declared dependency
            return
        sys.modules["tensorflow.compat.v2.keras"] = _tf_keras


with _quiet_native_stderr(_QUIET and not _TF_WAS_IMPORTED):
    import tensorflow as tf  # noqa: E402
    _alias_legacy_keras()
    try:
        import tensorflow_probability as tfp  # noqa: E402  (before transformers, see above)
    except (ImportError, AttributeError) as err:
        if _TF_WAS_IMPORTED and os.environ.get("TF_USE_LEGACY_KERAS") == "1":
            raise ImportError(
                "TensorFlow was imported before tf_rl_text without TF_USE_LEGACY_KERAS=1, so tf.keras is Keras 3 and "
                "tensorflow-probability cannot load (it needs tf-keras). Import tf_rl_text before tensorflow, or set "
                "os.environ['TF_USE_LEGACY_KERAS'] = '1' before the first `import tensorflow` (see docs/install.md)"
            ) from err
        raise

try:  # tf_keras is what tf.keras resolves to under TF_USE_LEGACY_KERAS=1
    import tf_keras as keras  # noqa: E402
except ImportError:  # pragma: no cover - tf-keras is a declared dependency (setup.py)
    keras = tf.keras


def _import_gym_quietly():
    """tf-agents (Python <= 3.11) imports gym 0.23 (the newest it supports), and gym prints a notice
    urging an upgrade to Gymnasium on import. Users of tf_rl_text cannot act on it, so gym is
    imported here first with its printed output muted; an import error still surfaces (from
    tf-agents, with its own message)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import gym  # noqa: F401
    except ImportError:  # pragma: no cover - tf-agents then names what is missing
        pass


_import_gym_quietly()

TRANSFORMERS_TF_BANNER = "TensorFlow and JAX classes are deprecated and will be removed in Transformers v5"


class _DropTransformersTFBanner(logging.Filter):
    """transformers 4.5x logs "TensorFlow and JAX classes are deprecated ..." once per process when a TF
    model or TF tensors are made. tf_rl_text pins transformers < 5 for exactly that reason (STACK.md),
    so users cannot act on it. This drops that one message; every other record of these loggers
    (real warnings and errors) passes unchanged."""

    def filter(self, record):
        return not str(record.msg).startswith(TRANSFORMERS_TF_BANNER)


_BANNER_FILTER = _DropTransformersTFBanner()
for _name in ("transformers.modeling_tf_utils", "transformers.tokenization_utils_base",
              "transformers.feature_extraction_utils", "transformers.pipelines.base"):
    logging.getLogger(_name).addFilter(_BANNER_FILTER)  # the loggers transformers' modules log to (same names)

__all__ = ["tf", "tfp", "keras"]
