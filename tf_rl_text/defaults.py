"""The embedded default: a small corpus, prompts and tokenizer that ship in the package, and
small models built to fit a tokenizer, so that examples and tests run offline with nothing to
download.

* the corpus, prompts and sentiment lexicon (:func:`load_corpus`, :func:`load_prompts`,
  :func:`load_lexicon`) and their byte-level BPE tokenizer (:func:`default_tokenizer`);
* :func:`default_model`, a small GPT-2 sized to a tokenizer;
* for the task examples (translation, summarization, dialogue): :func:`train_tokenizer` (a BPE
  tokenizer trained on given texts in seconds) and :func:`default_seq2seq_model` (a small T5 or
  BART). Their embedded data is :func:`tf_rl_text.data.task_data_path`'s.

The corpus (``tf_rl_text/default_data/``, written by the repository's ``tools/make_corpus.py``)
was written for this project: short everyday review-like sentences, about half upbeat and half
gloomy, which makes "steer the model toward upbeat text" a task the reward can show.
"""
from __future__ import annotations

import os

from tf_rl_text._compat import keras

__all__ = ["default_model", "default_tokenizer", "load_corpus", "load_prompts", "load_lexicon", "DATA_DIR",
           "train_tokenizer", "default_seq2seq_model"]

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_data")


def _lines(name):
    with open(os.path.join(DATA_DIR, name), encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def load_corpus():
    """The embedded training sentences (list of str)."""
    return _lines("corpus.txt")


def load_prompts():
    """The embedded prompts: short sentence beginnings (list of str)."""
    return _lines("prompts.txt")


def load_lexicon():
    """(positive_words, negative_words) of the embedded corpus, as sets."""
    return set(_lines("positive_words.txt")), set(_lines("negative_words.txt"))


def default_tokenizer():
    """The embedded byte-level BPE tokenizer (vocabulary 512, EOS ``<|endoftext|>``, pad ``<pad>``)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(DATA_DIR, "tokenizer.json"),
        eos_token="<|endoftext|>", bos_token="<|endoftext|>", unk_token="<|endoftext|>", pad_token="<pad>",
        model_max_length=64,
    )


def default_model(tokenizer=None, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_positions: int = 64,
                  seed: int = 0):
    """A small randomly initialised ``TFGPT2LMHeadModel`` sized to the tokenizer (no dropout)."""
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tokenizer = tokenizer or default_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    keras.utils.set_random_seed(seed)  # Keras' unseeded initializers draw from Python's and NumPy's generators too
    model = TFGPT2LMHeadModel(config)
    model(model.dummy_inputs, training=False)
    return model


def train_tokenizer(texts, vocab_size: int = 2000, min_frequency: int = 2, model_max_length: int = 128,
                    lowercase: bool = False):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts`` (seconds, offline).

    Special tokens: ``<pad>`` = id 0 (also the T5 decoder start), ``</s>`` = id 1 (EOS, and BOS
    for causal LMs), ``<unk>`` = id 2. Byte-level: any text encodes, ``decode(encode(t))``
    gives ``t`` back (with ``lowercase=False``).

    Example::

        tok = train_tokenizer(["ein Hund läuft.", "a dog runs."], vocab_size=300)
        tok("a dog")["input_ids"]
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [t for t in texts if isinstance(t, str) and t]
    if not texts:
        raise ValueError("train_tokenizer needs at least one non-empty text, got none")
    if int(vocab_size) != vocab_size or vocab_size < 260:
        raise ValueError(f"vocab_size must be an integer >= 260 (256 bytes + 3 special tokens), got {vocab_size!r}")
    if int(min_frequency) != min_frequency or min_frequency < 1:
        raise ValueError(f"min_frequency must be an integer >= 1, got {min_frequency!r}")
    special = ["<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.BPE())
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=int(vocab_size), min_frequency=int(min_frequency), special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", bos_token="</s>",
                                   unk_token="<unk>", model_max_length=int(model_max_length))


def default_seq2seq_model(tokenizer, arch: str = "t5", d_model: int = 128, layers: int = 2, heads: int = 4,
                          d_ff: int | None = None, max_positions: int = 128, seed: int = 0, dropout: float = 0.0):
    """A small randomly initialised encoder-decoder sized to ``tokenizer``, with no dropout by default
    (``dropout``: the rate of T5's ``dropout_rate`` / BART's ``dropout``, active only in training calls).

    ``arch="t5"``: ``TFT5ForConditionalGeneration`` (relative positions, so left- or right-padded
    sources both work; decoder starts from the pad token). ``arch="bart"``:
    ``TFBartForConditionalGeneration`` (learned absolute positions up to ``max_positions``).
    ``layers`` encoder and ``layers`` decoder blocks of width ``d_model``, ``heads`` attention heads,
    feed-forward width ``d_ff`` (default 4 * d_model). Input and output embeddings are tied.

    Example::

        tok = train_tokenizer(texts, vocab_size=1000)
        model = default_seq2seq_model(tok, d_model=64, layers=1)
        agent = RLAgent(model, tok)          # agent.is_encoder_decoder == True
    """
    for name, value in (("d_model", d_model), ("layers", layers), ("heads", heads), ("max_positions", max_positions)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if d_model % heads:
        raise ValueError(f"d_model must be divisible by heads, got d_model={d_model}, heads={heads}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    d_ff = int(d_ff or 4 * d_model)
    common = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if arch == "t5":
        from transformers import T5Config, TFT5ForConditionalGeneration

        config = T5Config(d_model=d_model, d_kv=d_model // heads, d_ff=d_ff, num_layers=layers,
                          num_decoder_layers=layers, num_heads=heads, dropout_rate=float(dropout),
                          decoder_start_token_id=tokenizer.pad_token_id, n_positions=max_positions, **common)
        cls = TFT5ForConditionalGeneration
    elif arch == "bart":
        from transformers import BartConfig, TFBartForConditionalGeneration

        config = BartConfig(d_model=d_model, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads,
                            decoder_attention_heads=heads, encoder_ffn_dim=d_ff, decoder_ffn_dim=d_ff,
                            max_position_embeddings=max_positions, dropout=float(dropout), attention_dropout=0.0,
                            activation_dropout=0.0, bos_token_id=tokenizer.eos_token_id,
                            decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=None, **common)
        cls = TFBartForConditionalGeneration
    else:
        raise ValueError(f"arch must be 't5' or 'bart', got {arch!r}")
    keras.utils.set_random_seed(seed)
    model = cls(config)
    model(model.dummy_inputs, training=False)
    return model
