"""GRPO: each loss type and both importance-sampling levels against hand computation, the clip bounds,
the equivalence with REINFORCE's group baseline, clip fractions across iterations, dynamic sampling,
reward weights, chunked updates, exact resume, a rising reward, T5 and an export."""
import math

import numpy as np
import pytest

from conftest import make_tiny_model, make_tiny_t5
from test_resume import assert_same_run, stop_and_resume
from tf_rl_text import GRPOConfig, GRPOTrainer, ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import keras, tf
from tf_rl_text.rewards.composite import CompositeReward
from tf_rl_text.trainers.grpo import (aggregate_token_losses, group_advantages, grpo_token_losses,
                                      truncated_rows)

# two completions of 3 tokens (the second ended after 2); old log-probs 0, so the ratios are exp(LOGP)
RATIOS = np.array([[1.5, 0.5, 1.0], [1.5, 0.5, 1.0]], np.float32)
LOGP = np.log(RATIOS)
MASK = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
ADV = np.array([1.0, -2.0], np.float32)
# epsilon 0.2, epsilon_high 0.28, by hand: l = -min(rho A, clip(rho, 0.8, 1.28) A)
#   row 0 (A = +1): 1.5 -> -min(1.5, 1.28) = -1.28 (high clip); 0.5 -> -min(0.5, 0.8) = -0.5; 1.0 -> -1.0
#   row 1 (A = -2): 1.5 -> -min(-3, -2.56) = 3.0; 0.5 -> -min(-1, -1.6) = 1.6 (low clip); padding -> 0
HAND = np.array([[-1.28, -0.5, -1.0], [3.0, 1.6, 0.0]])


def token_losses(**kwargs):
    losses, parts = grpo_token_losses(tf.constant(LOGP), tf.zeros_like(LOGP), tf.constant(ADV), tf.constant(MASK),
                                      **{"epsilon": 0.2, "epsilon_high": 0.28, **kwargs})
    return losses.numpy(), {k: v.numpy() for k, v in parts.items()}


def test_token_losses_and_clip_indicators_by_hand():
    losses, parts = token_losses()
    np.testing.assert_allclose(losses, HAND, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(parts["high"], [[1, 0, 0], [0, 0, 0]])  # rho > 1.28 with A > 0 only
    np.testing.assert_array_equal(parts["low"], [[0, 0, 0], [0, 1, 0]])   # rho < 0.8 with A < 0 only
    # symmetric clipping (epsilon_high None = epsilon): row 0's first token is clipped at 1.2 instead
    sym, _ = token_losses(epsilon_high=None)
    assert sym[0, 0] == pytest.approx(-1.2) and sym[1, 0] == pytest.approx(3.0)
    # delta caps the unclipped ratio: row 1's first token -min(-2 * min(1.5, 1.4), -2.56) = 2.8
    capped, _ = token_losses(delta=1.4)
    assert capped[1, 0] == pytest.approx(2.8) and capped[0, 0] == pytest.approx(-1.28)


@pytest.mark.parametrize("loss_type, expected", [
    ("grpo", ((-1.28 - 0.5 - 1.0) / 3 + (3.0 + 1.6) / 2) / 2),   # each sequence's token mean, then the batch mean
    ("bnpo", (-2.78 + 4.6) / 5),                                  # one chunk: the token mean of the batch
    ("dr_grpo", (-2.78 + 4.6) / (2 * 4)),                         # B x max_new_tokens (4)
    ("dapo", (-2.78 + 4.6) / 5),                                  # tokens of the whole batch
])
def test_each_loss_type_aggregates_as_stated(loss_type, expected):
    total = aggregate_token_losses(tf.constant(HAND, tf.float32), tf.constant(MASK), loss_type, 2.0,
                                   tf.constant(5.0), 4)
    assert float(total) == pytest.approx(expected, rel=1e-6)


def test_chunk_shares_sum_to_the_batch_loss_except_bnpo_which_averages_per_chunk():
    hand, mask = tf.constant(HAND, tf.float32), tf.constant(MASK)
    for loss_type in ("grpo", "dr_grpo", "dapo"):
        whole = float(aggregate_token_losses(hand, mask, loss_type, 2.0, tf.constant(5.0), 4))
        parts = sum(float(aggregate_token_losses(hand[i:i + 1], mask[i:i + 1], loss_type, 2.0, tf.constant(5.0), 4))
                    for i in range(2))
        assert parts == pytest.approx(whole, rel=1e-6), loss_type
    # bnpo per micro-batch (TRL): each chunk's token mean, weighted by its rows: (-2.78/3 + 4.6/2) / 2
    bnpo = sum(float(aggregate_token_losses(hand[i:i + 1], mask[i:i + 1], "bnpo", 2.0, tf.constant(5.0), 4))
               for i in range(2))
    assert bnpo == pytest.approx((-2.78 / 3 + 4.6 / 2) / 2, rel=1e-6)


def test_sequence_level_ratio_is_the_geometric_mean_of_the_token_ratios():
    losses, parts = token_losses(level="sequence")
    r0, r1 = 0.75 ** (1 / 3), 0.75 ** (1 / 2)  # exp(mean log rho): (1.5 * 0.5 * 1)^(1/3), (1.5 * 0.5)^(1/2)
    np.testing.assert_allclose(losses, [[-r0] * 3, [2 * r1, 2 * r1, 0.0]], rtol=1e-6)  # inside [0.8, 1.28]: no clip
    assert parts["low"].sum() == parts["high"].sum() == 0
    # a sequence ratio below 1 - epsilon with A < 0 clips every token of that row
    _, clipped = token_losses(level="sequence", epsilon=0.1)  # row 1: 0.866 < 0.9
    np.testing.assert_array_equal(clipped["low"], [[0, 0, 0], [1, 1, 0]])


def test_kl_term_is_beta_times_the_k3_estimate():
    ref = np.full_like(LOGP, -0.1)
    losses, parts = token_losses(ref_logp=tf.constant(ref), beta=0.5)
    d = ref - LOGP
    k3 = (np.exp(d) - d - 1) * MASK  # Schulman's k3 by hand
    np.testing.assert_allclose(parts["kl"], k3, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(losses, (HAND + 0.5 * k3) * MASK, rtol=1e-5, atol=1e-6)


def test_group_advantages_for_each_scale_by_hand():
    rewards = [1.0, 0.0, 2.0, 4.0]  # two groups of 2: means 0.5, 3; population stds 0.5, 1
    np.testing.assert_allclose(group_advantages(rewards, 2, "group").numpy(),
                               [0.5 / 0.5001, -0.5 / 0.5001, -1 / 1.0001, 1 / 1.0001], rtol=1e-6)
    batch_std = np.std(rewards)
    np.testing.assert_allclose(group_advantages(rewards, 2, "batch").numpy(),
                               np.array([0.5, -0.5, -1, 1]) / (batch_std + 1e-4), rtol=1e-6)
    np.testing.assert_allclose(group_advantages(rewards, 2, "none").numpy(), [0.5, -0.5, -1, 1])


def test_reward_weights_combine_and_none_is_skipped():
    def f1(c, p, r):
        return [1.0, None, 3.0, None]

    def f2(c, p, r):
        return [0.5, 2.0, None, None]

    combined = CompositeReward([f1, f2], weights=[2.0, -1.0])  # GRPO's weighted reward functions
    out = combined(["a", "b", "c", "d"], ["p"] * 4, [None] * 4)
    np.testing.assert_allclose(out, [2 * 1 - 0.5, -2.0, 6.0, 0.0])  # the last: no function scored it
    assert np.isnan(combined.last["f1"][1]) and combined.last["f2"][0] == 0.5
    with pytest.raises(ValueError, match="got 1 weights for 2 components"):
        CompositeReward([f1, f2], weights=[1.0])
    with pytest.raises(ValueError, match="'f1' returned 4 values for 3 completions"):
        combined(["a", "b", "c"])


def test_truncated_rows_are_those_at_the_budget_without_an_end_token():
    ids = np.array([[5, 0, 9], [5, 6, 7], [5, 6, 0], [5, 9, 9]])
    mask = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 1]])
    # 0 is EOS, 9 a stop token: row 0 ended early, row 1 was cut, row 2 ended on EOS, row 3 on the stop token
    np.testing.assert_array_equal(truncated_rows(ids, mask, 3, [0, 9]), [False, True, False, False])


@pytest.mark.parametrize("kwargs, match", [
    ({"num_generations": 1}, "num_generations"),
    ({"loss_type": "ppo"}, "loss_type"),
    ({"scale_rewards": "prompt"}, "scale_rewards"),
    ({"delta": 1.1}, "delta"),
    ({"importance_sampling_level": "word"}, "importance_sampling_level"),
    ({"num_iterations": 0}, "num_iterations"),
    ({"reward_weights": [1.0, float("nan")]}, "reward_weights"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GRPOConfig(**kwargs)


def test_config_takes_trl_booleans_for_scale_rewards():
    assert GRPOConfig(scale_rewards=True).scale_rewards == "group"
    assert GRPOConfig(scale_rewards=False).scale_rewards == "none"


# --------------------------------------------------------------------------- through the trainer
PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed"]


def length_reward(completions, prompts, references):
    return [len(c) / 10 for c in completions]


def env_for(tokenizer, reward=length_reward, **kwargs):
    return TextGenerationEnv(PROMPTS, tokenizer, reward, batch_size=2, max_new_tokens=6, seed=0, **kwargs)


def grpo(tokenizer, reward=length_reward, seed=2, **config):
    agent = RLAgent(make_tiny_model(tokenizer, seed=seed), tokenizer, seed=0)
    config = {"num_generations": 3, "learning_rate": 1e-2, **config}
    return GRPOTrainer(agent, env_for(tokenizer, reward), GRPOConfig(**config))


def weights(trainer):
    return [v.numpy() for v in trainer.agent.trainable_variables]


def use_sgd(trainer, lr):
    """Plain SGD instead of Adam, so that a gradient scaled by c with the learning rate scaled by 1/c gives
    the same step (Adam's step would hide the scale)."""
    trainer.optimizer = keras.optimizers.SGD(learning_rate=lr)
    trainer.optimizer.build(trainer.agent.trainable_variables)


def test_one_iteration_without_kl_is_reinforce_with_the_group_baseline(tokenizer):
    """With rho = 1 the clipped loss's gradient is -A_i grad log pi; dr_grpo divides REINFORCE's
    -(1/B) sum_i A_i sum_t log pi by max_new_tokens (6): SGD at 6x the rate makes the same step."""
    base = RLAgent(make_tiny_model(tokenizer, seed=2), tokenizer, seed=0)
    reinforce = ReinforceTrainer(base, env_for(tokenizer), ReinforceConfig(
        baseline="grpo", num_samples_per_prompt=3, max_grad_norm=None, log_entropy=False))
    use_sgd(reinforce, 0.1)
    before = weights(reinforce)
    reinforce.step()
    ref_after = weights(reinforce)
    for loss_type, equal in (("dr_grpo", True), ("grpo", False)):
        trainer = grpo(tokenizer, loss_type=loss_type, max_grad_norm=None)
        use_sgd(trainer, 0.1 * 6)
        trainer.step()
        moved = max(float(np.abs(a - b).max()) for a, b in zip(ref_after, before))
        gap = max(float(np.abs(a - b).max()) for a, b in zip(weights(trainer), ref_after))
        assert moved > 1e-3  # the step moved the weights: the comparison can fail
        if equal:
            assert gap < 1e-5 * max(1.0, moved) + 1e-7, (loss_type, gap, moved)
        else:  # per-sequence length normalisation: another update whenever lengths differ
            assert gap > 1e-4, (loss_type, gap)
    assert trainer.history[-1]["clip_ratio/region_mean"] == 0.0


def test_clip_fractions_are_zero_in_the_first_iteration_and_rise_after(tokenizer):
    trainer = grpo(tokenizer, num_iterations=4, learning_rate=5e-2, epsilon=0.05)
    stats = trainer.step()
    first, rest = trainer.iteration_stats[0], trainer.iteration_stats[1:]
    assert len(trainer.iteration_stats) == 4 and stats["gradient_steps"] == 4 and trainer.num_updates == 4
    assert first["clip_ratio/region_mean"] == 0.0
    assert max(s["clip_ratio/region_mean"] for s in rest) > 0.05
    for s in trainer.iteration_stats:  # region = low + high
        assert s["clip_ratio/region_mean"] == pytest.approx(s["clip_ratio/low_mean"] + s["clip_ratio/high_mean"])
    assert stats["clip_ratio/region_mean"] == pytest.approx(np.mean([s["clip_ratio/region_mean"]
                                                                      for s in trainer.iteration_stats]))


def prompt_constant_reward(completions, prompts, references):
    """Every completion of "my day" earns 1 (a zero-std group); the others earn their length."""
    return [1.0 if p == "my day" else len(c) / 10 for c, p in zip(completions, prompts)]


def test_dynamic_sampling_drops_exactly_the_zero_variance_groups(tokenizer):
    trainer = grpo(tokenizer, reward=prompt_constant_reward, dynamic_sampling=True)
    fed, accumulate = [], trainer.accumulate
    trainer.accumulate = lambda fn, batch, variables, k=None: fed.append(batch) or accumulate(fn, batch, variables, k)
    seen = []
    for _ in range(4):  # batches of 2 prompts: some hold "my day", some do not
        stats = trainer.step()
        prompts = trainer.env.batch_prompts
        constant = [p == "my day" for p in prompts[::3]]
        seen.append(any(constant))
        assert stats["frac_reward_zero_std"] == pytest.approx(np.mean(constant))
        kept_completions = [c for c, p in zip(trainer.env.completions, prompts) if p != "my day"]
        batch = fed[-1]
        assert int(batch[0].shape[0]) == len(kept_completions) == 3 * (2 - sum(constant))
        texts = trainer.agent.decode_completions(batch[2].numpy(), batch[3].numpy())
        assert texts == kept_completions
    assert any(seen) and not all(seen)  # both kinds of batch were checked


def test_a_batch_of_only_constant_groups_skips_the_update(tokenizer):
    trainer = grpo(tokenizer, reward=lambda c, p, r: [1.0] * len(c), dynamic_sampling=True)
    before = weights(trainer)
    stats = trainer.step()
    assert stats["frac_reward_zero_std"] == 1.0 and stats["gradient_steps"] == 0 and math.isnan(stats["loss"])
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(trainer)))


def test_reward_functions_and_weights_through_the_trainer(tokenizer):
    def short(completions, prompts, references):
        return [1.0 if len(c) < 12 else None for c in completions]

    agent = RLAgent(make_tiny_model(tokenizer, seed=2), tokenizer, seed=0)
    trainer = GRPOTrainer(agent, env_for(tokenizer), GRPOConfig(num_generations=3, reward_weights=[1.0, 0.5]),
                          reward_funcs=[length_reward, short])
    stats = trainer.step()
    length, flags = trainer.rewards.last["length_reward"], trainer.rewards.last["short"]
    np.testing.assert_allclose(trainer.env.last_rewards, length + 0.5 * np.nan_to_num(flags), rtol=1e-6)
    assert stats["reward"] == pytest.approx(float(np.mean(length + 0.5 * np.nan_to_num(flags))), rel=1e-6)
    assert stats["rewards/length_reward/mean"] == pytest.approx(float(length.mean()), rel=1e-6)
    assert stats["rewards/short/mean"] == (1.0 if (~np.isnan(flags)).any() else stats["rewards/short/mean"])
    assert trainer.env.reward_fn is length_reward  # the env's own reward is back after the rollout


def test_accumulated_chunks_make_the_same_update(tokenizer):
    for loss_type in ("dapo", "grpo"):
        a = grpo(tokenizer, loss_type=loss_type, num_iterations=2, beta=0.1)
        b = grpo(tokenizer, loss_type=loss_type, num_iterations=2, beta=0.1, grad_accumulation_steps=4)
        sa, sb = a.step(), b.step()
        for x, y in zip(weights(a), weights(b)):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=2e-6)
        for key in ("loss", "kl", "entropy", "clip_ratio/region_mean"):
            assert sa[key] == pytest.approx(sb[key], rel=1e-4, abs=1e-6), (loss_type, key)
        assert sa["kl"] > 0  # the second iteration moved away from the reference


def test_grpo_resumes_exactly_between_generation_batches(tokenizer, tmp_path):
    def build(run_dir):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        config = GRPOConfig(num_generations=2, num_iterations=3, beta=0.1, learning_rate=1e-2, loss_type="grpo")
        from test_resume import make_env

        return GRPOTrainer(agent, make_env(tokenizer), config, run_dir=run_dir, checkpoint_every=2)

    straight, resumed = stop_and_resume(build, tmp_path, 2, 4)
    assert_same_run(straight, resumed)
    assert resumed.num_updates == straight.num_updates == 4 * 3
    assert straight.history[0]["loss"] != straight.history[2]["loss"]


def test_reward_rises_on_a_toy_task(tokenizer):
    from test_reinforce import toy_env  # reward: the share of " the" in 6 tokens

    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    trainer = GRPOTrainer(agent, toy_env(tokenizer, batch_size=4), GRPOConfig(num_generations=4, num_iterations=2, learning_rate=3e-2))
    before = trainer.evaluate(greedy=False)
    assert before < 0.1
    trainer.train(30, progress=False)
    after = np.mean([h["reward"] for h in trainer.history[-5:]])
    assert after > 0.5, f"mean reward only rose from {before:.3f} to {after:.3f}"
    assert trainer._grads.experimental_get_tracing_count() <= 2  # one trace per completion width, no more


def test_t5_trains_and_the_export_serves_and_trains(tokenizer, tmp_path):
    import tf_rl_text

    agent = RLAgent(make_tiny_t5(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=5, seed=0,
                            agent=agent)
    trainer = GRPOTrainer(agent, env, GRPOConfig(num_generations=2, num_iterations=2, beta=0.05,
                                                 mask_truncated_completions=True, learning_rate=1e-2))
    before = weights(trainer)
    stats = trainer.step()
    assert np.isfinite(stats["loss"]) and 0.0 <= stats["completions/clipped_ratio"] <= 1.0
    assert any(not np.allclose(a, b) for a, b in zip(before, weights(trainer)))
    path = trainer.export(str(tmp_path / "grpo_t5"))
    policy = tf_rl_text.load(path)
    assert policy.generate(PROMPTS) == agent.generate_text(PROMPTS, max_new_tokens=5, greedy=True)
    ids, mask = agent.encode_prompts(PROMPTS[:2])
    gen = agent.generate(ids, mask, max_new_tokens=5)
    out = policy.module.signatures["train_step"](
        input_ids=tf.constant(ids), attention_mask=tf.constant(mask), completion_ids=gen.completion_ids,
        completion_mask=gen.completion_mask, advantages=tf.constant([1.0, -1.0]))
    assert np.isfinite(float(out["loss"]))


def test_the_shipped_config_takes_reward_weights_as_a_list():
    import os

    from tf_rl_text import configfile

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "grpo.yaml")
    cfg = configfile.load_config(path, sets=["trainer.reward_weights=[2, 0.5]"], quick=True)
    assert isinstance(cfg.trainer, GRPOConfig) and cfg.trainer.reward_weights == [2.0, 0.5]
    assert cfg.trainer.num_iterations == 2 and cfg.trainer.beta == 0.04 and cfg.run.steps == 30
    with pytest.raises(configfile.ConfigError, match=r"trainer.reward_weights must be a list, e.g. \[2.0\]"):
        configfile.load_config(path, sets=["trainer.reward_weights=2.0"])
    with pytest.raises(configfile.ConfigError, match=r"trainer.reward_weights\[1\] must be a number, got 'x'"):
        configfile.load_config(path, sets=["trainer.reward_weights=[1, x]"])


def test_explain_gives_each_token_its_completions_group_advantage(tokenizer):
    from tf_rl_text.explain import explain

    trainer = grpo(tokenizer, beta=0.1)
    rows = explain(trainer)  # what the next step draws, with the trainer's state put back afterwards
    rewards = np.array([r.reward for r in rows])
    groups = rewards.reshape(-1, 3)
    want = ((groups - groups.mean(1, keepdims=True)) / (groups.std(1, keepdims=True) + 1e-4)).reshape(-1)
    assert np.abs(want).max() > 0.5
    for row, a in zip(rows, want):
        np.testing.assert_allclose(row.quantities["advantage"], np.full(len(row.tokens), a), rtol=1e-5, atol=1e-6)
        assert np.allclose(row.quantities["kl"], 0.0, atol=1e-6)  # k3 of a policy that is still its reference
    stats = trainer.step()  # the same batch: explain left the env and the sampling RNG where they were
    assert trainer.env.completions == [r.completion for r in rows]
    assert stats["reward"] == pytest.approx(float(rewards.mean()), rel=1e-6)
    with pytest.raises(ValueError, match="num_generations=3 samples of a prompt"):
        explain(trainer, num_samples=2)


def test_lora_grpo_trains_only_the_adapters_against_the_adapters_off_reference(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    agent.attach_lora(rank=4)
    base = [w.copy() for w in agent.model.get_weights()]
    trainer = GRPOTrainer(agent, env_for(tokenizer), GRPOConfig(num_generations=3, num_iterations=2, beta=0.1,
                                                               learning_rate=2e-2))
    assert type(trainer.ref_model).__name__ == "AdaptersOff"  # no second copy of the weights
    adapters = [v.numpy().copy() for v in agent.trainable_variables]
    for _ in range(3):
        stats = trainer.step()
    assert all(np.array_equal(a, b) for a, b in zip(base, agent.model.get_weights()))  # the base is bit-equal
    assert any(not np.allclose(a, v.numpy()) for a, v in zip(adapters, agent.trainable_variables))
    assert stats["kl"] > 0  # the adapters moved the policy away from the adapters-off reference
