"""SavedModel export of a trained policy, and loading it back for inference.

A SavedModel written here loads with plain ``tf.saved_model.load(path)`` in a process that never
imports tf_rl_text. Its functions (all also reachable as ``loaded.signatures[name]``):

* ``generate`` (= ``serving_default``): ``input_ids``, ``attention_mask`` (B, P) int32, left
  padded -> ``sequences`` (B, max_new_tokens) greedy completion ids and ``completion_mask``;
* ``sample``: the same plus ``seed`` (2,) int32 and ``temperature`` () float32, sampled;
* ``log_probs``: ``input_ids``, ``attention_mask`` (B, P) prompts as above, ``completion_ids``,
  ``completion_mask`` (B, T) -> ``log_probs`` (B, T), log pi of each completion token;
* ``train_step``: one update of the trainer's algorithm (for REINFORCE: the four tensors of
  ``log_probs`` plus ``advantages`` (B, T) -> ``loss``), which changes the loaded variables;
* whatever a trainer adds (``q_values``, ``values``...).

``serving_only=True`` (``trainer.export(path, serving_only=True)``, ``tf-rl-text export RUN OUT
--serving-only``) leaves out ``train_step``, the optimizer's slots and training-only extras
(a target network): about a third of the full export's size, and nothing a serving caller runs
changes the weights.

The tokenizer files lie in ``PATH/assets/tokenizer/`` (saved with the padding side the model
needs: left for causal LMs, so ``AutoTokenizer.from_pretrained`` gives batches the model can
generate from) and a description in ``PATH/assets/tf_rl_text.json`` (max_new_tokens, token ids,
algorithm, config, serving_only).
"""
from __future__ import annotations

import json
import os

import numpy as np

from tf_rl_text._compat import tf

TOKENIZER_DIR = os.path.join("assets", "tokenizer")
METADATA_FILE = os.path.join("assets", "tf_rl_text.json")


COMPLETION_SPECS = [
    tf.TensorSpec([None, None], tf.int32, name="completion_ids"),
    tf.TensorSpec([None, None], tf.int32, name="completion_mask"),
]
"""The (B, T) completion half of a batch, as the exported functions take it after the prompt's (B, P)."""


class _Unsaved:
    """Holds the Keras model outside TF's object tracking (its variables are tracked instead)."""

    def __init__(self, agent):
        self.agent = agent


RESERVED_NAMES = ("generate", "sample", "log_probs", "train_step", "optimizer", "model_variables")


def export_policy(agent, path, max_new_tokens, train_step=None, optimizer=None, extra_functions=None, metadata=None,
                  extra_objects=None, serving_only: bool = False):
    """Write ``agent``'s policy as a SavedModel at ``path`` and return ``path``.

    train_step: optional ``(fn, input_signature)`` of the trainer's update; optimizer: the
    optimizer it uses (its state is saved so a loaded ``train_step`` continues training);
    extra_functions: ``{name: (fn, input_signature)}`` exported as more signatures;
    extra_objects: ``{name: trackable}`` saved beside the model and reachable as
    ``loaded.<name>`` (a value head, a target network's variables, ...);
    serving_only: leave out ``train_step`` and ``optimizer`` (inference only, smaller).
    """
    if serving_only:
        train_step = optimizer = None
    if int(max_new_tokens) < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    extra_objects = dict(extra_objects or {})
    for name in list(extra_objects) + list(extra_functions or {}):
        if name in RESERVED_NAMES or not name.isidentifier() or name in (extra_functions or {}) and name in extra_objects:
            raise ValueError(f"extra name {name!r} is taken or not an identifier; the export already uses "
                             f"{', '.join(RESERVED_NAMES)}: pick another name")
    max_new_tokens = int(max_new_tokens)
    module = tf.Module()
    module._holder = _Unsaved(agent)
    module.model_variables = list(agent.model.variables)
    greedy_fn = agent.generate_fn(greedy=True)
    sample_fn = agent.generate_fn(greedy=False)
    ids_spec = tf.TensorSpec([None, None], tf.int32, name="input_ids")
    mask_spec = tf.TensorSpec([None, None], tf.int32, name="attention_mask")

    def generate(input_ids, attention_mask):
        ids, mask = greedy_fn(input_ids, attention_mask, tf.constant(max_new_tokens), tf.constant([0, 0]),
                              tf.constant(1.0))
        return {"sequences": ids, "completion_mask": mask}

    def sample(input_ids, attention_mask, seed, temperature):
        ids, mask = sample_fn(input_ids, attention_mask, tf.constant(max_new_tokens), seed, temperature)
        return {"sequences": ids, "completion_mask": mask}

    def log_probs(input_ids, attention_mask, completion_ids, completion_mask):
        return {"log_probs": agent.log_probs(input_ids, attention_mask, completion_ids, completion_mask)}

    # the built-in signatures compile as the agent's own functions do (AutoGraph only if the model needs it)
    generate = agent.compile_fn(generate, [ids_spec, mask_spec])
    sample = agent.compile_fn(sample, [ids_spec, mask_spec, tf.TensorSpec([2], tf.int32, name="seed"),
                                       tf.TensorSpec([], tf.float32, name="temperature")])
    log_probs = agent.compile_fn(log_probs, [ids_spec, mask_spec] + COMPLETION_SPECS)

    module.generate, module.sample, module.log_probs = generate, sample, log_probs
    signatures = {"serving_default": generate, "generate": generate, "sample": sample, "log_probs": log_probs}
    functions = dict(extra_functions or {})
    if train_step is not None:
        functions["train_step"] = train_step
    for name, (fn, signature) in functions.items():
        compiled = tf.function(fn, input_signature=signature)
        setattr(module, name, compiled)
        signatures[name] = compiled
    if optimizer is not None:
        if not optimizer.variables:
            optimizer.build(agent.trainable_variables)
        module.optimizer = optimizer
    for name, obj in extra_objects.items():
        setattr(module, name, obj)
    os.makedirs(path, exist_ok=True)
    tf.saved_model.save(module, path, signatures=signatures)
    _save_tokenizer(agent.tokenizer, os.path.join(path, TOKENIZER_DIR), agent.padding_side)
    meta = {
        "format": "tf_rl_text.policy/1",
        "max_new_tokens": max_new_tokens,
        "padding_side": agent.padding_side,
        "eos_token_id": agent.eos_token_id,
        "pad_token_id": agent.pad_token_id,
        "model_type": getattr(agent.model.config, "model_type", None),
        "signatures": sorted(signatures),
        "serving_only": bool(serving_only),
    }
    meta.update(metadata or {})
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=1, default=str)
    return path


def _save_tokenizer(tokenizer, folder, padding_side):
    """``save_pretrained`` with ``padding_side`` written into tokenizer_config.json (the agent pads
    itself, so the tokenizer object's own setting may differ; a reloaded tokenizer must not)."""
    tokenizer.save_pretrained(folder)
    config_path = os.path.join(folder, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config["padding_side"] = padding_side
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)


class LoadedPolicy:
    """A policy loaded from an exported SavedModel: texts in, texts out.

    ``loaded.module`` is the raw ``tf.saved_model.load`` object; ``loaded.tokenizer`` the
    tokenizer shipped beside it.
    """

    def __init__(self, path):
        from transformers import AutoTokenizer

        meta_path = os.path.join(path, METADATA_FILE)
        if not os.path.exists(meta_path):
            raise FileNotFoundError(
                f"{path!r} is not a tf_rl_text SavedModel (no {METADATA_FILE}); export one with trainer.export(path)"
            )
        with open(meta_path) as f:
            self.metadata = json.load(f)
        self.path = path
        self.module = tf.saved_model.load(path)
        self.tokenizer = AutoTokenizer.from_pretrained(os.path.join(path, TOKENIZER_DIR))
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.max_new_tokens = int(self.metadata["max_new_tokens"])

    def _encode(self, texts):
        """Token ids padded as the exported model expects: left for causal LMs, right for encoders."""
        from tf_rl_text.agent import pad_token_ids

        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return pad_token_ids(encoded, self.tokenizer.pad_token_id, self.metadata.get("padding_side", "left"))

    def generate(self, texts, greedy: bool = True, seed: int = 0, temperature: float = 1.0):
        """Complete each text; returns the completions (prompt not repeated)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return []
        ids, mask = self._encode(list(texts))
        if greedy:
            out = self.module.generate(tf.constant(ids), tf.constant(mask))
        else:
            out = self.module.sample(tf.constant(ids), tf.constant(mask), tf.constant([seed, 0], tf.int32),
                                     tf.constant(temperature, tf.float32))
        seqs, cmask = out["sequences"].numpy(), out["completion_mask"].numpy()
        return [self.tokenizer.decode(r[m.astype(bool)].tolist(), skip_special_tokens=True) for r, m in zip(seqs, cmask)]


def load(path) -> LoadedPolicy:
    """Load a policy written by ``trainer.export(path)``; ``load(path).generate(["a prompt"])``."""
    return LoadedPolicy(path)


__all__ = ["export_policy", "load", "LoadedPolicy"]
