"""ops.py against hand-computed numbers."""
import numpy as np
import pytest

from tf_rl_text import ops
from tf_rl_text._compat import tf


def test_masked_mean_and_sum():
    v = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    m = tf.constant([[1, 1, 0], [1, 0, 0]])
    assert float(ops.masked_sum(v, m)) == pytest.approx(7.0)
    assert float(ops.masked_mean(v, m)) == pytest.approx(7.0 / 3)
    np.testing.assert_allclose(ops.masked_mean(v, m, axis=1).numpy(), [1.5, 4.0])
    assert float(ops.masked_mean(v, tf.zeros_like(m))) == 0.0  # empty mask: 0, not NaN


def test_masked_whiten():
    v = tf.constant([[1.0, 3.0, 100.0]])
    m = tf.constant([[1, 1, 0]])
    w = ops.masked_whiten(v, m).numpy()
    np.testing.assert_allclose(w, [[-1.0, 1.0, 0.0]], atol=1e-4)


def test_last_token_rewards_puts_reward_on_last_real_token():
    r = tf.constant([2.0, -1.0, 5.0])
    m = tf.constant([[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    out = ops.last_token_rewards(r, m).numpy()
    np.testing.assert_allclose(out, [[0, 0, 2.0], [-1.0, 0, 0], [0, 0, 0]])


def test_discounted_returns_hand_computed():
    r = tf.constant([[1.0, 0.0, 2.0], [0.0, 3.0, 7.0]])
    m = tf.constant([[1, 1, 1], [1, 1, 0]])  # row 2: the 7.0 is padding and must not count
    g = ops.discounted_returns(r, m, gamma=0.5).numpy()
    # row 1: G2 = 2, G1 = 0 + .5*2 = 1, G0 = 1 + .5*1 = 1.5 ; row 2: G1 = 3, G0 = 1.5, G2 = 0 (pad)
    np.testing.assert_allclose(g, [[1.5, 1.0, 2.0], [1.5, 3.0, 0.0]])


def test_kl_penalty_estimators():
    # log ratios d = logp - ref: +0.5, -1.0 and -0.25 (negative where the policy gives the token less
    # probability than the reference: there "kl" and "abs" differ), then a padded token
    logp = tf.constant([[-1.0, -2.0, -0.75, -3.0]])
    ref = tf.constant([[-1.5, -1.0, -0.5, -1.0]])
    m = tf.constant([[1, 1, 1, 0]])
    d = np.array([0.5, -1.0, -0.25])
    np.testing.assert_allclose(ops.kl_penalty(logp, ref, m, "kl").numpy(), [[0.5, -1.0, -0.25, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(ops.kl_penalty(logp, ref, m, "abs").numpy(), [[0.5, 1.0, 0.25, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(ops.kl_penalty(logp, ref, m, "mse").numpy(), [[0.125, 0.5, 0.03125, 0.0]], rtol=1e-6)
    # k3 = exp(-d) - 1 + d: exp(-.5) - .5 = .1065, e - 2 = .7183, exp(.25) - 1.25 = .0340; never negative
    np.testing.assert_allclose(ops.kl_penalty(logp, ref, m, "low_var").numpy(),
                               [list(np.exp(-d) - 1 + d) + [0.0]], rtol=1e-5)
    assert np.exp(1.0) - 2 == pytest.approx(0.7183, abs=1e-4)
    with pytest.raises(ValueError, match="kind must be one of"):
        ops.kl_penalty(logp, ref, m, "bogus")


def test_leave_one_out_baseline():
    r = tf.constant([1.0, 2.0, 6.0, 0.0, 4.0, 8.0])  # two groups of k=3
    b = ops.leave_one_out_baseline(r, 3).numpy()
    np.testing.assert_allclose(b, [4.0, 3.5, 1.5, 6.0, 4.0, 2.0])
    with pytest.raises(ValueError, match="k >= 2"):
        ops.leave_one_out_baseline(r, 1)


def test_group_normalized_advantages():
    r = tf.constant([1.0, 3.0, 5.0, 5.0])
    a = ops.group_normalized_advantages(r, 2).numpy()
    np.testing.assert_allclose(a[:2], [-1.0 / (1 + 1e-4), 1.0 / (1 + 1e-4)], rtol=1e-6)
    np.testing.assert_allclose(a[2:], [0.0, 0.0])  # a group with equal rewards: no signal, no NaN


def test_label_smoothed_nll_by_hand():
    # p = (1/2, 1/4, 1/4): -log p = (ln 2, ln 4, ln 4); target token 1
    logits = tf.math.log(tf.constant([[[0.5, 0.25, 0.25]]]))
    eps = 0.1
    expected = (1 - eps) * np.log(4) + eps * (np.log(2) + 2 * np.log(4)) / 3
    assert float(ops.label_smoothed_nll(logits, tf.constant([[1]]), eps)[0, 0]) == pytest.approx(expected, abs=1e-6)
    assert float(ops.label_smoothed_nll(logits, tf.constant([[1]]), 0.0)[0, 0]) == pytest.approx(np.log(4), abs=1e-6)


def test_gather_log_probs_and_entropy():
    logits = tf.math.log(tf.constant([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]]))
    lp = ops.gather_log_probs(logits, tf.constant([[0, 2]])).numpy()
    np.testing.assert_allclose(lp, np.log([[0.5, 0.8]]), rtol=1e-6)
    h = ops.entropy_from_logits(logits).numpy()
    np.testing.assert_allclose(h[0, 0], -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25)), rtol=1e-6)
