"""Encoder-decoder agents (T5, BART): cached generation, log-probs, env, REINFORCE, export."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from tf_rl_text import specs as env_utils  # tf-agents' validate_py_environment where it is installed

from conftest import (assert_cached_logits_equal_recomputation, make_tiny_bart, make_tiny_model, make_tiny_t5,
                      recording_agent)
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf

SOURCES = ["the movie was", "i really enjoyed the long trip"]


def greedy_by_recomputation(model, source_ids, start, n):
    dec = [start]
    for _ in range(n):
        logits = model(input_ids=tf.constant([source_ids]), decoder_input_ids=tf.constant([dec]), training=False).logits
        dec.append(int(tf.argmax(logits[0, -1])))
    return dec[1:]


@pytest.mark.parametrize("build", [make_tiny_t5, make_tiny_bart])
def test_cached_generation_equals_full_recomputation(tokenizer, build):
    """Every step of the cached decode loop (encoder run once, decoder KV cache) gives the logits of an
    uncached forward pass over the source and decoder_start + the tokens so far: greedy, and sampled with a
    fixed seed (whose tokens vary; these tiny models' greedy outputs repeat one token)."""
    model = build(tokenizer, seed=3)
    agent = recording_agent(model, tokenizer, seed=0)
    assert agent.is_encoder_decoder and agent.padding_side == "right"
    ids, mask = agent.encode_prompts(SOURCES)
    assert mask[0, -1] == 0 and mask[0, 0] == 1  # shorter source: right padded
    agent.start_recording(batch=2, steps=6)
    gen = agent.generate(ids, mask, 5, greedy=True)
    for row, text in enumerate(SOURCES):
        expected = greedy_by_recomputation(model, tokenizer(text)["input_ids"], agent.decoder_start_token_id, 5)
        n = int(gen.completion_mask[row].numpy().sum())
        assert gen.completion_ids[row].numpy().tolist()[:n] == expected[:n]
    assert assert_cached_logits_equal_recomputation(agent, model, SOURCES, gen, agent.recorded()) >= 8
    agent.start_recording(batch=2, steps=6)
    sampled = agent.generate(ids, mask, 5, seed=4)
    assert max(len(set(row)) for row in sampled.completion_ids.numpy().tolist()) >= 3  # the tokens vary
    assert assert_cached_logits_equal_recomputation(agent, model, SOURCES, sampled, agent.recorded()) >= 8


def test_log_probs_are_teacher_forced_decoder_scores(tokenizer):
    model = make_tiny_t5(tokenizer)
    agent = RLAgent(model, tokenizer, temperature=1.5)
    ids, mask = agent.encode_prompts(SOURCES)
    comp = tf.constant([[264, 263, 267], [300, 0, 1]])
    cmask = tf.constant([[1, 1, 1], [1, 1, 0]])
    lp = agent.log_probs(ids, mask, comp, cmask).numpy()
    src = tf.constant([tokenizer(SOURCES[0])["input_ids"]])
    logits = model(input_ids=src, decoder_input_ids=tf.constant([[agent.decoder_start_token_id, 264]]),
                   training=False).logits[0, 1].numpy() / 1.5
    manual = logits[263] - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
    assert lp[0, 1] == pytest.approx(manual, abs=1e-4)
    assert lp[1, 2] == 0.0


def test_env_keeps_source_and_target_apart_and_validates(tokenizer):
    model = make_tiny_t5(tokenizer)
    agent = RLAgent(model, tokenizer, seed=0)
    env = TextGenerationEnv(SOURCES, tokenizer, lambda c, p, r: [len(x) / 10 for x in c], batch_size=2,
                            max_new_tokens=4, agent=agent, shuffle=False)  # the layout is the agent's family's
    assert env.encoder_decoder and env.family is agent.family
    env_utils.validate_py_environment(env, episodes=2)
    ts = env.reset()
    assert set(ts.observation) == {"input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask"}
    actions = []
    while not ts.is_last().all():
        a = agent.act(ts, greedy=True)
        actions.append(a)
        ts = env.step(a)
    # token-by-token greedy acting equals the compiled rollout's greedy decode
    gen = agent.generate(*agent.encode_prompts(env.batch_prompts), 4, greedy=True)
    got = np.stack(actions, 1)
    n = got.shape[1]
    m = gen.completion_mask.numpy()[:, :n].astype(bool)
    np.testing.assert_array_equal(got[m], gen.completion_ids.numpy()[:, :n][m])
    # an env without agent= has the causal layout, and refuses to feed the encoder-decoder agent
    causal_env = TextGenerationEnv(SOURCES, tokenizer, lambda c, p, r: [0.0] * len(c), batch_size=2, max_new_tokens=4)
    assert causal_env.observation_spec()["input_ids"].shape == (env.max_prompt_length + 4,)
    with pytest.raises(ValueError, match=r"TextGenerationEnv\(\.\.\., agent=agent\)"):
        agent.act(causal_env.reset())


def test_reinforce_trains_a_seq2seq_policy_and_exports_it(tokenizer, tmp_path):
    model = make_tiny_t5(tokenizer, seed=1)
    agent = RLAgent(model, tokenizer, seed=0)
    # reward: the share of completion tokens among ids 2..65 (an eighth of the vocabulary; ~0.12 at start)
    reward = lambda c, p, r: [  # noqa: E731
        (lambda ids: sum(2 <= i < 66 for i in ids) / max(1, len(ids)))(tokenizer(x, add_special_tokens=False)["input_ids"])
        for x in c]
    env = TextGenerationEnv(SOURCES + ["our dinner", "my day"], tokenizer, reward, batch_size=4, max_new_tokens=5)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=3e-2, baseline="rloo",
                                                           num_samples_per_prompt=2, kl_coef=0.01))
    first = trainer.step()
    assert abs(first["kl"]) < 1e-5
    trainer.train(70, progress=False)
    before = np.mean([h["reward_mean"] for h in trainer.history[:5]])
    after = np.mean([h["reward_mean"] for h in trainer.history[-5:]])
    assert before < 0.25 and after > 0.5, (before, after)
    path = trainer.export(str(tmp_path / "t5_policy"))
    ids, mask = agent.encode_prompts(SOURCES)
    live = agent.generate(ids, mask, 5, greedy=True).completion_ids.numpy()
    code = ("import sys, json, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
            "ids, mask = (tf.constant(json.loads(a), tf.int32) for a in sys.argv[2:4]); "
            "print(json.dumps(m.generate(ids, mask)['sequences'].numpy().tolist()))")
    proc = subprocess.run([sys.executable, "-c", code, path, json.dumps(ids.tolist()), json.dumps(mask.tolist())],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_array_equal(np.array(json.loads(proc.stdout.strip().splitlines()[-1])), live)


def test_loaded_bart_policy_pads_sources_on_the_right_like_the_live_agent(tokenizer, tmp_path):
    """BART's positions are absolute: a reloaded policy must pad sources as the agent does."""
    import tf_rl_text
    from tf_rl_text.export import export_policy

    agent = RLAgent(make_tiny_bart(tokenizer, seed=3), tokenizer, seed=0)
    path = export_policy(agent, str(tmp_path / "bart"), max_new_tokens=5)
    loaded = tf_rl_text.load(path)
    assert loaded.metadata["padding_side"] == "right"
    live = agent.generate_text(SOURCES, max_new_tokens=5, greedy=True)
    assert loaded.generate(SOURCES) == live
    loaded.metadata["padding_side"] = "left"  # this model is sensitive to it: the check above can fail
    assert loaded.generate(SOURCES) != live


def test_ppo_trains_a_seq2seq_policy_with_a_value_head_on_decoder_states(tokenizer, tmp_path):
    from tf_rl_text.trainers.actor_critic import PPOConfig, PPOTrainer

    agent = RLAgent(make_tiny_t5(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(SOURCES, tokenizer, lambda c, p, r: [len(x) / 10 for x in c], batch_size=2,
                            max_new_tokens=4)
    trainer = PPOTrainer(agent, env, PPOConfig(num_samples_per_prompt=2, kl_coef=0.05, learning_rate=1e-3))
    before = [w.copy() for w in agent.model.get_weights()]
    first = trainer.step()
    assert abs(first["kl"]) < 1e-5 and np.isfinite(first["value_loss"]) and first["value_loss"] > 0
    trainer.step()
    ids, mask = agent.encode_prompts(SOURCES)
    gen = agent.generate(ids, mask, 4, greedy=True)
    _, values = agent.completion_logits_and_values(ids, mask, gen.completion_ids, gen.completion_mask)
    assert values.shape == (2, 4) and np.abs(values.numpy()).max() > 0  # the critic reads decoder states
    assert any(not np.allclose(a, b) for a, b in zip(before, agent.model.get_weights()))
    # exported: values over the completion tokens, equal to the live critic's
    loaded = tf.saved_model.load(trainer.export(str(tmp_path / "ppo_t5")))
    out = loaded.signatures["values"](input_ids=tf.constant(ids), attention_mask=tf.constant(mask),
                                      completion_ids=gen.completion_ids, completion_mask=gen.completion_mask)
    live = values.numpy() * gen.completion_mask.numpy()
    np.testing.assert_allclose(out["values"].numpy(), live, atol=1e-5)


def test_every_trainer_trains_a_bart_policy_whose_code_needs_autograph(tokenizer, tmp_path):
    """BART's decoder branches in Python on tensor shapes (``if input_shape[-1] > 1``): its compiled
    functions must be traced with AutoGraph (GPT-2's and T5's skip it, for speed)."""
    from tf_rl_text import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer, QLearningConfig, QLearningTrainer
    from tf_rl_text.trainers.mle import fit_pairs

    agent = RLAgent(make_tiny_bart(tokenizer, seed=3), tokenizer, seed=0)
    assert agent.autograph and not RLAgent(make_tiny_t5(tokenizer), tokenizer).autograph
    env = TextGenerationEnv(SOURCES, tokenizer, lambda c, p, r: [len(x) / 10 for x in c], batch_size=2,
                            max_new_tokens=4)
    losses = fit_pairs(agent, SOURCES, ["a good one", "yes"], steps=3, progress=False)
    assert losses[-1] < losses[0]
    trainers = [ReinforceTrainer(agent, env, ReinforceConfig(num_samples_per_prompt=2, kl_coef=0.05)),
                PPOTrainer(agent, env, PPOConfig(num_samples_per_prompt=2, num_minibatches=1)),
                A2CTrainer(agent, env, A2CConfig(num_samples_per_prompt=2)),
                QLearningTrainer(agent, env, QLearningConfig(batch_size=2))]
    for trainer in trainers:
        before = [w.copy() for w in agent.model.get_weights()]
        stats = trainer.step()
        assert np.isfinite(stats["loss"]), type(trainer).__name__
        assert any(not np.allclose(a, b) for a, b in zip(before, agent.model.get_weights())), type(trainer).__name__
    loaded = tf.saved_model.load(trainers[0].export(str(tmp_path / "bart_reinforce")))
    ids, mask = agent.encode_prompts(SOURCES)
    gen = agent.generate(ids, mask, 4, greedy=True)
    np.testing.assert_array_equal(loaded.generate(ids, mask)["sequences"].numpy(), gen.completion_ids.numpy())
    live = agent.log_probs(ids, mask, gen.completion_ids, gen.completion_mask).numpy()
    np.testing.assert_allclose(loaded.log_probs(ids, mask, gen.completion_ids, gen.completion_mask)["log_probs"].numpy(),
                               live, atol=1e-5)


def test_a_marian_policy_trains(tokenizer):
    """Marian (the README lists it): cached generation equals recomputation and a REINFORCE step trains it."""
    from transformers import MarianConfig, TFMarianMTModel

    tf.keras.utils.set_random_seed(0)
    model = TFMarianMTModel(MarianConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, init_std=0.2))
    model(model.dummy_inputs, training=False)
    agent = recording_agent(model, tokenizer, seed=0)
    ids, mask = agent.encode_prompts(SOURCES)
    agent.start_recording(batch=2, steps=5)
    gen = agent.generate(ids, mask, 4, greedy=True)
    for row, text in enumerate(SOURCES):
        expected = greedy_by_recomputation(model, tokenizer(text)["input_ids"], agent.decoder_start_token_id, 4)
        k = int(gen.completion_mask[row].numpy().sum())
        assert gen.completion_ids[row].numpy().tolist()[:k] == expected[:k]
    # per-step logits, not only ids (the greedy tokens of this tiny model repeat): the decoder's KV cache
    assert assert_cached_logits_equal_recomputation(agent, model, SOURCES, gen, agent.recorded()) >= 6
    env = TextGenerationEnv(SOURCES, tokenizer, lambda c, p, r: [len(x) / 10 for x in c], batch_size=2,
                            max_new_tokens=4)
    before = [w.copy() for w in model.get_weights()]
    agent = RLAgent(model, tokenizer, seed=0)  # a plain agent (the recording one records batches of 2 only)
    stats = ReinforceTrainer(agent, env, ReinforceConfig(num_samples_per_prompt=2, kl_coef=0.05)).step()
    assert abs(stats["kl"]) < 1e-5 and np.isfinite(stats["loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_the_family_adapter_is_chosen_where_the_model_is_classified_and_exports_record_it(tokenizer, tmp_path):
    import tf_rl_text
    from tf_rl_text.adapters import CAUSAL_LM, ENCODER_DECODER
    from tf_rl_text.cli import ExportedAgent

    causal, seq2seq = RLAgent(make_tiny_model(tokenizer), tokenizer), RLAgent(make_tiny_t5(tokenizer), tokenizer)
    assert causal.family is CAUSAL_LM and seq2seq.family is ENCODER_DECODER
    assert (causal.padding_side, seq2seq.padding_side) == ("left", "right")
    assert (causal.is_encoder_decoder, seq2seq.is_encoder_decoder) == (False, True)
    # a causal LM shares its context between prompt and completion; an encoder-decoder does not
    assert (causal.family.tokens_needed(10, 6), seq2seq.family.tokens_needed(10, 6)) == (16, 10)
    assert (causal.family.prompt_room(64, 10), seq2seq.family.prompt_room(64, 10)) == (54, 64)
    loaded = tf_rl_text.load(tf_rl_text.export_policy(seq2seq, str(tmp_path / "t5"), max_new_tokens=4))
    assert loaded.metadata["encoder_decoder"] is True and ExportedAgent(loaded).family is ENCODER_DECODER
