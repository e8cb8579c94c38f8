"""Shared fixtures: the embedded tokenizer and tiny GPT-2 models (1 layer, width 32)."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import tf_rl_text  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tf_rl_text.defaults import default_model, default_tokenizer  # noqa: E402

# The real data: $TF_RL_TEXT_DATA if set, else ../shared/data beside the checkout (this repository's layout).
# Tests pass it to the loaders explicitly (data_dir=SHARED_DATA): the package itself guesses no folder.
SHARED_DATA = os.environ.get("TF_RL_TEXT_DATA") or os.path.join(os.path.dirname(REPO), "shared", "data")


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


WORDS = ["<eos>", "<pad>", "a", "b", "c", "x"]


def make_word_tokenizer():
    """A 6-word tokenizer (ids 0-5: <eos>, <pad>, a, b, c, x; whitespace-separated words): small enough
    that sampled token frequencies can be checked against a hand-built distribution."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<eos>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<eos>", pad_token="<pad>", model_max_length=16)


def make_spread_gpt2(tokenizer, seed=0, initializer_range=0.5, n_positions=64):
    """A 1-layer, 32-wide GPT-2 initialised with a large std (0.5, HF's default is 0.02): its logits
    spread over several nats and its greedy output changes from token to token, so tests that compare
    tokens or sampling frequencies can tell a right answer from a wrong one."""
    from transformers import GPT2Config, TFGPT2LMHeadModel

    from tf_rl_text._compat import tf

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=32, n_layer=1, n_head=2,
                        initializer_range=initializer_range, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    tf.keras.utils.set_random_seed(seed)
    model = TFGPT2LMHeadModel(config)
    model(model.dummy_inputs, training=False)
    return model


class LogitRecorder:
    """Mixin for an RLAgent subclass: ``process_logits`` (the documented hook, which the compiled decode
    loop calls on every step's (B, V) logits) also writes them into a tf.Variable, so a test can read the
    per-step logits of the cached generation loop. Call ``start_recording(batch, steps)`` before the
    first ``generate``; ``recorded()`` returns (calls, B, V): call 0 is the prefill (the first token's
    logits), call t the logits after t tokens went through the key/value cache."""

    _record = None

    def start_recording(self, batch, steps):
        from tf_rl_text._compat import tf

        if self._record is None:
            self._record = tf.Variable(tf.zeros([steps, batch, self.vocab_size]), trainable=False)
            self._calls = tf.Variable(0, trainable=False)
        self._record.assign(tf.zeros([steps, batch, self.vocab_size]))
        self._calls.assign(0)

    def recorded(self):
        return self._record.numpy()[: int(self._calls.numpy())]

    def process_logits(self, logits):
        logits = super().process_logits(logits)
        if self._record is None or logits.shape.rank != 2:  # scoring passes (B, T, V): not recorded
            return logits
        from tf_rl_text._compat import tf

        index = self._calls.assign_add(1) - 1
        write = self._record.scatter_nd_update(tf.reshape(index, [1, 1]), logits[None])
        with tf.control_dependencies([write]):
            return tf.identity(logits)


def recording_agent(model, tokenizer, **kwargs):
    """An RLAgent over ``model`` that records the per-step logits of its decode loop (see LogitRecorder)."""
    from tf_rl_text import RLAgent

    cls = type("RecordingAgent", (LogitRecorder, RLAgent), {})
    return cls(model, tokenizer, **kwargs)


def assert_cached_logits_equal_recomputation(agent, model, prompts, gen, recorded, atol=1e-4):
    """Every step's logits in the cached decode loop (``recorded``, from a LogitRecorder agent) equal the
    logits of one uncached, unpadded forward pass over prompt + the tokens generated so far: the prompt
    alone for a causal LM (prompt + completion read left to right), the source in the encoder and
    decoder_start + completion in the decoder for an encoder-decoder. Checked for every live token."""
    import numpy as np

    from tf_rl_text._compat import tf

    ids, masks = gen.completion_ids.numpy(), gen.completion_mask.numpy()
    checked = 0
    for row, text in enumerate(prompts):
        source = agent.tokenizer(text, add_special_tokens=False)["input_ids"]
        n = int(masks[row].sum())
        completion = ids[row, :n].tolist()
        if agent.is_encoder_decoder:
            logits = model(input_ids=tf.constant([source]), attention_mask=tf.ones([1, len(source)], tf.int32),
                           decoder_input_ids=tf.constant([[agent.decoder_start_token_id] + completion]),
                           training=False).logits[0, :n]
        else:
            logits = model(input_ids=tf.constant([source + completion]), training=False).logits[0]
            logits = logits[len(source) - 1: len(source) - 1 + n]
        np.testing.assert_allclose(recorded[:n, row], logits.numpy(), atol=atol,
                                   err_msg=f"row {row} ({text!r}): cached per-step logits != recomputation")
        checked += n
    return checked


def pytest_addoption(parser):
    parser.addoption("--reverse", action="store_true", default=False,
                     help="run the collected tests in reverse order (checks that tests do not depend on their order)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse"):
        items.reverse()


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
