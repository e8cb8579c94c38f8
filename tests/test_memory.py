"""Memory-lean updates: recomputed activations give the same gradients; entropy only when used."""
import math

import numpy as np
import pytest

from conftest import make_tiny_model
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text._compat import tf
from tf_rl_text.recompute import recompute_blocks


def _grads(agent, ids, mask):
    comp = tf.constant([[5, 6, 7], [8, 9, 10]])

    @tf.function(autograph=False)
    def grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(agent.log_probs(ids, mask, comp, tf.ones_like(comp)))
        return tape.gradient(loss, agent.trainable_variables)

    return [tf.convert_to_tensor(g).numpy() for g in grads()]


def test_recomputed_blocks_give_the_same_gradients_and_tokens(tokenizer):
    plain = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    model = make_tiny_model(tokenizer)
    assert recompute_blocks(model) == 1 and recompute_blocks(model) == 1  # idempotent
    recomputed = RLAgent(model, tokenizer, seed=0)
    ids, mask = plain.encode_prompts(["the movie was", "i really enjoyed the long"])
    a, b = _grads(plain, ids, mask), _grads(recomputed, ids, mask)
    assert max(np.abs(x).max() for x in a) > 1e-3
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-6)
    np.testing.assert_array_equal(plain.generate(ids, mask, 4, greedy=True).completion_ids.numpy(),
                                  recomputed.generate(ids, mask, 4, greedy=True).completion_ids.numpy())
    with pytest.raises(ValueError, match="recompute_blocks supports model types"):
        recompute_blocks(type("M", (), {"config": type("C", (), {"model_type": "bert"})()})())


def test_entropy_is_computed_only_when_logged_or_used(tokenizer):
    env = TextGenerationEnv(["the movie was"], tokenizer, lambda c, p, r: [len(x) / 10 for x in c], batch_size=2,
                            max_new_tokens=4)
    stats = {}
    for log_entropy in (True, False):
        agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
        trainer = ReinforceTrainer(agent, env, ReinforceConfig(baseline="none", log_entropy=log_entropy))
        env._rng = np.random.RandomState(0)
        stats[log_entropy] = trainer.step()
    assert stats[True]["entropy"] > 1.0 and math.isnan(stats[False]["entropy"])
    assert stats[True]["loss"] == pytest.approx(stats[False]["loss"], abs=1e-6)  # logging changes no update
