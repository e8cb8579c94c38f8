"""Maximum-likelihood warm starts: the corpus NLL falls; supervised pairs are learned by
causal and encoder-decoder agents alike."""
import pytest

from conftest import make_tiny_model, make_tiny_t5
from tf_rl_text import RLAgent, warm_start
from tf_rl_text.trainers.mle import fit_pairs

PAIRS = [("the movie was", " great and fun."), ("my day was", " long and cold.")]


def test_warm_start_lowers_corpus_nll(tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer)
    losses = warm_start(agent, ["the soup was warm.", "the train was late."] * 4, steps=40, batch_size=4,
                        learning_rate=1e-2, progress=False)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("build", [make_tiny_model, make_tiny_t5])
def test_fit_pairs_teaches_targets_to_both_model_kinds(tokenizer, build):
    agent = RLAgent(build(tokenizer), tokenizer)
    prompts, targets = zip(*PAIRS)
    losses = fit_pairs(agent, prompts, targets, steps=80, batch_size=2, learning_rate=1e-2, progress=False)
    assert losses[-1] < 0.1 * losses[0]
    out = agent.generate_text(list(prompts), max_new_tokens=10, greedy=True)
    assert [o.strip() for o in out] == [t.strip() for t in targets]


def test_fit_pairs_label_smoothing_is_the_smoothed_cross_entropy_of_the_model(tokenizer):
    """The first update's loss is computed before it: with epsilon 0.1 it equals ops.label_smoothed_nll over
    the model's own logits of the batch, by hand; with 0 the plain NLL; and the targets are still learned."""
    import numpy as np

    from tf_rl_text import ops
    from tf_rl_text._compat import tf

    from tf_rl_text.tokens import encode_texts

    prompts, targets = zip(*PAIRS)
    pick = np.random.RandomState(0).randint(0, 2, size=2)  # fit_pairs' first batch (seed 0)
    firsts = {}
    for eps in (0.0, 0.1):
        agent = RLAgent(make_tiny_t5(tokenizer), tokenizer)
        p_ids, p_mask = agent.encode_prompts([prompts[i] for i in pick])
        t_ids, t_mask = encode_texts(tokenizer, [targets[i] for i in pick], 32)
        width = int(t_mask.sum(axis=1).max())
        t_ids, t_mask = t_ids[:, :width], t_mask[:, :width]
        logits = agent.completion_logits(tf.constant(p_ids), tf.constant(p_mask), tf.constant(t_ids), tf.constant(t_mask))
        per_token = ops.label_smoothed_nll(logits, tf.constant(t_ids), eps).numpy()
        by_hand = float((per_token * t_mask).sum() / t_mask.sum())
        losses = fit_pairs(agent, prompts, targets, steps=80, batch_size=2, learning_rate=1e-2, progress=False,
                           label_smoothing=eps)
        assert losses[0] == pytest.approx(by_hand, rel=1e-4), (eps, losses[0], by_hand)
        firsts[eps] = losses[0]
        out = agent.generate_text(list(prompts), max_new_tokens=10, greedy=True)
        assert [o.strip() for o in out] == [t.strip() for t in targets]
    assert firsts[0.1] != firsts[0.0]
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        fit_pairs(agent, prompts, targets, progress=False, label_smoothing=1.0)


def test_fit_pairs_rejects_bad_input(tokenizer, tiny_model):
    agent = RLAgent(tiny_model, tokenizer)
    with pytest.raises(ValueError, match="got 2 prompts and 1 targets"):
        fit_pairs(agent, ["a", "b"], ["c"], progress=False)
    with pytest.raises(ValueError, match=r"targets\[0\] must be a string"):
        fit_pairs(agent, ["a"], [["c", "d"]], progress=False)


def test_fit_pairs_callback_stops_early_and_a_passed_optimizer_keeps_its_state(tokenizer, tiny_model):
    from tf_rl_text._compat import keras

    agent = RLAgent(tiny_model, tokenizer)
    prompts, targets = zip(*PAIRS)
    seen = []
    optimizer = keras.optimizers.Adam(1e-2)
    losses = fit_pairs(agent, prompts, targets, steps=50, batch_size=2, progress=False, optimizer=optimizer,
                       callback=lambda step, loss, seconds: seen.append((step, loss, seconds)) or step == 3)
    assert len(losses) == 3 and [s for s, _, _ in seen] == [1, 2, 3] and [l for _, l, _ in seen] == losses
    assert 0 < seen[0][2] <= seen[1][2] <= seen[2][2]  # update seconds so far, rising
    fit_pairs(agent, prompts, targets, steps=2, batch_size=2, progress=False, optimizer=optimizer)
    assert int(optimizer.iterations) == 5  # the second call continued the same Adam state
    losses = fit_pairs(agent, prompts, targets, steps=10 ** 6, batch_size=2, progress=False, max_seconds=0.5)
    assert 1 <= len(losses) < 10 ** 6  # the time budget ended it
    with pytest.raises(ValueError, match=r"max_seconds must be > 0 \(or None: no time limit\), got 0"):
        fit_pairs(agent, prompts, targets, progress=False, max_seconds=0)
