"""Importing tf_rl_text works in any order with transformers and tensorflow_probability."""
import importlib.util
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDERS = [
    "import tf_rl_text; import transformers; from transformers import TFGPT2LMHeadModel; import tensorflow_probability",
    "from transformers import TFGPT2LMHeadModel; import tf_rl_text; import tensorflow_probability",
    "import tensorflow; import tf_rl_text; import tensorflow_probability; from transformers import TFGPT2LMHeadModel",
    # tfp imported before us: with Keras 3 installed (keras-hub brings it) tfp itself needs the variable set before
    # TensorFlow loads (its own requirement: tfp 0.23 and 0.25 each fail one of these orders without it,
    # docs/install.md); then the rest follows in any order
    "import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'; import tensorflow; import tensorflow_probability; "
    "from transformers import TFGPT2LMHeadModel; import tf_rl_text",
    "import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'; from transformers import TFGPT2LMHeadModel; "
    "import tensorflow_probability; import tf_rl_text",
]


@pytest.mark.parametrize("order", ORDERS)
def test_import_order(order):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    code = order + "; import tf_rl_text as t; assert t.RLAgent and t.TextGenerationEnv; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_import_prints_no_gym_notice_nor_the_transformers_tf_banner():
    """tf-agents' gym prints an 'upgrade to Gymnasium' notice users cannot act on; importing us mutes it.
    Making a TF model and TF tensors logs transformers' 'TensorFlow and JAX classes are deprecated' banner
    (tf_rl_text pins transformers < 5 for that reason); importing us drops that one message, while other
    warnings of the same logger still print."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO + os.pathsep + os.environ.get("PYTHONPATH", "")
    has_gym = importlib.util.find_spec("gym") is not None  # tf-agents' gym: Python <= 3.11 only
    code = ("import logging, sys, tf_rl_text\n"
            + ("import gym\n" if has_gym else "")
            + "tok = tf_rl_text.default_tokenizer()\n"
            "model = tf_rl_text.default_model(tok, n_layer=1, n_embd=32, n_head=2)\n"
            "tok(['a b'], return_tensors='tf')\n"
            "logging.getLogger('transformers.modeling_tf_utils').warning('a real warning: weights not loaded')\n"
            + ("print('gym', gym.__version__, 'gym' in sys.modules)\n" if has_gym else "print('no gym')\n"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    if has_gym:
        assert proc.stdout.strip().startswith("gym 0.") and proc.stdout.strip().endswith("True")
    # TensorFlow 2.20+'s native start-up lines (written before its log level applies) are muted too
    for noise in ("absl::InitializeLog", "cudart_stub", "cuda drivers"):
        assert noise not in proc.stderr, proc.stderr[-2000:]
    assert "Gymnasium" not in proc.stderr and "unmaintained" not in proc.stderr, proc.stderr[-2000:]
    assert "TensorFlow and JAX classes are deprecated" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    assert "a real warning: weights not loaded" in proc.stderr, proc.stderr[-2000:]

