"""Exact resume: a run stopped at step k and resumed from its checkpoint ends with the same
weights (allclose 1e-6) and the same logged metrics as the uninterrupted run, for each algorithm
family (REINFORCE, actor-critic, Q-learning), and after SIGKILLs at random moments."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import make_tiny_model
from tf_rl_text import (PPOConfig, PPOTrainer, QLearningConfig, QLearningTrainer, ReinforceConfig, ReinforceTrainer,
                        RLAgent, TextGenerationEnv)

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed", "the food", "a"]


def length_reward(completions, prompts, references):
    return [len(c.split()) / 4.0 for c in completions]


def make_env(tokenizer, **kwargs):
    return TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=4, seed=0, **kwargs)


def metrics(trainer):
    return [{k: v for k, v in h.items() if k != "step_time_s"} for h in trainer.history]


def assert_same_run(a, b):
    wa, wb = [v.numpy() for v in a.agent.model.weights], [v.numpy() for v in b.agent.model.weights]
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    ha, hb = metrics(a), metrics(b)
    assert len(ha) == len(hb)
    for x, y in zip(ha, hb):
        assert x.keys() == y.keys()
        np.testing.assert_allclose([x[k] for k in sorted(x)], [y[k] for k in sorted(y)], rtol=1e-6, atol=1e-6)


def stop_and_resume(build, tmp_path, k, n):
    """(uninterrupted trainer after n steps, trainer resumed at k and run to n)."""
    straight = build(None)
    straight.train(n, progress=False)
    first = build(str(tmp_path / "run"))
    first.train(k, progress=False)
    assert first.global_step == k
    resumed = build(str(tmp_path / "run"))  # a new process would build everything again, like this
    assert resumed.global_step == k and resumed.restored_from.endswith(f"ckpt-{k}")
    resumed.train(n, progress=False)
    assert resumed.global_step == n
    return straight, resumed


def test_reinforce_resumes_exactly(tokenizer, tmp_path):
    def build(run_dir):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        config = ReinforceConfig(learning_rate=1e-2, baseline="moving_average", kl_coef=0.1, reward_normalization=True,
                                 lr_schedule="cosine", warmup_steps=1, total_steps=4)
        return ReinforceTrainer(agent, make_env(tokenizer), config, run_dir=run_dir, checkpoint_every=2)

    straight, resumed = stop_and_resume(build, tmp_path, 2, 4)
    assert_same_run(straight, resumed)
    assert resumed.moving_average == straight.moving_average  # the Python-side state came back too
    assert resumed.reward_normalizer.count == straight.reward_normalizer.count == 4 * 2
    assert straight.history[0]["loss"] != straight.history[2]["loss"]  # the steps differ: the test can fail


def test_ppo_resumes_exactly_with_adaptive_kl_and_minibatch_order(tokenizer, tmp_path):
    def build(run_dir):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        config = PPOConfig(learning_rate=1e-2, num_samples_per_prompt=2, num_epochs=2, num_minibatches=2,
                           kl_coef=0.05, adaptive_kl=True, kl_target=0.01, kl_horizon=10, early_stop_kl=None)
        return PPOTrainer(agent, make_env(tokenizer), config, run_dir=run_dir, checkpoint_every=1)

    straight, resumed = stop_and_resume(build, tmp_path, 1, 3)
    assert_same_run(straight, resumed)
    assert resumed.kl_coef == straight.kl_coef != 0.05  # the adaptive coefficient moved and was restored
    for x, y in zip(straight.value_head.weights, resumed.value_head.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-6)


def test_q_learning_resumes_exactly_with_replay_epsilon_and_target_network(tokenizer, tmp_path):
    def build(run_dir):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        config = QLearningConfig(learning_rate=1e-2, batch_size=4, target_update_period=2, epsilon=0.5,
                                 epsilon_final=0.1, epsilon_decay_steps=4, replay_capacity=16)
        env = make_env(tokenizer, references=[p + " ok" for p in PROMPTS])
        trainer = QLearningTrainer(agent, env, config, run_dir=run_dir, checkpoint_every=1)
        trainer.add_demonstrations()
        return trainer

    straight, resumed = stop_and_resume(build, tmp_path, 2, 4)
    assert_same_run(straight, resumed)
    assert len(resumed.replay) == len(straight.replay) == 8
    assert float(resumed.policy.epsilon.numpy()) == pytest.approx(0.1)
    for x, y in zip(straight.target_model.weights, resumed.target_model.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-6)


# --------------------------------------------------------------------------- SIGKILL
def run_worker(run_dir, steps, out):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "resume_worker.py"), run_dir, str(steps), out],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def finish(proc):
    lines = proc.stdout.read().split()
    assert proc.wait(timeout=300) == 0
    return lines


def test_sigkill_at_random_moments_then_rerun_ends_as_the_uninterrupted_run(tmp_path):
    steps = 12
    import resume_worker  # the uninterrupted run: here, in this process (same code, same op determinism)

    straight = resume_worker.build(None, steps)
    straight.train(steps, progress=False)
    history_ref = metrics(straight)
    weights_ref = [v.numpy() for v in straight.agent.model.weights]
    out = str(tmp_path / "killed.json")
    run_dir = str(tmp_path / "killed_run")
    rng = random.Random(13)
    starts, kills = [], 0
    last_seen = 0
    while kills < 5:
        proc = run_worker(run_dir, steps, out)
        start = int(proc.stdout.readline().split()[1])  # "resumed <step>"
        starts.append(start)
        assert start >= max(0, last_seen - 1)  # a checkpoint after every step: at most the step in flight is lost
        kill_after = min(steps - 1, start + rng.randint(1, 2))
        for line in proc.stdout:
            last_seen = int(line.split()[1])
            if last_seen >= kill_after:
                break
        # a random moment inside the next step (rollout, update, or the checkpoint being written)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    proc = run_worker(run_dir, steps, out)
    final_start = int(proc.stdout.readline().split()[1])
    assert final_start >= max(0, last_seen - 1)
    finish(proc)
    assert starts[0] == 0 and all(s > 0 for s in starts[1:]) and final_start > 0
    with open(out) as g:
        history_out = json.load(g)
    assert len(history_ref) == len(history_out) == steps
    for x, y in zip(history_ref, history_out):
        assert x.keys() == y.keys()
        np.testing.assert_allclose([x[k] for k in sorted(x)], [y[k] for k in sorted(y)], rtol=1e-6, atol=1e-6)
    with np.load(out + ".npz") as b:
        assert len(b.files) == len(weights_ref)
        for i, w in enumerate(weights_ref):
            np.testing.assert_allclose(b[f"arr_{i}"], w, rtol=0, atol=1e-6)
    kept = [f for f in os.listdir(os.path.join(run_dir, "checkpoints")) if f.endswith(".index")]
    assert len(kept) == 2  # keep_checkpoints=2
