"""KerasHub causal LMs as policies: ``RLAgent(keras_hub.models.GPT2CausalLM(...))``.

KerasHub (``keras-hub``, Keras 3 on the TensorFlow backend) is where TensorFlow users get language
models since transformers v5 dropped TF. :class:`KerasHubLM` wraps one of its ``CausalLM``s so the
rest of the package sees what it needs of a policy model, and nothing more:

* **the forward pass** (:meth:`KerasHubLM.forward`), run through the backbone's own layers (token
  embedding, transformer layers, final norm, the reversible embedding as LM head) with the
  library's conventions: left-padded prompts, an attention mask over every key (padding never
  attended), position ids from the mask for learned absolute positions (GPT-2; a left-padded row
  scores as it would alone), and a key/value cache that grows by the tokens fed (KerasHub's own
  ``call_with_cache`` has a fixed length and no padding mask). Rotary backbones (Llama, Mistral,
  Qwen) rotate by the cache index: attention depends on relative positions only, so left padding
  changes nothing there either. The logits equal KerasHub's ``score()`` (tests check it);
* **variables** as the ``tf.Variable`` under each Keras 3 variable (``v.value``): the trainers'
  tf-keras optimizers, ``tf.train.Checkpoint`` and ``tf.saved_model`` take those;
* **a config view** (:class:`HubConfig`: ``model_type`` ``"keras_hub_gpt2"``, ``"keras_hub_llama"``...,
  vocabulary, width, context) and **a copy** (the frozen KL reference);
* **saving back to KerasHub**: :meth:`KerasHubLM.save_pretrained` writes a preset folder that
  ``keras_hub.models.CausalLM.from_preset(folder)`` loads, with the Hugging Face tokenizer the agent
  used in ``folder/hf_tokenizer`` (:func:`load_preset` reads both back).

The tokenizer: pass any Hugging Face tokenizer whose ids the model was trained with (tests and the
offline default use :func:`tf_rl_text.default_tokenizer`); ``None`` converts the model's own
KerasHub byte-pair tokenizer (GPT-2, Qwen) to a ``PreTrainedTokenizerFast`` with the same ids
(:func:`hf_tokenizer`). :func:`build` makes a model from architecture fields (configs and tests: no
hub is reachable at run time).

    import keras_hub
    from tf_rl_text import RLAgent, default_tokenizer
    tokenizer = default_tokenizer()
    lm = keras_hub.models.GPT2CausalLM(backbone=keras_hub.models.GPT2Backbone(
        vocabulary_size=len(tokenizer), num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
        max_sequence_length=64), preprocessor=None)
    agent = RLAgent(lm, tokenizer)          # agent.model is a KerasHubLM; agent.model.causal_lm is lm
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from tf_rl_text._compat import tf
from tf_rl_text.models import LMOutput, as_float32

ARCHITECTURES = {
    # backbone class -> (model_type, learned absolute positions)
    "GPT2Backbone": ("keras_hub_gpt2", True),
    "LlamaBackbone": ("keras_hub_llama", False),
    "Llama3Backbone": ("keras_hub_llama", False),
    "MistralBackbone": ("keras_hub_mistral", False),
    "QwenBackbone": ("keras_hub_qwen", False),
}
"""The KerasHub backbones whose layers this module runs (their transformer layers share one call:
``(x, decoder_attention_mask=, self_attention_cache=, self_attention_cache_update_index=)``)."""
HF_TOKENIZER_DIR = "hf_tokenizer"
DEFAULT_CONTEXT = 2048
"""The context length of a rotary backbone (it has no position table): override with ``KerasHubLM(lm,
context_length=...)``."""


def is_keras_hub_model(model) -> bool:
    """Whether ``model`` is a KerasHub model (its class, or a class it derives from, is KerasHub's)."""
    return any(cls.__module__.startswith("keras_hub.") for cls in type(model).__mro__)


@dataclasses.dataclass
class HubConfig:
    """What the package reads of a model's config, for a KerasHub model."""

    model_type: str
    vocab_size: int
    hidden_size: int
    n_positions: int
    num_layers: int
    name_or_path: str = ""
    is_encoder_decoder: bool = False


class KerasHubLM(tf.Module):
    """A KerasHub ``CausalLM`` as a policy model (see the module docstring).

    Args:
      causal_lm: a ``keras_hub.models.CausalLM`` whose backbone is one of :data:`ARCHITECTURES`.
      context_length: the longest sequence (default: the backbone's ``max_sequence_length``, else
        :data:`DEFAULT_CONTEXT`).
      name_or_path: the preset folder it came from (where :func:`load_preset` finds the tokenizer).
    """

    def __init__(self, causal_lm, context_length: int | None = None, name_or_path: str = ""):
        super().__init__(name="keras_hub_lm")
        backbone = getattr(causal_lm, "backbone", None)
        kind = type(backbone).__name__
        if kind not in ARCHITECTURES:
            raise TypeError(f"RLAgent runs KerasHub causal LMs with a backbone in {sorted(ARCHITECTURES)}; "
                            f"{type(causal_lm).__name__} has {kind}. Use one of those (GPT-2, Llama, Mistral, Qwen), "
                            f"or a Hugging Face TF model")
        self.causal_lm = causal_lm
        self.model_type, self.learned_positions = ARCHITECTURES[kind]
        heads = getattr(backbone, "num_query_heads", None) or backbone.num_heads
        self._cache_heads = getattr(backbone, "num_key_value_heads", None) or heads
        self._head_dim = backbone.hidden_dim // heads
        length = context_length or getattr(backbone, "max_sequence_length", None) or DEFAULT_CONTEXT
        self.config = HubConfig(self.model_type, int(backbone.vocabulary_size), int(backbone.hidden_dim), int(length),
                                len(backbone.transformer_layers), name_or_path)
        self.built = True

    # ------------------------------------------------------------------ what the package reads
    @property
    def backbone(self):
        return self.causal_lm.backbone

    @property
    def variables(self):
        """Every weight, as the ``tf.Variable`` under each Keras 3 variable."""
        return [v.value for v in self.causal_lm.variables]

    weights = variables

    @property
    def trainable_variables(self):
        return [v.value for v in self.causal_lm.trainable_variables]

    @property
    def dtype_policy(self):
        """The Keras 3 dtype policy the backbone computes under (``.name``: "float32", "mixed_bfloat16")."""
        return self.backbone.dtype_policy

    @property
    def trainable(self) -> bool:
        return self.causal_lm.trainable

    @trainable.setter
    def trainable(self, value: bool):
        self.causal_lm.trainable = bool(value)

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids, attention_mask, position_ids=None, past_key_values=None, use_cache=False,
                output_hidden_states=False, training=False, logits_at=None) -> LMOutput:
        """One causal forward: :class:`~tf_rl_text.models.LMOutput` (float32 raw logits).

        ``attention_mask`` (B, K+Q) covers the cached keys and the Q tokens fed. ``past_key_values``: the
        cache this returns with ``use_cache``, None to start one: GPT-2's is a tuple of per-layer (keys, values), each
        (B, heads, K, head_dim); other backbones' is KerasHub's layout (B, layers, 2, K, kv_heads, head_dim).
        """
        backbone = self.backbone
        queries = tf.shape(input_ids)[1]
        x = backbone.token_embedding(input_ids)
        if self.learned_positions:
            if position_ids is None:
                from tf_rl_text.tokens import position_ids_from_mask

                position_ids = position_ids_from_mask(attention_mask)[:, -queries:]
            table = backbone.position_embedding.position_embeddings
            x = x + tf.cast(tf.gather(table.value if hasattr(table, "value") else table, position_ids), x.dtype)
            x = backbone.embeddings_dropout(x, training=training)
        if self.model_type == "keras_hub_gpt2":  # one fused attention (see _gpt2_layer): 1.7x faster than Keras MHA
            return self._gpt2_forward(x, attention_mask, queries, past_key_values, use_cache, output_hidden_states,
                                      training, logits_at)
        keys = tf.shape(attention_mask)[1]
        attention = tf.broadcast_to(tf.cast(attention_mask, tf.int32)[:, None, :],
                                    tf.stack([tf.shape(input_ids)[0], queries, keys]))  # (B, Q, K+Q)
        cache, index = None, None
        if use_cache:
            if past_key_values is None:
                shape = [tf.shape(input_ids)[0], self.config.num_layers, 2, 0, self._cache_heads, self._head_dim]
                past_key_values = tf.zeros(tf.stack(shape), x.dtype)
            index = tf.shape(past_key_values)[3]
            room = tf.concat([tf.shape(past_key_values)[:3], [queries], tf.shape(past_key_values)[4:]], axis=0)
            cache = tf.concat([past_key_values, tf.zeros(room, past_key_values.dtype)], axis=3)
        caches = []
        for i, layer in enumerate(backbone.transformer_layers):
            if cache is None:
                x = layer(x, decoder_attention_mask=attention, training=training)
            else:
                x, layer_cache = layer(x, decoder_attention_mask=attention, self_attention_cache=cache[:, i],
                                       self_attention_cache_update_index=index, training=training)
                caches.append(layer_cache)
        return self._output(x, tf.stack(caches, axis=1) if caches else None, output_hidden_states, logits_at)

    def _gpt2_forward(self, x, attention_mask, queries, past, use_cache, output_hidden_states, training, logits_at):
        """GPT-2's layers with :func:`_gpt2_layer`. The cache is Hugging Face's layout: per layer (keys, values),
        each (B, heads, K, head_dim), concatenated along K (no zero-filled slots, no copy of the other layers');
        the mask is one additive bias (B, 1, Q, K) shared by every layer."""
        backbone = self.backbone
        keys = tf.shape(attention_mask)[1]
        start = keys - queries  # cached positions before the first query
        causal = tf.range(keys)[None, :] <= (start + tf.range(queries))[:, None]  # (Q, K)
        allowed = tf.logical_and(causal[None], tf.cast(attention_mask, tf.bool)[:, None, :])  # (B, Q, K)
        bias = tf.where(allowed, 0.0, -1e9)[:, None]  # (B, 1, Q, K), as Keras' masked softmax
        bias = tf.cast(bias, x.dtype)
        caches = []
        for i, layer in enumerate(backbone.transformer_layers):
            x, layer_cache = _gpt2_layer(layer, x, bias, None if past is None else past[i], training)
            caches.append(layer_cache)
        return self._output(x, tuple(caches) if use_cache else None, output_hidden_states, logits_at)

    def _output(self, x, cache, output_hidden_states, logits_at) -> LMOutput:
        """The final norm and the LM head (the reversible embedding) at ``logits_at``: the forward's result."""
        x = self.backbone.layer_norm(x)
        read = x if logits_at is None else x[:, logits_at]
        logits = self.backbone.token_embedding(read, reverse=True)
        return LMOutput(as_float32(logits), cache, (x,) if output_hidden_states else None)

    def __call__(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False,
                 output_hidden_states=False, training=False, **unused):
        """The Hugging Face calling convention (keywords; ``.logits``, ``.past_key_values``,
        ``.hidden_states``), for code that wraps a causal LM (Q-learning's ``QHeadModel``)."""
        return self.forward(input_ids, attention_mask, position_ids, past_key_values, use_cache,
                            output_hidden_states, training)

    call = __call__

    @property
    def dummy_inputs(self):
        return {"input_ids": tf.ones([1, 2], tf.int32), "attention_mask": tf.ones([1, 2], tf.int32)}

    def count_params(self) -> int:
        return int(self.causal_lm.count_params())

    def get_weights(self):
        return [v.numpy() for v in self.variables]

    def set_weights(self, weights):
        for v, w in zip(self.variables, weights):
            v.assign(w)

    # ------------------------------------------------------------------ copies and saving
    def copy_model(self, policy=None, trainable=None):
        """A new ``KerasHubLM`` over a copy of the model (same class and config, weights copied), computing under
        the Keras dtype ``policy`` (``"mixed_bfloat16"``: bfloat16 math over float32 weights; ``"float32"``) or,
        when None, the model's own. :func:`tf_rl_text.precision.with_precision` and the KL reference are this."""
        lm = self.causal_lm
        config = lm.get_config()
        if policy is not None:
            if policy not in ("float32", "mixed_bfloat16", "mixed_float16", "bfloat16"):
                raise ValueError(f"policy must be a Keras dtype policy name such as 'mixed_bfloat16' or 'float32', "
                                 f"got {policy!r}")
            config["backbone"]["config"]["dtype"] = policy
        copy = type(lm).from_config(config)
        for layer, twin in zip(lm._flatten_layers(), copy._flatten_layers()):  # KerasHub's enable_lora, mirrored
            if getattr(layer, "lora_enabled", False) and not getattr(twin, "lora_enabled", False):
                twin.enable_lora(layer.lora_rank, lora_alpha=getattr(layer, "lora_alpha", None))
        sources = {v.path: v for v in lm.variables}
        for target in copy.variables:
            target.assign(sources[target.path])
        wrapped = KerasHubLM(copy, self.config.n_positions, self.config.name_or_path)
        wrapped.trainable = self.trainable if trainable is None else trainable
        return wrapped

    def save_pretrained(self, path: str, tokenizer=None):
        """Write a KerasHub preset folder (``CausalLM.from_preset(path)`` loads it) and, when given, the
        Hugging Face ``tokenizer`` into ``path/hf_tokenizer``."""
        os.makedirs(path, exist_ok=True)
        self.causal_lm.save_to_preset(path)
        if tokenizer is not None:
            tokenizer.save_pretrained(os.path.join(path, HF_TOKENIZER_DIR))


def _gpt2_layer(layer, x, bias, past, training):
    """KerasHub's ``TransformerDecoder`` as GPT-2 builds it (layer norm first, no cross attention), with its
    own weights and sublayers, but the self-attention as Hugging Face's TF GPT-2 computes it: q, k and v from
    one matmul over the three kernels side by side, then two batched matmuls. Keras' ``MultiHeadAttention``
    (three ``EinsumDense`` projections, einsum scores, a masked ``Softmax`` layer) took 1.7x as long forward
    and backward on the benchmark's GPT-2 (one layer, 64 x 32 tokens: 74 vs 44 ms on 2 CPU cores). Same
    numbers as ``layer(x, ...)``: the tests compare the log-probs with KerasHub's ``score()``.

    ``past``: this layer's (keys, values), each (B, heads, K, head_dim), or None; returns (x, (keys, values)) with
    the Q new positions appended."""
    attention = layer._self_attention_layer
    heads, head_dim = attention._num_heads, attention._key_dim
    batch, queries, width = tf.shape(x)[0], tf.shape(x)[1], x.shape[-1]
    residual = x
    h = layer._self_attention_layer_norm(x) if layer.normalize_first else x
    projections = (attention._query_dense, attention._key_dense, attention._value_dense)
    kernel = tf.concat([tf.reshape(tf.cast(p.kernel, h.dtype), [width, heads * head_dim]) for p in projections], 1)
    qkv = tf.matmul(tf.reshape(h, [-1, width]), kernel)
    if projections[0].bias is not None:
        qkv += tf.concat([tf.reshape(tf.cast(p.bias, h.dtype), [-1]) for p in projections], 0)
    qkv = tf.reshape(qkv, [batch, queries, 3, heads, head_dim])
    q, k, v = (tf.transpose(qkv[:, :, i], [0, 2, 1, 3]) for i in range(3))  # (B, H, Q, hd) each
    if past is not None:
        k, v = tf.concat([past[0], k], axis=2), tf.concat([past[1], v], axis=2)
    q = q * tf.cast(head_dim ** -0.5, h.dtype)
    scores = tf.matmul(q, k, transpose_b=True) + bias  # (B, H, Q, K)
    probs = attention._dropout_layer(tf.nn.softmax(scores, axis=-1), training=training)
    out = tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3])  # (B, Q, H, hd)
    dense = attention._output_dense
    out = tf.matmul(tf.reshape(out, [-1, heads * head_dim]),
                    tf.reshape(tf.cast(dense.kernel, h.dtype), [heads * head_dim, width]))
    if dense.bias is not None:
        out += tf.cast(dense.bias, h.dtype)
    x = layer._self_attention_dropout(tf.reshape(out, [batch, queries, width]), training=training) + residual
    if not layer.normalize_first:
        x = layer._self_attention_layer_norm(x)
    residual = x
    h = layer._feedforward_layer_norm(x) if layer.normalize_first else x
    h = layer._feedforward_output_dense(layer._feedforward_intermediate_dense(h))
    x = layer._feedforward_dropout(h, training=training) + residual
    if not layer.normalize_first:
        x = layer._feedforward_layer_norm(x)
    return x, (k, v)


def wrap(model, tokenizer=None):
    """``(KerasHubLM, tokenizer)`` for a KerasHub ``CausalLM`` (or a ``KerasHubLM``): the tokenizer given,
    else the one saved beside a preset (:func:`load_preset`), else the model's own converted."""
    wrapped = model if isinstance(model, KerasHubLM) else KerasHubLM(model)
    if tokenizer is None:
        tokenizer = _saved_tokenizer(wrapped.config.name_or_path) or hf_tokenizer(wrapped.causal_lm)
    return wrapped, tokenizer


def _saved_tokenizer(folder: str):
    path = os.path.join(folder, HF_TOKENIZER_DIR) if folder else ""
    if not path or not os.path.isdir(path):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def hf_tokenizer(causal_lm):
    """The model's own KerasHub tokenizer (from its preprocessor) as a ``PreTrainedTokenizerFast`` with the same
    ids: byte-pair tokenizers (GPT-2, Qwen) convert; for others pass a Hugging Face tokenizer."""
    preprocessor = getattr(causal_lm, "preprocessor", None)
    source = getattr(preprocessor, "tokenizer", None)
    how = ("pass one: RLAgent(lm, tokenizer) with a Hugging Face tokenizer of the same ids "
           "(e.g. AutoTokenizer.from_pretrained(<folder>), or tf_rl_text.default_tokenizer() for tiny models)")
    if source is None:
        raise ValueError(f"RLAgent(lm) found no tokenizer: this {type(causal_lm).__name__} has no preprocessor; {how}")
    vocabulary, merges = getattr(source, "vocabulary", None), getattr(source, "merges", None)
    if not isinstance(vocabulary, dict) or merges is None:
        raise ValueError(f"RLAgent(lm) converts byte-pair KerasHub tokenizers only; {type(source).__name__} is not "
                         f"one; {how}")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    core = Tokenizer(models.BPE(vocab=dict(vocabulary), merges=pairs))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    end = source.id_to_token(source.end_token_id) if getattr(source, "end_token_id", None) is not None else None
    pad = source.id_to_token(source.pad_token_id) if getattr(source, "pad_token_id", None) is not None else end
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=end, bos_token=end, pad_token=pad)


def build(architecture: str, vocab_size: int, num_layers: int = 2, hidden_size: int = 64, num_heads: int = 4,
          intermediate_size: int | None = None, context_length: int = 64, num_key_value_heads: int | None = None,
          dropout: float = 0.0, seed: int | None = None):
    """A fresh KerasHub ``CausalLM`` (no preprocessor) from architecture fields: ``"gpt2"`` or ``"llama"``.

    What configs and tests use: nothing is downloaded. ``seed`` seeds Keras' initializers."""
    import keras
    import keras_hub

    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    inner = intermediate_size or 4 * hidden_size
    if architecture == "gpt2":
        backbone = keras_hub.models.GPT2Backbone(vocabulary_size=vocab_size, num_layers=num_layers, num_heads=num_heads,
                                                 hidden_dim=hidden_size, intermediate_dim=inner, dropout=dropout,
                                                 max_sequence_length=context_length)
        return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    if architecture == "llama":
        backbone = keras_hub.models.LlamaBackbone(vocabulary_size=vocab_size, num_layers=num_layers,
                                                  num_query_heads=num_heads, hidden_dim=hidden_size,
                                                  intermediate_dim=inner, dropout=dropout,
                                                  num_key_value_heads=num_key_value_heads or num_heads)
        return keras_hub.models.LlamaCausalLM(backbone=backbone, preprocessor=None)
    raise ValueError(f"architecture must be 'gpt2' or 'llama' for a KerasHub model built from fields, got "
                     f"{architecture!r}; load any other KerasHub model with keras_hub.models.CausalLM.from_preset")


HF_ARCHITECTURES = {"gpt2": ("gpt2", "GPT2LMHeadModel"), "mistral": ("llama", "LlamaForCausalLM")}
"""The Hugging Face TF families :func:`from_transformers` converts: the checkpoint's ``model_type`` and
``architectures``. TF Mistral is the Llama architecture (no sliding window in its TF code) and is written as
a Llama checkpoint: KerasHub's Mistral converter casts every weight to float16."""


def pytorch_weights(tf_model) -> dict:
    """A Hugging Face TF causal LM's weights under the names and shapes of its PyTorch checkpoint, the format
    KerasHub's converters read (``h.0.attn.c_attn.weight``, ``model.layers.0.self_attn.q_proj.weight``, ...):
    Dense kernels transposed to PyTorch's (out, in), GPT-2's Conv1D weights kept (in, out) and their biases 1-D."""
    gpt2 = tf_model.config.model_type == "gpt2"
    out = {}
    for v in tf_model.weights:
        path = v.name.split(":")[0]
        path = path.split("transformer/")[-1] if gpt2 else path.split("/", 1)[-1]  # drop the model's own scope
        name = path.replace("h_._", "h.").replace("/", ".")
        name = name[: -len(".embeddings")] + ".weight" if name.endswith(".embeddings") else name  # wte, wpe, embed_tokens
        name = name.replace(".gamma", ".weight").replace(".beta", ".bias")
        value = v.numpy()
        if name.endswith(".kernel"):  # contiguous: safetensors writes the buffer, not the view
            name, value = name[: -len(".kernel")] + ".weight", np.ascontiguousarray(value.T)
        out[name] = value.reshape(-1) if gpt2 and name.endswith(".bias") else value
    return out


def from_transformers(tf_model, folder: str):
    """A KerasHub ``CausalLM`` with the weights of a Hugging Face TF GPT-2 (``TFGPT2LMHeadModel``) or
    Llama-architecture model (``TFMistralForCausalLM``): ``GPT2CausalLM`` or ``MistralCausalLM``.

    Writes ``folder`` as a Hugging Face checkpoint (config.json + model.safetensors, PyTorch names) and lets
    KerasHub convert it (``CausalLM.from_preset(folder)``: what it does for any local Hugging Face GPT-2,
    Llama, Mistral, Qwen or Gemma folder). The logits are the TF model's (tests compare them)."""
    import keras_hub
    from safetensors.numpy import save_file

    model_type = getattr(tf_model.config, "model_type", None)
    if model_type not in HF_ARCHITECTURES:
        raise ValueError(f"from_transformers converts Hugging Face {sorted(HF_ARCHITECTURES)} models; got model_type "
                         f"{model_type!r}. For other families save a PyTorch-format checkpoint and call "
                         f"keras_hub.models.CausalLM.from_preset(folder)")
    os.makedirs(folder, exist_ok=True)
    config = tf_model.config.to_dict()
    config["model_type"], architecture = HF_ARCHITECTURES[model_type]
    config["architectures"] = [architecture]
    with open(os.path.join(folder, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)
    save_file(pytorch_weights(tf_model), os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    return keras_hub.models.CausalLM.from_preset(folder, preprocessor=None)


def load_preset(preset: str, tokenizer=None, context_length: int | None = None):
    """``(KerasHubLM, tokenizer)`` from a KerasHub preset: a local folder (``save_to_preset``, or
    :meth:`KerasHubLM.save_pretrained`, whose ``hf_tokenizer`` is read back) or a preset name already in
    KerasHub's cache. Nothing is downloaded here unless KerasHub itself does for a name it lacks."""
    import keras_hub

    if os.path.sep in preset or preset.startswith("."):
        if not os.path.isdir(preset):
            raise FileNotFoundError(f"KerasHub preset folder {preset!r} does not exist; write one with "
                                    f"causal_lm.save_to_preset(folder) or agent.save_pretrained(folder)")
    lm = keras_hub.models.CausalLM.from_preset(preset)
    wrapped = KerasHubLM(lm, context_length, preset if os.path.isdir(preset) else "")
    return wrap(wrapped, tokenizer)


__all__ = ["ARCHITECTURES", "HF_ARCHITECTURES", "HubConfig", "KerasHubLM", "build", "from_transformers",
           "hf_tokenizer", "pytorch_weights", "is_keras_hub_model", "load_preset", "wrap"]
