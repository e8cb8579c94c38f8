"""Maximum-likelihood warm starts: the corpus NLL falls; supervised pairs are learned by
causal and encoder-decoder agents alike."""
import pytest

from conftest import make_tiny_model, make_tiny_t5
from tf_rl_text import RLAgent, fit_pairs, warm_start

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
