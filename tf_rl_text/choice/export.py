"""Exporting a choice policy as a SavedModel that plain TensorFlow serves, and loading it back."""
from __future__ import annotations

import contextlib
import json
import os

import numpy as np

from tf_rl_text._compat import tf
from tf_rl_text.choice.agent import completions_of
from tf_rl_text.choice.selection import INPUT_NAMES, encode_choices, sample_selection


# --------------------------------------------------------------------------- export
CHOICE_FORMAT = "tf_rl_text.choice/1"


def export_choice_policy(agent, path, select=1, labels=None, train_step=None, optimizer=None, metadata=None):
    """Write a choice policy as a SavedModel at ``path``; returns ``path``.

    Signatures (plain TF: ``tf.saved_model.load(path).choose(...)``):

    * ``choose`` (= ``serving_default``): ``input_ids``, ``attention_mask``, ``token_type_ids``
      (B, C, L) pairs [or (B, L) texts for a choice among labels], ``choice_mask`` (B, C) ->
      ``choice`` (B,) the most likely choice, ``probabilities`` (B, C) pi(. | s), ``ranking`` (B, k)
      the ``select`` most likely choices in order and ``ranking_mask`` (B, k) (0 past a row's choices);
    * ``train_step`` (when given): one update of the trainer, e.g. REINFORCE's
      (inputs, choice_mask, actions, action_mask, advantages) -> ``loss``.

    An agent with LoRA adapters exports the merged plain classifier (as :func:`~tf_rl_text.export.export_policy`
    does), without ``train_step`` and optimizer state (metadata ``lora`` says so); the live model is unchanged.
    """
    from tf_rl_text.savedmodel import METADATA_FILE, TOKENIZER_DIR, Unsaved, check_replaceable, write_atomically
    from tf_rl_text.validation import check_writable_folder

    check_writable_folder(path, "export")  # before the (slow) tracing, as export_policy
    check_replaceable(path)
    lora = getattr(agent, "lora", None)
    if lora is not None:  # the merged plain model, as export_policy writes it: no adapter training in it
        train_step = optimizer = None
        metadata = dict(metadata or {}, lora=lora.export_metadata())
    candidates_mode = labels is None
    rank = 3 if candidates_mode else 2
    specs = [tf.TensorSpec([None] * rank, tf.int32, name=n) for n in INPUT_NAMES]
    specs.append(tf.TensorSpec([None, None], tf.int32, name="choice_mask"))
    k, temperature = int(select), agent.temperature

    def choose(input_ids, attention_mask, token_type_ids, choice_mask):
        logits = agent.choice_logits(input_ids, attention_mask, token_type_ids, choice_mask)
        probabilities = tf.nn.softmax(logits / temperature, axis=-1)
        ranking, ranking_mask = sample_selection(logits, choice_mask, k, tf.constant([0, 0]), greedy=True)
        return {"choice": tf.argmax(logits, axis=-1, output_type=tf.int32), "probabilities": probabilities,
                "ranking": ranking, "ranking_mask": ranking_mask}

    module = tf.Module()
    module._holder = Unsaved(agent)
    module.model_variables = list(agent.model.variables)
    module.choose = agent.compile_fn(choose, specs)
    signatures = {"serving_default": module.choose, "choose": module.choose}
    if train_step is not None:
        fn, signature = train_step
        module.train_step = tf.function(fn, input_signature=signature)
        signatures["train_step"] = module.train_step
    if optimizer is not None:
        module.optimizer = optimizer
    meta = {"format": CHOICE_FORMAT, "mode": "candidates" if candidates_mode else "labels", "select": k,
            "labels": labels, "max_length": agent.max_length, "temperature": temperature,
            "model_type": getattr(agent.model.config, "model_type", None), "signatures": sorted(signatures)}
    meta.update(metadata or {})

    def write(folder):
        with lora.merged() if lora is not None else contextlib.nullcontext():  # traced, saved merged
            tf.saved_model.save(module, folder, signatures=signatures)
        agent.tokenizer.save_pretrained(os.path.join(folder, TOKENIZER_DIR))
        with open(os.path.join(folder, METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=1, default=str)

    # one atomic writer for every export: a failed or killed write never leaves a folder that looks complete
    return write_atomically(path, write)


class LoadedChoicePolicy:
    """A choice policy loaded from its SavedModel: texts in, choice out. ``tf_rl_text.load`` returns one."""

    def __init__(self, path, metadata):
        from transformers import AutoTokenizer

        from tf_rl_text.savedmodel import TOKENIZER_DIR

        self.path, self.metadata = path, metadata
        self.module = tf.saved_model.load(path)
        self.tokenizer = AutoTokenizer.from_pretrained(os.path.join(path, TOKENIZER_DIR))
        self.labels = metadata.get("labels")
        self.select = int(metadata.get("select", 1))

    def scores(self, prompts, candidates=None):
        """The exported ``choose`` on texts: dict of numpy ``choice``, ``probabilities``, ``ranking``."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if (candidates is None) != (self.labels is not None):
            raise ValueError("this policy chooses among " + ("its labels: call choose(texts)" if self.labels is not None
                             else "candidates: call choose(prompts, candidates) with one list of texts per prompt"))
        inputs, choice_mask = encode_choices(self.tokenizer, list(prompts), candidates, int(self.metadata["max_length"]))
        if choice_mask is None:
            choice_mask = np.ones((len(prompts), len(self.labels)), np.int32)
        out = self.module.choose(*[tf.constant(inputs[n]) for n in INPUT_NAMES], tf.constant(choice_mask))
        return {k: v.numpy() for k, v in out.items()}

    def choose(self, prompts, candidates=None):
        """The greedy choice of each state as text: the chosen candidate(s) (``select`` > 1: joined in their
        original order) or the chosen label's name."""
        out = self.scores(prompts, candidates)
        return completions_of(out["ranking"], out["ranking_mask"], candidates, self.labels)


__all__ = ["export_choice_policy", "LoadedChoicePolicy", "CHOICE_FORMAT"]
