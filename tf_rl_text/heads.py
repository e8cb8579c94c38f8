"""Heads on a language model's hidden states: Keras layers that read (B, L, hidden) and add a
critic (value head) or Q-values to the policy.

The agent carries a value head (``agent.attach_value_head()``; ``agent.values(ids, mask)``),
and ``agent.save_pretrained(folder)`` writes it beside the model so that
``agent.load_value_head(folder)`` restores it.
"""
from __future__ import annotations

import collections
import json
import os

import numpy as np

from tf_rl_text._compat import keras, tf

__all__ = ["ValueHead", "VALUE_HEAD_CONFIG", "VALUE_HEAD_WEIGHTS", "QHead", "QHeadModel", "QOutput", "clone_q_model",
           "q_target_pairs"]

VALUE_HEAD_CONFIG = "value_head_config.json"
VALUE_HEAD_WEIGHTS = "value_head_weights.npz"


class ValueHead(keras.layers.Layer):
    """The critic V(s_t): one scalar per position from the LM's last hidden states.

    hidden_states (B, L, hidden) -> values (B, L), where position t holds the value of the
    state "prompt plus tokens up to t" (the state that picks token t+1). A dropout and a
    ``Dense(1)``, as in the value heads of Ziegler et al. 2019 ("Fine-Tuning Language Models
    from Human Preferences") and TRL; the kernel starts at zero so a fresh head predicts 0 and
    sends no gradient into the language model until it has learned something.

    Args:
      dropout: dropout rate on the hidden states (active only with ``training=True``).
      kernel_initializer: initializer of the ``Dense(1)`` kernel ("zeros" by default).

    Example::

        from tf_rl_text import RLAgent, default_model, default_tokenizer
        from tf_rl_text.heads import ValueHead
        tokenizer = default_tokenizer()
        agent = RLAgent(default_model(tokenizer), tokenizer)
        agent.attach_value_head(ValueHead())
        ids, mask = agent.encode_prompts(["the movie was"])
        print(agent.values(ids, mask))          # (1, 5) tensor (one value per prompt token), zeros for a fresh head
        agent.save_pretrained("/tmp/policy")    # model, tokenizer and value head
    """

    def __init__(self, dropout: float = 0.0, kernel_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if dropout is None or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dropout_rate = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.dense = keras.layers.Dense(1, kernel_initializer=self.kernel_initializer, name="value")

    def build(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 3 or input_shape[-1] is None:
            raise ValueError(f"ValueHead expects hidden states of shape (batch, length, hidden), got {input_shape}")
        self.dense.build(input_shape)
        super().build(input_shape)

    def call(self, hidden_states, training=False):
        x = self.dropout(hidden_states, training=training)
        return tf.squeeze(self.dense(x), axis=-1)  # (B, L)

    def get_config(self):
        config = super().get_config()
        config.update(dropout=self.dropout_rate, kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config

    # ------------------------------------------------------------------ save / load
    def save(self, folder: str):
        """Write ``value_head_config.json`` and ``value_head_weights.npz`` into ``folder``."""
        if not self.built:
            raise ValueError("this ValueHead has no weights yet; call it on hidden states (or attach it) before saving")
        os.makedirs(folder, exist_ok=True)
        hidden = int(self.dense.kernel.shape[0])
        with open(os.path.join(folder, VALUE_HEAD_CONFIG), "w") as f:
            json.dump({"class": "ValueHead", "hidden_size": hidden, "config": self.get_config()}, f, indent=1)
        np.savez(os.path.join(folder, VALUE_HEAD_WEIGHTS), *self.get_weights())
        return folder

    @classmethod
    def load(cls, folder: str) -> "ValueHead":
        """The value head saved in ``folder`` by :meth:`save` (or ``agent.save_pretrained``)."""
        path = os.path.join(folder, VALUE_HEAD_CONFIG)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"no value head in {folder!r} (missing {VALUE_HEAD_CONFIG}); save one with agent.save_pretrained(folder)"
            )
        with open(path) as f:
            saved = json.load(f)
        head = cls.from_config(saved["config"])
        head.build(tf.TensorShape([None, None, saved["hidden_size"]]))
        with np.load(os.path.join(folder, VALUE_HEAD_WEIGHTS)) as weights:
            head.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
        return head




# =========================================================================== Q head (value-based trainers)
class QHead(keras.layers.Layer):
    """Q(s_t, .) over the vocabulary from the LM's last hidden states: (B, L, H) -> (B, L, V).

    A linear layer, ``Q(s_t, a) = h_t . W[:, a] + b[a]``, trained by the value-based trainers
    (``QLearningConfig(q_values="head")``) instead of reading the LM logits as Q-values
    (the Q-network of Mnih et al. 2015, over tokens as in Guo et al. 2021).

    Args:
      num_actions: the number of actions (the vocabulary size), >= 1.
      use_bias: add a per-action bias.
      kernel_initializer, bias_initializer: Keras initializers. The default kernel is small
        (normal, stddev 0.02, as GPT-2 initialises its projections) so Q starts near 0.

    Example::

        import tensorflow as tf
        from tf_rl_text.heads import QHead
        head = QHead(num_actions=512)
        q = head(tf.zeros([2, 5, 64]))          # (2, 5, 512)
        QHead.from_config(head.get_config())    # round-trips
    """

    def __init__(self, num_actions: int, use_bias: bool = True, kernel_initializer=None, bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        if num_actions is None or int(num_actions) != num_actions or num_actions < 1:
            raise ValueError(f"num_actions must be an integer >= 1 (the vocabulary size), got {num_actions!r}")
        self.num_actions = int(num_actions)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or keras.initializers.RandomNormal(stddev=0.02))
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        hidden = input_shape[-1]
        if hidden is None:
            raise ValueError(f"QHead needs a known hidden size (last axis), got input shape {input_shape}")
        self.kernel = self.add_weight("kernel", shape=[int(hidden), self.num_actions],
                                      initializer=self.kernel_initializer, trainable=True)
        self.bias = (self.add_weight("bias", shape=[self.num_actions], initializer=self.bias_initializer,
                                     trainable=True) if self.use_bias else None)
        super().build(input_shape)

    def call(self, hidden_states):
        q = tf.einsum("...h,ha->...a", hidden_states, tf.cast(self.kernel, hidden_states.dtype))  # (B, L, V)
        if self.bias is not None:
            q += tf.cast(self.bias, q.dtype)
        return q

    def get_config(self):
        config = super().get_config()
        config.update(
            num_actions=self.num_actions,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config




# =========================================================================== Q-head model (q_values="head")
QOutput = collections.namedtuple("QOutput", ["logits", "past_key_values"])


class QHeadModel(tf.Module):
    """A causal LM whose "logits" are a :class:`~tf_rl_text.heads.QHead` on its last hidden states.

    Looks like a Hugging Face causal LM to :class:`~tf_rl_text.RLAgent` (``config``, ``call`` with
    ``past_key_values``/``use_cache``), so generation with a KV cache, export and scoring all
    work unchanged. The LM's own weights are shared, not copied.
    """

    def __init__(self, lm, head: QHead | None = None, name=None):
        super().__init__(name=name or "q_head_model")
        self.lm = lm
        self.config = lm.config
        self.head = head or QHead(int(lm.config.vocab_size), name="q_head")
        if not self.head.built:
            hidden = getattr(lm.config, "n_embd", None) or getattr(lm.config, "hidden_size")
            self.head(tf.zeros([1, 1, int(hidden)]))
        self.built = True

    @property
    def dummy_inputs(self):
        return self.lm.dummy_inputs

    @property
    def variables(self):
        return list(self.lm.variables) + list(self.head.variables)

    @property
    def trainable_variables(self):
        return list(self.lm.trainable_variables) + list(self.head.trainable_variables)

    def get_weights(self):
        return [v.numpy() for v in self.variables]

    def set_weights(self, weights):
        for v, w in zip(self.variables, weights):
            v.assign(w)

    def call(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False,
             training=False, **kwargs):
        out = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                      past_key_values=past_key_values, use_cache=use_cache, output_hidden_states=True,
                      training=training)
        q = self.head(out.hidden_states[-1])  # (B, L, V)
        return QOutput(q, out.past_key_values if use_cache else None)

    __call__ = call


def clone_q_model(model, lora=None):
    """The target network of the value-based trainers for ``model`` (an HF causal LM or a
    :class:`QHeadModel`), with the same weights and not trainable.

    Without ``lora``: a separate copy of the whole network. With ``lora`` (the
    :class:`~tf_rl_text.lora.LoRA` adapters on the model): the same frozen base run with a copy of the
    adapters (:class:`~tf_rl_text.lora.AdapterCopy`), plus a copy of the Q head, so the target network
    holds no second copy of the base weights. :func:`q_target_pairs` pairs its variables with the
    online ones."""
    from tf_rl_text.precision import new_like

    head = isinstance(model, QHeadModel)
    if lora is not None:
        lm = lora.copy(name="target_adapters")
    else:
        lm = new_like(model.lm if head else model)  # under the LM's dtype policy, like the online network
    copy = QHeadModel(lm, QHead.from_config(model.head.get_config()), name="target_" + model.name) if head else lm
    try:
        for online, target in q_target_pairs(model, copy):
            target.assign(online)
    except ValueError as err:
        raise ValueError(f"cannot build a target network for {type(model).__name__}: {err}") from None
    if hasattr(copy, "trainable"):
        copy.trainable = False
    return copy


def q_target_pairs(model, target):
    """``[(online, target), ...]``: the variables a target-network sync assigns. Whole networks pair by
    name (:func:`~tf_rl_text.precision.paired_variables`, so frozen layers pair correctly); a LoRA target
    (its LM an :class:`~tf_rl_text.lora.AdapterCopy`) pairs only the adapters and the Q head."""
    from tf_rl_text.lora import AdapterCopy
    from tf_rl_text.precision import paired_variables

    head = isinstance(model, QHeadModel)
    target_lm = target.lm if head else target
    if not isinstance(target_lm, AdapterCopy):
        return paired_variables(model.variables, target.variables)
    pairs = target_lm.variable_pairs()
    if head:
        pairs += paired_variables(model.head.variables, target.head.variables)
    return pairs


