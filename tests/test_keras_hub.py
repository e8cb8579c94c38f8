"""KerasHub (Keras 3) causal LMs as policies: a tiny GPT-2 and a tiny Llama built from fields (1 layer, width 32).

Log-probs by hand against KerasHub's own ``score()``, left padding and the KV cache changing nothing, rewards
that rise (REINFORCE, GRPO, PPO, A2C, online DPO), a toy preference learned (DPO), Q-learning steps, exports that generate the
live model's tokens in plain TensorFlow, the way back to KerasHub (``from_preset``), KerasHub's LoRA leaving
the base weights bit-equal, exact resume, a Hugging Face GPT-2 checkpoint converted by KerasHub, the
``tf-rl-text train`` command for every algorithm family, and the errors a user meets."""
import json
import os
import sys

import numpy as np
import pytest
import yaml

keras_hub = pytest.importorskip("keras_hub")  # the [keras-hub] extra (Python 3.11+)

from conftest import make_tiny_model  # noqa: E402
from tf_rl_text import (DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, PPOConfig, PPOTrainer,  # noqa: E402
                        QLearningConfig, QLearningTrainer, ReinforceConfig, ReinforceTrainer, RLAgent, kerashub, ops)
from tf_rl_text._compat import tf  # noqa: E402

ARCHS = ["gpt2", "llama"]
PROMPTS = ["the movie was", "my day", "our dinner", "i really enjoyed"]


def tiny(tokenizer, arch, seed=0):
    return kerashub.build(arch, len(tokenizer), num_layers=1, hidden_size=32, num_heads=2, seed=seed)


def tiny_agent(tokenizer, arch, seed=0):
    return RLAgent(tiny(tokenizer, arch, seed), tokenizer, seed=0)


# --------------------------------------------------------------------------- the forward pass
@pytest.mark.parametrize("arch", ARCHS)
def test_log_probs_equal_keras_hubs_score_and_left_padding_changes_nothing(tokenizer, arch):
    agent = tiny_agent(tokenizer, arch)
    lm = agent.model.causal_lm
    prompt, completion = [264, 80, 300], [17, 250, 99, 4]  # token ids
    # by hand from KerasHub's own forward: log_softmax of score()'s logits at the positions before each token
    seq = np.array([prompt + completion])
    logits = lm.score(token_ids=seq, padding_mask=np.ones_like(seq), scoring_mode="logits").numpy()[0]
    log_softmax = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    expected = [log_softmax[len(prompt) - 1 + t, tok] for t, tok in enumerate(completion)]
    # the agent's, with the prompt alone and with the prompt left padded in a batch beside a longer one
    ids = np.array([[0, 0] + prompt, [5, 6, 7, 8, 9]], np.int32)
    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], np.int32)
    c_ids = np.array([completion, completion], np.int32)
    got = agent.log_probs(tf.constant(ids), tf.constant(mask), tf.constant(c_ids), tf.ones_like(c_ids)).numpy()
    np.testing.assert_allclose(got[0], expected, atol=2e-5)
    alone = agent.log_probs(tf.constant([prompt]), tf.ones([1, 3], tf.int32), tf.constant([completion]),
                            tf.ones([1, 4], tf.int32)).numpy()
    np.testing.assert_allclose(alone[0], expected, atol=2e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_decoding_gives_the_tokens_of_the_uncached_forward(tokenizer, arch):
    agent = tiny_agent(tokenizer, arch)
    ids, mask = agent.encode_prompts(["the movie was", "a"])
    gen = agent.generate(ids, mask, max_new_tokens=8, greedy=True)
    # teacher forcing the greedy completion through the full forward: every token is its step's argmax
    logits = agent.completion_logits(tf.constant(ids), tf.constant(mask), gen.completion_ids, gen.completion_mask)
    argmax = tf.argmax(logits, axis=-1, output_type=tf.int32).numpy()
    live = gen.completion_mask.numpy().astype(bool)
    assert live.sum() >= 8 and np.array_equal(argmax[live], gen.completion_ids.numpy()[live])


# --------------------------------------------------------------------------- training
def toy_env(tokenizer, batch_size=4):
    from test_reinforce import toy_env as reinforce_toy_env  # reward: the share of " the" in 6 tokens

    return reinforce_toy_env(tokenizer, batch_size=batch_size)


@pytest.mark.parametrize("arch", ARCHS)
def test_reinforce_reward_rises_and_the_weights_change(tokenizer, arch):
    agent = tiny_agent(tokenizer, arch)
    trainer = ReinforceTrainer(agent, toy_env(tokenizer), ReinforceConfig(learning_rate=3e-2, baseline="rloo",
                                                                          num_samples_per_prompt=4))
    before_weights = agent.model.get_weights()
    assert trainer.evaluate(greedy=False) < 0.1
    trainer.train(40, progress=False)
    after = np.mean([h["reward_mean"] for h in trainer.history[-5:]])
    assert after > 0.5, after
    changed = [not np.array_equal(a, b) for a, b in zip(before_weights, agent.model.get_weights())]
    assert sum(changed) >= len(changed) - 1  # (GPT-2's position rows past the used length may stay)


@pytest.mark.parametrize("arch", ARCHS)
def test_grpo_reward_rises(tokenizer, arch):
    trainer = GRPOTrainer(tiny_agent(tokenizer, arch), toy_env(tokenizer),
                          GRPOConfig(num_generations=4, num_iterations=2, learning_rate=3e-2, beta=0.04))
    assert trainer.evaluate(greedy=False) < 0.1
    trainer.train(30, progress=False)
    assert np.mean([h["reward"] for h in trainer.history[-5:]]) > 0.5
    assert trainer.history[-1]["kl"] > 0  # the frozen KerasHub copy is the reference


@pytest.mark.parametrize("arch", ARCHS)
def test_ppo_reward_rises_with_a_value_head_on_the_backbone(tokenizer, arch):
    agent = tiny_agent(tokenizer, arch)
    trainer = PPOTrainer(agent, toy_env(tokenizer, batch_size=8),
                         PPOConfig(learning_rate=1e-2, num_samples_per_prompt=8, num_epochs=2, num_minibatches=2,
                                   kl_coef=0.02))
    assert agent.value_head is not None and agent.value_head.built
    trainer.train(60, progress=False)
    assert np.mean([h["reward_mean"] for h in trainer.history[-5:]]) > 0.5
    assert np.isfinite(trainer.history[-1]["value_loss"])


def test_a2c_reward_rises_on_a_keras_hub_llama(tokenizer):
    from tf_rl_text import A2CConfig, A2CTrainer

    agent = tiny_agent(tokenizer, "llama")
    trainer = A2CTrainer(agent, toy_env(tokenizer, batch_size=8), A2CConfig(
        learning_rate=3e-2, num_samples_per_prompt=8, kl_coef=0.02, whiten_advantages=True))
    head_before = [w.copy() for w in agent.value_head.get_weights()]
    trainer.train(40, progress=False)
    first = np.mean([h["reward_mean"] for h in trainer.history[:5]])
    last = np.mean([h["reward_mean"] for h in trainer.history[-5:]])
    assert first < 0.05 and last > 0.3, (first, last)
    assert any(not np.allclose(a, b) for a, b in zip(head_before, agent.value_head.get_weights()))


def test_online_dpo_raises_the_reward_on_a_keras_hub_gpt2(tokenizer):
    from tf_rl_text import OnlineDPOConfig, OnlineDPOTrainer

    trainer = OnlineDPOTrainer(tiny_agent(tokenizer, "gpt2"), toy_env(tokenizer),
                               OnlineDPOConfig(num_generations=4, beta=0.1, learning_rate=3e-2))
    assert trainer.evaluate(greedy=False) < 0.1
    trainer.train(40, progress=False)
    assert np.mean([h["reward_mean"] for h in trainer.history[-5:]]) > 0.5


@pytest.mark.parametrize("arch", ARCHS)
def test_dpo_learns_a_toy_preference_on_held_out_pairs(tokenizer, arch):
    from test_dpo import word_pairs

    train, held_out = word_pairs()
    trainer = DPOTrainer(tiny_agent(tokenizer, arch), train, DPOConfig(beta=0.1, learning_rate=1e-2, batch_size=4))
    before = trainer.evaluate_pairs(held_out)
    assert before["margin"] == pytest.approx(0.0, abs=1e-6)
    trainer.train(15, progress=False)
    after = trainer.evaluate_pairs(held_out)
    assert after["accuracy"] == 1.0 and after["margin"] > 1.0, after


@pytest.mark.parametrize("q_values", ["logits", "head"])
def test_q_learning_updates_and_syncs_its_target_network(tokenizer, q_values):
    agent = tiny_agent(tokenizer, "llama")
    trainer = QLearningTrainer(agent, toy_env(tokenizer), QLearningConfig(learning_rate=1e-2, batch_size=4,
                                                                          q_values=q_values, target_update_period=2))
    online = trainer.q_model
    before = [v.numpy() for v in online.trainable_variables]
    trainer.train(2, progress=False)
    assert all(np.isfinite(h["loss"]) for h in trainer.history) and trainer.history[-1]["target_synced"] == 1.0
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(before, online.trainable_variables))
    for o, t in zip(online.variables, trainer.target_model.variables):  # synced at update 2: equal again
        np.testing.assert_array_equal(o.numpy(), t.numpy())


# --------------------------------------------------------------------------- mixed precision
def test_mixed_bfloat16_keeps_float32_weights_and_the_reward_still_rises(tokenizer):
    """``with_precision`` on a KerasHub policy: a copy under Keras 3's ``mixed_bfloat16`` dtype policy (bfloat16
    math, float32 weights), the REINFORCE toy task of test_precision.py (8 prompts x 4 samples, KL 0.01). Measured
    on the 2-core AVX2 machine (emulated bfloat16): reward after 40 steps 1.0, 0.99, 0.995, 1.0 on model seeds 0-3
    (float32: 0.985, 0.991, 0.97, 1.0)."""
    import warnings

    from test_precision import toy_env as precision_toy_env
    from tf_rl_text.precision import policy_of, with_precision

    float32 = tiny_agent(tokenizer, "gpt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the emulated-bfloat16 warning on CPUs without AVX-512
        mixed = with_precision(float32.model, "mixed_bfloat16")
    assert policy_of(mixed) == "mixed_bfloat16" and policy_of(float32.model) == "float32"
    assert all(v.dtype == tf.float32 for v in mixed.variables)
    agent = RLAgent(mixed, tokenizer, seed=0)
    ids, mask = float32.encode_prompts(PROMPTS)
    gen = float32.generate(ids, mask, max_new_tokens=6, greedy=True)
    lp32 = float32.log_probs(ids, mask, gen.completion_ids, gen.completion_mask).numpy()
    lp16 = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask).numpy()
    assert 0 < np.abs(lp16 - lp32).max() < 0.05  # computed in bfloat16, within its ~0.4% per value
    back = with_precision(mixed, "float32")
    np.testing.assert_array_equal(np.concatenate([v.numpy().ravel() for v in back.variables]),
                                  np.concatenate([v.numpy().ravel() for v in float32.model.variables]))
    trainer = ReinforceTrainer(agent, precision_toy_env(tokenizer, batch_size=8), ReinforceConfig(
        learning_rate=3e-2, baseline="rloo", num_samples_per_prompt=4, kl_coef=0.01))
    assert policy_of(trainer.ref_model) == "mixed_bfloat16"
    trainer.train(40, progress=False)
    assert np.mean([h["reward_mean"] for h in trainer.history[-5:]]) > 0.5
    assert all(v.dtype == tf.float32 for v in mixed.variables)


# --------------------------------------------------------------------------- export, and back to KerasHub
@pytest.mark.parametrize("arch", ARCHS)
def test_export_generates_the_live_tokens_and_the_preset_goes_back_to_keras_hub(tokenizer, arch, tmp_path):
    import tf_rl_text

    agent = tiny_agent(tokenizer, arch)
    trainer = ReinforceTrainer(agent, toy_env(tokenizer), ReinforceConfig(learning_rate=3e-2, kl_coef=0.05))
    trainer.train(3, progress=False)
    live = agent.generate_text(PROMPTS, max_new_tokens=6, greedy=True)
    path = trainer.export(str(tmp_path / "export"))
    assert tf_rl_text.load(path).generate(PROMPTS) == live
    raw = tf.saved_model.load(path)  # plain TensorFlow: no tf_rl_text, no KerasHub objects
    assert {"generate", "sample", "log_probs", "train_step"} <= set(raw.signatures)
    ids, mask = agent.encode_prompts(PROMPTS)
    out = raw.signatures["generate"](input_ids=tf.constant(ids), attention_mask=tf.constant(mask))
    np.testing.assert_array_equal(out["sequences"].numpy(),
                                  agent.generate(ids, mask, max_new_tokens=6, greedy=True).completion_ids.numpy())
    # the trained model as a KerasHub preset: CausalLM.from_preset loads it, and it generates the same tokens
    agent.save_pretrained(str(tmp_path / "preset"))
    back = keras_hub.models.CausalLM.from_preset(str(tmp_path / "preset"))
    assert type(back) is type(agent.model.causal_lm)
    for a, b in zip(agent.model.causal_lm.variables, back.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model, reloaded_tokenizer = kerashub.load_preset(str(tmp_path / "preset"))
    assert len(reloaded_tokenizer) == len(tokenizer)
    assert RLAgent(model, reloaded_tokenizer).generate_text(PROMPTS, max_new_tokens=6, greedy=True) == live


def test_keras_hubs_lora_trains_the_adapters_and_leaves_the_base_bit_equal(tokenizer):
    lm = tiny(tokenizer, "gpt2")
    lm.backbone.enable_lora(4)
    frozen = {v.path: v.numpy() for v in lm.variables if not v.trainable}
    adapters = {v.path: v.numpy() for v in lm.trainable_variables if "lora" in v.path}
    assert adapters and frozen
    agent = RLAgent(lm, tokenizer, seed=0)
    trainer = ReinforceTrainer(agent, toy_env(tokenizer), ReinforceConfig(learning_rate=3e-2, kl_coef=0.05,
                                                                          num_samples_per_prompt=4))
    assert trainer.ref_model.trainable_variables == []  # the reference: a frozen copy, adapters included
    trainer.train(5, progress=False)
    assert all(np.array_equal(frozen[v.path], v.numpy()) for v in lm.variables if v.path in frozen)
    assert any(not np.array_equal(adapters[v.path], v.numpy()) for v in lm.variables if v.path in adapters)


def test_a_run_stopped_and_resumed_ends_as_the_straight_run(tokenizer, tmp_path):
    from test_resume import assert_same_run, make_env, stop_and_resume

    def build(run_dir):
        config = ReinforceConfig(learning_rate=1e-2, baseline="moving_average", kl_coef=0.1)
        return ReinforceTrainer(tiny_agent(tokenizer, "gpt2"), make_env(tokenizer), config, run_dir=run_dir,
                                checkpoint_every=2)

    straight, resumed = stop_and_resume(build, tmp_path, 2, 4)
    assert_same_run(straight, resumed)
    assert straight.history[0]["loss"] != straight.history[2]["loss"]


# --------------------------------------------------------------------------- checkpoints from elsewhere
@pytest.mark.parametrize("family, keras_hub_class", [("gpt2", "GPT2CausalLM"), ("mistral", "Llama3CausalLM")])
def test_keras_hub_converts_a_local_hugging_face_checkpoint_and_it_trains(tokenizer, tmp_path, family, keras_hub_class):
    from conftest import make_tiny_mistral

    hf = make_tiny_model(tokenizer) if family == "gpt2" else make_tiny_mistral(tokenizer)  # Llama architecture
    lm = kerashub.from_transformers(hf, str(tmp_path))  # a PyTorch-format checkpoint folder, converted by KerasHub
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    assert type(lm).__name__ == keras_hub_class
    ids = np.array([[264, 80, 300, 17, 5, 9]])
    kh_logits = lm.score(token_ids=ids, padding_mask=np.ones_like(ids), scoring_mode="logits").numpy()
    np.testing.assert_allclose(kh_logits, hf(input_ids=ids).logits.numpy(), atol=1e-5)
    agent, hf_agent = RLAgent(lm, tokenizer, seed=0), RLAgent(hf, tokenizer, seed=0)
    assert agent.generate_text(PROMPTS, max_new_tokens=8, greedy=True) == \
        hf_agent.generate_text(PROMPTS, max_new_tokens=8, greedy=True)
    trainer = ReinforceTrainer(agent, toy_env(tokenizer), ReinforceConfig(learning_rate=1e-2))
    assert np.isfinite(trainer.step()["loss"])


def test_the_models_own_byte_pair_tokenizer_is_converted_with_the_same_ids(tokenizer):
    spec = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in spec["merges"]]
    kh_tokenizer = keras_hub.tokenizers.GPT2Tokenizer(vocabulary=spec["vocab"], merges=merges)
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(kh_tokenizer, sequence_length=32)
    lm = keras_hub.models.GPT2CausalLM(backbone=tiny(tokenizer, "gpt2").backbone, preprocessor=preprocessor)
    agent = RLAgent(lm)  # no tokenizer given: the preprocessor's, converted
    for text in ["the movie was great.", "Our dinner, 42 times!"]:
        ids = agent.tokenizer(text)["input_ids"]
        assert ids == [int(i) for i in np.asarray(kh_tokenizer(text))] == tokenizer(text)["input_ids"]
    assert agent.eos_token_id == tokenizer.eos_token_id


# --------------------------------------------------------------------------- the command line
CLI_TRAINERS = {
    "reinforce": {"learning_rate": 1e-3, "baseline": "rloo", "num_samples_per_prompt": 2, "kl_coef": 0.05},
    "grpo": {"learning_rate": 1e-3, "num_generations": 2, "beta": 0.04},
    "ppo": {"learning_rate": 1e-3, "num_samples_per_prompt": 2, "kl_coef": 0.05},
    "dpo": {"learning_rate": 1e-3, "beta": 0.1, "batch_size": 2, "max_new_tokens": 6},
}


# each algorithm family once through the CLI, both backbones twice (the Python API tests above run every
# algorithm on both): the whole 4 x 2 matrix took 286 s of the suite for what these 4 runs show
CLI_MATRIX = [("reinforce", "llama"), ("grpo", "llama"), ("ppo", "gpt2"), ("dpo", "gpt2")]


@pytest.mark.parametrize("algorithm, arch", CLI_MATRIX)
def test_tf_rl_text_train_runs_every_algorithm_family_on_a_keras_hub_model(arch, algorithm, tmp_path, capsys):
    import tf_rl_text
    from tf_rl_text import cli

    assert {a for a, _ in CLI_MATRIX} == set(CLI_TRAINERS) and {b for _, b in CLI_MATRIX} == set(ARCHS)
    data = {"source": "prompts"}
    if algorithm == "dpo":  # a pairs file (pairs made from samples need a warm start long enough to differ)
        pairs = tmp_path / "pairs.jsonl"
        pairs.write_text("".join(json.dumps({"prompt": p, "chosen": " was good .", "rejected": " was bad ."}) + "\n"
                                 for p in PROMPTS))
        data["preferences"] = str(pairs)
    config = {"algorithm": algorithm, "model": {"keras_hub": arch, "layers": 1, "width": 32}, "data": data,
              "reward": {"name": "sentiment"}, "trainer": CLI_TRAINERS[algorithm],
              "run": {"steps": 2, "warm_start_steps": 2, "batch_size": 2, "max_new_tokens": 6, "seed": 0}}
    path = tmp_path / "kh.yaml"
    path.write_text(yaml.safe_dump(config))
    assert cli.main(["train", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "model: KerasHubLM from scratch" in captured.out + captured.err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2 and np.isfinite(summary["reward_after"])
    policy = tf_rl_text.load(summary["export"])
    assert policy.metadata["model_type"] == f"keras_hub_{arch}"
    completions = policy.generate(PROMPTS[:2])
    assert len(completions) == 2
    if algorithm == "grpo":  # generate, evaluate and explain read the export as they read any other
        assert cli.main(["generate", summary["export"], PROMPTS[0]]) == 0
        assert capsys.readouterr().out.strip() == PROMPTS[0] + completions[0]
        data = tmp_path / "eval.jsonl"
        data.write_text("".join(json.dumps({"prompt": p, "reference": p + " was good"}) + "\n" for p in PROMPTS))
        assert cli.main(["evaluate", summary["export"], "--data", str(data), "--metrics", "bleu,rouge", "--json"]) == 0
        scores = json.loads(capsys.readouterr().out)
        assert scores["num_examples"] == len(PROMPTS) and 0.0 <= scores["rougeL"] <= 1.0
        assert cli.main(["explain", summary["export"], PROMPTS[0], "--greedy", "--json"]) == 0
        explained = json.loads(capsys.readouterr().out)[0]
        assert explained["completion"] == completions[0] and all(lp <= 0 for lp in explained["log_prob"])


# --------------------------------------------------------------------------- errors a user meets
def test_errors_name_the_problem_and_the_fix(tokenizer):
    with pytest.raises(ValueError, match=r"enable_lora\(rank=4\)"):
        tiny_agent(tokenizer, "gpt2").attach_lora(rank=4)
    with pytest.raises(ValueError, match="policy must be a Keras dtype policy name.*'float8'"):
        tiny_agent(tokenizer, "gpt2").model.copy_model("float8")
    gemma = keras_hub.models.GemmaCausalLM(backbone=keras_hub.models.GemmaBackbone(
        vocabulary_size=64, num_layers=1, num_query_heads=2, num_key_value_heads=1, hidden_dim=16,
        intermediate_dim=32, head_dim=8), preprocessor=None)
    with pytest.raises(TypeError, match="GPT2Backbone.*GemmaCausalLM has GemmaBackbone"):
        RLAgent(gemma, tokenizer)
    with pytest.raises(ValueError, match="no preprocessor.*RLAgent\\(lm, tokenizer\\)"):
        RLAgent(tiny(tokenizer, "llama"))
    with pytest.raises(ValueError, match="architecture must be 'gpt2' or 'llama'.*'gemma'"):
        kerashub.build("gemma", 64)
    with pytest.raises(FileNotFoundError, match="preset folder.*save_to_preset"):
        kerashub.load_preset("./no/such/folder")


def test_a_config_naming_a_keras_hub_model_and_a_path_exits_2_naming_both(tmp_path, capsys):
    from tf_rl_text import cli

    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump({"algorithm": "reinforce", "model": {"keras_hub": "llama", "path": "some/folder"}}))
    assert cli.main(["train", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "model.keras_hub='llama'" in err and "leave model.path null" in err and "some/folder" in err
    assert not (tmp_path / "run").exists()  # stopped before any work
