"""Replay buffers of whole episodes for the value-based trainers (trainers/q_learning.py, through experience.ReplaySource).

:class:`ReplayBuffer` is a ring buffer in tf.Variables with its own ``tf.random.Generator``, so
a ``tf.train.Checkpoint`` of it (the Q-learning trainer's checkpoint holds it) restores both its
contents and where its sampling stands.
"""
from __future__ import annotations

import numpy as np

from tf_rl_text._compat import tf

class ReplayBuffer(tf.Module):
    """A uniform replay ring buffer of whole episodes, held in tf.Variables.

    Each row is one episode: a left-padded prompt (prompt_length), a right-padded completion
    (completion_length) and its reward. When full, new episodes overwrite the oldest.

    Example::

        buf = ReplayBuffer(capacity=100, prompt_length=4, completion_length=8, seed=0)
        buf.add(prompt_ids, prompt_mask, completion_ids, completion_mask, rewards)
        batch = buf.sample(32)   # dict of tensors, uniform with replacement
    """

    FIELDS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "rewards")

    def __init__(self, capacity: int, prompt_length: int, completion_length: int, pad_token_id: int = 0,
                 seed: int = 0, name=None, prompt_padding: str = "left"):
        super().__init__(name=name or "replay_buffer")
        if prompt_padding not in ("left", "right"):
            raise ValueError(f"prompt_padding must be 'left' (causal LMs) or 'right' (encoder sources), got {prompt_padding!r}")
        self.prompt_padding = prompt_padding
        for arg, value in (("capacity", capacity), ("prompt_length", prompt_length),
                           ("completion_length", completion_length)):
            if int(value) != value or value < 1:
                raise ValueError(f"{arg} must be an integer >= 1, got {value}")
        self.capacity, self.prompt_length, self.completion_length = int(capacity), int(prompt_length), int(completion_length)
        self.pad_token_id = int(pad_token_id)
        c, p, t = self.capacity, self.prompt_length, self.completion_length
        self.prompt_ids = tf.Variable(tf.fill([c, p], self.pad_token_id), trainable=False, name="prompt_ids")
        self.prompt_mask = tf.Variable(tf.zeros([c, p], tf.int32), trainable=False, name="prompt_mask")
        self.completion_ids = tf.Variable(tf.fill([c, t], self.pad_token_id), trainable=False, name="completion_ids")
        self.completion_mask = tf.Variable(tf.zeros([c, t], tf.int32), trainable=False, name="completion_mask")
        self.rewards = tf.Variable(tf.zeros([c], tf.float32), trainable=False, name="rewards")
        self.size = tf.Variable(0, trainable=False, name="size")
        self.next_index = tf.Variable(0, trainable=False, name="next_index")
        self.rng = tf.random.Generator.from_seed(seed)

    def __len__(self):
        return int(self.size.numpy())

    def _fit(self, x, width, left, what):
        x = np.asarray(x, np.int32)
        if x.ndim != 2 or x.shape[1] > width:
            raise ValueError(f"{what} must be (batch, <= {width}) for this buffer, got shape {x.shape}; "
                             f"make a buffer with a larger {'prompt' if left else 'completion'}_length")
        pad = width - x.shape[1]
        fill = self.pad_token_id if what.endswith("ids") else 0
        before = left and self.prompt_padding == "left"  # completions, and encoder sources, pad on the right
        return np.pad(x, [(0, 0), (pad, 0) if before else (0, pad)], constant_values=fill)

    def add(self, prompt_ids, prompt_mask, completion_ids, completion_mask, rewards):
        """Append a batch of episodes (narrower arrays are padded; the last ``capacity`` are kept)."""
        rows = [self._fit(prompt_ids, self.prompt_length, True, "prompt_ids"),
                self._fit(prompt_mask, self.prompt_length, True, "prompt_mask"),
                self._fit(completion_ids, self.completion_length, False, "completion_ids"),
                self._fit(completion_mask, self.completion_length, False, "completion_mask"),
                np.asarray(rewards, np.float32).reshape(-1)]
        n = rows[0].shape[0]
        if any(r.shape[0] != n for r in rows):
            raise ValueError(f"every field needs the same number of episodes, got {[r.shape[0] for r in rows]}")
        if not np.all(np.isfinite(rows[-1])):
            raise ValueError(f"rewards must be finite, got {rows[-1]}")
        if n == 0:
            return
        rows = [r[-self.capacity:] for r in rows]
        n = rows[0].shape[0]
        index = (int(self.next_index.numpy()) + np.arange(n)) % self.capacity
        for name, values in zip(self.FIELDS, rows):
            var = getattr(self, name)
            if isinstance(var, tf.distribute.DistributedValues):  # built under a strategy: no scatter on those
                var.assign(tf.tensor_scatter_nd_update(var, index[:, None], values))
            else:
                var.scatter_nd_update(index[:, None], values)
        self.next_index.assign((int(self.next_index.numpy()) + n) % self.capacity)
        self.size.assign(min(len(self) + n, self.capacity))

    def sample(self, batch_size: int):
        """``batch_size`` episodes drawn uniformly with replacement: a dict of tensors."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer; add episodes first")
        index = self.rng.uniform([int(batch_size)], 0, self.size, dtype=tf.int32)
        return {name: tf.gather(getattr(self, name), index) for name in self.FIELDS}


def concat_batches(a, b, pad_token_id, prompt_padding="left"):
    """Join two sampled batches, padding prompts on ``prompt_padding``'s side and completions on
    the right to a common width."""
    if a is None:
        return b
    if b is None:
        return a
    out = {}
    for name in ReplayBuffer.FIELDS:
        x, y = a[name], b[name]
        if name != "rewards":
            width = max(x.shape[1], y.shape[1])
            fill = pad_token_id if name.endswith("ids") else 0

            def widen(z):
                extra = width - z.shape[1]
                before = name.startswith("prompt") and prompt_padding == "left"
                return tf.pad(z, [[0, 0], [extra, 0] if before else [0, extra]], constant_values=fill)

            x, y = widen(x), widen(y)
        out[name] = tf.concat([x, y], axis=0)
    return out


__all__ = ["ReplayBuffer", "concat_batches"]
