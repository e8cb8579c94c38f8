"""SavedModel export of a trained policy, and loading it back for inference.

A SavedModel written here loads with plain ``tf.saved_model.load(path)`` in a process that never
imports tf_rl_text. Its functions (all also reachable as ``loaded.signatures[name]``):

* ``generate`` (= ``serving_default``): ``input_ids``, ``attention_mask`` (B, P) int32, left
  padded -> ``sequences`` (B, max_new_tokens) greedy completion ids and ``completion_mask``;
* ``sample``: the same plus ``seed`` (2,) int32 and ``temperature`` () float32, sampled; also
  callable (as ``loaded.sample``, or the signature ``sample_controls``) with the sampling controls
  after them: ``top_p`` () float32 (1 = off), ``repetition_penalty`` () float32 (1 = off),
  ``min_new_tokens`` () int32 and ``stop_token_ids`` (S,) int32 (see :meth:`RLAgent.generate`).
  Exports from before the controls have only the 4-input form (metadata ``sampling_controls``
  absent);
* ``log_probs``: ``input_ids``, ``attention_mask`` (B, P) prompts as above, ``completion_ids``,
  ``completion_mask`` (B, T) -> ``log_probs`` (B, T), log pi of each completion token;
* ``train_step``: one update of the trainer's algorithm (for REINFORCE: the four tensors of
  ``log_probs`` plus ``advantages`` (B, T) -> ``loss``), which changes the loaded variables;
* whatever a trainer adds (``q_values``, ``values``...).

The tokenizer files lie in ``PATH/assets/tokenizer/`` and a description in
``PATH/assets/tf_rl_text.json`` (max_new_tokens, token ids, algorithm, config).
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


RESERVED_NAMES = ("generate", "sample", "sample_controls", "log_probs", "train_step", "optimizer", "model_variables")


def export_policy(agent, path, max_new_tokens, train_step=None, optimizer=None, extra_functions=None, metadata=None,
                  extra_objects=None):
    """Write ``agent``'s policy as a SavedModel at ``path`` and return ``path``.

    train_step: optional ``(fn, input_signature)`` of the trainer's update; optimizer: the
    optimizer it uses (its state is saved so a loaded ``train_step`` continues training);
    extra_functions: ``{name: (fn, input_signature)}`` exported as more signatures;
    extra_objects: ``{name: trackable}`` saved beside the model and reachable as
    ``loaded.<name>`` (a value head, a target network's variables, ...).

    An agent with LoRA adapters exports the merged, plain model (weights ``W + (alpha / rank) A B``,
    no adapter ops); its ``train_step`` and optimizer state are the adapters', so they are left out
    (metadata ``lora`` says so; keep training from ``agent.lora.save(path)``). The live model is unchanged.
    """
    lora = getattr(agent, "lora", None)
    if lora is None:
        return _write_policy(agent, path, max_new_tokens, train_step, optimizer, extra_functions, metadata,
                             extra_objects)
    metadata = dict(metadata or {}, lora=dict(lora.config(), merged=True, train_step="left out: it trains adapters"))
    traced, agent._generate_fns = agent._generate_fns, {}  # graphs traced with the adapters on stay for live use
    try:
        with lora.merged():
            return _write_policy(agent, path, max_new_tokens, None, None, extra_functions, metadata, extra_objects)
    finally:
        agent._generate_fns = traced


def _write_policy(agent, path, max_new_tokens, train_step, optimizer, extra_functions, metadata, extra_objects):
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
    controlled_fn = agent.generate_fn(greedy=False, nucleus=True, penalty=True)
    ids_spec = tf.TensorSpec([None, None], tf.int32, name="input_ids")
    mask_spec = tf.TensorSpec([None, None], tf.int32, name="attention_mask")

    def generate(input_ids, attention_mask):
        ids, mask = greedy_fn(input_ids, attention_mask, tf.constant(max_new_tokens), tf.constant([0, 0]),
                              tf.constant(1.0))
        return {"sequences": ids, "completion_mask": mask}

    def sample(input_ids, attention_mask, seed, temperature, top_p=None, repetition_penalty=None,
               min_new_tokens=None, stop_token_ids=None):
        if top_p is None:  # the 4-input form every export has had
            ids, mask = sample_fn(input_ids, attention_mask, tf.constant(max_new_tokens), seed, temperature)
        else:
            ids, mask = controlled_fn(input_ids, attention_mask, tf.constant(max_new_tokens), seed, temperature, top_p,
                                      repetition_penalty, min_new_tokens, stop_token_ids)
        return {"sequences": ids, "completion_mask": mask}

    def log_probs(input_ids, attention_mask, completion_ids, completion_mask):
        return {"log_probs": agent.log_probs(input_ids, attention_mask, completion_ids, completion_mask)}

    # the built-in signatures compile as the agent's own functions do (AutoGraph only if the model needs it)
    generate = agent.compile_fn(generate, [ids_spec, mask_spec])
    sample_specs = [ids_spec, mask_spec, tf.TensorSpec([2], tf.int32, name="seed"),
                    tf.TensorSpec([], tf.float32, name="temperature")]
    control_specs = [tf.TensorSpec([], tf.float32, name="top_p"),
                     tf.TensorSpec([], tf.float32, name="repetition_penalty"),
                     tf.TensorSpec([], tf.int32, name="min_new_tokens"),
                     tf.TensorSpec([None], tf.int32, name="stop_token_ids")]
    sample = agent.compile_fn(sample)  # two forms: sample(4 inputs) and sample(4 + the 4 sampling controls)
    sample_plain = sample.get_concrete_function(*sample_specs)
    sample_controls = sample.get_concrete_function(*sample_specs, *control_specs)
    log_probs = agent.compile_fn(log_probs, [ids_spec, mask_spec] + COMPLETION_SPECS)

    module.generate, module.sample, module.log_probs = generate, sample, log_probs
    signatures = {"serving_default": generate, "generate": generate, "sample": sample_plain,
                  "sample_controls": sample_controls, "log_probs": log_probs}
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
    agent.tokenizer.save_pretrained(os.path.join(path, TOKENIZER_DIR))
    meta = {
        "format": "tf_rl_text.policy/1",
        "max_new_tokens": max_new_tokens,
        "padding_side": agent.padding_side,
        "eos_token_id": agent.eos_token_id,
        "pad_token_id": agent.pad_token_id,
        "model_type": getattr(agent.model.config, "model_type", None),
        "signatures": sorted(signatures),
        "sampling_controls": ["top_p", "repetition_penalty", "min_new_tokens", "stop_token_ids"],
    }
    meta.update(metadata or {})
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=1, default=str)
    return path


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
