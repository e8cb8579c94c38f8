"""Shared fixtures: the embedded tokenizer and tiny GPT-2 models (1 layer, width 32)."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tf_rl_text  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tf_rl_text.defaults import default_model, default_tokenizer  # noqa: E402

SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")


@pytest.fixture(scope="session")
def tokenizer():
    return default_tokenizer()


@pytest.fixture
def tiny_model(tokenizer):
    """A fresh 1-layer, 32-wide GPT-2 over the embedded tokenizer (seed 0)."""
    return default_model(tokenizer, n_layer=1, n_embd=32, n_head=2, seed=0)


def make_tiny_model(tokenizer, seed=0):
    return default_model(tokenizer, n_layer=1, n_embd=32, n_head=2, seed=seed)
