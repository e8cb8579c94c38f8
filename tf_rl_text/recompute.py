"""Recompute activations in the backward pass (gradient checkpointing, Chen et al. 2016).

:func:`recompute_blocks` wraps each transformer block of a Hugging Face TF model in
``tf.recompute_grad``: the forward pass keeps only each block's input, and the backward pass runs
the block again to get what its gradient needs. Peak memory of an update then holds one block's
activations instead of every block's, for about one more forward pass of compute. Forward
passes under no gradient tape (generation, the KL reference) run the block once, unchanged.
``benchmarks/memory.py`` measures the saving (``peak_rss_recompute_mb``).

    from tf_rl_text.recompute import recompute_blocks
    recompute_blocks(agent.model)      # before building the trainer
"""
from __future__ import annotations

from tf_rl_text._compat import tf
from tf_rl_text.families import FAMILIES

BLOCKS = {name: family.blocks for name, family in FAMILIES.items() if family.blocks is not None}
"""Where each supported model type (``config.model_type``) keeps its list of transformer blocks."""


def _recording() -> bool:
    from tensorflow.python.eager import record

    return record.could_possibly_record()


def recompute_blocks(model) -> int:
    """Wrap every transformer block of ``model`` in ``tf.recompute_grad``; returns how many."""
    model_type = getattr(model.config, "model_type", None)
    if model_type not in BLOCKS:
        raise ValueError(f"recompute_blocks supports model types {sorted(BLOCKS)}, got {model_type!r}")
    blocks = list(BLOCKS[model_type](model))
    for block in blocks:
        if getattr(block, "_tf_rl_text_recompute", False):
            continue
        block.call = _wrap(block.call)
        block._tf_rl_text_recompute = True
    return len(blocks)


def _wrap(original):
    def call(hidden, *args, **kwargs):
        if not _recording():  # nothing will ask for a gradient: run once
            return original(hidden, *args, **kwargs)
        structure = {}

        @tf.recompute_grad
        def block(h):
            out = original(h, *args, **kwargs)
            flat = tf.nest.flatten(out)
            structure["out"], structure["tensors"] = out, [i for i, x in enumerate(flat) if x is not None]
            return [flat[i] for i in structure["tensors"]]

        tensors = block(hidden)
        flat = tf.nest.flatten(structure["out"])
        for i, t in zip(structure["tensors"], tensors):
            flat[i] = t
        return tf.nest.pack_sequence_as(structure["out"], flat)

    return call


__all__ = ["recompute_blocks", "BLOCKS"]
