"""The one table of the Hugging Face model families the package knows, keyed by ``config.model_type``.

Each entry says what the rest of the package needs to know about a family: its kind (a causal LM,
an encoder-decoder, or a sequence classifier used as a choice policy), whether its code traces as
plain graph code (compiled functions skip AutoGraph), the projections LoRA adapts by default
(peft's defaults), where its transformer blocks are (recomputation), and whether its generation
cache must be static-shaped. ``models.py``, ``generation.py``, ``lora.py`` and ``recompute.py`` read
their views of it from here; adding a family is one line.

    from tf_rl_text.families import FAMILIES, family_of
    family_of(model).lora_targets        # ("c_attn",) for GPT-2
"""
from __future__ import annotations

import dataclasses
from typing import Callable

KINDS = ("causal", "seq2seq", "classifier")


@dataclasses.dataclass(frozen=True)
class Family:
    kind: str
    """"causal" (decoder-only LM), "seq2seq" (encoder-decoder LM) or "classifier" (a choice policy)."""
    plain_graph: bool = False
    """Its code has no Python branching on tensor values: compiled functions skip AutoGraph, whose
    conversion of HF's model code dominates the first trace (the quickstart's first warm-start step:
    12 s -> 3 s). BART's and OPT's decoders branch in Python on tensor shapes and need it. Mistral's
    forward without a cache is plain graph code; with one, generation runs tf_rl_text/llama.py."""
    lora_targets: tuple = ()
    """The projections LoRA adapts when ``targets`` is not given (peft's defaults)."""
    blocks: Callable | None = None
    """model -> its list of transformer blocks (:func:`tf_rl_text.recompute.recompute_blocks`)."""
    static_cache: bool = False
    """Generation runs without the model's own KV cache (its cache is not shape-stable)."""
    keras_hub: bool = False
    """A KerasHub (Keras 3) model, run through :mod:`tf_rl_text.kerashub` (``model_type`` ``keras_hub_*``)."""
    turn_cache: bool = False
    """Its generation cache carries on across conversation turns (:meth:`RLAgent.generate_turn`): the model reads
    the positions it is given, so a masked hole in the cache (a turn's EOS, padding) leaves every other token's
    position and attention as re-encoding the compact conversation would (checked by a test for each family
    marked so). Rotary backbones whose positions come from the cache index (KerasHub Llama) re-encode."""


_QV = ("q_proj", "v_proj")
FAMILIES = {
    "gpt2": Family("causal", plain_graph=True, lora_targets=("c_attn",), blocks=lambda m: m.transformer.h,
                   turn_cache=True),
    "gptj": Family("causal", lora_targets=_QV, blocks=lambda m: m.transformer.h),
    "mistral": Family("causal", plain_graph=True, lora_targets=_QV, blocks=lambda m: m.model.layers,
                      turn_cache=True),
    "llama": Family("causal", lora_targets=_QV),
    "opt": Family("causal", lora_targets=_QV, blocks=lambda m: m.model.decoder.layers),
    "xglm": Family("causal", static_cache=True),
    "t5": Family("seq2seq", plain_graph=True, lora_targets=("q", "v")),
    "bart": Family("seq2seq", lora_targets=_QV),
    "marian": Family("seq2seq", lora_targets=_QV),
    "keras_hub_gpt2": Family("causal", plain_graph=True, keras_hub=True, turn_cache=True),
    "keras_hub_llama": Family("causal", plain_graph=True, keras_hub=True),
    "keras_hub_mistral": Family("causal", plain_graph=True, keras_hub=True),
    "keras_hub_qwen": Family("causal", plain_graph=True, keras_hub=True),
    "bert": Family("classifier", lora_targets=("query", "value")),
    "roberta": Family("classifier", lora_targets=("query", "value")),
}


def model_type(model_or_config) -> str | None:
    """``config.model_type`` of a model (or of a config)."""
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "model_type", None)


def family_of(model_or_config) -> Family | None:
    """The :class:`Family` of a model (or config), None for a model type the table does not list."""
    return FAMILIES.get(model_type(model_or_config))


def tokens_needed(seq2seq: bool, prompt_tokens: int, new_tokens: int) -> int:
    """The context a prompt of ``prompt_tokens`` and ``new_tokens`` generated tokens occupy: the longer of
    the two for an encoder-decoder (source and target are apart), their sum for a causal LM."""
    return max(prompt_tokens, new_tokens) if seq2seq else prompt_tokens + new_tokens


def types_where(predicate) -> frozenset:
    """The model types whose family satisfies ``predicate(family)``."""
    return frozenset(name for name, family in FAMILIES.items() if predicate(family))


__all__ = ["Family", "FAMILIES", "KINDS", "family_of", "model_type", "tokens_needed", "types_where"]
