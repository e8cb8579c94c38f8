"""tf_rl_text.specs: the tf-agents path and the standalone path (Python 3.12+ without tf-agents) give the same
time steps, specs and validation; one env run on both paths gives the same episode."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_rl_text import TextGenerationEnv, specs

HAS_TF_AGENTS = importlib.util.find_spec("tf_agents") is not None
S = specs.STANDALONE
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_backend_is_tf_agents_exactly_where_it_is_installed():
    forced_off = os.environ.get("TF_RL_TEXT_NO_TF_AGENTS", "") not in ("", "0")
    assert specs.BACKEND == ("tf-agents" if HAS_TF_AGENTS and not forced_off else "standalone")
    if specs.BACKEND == "tf-agents":
        from tf_agents.environments import py_environment

        assert issubclass(TextGenerationEnv, py_environment.PyEnvironment)
    else:
        assert issubclass(TextGenerationEnv, S.PyEnvironment)


def test_standalone_time_steps_have_the_fields_dtypes_and_shapes_of_tf_agents():
    obs = {"input_ids": np.zeros((3, 4), np.int32)}
    rewards = np.array([0.5, 1.0, -2.0], np.float32)
    first = S.restart(obs, batch_size=3)
    assert first.step_type.dtype == np.int32 and first.step_type.tolist() == [0, 0, 0]
    assert first.reward.dtype == np.float32 and first.reward.tolist() == [0, 0, 0]
    assert first.discount.tolist() == [1, 1, 1] and first.is_first().all() and not first.is_last().any()
    mid = S.transition(obs, np.zeros(3, np.float32), discount=np.ones(3, np.float32))
    assert mid.step_type.tolist() == [1, 1, 1] and mid.is_mid().all() and mid.discount.dtype == np.float32
    last = S.termination(obs, rewards)
    assert last.step_type.tolist() == [2, 2, 2] and last.discount.tolist() == [0, 0, 0] and last.is_last().all()
    assert last.reward is not None and last.reward.tolist() == rewards.tolist()
    if not HAS_TF_AGENTS:
        return
    from tf_agents.trajectories import time_step as ts

    for ours, theirs in [(first, ts.restart(obs, batch_size=3)), (mid, ts.transition(obs, np.zeros(3, np.float32),
                                                                                      discount=np.ones(3, np.float32))),
                         (last, ts.termination(obs, rewards)), (S.restart(obs), ts.restart(obs))]:
        for field in ("step_type", "reward", "discount"):
            a, b = np.asarray(getattr(ours, field)), np.asarray(getattr(theirs, field))
            assert (a.dtype, a.shape, a.tolist()) == (b.dtype, b.shape, b.tolist()), field


def test_standalone_specs_compare_and_check_arrays_as_tf_agents_does():
    spec = S.BoundedArraySpec((2,), np.int32, 0, 9, name="ids")
    assert spec.check_array(np.array([0, 9], np.int32))
    assert not spec.check_array(np.array([0, 10], np.int32))      # above the maximum
    assert not spec.check_array(np.array([0, 9], np.int64))       # wrong dtype
    assert not spec.check_array([0, 9])                            # lists are not converted
    assert spec == S.BoundedArraySpec((2,), np.int32, 0, 9) and spec != S.BoundedArraySpec((2,), np.int32, 0, 8)
    assert S.ArraySpec((), np.float32).check_array(np.float32(1.0)) and not S.ArraySpec((), np.float32).check_array(1.0)
    with pytest.raises(ValueError, match="greater than max"):
        S.BoundedArraySpec((), np.int32, 5, 1)
    if not HAS_TF_AGENTS:
        return
    from tf_agents.specs import array_spec

    theirs = array_spec.BoundedArraySpec((2,), np.int32, 0, 9, name="ids")
    for array in (np.array([0, 9], np.int32), np.array([0, 10], np.int32), np.array([0, 9], np.int64), [0, 9]):
        assert spec.check_array(array) == theirs.check_array(array)
    assert (spec.minimum.dtype, spec.maximum.tolist()) == (theirs.minimum.dtype, theirs.maximum.tolist())


def test_standalone_validation_accepts_the_env_and_rejects_a_wrong_observation(tokenizer):
    class Env(S.PyEnvironment):  # a minimal batched env with the standalone base
        def __init__(self, bad):
            super().__init__(handle_auto_reset=True)
            self.bad, self.t = bad, 0

        batched = property(lambda self: True)
        batch_size = property(lambda self: 2)

        def observation_spec(self):
            return {"x": S.BoundedArraySpec((3,), np.int32, 0, 5)}

        def action_spec(self):
            return S.BoundedArraySpec((), np.int32, 0, 4)

        def _obs(self):
            return {"x": np.zeros((2, 3), np.int64 if self.bad else np.int32)}

        def _reset(self):
            self.t = 0
            return S.restart(self._obs(), batch_size=2)

        def _step(self, action):
            assert action.shape == (2,) and ((0 <= action) & (action <= 4)).all()
            self.t += 1
            if self.t == 3:
                return S.termination(self._obs(), np.ones(2, np.float32))
            return S.transition(self._obs(), np.zeros(2, np.float32), discount=np.ones(2, np.float32))

    S.validate_py_environment(Env(bad=False), episodes=2)
    with pytest.raises(ValueError, match="does not match expected"):
        S.validate_py_environment(Env(bad=True), episodes=2)


SCRIPT = """
import json, numpy as np
from tf_rl_text import TextGenerationEnv, specs
from tf_rl_text.defaults import default_tokenizer
tok = default_tokenizer()
env = TextGenerationEnv(["the movie was", "my day", "our dinner was very"], tok,
                        lambda c, p, r: [len(x) / 10 for x in c], batch_size=2, max_new_tokens=3, seed=4)
specs.validate_py_environment(env, episodes=2)
env.reseed(4)
def record(ts):
    out.append({k: np.asarray(v).tolist() for k, v in ts._asdict().items() if k != "observation"})
    out[-1]["observation"] = {k: np.asarray(v).tolist() for k, v in ts.observation.items()}
    out[-1]["dtypes"] = [str(np.asarray(getattr(ts, f)).dtype) for f in ("step_type", "reward", "discount")]
out = []
record(env.reset())
for action in ([tok.eos_token_id, 264], [264, 264], [264, 264]):
    record(env.step(np.array(action)))
completions = env.completions
record(env.step(np.array([264, 11])))  # after LAST: a new batch (auto-reset)
print(json.dumps({"backend": specs.BACKEND, "steps": out, "completions": completions}))
"""


def test_one_env_gives_the_same_episode_on_both_paths():
    """The same env script run with tf-agents (where installed) and with TF_RL_TEXT_NO_TF_AGENTS=1: equal time steps
    (types, values, dtypes), auto-reset included. A process boundary: the base class is chosen at import."""
    def run(no_tf_agents):
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_RL_TEXT_NO_TF_AGENTS="1" if no_tf_agents else "0")
        proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    standalone, default = run(True), run(False)
    assert standalone["backend"] == "standalone"
    assert default["backend"] == ("tf-agents" if HAS_TF_AGENTS else "standalone")
    assert standalone["steps"] == default["steps"] and standalone["completions"] == default["completions"]
    assert [s["step_type"] for s in default["steps"]] == [[0, 0], [1, 1], [1, 1], [2, 2], [0, 0]]
    assert default["completions"][0] == "" and default["steps"][3]["reward"][1] > 0
    assert default["steps"][0]["dtypes"] == ["int32", "float32", "float32"]
