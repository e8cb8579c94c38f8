"""The agent's own key/value cache for Llama-architecture decoders (``TFMistralForCausalLM``).

Hugging Face's TF Mistral code needs the cache length as a static shape (its rotary table is
``range(past.shape[-2] + 1)``), which a compiled loop whose cache grows by one position per token
cannot give it. This module runs the same model, layer by layer through the model's own Keras
layers (embeddings, RMSNorms, the q/k/v/o projections, the SwiGLU MLP, the LM head), with an
attention that needs no static length: the rotary angles come straight from the position ids and
the cache is the keys and values of every position so far, (B, kv_heads, K, head_dim) per layer.
Grouped-query attention reads each key/value head once for its ``heads / kv_heads`` query heads
(no repeated copies). The numbers are those of HF's forward without a cache (tests compare the
logits of every decode step).

TF Mistral has no sliding window (nor does the Llama architecture), so nothing is lost here.
"""
from __future__ import annotations

import json
import math
import os

from tf_rl_text._compat import tf


def llama_parts(model):
    """``(main_layer, head)`` when ``model`` is a Llama-architecture causal LM this module can run
    (``TFMistralForCausalLM``, or Q-learning's ``QHeadModel`` around one), else None."""
    from transformers import TFMistralForCausalLM

    if isinstance(model, TFMistralForCausalLM):
        return model.model, model.lm_head
    lm, head = getattr(model, "lm", None), getattr(model, "head", None)
    if isinstance(lm, TFMistralForCausalLM) and head is not None:
        return lm.model, head
    return None


def rotary(position_ids, head_dim, base, dtype):
    """cos, sin of the rotary angles at ``position_ids`` (B, Q): each (B, 1, Q, head_dim), as HF computes them."""
    inv_freq = 1.0 / (base ** (tf.range(0, head_dim, 2, dtype=tf.float32) / head_dim))  # (head_dim / 2,)
    angles = tf.cast(position_ids, tf.float32)[..., None] * inv_freq  # (B, Q, head_dim / 2)
    angles = tf.concat([angles, angles], axis=-1)[:, None]  # (B, 1, Q, head_dim)
    return tf.cast(tf.cos(angles), dtype), tf.cast(tf.sin(angles), dtype)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return tf.concat([-x[..., half:], x[..., :half]], axis=-1)


def _attention(attn, x, cos, sin, bias, past):
    """One self-attention block with a cache. x: (B, Q, d); bias: (B, 1, 1, Q, K) additive mask.

    Returns (output (B, Q, d), (keys, values) (B, kv_heads, K, head_dim) each).
    """
    heads, kv_heads = attn.num_heads, attn.num_key_value_heads
    head_dim, groups = attn.head_dim, attn.num_key_value_groups
    batch, q_len = tf.shape(x)[0], tf.shape(x)[1]
    q = tf.transpose(tf.reshape(attn.q_proj(x), [batch, q_len, heads, head_dim]), [0, 2, 1, 3])  # (B, H, Q, hd)
    k = tf.transpose(tf.reshape(attn.k_proj(x), [batch, q_len, kv_heads, head_dim]), [0, 2, 1, 3])  # (B, Hkv, Q, hd)
    v = tf.transpose(tf.reshape(attn.v_proj(x), [batch, q_len, kv_heads, head_dim]), [0, 2, 1, 3])
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    if past is not None:
        k = tf.concat([past[0], k], axis=2)  # (B, Hkv, K, hd)
        v = tf.concat([past[1], v], axis=2)
    # query head h reads key/value head h // groups (HF's repeat_kv order)
    q = tf.reshape(q, [batch, kv_heads, groups * q_len, head_dim])
    scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(head_dim)  # (B, Hkv, G*Q, K)
    scores = tf.reshape(scores, [batch, kv_heads, groups, q_len, -1]) + tf.cast(bias, scores.dtype)
    probs = tf.cast(tf.nn.softmax(scores + 1e-9, axis=-1), v.dtype)  # HF's stable_softmax
    out = tf.matmul(tf.reshape(probs, [batch, kv_heads, groups * q_len, -1]), v)  # (B, Hkv, G*Q, hd)
    out = tf.reshape(tf.transpose(tf.reshape(out, [batch, heads, q_len, head_dim]), [0, 2, 1, 3]),
                     [batch, q_len, heads * head_dim])
    return attn.o_proj(out), (k, v)


def llama_forward(model, input_ids, attention_mask, position_ids, past=None):
    """Run ``Q`` new tokens through a Llama-architecture decoder with a key/value cache.

    input_ids, position_ids: (B, Q); attention_mask: (B, K) over the cached positions then the new
    ones (K = cached + Q); past: None or one (keys, values) pair per layer. Returns (logits of the
    last new token (B, V) float32, the new cache).
    """
    main, head = llama_parts(model)
    config = main.config
    hidden = main.embed_tokens(input_ids)  # (B, Q, d)
    q_len = tf.shape(input_ids)[1]
    key_len = tf.shape(attention_mask)[1]
    past_len = key_len - q_len
    # key j is visible to new token i if it is a real token and not in its future
    causal = tf.range(key_len)[None, :] <= past_len + tf.range(q_len)[:, None]  # (Q, K)
    visible = tf.logical_and(causal[None], tf.cast(attention_mask, tf.bool)[:, None, :])  # (B, Q, K)
    bias = tf.where(visible, 0.0, hidden.dtype.min)[:, None, None]  # (B, 1, 1, Q, K)
    head_dim = config.hidden_size // config.num_attention_heads
    cos, sin = rotary(position_ids, head_dim, config.rope_theta, hidden.dtype)
    cache = []
    for i, layer in enumerate(main.layers):
        out, kv = _attention(layer.self_attn, layer.input_layernorm(hidden), cos, sin, bias,
                             None if past is None else past[i])
        cache.append(kv)
        hidden = hidden + out
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
    hidden = main.norm(hidden[:, -1:])  # (B, 1, d): only the last token is read
    logits = head(hidden)[:, -1]
    return tf.cast(logits, tf.float32), tuple(cache)


def load_llama(folder: str, **kwargs):
    """A ``TFMistralForCausalLM`` holding a local Llama-architecture checkpoint (TinyLlama, SmolLM...).

    ``folder`` has the Hugging Face ``config.json`` (``model_type`` "llama" or "mistral") and the
    PyTorch weights as ``model.safetensors`` (read without PyTorch). The Llama architecture is
    Mistral's without a sliding window, so the weights map one to one (same names); checkpoints
    whose config needs what TF Mistral lacks are refused: attention or MLP biases, ``rope_scaling``
    (Llama 3.1+), a ``head_dim`` other than hidden_size / heads, a sliding window shorter than the
    context. With ``tie_word_embeddings`` (SmolLM) the LM head is set to the embedding matrix
    (TF Mistral's head is a separate weight: it then trains untied). ``kwargs`` go to ``from_pretrained``.
    """
    from transformers import MistralConfig, TFMistralForCausalLM

    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no config.json in {folder!r}: pass the folder of a Hugging Face checkpoint")
    with open(path) as f:
        cfg = json.load(f)
    if cfg.get("model_type") not in ("llama", "mistral"):
        raise ValueError(f"{folder!r} holds a {cfg.get('model_type')!r} model; load_llama reads 'llama' or 'mistral'")
    heads = cfg["num_attention_heads"]
    problems = [f"{k}={cfg[k]!r}" for k in ("attention_bias", "mlp_bias") if cfg.get(k)]
    if cfg.get("rope_scaling"):
        problems.append(f"rope_scaling={cfg['rope_scaling']!r}")
    if cfg.get("head_dim") not in (None, cfg["hidden_size"] // heads):
        problems.append(f"head_dim={cfg['head_dim']} (TF Mistral uses hidden_size / heads = {cfg['hidden_size'] // heads})")
    window = cfg.get("sliding_window")
    if window is not None and window < cfg.get("max_position_embeddings", 0):
        problems.append(f"sliding_window={window} < max_position_embeddings (TF Mistral has no sliding window)")
    if problems:
        raise ValueError(f"{folder!r} needs what TF Mistral does not implement: {', '.join(problems)}")
    config = MistralConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"], num_attention_heads=heads,
        num_key_value_heads=cfg.get("num_key_value_heads") or heads, hidden_act=cfg.get("hidden_act", "silu"),
        max_position_embeddings=cfg.get("max_position_embeddings", 2048), rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_theta=cfg.get("rope_theta", 10000.0), tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        bos_token_id=cfg.get("bos_token_id"), eos_token_id=cfg.get("eos_token_id"), pad_token_id=cfg.get("pad_token_id"),
        sliding_window=None)
    model = TFMistralForCausalLM.from_pretrained(folder, config=config, **kwargs)
    if config.tie_word_embeddings:
        model.lm_head.kernel.assign(tf.transpose(model.model.embed_tokens.embeddings))
    return model


__all__ = ["llama_parts", "llama_forward", "rotary", "load_llama"]
