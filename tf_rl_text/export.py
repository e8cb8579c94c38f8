"""SavedModel export of a trained policy, and loading it back for inference.

A SavedModel written here loads with plain ``tf.saved_model.load(path)`` in a process that never
imports tf_rl_text. Its functions (all also reachable as ``loaded.signatures[name]``):

* ``generate`` (= ``serving_default``): ``input_ids``, ``attention_mask`` (B, P) int32, left
  padded -> ``sequences`` (B, max_new_tokens) greedy completion ids and ``completion_mask``;
* ``sample``: the same plus ``seed`` (2,) int32 and ``temperature`` () float32, sampled (top-k
  filtering as the exported agent's ``top_k``, recorded in the description);
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


RESERVED_NAMES = ("generate", "sample", "log_probs", "train_step", "optimizer", "model_variables")


def export_policy(agent, path, max_new_tokens, train_step=None, optimizer=None, extra_functions=None, metadata=None,
                  extra_objects=None):
    """Write ``agent``'s policy as a SavedModel at ``path`` and return ``path``.

    train_step: optional ``(fn, input_signature)`` of the trainer's update; optimizer: the
    optimizer it uses (its state is saved so a loaded ``train_step`` continues training);
    extra_functions: ``{name: (fn, input_signature)}`` exported as more signatures;
    extra_objects: ``{name: trackable}`` saved beside the model and reachable as
    ``loaded.<name>`` (a value head, a target network's variables, ...).
    """
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
    agent.tokenizer.save_pretrained(os.path.join(path, TOKENIZER_DIR))
    meta = {
        "format": "tf_rl_text.policy/1",
        "max_new_tokens": max_new_tokens,
        "padding_side": agent.padding_side,
        "eos_token_id": agent.eos_token_id,
        "pad_token_id": agent.pad_token_id,
        "model_type": getattr(agent.model.config, "model_type", None),
        "temperature": agent.temperature,  # the default of LoadedPolicy's sampling
        "top_k": agent.top_k,              # baked into the ``sample`` signature
        "signatures": sorted(signatures),
    }
    meta.update(metadata or {})
    with open(os.path.join(path, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=1, default=str)
    return path


SAMPLE_OPTIONS = {
    "temperature": (tf.float32, 1.0),
    "top_k": (tf.int32, 0),
}
"""Sampling options :class:`LoadedPolicy` knows: name -> (dtype of the exported ``sample`` input
that takes it, default when the export's description records no value). An export whose
``sample`` signature has the input gets the value as a tensor; one without it had the option
fixed at export (its value in the description, ``tf_rl_text.json``), and asking for another
value is a ValueError. A new option (top-p, a repetition penalty) is one
more entry here plus the input in :func:`export_policy`; older exports stay loadable."""


class LoadedPolicy:
    """A policy loaded from an exported SavedModel: texts in, texts out.

    ``loaded.module`` is the raw ``tf.saved_model.load`` object; ``loaded.tokenizer`` the
    tokenizer shipped beside it.

    Greedy or sampled follows the rule of ``RLAgent.generate_text``
    (:func:`tf_rl_text.agent.resolve_greedy`): :meth:`generate` decodes greedily unless
    ``greedy=False`` or a sampling argument (``seed``, ``temperature``, ``top_k``) is given;
    :meth:`sample` always samples. ``max_new_tokens`` may be at most the exported maximum
    (``loaded.max_new_tokens``): the SavedModel generates that many and the output is cut, which
    gives the same tokens as a shorter run (sampling draws each position from its own seed) at
    the cost of the full length.
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
        sample_fn = self.module.signatures.get("sample")
        self._sample_inputs = set(sample_fn.structured_input_signature[1]) if sample_fn is not None else None

    def _encode(self, texts):
        """Token ids padded as the exported model expects: left for causal LMs, right for encoders."""
        from tf_rl_text.agent import pad_token_ids

        encoded = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return pad_token_ids(encoded, self.tokenizer.pad_token_id, self.metadata.get("padding_side", "left"))

    def _sample_options(self, options):
        """The export's ``sample`` inputs for the given options (None = this export's default)."""
        if self._sample_inputs is None:
            raise ValueError(f"{self.path!r} has no sample signature, so it can only decode greedily: call generate "
                             f"without greedy=False, seed, temperature or top_k")
        inputs = {}
        for name, (dtype, default) in SAMPLE_OPTIONS.items():
            value = options.get(name)
            if name in self._sample_inputs:
                inputs[name] = tf.constant(self.metadata.get(name, default) if value is None else value, dtype)
            elif value is not None and value != self.metadata.get(name, object()):
                fixed = (f"fixed at {self.metadata[name]!r} when it was exported" if name in self.metadata
                         else "fixed when it was exported (this export does not record the value)")
                raise ValueError(f"{name}={value!r}: this export's sample signature has no {name} input, its {name} "
                                 f"is {fixed}; leave {name} unset, or export from an agent built with "
                                 f"RLAgent(..., {name}={value!r})")
        return inputs

    def _run(self, texts, greedy, seed, max_new_tokens, options):
        from tf_rl_text.agent import check_sampling_args

        check_sampling_args(max_new_tokens=max_new_tokens, max_allowed=self.max_new_tokens)
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        inputs = None if greedy else self._sample_options(options)  # validated before any work
        if not texts:
            return []
        ids, mask = self._encode(texts)
        if greedy:
            out = self.module.generate(tf.constant(ids), tf.constant(mask))
        else:
            seed = 0 if seed is None else int(seed)
            out = self.module.signatures["sample"](input_ids=tf.constant(ids), attention_mask=tf.constant(mask),
                                                   seed=tf.constant([seed, 0], tf.int32), **inputs)
        n = self.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        seqs, cmask = out["sequences"].numpy()[:, :n], out["completion_mask"].numpy()[:, :n]
        return [self.tokenizer.decode(r[m.astype(bool)].tolist(), skip_special_tokens=True) for r, m in zip(seqs, cmask)]

    def generate(self, texts, greedy: bool | None = None, seed: int | None = None, temperature: float | None = None,
                 top_k: int | None = None, max_new_tokens: int | None = None):
        """Complete each text; returns the completions (prompt not repeated).

        Greedy by default (the export's ``generate``); sampled (the export's ``sample``) with
        ``greedy=False`` or when ``seed``, ``temperature`` or ``top_k`` is given, as
        ``RLAgent.generate_text`` does. ``greedy=True`` with ``temperature``/``top_k`` is a ValueError.
        Sampling defaults: seed 0 (the same output on every call: pass seeds for different
        samples), the exported agent's temperature and top_k. ``max_new_tokens``: at most the
        exported maximum (default), see the class notes.
        """
        from tf_rl_text.agent import resolve_greedy

        greedy = resolve_greedy(greedy, temperature, top_k, seed)
        return self._run(texts, greedy, seed, max_new_tokens, {"temperature": temperature, "top_k": top_k})

    def sample(self, texts, seed: int = 0, temperature: float | None = None, top_k: int | None = None,
               max_new_tokens: int | None = None):
        """Sampled completions, the export's ``sample`` signature (``seed``, ``temperature``) for texts.

        temperature: > 0, default the exported agent's (usually 1.0). top_k: the exported
        agent's top-k is fixed in the signature; passing another value is a ValueError that says so.
        max_new_tokens: at most the exported maximum.
        """
        from tf_rl_text.agent import check_sampling_args

        check_sampling_args(temperature, top_k, seed=seed)
        return self._run(texts, False, seed, max_new_tokens, {"temperature": temperature, "top_k": top_k})


def load(path) -> LoadedPolicy:
    """Load a policy written by ``trainer.export(path)``; ``load(path).generate(["a prompt"])``.

    A choice policy (a sequence classifier, :mod:`tf_rl_text.choice`) loads as a
    :class:`~tf_rl_text.choice.LoadedChoicePolicy`: ``load(path).choose(...)``.
    """
    meta_path = os.path.join(path, METADATA_FILE)
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if str(meta.get("format", "")).startswith("tf_rl_text.choice/"):
            from tf_rl_text.choice import LoadedChoicePolicy

            return LoadedChoicePolicy(path, meta)
    return LoadedPolicy(path)


__all__ = ["export_policy", "load", "LoadedPolicy", "SAMPLE_OPTIONS"]
