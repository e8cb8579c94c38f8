"""TFMistralForCausalLM (the Llama architecture) in the compiled generation loop, every trainer and the export."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_tiny_mistral
from tf_rl_text import (A2CConfig, A2CTrainer, QLearningConfig, QLearningTrainer, ReinforceConfig, ReinforceTrainer,
                        RLAgent, TextGenerationEnv)
from tf_rl_text._compat import tf

PROMPTS = ["the movie was", "i really enjoyed the long"]  # different lengths: row 0 is left padded


def length_reward(completions, prompts, references):
    return [len(c) / 10 for c in completions]


@pytest.fixture(scope="module")
def mistral(tokenizer):
    return make_tiny_mistral(tokenizer)


def test_cached_decode_steps_give_the_logits_of_recomputation_without_a_cache(tokenizer, mistral):
    """Prefill + 5 cached steps (the agent's llama cache, compiled) vs HF's forward over the whole
    sequence at every step, and vs the no-cache path: the same per-step logits, with left padding."""
    ids, mask = RLAgent(mistral, tokenizer, seed=0).encode_prompts(PROMPTS)
    assert mask[0, 0] == 0 and mask[1, 0] == 1
    forced = tf.constant([[5, 77, 3, 401, 12], [9, 9, 250, 31, 7]], tf.int32)  # teacher-forced tokens

    def steps(agent):
        def run(ids, mask):
            logits, state = agent._prefill(ids, mask)
            out = [logits]
            for t in range(forced.shape[1]):
                logits, state = agent._advance(forced[:, t], state)
                out.append(logits)
            return tf.stack(out, axis=1)  # (B, 6, V)
        return agent.compile_fn(run)(tf.constant(ids), tf.constant(mask)).numpy()

    cached = steps(RLAgent(mistral, tokenizer, seed=0))
    recomputed = steps(RLAgent(mistral, tokenizer, seed=0, generation_cache="none"))
    seq = tf.concat([tf.constant(ids), forced], axis=1)
    seq_mask = tf.concat([tf.constant(mask), tf.ones_like(forced)], axis=1)
    positions = tf.maximum(tf.cumsum(seq_mask, axis=-1) - 1, 0)
    full = mistral(input_ids=seq, attention_mask=seq_mask, position_ids=positions).logits.numpy()
    full = full[:, ids.shape[1] - 1:]  # the logits that predict each generated position
    assert full.std() > 0.5  # the outputs vary: equal logits are not a coincidence of a flat model
    np.testing.assert_allclose(cached, full, atol=2e-5)
    np.testing.assert_allclose(recomputed, full, atol=2e-5)


def test_generate_equals_unpadded_recomputation(tokenizer, mistral):
    from test_agent import greedy_by_recomputation

    agent = RLAgent(mistral, tokenizer, seed=0)
    assert agent.generation_cache == "llama" and not agent.autograph
    ids, mask = agent.encode_prompts(PROMPTS)
    gen = agent.generate(ids, mask, max_new_tokens=6, greedy=True)
    for row, text in enumerate(PROMPTS):
        expected = greedy_by_recomputation(mistral, tokenizer(text)["input_ids"], 6)
        n = int(gen.completion_mask[row].numpy().sum())
        assert gen.completion_ids[row].numpy().tolist()[:n] == expected[:n]
    with pytest.raises(ValueError, match="generation_cache must be one of"):
        RLAgent(mistral, tokenizer, generation_cache="static")


FRESH = r"""
import json, sys
import tensorflow as tf          # plain TensorFlow: tf_rl_text is never imported here
data = json.load(open(sys.argv[2]))
m = tf.saved_model.load(sys.argv[1])
ids, mask = tf.constant(data["ids"], tf.int32), tf.constant(data["mask"], tf.int32)
seqs = m.generate(ids, mask)["sequences"].numpy().tolist()
lp = m.log_probs(ids, mask, tf.constant(data["completion_ids"]), tf.constant(data["completion_mask"]))
assert not any(k.startswith("tf_rl_text") for k in sys.modules)
print(json.dumps({"generate": seqs, "log_probs": lp["log_probs"].numpy().tolist()}))
"""


def test_reinforce_with_kl_trains_mistral_and_its_export_generates_in_plain_tensorflow(tokenizer, tmp_path):
    model = make_tiny_mistral(tokenizer, seed=1)
    agent = RLAgent(model, tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=5)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(num_samples_per_prompt=2, kl_coef=0.1, learning_rate=1e-2))
    before = [w.copy() for w in model.get_weights()]
    first = trainer.step()
    assert abs(first["kl"]) < 1e-5 and np.isfinite(first["loss"])  # step 0: policy == reference
    second = trainer.step()
    assert abs(second["kl"]) > 1e-4  # the policy moved away from the frozen reference
    changed = sum(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    assert changed == len(before)
    path = trainer.export(str(tmp_path / "mistral_policy"))
    ids, mask = agent.encode_prompts(PROMPTS)
    live = agent.generate(ids, mask, 5, greedy=True)
    live_lp = agent.log_probs(ids, mask, live.completion_ids, live.completion_mask).numpy()
    data = tmp_path / "batch.json"
    data.write_text(json.dumps({"ids": ids.tolist(), "mask": mask.tolist(),
                                "completion_ids": live.completion_ids.numpy().tolist(),
                                "completion_mask": live.completion_mask.numpy().tolist()}))
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    proc = subprocess.run([sys.executable, str(script), path, str(data)], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.array(out["generate"]), live.completion_ids.numpy())
    np.testing.assert_allclose(np.array(out["log_probs"]), live_lp, atol=1e-5)


def test_a2c_and_q_learning_train_mistral(tokenizer):
    model = make_tiny_mistral(tokenizer, seed=2, layers=1)
    agent = RLAgent(model, tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, length_reward, batch_size=2, max_new_tokens=4)
    before = [w.copy() for w in model.get_weights()]
    a2c = A2CTrainer(agent, env, A2CConfig(num_samples_per_prompt=2, kl_coef=0.05, learning_rate=1e-2))
    stats = a2c.step()
    assert np.isfinite(stats["loss"]) and abs(stats["kl"]) < 1e-5
    assert sum(not np.allclose(a, b) for a, b in zip(before, model.get_weights())) == len(before)
    for q_values in ("logits", "head"):  # the head variant decodes through the llama cache too
        q = QLearningTrainer(RLAgent(model, tokenizer, seed=0), env,
                             QLearningConfig(q_values=q_values, batch_size=4, updates_per_step=1, learning_rate=1e-2))
        assert q.policy.generation_cache == "llama"
        weights = [v.numpy().copy() for v in q.policy.model.trainable_variables]
        stats = q.step()
        assert np.isfinite(stats["loss"])
        assert any(not np.allclose(a, v.numpy()) for a, v in zip(weights, q.policy.model.trainable_variables))


@pytest.mark.parametrize("tied", [False, True])
def test_a_llama_checkpoint_in_local_safetensors_loads_into_tf_mistral(tokenizer, mistral, tmp_path, tied):
    """A Llama-architecture checkpoint written as PyTorch would (names, (out, in) Linear weights,
    safetensors, config model_type "llama"; tied embeddings like SmolLM) gives TF Mistral's logits."""
    from safetensors.numpy import save_file

    from tf_rl_text.llama import load_llama

    weights = {}
    for v in mistral.weights:
        name = v.name.split(":")[0].split("/", 1)[1]  # model/layers.0/self_attn/q_proj/kernel
        value = v.numpy()
        if name.endswith("/kernel"):
            value = value.T  # torch.nn.Linear stores (out, in)
        name = name.replace("/kernel", "/weight").replace("embed_tokens/embeddings", "embed_tokens/weight")
        weights[name.replace("/", ".")] = np.ascontiguousarray(value)
    if tied:
        del weights["lm_head.weight"]
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    c = mistral.config
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": c.vocab_size,
              "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
              "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
              "num_key_value_heads": c.num_key_value_heads, "hidden_act": "silu", "max_position_embeddings": 128,
              "rms_norm_eps": c.rms_norm_eps, "rope_theta": c.rope_theta, "attention_bias": False, "mlp_bias": False,
              "rope_scaling": None, "tie_word_embeddings": tied}
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = load_llama(str(tmp_path))
    ids = tf.constant([[5, 77, 3, 401, 12]])
    expected = mistral(ids).logits.numpy()
    if tied:  # the checkpoint's head is its embedding matrix
        hidden = mistral(ids, output_hidden_states=True).hidden_states[-1]
        expected = tf.matmul(hidden, mistral.model.embed_tokens.embeddings, transpose_b=True).numpy()
    np.testing.assert_allclose(loaded(ids).logits.numpy(), expected, atol=1e-5)
    (tmp_path / "config.json").write_text(json.dumps(dict(config, rope_scaling={"rope_type": "llama3"})))
    with pytest.raises(ValueError, match="rope_scaling"):
        load_llama(str(tmp_path))
