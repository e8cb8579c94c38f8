"""LoRA adapters: only they train, the KL reference is the model with them off, the merged export
equals the live adapted model, and adapters save/load alone."""
import os

import numpy as np
import pytest

from conftest import make_tiny_mistral, make_tiny_model, make_tiny_t5
from tf_rl_text import PPOConfig, PPOTrainer, ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf
from tf_rl_text.lora import AdaptersOff, adapters_off

PROMPTS = ["the movie was", "i really enjoyed the long", "my day"]
GPT2_TARGETS = ["c_attn", "c_proj", "c_fc"]  # the fused attention and both MLP projections


def length_reward(completions, prompts, references):
    return [len(c) / 10 for c in completions]


@pytest.fixture(scope="module")
def trained(tokenizer):
    """REINFORCE with a KL leash on a LoRA GPT-2 for 3 steps: (agent, trainer, base weights, history)."""
    model = make_tiny_model(tokenizer)
    agent = RLAgent(model, tokenizer, seed=0)
    lora = agent.attach_lora(rank=4, alpha=8, targets=GPT2_TARGETS)
    assert len(lora.paths) == 4 and not model.trainable_variables  # c_attn, attn c_proj, c_fc, mlp c_proj; base frozen
    base = [w.copy() for w in model.get_weights()]
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=3, max_new_tokens=6)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(num_samples_per_prompt=2, kl_coef=0.1, learning_rate=3e-2))
    history = [trainer.step() for _ in range(3)]
    return agent, trainer, base, history


def test_only_adapters_train_and_the_reference_is_the_model_with_them_off(trained):
    agent, trainer, base, history = trained
    assert history[0]["kl"] == 0.0  # B = 0: the adapted model starts as the base
    assert abs(history[2]["kl"]) > 1e-3  # the policy moved away from the reference (a sampled estimate: any sign)
    for before, after in zip(base, agent.model.get_weights()):
        np.testing.assert_array_equal(before, after)  # the base weights never changed
    assert all(np.abs(b.numpy()).max() > 0 for b in agent.lora.b)  # every adapter learned
    ref = trainer.ref_model
    assert isinstance(ref, AdaptersOff) and ref.model is agent.model  # no second copy of the weights
    ids, mask = agent.encode_prompts(PROMPTS)
    gen = agent.generate(ids, mask, 6, greedy=True)
    args = (ids, mask, gen.completion_ids, gen.completion_mask)
    with adapters_off():
        base_lp = agent.log_probs(*args).numpy()
    np.testing.assert_allclose(agent.log_probs(*args, model=ref).numpy(), base_lp, atol=1e-6)
    assert np.abs(agent.log_probs(*args).numpy() - base_lp).max() > 1e-3


def test_merged_export_gives_the_live_adapted_models_tokens_and_log_probs(trained, tmp_path):
    agent, trainer, base, _ = trained
    ids, mask = agent.encode_prompts(PROMPTS)
    live = agent.generate(ids, mask, 6, greedy=True)
    live_lp = agent.log_probs(ids, mask, live.completion_ids, live.completion_mask).numpy()
    path = trainer.export(str(tmp_path / "merged"))
    loaded = tf.saved_model.load(path)
    assert "train_step" not in loaded.signatures  # it would train adapters the plain model does not have
    assert len(loaded.model_variables) == len(agent.model.variables)  # the plain model: no adapter variables
    out = loaded.generate(tf.constant(ids), tf.constant(mask))["sequences"].numpy()
    np.testing.assert_array_equal(out, live.completion_ids.numpy())
    lp = loaded.log_probs(tf.constant(ids), tf.constant(mask), live.completion_ids, live.completion_mask)
    np.testing.assert_allclose(lp["log_probs"].numpy(), live_lp, atol=1e-5)
    for before, after in zip(base, agent.model.get_weights()):  # the live model is unmerged again
        np.testing.assert_array_equal(before, after)
    again = agent.generate(ids, mask, 6, greedy=True).completion_ids.numpy()
    np.testing.assert_array_equal(again, live.completion_ids.numpy())


def test_adapters_save_and_load_alone(trained, tokenizer, tmp_path):
    agent, _, _, _ = trained
    path = agent.lora.save(str(tmp_path / "adapters.npz"))
    model_bytes = sum(w.nbytes for w in agent.model.get_weights())
    assert os.path.getsize(path) < 0.2 * model_bytes
    fresh = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)  # the same base weights (seed 0)
    fresh.load_lora(path)
    ids, mask = agent.encode_prompts(PROMPTS)
    gen = agent.generate(ids, mask, 6, greedy=True)
    args = (ids, mask, gen.completion_ids, gen.completion_mask)
    np.testing.assert_allclose(fresh.log_probs(*args).numpy(), agent.log_probs(*args).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        fresh.attach_lora()
    with pytest.raises(ValueError, match="no projection of TFGPT2LMHeadModel matches targets"):
        RLAgent(make_tiny_model(tokenizer), tokenizer).attach_lora(targets=["q_proj"])


def test_dense_adapters_merge_exactly_on_t5(tokenizer):
    agent = RLAgent(make_tiny_t5(tokenizer), tokenizer, seed=0)
    lora = agent.attach_lora(rank=2)  # T5's default targets: q and v, in encoder and decoder
    # q and v of the encoder self-attention, the decoder self-attention and the cross-attention
    assert len(lora.paths) == 6 and all(p.split("/")[-1] in ("q", "v") for p in lora.paths)
    for i, b in enumerate(lora.b):
        b.assign(tf.random.stateless_normal(b.shape, [1, i]))
    ids, mask = agent.encode_prompts(PROMPTS[:2])
    target = tf.constant([[5, 6, 7], [8, 9, 10]])
    adapted = agent.log_probs(ids, mask, target, tf.ones_like(target)).numpy()
    with adapters_off():
        plain = agent.log_probs(ids, mask, target, tf.ones_like(target)).numpy()
    with lora.merged():
        merged = agent.log_probs(ids, mask, target, tf.ones_like(target)).numpy()
    assert np.abs(adapted - plain).max() > 1e-3
    np.testing.assert_allclose(merged, adapted, atol=1e-5)


def test_ppo_trains_only_adapters_and_the_value_head_on_mistral(tokenizer):
    model = make_tiny_mistral(tokenizer, layers=1)
    agent = RLAgent(model, tokenizer, seed=0)
    lora = agent.attach_lora(rank=4, targets=["q_proj", "v_proj", "down_proj"])
    base = [w.copy() for w in model.get_weights()]
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=3, max_new_tokens=4)
    trainer = PPOTrainer(agent, env, PPOConfig(num_samples_per_prompt=2, kl_coef=0.1, learning_rate=1e-2,
                                               num_epochs=2, num_minibatches=1))
    head = [w.copy() for w in agent.value_head.get_weights()]
    first = trainer.step()
    assert abs(first["kl"]) < 1e-6
    for before, after in zip(base, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert all(np.abs(b.numpy()).max() > 0 for b in lora.b)
    assert any(not np.allclose(a, b) for a, b in zip(head, agent.value_head.get_weights()))
