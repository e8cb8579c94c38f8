"""Trainers under tf.distribute (tf_rl_text/distribute.py, docs/distributed.md).

TensorFlow's devices and collective ops must be configured before it starts, so the
multi-device runs happen in subprocesses (tests/distribute_worker.py): one for MirroredStrategy
over 2 logical CPU devices (all four trainer families), two pairs of worker processes for
MultiWorkerMirroredStrategy on 127.0.0.1 (a run, then its resume)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import types

import numpy as np

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "distribute_worker.py")
FAMILIES = ("reinforce", "ppo", "q_learning", "grpo", "mle")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE), CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def mirrored_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "result.json"
    proc = subprocess.run([sys.executable, WORKER, "mirrored", str(out)], env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(out) as f:
        return json.load(f)


def test_mirrored_strategy_runs_on_two_logical_cpu_devices(mirrored_result):
    assert mirrored_result["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    for name in ("reinforce", "ppo", "q_learning", "grpo"):
        assert mirrored_result[name]["mirrored"]["replicas"] == 2
        assert mirrored_result[name]["single"]["replicas"] == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_mirrored_update_equals_single_device_update(mirrored_result, family):
    """One update of the same global batch (3 or 5 rows: uneven shares) under MirroredStrategy over
    2 devices and under the default strategy: the same new weights to float tolerance, while the
    update moved them by ~lr (so a no-op update on either side would fail)."""
    r = mirrored_result[family]
    assert r["moved"] > 1e-3  # Adam's first step moves weights by ~lr = 1e-2
    assert r["max_diff"] < 1e-5, r
    single, multi = r["single"], r["mirrored"]
    # the logged statistics are global means over the batch (not means of per-replica means)
    for key in ("loss", "policy_loss", "value_loss", "td_error", "grad_norm", "entropy", "kl", "reward_mean",
                "clip_ratio/region_mean"):
        if key in single:
            assert multi[key] == pytest.approx(single[key], rel=1e-4, abs=1e-5), key


@pytest.fixture(scope="module", params=["keras_hub_gpt2", "keras_hub_llama"])
def keras_hub_mirrored_result(request, tmp_path_factory):
    pytest.importorskip("keras_hub")
    out = tmp_path_factory.mktemp("mirrored_kh") / "result.json"
    proc = subprocess.run([sys.executable, WORKER, "mirrored", str(out), "reinforce,ppo,grpo,mle"],
                          env=_env(DISTRIBUTE_MODEL=request.param), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(out) as f:
        return request.param, json.load(f)


def test_a_keras_hub_policy_makes_the_same_mirrored_update_as_on_one_device(keras_hub_mirrored_result):
    """The same check for a KerasHub GPT-2 and Llama (tf_rl_text/kerashub.py). Measured max differences: 1e-6 or
    less, except GPT-2's GRPO at 5.7e-5 (two clipped updates; Adam's step g / (sqrt(v) + 1e-7) turns float noise
    in near-zero gradients into steps of up to ~1e-4 of lr 1e-2), hence its bound of 1e-4."""
    model, result = keras_hub_mirrored_result
    for family in ("reinforce", "ppo", "grpo", "mle"):
        r = result[family]
        assert r["moved"] > 1e-3 and r["mirrored"].get("replicas", 2) == 2, (model, family)  # (mle logs its loss only)
        assert r["max_diff"] < (1e-4 if family == "grpo" else 1e-5), (model, family, r["max_diff"])
        assert r["mirrored"]["loss"] == pytest.approx(r["single"]["loss"], rel=1e-4, abs=1e-5), (model, family)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_workers(run_dirs, num_steps, outs, export):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        procs.append(subprocess.Popen(
            [sys.executable, WORKER, "multi_worker", run_dirs[i], str(num_steps), outs[i], export],
            env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        results.append((p.returncode, stdout, stderr))
    for rc, stdout, stderr in results:
        assert rc == 0, stderr[-4000:]
    return [r[1] for r in results]


def _weights(path):
    with np.load(path) as data:
        return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


def _files(folder):
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def test_multi_worker_mirrored_two_workers_train_resume_and_export(tmp_path, tokenizer):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1 (TF_CONFIG, free ports), each with its
    own run folder (as on two machines): they train 2 steps, then a second launch resumes from the
    chief's checkpoint (copied to the other worker, as shared storage would provide) to step 4 and
    exports. Both end with bit-identical weights; only the chief wrote checkpoints, events and the
    SavedModel; the export loads and generates."""
    chief, other = str(tmp_path / "chief"), str(tmp_path / "worker1")
    outs = [str(tmp_path / "w0.npz"), str(tmp_path / "w1.npz")]
    first = _run_workers([chief, other], 2, outs, "no_export")
    assert "resumed 0 chief=True" in first[0] and "resumed 0 chief=False" in first[1]
    w0, w1 = _weights(outs[0]), _weights(outs[1])
    assert all(np.array_equal(a, b) for a, b in zip(w0, w1))
    chief_files = _files(chief)
    assert "checkpoints/ckpt-2.index" in chief_files and any(f.startswith("tensorboard/") for f in chief_files)
    assert "metrics.jsonl" in chief_files
    assert _files(other) == []  # the non-chief worker wrote nothing

    shutil.copytree(os.path.join(chief, "checkpoints"), os.path.join(other, "checkpoints"))
    copied = _files(other)
    second = _run_workers([chief, other], 4, outs, "export")
    assert "resumed 2 chief=True" in second[0] and "resumed 2 chief=False" in second[1]
    v0, v1 = _weights(outs[0]), _weights(outs[1])
    assert all(np.array_equal(a, b) for a, b in zip(v0, v1))
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(v0, w0)) > 1e-3  # steps 3-4 moved the weights
    assert _files(other) == copied  # still only the chief's copied checkpoint: no ckpt-4, no export
    chief_files = _files(chief)
    assert "checkpoints/ckpt-4.index" in chief_files and "export/saved_model.pb" in chief_files
    assert [json.loads(line)["step"] for line in open(os.path.join(chief, "metrics.jsonl"))] == [1, 2, 3, 4]

    import tf_rl_text

    policy = tf_rl_text.load(os.path.join(chief, "export"))
    texts = policy.generate(["the movie was", "my day"], max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_distributed_trainer_refuses_a_model_built_outside_the_scope(tokenizer):
    """A model built outside strategy.scope() holds plain variables the replicas cannot update:
    a clear error naming the fix, not a silent single-device run."""
    from conftest import make_tiny_model
    from tf_rl_text import ReinforceTrainer, RLAgent, TextGenerationEnv
    from tf_rl_text._compat import tf

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(["a", "b"], tokenizer, lambda c, p, r: [0.0] * len(c), batch_size=2, max_new_tokens=2)
    with pytest.raises(ValueError, match=r"built outside strategy.scope\(\).*build the model and the RLAgent inside"):
        ReinforceTrainer(agent, env, strategy=tf.distribute.MirroredStrategy(["/cpu:0"]))
    trainer = ReinforceTrainer(agent, env)  # the default strategy: as before
    assert not trainer.distributed and trainer.is_chief
    with pytest.raises(TypeError, match="strategy must be a tf.distribute.Strategy, got str"):
        ReinforceTrainer(agent, env, strategy="mirrored")


def test_cli_config_run_strategy_for_distributed_runs(monkeypatch):
    """The config's run.strategy (the CLI's and the examples'): default, mirrored and multi_worker (the
    workflow writes files on the chief only); multi_worker without TF_CONFIG is a config error naming it."""
    from tf_rl_text import workflow
    from tf_rl_text.configfile import ConfigError, RunSection

    assert [RunSection(strategy=s).strategy for s in ("default", "mirrored", "multi_worker")] == [
        "default", "mirrored", "multi_worker"]
    with pytest.raises(ValueError, match=r"strategy must be one of \('default', 'mirrored', 'multi_worker'\), got 'tpu'"):
        RunSection(strategy="tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    cfg = types.SimpleNamespace(run=RunSection(strategy="multi_worker"), source="x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml: run.strategy: strategy 'multi_worker' needs TF_CONFIG"):
        workflow.make_strategy(cfg)
