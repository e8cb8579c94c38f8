"""Mixed precision (bfloat16 math, float32 weights): scores within bfloat16 error of float32,
float32 logits and weights, references and target networks that compute like the policy, a
reward that rises, PPO and Q-learning steps, and an export that reloads with the same tokens."""
import contextlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tf_rl_text
from conftest import make_tiny_model, make_tiny_t5
from tf_rl_text import (PPOConfig, PPOTrainer, QLearningConfig, QLearningTrainer, ReinforceConfig, ReinforceTrainer,
                        RLAgent, TextGenerationEnv)
from tf_rl_text.precision import with_precision
from tf_rl_text._compat import keras, tf
from tf_rl_text.precision import global_policy, policy_of, weights_cast_once
from tf_rl_text.rewards import TokenFrequencyReward

PROMPTS = ["the movie was", "my day", "i really enjoyed the"]
TARGET = 264  # " the", as in test_reinforce.py


def toy_env(tokenizer, batch_size=4):
    return TextGenerationEnv(["the movie was", "my day", "our dinner", "i really enjoyed"], tokenizer,
                             TokenFrequencyReward(tokenizer, TARGET), batch_size=batch_size, max_new_tokens=6, seed=0)


def scores(agent, ids, mask, gen):
    return agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask).numpy()


@pytest.mark.parametrize("make", [make_tiny_model, make_tiny_t5], ids=["gpt2", "t5"])
def test_mixed_copy_keeps_float32_weights_and_scores_within_bfloat16_error(tokenizer, make):
    model = make(tokenizer)
    mixed = with_precision(model, "mixed_bfloat16")
    assert policy_of(mixed) == "mixed_bfloat16" and policy_of(model) == "float32"
    assert all(w.dtype == tf.float32 for w in mixed.weights)
    for a, b in zip(model.get_weights(), mixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    full, half = RLAgent(model, tokenizer, seed=0), RLAgent(mixed, tokenizer, seed=0)
    ids, mask = full.encode_prompts(PROMPTS)
    gen = full.generate(ids, mask, max_new_tokens=6, greedy=True)
    lp32, lp16 = scores(full, ids, mask, gen), scores(half, ids, mask, gen)
    assert half.log_probs(ids, mask, gen.completion_ids, gen.completion_mask).dtype == tf.float32
    assert np.abs(lp16 - lp32).max() < 0.05  # bfloat16 keeps 8 bits of mantissa: ~0.4% per value
    assert np.abs(lp16 - lp32).max() > 0  # and it really computed in bfloat16
    back = RLAgent(with_precision(mixed, "float32"), tokenizer)  # and back: float32 scores exactly again
    np.testing.assert_allclose(scores(back, ids, mask, gen), lp32, rtol=0, atol=1e-6)


def test_bad_precisions_are_refused_with_the_fix(tokenizer):
    model = make_tiny_model(tokenizer)
    with pytest.raises(ValueError, match="loss scaling.*mixed_bfloat16"):
        with_precision(model, "mixed_float16")
    with pytest.raises(ValueError, match=r"policy must be one of \('float32', 'mixed_bfloat16'\), got 'bf16'"):
        with_precision(model, "bf16")
    with pytest.raises(TypeError, match="Hugging Face TF model.*got Dense"):
        with_precision(keras.layers.Dense(2))
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing leaked into Keras' global state


def test_global_policy_is_restored_after_an_error():
    with pytest.raises(RuntimeError):
        with global_policy("mixed_bfloat16"):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_reinforce_in_mixed_precision_raises_the_reward_with_a_mixed_reference(tokenizer):
    """The REINFORCE toy task of test_reinforce.py, in bfloat16: reward 0 -> > 0.5, KL 0 at step 1. 8 prompts x 4
    samples a step: at 4 prompts the sparse reward is found within 41 steps on 3 of 10 model seeds on a CPU without
    native bfloat16 (AVX2: TensorFlow emulates it) against 10 of 10 in float32; at 8, on 9 of 10 (seed 0 among
    them) there, and on AVX-512 machines (measured 2026-12-07, tf_rl_text/precision.py)."""
    agent = RLAgent(with_precision(make_tiny_model(tokenizer)), tokenizer, seed=0)
    trainer = ReinforceTrainer(agent, toy_env(tokenizer, batch_size=8), ReinforceConfig(
        learning_rate=3e-2, baseline="rloo", num_samples_per_prompt=4, kl_coef=0.01))
    assert policy_of(trainer.ref_model) == "mixed_bfloat16"
    before = [w.copy() for w in agent.model.get_weights()]
    first = trainer.step()
    assert first["kl"] == 0.0  # same weights, same bfloat16 math: the leash starts at exactly 0
    trainer.train(40, progress=False)
    after = np.mean([h["reward_mean"] for h in trainer.history[-5:]])
    assert after > 0.5, f"mean reward in bfloat16 only reached {after:.3f}"
    assert trainer.history[-1]["kl"] > 0
    assert all(w.dtype == tf.float32 for w in agent.model.weights)  # float32 master weights were updated
    changed = [not np.allclose(a, b) for a, b in zip(before, agent.model.get_weights())]
    assert sum(changed) >= len(changed) - 2
    assert [f.experimental_get_tracing_count() for f in trainer._update_fns.values()] == [1]


def test_ppo_in_mixed_precision_trains_a_float32_value_head(tokenizer):
    agent = RLAgent(with_precision(make_tiny_model(tokenizer)), tokenizer, seed=0)
    env = TextGenerationEnv(["the movie was", "my day"], tokenizer, lambda c, p, r: [len(x) / 10 for x in c],
                            batch_size=4, max_new_tokens=6)  # a reward every completion earns: updates happen
    trainer = PPOTrainer(agent, env, PPOConfig(learning_rate=1e-2, num_samples_per_prompt=2))
    ids, mask = agent.encode_prompts(PROMPTS)
    values = agent.values(tf.constant(ids), tf.constant(mask))
    assert values.dtype == tf.float32
    kernel = agent.value_head.dense.kernel.numpy().copy()
    stats = trainer.step()
    assert np.isfinite([stats["loss"], stats["value_loss"], stats["kl"], stats["explained_variance"]]).all()
    assert stats["value_loss"] > 0
    assert not np.allclose(kernel, agent.value_head.dense.kernel.numpy())


def test_q_learning_target_network_computes_like_the_online_network(tokenizer):
    agent = RLAgent(with_precision(make_tiny_model(tokenizer)), tokenizer, seed=0)
    trainer = QLearningTrainer(agent, toy_env(tokenizer), QLearningConfig(q_values="head", batch_size=8,
                                                                          learning_rate=1e-2))
    assert policy_of(trainer.target_model) == "mixed_bfloat16"
    ids, mask = agent.encode_prompts(PROMPTS)
    ids, mask = tf.constant(ids), tf.constant(mask)
    q = trainer.policy.causal_lm(ids, mask).logits.numpy()
    q_target = trainer.policy.causal_lm(ids, mask, model=trainer.target_model).logits.numpy()
    assert q.dtype == np.float32
    np.testing.assert_array_equal(q, q_target)  # a copy in the same precision: identical, not just close
    stats = trainer.step()
    assert np.isfinite(stats["loss"])


def test_mixed_precision_export_reloads_with_the_live_tokens(tokenizer, tmp_path):
    agent = RLAgent(with_precision(make_tiny_model(tokenizer, seed=1)), tokenizer, seed=0)
    policy = tf_rl_text.load(tf_rl_text.export_policy(agent, str(tmp_path / "mixed"), max_new_tokens=6))
    assert policy.generate(PROMPTS) == agent.generate_text(PROMPTS, max_new_tokens=6, greedy=True)
    assert policy.generate(PROMPTS, greedy=False, seed=3) == agent.generate_text(PROMPTS, max_new_tokens=6, seed=3)


def test_plain_tensorflow_loads_a_mixed_precision_export_generates_scores_and_trains(tokenizer, tmp_path):
    """The fresh-process check of test_export.py on a bfloat16 policy: plain TensorFlow, no tf_rl_text."""
    from test_export import FRESH_PROCESS

    agent = RLAgent(with_precision(make_tiny_model(tokenizer, seed=1)), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, TokenFrequencyReward(tokenizer, TARGET), batch_size=3, max_new_tokens=7)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, baseline="none"))
    trainer.train(2, progress=False)
    path = trainer.export(str(tmp_path / "policy"))
    ids, mask = agent.encode_prompts(PROMPTS)
    live = agent.generate(ids, mask, 7, greedy=True).completion_ids.numpy()
    cmask = np.ones_like(live)
    # the exported log_probs is this function traced: compare graph to graph (eager bfloat16 kernels differ ~1e-3)
    live_lp = tf.function(agent.log_probs, autograph=False)(ids, mask, live, cmask).numpy()
    data = {"ids": ids.tolist(), "mask": mask.tolist(), "completion_ids": live.tolist(),
            "completion_mask": cmask.tolist(), "advantages": cmask.astype(float).tolist()}
    (tmp_path / "batch.json").write_text(json.dumps(data))
    (tmp_path / "fresh.py").write_text(FRESH_PROCESS)
    proc = subprocess.run([sys.executable, str(tmp_path / "fresh.py"), path, str(tmp_path / "batch.json")],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.array(out["generate"]), live)
    np.testing.assert_array_equal(np.array(out["serving"]), live)
    np.testing.assert_allclose(np.array(out["log_probs"]), live_lp, atol=1e-5)
    assert out["losses"][2] < out["losses"][0], out["losses"]  # positive advantages: -log p falls
    assert out["changed"] >= out["n_vars"] - 2  # the loaded float32 weights were trained


def _while_body_ops(concrete, op_type):
    """How many ``op_type`` nodes the while-loop bodies of a traced function hold."""
    library = concrete.graph.as_graph_def().library.function
    return sum(node.op == op_type for f in library if "while_body" in f.signature.name for node in f.node_def)


def test_weights_cast_once_moves_the_weight_reads_out_of_the_loop_with_the_same_result():
    with global_policy("mixed_bfloat16"):
        layer = keras.layers.Dense(3, kernel_initializer="glorot_uniform", bias_initializer="ones")
        layer.build((None, 3))

    class Holder:
        variables = layer.variables

    def run(hoist):
        def f(x):
            with weights_cast_once(Holder) if hoist else contextlib.nullcontext():
                x = layer(x)  # first read before the loop, as generation's prefill
                return tf.while_loop(lambda i, x: i < 4, lambda i, x: (i + 1, tf.tanh(layer(x))), (0, x))[1]

        fn = tf.function(f, autograph=False).get_concrete_function(tf.TensorSpec([2, 3], tf.bfloat16))
        return fn, fn(tf.constant([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], tf.bfloat16)).numpy()

    (plain, out_plain), (hoisted, out_hoisted) = run(False), run(True)
    assert _while_body_ops(plain, "ReadVariableOp") == 2  # kernel and bias, re-read every iteration
    assert _while_body_ops(hoisted, "ReadVariableOp") == 0  # read and cast once, before the loop
    np.testing.assert_array_equal(out_plain, out_hoisted)  # the same cast: the same numbers
    assert layer.kernel.value().dtype == tf.float32  # nothing stays patched: outside, reads are float32 again


def test_mixed_agent_decode_loop_reads_no_mixed_weight_per_token(tokenizer):
    model = make_tiny_model(tokenizer)
    mixed = with_precision(model)
    autocast = [v for v in mixed.variables if type(v).__name__ == "AutoCastVariable"]
    reads = {}
    for name, m in (("float32", model), ("mixed", mixed)):
        agent = RLAgent(m, tokenizer, seed=0, generation_shards=1)
        reads[name] = _while_body_ops(agent.generate_fn().get_concrete_function(), "ReadVariableOp")
        ids, mask = agent.encode_prompts(PROMPTS)
        assert agent.generate(ids, mask, max_new_tokens=5, seed=1).completion_ids.shape == (3, 5)
    assert len(autocast) >= 8  # the attention and MLP kernels and biases of the one block
    # every AutoCastVariable read (and the tied LM head's cast) left the loop; float32 reads stay per token
    assert reads["mixed"] <= reads["float32"] - len(autocast), reads


def test_with_precision_warns_about_emulated_bfloat16_on_a_cpu_without_native_support(tmp_path, monkeypatch):
    """A CPU whose flags lack AVX-512/AVX512-BF16/AMX (or oneDNN limited to AVX2) gets a warning naming the fix;
    an AVX-512 one does not; float32 never does."""
    from tf_rl_text import precision

    avx2, avx512 = tmp_path / "avx2", tmp_path / "avx512"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    avx512.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512_bf16\n")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind=None: [])
    assert precision.native_bfloat16(str(avx2)) is False
    assert precision.native_bfloat16(str(avx512)) is True
    assert precision.native_bfloat16(str(tmp_path / "missing")) is None  # not Linux: unknown, no warning
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert precision.native_bfloat16(str(avx512)) is False  # oneDNN limited to AVX2: emulated too
    monkeypatch.setattr(precision, "native_bfloat16", lambda: False)
    with pytest.warns(UserWarning, match="Use float32 on this machine"):
        assert precision.warn_if_emulated_bfloat16("mixed_bfloat16")
    assert precision.warn_if_emulated_bfloat16("float32") is False
    monkeypatch.setattr(precision, "native_bfloat16", lambda: True)
    assert precision.warn_if_emulated_bfloat16("mixed_bfloat16") is False
