"""What every policy shares: :class:`PolicyBase`, under the token policy (:class:`~tf_rl_text.RLAgent`,
actions = tokens) and the choice policy (:class:`~tf_rl_text.choice.ChoiceAgent`, actions = choices),
which stand beside each other on it.

The shared part: the Hugging Face model and its tokenizer, the seeded random generator the policy
samples with, compiling the functions that run the model (with AutoGraph only where the model needs
it), LoRA adapters (the trainable variables are then the adapters alone), the frozen reference copy
of the KL leash and trust regions, and saving. Trainers rely on exactly these; each policy adds its
own way to act and to score.
"""
from __future__ import annotations

import random

from tf_rl_text._compat import tf
from tf_rl_text.lora import AdaptersOff
from tf_rl_text.precision import copy_model


class PolicyBase:
    """The model, tokenizer, random generator, compiled functions, LoRA, reference copy and saving of a policy.

    A subclass sets ``model``, ``tokenizer`` and ``autograph`` and calls :meth:`_init_rng` in its ``__init__``.
    """

    lora = None
    """The :class:`~tf_rl_text.lora.LoRA` adapters once :meth:`attach_lora` was called, else None."""
    value_head = None
    """A :class:`~tf_rl_text.heads.ValueHead` once attached (token policies, actor-critic), else None."""
    autograph = False

    def _init_rng(self, seed):
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.rng = tf.random.Generator.from_seed(self.seed)

    def _next_seed(self):
        return tf.cast(self.rng.make_seeds(1)[:, 0], tf.int32)

    def compile_fn(self, fn, input_signature=None, **kwargs):
        """``tf.function(fn, input_signature, **kwargs)`` for code that runs this policy's model,
        with AutoGraph only if the model needs it (:attr:`autograph`). Trainers compile through here."""
        return tf.function(fn, input_signature=input_signature, autograph=self.autograph, **kwargs)

    def graph_code(self, fn):
        """``fn`` marked as plain graph code (AutoGraph leaves it alone) unless the model needs
        AutoGraph: for functions another ``tf.function`` will trace (the export's ``train_step``)."""
        return fn if self.autograph else tf.autograph.experimental.do_not_convert(fn)

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
        """Forget the compiled functions that run the model (they retrace on next use): after LoRA attaches."""

    def save_pretrained(self, path: str):
        """Save model and tokenizer with ``save_pretrained`` (loadable with ``from_pretrained``)."""
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        if self.value_head is not None:  # actor-critic: the critic travels with the model
            self.value_head.save(path)


__all__ = ["PolicyBase"]
