"""The update runner: one compiled update from a batch, the package's one chunk and replica loop.

An algorithm supplies one gradient function over a chunk of its batch::

    grad_fn(*chunk_tensors, total_rows, total_tokens) -> (grads, info)

returning the gradient of the chunk's *share* of the batch loss (a per-row mean weighted by
``rows / total_rows``, a per-token mean by ``tokens / total_tokens``), so that summing the chunks'
gradients gives the gradient of the whole batch's loss. :func:`compile_update` turns it into
``update(tensors) -> info`` that runs the batch as

* one chunk (gradient, clip and apply in one compiled function),
* ``num_chunks`` accumulation chunks (rows ``np.array_split(range(B), k)``), or
* R replicas of a ``tf.distribute`` strategy, each taking its rows of the global batch
  (``np.array_split(range(B), R * k)``, k consecutive chunks per replica), with the gradients and
  infos summed over replicas (an all-reduce);

then clips the summed gradient by its global norm and applies it once, only if it and the loss
are finite (the trainer then refuses the step, :mod:`tf_rl_text.trainers.guard`). A single chunk's
gradients reach the optimizer as they come (an embedding's ``IndexedSlices`` included); summed ones
are dense. ``info`` values are summed over chunks and replicas (weighted means add up to the
batch's), plus ``grad_norm``, the norm before clipping. nanoGPT's micro-step loop is the model.
"""
from __future__ import annotations

from tf_rl_text._compat import tf
from tf_rl_text.optim import apply_clipped


def chunk_bounds(rows, num_chunks, index):
    """[start, end) of chunk ``index`` of ``np.array_split(range(rows), num_chunks)`` (graph tensors)."""
    rows = tf.cast(rows, tf.int32)
    base, extra = rows // num_chunks, rows % num_chunks
    start = index * base + tf.minimum(index, extra)
    end = start + base + tf.cast(index < extra, tf.int32)
    return start, end


def count_mask_tokens(tensors):
    """Default token count of a batch: the sum of ``tensors[3]`` (the completion mask)."""
    return tf.reduce_sum(tf.cast(tensors[3], tf.float32))


def _summed_chunk_grads(grad_fn, tensors, num_chunks, count_tokens, first_chunk=0, num_splits=None, dense=False):
    """The one chunk loop: the gradients and infos of chunks ``first_chunk .. first_chunk + num_chunks``
    of ``num_splits`` (default ``num_chunks``) row chunks of ``tensors``, summed."""
    rows = tf.shape(tensors[0])[0]
    total_rows = tf.cast(rows, tf.float32)
    total_tokens = count_tokens(tensors)
    num_splits = num_splits or num_chunks
    grads_sum, info_sum = None, {}
    for j in range(num_chunks):
        if num_splits == 1:
            chunk = list(tensors)
        else:
            start, end = chunk_bounds(rows, num_splits, first_chunk + j)
            chunk = [t[start:end] for t in tensors]
        grads, info = grad_fn(*chunk, total_rows, total_tokens)
        if dense or num_splits > 1:  # summed over chunks or replicas: dense (an embedding's IndexedSlices too)
            grads = [tf.convert_to_tensor(g) for g in grads]
        grads_sum = list(grads) if grads_sum is None else [a + b for a, b in zip(grads_sum, grads)]
        for key, value in info.items():
            info_sum[key] = info_sum.get(key, 0.0) + tf.cast(value, tf.float32)
    return grads_sum, info_sum


def _batch_loss(info):
    return tf.reshape(info.get("loss", tf.constant(0.0)), [])


def apply_update(grad_fn, tensors, variables, optimizer, max_grad_norm=None, num_chunks: int = 1,
                 count_tokens=count_mask_tokens):
    """One update on one device as graph code: what :func:`compile_update` compiles, and what an
    export's ``train_step`` traces (so a SavedModel trains with the trainer's own gradient function)."""
    grads, info = _summed_chunk_grads(grad_fn, tensors, int(num_chunks), count_tokens)
    info["grad_norm"] = apply_clipped(optimizer, grads, variables, max_grad_norm, only_if_finite=True,
                                      loss=_batch_loss(info))
    return info


def compile_update(grad_fn, specs, variables, optimizer, max_grad_norm=None, strategy=None, num_chunks: int = 1,
                   count_tokens=count_mask_tokens):
    """``update(tensors) -> info``: one update of ``variables`` from a batch (see the module docstring).

    ``specs``: the ``tf.TensorSpec`` of each batch tensor (leading dimension: rows). ``strategy``:
    None or the default strategy runs on one device; another one splits the rows over its replicas
    (build ``variables`` and ``optimizer`` in its scope). ``count_tokens(tensors)``: the batch's
    token count handed to ``grad_fn`` (default: the sum of ``tensors[3]``, a completion mask).
    """
    k = int(num_chunks)
    if k < 1:
        raise ValueError(f"num_chunks must be an integer >= 1, got {num_chunks!r}")
    from tf_rl_text import distribute

    strategy = distribute.resolve(strategy)
    if distribute.is_default(strategy):
        def step(tensors):
            return apply_update(grad_fn, tensors, variables, optimizer, max_grad_norm, k, count_tokens)

        return tf.function(step, input_signature=[list(specs)], autograph=False)

    num_replicas = strategy.num_replicas_in_sync

    def replica_step(*tensors):
        ctx = tf.distribute.get_replica_context()
        replica = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
        grads, info = _summed_chunk_grads(grad_fn, tensors, k, count_tokens, replica * k, num_replicas * k, dense=True)
        grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        info = ctx.all_reduce(tf.distribute.ReduceOp.SUM, info)
        info["grad_norm"] = tf.linalg.global_norm(grads)
        return grads, info

    def replica_apply(grads):
        apply_clipped(optimizer, grads, variables, max_grad_norm, aggregated=True)
        return tf.constant(True)

    def step(tensors):
        grads, info = strategy.run(replica_step, args=tuple(tensors))
        # every replica holds the same all-reduced values: take the first local one
        info = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], info)
        finite = tf.logical_and(tf.math.is_finite(info["grad_norm"]),
                                tf.reduce_all(tf.math.is_finite(_batch_loss(info))))
        # nothing is applied when the global gradient or loss is not finite (the trainer then refuses the
        # step); the optimizer's cross-replica step must start inside the branch, so strategy.run is there
        tf.cond(finite, lambda: strategy.experimental_local_results(strategy.run(replica_apply, args=(grads,)))[0],
                lambda: tf.constant(False))
        return info

    return tf.function(step, input_signature=[list(specs)], autograph=False)


__all__ = ["compile_update", "apply_update", "chunk_bounds", "count_mask_tokens"]
