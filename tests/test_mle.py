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
