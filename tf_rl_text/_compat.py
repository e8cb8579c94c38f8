"""The one place that deals with TensorFlow / Keras / transformers import order.

transformers' TF code sets ``TF_USE_LEGACY_KERAS=1`` when it is imported; if TensorFlow was
imported before without it, ``tensorflow_probability`` can fail with
``ImportError: Keras cannot be imported`` (see STACK.md). Setting the variable before the first
``import tensorflow`` and importing tfp before transformers avoids that in every order.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out of user output

import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402  (before transformers, see above)

try:  # tf_keras is what tf.keras resolves to under TF_USE_LEGACY_KERAS=1
    import tf_keras as keras  # noqa: E402
except ImportError:  # pragma: no cover - TF 2.15 without tf-keras installed
    keras = tf.keras

__all__ = ["tf", "tfp", "keras"]
