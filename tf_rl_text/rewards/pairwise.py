"""A reward model learned from preferences: a scalar-head sequence classifier trained on pairs with the
Bradley-Terry loss (Christiano et al. 2017; Ouyang et al. 2022), exported as a SavedModel that
``tf_rl_text.load`` serves as a reward function for every trainer.

    L = -log sigmoid(r(x, y_w) - r(x, y_l))         averaged over the pairs of a batch

    result = train_pairwise_reward_model(model, tokenizer, pairs, eval_pairs=held_out, epochs=2)
    result.val_accuracy                                   # share of held-out pairs ranked right
    export_reward_model(result.scorer, "saved_models/rm")
    reward = tf_rl_text.load("saved_models/rm")           # reward(completions, prompts, references) -> floats
    env = TextGenerationEnv(prompts, policy_tokenizer, reward_fn=reward)

The model is any ``TF...ForSequenceClassification`` with one output (``num_labels=1``); it scores
``prompt + completion`` (``include_prompt=True``, the default: a preference is about an answer to a
prompt) or the completion alone, with its own tokenizer.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import keras, tf
from tf_rl_text.rewards.classifier import encode_batch

REWARD_FORMAT = "tf_rl_text.reward/1"


class PairwiseScorer:
    """r(x, y): the scalar head of a sequence classifier on ``prompt + completion`` texts, compiled once.
    Callable as a reward function ``(completions, prompts, references) -> list of floats``."""

    def __init__(self, model, tokenizer, include_prompt: bool = True, max_length: int = 128, batch_size: int = 64):
        if tokenizer is None:
            raise ValueError(f"the reward model ({type(model).__name__}) needs its own tokenizer: pass tokenizer=...")
        labels = int(getattr(model.config, "num_labels", 0) or 0)
        if labels != 1:
            raise ValueError(f"a pairwise reward model has one output (a score), and this {type(model).__name__} has "
                             f"num_labels={labels}; build it with num_labels=1 (e.g. from_pretrained(path, "
                             "num_labels=1))")
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise ValueError("the reward model's tokenizer has neither a pad nor an EOS token; set its pad_token")
            tokenizer.pad_token = tokenizer.eos_token
        if not model.built:  # variables now: training reads them before the first call
            model(model.dummy_inputs, training=False)
        self.model, self.tokenizer = model, tokenizer
        self.include_prompt, self.max_length, self.batch_size = bool(include_prompt), int(max_length), int(batch_size)
        ids = tf.TensorSpec([None, None], tf.int32)
        self._score = tf.function(self.scores_graph, input_signature=[ids, ids], autograph=False)

    def scores_graph(self, input_ids, attention_mask, training=False):
        """(B,) float32 scores of encoded texts."""
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, training=training).logits
        return tf.cast(logits[:, 0], tf.float32)

    def texts(self, completions, prompts=None):
        completions = [str(c) for c in completions]
        if not self.include_prompt:
            return completions
        if prompts is None or len(prompts) != len(completions):
            raise ValueError(f"this reward model scores prompt + completion (include_prompt=True) and needs one prompt "
                             f"per completion, got {None if prompts is None else len(prompts)} for {len(completions)}")
        return [f"{p}{c}" for p, c in zip(prompts, completions)]

    def encode(self, texts):
        return encode_batch(self.tokenizer, texts, self.max_length, empty_as_pad=True)

    def score(self, completions, prompts=None) -> np.ndarray:
        texts = self.texts(completions, prompts)
        out = []
        for i in range(0, len(texts), self.batch_size):
            ids, mask = self.encode(texts[i:i + self.batch_size])
            out.append(self._score(tf.constant(ids), tf.constant(mask)).numpy())
        return np.concatenate(out) if out else np.zeros((0,), np.float32)

    def __call__(self, completions, prompts=None, references=None):
        return [float(x) for x in self.score(completions, prompts)]


def pairwise_accuracy(scorer, pairs) -> float:
    """Share of ``pairs`` whose chosen completion scores higher than the rejected one (ties count as wrong)."""
    chosen = np.asarray(scorer.score(pairs.chosen, pairs.prompts))
    rejected = np.asarray(scorer.score(pairs.rejected, pairs.prompts))
    return float(np.mean(chosen > rejected))


@dataclasses.dataclass
class PairwiseRewardResult:
    scorer: PairwiseScorer
    history: list
    """One dict per epoch: ``loss``, ``accuracy`` (training pairs, during the epoch), ``val_accuracy``."""
    val_accuracy: float | None
    path: str | None = None


def train_pairwise_reward_model(model, tokenizer, pairs, eval_pairs=None, epochs: int = 1, batch_size: int = 16,
                                learning_rate: float = 5e-5, max_length: int = 128, include_prompt: bool = True,
                                seed: int = 0, output_dir: str | None = None, progress: bool = True):
    """Fit ``model`` (a 1-output sequence classifier) to preference ``pairs`` with the Bradley-Terry loss.

    Shuffled mini-batches of pairs (``seed``), Adam at ``learning_rate``, gradients clipped to norm 1;
    after each epoch the pairwise accuracy on ``eval_pairs`` (when given). ``output_dir``: export the
    trained model there (:func:`export_reward_model`). Returns a :class:`PairwiseRewardResult`.
    """
    from tf_rl_text.update import compile_update

    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    if len(pairs) == 0:
        raise ValueError("train_pairwise_reward_model needs at least one preference pair")
    scorer = PairwiseScorer(model, tokenizer, include_prompt, max_length)
    optimizer = keras.optimizers.Adam(learning_rate)
    variables = model.trainable_variables
    ids = tf.TensorSpec([None, None], tf.int32)

    def grad_fn(chosen_ids, chosen_mask, rejected_ids, rejected_mask, total_rows, total_tokens):
        share = tf.cast(tf.shape(chosen_ids)[0], tf.float32) / total_rows  # a per-pair mean: the chunk's rows
        with tf.GradientTape() as tape:
            chosen = scorer.scores_graph(chosen_ids, chosen_mask, training=True)
            rejected = scorer.scores_graph(rejected_ids, rejected_mask, training=True)
            losses, right = ops.bradley_terry_loss(chosen, rejected)
            loss = tf.reduce_mean(losses) * share
        return tape.gradient(loss, variables), {"loss": loss,
                                                "accuracy": tf.reduce_mean(tf.cast(right, tf.float32)) * share}

    runner = compile_update(tf.function(grad_fn, autograph=False), [ids] * 4, variables, optimizer, 1.0)

    def update(*tensors):  # one update through the update runner; a non-finite loss is not applied
        info = runner(list(tensors))
        return info["loss"], info["accuracy"]

    chosen_texts = scorer.texts(pairs.chosen, pairs.prompts)
    rejected_texts = scorer.texts(pairs.rejected, pairs.prompts)
    rng = np.random.RandomState(seed)
    history = []
    for epoch in range(int(epochs)):
        t0 = time.perf_counter()
        order = rng.permutation(len(pairs))
        losses, accs, sizes = [], [], []
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            c_ids, c_mask = scorer.encode([chosen_texts[i] for i in idx])
            r_ids, r_mask = scorer.encode([rejected_texts[i] for i in idx])
            loss, acc = update(tf.constant(c_ids), tf.constant(c_mask), tf.constant(r_ids), tf.constant(r_mask))
            if not np.isfinite(float(loss)):
                raise FloatingPointError(f"the Bradley-Terry loss is {float(loss)} at epoch {epoch + 1}, batch "
                                         f"{start // batch_size + 1}; lower learning_rate ({learning_rate})")
            losses.append(float(loss))
            accs.append(float(acc))
            sizes.append(len(idx))
        entry = {"epoch": epoch + 1, "loss": float(np.average(losses, weights=sizes)),
                 "accuracy": float(np.average(accs, weights=sizes)), "seconds": time.perf_counter() - t0}
        if eval_pairs is not None:
            entry["val_accuracy"] = pairwise_accuracy(scorer, eval_pairs)
        history.append(entry)
        if progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in ("epoch", "seconds"))
            print(f"reward model epoch {epoch + 1}/{epochs}: {shown}", flush=True)
    result = PairwiseRewardResult(scorer, history, history[-1].get("val_accuracy"))
    if output_dir:
        result.path = export_reward_model(scorer, output_dir, metadata={"history": history})
    return result


def export_reward_model(scorer: PairwiseScorer, path: str, metadata: dict | None = None) -> str:
    """Write ``scorer`` as a SavedModel: signature ``score`` (= ``serving_default``): ``input_ids``,
    ``attention_mask`` (B, L) of its tokenizer -> ``scores`` (B,); the tokenizer and a description beside
    it. ``tf_rl_text.load(path)`` returns a :class:`LoadedRewardModel`. Atomic, like every export."""
    from tf_rl_text.savedmodel import METADATA_FILE, TOKENIZER_DIR, check_replaceable, write_atomically
    from tf_rl_text.validation import check_writable_folder

    check_writable_folder(path, "export")
    check_replaceable(path)
    ids = tf.TensorSpec([None, None], tf.int32, name="input_ids")
    mask = tf.TensorSpec([None, None], tf.int32, name="attention_mask")
    module = tf.Module()
    module.model_variables = list(scorer.model.variables)
    module.score = tf.function(lambda input_ids, attention_mask: {"scores": scorer.scores_graph(input_ids,
                                                                                                 attention_mask)},
                               input_signature=[ids, mask], autograph=False)
    meta = {"format": REWARD_FORMAT, "include_prompt": scorer.include_prompt, "max_length": scorer.max_length,
            "model_type": getattr(scorer.model.config, "model_type", None), "signatures": ["score", "serving_default"]}
    meta.update(metadata or {})

    def write(folder):
        tf.saved_model.save(module, folder, signatures={"serving_default": module.score, "score": module.score})
        scorer.tokenizer.save_pretrained(os.path.join(folder, TOKENIZER_DIR))
        with open(os.path.join(folder, METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=1, default=str)

    return write_atomically(path, write)


class LoadedRewardModel:
    """An exported reward model: ``reward(completions, prompts, references) -> list of floats`` (plain
    TensorFlow and the tokenizer; no Python class of the training run needed). ``tf_rl_text.load`` returns one."""

    def __init__(self, path, metadata):
        from transformers import AutoTokenizer

        from tf_rl_text.savedmodel import TOKENIZER_DIR

        self.path, self.metadata = path, metadata
        self.module = tf.saved_model.load(path)
        self.tokenizer = AutoTokenizer.from_pretrained(os.path.join(path, TOKENIZER_DIR))
        self.include_prompt = bool(metadata.get("include_prompt", True))
        self.max_length = int(metadata.get("max_length", 128))
        self.batch_size = 64
        self.__name__ = f"reward_model:{os.path.basename(os.path.normpath(path))}"

    texts = PairwiseScorer.texts

    def score(self, completions, prompts=None) -> np.ndarray:
        texts = self.texts(completions, prompts)
        out = []
        for i in range(0, len(texts), self.batch_size):
            ids, mask = encode_batch(self.tokenizer, texts[i:i + self.batch_size], self.max_length, empty_as_pad=True)
            out.append(self.module.score(input_ids=tf.constant(ids), attention_mask=tf.constant(mask))["scores"].numpy())
        return np.concatenate(out) if out else np.zeros((0,), np.float32)

    def __call__(self, completions, prompts=None, references=None):
        return [float(x) for x in self.score(completions, prompts)]


def load_reward_model(path) -> LoadedRewardModel:
    """The reward model :func:`export_reward_model` wrote into ``path`` (what ``tf_rl_text.load`` returns for
    one); a clear error for a folder that holds no export, a damaged one, or a policy export."""
    from tf_rl_text.savedmodel import METADATA_FILE

    meta_path = os.path.join(path, METADATA_FILE)
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path!r} holds no tf_rl_text export ({METADATA_FILE} is missing); write a reward "
                                f"model there with export_reward_model(scorer, {path!r})") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{meta_path!r} is damaged ({err}); export the reward model again") from None
    kind = str(meta.get("format", "")) if isinstance(meta, dict) else ""
    if not kind.startswith("tf_rl_text.reward/"):
        raise ValueError(f"{path!r} holds a {kind or 'policy'} export, not a reward model (export_reward_model "
                         "writes one)")
    return LoadedRewardModel(path, meta)


__all__ = ["PairwiseScorer", "PairwiseRewardResult", "train_pairwise_reward_model", "export_reward_model",
           "LoadedRewardModel", "load_reward_model", "pairwise_accuracy", "REWARD_FORMAT"]
