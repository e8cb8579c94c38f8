"""ChoiceAgent: a sequence classifier as a policy over choices (a sibling of RLAgent on PolicyBase)."""
from __future__ import annotations


import numpy as np

from tf_rl_text._compat import tf
from tf_rl_text.choice.selection import (INPUT_NAMES, encode_choices, is_sequence_classifier, mask_choices,
                                         sample_selection, selection_log_probs)
from tf_rl_text.policy import PolicyBase
from tf_rl_text.tokens import resolve_tokenizer


# --------------------------------------------------------------------------- agent
class ChoiceAgent(PolicyBase):
    """A policy over choices, pi(a | s) = softmax of a sequence classifier's logits over the choices in s.

    ``RLAgent(classifier)`` returns one: a sibling of the token policy on
    :class:`~tf_rl_text.policy.PolicyBase` (model, tokenizer, RNG, compiled functions, LoRA, saving). Args:
      model: a Hugging Face ``TF...ForSequenceClassification`` model.
      tokenizer: its tokenizer; None: loaded from the model's folder (``config.name_or_path``).
      temperature: softmax temperature of pi (sampling and log-probabilities).
      seed: seed of the agent's random generator.
      max_length: the most tokens of one (prompt, candidate) pair; the prompt is truncated first.
      score_label: in candidates mode, the logit that scores a pair: the only one of a
        ``num_labels=1`` model, else this label (index or name; default the last label).
      autograph: as for :class:`RLAgent` (off by default: HF's BERT-family code is plain graph code).

    Candidates mode: inputs (B, C, L) -> logits (B, C); labels mode: inputs (B, L) -> logits (B, num_labels).
    """

    def __init__(self, model, tokenizer=None, temperature: float = 1.0, seed: int | None = None,
                 max_length: int = 128, score_label=None, autograph: bool | None = None, **unused):
        if unused:
            raise TypeError(f"ChoiceAgent got arguments it does not take: {sorted(unused)} (they are for "
                            f"generating models; a classifier picks among choices)")
        if not is_sequence_classifier(model):
            raise TypeError(
                f"ChoiceAgent needs a sequence classifier (TF...ForSequenceClassification, e.g. "
                f"TFBertForSequenceClassification), got {type(model).__name__}; a model that generates tokens "
                f"takes RLAgent(model, tokenizer) with TextGenerationEnv")
        if temperature is None or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if int(max_length) != max_length or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2, got {max_length!r}")
        config = model.config
        self.model = model
        self.tokenizer = resolve_tokenizer(model, tokenizer)
        if self.tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token")
        self.pad_token_id = int(self.tokenizer.pad_token_id)
        self.num_labels = int(config.num_labels)
        self.labels = [str(config.id2label.get(i, i)) for i in range(self.num_labels)]
        if score_label is None:
            score_label = self.num_labels - 1
        if isinstance(score_label, str):
            if score_label not in self.labels:
                raise ValueError(f"score_label {score_label!r} is not one of the model's labels {self.labels}")
            score_label = self.labels.index(score_label)
        if int(score_label) != score_label or not 0 <= score_label < self.num_labels:
            raise ValueError(f"score_label must be an index in [0, {self.num_labels}) or a label name, got {score_label!r}")
        self.score_label = int(score_label)
        self.max_length = min(int(max_length), int(getattr(config, "max_position_embeddings", max_length)))
        self.temperature = float(temperature)
        self.top_k = 0
        self.is_encoder_decoder = False
        self.padding_side = "right"
        self.vocab_size = int(config.vocab_size)
        self.autograph = False if autograph is None else bool(autograph)
        self.uses_token_types = "token_type_ids" in getattr(self.tokenizer, "model_input_names", ())
        self._init_rng(seed)
        if not model.built:
            model(model.dummy_inputs, training=False)
        self._logits_fn = self.compile_fn(self.choice_logits, reduce_retracing=True)
        self._select_fns = {}

    # ------------------------------------------------------------------ scoring
    def classifier_logits(self, input_ids, attention_mask, token_type_ids=None, training=False, model=None):
        """The classifier's raw logits for flat inputs (N, L): (N, num_labels) float32."""
        model = self.model if model is None else model
        kwargs = {"token_type_ids": token_type_ids} if self.uses_token_types and token_type_ids is not None else {}
        logits = model(input_ids=input_ids, attention_mask=attention_mask, training=training, **kwargs).logits
        return tf.cast(logits, tf.float32)

    def choice_logits(self, input_ids, attention_mask, token_type_ids, choice_mask=None, training=False, model=None):
        """Logits z(s, a) of every choice, :data:`NEG` where unavailable: (B, C), not temperature-scaled.

        Candidates mode: inputs (B, C, L), one (prompt, candidate) pair per choice, C = choice_mask's
        width. Labels mode: inputs (B, L), the choices are the ``num_labels`` outputs.
        """
        if input_ids.shape.rank == 3:
            shape = tf.shape(input_ids)
            flat = [tf.reshape(x, [-1, shape[2]]) for x in (input_ids, attention_mask, token_type_ids)]
            logits = self.classifier_logits(*flat, training=training, model=model)[:, self.score_label]
            logits = tf.reshape(logits, shape[:2])  # (B, C)
        elif input_ids.shape.rank == 2:
            if self.num_labels < 2:
                raise ValueError("a one-label classifier offers a single choice; load it with num_labels=N >= 2 "
                                 "for a choice among labels, or give the environment candidates to score")
            logits = self.classifier_logits(input_ids, attention_mask, token_type_ids, training, model)
        else:
            raise ValueError(f"input_ids must be (B, L) for a choice among labels or (B, C, L) for a choice among "
                             f"candidates, got rank {input_ids.shape.rank}")
        if choice_mask is None:
            return logits
        return mask_choices(logits, choice_mask)

    def log_probs_of_choices(self, inputs, choice_mask, actions, action_mask, training=False):
        """log pi(a_t | s_t) of k sequential choices: (B, k). ``inputs``: dict of the three (B, [C,] L) tensors."""
        logits = self.choice_logits(inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"],
                                    choice_mask, training)
        return selection_log_probs(logits / self.temperature, choice_mask, actions, action_mask)

    def probabilities(self, inputs, choice_mask):
        """pi(. | s) over the choices (B, C), numpy."""
        logits = self._logits_fn(*[tf.constant(inputs[k], tf.int32) for k in INPUT_NAMES],
                                 tf.constant(choice_mask, tf.int32))
        return tf.nn.softmax(logits / self.temperature, axis=-1).numpy()

    # ------------------------------------------------------------------ acting
    def encode(self, prompts, candidates=None, num_choices=None, length=None):
        """(inputs, choice_mask) numpy arrays for states: see :func:`encode_choices`; labels mode's
        choice_mask is all ones (B, num_labels)."""
        inputs, choice_mask = encode_choices(self.tokenizer, prompts, candidates, self.max_length, num_choices, length)
        if choice_mask is None:
            choice_mask = np.ones((len(prompts), self.num_labels), np.int32)
        return inputs, choice_mask

    def select_fn(self, greedy: bool, rank: int = 3):
        """The compiled ``f(input_ids, attention_mask, token_type_ids, choice_mask, k, seed) -> (actions,
        action_mask)``; inputs of ``rank`` 3 (B, C, L) candidate pairs or 2 (B, L) texts. One trace each."""
        key = (bool(greedy), int(rank))
        if key not in self._select_fns:
            def fn(input_ids, attention_mask, token_type_ids, choice_mask, k, seed):
                logits = self.choice_logits(input_ids, attention_mask, token_type_ids, choice_mask)
                return sample_selection(logits / self.temperature, choice_mask, k, seed, greedy)

            signature = [tf.TensorSpec([None] * rank, tf.int32) for _ in INPUT_NAMES] + [
                tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32)]
            self._select_fns[key] = self.compile_fn(fn, signature)
        return self._select_fns[key]

    def select(self, inputs, choice_mask, k: int = 1, greedy: bool = False, seed=None):
        """k choices per state (sampled from pi without replacement, or the k most likely): numpy
        (actions (B, k), action_mask (B, k))."""
        if int(k) != k or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        seed = self._next_seed() if seed is None else tf.constant([int(seed), 0], tf.int32)
        actions, action_mask = self.select_fn(bool(greedy), np.ndim(inputs["input_ids"]))(
            *[tf.constant(inputs[n], tf.int32) for n in INPUT_NAMES], tf.constant(choice_mask, tf.int32),
            tf.constant(int(k), tf.int32), seed)
        return actions.numpy(), action_mask.numpy()

    def act(self, time_step, greedy: bool = False):
        """One choice per row for a :class:`ChoiceEnv` time step: (B,) int32."""
        obs = time_step.observation
        if "choice_mask" not in obs:
            raise TypeError(f"{type(self.model).__name__} is a classifier: it picks among choices and cannot act in "
                            f"a token-by-token TextGenerationEnv; use tf_rl_text.choice.ChoiceEnv")
        actions, _ = self.select({n: obs[n] for n in INPUT_NAMES}, obs["choice_mask"], 1, greedy)
        return actions[:, 0]

    def choose(self, prompts, candidates=None, k: int = 1):
        """Greedy choices, texts in: candidates mode -> the chosen candidate(s) (k > 1: joined in their
        original order); labels mode -> the chosen label names."""
        inputs, choice_mask = self.encode(list(prompts), candidates)
        actions, action_mask = self.select(inputs, choice_mask, k, greedy=True)
        return completions_of(actions, action_mask, candidates, self.labels)

    # ------------------------------------------------------------------ what a classifier cannot do
    TOKEN_POLICY_METHODS = frozenset({"generate", "generate_text", "generate_fn", "log_probs", "completion_forward",
                                      "completion_logits", "sequence_log_probs", "token_logits", "causal_lm",
                                      "attach_value_head", "encode_prompts", "decode_completions"})
    """What only a token policy has: asked of a choice policy, they raise a TypeError that says what to use."""

    def __getattr__(self, name):
        if name in ChoiceAgent.TOKEN_POLICY_METHODS:
            raise TypeError(
                f"{type(self.model).__name__} is a sequence classifier: its actions are choices, it does not generate "
                f"tokens (no {name}). Use tf_rl_text.choice.ChoiceEnv with tf_rl_text.trainers.choice."
                f"ChoiceReinforceTrainer / ChoiceQLearningTrainer; generating text (TextGenerationEnv, ReinforceTrainer, "
                f"PPO...) needs a causal LM (TFAutoModelForCausalLM) or an encoder-decoder (TFAutoModelForSeq2SeqLM)")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def completions_of(actions, action_mask, candidates, labels):
    """The completion texts of choices: candidates in their original order joined by spaces, or label names."""
    out = []
    for i, (row, m) in enumerate(zip(np.asarray(actions), np.asarray(action_mask))):
        picked = sorted(int(a) for a, keep in zip(row, m) if keep)
        if candidates is None:
            out.append(" ".join(labels[a] for a in picked))
        else:
            out.append(" ".join(candidates[i][a] for a in picked))
    return out


__all__ = ["ChoiceAgent", "completions_of"]
