"""The serving-only export: no train_step, no optimizer slots, smaller, same tokens as the full
export; the saved tokenizer reloads with the padding side the model needs."""
import os

import numpy as np
import pytest

import tf_rl_text
from conftest import make_tiny_model
from tf_rl_text import ReinforceConfig, ReinforceTrainer, RLAgent, TextGenerationEnv
from tf_rl_text.rewards import TokenFrequencyReward

PROMPTS = ["the movie was", "my day", "i really enjoyed the"]


def _size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, tokenizer):
    agent = RLAgent(make_tiny_model(tokenizer), tokenizer, seed=0)
    env = TextGenerationEnv(PROMPTS, tokenizer, TokenFrequencyReward(tokenizer, 264), batch_size=3, max_new_tokens=6)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(learning_rate=1e-2, baseline="none"))
    trainer.train(2, progress=False)  # Adam slots now hold non-zero moments
    root = tmp_path_factory.mktemp("serving")
    full = trainer.export(str(root / "full"))
    serving = trainer.export(str(root / "serving"), serving_only=True)
    return agent, full, serving


def test_serving_only_export_is_smaller_and_gives_the_same_tokens(exports):
    agent, full, serving = exports
    full_size, serving_size = _size(os.path.join(full, "variables")), _size(os.path.join(serving, "variables"))
    # Adam keeps two slots per weight: the full export's variables are ~3x the serving ones
    assert serving_size < 0.45 * full_size, (serving_size, full_size)
    a, b = tf_rl_text.load(full), tf_rl_text.load(serving)
    assert b.metadata["serving_only"] is True and a.metadata["serving_only"] is False
    assert "train_step" not in b.metadata["signatures"] and "train_step" in a.metadata["signatures"]
    assert not hasattr(b.module, "train_step") and not hasattr(b.module, "optimizer")
    assert hasattr(a.module, "train_step")
    greedy = b.generate(PROMPTS)
    assert greedy == a.generate(PROMPTS) == agent.generate_text(PROMPTS, max_new_tokens=6, greedy=True)
    assert b.generate(PROMPTS, greedy=False, seed=3) == a.generate(PROMPTS, greedy=False, seed=3)
    for va, vb in zip(a.module.model_variables, b.module.model_variables):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_saved_tokenizer_reloads_left_padded_for_a_causal_model(exports):
    from transformers import AutoTokenizer

    agent, full, serving = exports
    assert agent.padding_side == "left"
    for path in (full, serving):
        tok = AutoTokenizer.from_pretrained(os.path.join(path, "assets", "tokenizer"))
        assert tok.padding_side == "left"
        batch = tok(["the movie was", "my day"], padding=True)
        assert batch["attention_mask"][1][0] == 0 and batch["attention_mask"][1][-1] == 1  # pads on the left
