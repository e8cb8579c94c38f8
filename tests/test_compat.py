"""Importing tf_rl_text works in any order with transformers and tensorflow_probability."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDERS = [
    "import tf_rl_text; import transformers; from transformers import TFGPT2LMHeadModel; import tensorflow_probability",
    "from transformers import TFGPT2LMHeadModel; import tensorflow_probability; import tf_rl_text",
    "import tensorflow; import tensorflow_probability; from transformers import TFGPT2LMHeadModel; import tf_rl_text",
]


@pytest.mark.parametrize("order", ORDERS)
def test_import_order(order):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    code = order + "; import tf_rl_text as t; assert t.RLAgent and t.TextGenerationEnv; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_import_prints_no_gym_notice():
    """tf-agents' gym prints an 'upgrade to Gymnasium' notice users cannot act on; importing us mutes it."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import tf_rl_text, gym, sys; print('gym', gym.__version__, 'gym' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("gym 0.") and proc.stdout.strip().endswith("True")
    assert "Gymnasium" not in proc.stderr and "unmaintained" not in proc.stderr, proc.stderr[-2000:]
