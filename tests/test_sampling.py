"""Sampling controls (top-p, repetition penalty, min_new_tokens, stop tokens) against hand-built distributions."""
import numpy as np
import pytest

from conftest import make_tiny_model
from tf_rl_text import RLAgent, TextGenerationEnv, export_policy, sampling
from tf_rl_text._compat import tf

A, B = 7, 9  # the two favoured tokens of the hand-built distributions below


def test_top_p_keeps_the_smallest_nucleus_in_vocabulary_order():
    probs = np.array([[0.15, 0.5, 0.05, 0.3]], np.float32)  # sorted: 0.5 (id 1), 0.3 (id 3), 0.15 (id 0), 0.05
    logits = tf.math.log(probs)
    kept = lambda p: (sampling.top_p_filter(logits, p).numpy() > sampling.BANNED / 2)[0].tolist()  # noqa: E731
    assert kept(0.5) == [False, True, False, False]  # 0.5 alone reaches 0.5
    assert kept(0.7) == [False, True, False, True]  # 0.5 + 0.3 = 0.8 >= 0.7
    assert kept(0.81) == [True, True, False, True]  # 0.8 < 0.81: one more
    assert kept(1.0) == [True] * 4
    renormalised = tf.nn.softmax(sampling.top_p_filter(logits, 0.7)).numpy()[0]
    np.testing.assert_allclose(renormalised, [0, 0.625, 0, 0.375], atol=1e-6)


def test_repetition_penalty_seen_tokens_and_banning_by_hand():
    logits = tf.constant([[2.0, -1.0, 0.5, 3.0]])
    seen = tf.constant([[True, True, False, False]])
    np.testing.assert_allclose(sampling.repetition_penalty(logits, seen, 2.0).numpy(), [[1.0, -2.0, 0.5, 3.0]])
    ids, mask = tf.constant([[0, 3, 3], [2, 1, 0]]), tf.constant([[0, 1, 1], [1, 1, 1]])
    assert sampling.seen_tokens(ids, mask, 5).numpy().tolist() == [[False, False, False, True, False],
                                                                   [True, True, True, False, False]]
    banned = sampling.ban_tokens(logits, tf.constant([3, 0, 99]), tf.constant([True])).numpy()  # 99: out of range
    np.testing.assert_array_equal(banned, [[sampling.BANNED, -1.0, 0.5, sampling.BANNED]])


class FixedAgent(RLAgent):
    """pi(. | s) = a fixed hand-built distribution, whatever the state (the model only sets shapes)."""

    fixed = None  # (V,) logits, a tf.Variable: assigning new ones needs no retrace

    def process_logits(self, logits):
        return tf.zeros_like(logits) + tf.cast(self.fixed, logits.dtype)


def fixed_agent(tokenizer, model, logits, **kwargs):
    agent = FixedAgent(model, tokenizer, seed=0, **kwargs)
    agent.fixed = tf.Variable(logits, trainable=False)
    return agent


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_tiny_model(tokenizer)


def nucleus_logits(vocab):
    logits = np.full(vocab, -30.0, np.float32)  # every other token ~ 1e-13
    logits[[A, B, 11, 12]] = np.log([0.5, 0.3, 0.15, 0.05])
    return logits


def test_sampled_token_frequencies_follow_the_renormalised_nucleus(tokenizer, model):
    agent = fixed_agent(tokenizer, model, nucleus_logits(len(tokenizer)))
    ids, mask = agent.encode_prompts(["the"] * 4000)
    first = agent.generate(ids, mask, max_new_tokens=1, seed=1, top_p=0.7).completion_ids.numpy()[:, 0]
    freq = {t: np.mean(first == t) for t in (A, B, 11, 12)}
    assert abs(freq[A] - 0.625) < 0.03 and abs(freq[B] - 0.375) < 0.03 and freq[11] == freq[12] == 0, freq
    full = agent.generate(ids, mask, max_new_tokens=1, seed=1).completion_ids.numpy()[:, 0]
    assert abs(np.mean(full == 11) - 0.15) < 0.03  # without top-p the tail is sampled
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        agent.generate(ids, mask, 1, top_p=0.0)


def test_repetition_penalty_min_new_tokens_and_stop_tokens_in_the_loop(tokenizer, model):
    vocab = len(tokenizer)
    prompt = "the movie"
    assert not {A, B, tokenizer.eos_token_id} & set(tokenizer(prompt)["input_ids"])
    logits = np.zeros(vocab, np.float32)
    logits[[A, B]] = [3.0, 2.5]
    agent = fixed_agent(tokenizer, model, logits)
    ids, mask = agent.encode_prompts([prompt])
    greedy = lambda **kw: agent.generate(ids, mask, 4, greedy=True, **kw)  # noqa: E731
    assert greedy().completion_ids.numpy()[0].tolist() == [A, A, A, A]
    # A seen: 3 / 2 = 1.5 < 2.5 -> B; then both seen (the penalty does not compound): 1.5 > 1.25 -> A, A
    assert greedy(repetition_penalty=2.0).completion_ids.numpy()[0].tolist() == [A, B, A, A]
    stopped = greedy(stop_token_ids=[A])
    assert stopped.completion_ids.numpy()[0].tolist() == [A] + [agent.pad_token_id] * 3
    assert stopped.completion_mask.numpy()[0].tolist() == [1, 0, 0, 0]
    late = greedy(stop_token_ids=[A], min_new_tokens=2)  # A banned for 2 steps: B, B, then A stops
    assert late.completion_ids.numpy()[0].tolist()[:3] == [B, B, A] and late.completion_mask.numpy().sum() == 3
    eos_first = logits.copy()
    eos_first[tokenizer.eos_token_id] = 5.0
    agent.fixed.assign(eos_first)
    assert greedy().completion_mask.numpy().sum() == 1  # EOS at once
    gen = agent.generate(ids, mask, 5, seed=0, min_new_tokens=3, temperature=0.1)
    assert gen.completion_mask.numpy().sum() == 4  # 3 tokens that are not EOS, then EOS
    assert gen.completion_ids.numpy()[0, 3] == tokenizer.eos_token_id
    assert tokenizer.eos_token_id not in gen.completion_ids.numpy()[0, :3]
    env = TextGenerationEnv([prompt], tokenizer, lambda c, p, r: [0.0] * len(c), batch_size=3, max_new_tokens=5,
                            sampling={"min_new_tokens": 2, "temperature": 0.1})
    rollout = env.rollout(agent)
    assert rollout.completion_mask.sum(axis=1).tolist() == [3, 3, 3]
    assert env.rollout(agent, min_new_tokens=0).completion_mask.sum(axis=1).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="unknown sampling setting"):
        env.rollout(agent, nucleus=0.9)


def test_export_sample_takes_the_controls_and_keeps_its_old_form(tokenizer, model, tmp_path):
    agent = fixed_agent(tokenizer, model, nucleus_logits(len(tokenizer)))
    path = export_policy(agent, str(tmp_path / "policy"), max_new_tokens=4, extra_objects={"fixed": agent.fixed})
    loaded = tf.saved_model.load(path)
    assert "sample_controls" in loaded.signatures
    ids, mask = agent.encode_prompts(["the movie", "my day was"] * 20)
    ids, mask = tf.constant(ids), tf.constant(mask)
    seed = tf.constant([5, 0])
    old = loaded.sample(ids, mask, seed, tf.constant(1.0))["sequences"].numpy()
    np.testing.assert_array_equal(old, agent.generate(ids, mask, 4, seed=5).completion_ids.numpy())
    controlled = loaded.sample(ids, mask, seed, tf.constant(1.0), tf.constant(0.7), tf.constant(1.3), tf.constant(2),
                               tf.constant([B]))
    live = agent.generate(ids, mask, 4, seed=5, top_p=0.7, repetition_penalty=1.3, min_new_tokens=2,
                          stop_token_ids=[B])
    np.testing.assert_array_equal(controlled["sequences"].numpy(), live.completion_ids.numpy())
    np.testing.assert_array_equal(controlled["completion_mask"].numpy(), live.completion_mask.numpy())
    ids_out = live.completion_ids.numpy()
    assert B not in ids_out[:, :2] and (ids_out[:, 2:] == B).any()  # the stop token: banned for 2 tokens, then ends rows
    assert not np.array_equal(ids_out, old)
