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
    # the update never retraced (the update runner's graph and the gradient function inside it)
    assert [f.experimental_get_tracing_count() for f in trainer._update_fns.values()] == [1]
    assert trainer._batch_grads.experimental_get_tracing_count() == 1


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


# --------------------------------------------------------------------------- baselines through the trainer
PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed"]


def length_reward(completions, prompts, references):
    return [len(c) / 10 for c in completions]  # differs between samples and from the greedy completion


def recording_trainer(tokenizer, **config):
    """A REINFORCE trainer whose env records every sampled rollout with the log-probs of its completions
    under the policy that sampled them (before the update), for checking what the update was fed."""
    agent = RLAgent(make_tiny_model(tokenizer, seed=2), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=6, seed=0)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, **config))
    trainer.recorded, rollout = [], env.rollout

    def recording_rollout(agent_, num_samples=1, greedy=False, seed=None, prompts=None, references=None):
        out = rollout(agent_, num_samples=num_samples, greedy=greedy, seed=seed, prompts=prompts, references=references)
        if not greedy:
            logp = agent.log_probs(out.prompt_ids, out.prompt_mask, out.completion_ids, out.completion_mask).numpy()
            greedy_prompts = out.prompts[::num_samples]  # the greedy decode of each prompt, by the unwrapped env
            greedy_rewards = rollout(agent, greedy=True, prompts=greedy_prompts).rewards
            trainer.recorded.append((out, logp, np.repeat(greedy_rewards, num_samples)))
        return out

    env.rollout = recording_rollout
    return trainer


def expected_update_stats(rollout, logp, advantages):
    """advantage_mean and policy_loss of an update fed per-sequence advantages A_i (gamma 1, no KL):
    A_it = A_i on every completion token; policy loss -(1/B) sum_i A_i sum_t log pi(a_it | s_it)."""
    lengths = rollout.completion_mask.sum(axis=1)
    advantages = np.asarray(advantages, np.float64)
    return {"advantage_mean": float((advantages * lengths).sum() / lengths.sum()),
            "policy_loss": float(-np.mean(advantages * logp.sum(axis=1)))}


def assert_update_was_fed(stats, rollout, logp, advantages):
    want = expected_update_stats(rollout, logp, advantages)
    assert stats["advantage_mean"] == pytest.approx(want["advantage_mean"], rel=1e-4, abs=1e-6)
    assert stats["policy_loss"] == pytest.approx(want["policy_loss"], rel=1e-4, abs=1e-6)


def test_grpo_trainer_feeds_the_update_group_normalised_rewards(tokenizer):
    trainer = recording_trainer(tokenizer, baseline="grpo", num_samples_per_prompt=3)
    stats = trainer.step()
    rollout, logp, _ = trainer.recorded[0]
    groups = rollout.rewards.astype(np.float64).reshape(2, 3)  # 2 prompts x 3 samples, by hand:
    advantages = ((groups - groups.mean(1, keepdims=True)) / (groups.std(1, keepdims=True) + 1e-4)).reshape(-1)
    assert np.abs(advantages).max() > 0.5  # the samples' rewards differ within a group
    assert_update_was_fed(stats, rollout, logp, advantages)
    # raw rewards fed instead would give a clearly different update
    assert abs(expected_update_stats(rollout, logp, rollout.rewards)["advantage_mean"] - stats["advantage_mean"]) > 0.1


def test_self_critical_trainer_subtracts_the_greedy_reward_of_each_prompt(tokenizer):
    trainer = recording_trainer(tokenizer, baseline="self_critical", num_samples_per_prompt=2)
    stats = trainer.step()
    rollout, logp, greedy = trainer.recorded[0]
    assert rollout.prompts[0] == rollout.prompts[1] != rollout.prompts[2] == rollout.prompts[3]
    assert greedy[0] != greedy[2]  # the two prompts' greedy rewards differ: the baseline is per prompt
    assert_update_was_fed(stats, rollout, logp, rollout.rewards - greedy)


def test_moving_average_trainer_baseline_with_its_decay_by_hand(tokenizer):
    decay = 0.5  # not the default 0.9
    trainer = recording_trainer(tokenizer, baseline="moving_average", baseline_decay=decay, num_samples_per_prompt=2)
    average = None
    for step in range(3):
        stats = trainer.step()
        rollout, logp, _ = trainer.recorded[step]
        batch_mean = float(np.mean(rollout.rewards))
        baseline = batch_mean if average is None else average  # the first batch starts the average
        assert_update_was_fed(stats, rollout, logp, rollout.rewards - baseline)
        average = decay * baseline + (1 - decay) * batch_mean  # then it moves toward each batch's mean
        assert trainer.moving_average == pytest.approx(average, rel=1e-6)
    assert len({float(np.mean(r.rewards)) for r, _, _ in trainer.recorded}) == 3  # the batch means differ


def test_nan_in_loss_stops_with_a_clear_error(tokenizer):
    from tf_rl_text.trainers.guard import NonFiniteUpdateError, check_update

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = ReinforceTrainer(agent, toy_env(tokenizer, 2), ReinforceConfig(baseline="none"))
    r = trainer.env.rollout(agent)
    before = [v.numpy().copy() for v in agent.model.variables]
    out = trainer.accumulate(trainer._batch_grads, [
        tf.constant(r.prompt_ids), tf.constant(r.prompt_mask), tf.constant(r.completion_ids),
        tf.constant(r.completion_mask), tf.constant([np.nan, 1.0]), tf.zeros([2])], agent.trainable_variables, 1)
    with pytest.raises(NonFiniteUpdateError, match="REINFORCE step 1 refused: the loss is nan"):
        check_update(out, 1, "REINFORCE")
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, agent.model.variables))  # not applied


def test_mixed_objective_adds_lambda_times_reference_nll_and_alone_fits_the_references(tokenizer):
    """mle_coef: with a constant reward (rloo advantages exactly 0) the update is lambda * the reference token NLL,
    equal to the NLL computed by hand before the step; that term alone lowers the NLL, and without it nothing moves."""
    from conftest import make_tiny_t5
    from tf_rl_text.trainers.mle import encode_texts

    prompts, refs = ["a dog runs", "the cat sleeps"], ["ein Hund rennt", "die Katze schläft"]

    def nll(agent):
        ids, mask = agent.encode_prompts(prompts)
        r_ids, r_mask = encode_texts(tokenizer, refs, 6)
        logp = agent.log_probs(tf.constant(ids), tf.constant(mask), tf.constant(r_ids), tf.constant(r_mask))
        return float(-tf.reduce_sum(logp * r_mask) / r_mask.sum())

    def trainer_for(mle_coef):
        agent = RLAgent(make_tiny_t5(tokenizer), tokenizer, seed=0)
        env = TextGenerationEnv(prompts, tokenizer, lambda c, p, r: [1.0] * len(c), references=refs, batch_size=2,
                                max_new_tokens=6, seed=0, agent=agent)
        config = ReinforceConfig(baseline="rloo", num_samples_per_prompt=2, learning_rate=1e-2, mle_coef=mle_coef)
        return agent, ReinforceTrainer(agent, env, config)

    agent, trainer = trainer_for(0.5)
    before = nll(agent)
    stats = trainer.step()
    assert stats["policy_loss"] == 0.0 and stats["mle_loss"] == pytest.approx(before, rel=1e-4)
    assert stats["loss"] == pytest.approx(0.5 * before, rel=1e-4)
    for _ in range(14):
        trainer.step()
    assert nll(agent) < 0.7 * before  # e.g. 6.9 -> ~3 nats per token

    agent, trainer = trainer_for(0.0)
    weights = [w.copy() for w in agent.model.get_weights()]
    stats = trainer.step()
    assert stats["mle_loss"] == 0.0 and stats["loss"] == 0.0
    assert all(np.array_equal(a, b) for a, b in zip(weights, agent.model.get_weights()))
    with pytest.raises(ValueError, match=r"mle_coef must be >= 0, got -1"):
        ReinforceConfig(mle_coef=-1)


def test_mixed_objective_in_accumulated_chunks_makes_the_same_update(tokenizer):
    """mle_coef with grad_accumulation_steps=3: 4 completions (2 prompts x 2 samples) in chunks of 2, 1, 1 rows,
    the last chunk holding no prompt's first sample (no reference rows at all); the summed chunks give the same
    losses, MLE term and weights as the unsplit update, with a live policy term (rewards differ per sample)."""
    from conftest import make_tiny_t5
    from tf_rl_text._compat import keras

    prompts, refs = ["a dog runs", "the cat sleeps"], ["ein Hund rennt", "die Katze schläft"]

    def run(k):
        agent = RLAgent(make_tiny_t5(tokenizer), tokenizer, seed=0)
        env = TextGenerationEnv(prompts, tokenizer, lambda c, p, r: [len(x) / 10.0 for x in c], references=refs,
                                batch_size=2, max_new_tokens=6, seed=0, agent=agent)
        trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="rloo", num_samples_per_prompt=2, mle_coef=0.5,
                                                               grad_accumulation_steps=k, max_grad_norm=None))
        trainer.optimizer = keras.optimizers.SGD(learning_rate=0.1)  # the gradient itself shows in the weights
        return agent, [trainer.step() for _ in range(2)]

    (a, whole), (b, split) = run(1), run(3)
    for x, y in zip(whole, split):
        for key in ("loss", "policy_loss", "mle_loss", "grad_norm"):
            assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-5), key
    assert whole[0]["mle_loss"] > 1.0 and abs(whole[0]["policy_loss"]) > 1e-4 and whole[1]["grad_norm"] > 0
    for x, y in zip(a.model.weights, b.model.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5)


def test_mixed_objective_refuses_a_distribution_strategy(tokenizer):
    from conftest import make_tiny_t5

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        agent = RLAgent(make_tiny_t5(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(["a dog"], tokenizer, lambda c, p, r: [1.0] * len(c), references=["ein Hund"],
                            batch_size=1, max_new_tokens=4, seed=0, agent=agent)
    with pytest.raises(ValueError, match=r"mle_coef=0.5 \(the mixed objective\) does not support a distribution "
                                         r"strategy yet"):
        ReinforceTrainer(agent, env, ReinforceConfig(baseline="rloo", num_samples_per_prompt=2, mle_coef=0.5),
                         strategy=strategy)
