"""Training under ``tf.distribute``: one update split over the replicas of a strategy.

Every trainer (and the MLE warm start) takes ``strategy=`` (default: ``tf.distribute.get_strategy()``,
which is TensorFlow's no-op default strategy: nothing changes then). Under another strategy:

* the trainer builds its variables (reference model, value head, Q head and target network,
  optimizer and its slots, run state) inside ``strategy.scope()``; the agent's model must have
  been built there too (build the model *and* the :class:`~tf_rl_text.RLAgent` inside
  ``with strategy.scope():``; :func:`check_in_scope` says so when it was not);
* the rollout of the global batch runs once per worker, as in one process (every worker of a
  multi-worker run samples the same global batch from the same seeds and weights); the
  **update** is split: replica r of R takes rows ``np.array_split(range(B), R)[r]`` and computes
  the gradient of its rows' share of the global loss (per-row means weighted by rows / B,
  per-token means by tokens / N, exactly as gradient accumulation weights its chunks); the
  gradients are summed over replicas (an all-reduce), clipped by their global norm and applied
  once, so the new weights equal those of the single-device update up to float error;
* the logged update statistics are summed over replicas after the same weighting, i.e. they
  are means over all rows / tokens of the global batch, not means of per-replica means;
* only the chief writes checkpoints, TensorBoard events, metrics files and exports; other
  workers save into a temporary folder that is removed (saving is collective), see
  :func:`write_dir`.

``ParameterServerStrategy`` is refused (its coordinator/worker model does not fit a trainer's
synchronous loop); ``TPUStrategy`` is untested (see docs/distributed.md).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from tf_rl_text._compat import tf

STRATEGIES = ("default", "mirrored", "multi_worker")


def make_strategy(name: str = "default"):
    """The strategy an example's ``--strategy`` names: "default" (one device), "mirrored" (all
    local GPUs, or the CPU) or "multi_worker" (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("strategy 'multi_worker' needs TF_CONFIG (the cluster and this worker's task); "
                             "see docs/distributed.md")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def resolve(strategy):
    """``strategy`` or the current one; refuses strategies a trainer cannot run under."""
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"strategy must be a tf.distribute.Strategy, got {type(strategy).__name__}")
    name = type(strategy).__name__
    if "ParameterServer" in name:
        raise ValueError(f"strategy={name} is not supported: a trainer's rollout-then-update loop is synchronous; "
                         "use MirroredStrategy or MultiWorkerMirroredStrategy (docs/distributed.md)")
    return strategy


def is_default(strategy) -> bool:
    """True for TensorFlow's default (no-op, single device) strategy."""
    from tensorflow.python.distribute import distribute_lib

    return isinstance(strategy, distribute_lib._DefaultDistributionStrategy)


def is_chief(strategy=None) -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not strategy.extended._in_multi_worker_mode():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    spec = resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and "chief" not in spec


@contextlib.contextmanager
def write_dir(path: str, strategy=None):
    """The folder this process writes ``path``'s content into: ``path`` itself on the chief, a
    temporary folder (removed afterwards) on other workers, which must still take part in the
    save because saving distributed variables is collective."""
    if is_chief(strategy):
        yield path
        return
    tmp = tempfile.mkdtemp(prefix="tf_rl_text_worker_")
    try:
        yield os.path.join(tmp, os.path.basename(os.path.normpath(path)) or "out")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_in_scope(strategy, variables, what: str = "the agent's model"):
    """Raise when ``variables`` were not created under ``strategy.scope()`` (non-default strategies)."""
    if is_default(strategy):
        return
    for v in variables:
        if not strategy.extended.variable_created_in_scope(v):
            raise ValueError(
                f"{what} was built outside strategy.scope() (variable {v.name!r} is not a {type(strategy).__name__} "
                "variable); build the model and the RLAgent inside `with strategy.scope():` and pass the same "
                "strategy to the trainer (docs/distributed.md)")


def global_batch_check(rows, strategy, num_chunks=1, what="batch"):
    """Each replica needs at least ``num_chunks`` rows of the global batch."""
    need = strategy.num_replicas_in_sync * int(num_chunks)
    if rows < need:
        raise ValueError(f"the {what} has {rows} rows, fewer than replicas x grad_accumulation_steps = {need}; "
                         "raise the batch size or lower grad_accumulation_steps")


__all__ = ["make_strategy", "resolve", "is_default", "is_chief", "write_dir", "check_in_scope",
           "global_batch_check", "STRATEGIES"]
