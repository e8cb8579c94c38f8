"""Faults: a NaN or Inf loss or gradient refuses the step and changes nothing; an export that fails or is
killed never leaves a folder at its path that looks complete."""
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tf_rl_text
from conftest import REPO, make_tiny_model
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf
from tf_rl_text.export import PARTIAL_MARK, write_atomically
from tf_rl_text.trainers.guard import NonFiniteUpdateError

PROMPTS = ["the movie was", "my day"]


def reward_fn(completions, prompts, references):
    return [len(c) / 10 for c in completions]


class BlowUpAgent(RLAgent):
    """An agent whose backward pass can be switched to Inf (forward unchanged): a finite loss with
    a non-finite gradient, as a numerically unstable custom layer would give."""

    def __init__(self, *args, **kwargs):
        self.blow_up = tf.Variable(False, trainable=False)
        super().__init__(*args, **kwargs)

    def process_logits(self, logits):
        flag = self.blow_up

        @tf.custom_gradient
        def identity(x):
            def grad(dy):
                return dy * tf.where(flag, tf.constant(np.inf, dy.dtype), tf.constant(1.0, dy.dtype))
            return tf.identity(x), grad

        return identity(logits)


def snapshot(trainer):
    return [v.numpy().copy() for v in trainer.agent.model.variables + list(trainer.optimizer.variables)]


def unchanged(trainer, before):
    after = snapshot(trainer)
    return len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))


@pytest.fixture(scope="module")
def trainer(tokenizer):
    agent = BlowUpAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, reward_fn, batch_size=2, max_new_tokens=3)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="none", learning_rate=1e-2))
    trainer.step()  # one good update first: Adam's moments are non-zero, so "unchanged" means something
    return trainer


def test_nan_loss_refuses_the_step_and_changes_nothing(trainer, monkeypatch):
    before, updates = snapshot(trainer), trainer.num_updates
    baseline = trainer._baseline
    monkeypatch.setattr(trainer, "_baseline", lambda rollout: (baseline(rollout)[0], tf.fill([2], np.nan)))
    with pytest.raises(NonFiniteUpdateError, match=rf"REINFORCE step {updates + 1} refused: the loss is nan") as info:
        trainer.step()
    assert info.value.step == updates + 1 and info.value.quantity == "loss" and np.isnan(info.value.value)
    assert "weights and optimizer state are as they were" in str(info.value) and "lower learning_rate" in str(info.value)
    assert unchanged(trainer, before) and trainer.num_updates == updates
    monkeypatch.undo()
    trainer.step()  # training goes on after a refused step, and this one does change the weights
    assert trainer.num_updates == updates + 1 and not unchanged(trainer, before)


def test_inf_gradient_refuses_the_step_and_changes_nothing(trainer):
    before, updates = snapshot(trainer), trainer.num_updates
    trainer.agent.blow_up.assign(True)
    try:
        with pytest.raises(NonFiniteUpdateError, match=rf"step {updates + 1} refused: the gradient norm is (inf|nan)"):
            trainer.step()
    finally:
        trainer.agent.blow_up.assign(False)
    assert unchanged(trainer, before) and trainer.num_updates == updates


# ------------------------------------------------------------------ atomic export
def test_a_failed_export_leaves_the_previous_one_and_no_partial_folder(tokenizer, tmp_path, monkeypatch):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    target = str(tmp_path / "policy")
    tf_rl_text.export_policy(agent, target, max_new_tokens=3)
    first = tf_rl_text.load(target).generate(PROMPTS)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(tokenizer), "save_pretrained", disk_full)  # fails after the graph is written
    with pytest.raises(OSError, match="No space left on device"):
        tf_rl_text.export_policy(agent, target, max_new_tokens=4)
    assert os.listdir(tmp_path) == ["policy"]  # no partial sibling left behind
    monkeypatch.undo()
    policy = tf_rl_text.load(target)
    assert policy.max_new_tokens == 3 and policy.generate(PROMPTS) == first

    def half_write(folder):  # a first write that fails halfway leaves nothing at all
        open(os.path.join(folder, "saved_model.pb"), "w").close()
        disk_full()

    with pytest.raises(OSError, match="No space left on device"):
        write_atomically(str(tmp_path / "fresh"), half_write)
    assert os.listdir(tmp_path) == ["policy"]


def test_a_successful_write_removes_leftovers_of_killed_writes(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".out{PARTIAL_MARK}{dead.stdout.strip()}-abcd1234-new"
    leftover.mkdir()
    (leftover / "half_written").write_text("x")
    write_atomically(str(tmp_path / "out"), lambda folder: open(os.path.join(folder, "done"), "w").close())
    assert sorted(os.listdir(tmp_path)) == ["out"] and os.listdir(tmp_path / "out") == ["done"]


KILLED_EXPORT = r"""
import sys, time
import tf_rl_text
from tf_rl_text import RLAgent, default_model, default_tokenizer, export_policy
from tf_rl_text import export as export_module

write = export_module.write_atomically
def timed_write(path, fn):          # reports when the files start being written, and for how long
    start = time.perf_counter()
    print("WRITING", flush=True)
    write(path, fn)
    print("WROTE", time.perf_counter() - start, flush=True)
export_module.write_atomically = timed_write

tokenizer = default_tokenizer()
agent = RLAgent(default_model(tokenizer, n_layer=1, n_embd=32, n_head=2), tokenizer, seed=0)
start = time.perf_counter()
export_policy(agent, sys.argv[1], max_new_tokens=4)
print("FIRST", time.perf_counter() - start, flush=True)
export_policy(agent, sys.argv[1], max_new_tokens=5)   # killed at a random moment
print("SECOND", flush=True)
"""


def test_an_export_killed_at_a_random_moment_leaves_nothing_that_looks_complete(tmp_path):
    """The second export over a complete one is SIGKILLed at a random moment: of the whole export, or
    (every other run, at random) of its file writing. The target is then absent, or a complete export
    (the old or the new) that loads."""
    window = random.choice(["anywhere", "while writing"])
    target = str(tmp_path / "policy")
    script = tmp_path / "export.py"
    script.write_text(KILLED_EXPORT)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), target], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        lines = {}
        for line in proc.stdout:
            key, _, value = line.strip().partition(" ")
            lines[key] = float(value) if value else None
            if key == "FIRST" and window == "anywhere" or key == "WRITING" and "FIRST" in lines:
                break
        assert "FIRST" in lines, f"the child failed before its first export: {lines}"
        span = lines["FIRST"] if window == "anywhere" else lines["WROTE"]
        delay = random.uniform(0, 1.2 * span)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    where = f"(killed {delay:.3f} s into a {span:.3f} s {window} window)"
    if os.path.exists(target):
        policy = tf_rl_text.load(target)
        assert policy.max_new_tokens in (4, 5), where
        assert len(policy.generate(PROMPTS)) == 2, where
    assert sorted(e for e in os.listdir(tmp_path) if not e.startswith(".")) in (["export.py"], ["export.py", "policy"]), where


# ------------------------------------------------------------------ checkpoints
def test_a_refused_step_keeps_the_last_good_checkpoint_and_a_failed_save_corrupts_nothing(trainer, tmp_path,
                                                                                         monkeypatch):
    """Step 2 is refused (NaN loss): the run folder's latest checkpoint stays step 1. Then the disk
    fills while step 2's checkpoint is written: a clear error, partial files removed, and a new
    trainer on the folder resumes from step 1 with step 1's weights."""
    run_dir = str(tmp_path / "run")
    run = ReinforceTrainer(trainer.agent, trainer.env, ReinforceConfig(baseline="none", learning_rate=1e-2),
                           run_dir=run_dir, checkpoint_every=1)
    run.train(1, progress=False)
    after_step_1 = snapshot(run)
    baseline = run._baseline
    monkeypatch.setattr(run, "_baseline", lambda rollout: (baseline(rollout)[0], tf.fill([2], np.nan)))
    with pytest.raises(NonFiniteUpdateError, match="REINFORCE step 2 refused: the loss is nan"):
        run.train(3, progress=False)
    checkpoints = os.path.join(run_dir, "checkpoints")
    assert tf.train.latest_checkpoint(checkpoints).endswith("ckpt-1") and run.global_step == 1
    assert unchanged(run, after_step_1)
    monkeypatch.undo()

    run.step()  # a good step 2, then its checkpoint write fails halfway
    manager = run._checkpoint_manager()

    def disk_full(*args, **kwargs):
        open(os.path.join(checkpoints, "ckpt-2.index"), "wb").write(b"\0" * 10)  # a partial file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(manager, "save", disk_full)
    with pytest.raises(OSError, match=r"could not save the checkpoint of step 2 .*No space left on device.*the last "
                                      r"good checkpoint \(step 1\) is kept"):
        run.save_checkpoint()
    monkeypatch.undo()
    assert not any(name.startswith("ckpt-2") for name in os.listdir(checkpoints))
    resumed = ReinforceTrainer(trainer.agent, trainer.env, ReinforceConfig(baseline="none", learning_rate=1e-2),
                               run_dir=run_dir)
    assert resumed.global_step == 1 and resumed.restored_from.endswith("ckpt-1")
    weights = [v.numpy() for v in trainer.agent.model.variables]
    assert all(np.array_equal(a, b) for a, b in zip(after_step_1, weights))
