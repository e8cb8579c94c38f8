"""REINFORCE: hand-computed losses for every baseline, KL, a reward that rises, error paths."""
import numpy as np
import pytest

from conftest import make_tiny_model
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf
from tf_rl_text.rewards import TokenFrequencyReward
from tf_rl_text.trainers.reinforce import compute_baseline, reinforce_advantages, reinforce_loss

# 2 prompts x 2 samples = 4 sequences of 3 tokens; the 4th sequence ended after 2 tokens.
LOGP = np.array([[-1.0, -2.0, -0.5],
                 [-0.2, -0.3, -0.4],
                 [-1.5, -1.0, -2.0],
                 [-0.7, -0.1, -9.0]], np.float32)
MASK = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 0]], np.float32)
REWARDS = np.array([1.0, 0.0, 2.0, 4.0], np.float32)
ROW_LOGP = [-3.5, -0.9, -4.5, -0.8]  # masked per-sequence sums of LOGP, by hand


def loss_for(baseline_values, rewards=REWARDS):
    adv = reinforce_advantages(tf.constant(rewards), tf.constant(baseline_values, tf.float32), tf.constant(MASK))
    loss, _ = reinforce_loss(tf.constant(LOGP), tf.constant(MASK), adv)
    return float(loss)


@pytest.mark.parametrize(
    "kind, expected",
    [
        # L = -(1/4) sum_i (R_i - b_i) * ROW_LOGP_i
        ("none", -(1 * -3.5 + 0 * -0.9 + 2 * -4.5 + 4 * -0.8) / 4),                     # b = 0
        ("moving_average", -(0.5 * -3.5 - 0.5 * -0.9 + 1.5 * -4.5 + 3.5 * -0.8) / 4),   # b = 0.5
        ("self_critical", -(0.5 * -3.5 - 0.5 * -0.9 - 1.0 * -4.5 + 1.0 * -0.8) / 4),    # b = greedy R = .5,.5,3,3
        ("rloo", -(1 * -3.5 - 1 * -0.9 - 2 * -4.5 + 2 * -0.8) / 4),                     # b = 0,1,4,2
    ],
)
def test_loss_matches_hand_computed_value_for_each_baseline(kind, expected):
    b = compute_baseline(REWARDS, kind, k=2, moving_average=0.5, greedy_rewards=[0.5, 0.5, 3.0, 3.0])
    assert loss_for(b.numpy()) == pytest.approx(expected, rel=1e-6)


def test_grpo_loss_uses_group_normalised_rewards():
    from tf_rl_text import ops

    a = ops.group_normalized_advantages(tf.constant(REWARDS), 2).numpy()
    s = 0.5 + 1e-4  # both groups: std 0.5 (rewards 1,0 and 2,4 -> std 1; see below)
    np.testing.assert_allclose(a[:2], [0.5 / s, -0.5 / s], rtol=1e-6)
    np.testing.assert_allclose(a[2:], [-1 / (1 + 1e-4), 1 / (1 + 1e-4)], rtol=1e-6)
    expected = -(a[0] * -3.5 + a[1] * -0.9 + a[2] * -4.5 + a[3] * -0.8) / 4
    assert loss_for(np.zeros(4), rewards=a) == pytest.approx(expected, rel=1e-6)


def test_advantages_with_discount_and_kl_shaping_by_hand():
    # one sequence, R = 1, kl = .1 .2 .3, beta = .5, gamma = .9
    # r = [-.05, -.1, 1 - .15]; G2 = .85, G1 = -.1 + .9*.85 = .665, G0 = -.05 + .9*.665 = .5485
    adv = reinforce_advantages(tf.constant([1.0]), tf.constant([0.25]), tf.constant([[1.0, 1.0, 1.0]]),
                               gamma=0.9, kl=tf.constant([[0.1, 0.2, 0.3]]), kl_coef=0.5)
    np.testing.assert_allclose(adv.numpy(), [[0.5485 - 0.25, 0.665 - 0.25, 0.85 - 0.25]], rtol=1e-5)


def test_entropy_bonus_lowers_loss_by_coef_times_mean_entropy():
    ent = tf.constant(np.full((4, 3), 2.0, np.float32))
    adv = tf.zeros((4, 3))
    loss, info = reinforce_loss(tf.constant(LOGP), tf.constant(MASK), adv, ent, entropy_coef=0.1)
    assert float(loss) == pytest.approx(-0.2)
    assert float(info["entropy"]) == pytest.approx(2.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"baseline": "best"}, "baseline must be one of"),
    ({"baseline": "rloo", "num_samples_per_prompt": 1}, "needs num_samples_per_prompt >= 2"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"gamma": 1.5}, "gamma must be in"),
    ({"kl_coef": -1.0}, "kl_coef must be >= 0"),
    ({"max_grad_norm": 0.0}, "max_grad_norm must be > 0"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ReinforceConfig(**kwargs)


TARGET = 264  # " the": a whole-word token that decodes and re-encodes to itself


def toy_env(tokenizer, batch_size=8):
    return TextGenerationEnv(["the movie was", "my day", "our dinner", "i really enjoyed"], tokenizer,
                             TokenFrequencyReward(tokenizer, TARGET), batch_size=batch_size, max_new_tokens=6, seed=0)


def test_reward_rises_on_toy_task_and_parameters_change(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = toy_env(tokenizer, batch_size=4)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-2, baseline="rloo",
                                                           num_samples_per_prompt=4))
    before_weights = [w.copy() for w in agent.model.get_weights()]
    before = trainer.evaluate(greedy=False)
    assert before < 0.1  # a random policy rarely says " the"
    trainer.train(40, progress=False)
    after = np.mean([h["reward_mean"] for h in trainer.history[-5:]])
    assert after > 0.5, f"mean reward only rose from {before:.3f} to {after:.3f}"
    changed = [not np.allclose(a, b) for a, b in zip(before_weights, agent.model.get_weights())]
    assert sum(changed) >= len(changed) - 2  # (position embeddings past the used length may stay)
    assert trainer._update.experimental_get_tracing_count() == 1  # the update never retraced


def test_kl_is_zero_when_policy_equals_reference_and_grows_after_updates(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=1)
    env = TextGenerationEnv(["the movie was", "my day"], tokenizer, lambda c, p, r: [len(x) / 10 for x in c],
                            batch_size=4, max_new_tokens=6)  # a reward every completion earns: updates happen
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-2, kl_coef=0.1, baseline="none"))
    first = trainer.step()
    assert abs(first["kl"]) < 1e-5
    for _ in range(8):
        last = trainer.step()
    assert last["kl"] > 1e-3


@pytest.mark.parametrize("baseline", ["moving_average", "self_critical", "grpo"])
def test_every_baseline_runs_a_step(tokenizer, baseline):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    k = 2 if baseline == "grpo" else 1
    trainer = ReinforceTrainer(agent, toy_env(tokenizer, 2), ReinforceConfig(baseline=baseline, num_samples_per_prompt=k))
    stats = trainer.step()
    assert np.isfinite(stats["loss"]) and stats["update"] == 1


def test_nan_in_loss_stops_with_a_clear_error(tokenizer):
    from tf_rl_text.trainers.guard import NonFiniteUpdateError, check_update

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = ReinforceTrainer(agent, toy_env(tokenizer, 2), ReinforceConfig(baseline="none"))
    r = trainer.env.rollout(agent)
    before = [v.numpy().copy() for v in agent.model.variables]
    out = trainer._update(tf.constant(r.prompt_ids), tf.constant(r.prompt_mask), tf.constant(r.completion_ids),
                          tf.constant(r.completion_mask), tf.constant([np.nan, 1.0]), tf.zeros([2]))
    with pytest.raises(NonFiniteUpdateError, match="REINFORCE step 1 refused: the loss is nan"):
        check_update(out, 1, "REINFORCE")
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, agent.model.variables))  # not applied
