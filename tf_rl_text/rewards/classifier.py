"""A learned reward: a sequence classifier scores each completion.

This is where the article's ``TFBertForSequenceClassification`` belongs in RL for language
models: the reward model (Ziegler et al. 2019, "Fine-Tuning Language Models from Human
Preferences"; the sentiment-steering demo of TRL / Ziegler et al.) that reads generated text
and returns a number. The classifier keeps its own tokenizer, which may differ from the policy's:
completions travel between them as text.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tf_rl_text._compat import tf

OUTPUTS = ("probability", "logit", "log_probability")


def encode_batch(tokenizer, texts, max_length, empty_as_pad=False):
    """Tokenize with padding and truncation: (ids, mask) int32 arrays (N, L), L >= 1.

    A text with no tokens at all (an empty completion, with a tokenizer that adds no special
    tokens) becomes one pad token: attended with ``empty_as_pad`` (a classifier then scores it
    like any text), otherwise left fully masked (its mean-pooled embedding is 0).
    """
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
    ids = np.asarray(batch["input_ids"], np.int32).reshape(len(texts), -1)
    mask = np.asarray(batch["attention_mask"], np.int32).reshape(len(texts), -1)
    if ids.shape[1] == 0:
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = np.full((len(texts), 1), pad, np.int32)
        mask = np.zeros((len(texts), 1), np.int32)
    if empty_as_pad:
        mask[mask.sum(axis=1) == 0, 0] = 1
    return ids, mask


class ClassifierReward:
    """Reward = a sequence classifier's probability (or logit) of one label for each completion.

    Wraps any ``TFAutoModelForSequenceClassification`` (BERT, MiniLM, DistilBERT, RoBERTa, ...)
    and its tokenizer. Texts are scored in batches by one compiled ``tf.function``
    (``input_signature`` with free batch and length, so it is traced once).

    Example::

        from transformers import AutoTokenizer, TFAutoModelForSequenceClassification
        model = TFAutoModelForSequenceClassification.from_pretrained("saved_models/sentiment_reward_model")
        tokenizer = AutoTokenizer.from_pretrained("saved_models/sentiment_reward_model")
        reward = ClassifierReward(model, tokenizer, label=1)   # or "LABEL_1": a name in model.config.label2id
        reward(["what a lovely film", "a dull, boring mess"])      # e.g. [0.98, 0.03]

        env = TextGenerationEnv(prompts, policy_tokenizer, reward_fn=reward)

    Args:
      model: a TF sequence-classification model (logits (B, num_labels)).
      tokenizer: the model's own tokenizer.
      label: the label whose score is the reward: an index, or a name from ``model.config.label2id``.
      output: ``"probability"`` (softmax of the logits, in [0, 1]; sigmoid for a 1-logit head),
        ``"logit"`` (the raw logit) or ``"log_probability"`` (log-softmax).
      include_prompt: score ``prompt + completion`` (the whole sentence) instead of the completion alone.
      max_length: tokens kept per text (longer texts are truncated).
      batch_size: texts per forward pass.
    """

    def __init__(self, model, tokenizer, label=1, output: str = "probability", include_prompt: bool = False,
                 max_length: int = 128, batch_size: int = 64):
        if tokenizer is None:
            raise ValueError(f"the classifier ({type(model).__name__}) needs its own tokenizer: pass tokenizer=...")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if int(max_length) != max_length or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2, got {max_length}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.num_labels = int(getattr(model.config, "num_labels", 0) or 0)
        self.label = self._resolve_label(label)
        self.output = output
        self.include_prompt = bool(include_prompt)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        ids = tf.TensorSpec([None, None], tf.int32)
        # autograph=False: no tensor-dependent Python control flow here, and AutoGraph would only
        # slow the one trace through the transformers model (about 10x on 2 cores)
        self._score = tf.function(self._score_batch, input_signature=[ids, ids], autograph=False)

    @classmethod
    def from_pretrained(cls, path: str, **kwargs) -> "ClassifierReward":
        """Load a classifier and its tokenizer saved with ``save_pretrained`` (e.g. by ``train_reward_model``)."""
        from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

        model = TFAutoModelForSequenceClassification.from_pretrained(path)
        return cls(model, AutoTokenizer.from_pretrained(path), **kwargs)

    def _resolve_label(self, label) -> int:
        label2id = dict(getattr(self.model.config, "label2id", None) or {})
        if isinstance(label, str):
            if label not in label2id:
                raise ValueError(f"label {label!r} is not one of the model's labels {sorted(label2id)}; "
                                 "pass a label name from model.config.label2id or an index")
            label = label2id[label]
        if int(label) != label or not 0 <= int(label) < max(self.num_labels, 1):
            raise ValueError(f"label must be an index in [0, {max(self.num_labels, 1)}) or a label name, got {label!r}")
        return int(label)

    # ------------------------------------------------------------------ graph
    def _score_batch(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits  # (B, C)
        logits = tf.cast(logits, tf.float32)
        if self.output == "logit":
            return logits[:, self.label]
        if logits.shape[-1] == 1:  # a single-logit (binary / scalar) head
            if self.output == "probability":
                return tf.sigmoid(logits[:, 0])
            return tf.math.log_sigmoid(logits[:, 0])
        if self.output == "probability":
            return tf.nn.softmax(logits, axis=-1)[:, self.label]
        return tf.nn.log_softmax(logits, axis=-1)[:, self.label]

    # ------------------------------------------------------------------ python
    def score(self, texts: Sequence[str]) -> np.ndarray:
        """The chosen label's score for each text: (N,) float32."""
        texts = [str(t) for t in texts]
        out = []
        for i in range(0, len(texts), self.batch_size):
            ids, mask = encode_batch(self.tokenizer, texts[i : i + self.batch_size], self.max_length, empty_as_pad=True)
            out.append(self._score(tf.constant(ids), tf.constant(mask)).numpy())
        return np.concatenate(out) if out else np.zeros((0,), np.float32)

    def __call__(self, completions, prompts=None, references=None):
        texts = list(completions)
        if self.include_prompt:
            if prompts is None or len(prompts) != len(texts):
                raise ValueError(f"include_prompt=True needs one prompt per completion, got "
                                 f"{None if prompts is None else len(prompts)} for {len(texts)} completions")
            texts = [f"{p}{c}" for p, c in zip(prompts, texts)]
        return [float(x) for x in self.score(texts)]


__all__ = ["ClassifierReward"]
