"""Train a reward model: fine-tune a sequence classifier on labelled text with Keras ``fit``.

    result = train_reward_model(minilm_path(), train_data="../shared/data/sentiment",
                                output_dir="saved_models/sentiment_reward_model")
    print(result.val_accuracy)
    reward = ClassifierReward(result.model, result.tokenizer, label=1)

Labelled text is read from csv (with a header), tsv or tab-separated txt (header optional) or
jsonl files, or a folder of them (see :func:`load_labelled_texts`).
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import json
import os
import time
from typing import Sequence

import numpy as np

from tf_rl_text._compat import keras, tf
from tf_rl_text.data.files import jsonl_records
from tf_rl_text.optim import WarmupSchedule

TEXT_FORMATS = (".csv", ".tsv", ".txt", ".jsonl")


# --------------------------------------------------------------------------- data
def _data_files(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(
            f for f in glob.glob(os.path.join(path, "*"))
            if f.lower().endswith(TEXT_FORMATS) and not os.path.basename(f).lower().startswith("readme")
        )
        if not files:
            raise FileNotFoundError(f"no labelled-text files ({', '.join(TEXT_FORMATS)}) in folder {path}")
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"labelled-text file or folder not found: {path}")
    if not path.lower().endswith(TEXT_FORMATS):
        raise ValueError(f"unsupported labelled-text format {path!r}; use one of {TEXT_FORMATS}")
    return [path]


def _read_file(path: str, text_column: str, label_column: str):
    texts, labels = [], []
    lower = path.lower()
    if lower.endswith(".jsonl"):
        for n, row in jsonl_records(path, skip_blank=True):
            if text_column not in row or label_column not in row:
                raise ValueError(f"{path}, line {n}: needs keys {text_column!r} and {label_column!r}, got {sorted(row)}")
            texts.append(str(row[text_column]))
            labels.append(row[label_column])
        return texts, labels
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="," if lower.endswith(".csv") else "\t", quoting=csv.QUOTE_MINIMAL
                               if lower.endswith(".csv") else csv.QUOTE_NONE))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        return texts, labels
    header = [c.strip() for c in rows[0]]
    if text_column in header and label_column in header:
        ti, li = header.index(text_column), header.index(label_column)
        body, first = rows[1:], 2
    elif lower.endswith(".csv"):
        raise ValueError(f"{path}: a csv needs a header with columns {text_column!r} and {label_column!r}, "
                         f"got {header}")
    else:  # headerless tsv / txt: "text<TAB>label" per line (e.g. the UCI sentiment sentences)
        ti, li, body, first = 0, -1, rows, 1
    for n, row in enumerate(body, first):
        if len(row) < 2:
            raise ValueError(f"{path}:{n}: expected text and label separated by a tab, got {row!r}")
        texts.append(row[ti].strip())
        labels.append(row[li].strip())
    return texts, labels


def load_labelled_texts(path, text_column: str = "text", label_column: str = "label"):
    """Read labelled sentences: returns (texts: list[str], labels: list) in file order.

    ``path`` is a file or a folder (every csv/tsv/txt/jsonl file in it, sorted by name, except
    README files) or a list of them. Formats: ``.csv`` with a header naming ``text_column`` and
    ``label_column``; ``.tsv``/``.txt`` tab-separated, with that header or none (then the first
    field is the text and the last the label); ``.jsonl`` with one object per line.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    texts, labels = [], []
    for p in paths:
        for f in _data_files(os.fspath(p)):
            t, l = _read_file(f, text_column, label_column)
            texts += t
            labels += l
    if not texts:
        raise ValueError(f"no labelled examples found in {path}")
    return texts, labels


def encode_labels(labels: Sequence, label_names: Sequence[str] | None = None):
    """Map labels to ids. Integers (or integer strings) stay as they are; names get ids in
    ``label_names`` order (default: sorted). Returns (ids: np.int32 array, id2label: dict)."""
    raw = [str(l).strip() for l in labels]
    if label_names is None and all(r.lstrip("-").isdigit() for r in raw):
        ids = np.asarray([int(r) for r in raw], np.int32)
        if ids.min() < 0:
            raise ValueError(f"integer labels must be >= 0, got {int(ids.min())}")
        return ids, {i: f"LABEL_{i}" for i in range(int(ids.max()) + 1)}
    names = list(label_names) if label_names is not None else sorted(set(raw))
    index = {str(n): i for i, n in enumerate(names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not in label_names {names}")
    return np.asarray([index[r] for r in raw], np.int32), dict(enumerate(str(n) for n in names))


def _as_examples(data, text_column, label_column):
    if data is None:
        return None
    if isinstance(data, (str, os.PathLike)):
        return load_labelled_texts(data, text_column, label_column)
    if isinstance(data, list) and data and all(isinstance(d, (str, os.PathLike)) and os.path.exists(d) for d in data):
        return load_labelled_texts(data, text_column, label_column)  # a list of files / folders
    if isinstance(data, tuple) and len(data) == 2:
        texts, labels = list(data[0]), list(data[1])
        if len(texts) != len(labels):
            raise ValueError(f"got {len(texts)} texts and {len(labels)} labels; they must pair up")
        if not texts:
            raise ValueError("the labelled data is empty; give at least one (text, label) pair")
        return [str(t) for t in texts], labels
    raise ValueError(f"data must be a path (csv/tsv/txt/jsonl file or folder) or a (texts, labels) tuple, "
                     f"got {type(data).__name__}")


def make_dataset(tokenizer, texts, labels, batch_size: int, max_length: int, shuffle: bool = False, seed: int = 0,
                 dynamic_padding: bool = True):
    """A ``tf.data.Dataset`` of ({"input_ids", "attention_mask"}, label) batches. Texts are
    truncated to ``max_length`` tokens; each batch is padded to its own longest text
    (``dynamic_padding``) or every batch to ``max_length`` (one static shape)."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length", return_tensors="np")
    ds = tf.data.Dataset.from_tensor_slices((
        {"input_ids": enc["input_ids"].astype(np.int32), "attention_mask": enc["attention_mask"].astype(np.int32)},
        np.asarray(labels, np.int32),
    ))
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)

    def trim(features, label):  # cut the batch to its longest text (right padding)
        length = tf.reduce_max(tf.reduce_sum(features["attention_mask"], axis=1))
        return {k: v[:, :length] for k, v in features.items()}, label

    ds = ds.batch(batch_size)
    return (ds.map(trim) if dynamic_padding else ds).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- training
@dataclasses.dataclass
class RewardModelResult:
    """What :func:`train_reward_model` returns."""

    model: object
    """The fine-tuned ``TFAutoModelForSequenceClassification``."""
    tokenizer: object
    val_accuracy: float | None
    """Accuracy on the held-out examples after the last epoch (None without validation data)."""
    train_accuracy: float
    history: dict
    """Keras ``History.history``: per-epoch loss, accuracy, val_loss, val_accuracy."""
    id2label: dict
    num_train: int
    num_val: int
    output_dir: str | None
    train_time_s: float

    def metrics(self) -> dict:
        return {"val_accuracy": self.val_accuracy, "train_accuracy": self.train_accuracy, "num_train": self.num_train,
                "num_val": self.num_val, "id2label": {str(k): v for k, v in self.id2label.items()},
                "history": {k: [float(x) for x in v] for k, v in self.history.items()},
                "train_time_s": round(self.train_time_s, 1), "output_dir": self.output_dir}


def train_reward_model(model, train_data, tokenizer=None, validation_data=None, *, validation_split: float = 0.2,
                       epochs: int = 3, batch_size: int = 32, learning_rate: float = 5e-5, warmup_fraction: float = 0.1,
                       max_length: int = 64, label_names: Sequence[str] | None = None, text_column: str = "text",
                       label_column: str = "label", output_dir: str | None = None, seed: int = 0, verbose: int = 1,
                       dynamic_padding: bool = True):
    """Fine-tune a sequence classifier on labelled text with Keras ``fit``; report held-out accuracy.

    The classic reward-model recipe (Ziegler et al. 2019 trained theirs as a classifier over
    text; Devlin et al. 2019 for fine-tuning BERT): cross-entropy on the labels, Adam with a
    linear warm-up then linear decay, a few epochs, accuracy on held-out examples after each.

    Args:
      model: a ``TFAutoModelForSequenceClassification``, or a folder / name for
        ``from_pretrained`` (an encoder checkpoint gets a fresh classification head with one
        output per label, e.g. ``minilm_path()``).
      train_data: a csv/tsv/txt/jsonl file, a folder of them (see :func:`load_labelled_texts`),
        or a ``(texts, labels)`` tuple.
      tokenizer: the model's tokenizer (default: ``AutoTokenizer.from_pretrained(model)`` when
        ``model`` is a path).
      validation_data: held-out examples in the same forms; default: a seeded random
        ``validation_split`` of ``train_data``.
      epochs, batch_size, learning_rate, warmup_fraction: the optimisation (Adam).
      max_length: tokens kept per text.
      dynamic_padding: pad each batch to its longest text (less compute; Keras traces the step
        twice, the second time for any length) or, if False, every batch to ``max_length``
        (one static shape, traced once: faster for short runs).
      label_names: label order for string labels (default sorted); integer labels are used as ids.
      output_dir: where ``save_pretrained`` writes the model and tokenizer (plus
        ``reward_model_metrics.json``); None = do not save.
      seed: the split, shuffling and head initialisation.
      verbose: Keras ``fit`` verbosity (0 silent, 1 progress bar, 2 one line per epoch).

    Returns: a :class:`RewardModelResult`.
    """
    _check_settings(epochs, batch_size, max_length, learning_rate, warmup_fraction,
                    validation_split if validation_data is None else 0.0)
    texts, labels, val = _train_and_validation(train_data, validation_data, validation_split, text_column,
                                               label_column, seed)
    ids, id2label = encode_labels(list(labels) + (list(val[1]) if val is not None else []), label_names)
    y, y_val = ids[: len(labels)], (ids[len(labels):] if val is not None else None)  # one mapping for both sides
    if len(id2label) < 2:
        raise ValueError(f"a classifier needs at least 2 labels, the training data has {sorted(set(map(str, labels)))}")
    model, tokenizer = _classifier(model, tokenizer, id2label, seed)
    train_ds = make_dataset(tokenizer, texts, y, batch_size, max_length, shuffle=True, seed=seed,
                            dynamic_padding=dynamic_padding)
    val_ds = (make_dataset(tokenizer, val[0], y_val, batch_size, max_length, dynamic_padding=dynamic_padding)
              if val is not None else None)
    steps = epochs * int(np.ceil(len(texts) / batch_size))
    schedule = WarmupSchedule(learning_rate, "linear", int(warmup_fraction * steps), steps)  # warm-up, linear decay
    history, train_time = _fit(model, train_ds, val_ds, schedule, epochs, verbose)
    val_acc = float(history["val_accuracy"][-1]) if val_ds is not None else None
    result = RewardModelResult(
        model=model, tokenizer=tokenizer, val_accuracy=val_acc, train_accuracy=float(history["accuracy"][-1]),
        history=dict(history), id2label=id2label, num_train=len(texts), num_val=len(val[0]) if val else 0,
        output_dir=os.path.abspath(output_dir) if output_dir else None, train_time_s=train_time,
    )
    if output_dir:
        _save(result, output_dir)
    return result


def _save(result, output_dir):
    """The model and tokenizer (``save_pretrained``) and ``reward_model_metrics.json`` in ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    result.model.save_pretrained(output_dir)
    result.tokenizer.save_pretrained(output_dir)
    with open(os.path.join(output_dir, "reward_model_metrics.json"), "w") as f:
        json.dump(result.metrics(), f, indent=1)


def _check_settings(epochs, batch_size, max_length, learning_rate, warmup_fraction, validation_split):
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("max_length", max_length)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")


def _train_and_validation(train_data, validation_data, validation_split, text_column, label_column, seed):
    """(texts, labels, (val texts, val labels) or None): ``validation_data``, else a seeded random
    ``validation_split`` of ``train_data``."""
    texts, labels = _as_examples(train_data, text_column, label_column)
    val = _as_examples(validation_data, text_column, label_column)
    if val is None and validation_split > 0:
        order = np.random.default_rng(seed).permutation(len(texts))
        n_val = int(round(len(texts) * validation_split))
        if n_val < 1 or n_val >= len(texts):
            raise ValueError(f"validation_split={validation_split} of {len(texts)} examples leaves an empty side; "
                             "give more data or validation_data")
        val = ([texts[i] for i in order[:n_val]], [labels[i] for i in order[:n_val]])
        texts, labels = [texts[i] for i in order[n_val:]], [labels[i] for i in order[n_val:]]
    return texts, labels, val


def _classifier(model, tokenizer, id2label, seed):
    """(model, tokenizer): ``model`` loaded from a folder with a fresh head of ``len(id2label)`` outputs, or a
    model object checked against them; either way labelled with ``id2label``."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    num_labels = len(id2label)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(path)
        from tf_rl_text.rewards.similarity import quiet_transformers

        keras.utils.set_random_seed(seed)  # the fresh classification head
        with quiet_transformers():  # "newly initialized: classifier" is the point here
            model = TFAutoModelForSequenceClassification.from_pretrained(
                path, num_labels=num_labels, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    elif tokenizer is None:
        raise ValueError(f"a model object ({type(model).__name__}) needs its tokenizer: pass tokenizer=...")
    else:
        have = int(getattr(model.config, "num_labels", num_labels))
        if have < num_labels:
            raise ValueError(f"the model has {have} output labels but the data has {num_labels}; build it with "
                             f"num_labels={num_labels}")
        model.config.id2label = id2label
        model.config.label2id = {v: k for k, v in id2label.items()}
    return model, tokenizer


def _fit(model, train_ds, val_ds, schedule, epochs, verbose):
    """Keras ``fit`` with Adam on ``schedule`` and the cross-entropy of the labels: (history, seconds)."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    # AutoGraph would rewrite every transformers function the train step traces through (measured:
    # 78 s to trace a MiniLM step on 2 cores, against 16 s without); the model code is graph-safe
    # as written, so Keras traces it plainly.
    plain_steps = {name: getattr(model, name) for name in ("train_step", "test_step")}
    for name, fn in plain_steps.items():
        setattr(model, name, tf.autograph.experimental.do_not_convert(fn))
    start = time.perf_counter()
    try:
        history = model.fit(train_ds, validation_data=val_ds, epochs=int(epochs), verbose=verbose).history
    finally:
        for name in plain_steps:
            delattr(model, name)  # back to the class's methods
    return history, time.perf_counter() - start


__all__ = ["train_reward_model", "load_labelled_texts", "encode_labels", "make_dataset", "RewardModelResult"]
