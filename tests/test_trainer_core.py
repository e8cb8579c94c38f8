"""The trainer core (trainers/base.py, optim.py, checkpoint.py): schedules, weight decay,
gradient accumulation, frozen layers and the KL leash, the KL anchor across a resume, checkpoints
in a run folder, signals."""
import os
import signal

import numpy as np
import pytest

from conftest import make_tiny_model
from tf_rl_text import (A2CConfig, A2CTrainer, PPOConfig, PPOTrainer, QLearningConfig, QLearningTrainer,
                        ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv)
from tf_rl_text.precision import with_precision
from tf_rl_text._compat import tf
from tf_rl_text.callbacks import LambdaCallback
from tf_rl_text.optim import learning_rate_at, make_optimizer
from tf_rl_text.trainers.base import TrainerConfig

PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed"]


def length_reward(completions, prompts, references):
    return [len(c.split()) / 4.0 for c in completions]


def make_env(tokenizer, batch_size=2):
    return TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=batch_size, max_new_tokens=4, seed=0)


def reinforce(tokenizer, model=None, run_dir=None, **config):
    agent = RLAgent(model or make_tiny_model(tokenizer), tokenizer, seed=0)
    cfg = dict(learning_rate=1e-2, kl_coef=0.1)
    cfg.update(config)
    return ReinforceTrainer(agent, make_env(tokenizer), ReinforceConfig(**cfg), run_dir=run_dir, checkpoint_every=1)


# --------------------------------------------------------------------------- schedules and optimizer
def test_learning_rate_schedules_by_hand():
    linear = TrainerConfig(learning_rate=1.0, lr_schedule="linear", warmup_steps=2, total_steps=6)
    # warm-up: (s + 1) / 2 for s = 0, 1; then 1 -> 0 linearly over steps 2..6
    assert [learning_rate_at(linear, s) for s in range(8)] == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0, 0])
    cosine = TrainerConfig(learning_rate=2.0, lr_schedule="cosine", total_steps=4, min_lr_ratio=0.1)
    # 0.2 + 1.8 * 0.5 * (1 + cos(pi * s / 4))
    assert [learning_rate_at(cosine, s) for s in range(5)] == pytest.approx(
        [2.0, 0.2 + 0.9 * (1 + np.cos(np.pi / 4)), 1.1, 0.2 + 0.9 * (1 - np.cos(np.pi / 4)), 0.2], abs=1e-6)
    constant = TrainerConfig(learning_rate=1.0, warmup_steps=4)
    assert [learning_rate_at(constant, s) for s in range(6)] == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1])


def test_trainers_base_declares_only_its_own_names_and_the_split_out_ones_live_where_defined():
    """trainers/base.py was split (optimizer -> optim.py, run state -> checkpoint.py, check -> validation.py); since
    0.1.0 it no longer re-exports those names: each is declared by the module that defines it."""
    from tf_rl_text import checkpoint, optim, validation
    from tf_rl_text.trainers import base, guard

    moved = {optim: ["LR_SCHEDULES", "NO_DECAY", "WarmupSchedule", "apply_clipped", "learning_rate_at",
                     "make_optimizer"],
             checkpoint: ["JSONState", "numpy_rng_state", "set_numpy_rng_state"],
             validation: ["check", "is_int_at_least"], guard: ["NonFiniteUpdateError"]}
    assert base.__all__ == ["TrainerConfig", "Trainer"]
    for module, names in moved.items():
        assert set(names) <= set(module.__all__), module.__name__
    assert issubclass(base.Trainer, checkpoint.Checkpointing) and "save_checkpoint" not in vars(base.Trainer)


def test_the_optimizer_uses_the_schedule_at_the_trainer_step(tokenizer):
    trainer = reinforce(tokenizer, lr_schedule="linear", warmup_steps=1, total_steps=3, learning_rate=0.3)
    lrs = [trainer.step()["lr"] for _ in range(3)]
    assert lrs == pytest.approx([0.3, 0.3, 0.15])
    assert float(trainer.optimizer.learning_rate) == pytest.approx(0.15)  # the rate Keras applied last
    assert trainer.learning_rate == pytest.approx(0.0)  # the next one: step 3 of 3, the end of the decay


@pytest.mark.parametrize("kwargs, message", [
    ({"lr_schedule": "step"}, "lr_schedule must be one of ('constant', 'linear', 'cosine'), got 'step'"),
    ({"lr_schedule": "cosine"}, "total_steps must be set and > warmup_steps (0) for lr_schedule='cosine', got None"),
    ({"grad_accumulation_steps": 0}, "grad_accumulation_steps must be an integer >= 1, got 0"),
    ({"weight_decay": -0.1}, "weight_decay must be >= 0, got -0.1"),
    ({"warmup_steps": 1.5}, "warmup_steps must be an integer >= 0, got 1.5"),
])
def test_shared_config_fields_are_validated_in_every_algorithm_config(kwargs, message):
    for cls in (TrainerConfig, ReinforceConfig, A2CConfig, QLearningConfig):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            cls(**kwargs)


def test_weight_decay_shrinks_weights_but_not_biases_or_norms():
    optimizer = make_optimizer(TrainerConfig(learning_rate=0.1, weight_decay=0.5))
    kernel = tf.Variable(tf.ones([2]), name="dense/kernel")
    bias = tf.Variable(tf.ones([2]), name="dense/bias")
    gamma = tf.Variable(tf.ones([2]), name="ln_1/gamma")
    optimizer.apply_gradients(zip([tf.zeros([2])] * 3, [kernel, bias, gamma]))  # zero gradient: Adam moves nothing
    np.testing.assert_allclose(kernel.numpy(), [0.95, 0.95], rtol=1e-6)  # 1 - lr * decay
    np.testing.assert_allclose(bias.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(gamma.numpy(), [1.0, 1.0])


# --------------------------------------------------------------------------- gradient accumulation
def two_steps(trainer):
    """Two steps with plain SGD (lr 0.1), so the weights show the gradient itself: Adam's first step is
    about lr * sign(g), which would hide a wrongly scaled gradient and amplify float noise near g = 0.
    The compiled updates trace at their first call, so swapping the optimizer before it is enough."""
    from tf_rl_text._compat import keras

    trainer.optimizer = keras.optimizers.SGD(learning_rate=0.1)
    return [trainer.step() for _ in range(2)]


def test_reinforce_accumulated_chunks_make_the_same_update_as_one_batch(tokenizer, chunks=3):
    kw = dict(num_samples_per_prompt=2, baseline="rloo", normalize_advantages=True, entropy_coef=0.01,
              max_grad_norm=None)
    whole = reinforce(tokenizer, **kw)
    split = reinforce(tokenizer, grad_accumulation_steps=chunks, **kw)  # 4 rows in 2 or 3 (2+1+1) chunks
    a, b = two_steps(whole), two_steps(split)
    for x, y in zip(a, b):
        for key in ("loss", "policy_loss", "entropy", "kl", "grad_norm", "advantage_mean"):
            assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-5), key  # sums of O(1) terms
    assert a[1]["kl"] > 0 and a[0]["grad_norm"] > 0
    for x, y in zip(whole.agent.model.weights, split.agent.model.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5)


def test_a2c_and_q_learning_accumulated_chunks_make_the_same_update(tokenizer):
    def a2c(k):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        return A2CTrainer(agent, make_env(tokenizer), A2CConfig(learning_rate=1e-2, num_samples_per_prompt=2,
                                                                grad_accumulation_steps=k))

    def q(k):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        return QLearningTrainer(agent, make_env(tokenizer), QLearningConfig(learning_rate=1e-2, batch_size=4,
                                                                            grad_accumulation_steps=k))

    for build, keys in ((a2c, ("loss", "policy_loss", "value_loss", "entropy", "grad_norm")),
                        (q, ("loss", "td_error", "q_taken", "grad_norm"))):
        whole, split = build(1), build(2)
        for x, y in zip(two_steps(whole), two_steps(split)):
            for key in keys:
                assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-6), (build.__name__, key)
        for x, y in zip(whole.agent.model.weights, split.agent.model.weights):
            np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-6)


def test_memory_lean_ppo_scores_its_rollout_in_update_sized_chunks_with_the_same_numbers(tokenizer):
    """grad_accumulation_steps > 1: the rollout is scored (old log-probs, values, reference log-probs) in
    num_minibatches x grad_accumulation_steps row chunks, so no forward pass holds the whole rollout's
    (B, T, V) logits; the targets equal the whole-rollout scoring."""
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = PPOTrainer(agent, make_env(tokenizer, batch_size=4), PPOConfig(
        learning_rate=1e-2, kl_coef=0.1, num_samples_per_prompt=2, num_minibatches=2, grad_accumulation_steps=2))
    rollout = trainer.env.rollout(agent, num_samples=2)  # 8 completions
    ids = [tf.constant(x) for x in (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                    rollout.completion_mask)]
    rewards, beta = tf.constant(rollout.rewards, tf.float32), tf.constant(0.1)
    rng = np.random.RandomState(0)
    for v in agent.model.trainable_variables:  # move the policy off the reference: a live KL term
        v.assign_add(rng.normal(0.0, 0.1, v.shape).astype(np.float32))
    rows_seen = []
    score = trainer._score
    trainer._score = lambda *t: rows_seen.append(int(t[0].shape[0])) or score(*t)
    chunked = trainer.score_rollout(ids, rewards, beta)
    whole = trainer._targets(*ids, rewards, beta)
    assert rows_seen == [2, 2, 2, 2]  # 8 rows in 2 x 2 chunks, never the whole rollout
    assert abs(float(whole["kl"])) > 1e-3
    for key in ("log_probs", "values", "advantages", "returns", "kl", "explained_variance"):
        np.testing.assert_allclose(chunked[key].numpy(), whole[key].numpy(), rtol=1e-5, atol=1e-6, err_msg=key)


# --------------------------------------------------------------------------- frozen layers, the KL anchor
def test_a_frozen_layer_keeps_the_kl_leash_and_the_target_network(tokenizer):
    model = make_tiny_model(tokenizer)
    model.transformer.h[0].trainable = False  # Keras now lists h[0]'s weights last
    mixed = with_precision(model, "mixed_bfloat16")  # copied by name: this raised before
    assert len(mixed.weights) == len(model.weights)
    trainer = reinforce(tokenizer, model=model)
    ref = {v.name.split("/", 1)[1]: v.numpy() for v in trainer.ref_model.weights}
    for v in model.weights:
        np.testing.assert_array_equal(ref[v.name.split("/", 1)[1]], v.numpy())
    assert abs(trainer.step()["kl"]) < 1e-6  # before the first update the policy IS the reference
    q = QLearningTrainer(RLAgent(model, tokenizer, seed=0), make_env(tokenizer), QLearningConfig())
    target = {v.name.split("/", 1)[1]: v.numpy() for v in q.target_model.weights}
    for v in model.weights:
        np.testing.assert_array_equal(target[v.name.split("/", 1)[1]], v.numpy())


def test_the_kl_anchor_is_the_starting_policy_even_when_weights_are_loaded_before_a_resume(tokenizer, tmp_path):
    run = str(tmp_path / "run")
    first = reinforce(tokenizer, run_dir=run)
    start = [v.numpy() for v in first.agent.model.weights]
    first.train(2, progress=False)
    trained = [v.numpy() for v in first.agent.model.weights]
    model = make_tiny_model(tokenizer)
    model.set_weights(trained)  # a user restores the trained weights first, then builds the trainer
    resumed = reinforce(tokenizer, model=model, run_dir=run)
    assert resumed.global_step == 2
    for ref, s, t in zip(resumed.ref_model.weights, start, trained):
        np.testing.assert_array_equal(ref.numpy(), s)
    assert any(not np.array_equal(s, t) for s, t in zip(start, trained))  # training moved the policy


# --------------------------------------------------------------------------- run folder
def test_train_counts_to_a_total_with_a_run_dir_and_adds_steps_without(tokenizer, tmp_path):
    with_dir = reinforce(tokenizer, run_dir=str(tmp_path / "run"))
    assert len(with_dir.train(2, progress=False)) == 2
    assert with_dir.train(2, progress=False) == [] and with_dir.global_step == 2  # already there
    plain = reinforce(tokenizer)
    plain.train(1, progress=False)
    plain.train(1, progress=False)
    assert plain.global_step == 2 and plain.num_updates == 2 and len(plain.history) == 2
    names = set(with_dir._trackables())
    assert {"model", "optimizer", "sampling_rng", "global_step", "python_state", "ref_model"} <= names


def test_keeps_the_last_k_and_falls_back_when_the_latest_checkpoint_is_damaged(tokenizer, tmp_path):
    run = str(tmp_path / "run")
    trainer = reinforce(tokenizer, run_dir=run)
    trainer.keep_checkpoints = 2
    trainer.train(3, progress=False)
    folder = os.path.join(run, "checkpoints")
    assert sorted(f for f in os.listdir(folder) if f.endswith(".index")) == ["ckpt-2.index", "ckpt-3.index"]
    data = [f for f in os.listdir(folder) if f.startswith("ckpt-3.data")][0]
    with open(os.path.join(folder, data), "r+b") as f:
        f.truncate(100)  # a damaged file (a disk error; an interrupted save never becomes the latest)
    with pytest.warns(UserWarning, match="could not restore .*ckpt-3"):
        resumed = reinforce(tokenizer, run_dir=run)
    assert resumed.global_step == 2 and resumed.restored_from.endswith("ckpt-2") and len(resumed.history) == 2


def test_a_signal_saves_a_checkpoint_after_the_step_and_stops(tokenizer, tmp_path, signum=signal.SIGTERM,
                                                               error=SystemExit):
    """SIGTERM (SIGINT takes the same path and ends in KeyboardInterrupt instead)."""
    run = str(tmp_path / "run")
    trainer = reinforce(tokenizer, run_dir=run)
    trainer.checkpoint_every = 0  # only the signal (and the end) save

    def kill(step, logs):
        if step == 2:
            os.kill(os.getpid(), signum)

    before = signal.getsignal(signum)
    with pytest.raises(error) as info:
        trainer.train(5, progress=False, callbacks=[LambdaCallback(on_step_end=kill)])
    if error is SystemExit:
        assert info.value.code == 143
    assert trainer.global_step == 2
    assert tf.train.latest_checkpoint(os.path.join(run, "checkpoints")).endswith("ckpt-2")
    assert signal.getsignal(signum) is before  # the handler is put back
    assert reinforce(tokenizer, run_dir=run).global_step == 2


def test_one_name_per_concept_with_trl_names_accepted():
    """kl_coef and max_new_tokens are the library's names everywhere; GRPO's beta and DPO's
    max_completion_length (TRL's names) are accepted and set them; two disagreeing values are refused."""
    from tf_rl_text import DPOConfig, GRPOConfig, OnlineDPOConfig

    assert GRPOConfig(beta=0.04).kl_coef == 0.04 and GRPOConfig(kl_coef=0.04).beta == 0.04
    assert GRPOConfig().kl_coef == GRPOConfig().beta == 0.0
    assert GRPOConfig(kl_coef=0.1, beta=0.1).kl_coef == 0.1
    with pytest.raises(ValueError, match=r"kl_coef=0.1 and beta=0.2 \(another name for kl_coef\) disagree"):
        GRPOConfig(kl_coef=0.1, beta=0.2)
    with pytest.raises(ValueError, match="kl_coef must be >= 0, got -1"):
        GRPOConfig(beta=-1.0)
    assert DPOConfig(max_completion_length=8).max_new_tokens == 8 and DPOConfig().max_new_tokens == 64
    assert OnlineDPOConfig(max_completion_length=12).max_new_tokens == 12
    with pytest.raises(ValueError, match="max_new_tokens must be an integer >= 1, got 0"):
        DPOConfig(max_new_tokens=0)
