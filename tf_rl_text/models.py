"""The Hugging Face TF model under an agent: which models fit, how they trace, one causal-LM forward.

* :func:`check_model_family` - a clear error for a model the agent cannot act with (a bare
  encoder, a masked LM, a token tagger...).
* :data:`PLAIN_GRAPH_MODEL_TYPES` - the families whose compiled functions skip AutoGraph.
* :func:`causal_lm_forward` - one causal-LM forward, ``(logits, past_key_values, hidden_states)``
  as float32 logits; GPT-2's tied LM head runs as one 2-D matmul. :meth:`RLAgent.causal_lm`
  (every causal forward of the agent) calls it.
* :func:`as_float32` - logits leave the model as float32, whatever its precision policy.
"""
from __future__ import annotations

import collections

from tf_rl_text._compat import tf
from tf_rl_text.families import types_where
from tf_rl_text.precision import cast_weight
from tf_rl_text.tokens import position_ids_from_mask

# Hugging Face TF model families (``config.model_type``) whose code traces as plain graph code (their
# tf.functions skip AutoGraph): the families table's view, tf_rl_text/families.py says why.
PLAIN_GRAPH_MODEL_TYPES = types_where(lambda f: f.plain_graph)


class LMOutput(collections.namedtuple("LMOutput", ["logits", "past_key_values", "hidden_states"])):
    """What :meth:`RLAgent.causal_lm` returns (the fields of HF's causal-LM output it uses)."""


def tied_output_embeddings(model):
    """The (vocab, d) embedding matrix GPT-2's LM head multiplies by, or None for other models.

    HF's TF GPT-2 head is ``tf.matmul(hidden, [wte], transpose_b=True)``: a broadcast batched
    matmul that oneDNN runs 3-4x slower than one 2-D matmul on CPU (2.7 ms vs 0.7 ms per decode
    step at batch 64 in benchmarks/, and twice the backward time in training).
    """
    from transformers import TFGPT2LMHeadModel

    if isinstance(model, TFGPT2LMHeadModel):
        return model.transformer.wte.embeddings
    return None


def as_float32(x):
    """Logits leave the model as float32 (a mixed-precision model computes them in bfloat16/float16)."""
    return x if x.dtype == tf.float32 else tf.cast(x, tf.float32)


# heads that are neither a generator (causal LM, encoder-decoder) nor a sequence classifier
_UNFIT_SUFFIXES = ("ForMaskedLM", "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice",
                   "ForPreTraining", "ForNextSentencePrediction", "ForImageClassification")


def check_model_family(model):
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


def causal_lm_forward(model, input_ids, attention_mask, position_ids=None, past_key_values=None, use_cache=False,
                      output_hidden_states=False, training=False, logits_at=None):
    """One causal-LM forward of a Hugging Face TF ``model``: :class:`LMOutput` with float32 raw logits.

    ``position_ids`` default to :func:`~tf_rl_text.tokens.position_ids_from_mask` (left padding
    skipped). ``logits_at`` (a slice of sequence positions) keeps only those positions' logits (the LM
    head runs only there). For GPT-2 the tied LM head is one 2-D matmul (see
    :func:`tied_output_embeddings`); other models run as HF wrote them.
    """
    if position_ids is None:
        position_ids = position_ids_from_mask(attention_mask)
    embeddings = tied_output_embeddings(model)
    if embeddings is None:
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                    past_key_values=past_key_values, use_cache=use_cache,
                    output_hidden_states=output_hidden_states, training=training)
        logits = out.logits if logits_at is None else out.logits[:, logits_at]
        return LMOutput(as_float32(logits), out.past_key_values if use_cache else None,
                        getattr(out, "hidden_states", None))
    out = model.transformer(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            past_key_values=past_key_values, use_cache=use_cache,
                            output_hidden_states=output_hidden_states, training=training)
    hidden = out.last_hidden_state if logits_at is None else out.last_hidden_state[:, logits_at]
    shape = tf.shape(hidden)
    flat = tf.reshape(hidden, [-1, hidden.shape[-1]])
    logits = tf.matmul(flat, cast_weight(embeddings, flat.dtype), transpose_b=True)
    logits = tf.reshape(logits, tf.concat([shape[:-1], [tf.shape(embeddings)[0]]], axis=0))
    return LMOutput(as_float32(logits), out.past_key_values if use_cache else None, out.hidden_states)


__all__ = ["PLAIN_GRAPH_MODEL_TYPES", "LMOutput", "as_float32", "causal_lm_forward", "check_model_family",
           "tied_output_embeddings"]
