"""RLAgent: a policy over a Hugging Face TF language model.

The agent is the article's ``RLAgent(model, tokenizer)``: it acts (samples the next token from
``pi(a | s)``, the model's softmax over the vocabulary, through a
``tfp.distributions.Categorical``), generates whole completions in one compiled graph with a
key/value cache, and scores completions (per-token log-probabilities) for the trainers.

Extend it by subclassing and overriding the documented hooks:

* :meth:`RLAgent.process_logits` - change the logits before sampling *and* scoring
  (ban tokens, add a bias); must accept any leading shape ``(..., vocab)``.
* :meth:`RLAgent.action_distribution` - the distribution actions are drawn from.
* :meth:`RLAgent.encode_prompts` / :meth:`RLAgent.decode_completions` - text <-> ids.

Example::

    from transformers import GPT2Config, TFGPT2LMHeadModel
    from tf_rl_text import RLAgent, default_tokenizer
    tokenizer = default_tokenizer()
    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2))
    agent = RLAgent(model, tokenizer)
    print(agent.generate_text(["the movie was"], max_new_tokens=8))           # greedy
    print(agent.generate_text(["the movie was"], max_new_tokens=8, seed=0))   # sampled (a sampling argument)

Greedy or sampled: ``generate``, ``generate_text`` and ``tf_rl_text.load(path).generate`` follow one
rule (:func:`resolve_greedy`): greedy by default; sampled with ``greedy=False`` or when any
sampling argument (``seed``, ``temperature``, ``top_k``) is given. ``greedy=True`` together with
``temperature`` or ``top_k`` is a ValueError, never a silent greedy decode.
"""
from __future__ import annotations

import collections
import math
import random
from typing import Sequence

import numpy as np

from tf_rl_text import ops, sampling
from tf_rl_text._compat import tf, tfp
from tf_rl_text.lora import AdaptersOff, adapters_off
from tf_rl_text.precision import cast_weight, copy_model, weights_cast_once

# Hugging Face TF model families (``config.model_type``) whose code traces as plain graph code:
# no Python branching on tensor values. Their tf.functions skip AutoGraph, whose conversion of
# HF's model code dominates the first trace (the quickstart's first warm-start step: 12 s -> 3 s).
# Other families (BART's and OPT's decoders, ...) branch in Python on tensor shapes and need it.
# Mistral's forward without a cache is plain graph code; with one, generation runs tf_rl_text/llama.py.
PLAIN_GRAPH_MODEL_TYPES = frozenset({"gpt2", "t5", "mistral"})

GENERATION_CACHES = ("auto", "model", "llama", "none")
"""The values of ``RLAgent(generation_cache=...)``."""
# causal LM families whose HF TF code needs the cache length as a static shape and that
# llama.py does not cover: "auto" recomputes the sequence for them
STATIC_CACHE_MODEL_TYPES = frozenset({"xglm"})

Generation = collections.namedtuple("Generation", ["completion_ids", "completion_mask"])
Generation.__doc__ = """Completions from :meth:`RLAgent.generate`.

completion_ids: (B, max_new_tokens) int32, ``pad_token_id`` after a row's end.
completion_mask: (B, max_new_tokens) int32, 1 on generated tokens (EOS included), 0 after.
"""


def _position_ids(attention_mask):
    """Positions that skip left padding: 0 for the first real token of each row."""
    return tf.maximum(tf.cumsum(attention_mask, axis=-1) - 1, 0)


def pad_token_ids(token_lists, pad_token_id, side="left", min_length=None):
    """Pad lists of token ids into (ids, mask) int32 arrays of width max(longest, min_length, 1).

    ``side="left"`` for causal LMs (the next token always follows the last column),
    ``"right"`` for encoder sources.
    """
    length = max([len(t) for t in token_lists] + [min_length or 0, 1])
    ids = np.full((len(token_lists), length), pad_token_id, dtype=np.int32)
    mask = np.zeros((len(token_lists), length), dtype=np.int32)
    for i, tokens in enumerate(token_lists):
        if tokens:
            cols = slice(0, len(tokens)) if side == "right" else slice(length - len(tokens), length)
            ids[i, cols], mask[i, cols] = tokens, 1
    return ids, mask


class _LMOutput(collections.namedtuple("_LMOutput", ["logits", "past_key_values", "hidden_states"])):
    """What :meth:`RLAgent.causal_lm` returns (the fields of HF's causal-LM output it uses)."""


def _tied_output_embeddings(model):
    """The (vocab, d) embedding matrix GPT-2's LM head multiplies by, or None for other models.

    HF's TF GPT-2 head is ``tf.matmul(hidden, [wte], transpose_b=True)``: a broadcast batched
    matmul that oneDNN runs 3-4x slower than one 2-D matmul on CPU (2.7 ms vs 0.7 ms per decode
    step at batch 64 in benchmarks/, and twice the backward time in training).
    """
    from transformers import TFGPT2LMHeadModel

    if isinstance(model, TFGPT2LMHeadModel):
        return model.transformer.wte.embeddings
    return None


def _float32(x):
    """Logits leave the model as float32 (a mixed-precision model computes them in bfloat16/float16)."""
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)


_NO_TOKENS = np.zeros([0], np.int32)


def _check_controls(top_p, repetition_penalty, min_new_tokens, stop_token_ids):
    """The sampling controls, validated: (top_p, repetition_penalty, min_new_tokens, stop_token_ids tuple)."""
    if top_p is None or not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 = no nucleus filtering), got {top_p!r}")
    if repetition_penalty is None or not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0 (1 = off, > 1 discourages repeats), got {repetition_penalty!r}")
    if min_new_tokens is None or int(min_new_tokens) != min_new_tokens or min_new_tokens < 0:
        raise ValueError(f"min_new_tokens must be an integer >= 0, got {min_new_tokens!r}")
    if isinstance(stop_token_ids, (int, np.integer)):
        stop_token_ids = [stop_token_ids]
    stops = tuple(int(t) for t in stop_token_ids)
    if any(t < 0 or t != s for t, s in zip(stops, stop_token_ids)):
        raise ValueError(f"stop_token_ids must be token ids >= 0, got {list(stop_token_ids)!r}")
    return float(top_p), float(repetition_penalty), int(min_new_tokens), stops


def _loose_shape(x):
    return tf.TensorShape([None] * x.shape.rank)


def check_sampling_args(temperature=None, top_k=None, max_new_tokens=None, max_allowed=None, seed=None):
    """Validate sampling arguments (None = not given); raise ValueError naming the value and the fix.

    temperature: a finite float > 0; top_k: an integer >= 0 (0 = no top-k filtering);
    max_new_tokens: an integer >= 1 and, when ``max_allowed`` is given, <= it; seed: an int32 integer.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or not -2**31 <= seed < 2**31):
        raise ValueError(f"seed must be an integer in [-2**31, 2**31), got {seed!r}")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)) \
                or not math.isfinite(temperature) or not temperature > 0:
            raise ValueError(f"temperature must be a finite number > 0 (1.0 = the model's own distribution, lower = "
                             f"sharper; for the most likely tokens use greedy decoding), got {temperature!r}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 = no top-k filtering), got {top_k!r}")
    if max_new_tokens is not None:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
            raise ValueError(f"max_new_tokens must be an integer (a number of tokens), got {max_new_tokens!r}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens!r}")
        if max_allowed is not None and max_new_tokens > max_allowed:
            raise ValueError(f"max_new_tokens must be <= {max_allowed} (the most this policy was exported to "
                             f"generate; export again with a larger max_new_tokens for longer outputs), "
                             f"got {max_new_tokens!r}")


def resolve_greedy(greedy, temperature=None, top_k=None, seed=None, top_p=None) -> bool:
    """The one greedy-vs-sampling rule of every text generation call in tf_rl_text.

    ``greedy=None`` (the default): greedy decoding, unless a sampling argument (``seed``,
    ``temperature``, ``top_k``, ``top_p``) is given, then sampling. ``greedy=False``: sampling.
    ``greedy=True``: greedy; passing ``temperature``, ``top_k`` or ``top_p`` with it is a ValueError
    (they would be ignored), a ``seed`` is accepted and has no effect. Also validates the arguments.
    """
    check_sampling_args(temperature, top_k, seed=seed)
    sampling_args = (("temperature", temperature), ("top_k", top_k), ("top_p", top_p))
    if greedy is None:
        return all(v is None for _, v in sampling_args) and seed is None
    if greedy and any(v is not None for _, v in sampling_args):
        given = ", ".join(f"{k}={v!r}" for k, v in sampling_args if v is not None)
        raise ValueError(f"{given} only applies to sampling, but greedy=True; pass greedy=False (or leave greedy "
                         f"unset) to sample, or drop {given.split('=')[0]} for greedy decoding")
    return bool(greedy)


def resolve_tokenizer(model, tokenizer=None):
    """``tokenizer``, or when None the one saved in the model's own folder (``config.name_or_path``, set by
    ``from_pretrained`` / ``save_pretrained``), loaded offline. A clear error says how to pass one otherwise."""
    if tokenizer is not None:
        return tokenizer
    config = getattr(model, "config", None)
    path = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None) or ""
    name = type(model).__name__
    how = (f"pass one: RLAgent(model, tokenizer), e.g. AutoTokenizer.from_pretrained(<the model's folder>), "
           f"or tf_rl_text.default_tokenizer() for the library's tiny default models")
    if not path:
        raise ValueError(f"RLAgent(model) found no tokenizer: this {name} was not loaded with from_pretrained "
                         f"(its config has no name_or_path); {how}")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(f"RLAgent(model) found no tokenizer for {name} in {path!r} ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else err}); {how}") from err


# heads that are neither a generator (causal LM, encoder-decoder) nor a sequence classifier
_UNFIT_SUFFIXES = ("ForMaskedLM", "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice",
                   "ForPreTraining", "ForNextSentencePrediction", "ForImageClassification")


def _check_model_family(model):
    """A clear error for a model the agent cannot act with (a bare encoder, a masked LM, a token tagger...)."""
    name = type(model).__name__
    bare = False
    try:
        from transformers.models.auto.modeling_tf_auto import TF_MODEL_MAPPING_NAMES

        bare = any(name == v or (isinstance(v, tuple) and name in v) for v in TF_MODEL_MAPPING_NAMES.values())
    except ImportError:  # pragma: no cover (older transformers)
        pass
    if bare or name.endswith(_UNFIT_SUFFIXES):
        raise TypeError(
            f"RLAgent cannot act with {name}: it has no head that generates tokens or scores choices. Fits: a causal "
            f"LM (TFAutoModelForCausalLM, e.g. TFGPT2LMHeadModel) or an encoder-decoder (TFAutoModelForSeq2SeqLM) to "
            f"generate text; a sequence classifier (TFAutoModelForSequenceClassification, e.g. "
            f"TFBertForSequenceClassification) to choose among candidates or labels")


class RLAgent:
    """A policy pi(a | s) over a Hugging Face TF language model.

    ``RLAgent(model)`` over a ``TF...ForSequenceClassification`` model returns a
    :class:`~tf_rl_text.choice.ChoiceAgent`, whose actions are choices among candidates or labels.

    Args:
      model: a causal LM (``TFAutoModelForCausalLM``; tested: GPT-2, GPT-J, OPT) or an
        encoder-decoder (``TFAutoModelForSeq2SeqLM``; tested: T5, BART, Marian). For
        encoder-decoders the prompt is the source: it is encoded once per rollout, and completions
        are decoder outputs. ``TFMistralForCausalLM`` (the Llama architecture) decodes with the
        agent's own key/value cache (see ``generation_cache``).
      tokenizer: its tokenizer. If it has no pad token, the EOS token is used for padding. None (default):
        loaded from the model's own folder (``from_pretrained`` / ``save_pretrained`` path).
      temperature: softmax temperature for sampling and for the log-probabilities trainers use.
      top_k: sample only among the k most likely tokens (0 = the whole vocabulary). Applied to
        sampling only; log-probabilities are of the temperature-scaled full softmax.
      top_p: sample only from the nucleus: the most likely tokens whose probability reaches
        ``top_p`` (Holtzman et al. 2020; 1.0 = off). Sampling only, like ``top_k``.
      repetition_penalty: CTRL's penalty on tokens already in the prompt or completion (Keskar et al.
        2019): their positive logits are divided by it, negative ones multiplied (1.0 = off). Applies
        to sampling and greedy decoding, not to the log-probabilities trainers score.
      min_new_tokens: EOS and the stop tokens are masked out until this many tokens are generated.
      stop_token_ids: token ids that end a completion like EOS (kept in it, mask 1; the rest is padding).
      seed: seed of the agent's random generator (sampling is reproducible for a fixed seed).
      generation_shards: split each generated batch into this many row groups, decoded as
        independent branches of one graph (with their own seeds), so each CPU core can run one
        with no cross-thread hand-offs: pair it with :func:`tf_rl_text.use_cores` (intra-op 1,
        inter-op = cores). ``None`` (default): the inter-op thread count when intra-op threads
        were set to 1, else 1. Greedy output does not depend on it; sampled output does.
      autograph: trace the compiled functions that run the model (rollouts, updates, export) with
        AutoGraph. ``None`` (default): off for model families known to be plain graph code
        (``PLAIN_GRAPH_MODEL_TYPES``: GPT-2, T5, Mistral), which traces several times faster; on for every
        other model, whose HF code may branch in Python on tensor shapes (BART, OPT, ...).
      generation_cache: how the compiled loop reuses past tokens. ``"model"``: the model's own
        ``past_key_values`` (GPT-2, GPT-J, OPT, T5, BART, Marian); ``"llama"``: the agent's own
        key/value cache for Llama-architecture decoders (``TFMistralForCausalLM``, whose TF code
        needs a static cache length; see :mod:`tf_rl_text.llama`); ``"none"``: no cache, the whole
        sequence is recomputed for every token (any causal LM, e.g. XGLM; quadratic cost).
        ``"auto"`` (default): ``"llama"`` for Mistral, ``"none"`` for other models known to need a
        static cache length (XGLM), else ``"model"``.
    """

    def __new__(cls, model=None, *args, **kwargs):
        """``RLAgent(classifier)`` is a :class:`~tf_rl_text.choice.ChoiceAgent` (actions = choices)."""
        if cls is RLAgent and model is not None:
            from tf_rl_text.choice import ChoiceAgent, is_sequence_classifier

            if is_sequence_classifier(model):
                return super().__new__(ChoiceAgent)
        return super().__new__(cls)

    def __init__(self, model, tokenizer=None, temperature: float = 1.0, top_k: int = 0, seed: int | None = None,
                 top_p: float = 1.0, repetition_penalty: float = 1.0, min_new_tokens: int = 0,
                 stop_token_ids: Sequence[int] = (),
                 generation_shards: int | None = None, autograph: bool | None = None,
                 generation_cache: str = "auto"):
        if temperature is None or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if top_k is None or int(top_k) != top_k or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 = no top-k filtering), got {top_k!r}")
        config = getattr(model, "config", None)
        if config is None or not hasattr(model, "call"):
            raise TypeError(
                f"model must be a Hugging Face TF model (e.g. TFAutoModelForCausalLM), got {type(model).__name__}"
            )
        _check_model_family(model)
        tokenizer = resolve_tokenizer(model, tokenizer)
        self.is_encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
        # Causal LMs read prompts left padded (the next token is always at the end); encoders
        # read sources right padded (learned absolute positions, as in BART, start at 0).
        self.padding_side = "right" if self.is_encoder_decoder else "left"
        self.model = model
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise ValueError("the tokenizer has neither a pad token nor an EOS token; set tokenizer.pad_token")
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_token_id = int(tokenizer.eos_token_id if tokenizer.eos_token_id is not None else -1)
        self.pad_token_id = int(tokenizer.pad_token_id)
        start = getattr(config, "decoder_start_token_id", None)
        self.decoder_start_token_id = int(start if start is not None else self.pad_token_id)
        self.vocab_size = int(config.vocab_size)
        try:
            tokenizer_size = len(tokenizer)
        except TypeError:  # not a Hugging Face tokenizer: nothing to compare
            tokenizer_size = None
        if tokenizer_size is not None and tokenizer_size > self.vocab_size:
            raise ValueError(
                f"the tokenizer has {tokenizer_size} tokens but the model's vocabulary has {self.vocab_size}: token ids "
                f">= {self.vocab_size} have no embedding. Use the tokenizer the model was trained with, or call "
                f"model.resize_token_embeddings({tokenizer_size}) first"
            )
        if top_k > self.vocab_size:
            raise ValueError(f"top_k={top_k} exceeds the model's vocabulary of {self.vocab_size} tokens; use "
                             f"0 < top_k <= {self.vocab_size}, or 0 for no top-k filtering")
        self.context_length = int(
            getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or 1024
        )
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p, self.repetition_penalty, self.min_new_tokens, self.stop_token_ids = _check_controls(
            top_p, repetition_penalty, min_new_tokens, stop_token_ids)
        if autograph is None:
            autograph = getattr(config, "model_type", None) not in PLAIN_GRAPH_MODEL_TYPES
        self.autograph = bool(autograph)
        if generation_shards is None:
            threading = tf.config.threading
            single = threading.get_intra_op_parallelism_threads() == 1
            generation_shards = max(1, threading.get_inter_op_parallelism_threads()) if single else 1
        if int(generation_shards) != generation_shards or generation_shards < 1:
            raise ValueError(f"generation_shards must be an integer >= 1, got {generation_shards!r}")
        self.generation_shards = int(generation_shards)
        self.generation_cache = self._pick_generation_cache(generation_cache)
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.rng = tf.random.Generator.from_seed(self.seed)
        if not model.built:
            model(model.dummy_inputs, training=False)
        self.reset_compiled()

    def _pick_generation_cache(self, choice):
        from tf_rl_text.llama import llama_parts

        if choice not in GENERATION_CACHES:
            raise ValueError(f"generation_cache must be one of {GENERATION_CACHES}, got {choice!r}")
        llama = llama_parts(self.model) is not None
        if choice == "auto":
            model_type = getattr(self.model.config, "model_type", None)
            choice = "llama" if llama else "none" if model_type in STATIC_CACHE_MODEL_TYPES else "model"
        if choice == "llama" and not llama:
            raise ValueError(f"generation_cache='llama' runs Llama-architecture decoders (TFMistralForCausalLM); "
                             f"{type(self.model).__name__} is not one: use 'model' or 'none'")
        if choice == "none" and self.is_encoder_decoder:
            raise ValueError("generation_cache='none' is for causal LMs; encoder-decoders use 'model'")
        return choice

    def compile_fn(self, fn, input_signature=None, **kwargs):
        """``tf.function(fn, input_signature, **kwargs)`` for code that runs this agent's model,
        with AutoGraph only if the model needs it (:attr:`autograph`). Trainers compile through here."""
        return tf.function(fn, input_signature=input_signature, autograph=self.autograph, **kwargs)

    def graph_code(self, fn):
        """``fn`` marked as plain graph code (AutoGraph leaves it alone) unless the model needs
        AutoGraph: for functions another ``tf.function`` will trace (the export's ``train_step``)."""
        return fn if self.autograph else tf.autograph.experimental.do_not_convert(fn)

    # ------------------------------------------------------------------ hooks
    def process_logits(self, logits):
        """Hook: transform raw logits ``(..., vocab)`` before sampling and scoring. Identity here."""
        return logits

    def action_distribution(self, logits, temperature=None, top_k=None):
        """Hook: the distribution pi(. | s) that actions are sampled from.

        logits: (B, vocab) processed logits. Returns a ``tfp.distributions.Categorical`` over
        ``logits / temperature``, restricted to the ``top_k`` most likely tokens when top_k > 0.
        """
        temperature = self.temperature if temperature is None else temperature
        top_k = self.top_k if top_k is None else top_k
        logits = logits / tf.cast(temperature, logits.dtype)
        if top_k and top_k < self.vocab_size:
            kth = tf.math.top_k(logits, k=top_k).values[:, -1:]  # (B, 1)
            logits = tf.where(logits < kth, tf.cast(-1e9, logits.dtype), logits)
        return tfp.distributions.Categorical(logits=logits, dtype=tf.int32)

    def encode_prompts(self, texts: Sequence[str], min_length: int | None = None):
        """Hook: tokenize prompts (sources) padded to the longest (at least ``min_length``).

        Left padded for causal LMs, right padded for encoder-decoders (``self.padding_side``).
        Returns (input_ids, attention_mask), int32 numpy arrays of shape (B, P).
        """
        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return pad_token_ids(encoded, self.pad_token_id, self.padding_side, min_length)

    def decode_completions(self, completion_ids, completion_mask=None):
        """Hook: completion ids (B, T) -> texts, dropping padding and special tokens."""
        completion_ids = np.asarray(completion_ids)
        if completion_mask is None:
            completion_mask = np.ones_like(completion_ids)
        completion_mask = np.asarray(completion_mask)
        return [
            self.tokenizer.decode(row[m.astype(bool)].tolist(), skip_special_tokens=True)
            for row, m in zip(completion_ids, completion_mask)
        ]

    # ------------------------------------------------------------------ scoring
    def causal_lm(self, input_ids, attention_mask, position_ids=None, past_key_values=None, use_cache=False,
                  output_hidden_states=False, training=False, model=None, logits_at=None):
        """One causal-LM forward: ``(logits, past_key_values, hidden_states)`` (raw logits).

        Every causal forward of the agent goes through here. ``logits_at`` (a slice of sequence
        positions) keeps only those positions' logits (the LM head runs only there). For GPT-2 the tied
        LM head is one 2-D matmul (see ``_tied_output_embeddings``); other models run as HF wrote them.
        """
        model = self.model if model is None else model
        if isinstance(model, AdaptersOff):  # the LoRA reference: the same model, adapters left out of the graph
            with adapters_off():
                return self.causal_lm(input_ids, attention_mask, position_ids, past_key_values, use_cache,
                                      output_hidden_states, training, model.model, logits_at)
        if position_ids is None:
            position_ids = _position_ids(attention_mask)
        embeddings = _tied_output_embeddings(model)
        if embeddings is None:
            out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                        past_key_values=past_key_values, use_cache=use_cache,
                        output_hidden_states=output_hidden_states, training=training)
            logits = out.logits if logits_at is None else out.logits[:, logits_at]
            return _LMOutput(_float32(logits), out.past_key_values if use_cache else None, getattr(out, "hidden_states", None))
        out = model.transformer(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                past_key_values=past_key_values, use_cache=use_cache,
                                output_hidden_states=output_hidden_states, training=training)
        hidden = out.last_hidden_state if logits_at is None else out.last_hidden_state[:, logits_at]
        shape = tf.shape(hidden)
        flat = tf.reshape(hidden, [-1, hidden.shape[-1]])
        logits = tf.matmul(flat, cast_weight(embeddings, flat.dtype), transpose_b=True)
        logits = tf.reshape(logits, tf.concat([shape[:-1], [tf.shape(embeddings)[0]]], axis=0))
        return _LMOutput(_float32(logits), out.past_key_values if use_cache else None, out.hidden_states)

    def token_logits(self, input_ids, attention_mask, training=False):
        """Processed logits for every position: (B, L, vocab); position t predicts token t+1. Causal LMs."""
        return self.process_logits(self.causal_lm(input_ids, attention_mask, training=training).logits)

    def completion_forward(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False,
                           model=None, output_hidden_states=False):
        """One forward pass over prompt + completion, read at the completion tokens.

        Returns (logits, hidden): the processed logits that scored each completion token
        (B, T, vocab), not temperature-scaled, and the last hidden states of the states that chose
        them (B, T, d) if ``output_hidden_states`` else None. ``model`` defaults to the agent's
        (pass the frozen reference to score under it). Causal LMs run on the concatenation;
        encoder-decoders encode the prompt and teacher-force the completion in the decoder.
        """
        model = self.model if model is None else model
        if isinstance(model, AdaptersOff):  # the LoRA reference: the same model, adapters left out of the graph
            with adapters_off():
                return self.completion_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, training,
                                               model.model, output_hidden_states)
        if self.is_encoder_decoder:
            batch = tf.shape(completion_ids)[0]
            start = tf.fill([batch, 1], self.decoder_start_token_id)
            decoder_ids = tf.concat([start, completion_ids[:, :-1]], axis=1)  # (B, T) shifted right
            decoder_mask = tf.concat([tf.ones([batch, 1], completion_mask.dtype), completion_mask[:, :-1]], axis=1)
            out = model(input_ids=prompt_ids, attention_mask=prompt_mask, decoder_input_ids=decoder_ids,
                        decoder_attention_mask=decoder_mask, output_hidden_states=output_hidden_states,
                        training=training)
            hidden = out.decoder_hidden_states[-1] if output_hidden_states else None
            return self.process_logits(_float32(out.logits)), hidden
        input_ids = tf.concat([prompt_ids, completion_ids], axis=1)  # (B, P+T)
        mask = tf.concat([prompt_mask, completion_mask], axis=1)
        start = tf.shape(prompt_ids)[1] - 1  # position P-1 predicts the first completion token
        out = self.causal_lm(input_ids, mask, output_hidden_states=output_hidden_states, training=training,
                             model=model, logits_at=slice(start, -1))
        hidden = out.hidden_states[-1][:, start:-1] if output_hidden_states else None
        return self.process_logits(out.logits), hidden  # (B, T, V), (B, T, d)

    def completion_logits(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False, model=None):
        """Temperature-scaled logits that scored each completion token: (B, T, vocab)."""
        logits, _ = self.completion_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, training, model)
        return logits / tf.cast(self.temperature, logits.dtype)

    def log_probs(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False, model=None):
        """log pi(a_t | s_t) of each completion token: (B, T) float32, 0 where the mask is 0.

        ``model``: score under another model of the same architecture (the frozen reference).
        """
        logits = self.completion_logits(prompt_ids, prompt_mask, completion_ids, completion_mask, training, model)
        return ops.gather_log_probs(logits, completion_ids) * tf.cast(completion_mask, logits.dtype)

    def sequence_log_probs(self, input_ids, attention_mask):
        """log-probability of tokens 1..L-1 of whole sequences given their prefix: (B, L-1). Causal LMs only."""
        if self.is_encoder_decoder:
            raise ValueError("sequence_log_probs is for causal LMs; use log_probs(source..., target...) for encoder-decoders")
        logits = self.token_logits(input_ids, attention_mask)[:, :-1]
        logits = logits / tf.cast(self.temperature, logits.dtype)
        return ops.gather_log_probs(logits, input_ids[:, 1:]) * tf.cast(attention_mask[:, 1:], logits.dtype)

    # ------------------------------------------------------------------ acting
    def _act_logits(self, input_ids, attention_mask):
        return self.process_logits(self.causal_lm(input_ids, attention_mask, logits_at=slice(-1, None)).logits[:, -1])

    def _act_logits_seq2seq(self, input_ids, attention_mask, decoder_ids, decoder_mask):
        batch = tf.shape(decoder_ids)[0]
        step = tf.reduce_max(tf.reduce_sum(decoder_mask, axis=1))  # tokens generated so far (live rows)
        start = tf.fill([batch, 1], self.decoder_start_token_id)
        decoder_ids = tf.concat([start, decoder_ids], axis=1)[:, : step + 1]
        decoder_mask = tf.concat([tf.ones([batch, 1], tf.int32), decoder_mask], axis=1)[:, : step + 1]
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_ids,
                         decoder_attention_mask=decoder_mask, training=False)
        return self.process_logits(_float32(out.logits[:, -1]))

    def act(self, time_step, greedy: bool = False):
        """One action (next token id) per row for a ``TextGenerationEnv`` time step: (B,) int32."""
        if "choice_mask" in time_step.observation:
            from tf_rl_text.choice import check_choice_agent

            check_choice_agent(self, "a ChoiceEnv time step")
        obs = {k: tf.constant(v, tf.int32) for k, v in time_step.observation.items()}
        if self.is_encoder_decoder:
            if "decoder_input_ids" not in obs:
                raise ValueError("an encoder-decoder agent needs TextGenerationEnv(..., encoder_decoder=True)")
            logits = self._act_fn_seq2seq(obs["input_ids"], obs["attention_mask"], obs["decoder_input_ids"],
                                          obs["decoder_attention_mask"])
        else:
            logits = self._act_fn(obs["input_ids"], obs["attention_mask"])
        if greedy:
            return tf.argmax(logits, axis=-1, output_type=tf.int32).numpy()
        return self.action_distribution(logits).sample(seed=self._next_seed()).numpy()

    def _next_seed(self):
        return tf.cast(self.rng.make_seeds(1)[:, 0], tf.int32)

    # ------------------------------------------------------------------ generation
    def _prefill(self, input_ids, attention_mask):
        """Generation, first step: read the prompt once. Returns (logits (B, V), cache state)."""
        if self.is_encoder_decoder:
            from transformers.modeling_tf_outputs import TFBaseModelOutput

            encoded = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask, training=False)
            hidden = encoded.last_hidden_state  # (B, P, d): computed once per rollout
            start = tf.fill([tf.shape(input_ids)[0], 1], self.decoder_start_token_id)
            out = self.model(input_ids=None, encoder_outputs=TFBaseModelOutput(last_hidden_state=hidden),
                             attention_mask=attention_mask,
                             decoder_input_ids=start, use_cache=True, training=False)
            state = {"past": out.past_key_values, "encoder": hidden, "mask": attention_mask}
            logits = out.logits[:, -1]
        elif self.generation_cache == "llama":
            from tf_rl_text.llama import llama_forward

            positions = _position_ids(attention_mask)
            logits, past = llama_forward(self.model, input_ids, attention_mask, positions)
            state = {"past": past, "mask": attention_mask, "position": positions[:, -1]}
        elif self.generation_cache == "none":  # no cache: the state is the sequence so far
            logits = self.causal_lm(input_ids, attention_mask, logits_at=slice(-1, None)).logits[:, -1]
            state = {"ids": input_ids, "mask": attention_mask}
        else:
            positions = _position_ids(attention_mask)
            out = self.causal_lm(input_ids, attention_mask, positions, use_cache=True, logits_at=slice(-1, None))
            state = {"past": out.past_key_values, "mask": attention_mask, "position": positions[:, -1]}
            logits = out.logits[:, -1]
        return self.process_logits(_float32(logits)), state

    def _advance(self, token, state):
        """Generation, later steps: feed one token (B,) through the cache. Returns (logits, state)."""
        if self.is_encoder_decoder:
            from transformers.modeling_tf_outputs import TFBaseModelOutput

            out = self.model(input_ids=None, encoder_outputs=TFBaseModelOutput(last_hidden_state=state["encoder"]),
                             attention_mask=state["mask"], decoder_input_ids=token[:, None],
                             past_key_values=state["past"], use_cache=True, training=False)
            state = dict(state, past=out.past_key_values)
            logits = out.logits[:, -1]
        elif self.generation_cache == "llama":
            from tf_rl_text.llama import llama_forward

            mask = tf.concat([state["mask"], tf.ones_like(token)[:, None]], axis=1)
            position = state["position"] + 1
            logits, past = llama_forward(self.model, token[:, None], mask, position[:, None], state["past"])
            state = {"past": past, "mask": mask, "position": position}
        elif self.generation_cache == "none":
            ids = tf.concat([state["ids"], token[:, None]], axis=1)
            mask = tf.concat([state["mask"], tf.ones_like(token)[:, None]], axis=1)
            logits = self.causal_lm(ids, mask, logits_at=slice(-1, None)).logits[:, -1]
            state = {"ids": ids, "mask": mask}
        else:
            mask = tf.concat([state["mask"], tf.ones_like(token)[:, None]], axis=1)
            position = state["position"] + 1
            out = self.causal_lm(token[:, None], mask, position[:, None], past_key_values=state["past"],
                                 use_cache=True)
            state = {"past": out.past_key_values, "mask": mask, "position": position}
            logits = out.logits[:, -1]
        return self.process_logits(_float32(logits)), state

    def _decode(self, input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy, top_k,
                nucleus=False, penalty=False):
        """The rollout loop: prefill once, then one cached decoder step per token."""
        with weights_cast_once(self.model):  # mixed precision: weights cast to bfloat16 once, not per token
            return self._decode_loop(input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy,
                                     top_k, nucleus, penalty)

    def _decode_loop(self, input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy, top_k,
                     nucleus, penalty):
        """``controls``: (top_p, repetition_penalty, min_new_tokens, stop_token_ids) tensors; ``nucleus`` and
        ``penalty`` (Python bools) say whether top-p and the repetition penalty are traced at all."""
        top_p, rep_penalty, min_new_tokens, stop_token_ids = controls
        batch = tf.shape(input_ids)[0]
        ends = tf.concat([[self.eos_token_id], tf.reshape(stop_token_ids, [-1])], axis=0)  # (S + 1,) end a row
        logits, state = self._prefill(input_ids, attention_mask)  # (B, V)
        finished = tf.zeros([batch], tf.bool)
        tokens = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
        masks = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
        seen = sampling.seen_tokens(input_ids, attention_mask, tf.shape(logits)[1]) if penalty else tf.zeros([0])

        def keep_going(t, logits, state, finished, tokens, masks, seen):
            return tf.logical_and(t < max_new_tokens, tf.logical_not(tf.reduce_all(finished)))

        def step(t, logits, state, finished, tokens, masks, seen):
            if penalty:
                logits = sampling.repetition_penalty(logits, seen, rep_penalty)
            logits = tf.cond(t < min_new_tokens, lambda: sampling.ban_tokens(logits, ends, True), lambda: logits)
            if greedy:
                token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            else:
                step_seed = tf.random.experimental.stateless_fold_in(seed, t)
                if nucleus:  # temperature and top-k here, so the nucleus is that of the distribution sampled
                    logits = logits / tf.cast(temperature, logits.dtype)
                    if top_k and top_k < self.vocab_size:
                        kth = tf.math.top_k(logits, k=top_k).values[:, -1:]  # (B, 1)
                        logits = tf.where(logits < kth, tf.cast(sampling.BANNED, logits.dtype), logits)
                    logits = sampling.top_p_filter(logits, top_p)
                    token = self.action_distribution(logits, 1.0, 0).sample(seed=step_seed)
                else:
                    token = self.action_distribution(logits, temperature, top_k).sample(seed=step_seed)
            token = tf.where(finished, self.pad_token_id, token)  # (B,)
            tokens = tokens.write(t, token)
            masks = masks.write(t, tf.cast(tf.logical_not(finished), tf.int32))
            finished = tf.logical_or(finished, tf.reduce_any(tf.equal(token[:, None], ends[None, :]), axis=1))
            if penalty:
                seen = sampling.mark_seen(seen, token)
            logits, state = self._advance(token, state)
            return t + 1, logits, state, finished, tokens, masks, seen

        # an explicit loop (no AutoGraph): the cache state grows by one position per token
        loop_vars = (tf.constant(0), logits, state, finished, tokens, masks, seen)
        invariants = (tf.TensorShape([]), tf.TensorShape([None, None]), tf.nest.map_structure(_loose_shape, state),
                      tf.TensorShape([None]), tf.TensorShape(None), tf.TensorShape(None), _loose_shape(seen))
        t, _, _, _, tokens, masks, _ = tf.while_loop(keep_going, step, loop_vars, shape_invariants=invariants)
        pad = max_new_tokens - t  # rows stopped early: pad to a fixed width
        completion_ids = tf.pad(tf.transpose(tokens.stack()), [[0, 0], [0, pad]], constant_values=self.pad_token_id)
        completion_mask = tf.pad(tf.transpose(masks.stack()), [[0, 0], [0, pad]])
        completion_ids = tf.reshape(completion_ids, [batch, max_new_tokens])
        completion_mask = tf.reshape(completion_mask, [batch, max_new_tokens])
        return completion_ids, completion_mask

    def _decode_sharded(self, decode, input_ids, attention_mask, max_new_tokens, seed, *rest):
        """``decode`` (the compiled :meth:`_decode`) on ``generation_shards`` row groups side by side.

        The batch is padded to a multiple of the shard count with copies of its last row (dropped
        again at the end), so every shard is non-empty; shard i samples with seed fold_in(seed, i).
        The shards are independent branches of one graph: each core can run one.
        """
        shards = self.generation_shards
        batch = tf.shape(input_ids)[0]
        per_shard = (batch + shards - 1) // shards
        rows = tf.concat([tf.range(batch), tf.fill([per_shard * shards - batch], batch - 1)], axis=0)
        ids, mask = tf.gather(input_ids, rows), tf.gather(attention_mask, rows)
        outs = [
            decode(ids[i * per_shard:(i + 1) * per_shard], mask[i * per_shard:(i + 1) * per_shard], max_new_tokens,
                   tf.random.experimental.stateless_fold_in(seed, i), *rest)
            for i in range(shards)
        ]
        completion_ids = tf.concat([o[0] for o in outs], axis=0)[:batch]
        completion_mask = tf.concat([o[1] for o in outs], axis=0)[:batch]
        return completion_ids, completion_mask

    def generate_fn(self, greedy: bool = False, top_k: int | None = None, nucleus: bool = False,
                    penalty: bool = False):
        """The compiled rollout ``f(input_ids, attention_mask, max_new_tokens, seed, temperature, top_p=1.0,
        repetition_penalty=1.0, min_new_tokens=0, stop_token_ids=[])``.

        ``nucleus`` / ``penalty``: trace top-p filtering / the repetition penalty (each step then sorts
        the vocabulary / tracks the tokens seen); without them ``top_p`` / ``repetition_penalty`` are
        ignored. Traced once per (greedy, top_k, nucleus, penalty) for any batch size, prompt length
        and token count.
        """
        top_k = self.top_k if top_k is None else int(top_k)
        key = (bool(greedy), top_k, bool(nucleus) and not greedy, bool(penalty))
        if key not in self._generate_fns:
            greedy, top_k, nucleus, penalty = key
            signature = [
                tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
                tf.TensorSpec([], tf.int32, name="max_new_tokens"),
                tf.TensorSpec([2], tf.int32, name="seed"),
                tf.TensorSpec([], tf.float32, name="temperature"),
                tf.TensorSpec([], tf.float32, name="top_p"),
                tf.TensorSpec([], tf.float32, name="repetition_penalty"),
                tf.TensorSpec([], tf.int32, name="min_new_tokens"),
                tf.TensorSpec([None], tf.int32, name="stop_token_ids"),
            ]

            def fn(input_ids, attention_mask, max_new_tokens, seed, temperature, top_p=1.0, repetition_penalty=1.0,
                   min_new_tokens=0, stop_token_ids=_NO_TOKENS):
                controls = (top_p, repetition_penalty, min_new_tokens, stop_token_ids)
                return self._decode(input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy,
                                    top_k, nucleus, penalty)

            if self.generation_shards > 1:  # one trace of the loop, called once per shard
                decode = self.compile_fn(fn, signature)

                def fn(input_ids, attention_mask, max_new_tokens, seed, temperature, top_p=1.0,  # noqa: F811
                       repetition_penalty=1.0, min_new_tokens=0, stop_token_ids=_NO_TOKENS):
                    return self._decode_sharded(decode, input_ids, attention_mask, max_new_tokens, seed, temperature,
                                                top_p, repetition_penalty, min_new_tokens, stop_token_ids)

            self._generate_fns[key] = self.compile_fn(fn, signature)
        return self._generate_fns[key]

    def generate(self, input_ids, attention_mask, max_new_tokens: int = 32, greedy: bool | None = None, seed=None,
                 temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                 repetition_penalty: float | None = None, min_new_tokens: int | None = None,
                 stop_token_ids: Sequence[int] | None = None) -> Generation:
        """Greedily decode (the default) or sample completions for padded prompts.

        input_ids, attention_mask: (B, P) int, padded as :meth:`encode_prompts` pads. Returns a
        :class:`Generation` of (B, max_new_tokens) tensors. Greedy or sampled by
        :func:`resolve_greedy`: greedy unless ``greedy=False`` or a sampling argument is given.
        Sampling: ``seed`` (int) makes it reproducible (by default the agent's generator supplies
        one); ``temperature`` (> 0) and ``top_k`` (>= 0) default to the agent's own.
        ``top_p``, ``repetition_penalty``, ``min_new_tokens`` and ``stop_token_ids`` override the
        agent's settings for this call (see the class docstring; greedy decoding uses all but top_p).
        """
        greedy = resolve_greedy(greedy, temperature, top_k, seed, top_p)
        check_sampling_args(max_new_tokens=max_new_tokens)
        input_ids = tf.convert_to_tensor(input_ids, tf.int32)
        attention_mask = tf.convert_to_tensor(attention_mask, tf.int32)
        total = int(max_new_tokens) if self.is_encoder_decoder else int(input_ids.shape[1]) + int(max_new_tokens)
        if total > self.context_length or int(input_ids.shape[1]) > self.context_length:
            raise ValueError(
                f"prompt length {input_ids.shape[1]} + max_new_tokens {max_new_tokens} = {total} exceeds the "
                f"model's context of {self.context_length} tokens; shorten prompts or lower max_new_tokens"
            )
        if top_k is not None and (int(top_k) != top_k or not 0 <= top_k <= self.vocab_size):
            raise ValueError(f"top_k must be an integer in [0, {self.vocab_size}] (the vocabulary size; 0 = no "
                             f"filtering), got {top_k!r}")
        seed = self._next_seed() if seed is None else tf.constant([int(seed), 0], tf.int32)
        temperature = self.temperature if temperature is None else float(temperature)
        if temperature is None or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        top_p, repetition_penalty, min_new_tokens, stop_token_ids = _check_controls(
            self.top_p if top_p is None else top_p,
            self.repetition_penalty if repetition_penalty is None else repetition_penalty,
            self.min_new_tokens if min_new_tokens is None else min_new_tokens,
            self.stop_token_ids if stop_token_ids is None else stop_token_ids)
        fn = self.generate_fn(greedy, top_k, nucleus=top_p < 1.0, penalty=repetition_penalty != 1.0)
        try:
            ids, mask = fn(input_ids, attention_mask, tf.constant(int(max_new_tokens), tf.int32), seed,
                           tf.constant(temperature, tf.float32), tf.constant(top_p, tf.float32),
                           tf.constant(repetition_penalty, tf.float32), tf.constant(min_new_tokens, tf.int32),
                           tf.constant(stop_token_ids, tf.int32, shape=[len(stop_token_ids)]))
        except TypeError as e:  # first trace of the loop failed inside the model's own code
            if fn.experimental_get_tracing_count() or "transformers/models/" not in str(e).replace("\\", "/"):
                raise
            causes = [line.strip() for line in str(e).splitlines()
                      if line.strip().startswith("TypeError:") and "Exception encountered" not in line]
            raise TypeError(
                f"{type(self.model).__name__} cannot run in RLAgent's compiled generation loop with its own "
                f"key/value cache: the cache grows by one position per token, so its length is not a static "
                f"shape, and this model's TF code needs it to be. Use RLAgent(..., generation_cache='none') "
                f"(recompute the sequence for each token; Mistral has generation_cache='llama'). The model's "
                f"error: {(causes or [e])[-1]}"
            ) from e
        return Generation(ids, mask)

    def generate_text(self, prompts: Sequence[str], max_new_tokens: int = 32, greedy: bool | None = None, seed=None,
                      temperature: float | None = None, top_k: int | None = None, **controls):
        """Texts in, completions out (prompt not repeated).

        Greedy by default; sampled with ``greedy=False`` or any of ``seed``, ``temperature``,
        ``top_k`` (:func:`resolve_greedy`, the rule ``tf_rl_text.load(path).generate`` follows too).
        ``controls``: :meth:`generate`'s other keywords (top_p, repetition_penalty, min_new_tokens,
        stop_token_ids).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        greedy = resolve_greedy(greedy, temperature, top_k, seed, controls.get("top_p"))  # bad arguments fail fast
        ids, mask = self.encode_prompts(prompts)
        gen = self.generate(ids, mask, max_new_tokens=max_new_tokens, greedy=greedy, seed=seed,
                            temperature=None if greedy else temperature, top_k=None if greedy else top_k, **controls)
        return self.decode_completions(gen.completion_ids.numpy(), gen.completion_mask.numpy())

    # ------------------------------------------------------------------ utilities
    @property
    def trainable_variables(self):
        """What the trainers update: the model's trainable variables, or only the LoRA adapters."""
        if self.lora is not None:
            return self.lora.trainable_variables
        return self.model.trainable_variables

    def clone_model(self, trainable: bool = False):
        """A copy of the model with the same weights (the frozen reference for the KL leash).

        With LoRA adapters attached (and ``trainable=False``): an :class:`~tf_rl_text.lora.AdaptersOff`
        view instead, the same model with its adapters switched off (no second copy of the weights).
        """
        if self.lora is not None and not trainable:
            return AdaptersOff(self.model, self.lora)
        return copy_model(self.model, trainable=trainable)  # under the model's dtype policy (mixed stays mixed)

    # ------------------------------------------------------------------ LoRA
    lora = None
    """The :class:`~tf_rl_text.lora.LoRA` adapters once :meth:`attach_lora` was called, else None."""

    def attach_lora(self, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0, targets=None, seed: int = 0):
        """Put LoRA adapters on the model's projections and freeze its weights (see :mod:`tf_rl_text.lora`).

        Call it before building a trainer. Returns the :class:`~tf_rl_text.lora.LoRA` (also ``agent.lora``).
        """
        from tf_rl_text import lora

        return lora.attach(self, rank=rank, alpha=alpha, dropout=dropout, targets=targets, seed=seed)

    def load_lora(self, path: str):
        """Attach the adapters that ``agent.lora.save(path)`` wrote (onto the same base model); returns them."""
        from tf_rl_text import lora

        return lora.load(self, path)

    def reset_compiled(self):
        """Forget the compiled generation and acting functions (they retrace on next use)."""
        self._generate_fns = {}
        self._act_fn = self.compile_fn(self._act_logits, reduce_retracing=True)
        self._act_fn_seq2seq = self.compile_fn(self._act_logits_seq2seq, reduce_retracing=True)

    def save_pretrained(self, path: str):
        """Save model and tokenizer with ``save_pretrained`` (loadable with ``from_pretrained``)."""
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        if self.value_head is not None:  # actor-critic: the critic travels with the model
            self.value_head.save(path)

    # ================================================================== value head (actor-critic)
    # V(s) on the model's last hidden states, for A2C / PPO (tf_rl_text/heads.py,
    # tf_rl_text/trainers/actor_critic.py). Nothing else in the agent depends on it.
    value_head = None
    """A :class:`~tf_rl_text.heads.ValueHead` once :meth:`attach_value_head` was called, else None."""

    def attach_value_head(self, value_head=None):
        """Carry ``value_head`` (a fresh :class:`~tf_rl_text.heads.ValueHead` by default), built; returns it."""
        from tf_rl_text.heads import ValueHead

        head = ValueHead() if value_head is None else value_head
        if not head.built:
            head.build(tf.TensorShape([None, None, int(self.model.config.hidden_size)]))
        self.value_head = head
        return head

    def load_value_head(self, path: str):
        """Attach the value head that :meth:`save_pretrained` wrote into ``path``; returns it."""
        from tf_rl_text.heads import ValueHead

        return self.attach_value_head(ValueHead.load(path))

    def logits_and_values(self, input_ids, attention_mask, training=False):
        """One forward pass: processed logits (B, L, vocab) and values V(s) (B, L) at every position."""
        if self.value_head is None:
            raise ValueError("this agent has no value head; call agent.attach_value_head() (or load_value_head(path))")
        out = self.causal_lm(input_ids, attention_mask, output_hidden_states=True, training=training)
        return self.process_logits(out.logits), _float32(self.value_head(out.hidden_states[-1], training=training))

    def values(self, input_ids, attention_mask, training=False):
        """V(s_t) for every prefix of the (left-padded) sequences: (B, L); position t = state up to token t."""
        return self.logits_and_values(input_ids, attention_mask, training)[1]

    def completion_logits_and_values(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False):
        """:meth:`completion_logits` (B, T, vocab) and V(s_t) (B, T) of the states that chose each token."""
        if self.value_head is None:
            raise ValueError("this agent has no value head; call agent.attach_value_head() (or load_value_head(path))")
        logits, hidden = self.completion_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, training,
                                                 output_hidden_states=True)
        values = _float32(self.value_head(hidden, training=training))  # (B, T)
        return logits / tf.cast(self.temperature, logits.dtype), values
    # ================================================================== end value head



__all__ = ["RLAgent", "Generation", "GENERATION_CACHES", "check_sampling_args", "pad_token_ids", "resolve_greedy",
           "resolve_tokenizer"]
