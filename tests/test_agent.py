"""RLAgent: cached generation equals full recomputation, left padding, log-probs, hooks."""
import numpy as np
import pytest

from conftest import (assert_cached_logits_equal_recomputation, make_spread_gpt2, make_tiny_model,
                      make_word_tokenizer, recording_agent)
from tf_rl_text import RLAgent, ops
from tf_rl_text._compat import tf


def greedy_by_recomputation(model, ids, n):
    """Greedy decoding with no cache and no padding: the reference the fast path must match."""
    seq = list(ids)
    for _ in range(n):
        logits = model(tf.constant([seq]), training=False).logits[0, -1]
        seq.append(int(tf.argmax(logits)))
    return seq[len(ids):]


def test_cached_generation_with_left_padding_equals_full_recomputation(tokenizer):
    """The KV-cached, left-padded decode loop gives, at every step, the logits of an uncached forward pass
    over the unpadded prompt + tokens so far (greedy and sampled), on a model whose output varies."""
    model = make_spread_gpt2(tokenizer)
    agent = recording_agent(model, tokenizer, seed=0)
    prompts = ["the movie was", "i really enjoyed the long"]  # different lengths: row 0 is left padded
    ids, mask = agent.encode_prompts(prompts)
    assert mask[0, 0] == 0 and mask[1, 0] == 1
    agent.start_recording(batch=2, steps=7)
    gen = agent.generate(ids, mask, max_new_tokens=6, greedy=True)
    for row, text in enumerate(prompts):
        expected = greedy_by_recomputation(model, tokenizer(text)["input_ids"], 6)
        got = gen.completion_ids[row].numpy().tolist()
        m = gen.completion_mask[row].numpy()
        assert got[: int(m.sum())] == expected[: int(m.sum())]
        assert len(set(got)) >= 3, got  # the output varies: a stuck position would change the tokens too
    assert assert_cached_logits_equal_recomputation(agent, model, prompts, gen, agent.recorded()) == 12
    agent.start_recording(batch=2, steps=7)
    sampled = agent.generate(ids, mask, max_new_tokens=6, seed=5)
    assert not np.array_equal(sampled.completion_ids.numpy(), gen.completion_ids.numpy())
    assert assert_cached_logits_equal_recomputation(agent, model, prompts, sampled, agent.recorded()) >= 8


def word_agent(model_seed=0, initializer_range=0.1, **kwargs):
    """An agent over a 6-word vocabulary (<eos> <pad> a b c x) whose first-token probabilities spread
    over all six (0.07 to 0.32 for the prompt "x" at model_seed 0)."""
    tokenizer = make_word_tokenizer()
    model = make_spread_gpt2(tokenizer, seed=model_seed, initializer_range=initializer_range, n_positions=16)
    return RLAgent(model, tokenizer, seed=0, **kwargs)


def test_sampling_is_reproducible_and_masks_after_eos():
    agent = word_agent(model_seed=1)  # P(EOS) ~ 0.16 a step: rows end at different steps
    eos, pad = agent.eos_token_id, agent.pad_token_id
    ids, mask = agent.encode_prompts(["x"] * 16)
    a = agent.generate(ids, mask, 10, seed=7)
    b = agent.generate(ids, mask, 10, seed=7)
    np.testing.assert_array_equal(a.completion_ids.numpy(), b.completion_ids.numpy())
    c = agent.generate(ids, mask, 10, seed=8)
    assert not np.array_equal(a.completion_ids.numpy(), c.completion_ids.numpy())
    ended = 0
    for row, m in zip(a.completion_ids.numpy(), a.completion_mask.numpy()):
        hits = np.flatnonzero(row == eos)
        n = int(hits[0]) + 1 if hits.size else 10  # the EOS itself is a generated token (mask 1)
        np.testing.assert_array_equal(m, [1] * n + [0] * (10 - n))
        assert (row[n:] == pad).all()
        ended += n < 10
    assert 4 <= ended < 16, ended  # rows did end early (and at different steps): the EOS logic ran
def test_generation_traces_once_for_any_batch_prompt_length_or_token_count(tokenizer, tiny_model):
    agent = RLAgent(tiny_model, tokenizer, seed=0)
    for prompts, n in [(["a"], 3), (["the movie was", "b", "c"], 5), (["my day was long"] * 2, 2)]:
        ids, mask = agent.encode_prompts(prompts)
        agent.generate(ids, mask, n, greedy=False)
    assert agent.generate_fn(greedy=False).experimental_get_tracing_count() == 1


def test_log_probs_match_a_manual_softmax(tokenizer, tiny_model):
    agent = RLAgent(tiny_model, tokenizer, temperature=2.0)
    ids, mask = agent.encode_prompts(["the movie", "my day was"])
    comp = tf.constant([[264, 263, 0], [267, 1, 1]])
    cmask = tf.constant([[1, 1, 1], [1, 0, 0]])
    lp = agent.log_probs(ids, mask, comp, cmask).numpy()
    # manual, row 1 without padding: logits of prompt + first completion token
    row = tokenizer("my day was")["input_ids"] + [267]
    logits = tiny_model(tf.constant([row]), training=False).logits[0, -2].numpy() / 2.0
    manual = logits[267] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    assert lp[1, 0] == pytest.approx(manual, abs=1e-4)
    assert lp[1, 1] == 0 and lp[1, 2] == 0
    seq = agent.sequence_log_probs(tf.concat([ids, comp], 1), tf.concat([mask, cmask], 1)).numpy()
    np.testing.assert_allclose(seq[:, ids.shape[1] - 1:], lp, atol=1e-5)


def test_top_k_restricts_sampling_to_the_k_most_likely(tokenizer, tiny_model):
    agent = RLAgent(tiny_model, tokenizer, top_k=3, seed=0)
    logits = tf.constant([[0.0, 5.0, 4.0, 3.0, 1.0, -1.0]])
    samples = agent.action_distribution(logits).sample(200, seed=(1, 2)).numpy()
    assert set(np.unique(samples)) <= {1, 2, 3}


# --------------------------------------------------------------------------- temperature and top-k, compiled
ROWS = 4000  # first-token frequencies over 4000 rows: standard error <= 0.008 per token


def first_token_frequencies(completion_ids, vocab):
    return np.bincount(np.asarray(completion_ids)[:, 0], minlength=vocab) / len(completion_ids)


def hand_distribution(logits, temperature, top_k):
    """softmax(logits / T) over the top_k largest logits (all when top_k = 0), by hand in NumPy."""
    z = np.asarray(logits, np.float64) / temperature
    keep = np.argsort(-z)[:top_k] if top_k else np.arange(len(z))
    p = np.zeros_like(z)
    p[keep] = np.exp(z[keep] - z[keep].max())
    return p / p.sum()


def test_compiled_decode_loop_samples_softmax_of_logits_over_temperature_within_the_top_k():
    """The rollout loop (RLAgent.generate) samples the first token from softmax(logits / T) restricted
    to the top_k logits: for T and top_k passed to generate(), and for the agent's own defaults."""
    model_agent = word_agent(initializer_range=0.1)
    model, tokenizer = model_agent.model, model_agent.tokenizer
    ids, mask = model_agent.encode_prompts(["x"] * ROWS)
    logits = model(tf.constant(ids[:1]), training=False).logits[0, -1].numpy()
    untouched = hand_distribution(logits, 1.0, 0)
    cases = [(RLAgent(model, tokenizer, seed=0), dict(temperature=0.4)),
             (RLAgent(model, tokenizer, seed=0), dict(temperature=2.5, top_k=3)),
             (RLAgent(model, tokenizer, temperature=0.4, top_k=2, seed=0), {})]
    for agent, kwargs in cases:
        temperature, top_k = kwargs.get("temperature", agent.temperature), kwargs.get("top_k", agent.top_k)
        want = hand_distribution(logits, temperature, top_k)
        assert np.abs(want - untouched).max() > 0.1  # a loop that ignored T and top_k would be caught
        gen = agent.generate(ids, mask, max_new_tokens=1, seed=11, **kwargs)
        got = first_token_frequencies(gen.completion_ids.numpy(), agent.vocab_size)
        np.testing.assert_allclose(got, want, atol=0.035, err_msg=f"T={temperature}, top_k={top_k}")
        if top_k:
            assert got[want == 0].sum() == 0  # never a token outside the top k


def test_exported_sample_signature_uses_its_temperature_and_the_agents_top_k(tmp_path):
    from tf_rl_text.export import export_policy

    agent = word_agent(initializer_range=0.1, top_k=3)
    path = export_policy(agent, str(tmp_path / "policy"), max_new_tokens=1)
    loaded = tf.saved_model.load(path)
    ids, mask = agent.encode_prompts(["x"] * ROWS)
    logits = agent.model(tf.constant(ids[:1]), training=False).logits[0, -1].numpy()
    for temperature in (0.4, 2.5):
        want = hand_distribution(logits, temperature, 3)
        out = loaded.sample(tf.constant(ids), tf.constant(mask), tf.constant([5, 0]), tf.constant(temperature))
        got = first_token_frequencies(out["sequences"].numpy(), agent.vocab_size)
        np.testing.assert_allclose(got, want, atol=0.035, err_msg=f"exported sample, temperature={temperature}")
    assert np.abs(hand_distribution(logits, 0.4, 3) - hand_distribution(logits, 2.5, 3)).max() > 0.1


class BanTokenAgent(RLAgent):
    """A user's subclass: forbid one token everywhere via the process_logits hook."""

    banned = 264

    def process_logits(self, logits):
        return logits + tf.one_hot(self.banned, self.vocab_size, on_value=-1e9, dtype=logits.dtype)


def test_subclass_hook_changes_sampling_and_scoring(tokenizer):
    model = make_tiny_model(tokenizer)
    base, banned = RLAgent(model, tokenizer, seed=0), BanTokenAgent(model, tokenizer, seed=0)
    ids, mask = base.encode_prompts(["the movie was"])
    gen = banned.generate(np.repeat(ids, 16, 0), np.repeat(mask, 16, 0), 8, seed=3)
    assert BanTokenAgent.banned not in gen.completion_ids.numpy()
    comp, cmask = tf.constant([[264]]), tf.constant([[1]])
    assert banned.log_probs(ids, mask, comp, cmask).numpy()[0, 0] < -1e8
    assert base.log_probs(ids, mask, comp, cmask).numpy()[0, 0] > -20


def test_bad_arguments_are_named(tokenizer, tiny_model):
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        RLAgent(tiny_model, tokenizer, temperature=0)
    with pytest.raises(ValueError, match="top_k must be an integer >= 0"):
        RLAgent(tiny_model, tokenizer, top_k=-1)
    with pytest.raises(TypeError, match="Hugging Face TF model"):
        RLAgent(object(), tokenizer)
    agent = RLAgent(tiny_model, tokenizer)
    ids, mask = agent.encode_prompts(["the movie"])
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got 0"):
        agent.generate(ids, mask, 0)
    with pytest.raises(ValueError, match="exceeds the model's context of 64 tokens"):
        agent.generate(ids, mask, 100)


def test_entropy_matches_distribution(tokenizer, tiny_model):
    agent = RLAgent(tiny_model, tokenizer)
    logits = tf.random.stateless_normal([2, agent.vocab_size], seed=(1, 1))
    np.testing.assert_allclose(ops.entropy_from_logits(logits).numpy(),
                               agent.action_distribution(logits).entropy().numpy(), rtol=1e-5)


def test_fast_gpt2_head_gives_hf_logits_and_gradients(tokenizer, tiny_model):
    """causal_lm's 2-D LM head (GPT-2) equals HF's own head: logits, a position slice, gradients."""
    agent = RLAgent(tiny_model, tokenizer, seed=0)
    ids, mask = agent.encode_prompts(["the movie was", "i really enjoyed the long"])
    ids, mask = tf.constant(ids), tf.constant(mask)
    positions = tf.maximum(tf.cumsum(mask, axis=-1) - 1, 0)
    with tf.GradientTape(persistent=True) as tape:
        hf = tiny_model(input_ids=ids, attention_mask=mask, position_ids=positions, training=False).logits
        ours = agent.causal_lm(ids, mask).logits
        hf_loss = tf.reduce_sum(tf.sin(hf[:, 2:-1]))
        our_loss = tf.reduce_sum(tf.sin(agent.causal_lm(ids, mask, logits_at=slice(2, -1)).logits))
    np.testing.assert_allclose(ours.numpy(), hf.numpy(), atol=1e-5)
    np.testing.assert_allclose(our_loss.numpy(), hf_loss.numpy(), rtol=1e-5)
    variables = tiny_model.trainable_variables
    for g_hf, g_ours in zip(tape.gradient(hf_loss, variables), tape.gradient(our_loss, variables)):
        g_hf, g_ours = tf.convert_to_tensor(g_hf).numpy(), tf.convert_to_tensor(g_ours).numpy()
        np.testing.assert_allclose(g_ours, g_hf, atol=1e-4 * max(1.0, np.abs(g_hf).max()))


def test_generation_shards_keep_greedy_output_and_sample_reproducibly(tokenizer, tiny_model):
    """Sharded decoding (one row group per core): same greedy tokens, any batch size, seeded samples."""
    plain = RLAgent(tiny_model, tokenizer, seed=0, generation_shards=1)
    sharded = RLAgent(tiny_model, tokenizer, seed=0, generation_shards=3)
    prompts = ["the movie was", "i really enjoyed the long", "a", "my day", "the food was cold and"]
    ids, mask = plain.encode_prompts(prompts)  # 5 rows over 3 shards: the last shard is padded
    want = plain.generate(ids, mask, 7, greedy=True)
    got = sharded.generate(ids, mask, 7, greedy=True)
    np.testing.assert_array_equal(got.completion_ids.numpy(), want.completion_ids.numpy())
    np.testing.assert_array_equal(got.completion_mask.numpy(), want.completion_mask.numpy())
    a = sharded.generate(ids, mask, 7, seed=3)
    b = sharded.generate(ids, mask, 7, seed=3)
    assert a.completion_ids.shape == (5, 7)
    np.testing.assert_array_equal(a.completion_ids.numpy(), b.completion_ids.numpy())
    one = sharded.generate(ids[:1], mask[:1], 4, greedy=True)  # fewer rows than shards
    np.testing.assert_array_equal(one.completion_ids.numpy(), want.completion_ids.numpy()[:1, :4])
    assert sharded.generate_fn(greedy=True).experimental_get_tracing_count() == 1
    with pytest.raises(ValueError, match="generation_shards"):
        RLAgent(tiny_model, tokenizer, generation_shards=0)


def test_use_cores_sets_one_thread_per_op_and_shards_generation():
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        "import tf_rl_text as t; from tf_rl_text.cpu import use_cores; assert use_cores(2) == 2\n"
        "from tf_rl_text._compat import tf\n"
        "th = tf.config.threading\n"
        "assert (th.get_intra_op_parallelism_threads(), th.get_inter_op_parallelism_threads()) == (1, 2)\n"
        "tok = t.default_tokenizer(); agent = t.RLAgent(t.default_model(tok, n_layer=1, n_embd=32, n_head=2), tok)\n"
        "assert agent.generation_shards == 2, agent.generation_shards\n"
        "try:\n    use_cores(3)\nexcept RuntimeError as e:\n    assert 'before TensorFlow executes' in str(e)\n"
        "else:\n    raise SystemExit('no error after TF started')\n"
        "print('ok')"
    )
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


def test_autograph_is_skipped_for_gpt2_and_changes_no_output(tokenizer, tiny_model):
    """GPT-2's code is plain graph code: its functions trace without AutoGraph by default, and
    tracing with it (``autograph=True``, the default for unlisted model families) gives the same numbers."""
    plain = RLAgent(tiny_model, tokenizer, seed=0)
    converted = RLAgent(tiny_model, tokenizer, seed=0, autograph=True)
    assert plain.autograph is False and converted.autograph is True
    ids, mask = plain.encode_prompts(["the movie was", "i really enjoyed the long"])
    a, b = (ag.generate(ids, mask, 5, seed=3) for ag in (plain, converted))
    np.testing.assert_array_equal(a.completion_ids.numpy(), b.completion_ids.numpy())
    lp = [ag.compile_fn(ag.log_probs)(ids, mask, a.completion_ids, a.completion_mask) for ag in (plain, converted)]
    np.testing.assert_allclose(lp[0].numpy(), lp[1].numpy(), atol=1e-6)


def _tiny_causal(kind, tokenizer):
    import transformers as tr

    v = len(tokenizer)
    tf.keras.utils.set_random_seed(0)
    if kind == "opt":
        model = tr.TFOPTForCausalLM(tr.OPTConfig(
            vocab_size=v, hidden_size=32, num_hidden_layers=1, ffn_dim=64, num_attention_heads=2,
            max_position_embeddings=64, word_embed_proj_dim=32, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, init_std=0.2))
    elif kind == "gptj":
        model = tr.TFGPTJForCausalLM(tr.GPTJConfig(vocab_size=v, n_embd=32, n_layer=1, n_head=2, rotary_dim=8,
                                                   n_positions=64, initializer_range=0.2))
    else:
        model = tr.TFXGLMForCausalLM(tr.XGLMConfig(vocab_size=v, d_model=32, num_layers=1, attention_heads=2,
                                                   ffn_dim=64, max_position_embeddings=64))
    model(model.dummy_inputs, training=False)
    return model


@pytest.mark.parametrize("kind", ["opt", "gptj"])
def test_other_causal_families_generate_like_recomputation_and_train(tokenizer, kind):
    """OPT and GPT-J (traced with AutoGraph): cached, left-padded generation equals recomputation, and REINFORCE trains."""
    from tf_rl_text import ReinforceConfig, ReinforceTrainer, TextGenerationEnv

    model = _tiny_causal(kind, tokenizer)
    agent = recording_agent(model, tokenizer, seed=0)
    assert agent.autograph
    prompts = ["the movie was", "i really enjoyed the long"]
    ids, mask = agent.encode_prompts(prompts)
    assert mask[0, 0] == 0  # row 0 is left padded
    agent.start_recording(batch=2, steps=6)
    gen = agent.generate(ids, mask, max_new_tokens=5, greedy=True)
    for row, text in enumerate(prompts):
        expected = greedy_by_recomputation(model, tokenizer(text)["input_ids"], 5)
        n = int(gen.completion_mask[row].numpy().sum())
        assert gen.completion_ids[row].numpy().tolist()[:n] == expected[:n]
    # per-step logits, not only ids: this OPT repeats one token per row, GPT-J's output varies
    assert assert_cached_logits_equal_recomputation(agent, model, prompts, gen, agent.recorded()) == 10
    env = TextGenerationEnv(prompts, tokenizer, lambda c, p, r: [len(x) / 10 for x in c], batch_size=2, max_new_tokens=4)
    agent = RLAgent(model, tokenizer, seed=0)  # a plain agent (the recording one records batches of 2 only)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(num_samples_per_prompt=2, kl_coef=0.05))
    before = [w.copy() for w in model.get_weights()]
    stats = trainer.step()
    assert abs(stats["kl"]) < 1e-5 and np.isfinite(stats["loss"])
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))


def test_a_model_that_needs_a_static_cache_length_recomputes_or_gets_a_clear_error(tokenizer):
    """XGLM's TF code needs a static cache length: "auto" recomputes the sequence for each token
    (the greedy tokens of unpadded recomputation); forcing its own cache is a clear error."""
    model = _tiny_causal("xglm", tokenizer)
    agent = RLAgent(model, tokenizer, seed=0)
    assert agent.generation_cache == "none"
    prompts = ["the movie was", "i really enjoyed the long"]
    ids, mask = agent.encode_prompts(prompts)
    gen = agent.generate(ids, mask, max_new_tokens=3, greedy=True)
    for row, text in enumerate(prompts):
        n = int(gen.completion_mask[row].numpy().sum())
        expected = greedy_by_recomputation(model, tokenizer(text)["input_ids"], 3)[:n]
        assert gen.completion_ids[row].numpy().tolist()[:n] == expected
    forced = RLAgent(model, tokenizer, seed=0, generation_cache="model")
    with pytest.raises(TypeError, match=r"TFXGLMForCausalLM cannot run in RLAgent's compiled generation loop.*"
                                        r"generation_cache='none'"):
        forced.generate_text(["the movie was"], max_new_tokens=3)
