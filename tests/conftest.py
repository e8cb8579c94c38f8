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


def make_tiny_t5(tokenizer, seed=0):
    """A 1+1-layer, 32-wide T5 over the embedded tokenizer (encoder-decoder)."""
    from transformers import T5Config, TFT5ForConditionalGeneration

    from tf_rl_text._compat import tf

    config = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
                      num_heads=2, dropout_rate=0.0, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    tf.keras.utils.set_random_seed(seed)  # python, numpy and TF generators: the same weights in every process
    model = TFT5ForConditionalGeneration(config)
    model(model.dummy_inputs, training=False)
    return model


def make_tiny_bart(tokenizer, seed=0):
    """A 1+1-layer, 32-wide BART (learned absolute positions: checks right-padded sources)."""
    from transformers import BartConfig, TFBartForConditionalGeneration

    from tf_rl_text._compat import tf

    config = BartConfig(vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=64, dropout=0.0, pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                        decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None)
    tf.keras.utils.set_random_seed(seed)  # python, numpy and TF generators: the same weights in every process
    model = TFBartForConditionalGeneration(config)
    model(model.dummy_inputs, training=False)
    return model


def pytest_configure(config):
    """Deterministic TF kernels, so fixed-seed training tests replay the same numbers."""
    from tf_rl_text._compat import tf

    tf.config.experimental.enable_op_determinism()


def make_tiny_mistral(tokenizer, seed=0, layers=2):
    """A 2-layer, 32-wide TFMistralForCausalLM (the Llama architecture: RoPE, grouped-query attention
    with 4 query heads over 2 key/value heads, RMSNorm, SwiGLU), weights wide enough that outputs vary."""
    from transformers import MistralConfig, TFMistralForCausalLM

    from tf_rl_text._compat import tf

    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                           initializer_range=0.2, sliding_window=None, tie_word_embeddings=False,
                           pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id,
                           eos_token_id=tokenizer.eos_token_id)
    tf.keras.utils.set_random_seed(seed)
    model = TFMistralForCausalLM(config)
    model(model.dummy_inputs, training=False)
    return model
