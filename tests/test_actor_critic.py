"""A2C and PPO: hand-computed GAE, clipped losses and gradients, the adaptive KL coefficient,
rewards that rise on the REINFORCE tests' toy task, value-head save/load and the `values` export."""
import dataclasses

import numpy as np
import pytest

from conftest import make_tiny_model
from tf_rl_text import ops
from tf_rl_text import RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf
from tf_rl_text.heads import ValueHead
from tf_rl_text.rewards import TokenFrequencyReward
from tf_rl_text.ops import a2c_loss, ppo_loss
from tf_rl_text.trainers.actor_critic import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer


# --------------------------------------------------------------------------- GAE
def test_gae_matches_hand_computed_values_with_padding_and_terminal_step():
    # row 0: 4 tokens then 1 pad; row 1: 2 tokens then 3 pads. Pad rewards/values must be ignored.
    rewards = tf.constant([[0.1, 0.0, -0.2, 1.0, 7.0], [0.0, 0.5, 3.0, 3.0, 3.0]])
    values = tf.constant([[0.5, 0.4, 0.3, 0.2, 9.0], [0.2, 0.1, 5.0, 5.0, 5.0]])
    mask = tf.constant([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], tf.float32)
    adv, ret = ops.generalized_advantages(rewards, values, mask, gamma=0.9, lam=0.8)
    # by hand, gamma * lam = 0.72, V after the last token = 0 (terminal):
    # row 0: delta3 = 1 - .2 = .8; delta2 = -.2 + .9*.2 - .3 = -.32; delta1 = .9*.3 - .4 = -.13;
    #        delta0 = .1 + .9*.4 - .5 = -.04
    #        A3 = .8; A2 = -.32 + .72*.8 = .256; A1 = -.13 + .72*.256 = .05432; A0 = -.04 + .72*.05432 = -.0008896
    # row 1: delta1 = .5 - .1 = .4; delta0 = .9*.1 - .2 = -.11; A1 = .4; A0 = -.11 + .72*.4 = .178
    np.testing.assert_allclose(adv.numpy(), [[-0.0008896, 0.05432, 0.256, 0.8, 0.0], [0.178, 0.4, 0, 0, 0]],
                               atol=1e-6)
    np.testing.assert_allclose(ret.numpy(), [[0.4991104, 0.45432, 0.556, 1.0, 0.0], [0.378, 0.5, 0, 0, 0]],
                               atol=1e-6)


def test_gae_with_lambda_one_is_return_minus_value():
    rewards = tf.constant([[0.0, -0.1, 2.0, 0.0]])
    values = tf.constant([[0.3, 0.2, 0.1, 4.0]])
    mask = tf.constant([[1.0, 1.0, 1.0, 0.0]])
    adv, ret = ops.generalized_advantages(rewards, values, mask, gamma=0.9, lam=1.0)
    g = ops.discounted_returns(rewards, mask, 0.9)  # 0 + .9*1.7 = 1.53, -.1 + .9*2 = 1.7, 2, 0
    np.testing.assert_allclose(ret.numpy(), g.numpy(), atol=1e-6)
    np.testing.assert_allclose(adv.numpy(), [[1.53 - 0.3, 1.7 - 0.2, 2.0 - 0.1, 0.0]], atol=1e-6)


# --------------------------------------------------------------------------- PPO losses
# one row of 5 tokens + 1 pad; old log-probs 0, so the ratio is exp(logp)
RATIOS = np.array([[0.5, 1.1, 1.5, 1.5, 0.5, 3.0]], np.float32)
ADVANTAGES = np.array([[-1.0, 2.0, 1.0, -1.0, 1.0, 5.0]], np.float32)
MASK = np.array([[1, 1, 1, 1, 1, 0]], np.float32)


def test_ppo_clipped_loss_and_gradient_below_inside_and_above_the_clip_range():
    logp = tf.Variable(np.log(RATIOS))
    with tf.GradientTape() as tape:
        loss, clip_fraction = ops.ppo_clipped_policy_loss(logp, tf.zeros_like(logp), tf.constant(ADVANTAGES),
                                                          tf.constant(MASK), clip_range=0.2)
    grad = tape.gradient(loss, logp).numpy()
    # min(rho A, clip(rho, .8, 1.2) A) per token:
    #   rho .5 (below), A -1: min(-.5, -.8) = -.8   clipped   -> no gradient
    #   rho 1.1 (inside), A 2: 2.2                  unclipped -> d/dlogp = rho A = 2.2
    #   rho 1.5 (above), A 1: min(1.5, 1.2) = 1.2   clipped   -> no gradient
    #   rho 1.5 (above), A -1: min(-1.5, -1.2) = -1.5 unclipped -> -1.5
    #   rho .5 (below), A 1: min(.5, .8) = .5       unclipped -> .5
    # L = -(-.8 + 2.2 + 1.2 - 1.5 + .5) / 5 = -.32; dL/dlogp = -(1/5) rho A where unclipped
    assert float(loss) == pytest.approx(-0.32, abs=1e-6)
    np.testing.assert_allclose(grad, [[0.0, -0.44, 0.0, 0.3, -0.1, 0.0]], atol=1e-6)
    assert float(clip_fraction) == pytest.approx(2 / 5)


def test_clipped_value_loss_by_hand():
    v, old, ret = tf.constant([[1.0, 0.0]]), tf.constant([[0.5, 0.1]]), tf.constant([[2.0, 0.0]])
    mask = tf.ones([1, 2])
    # unclipped: (1-2)^2 = 1, 0; clipped values .5 + .2 = .7 -> 1.69, .1 - .1 = 0 -> 0; max -> 1.69, 0
    assert float(ops.clipped_value_loss(v, old, ret, mask, 0.2)) == pytest.approx(0.5 * (1.69 + 0.0) / 2)
    assert float(ops.clipped_value_loss(v, old, ret, mask, None)) == pytest.approx(0.5 * (1.0 + 0.0) / 2)


def test_ppo_and_a2c_losses_add_value_and_entropy_terms_by_hand():
    logp = tf.constant(np.log(RATIOS))
    values, returns = tf.constant([[1.0] * 6]), tf.constant([[2.0] * 6])  # value loss .5 * 1 = .5
    entropy = tf.fill([1, 6], 3.0)
    adv, mask = tf.constant(ADVANTAGES), tf.constant(MASK)
    loss, info = ppo_loss(logp, tf.zeros_like(logp), values, values, adv, returns, mask, entropy,
                          clip_range=0.2, clip_range_value=None, vf_coef=0.1, entropy_coef=0.01)
    assert float(loss) == pytest.approx(-0.32 + 0.1 * 0.5 - 0.01 * 3.0, abs=1e-6)
    assert float(info["value_loss"]) == pytest.approx(0.5)
    # A2C: -mean(A logp) over the 5 tokens
    expected_pg = -np.sum(ADVANTAGES[0, :5] * np.log(RATIOS[0, :5])) / 5
    loss, info = a2c_loss(logp, values, adv, returns, mask, entropy, vf_coef=0.5, entropy_coef=0.01)
    assert float(info["policy_loss"]) == pytest.approx(expected_pg, rel=1e-5)
    assert float(loss) == pytest.approx(expected_pg + 0.5 * 0.5 - 0.03, rel=1e-5)


def test_explained_variance_and_approx_kl_by_hand():
    mask = tf.constant([[1.0, 1.0, 1.0, 0.0]])
    # targets 1,2,4: Var = 14/9; residuals 0,0,1: Var = 2/9 -> 1 - 1/7
    ev = ops.explained_variance(tf.constant([[1.0, 2.0, 3.0, 50.0]]), tf.constant([[1.0, 2.0, 4.0, 0.0]]), mask)
    assert float(ev) == pytest.approx(6 / 7, rel=1e-5)
    assert np.isnan(float(ops.explained_variance(tf.zeros([1, 4]), tf.ones([1, 4]), mask)))
    log_ratio = np.log([2.0, 0.5, 1.0, 9.0]).astype(np.float32)
    expected = np.mean([(2 - 1) - np.log(2), (0.5 - 1) - np.log(0.5), 0.0])
    assert float(ops.approx_kl(tf.constant([log_ratio]), tf.zeros([1, 4]), mask)) == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------- adaptive KL
def test_adaptive_kl_coefficient_moves_toward_the_target():
    # beta (1 + clip((KL - target) / target, -.2, .2) * n / horizon), target 6, n 10, horizon 100
    assert ops.adaptive_kl_coef(0.1, 12.0, 6.0, 100, 10) == pytest.approx(0.1 * (1 + 0.2 * 0.1))  # above: up
    assert ops.adaptive_kl_coef(0.1, 6.6, 6.0, 100, 10) == pytest.approx(0.1 * (1 + 0.1 * 0.1))
    assert ops.adaptive_kl_coef(0.1, 3.0, 6.0, 100, 10) == pytest.approx(0.1 * (1 - 0.2 * 0.1))  # below: down
    assert ops.adaptive_kl_coef(0.1, 6.0, 6.0, 100, 10) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="target must be > 0"):
        ops.adaptive_kl_coef(0.1, 1.0, 0.0, 100, 10)


@pytest.mark.parametrize("kwargs, match", [
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"gae_lambda": 1.5}, "gae_lambda must be in"),
    ({"clip_range": 0.0}, "clip_range must be in"),
    ({"num_minibatches": 0}, "num_minibatches must be"),
    ({"num_epochs": 1.5}, "num_epochs must be"),
    ({"early_stop_kl": -1.0}, "early_stop_kl must be > 0 or None"),
    ({"adaptive_kl": True, "kl_coef": 0.0}, "adaptive_kl needs a starting kl_coef > 0"),
    ({"kl_estimator": "l2"}, "kl_estimator must be one of"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PPOConfig(**kwargs)


# --------------------------------------------------------------------------- training on the toy task
TARGET = 264  # " the", the REINFORCE tests' toy target: reward = fraction of completion tokens equal to it
KL_BOUND = 36.5  # nats per 6-token completion: below the 37.4 (6 ln 512) of a policy collapsed onto " the"
LEASH_MARGIN = 3.0  # nats: the leashed run's mean KL over its 85 rollouts stays at least this far below the control's


def toy_env(tokenizer, batch_size=4):
    return TextGenerationEnv(["the movie was", "my day", "our dinner", "i really enjoyed"], tokenizer,
                             TokenFrequencyReward(tokenizer, TARGET), batch_size=batch_size, max_new_tokens=6, seed=0)


def toy_ppo_run(tokenizer, kl_coef, rollouts=85):
    """PPO on the REINFORCE tests' toy task: ``rollouts`` rollouts of 4 prompts x 8 samples, 2 epochs x
    2 minibatches each, with a fixed KL leash ``kl_coef``. Returns (trainer, weights before training)."""
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = PPOTrainer(agent, toy_env(tokenizer), PPOConfig(learning_rate=1e-2, num_samples_per_prompt=8,
                                                              num_epochs=2, num_minibatches=2, kl_coef=kl_coef))
    before = [w.copy() for w in agent.model.get_weights()]
    trainer.train(rollouts, progress=False)
    return trainer, before


@pytest.fixture(scope="module")
def ppo_run(tokenizer):
    """PPO with a fixed KL leash (beta 0.02), 85 rollouts. Tests only read it (nothing steps or changes
    this trainer), so they pass in any order. Measured: the reward leaves 0 near rollout 20, passes 0.5
    near rollout 40 and reaches ~0.99 by rollout 60 (KL to the reference ~35 nats then)."""
    return toy_ppo_run(tokenizer, kl_coef=0.02)


@pytest.fixture(scope="module")
def ppo_control_run(tokenizer):
    """The same run with no leash to speak of (beta 1e-6, so the same code path with a reference model)."""
    return toy_ppo_run(tokenizer, kl_coef=1e-6)[0]


def test_ppo_reaches_reward_above_half_while_the_kl_leash_holds(ppo_run, ppo_control_run):
    """The leash (beta 0.02) holds the policy nearer the reference than a no-leash control (beta 1e-6).

    Measured over the 85 rollouts: mean KL to the reference 19.0 nats per 6-token completion with the leash,
    25.2 without (the control drifts faster: mean KL over rollouts 11-40 5.1 vs 19.1 nats). Both end near
    collapse onto " the" (last 5 rollouts: reward 0.99 and KL 35.1 leashed, 0.96 and 35.6 control; the
    fully collapsed policy costs 6 ln 512 = 37.4 nats): within 85 rollouts a beta of 0.02 slows the drift
    but does not reach the KL-regularised optimum (p(" the") ~0.89 per token, reward ~0.89, KL ~31 nats),
    so the final KL is not what separates the runs; the KL over the run is.
    """
    trainer, _ = ppo_run
    leashed, control = trainer.history, ppo_control_run.history
    assert len(leashed) == len(control) == 85
    assert {h["kl_coef"] for h in leashed} == {0.02} and {h["kl_coef"] for h in control} == {1e-6}
    reward = np.mean([h["reward_mean"] for h in leashed[-5:]])
    assert reward > 0.5, f"PPO's mean reward over the last 5 rollouts is {reward:.3f}"
    kl_leashed, kl_control = (np.mean([h["kl"] for h in run]) for run in (leashed, control))
    assert kl_leashed < kl_control - LEASH_MARGIN, (
        f"mean KL over the run: {kl_leashed:.1f} nats with the leash, {kl_control:.1f} without; "
        f"the leash should keep it at least {LEASH_MARGIN} nats lower")
    assert max(h["kl"] for h in leashed[-5:]) < KL_BOUND


def test_ppo_trains_logs_every_statistic_and_traces_once(ppo_run):
    trainer, before = ppo_run
    assert np.mean([h["reward_mean"] for h in trainer.history[:3]]) < 0.05  # a random policy rarely says " the"
    last = trainer.history[-1]
    for key in ("reward_mean", "kl", "kl_coef", "entropy", "value_loss", "policy_loss", "clip_fraction",
                "explained_variance", "approx_kl", "gradient_steps"):
        assert key in last
    assert 0.0 < last["kl"] < KL_BOUND and last["kl_coef"] == 0.02 and trainer.kl_coef == 0.02
    assert any(h["clip_fraction"] > 0 for h in trainer.history)  # the clip was active
    changed = [not np.allclose(a, b) for a, b in zip(before, trainer.agent.model.get_weights())]
    assert sum(changed) >= len(changed) - 2
    # minibatches of any size reuse one graph (the update runner's, and the gradient function inside it)
    assert [f.experimental_get_tracing_count() for f in trainer._update_fns.values()] == [1]
    assert trainer._grads.experimental_get_tracing_count() == 1
    assert trainer._targets.experimental_get_tracing_count() == 1


def small_ppo_trainer(tokenizer, **config):
    """A fresh PPO trainer of its own (2 prompts x 4 samples a rollout) for tests that step or reconfigure it.
    Its reward (completion length / 10) differs between samples from the start, so the first update moves
    the policy."""
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(["the movie was", "my day", "our dinner", "i really enjoyed"], tokenizer,
                            lambda c, p, r: [len(x) / 10 for x in c], batch_size=2, max_new_tokens=6, seed=0)
    settings = dict(learning_rate=1e-2, num_samples_per_prompt=4, num_epochs=2, num_minibatches=2, kl_coef=0.03)
    settings.update(config)
    return PPOTrainer(agent, env, PPOConfig(**settings))


def test_ppo_early_stop_and_the_adaptive_kl_coefficient_by_hand(tokenizer):
    """Early stop bounds a rollout's gradient steps; the adaptive coefficient follows Ziegler et al.'s update
    after every rollout, with n = the rollout's completions (2 prompts x 4 samples = 8):
    beta <- beta (1 + clip((KL - target) / target, -0.2, 0.2) n / horizon), KL the rollout's measured KL;
    the next rollout's rewards use the new beta. (A trainer of its own: this test steps and reconfigures it.)"""
    trainer = small_ppo_trainer(tokenizer)
    cfg = trainer.config
    # epochs stop once the approximate KL to the rollout's policy exceeds the bound
    trainer.config = dataclasses.replace(cfg, early_stop_kl=1e-9)
    assert trainer.step()["gradient_steps"] <= 2 < cfg.num_epochs * cfg.num_minibatches
    trainer.config = dataclasses.replace(cfg, early_stop_kl=None)
    assert trainer.step()["gradient_steps"] == cfg.num_epochs * cfg.num_minibatches
    assert trainer.kl_coef == 0.03  # fixed until adaptive_kl is on

    n, horizon = 2 * 4, 10

    def by_hand(beta, kl, target):
        return beta * (1.0 + min(max((kl - target) / target, -0.2), 0.2) * n / horizon)

    for target, clipped in ((1000.0, -0.2), (1e-4, 0.2), (None, None)):  # far above, far below, near the KL
        target = target or max(abs(trainer.history[-1]["kl"]), 0.05)  # (a sampled KL estimate can be < 0)
        trainer.config = dataclasses.replace(cfg, adaptive_kl=True, kl_target=target, kl_horizon=horizon)
        beta = trainer.kl_coef
        stats = trainer.step()
        assert stats["kl_coef"] == pytest.approx(beta, rel=1e-12)  # this rollout's rewards used the current beta
        if clipped is not None:  # 0.03 (1 - 0.16), then (1 + 0.16): the clip and n = 8, not 1
            assert trainer.kl_coef == pytest.approx(beta * (1 + clipped * n / horizon), rel=1e-9)
        assert trainer.kl_coef == pytest.approx(by_hand(beta, stats["kl"], target), rel=1e-9), (beta, stats["kl"], target)


def test_ppo_export_values_signature_matches_live_head_and_train_step_runs(ppo_run, tmp_path):
    trainer, _ = ppo_run
    agent = trainer.agent
    path = trainer.export(str(tmp_path / "ppo"))
    loaded = tf.saved_model.load(path)
    ids, mask = agent.encode_prompts(["the movie was", "my day"])
    live = agent.values(tf.constant(ids), tf.constant(mask)).numpy()
    exported = loaded.signatures["values"](input_ids=tf.constant(ids), attention_mask=tf.constant(mask))["values"]
    assert np.abs(live).max() > 1e-3  # the trained head predicts something
    np.testing.assert_allclose(exported.numpy(), live, atol=1e-5)
    greedy = agent.generate(ids, mask, max_new_tokens=6, greedy=True).completion_ids.numpy()
    np.testing.assert_array_equal(loaded.generate(tf.constant(ids), tf.constant(mask))["sequences"].numpy(), greedy)
    # the loaded train_step runs one PPO update and changes the loaded value head
    head_before = loaded.value_head.variables[0].numpy().copy()
    zeros = tf.zeros(greedy.shape, tf.float32)
    out = loaded.train_step(tf.constant(ids), tf.constant(mask), tf.constant(greedy), tf.ones_like(greedy),
                            zeros, zeros, zeros + 1.0, zeros + 1.0)
    assert np.isfinite(float(out["loss"]))
    assert not np.allclose(loaded.value_head.variables[0].numpy(), head_before)


def test_a2c_improves_the_reward_with_one_update_per_rollout(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = A2CTrainer(agent, toy_env(tokenizer), A2CConfig(learning_rate=3e-2, num_samples_per_prompt=8,
                                                              kl_coef=0.02, whiten_advantages=True))
    before = [w.copy() for w in agent.model.get_weights()]
    head_before = [w.copy() for w in agent.value_head.get_weights()]
    trainer.train(40, progress=False)
    assert all(h["gradient_steps"] == 1 and h["clip_fraction"] == 0.0 for h in trainer.history)
    assert any(not np.allclose(a, b) for a, b in zip(before, agent.model.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(head_before, agent.value_head.get_weights()))
    assert [f.experimental_get_tracing_count() for f in trainer._update_fns.values()] == [1]
    first = np.mean([h["reward_mean"] for h in trainer.history[:5]])
    last = np.mean([h["reward_mean"] for h in trainer.history[-5:]])
    assert first < 0.05 and last > 0.3, (first, last)


# --------------------------------------------------------------------------- value head
def test_value_head_save_load_round_trip(tokenizer, tmp_path):
    from transformers import TFAutoModelForCausalLM

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    head = agent.attach_value_head(ValueHead(kernel_initializer="glorot_uniform"))
    ids, mask = agent.encode_prompts(["the movie was", "our dinner was really"])
    values = agent.values(tf.constant(ids), tf.constant(mask)).numpy()
    assert values.shape == ids.shape and np.abs(values).max() > 0
    agent.save_pretrained(str(tmp_path))
    restored = RLAgent(TFAutoModelForCausalLM.from_pretrained(str(tmp_path)), tokenizer)
    restored.load_value_head(str(tmp_path))
    np.testing.assert_allclose(restored.values(tf.constant(ids), tf.constant(mask)).numpy(), values, atol=1e-5)
    assert restored.value_head.get_config()["dropout"] == head.get_config()["dropout"]
    with pytest.raises(FileNotFoundError, match="no value head"):
        ValueHead.load(str(tmp_path / "missing"))


def test_values_without_a_head_and_bad_dropout_raise_clear_errors(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    with pytest.raises(ValueError, match="no value head"):
        agent.values(tf.constant([[5, 6]]), tf.constant([[1, 1]]))
    with pytest.raises(ValueError, match="dropout must be in"):
        ValueHead(dropout=1.5)
