"""CPU thread layout: one TensorFlow op per core.

TensorFlow's default splits every op across all cores (intra-op threads) and hands work between
thread pools. At this library's model sizes a decode step is hundreds of small ops, so those
hand-offs cost more than the split saves. :func:`use_cores` sets one thread per op and one op per
core; :class:`~tf_rl_text.RLAgent` then decodes one shard of each batch per core
(``generation_shards``), and a training update runs its independent ops (reference and policy
forwards, per-layer gradients) side by side. ``benchmarks/rl_step.py`` measures both layouts.

    import tf_rl_text
    tf_rl_text.cpu.use_cores()          # first, before any TensorFlow work
"""
from __future__ import annotations

import os

from tf_rl_text._compat import tf


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def use_cores(cores: int | None = None) -> int:
    """Run TensorFlow with one thread per op (intra-op 1) and ``cores`` ops at once (inter-op).

    ``cores`` defaults to :func:`available_cores`. Call it before TensorFlow runs its first op
    (right after importing tf_rl_text); agents built afterwards decode ``cores`` shards of each
    batch in parallel. Returns the core count.
    """
    cores = available_cores() if cores is None else cores
    if int(cores) != cores or cores < 1:
        raise ValueError(f"cores must be an integer >= 1, got {cores!r}")
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(int(cores))
    except RuntimeError as err:
        raise RuntimeError(
            "use_cores() must run before TensorFlow executes its first op (thread pools are fixed then): "
            "call tf_rl_text.cpu.use_cores() right after `import tf_rl_text`, before building models"
        ) from err
    return int(cores)


__all__ = ["available_cores", "use_cores"]
