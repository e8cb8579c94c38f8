"""The trainer core every algorithm stands on: config, optimizer, update, loop, checkpoints.

An algorithm (REINFORCE, A2C/PPO, Q-learning) subclasses :class:`Trainer` and writes only what
is its own: the rollout and loss of one step (``_step``), the extra state it keeps
(``_trackables``, ``_python_state``), what its SavedModel carries (``_export_kwargs``).
The base gives it

* an optimizer from the config: Adam (AdamW with ``weight_decay``), a learning-rate schedule
  ("constant", "linear" or "cosine" decay after a linear warm-up, counted in trainer steps);
* :func:`apply_clipped`, the one clip-and-apply block, and :meth:`Trainer.accumulate`, which
  splits a batch into ``grad_accumulation_steps`` chunks and sums their gradients (each chunk's
  loss is weighted by its share of the batch's rows or tokens, so the update equals the one of
  the whole batch up to float error);
* ``train(num_steps, callbacks=...)``, ``evaluate``, ``export``;
* ``strategy=`` (a ``tf.distribute.Strategy``): construction inside its scope, each update split
  over its replicas with ``strategy.run`` and all-reduced gradients, files written by the chief
  only (:mod:`tf_rl_text.distribute`, docs/distributed.md);
* one ``tf.train.Checkpoint`` (:attr:`Trainer.checkpoint`) with the whole run state, saved into
  ``run_dir/checkpoints`` (every ``checkpoint_every`` steps, at the end, on SIGINT/SIGTERM; the
  last ``keep_checkpoints`` kept) and restored automatically when ``run_dir`` holds one.

Run state that lives in Python (step counters, baselines, KL coefficient, reward-normaliser
statistics, the env's prompt order and cursor, numpy RNG states, the metrics history) is
saved inside the same checkpoint as JSON (a ``tf.train.experimental.PythonState``), so one file
set is always consistent: a kill at any instant leaves the previous complete checkpoint as the
latest one (TensorFlow writes the data, then swaps the ``checkpoint`` pointer file atomically).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import threading
import time
import warnings

import numpy as np

from tf_rl_text._compat import keras, tf
from tf_rl_text.trainers.guard import check_update

LR_SCHEDULES = ("constant", "linear", "cosine")
NO_DECAY = ("bias", "beta", "gamma", "layer_norm", "layernorm", "LayerNorm", "ln_")  # kept out of weight decay


# --------------------------------------------------------------------------- config
def check(ok: bool, name: str, rule: str, value):
    """The one validation helper: ``ValueError(f"{name} must be {rule}, got {value!r}")`` unless ``ok``."""
    if not ok:
        shown = repr(value) if isinstance(value, str) else value
        raise ValueError(f"{name} must be {rule}, got {shown}")


def is_int_at_least(value, low) -> bool:
    try:
        return int(value) == value and value >= low
    except (TypeError, ValueError):
        return False


@dataclasses.dataclass
class TrainerConfig:
    """What every trainer config shares (ReinforceConfig, A2CConfig, PPOConfig, QLearningConfig)."""

    learning_rate: float = 1e-4
    """Peak step size of Adam (Kingma & Ba 2015; AdamW, Loshchilov & Hutter 2019, with weight_decay)."""
    lr_schedule: str = "constant"
    """After the warm-up: "constant", "linear" (to min_lr_ratio * lr at total_steps) or "cosine"."""
    warmup_steps: int = 0
    """Trainer steps of linear warm-up from 0 to learning_rate (0 = none)."""
    total_steps: int | None = None
    """Trainer steps at which "linear"/"cosine" reach their end (needed by those schedules)."""
    min_lr_ratio: float = 0.0
    """Where "linear"/"cosine" end, as a fraction of learning_rate."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW) on every weight except biases and layer norms (0 = plain Adam)."""
    max_grad_norm: float | None = 1.0
    """Clip gradients to this global norm (None = no clipping)."""
    grad_accumulation_steps: int = 1
    """Split each update's batch into this many chunks and sum their gradients (same update, less memory)."""
    seed: int | None = None
    """Seed of the trainer's own random choices (PPO minibatch order...); None = the agent's seed."""

    def __post_init__(self):
        self.validate()

    def validate(self):
        check(self.learning_rate > 0, "learning_rate", "> 0", self.learning_rate)
        check(self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"one of {LR_SCHEDULES}", self.lr_schedule)
        check(is_int_at_least(self.warmup_steps, 0), "warmup_steps", "an integer >= 0", self.warmup_steps)
        check(self.total_steps is None or is_int_at_least(self.total_steps, 1), "total_steps",
              "an integer >= 1 or None", self.total_steps)
        if self.lr_schedule != "constant":
            check(self.total_steps is not None and self.total_steps > self.warmup_steps, "total_steps",
                  f"set and > warmup_steps ({self.warmup_steps}) for lr_schedule={self.lr_schedule!r}",
                  self.total_steps)
        check(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "in [0, 1]", self.min_lr_ratio)
        check(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        check(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", "> 0 or None",
              self.max_grad_norm)
        check(is_int_at_least(self.grad_accumulation_steps, 1), "grad_accumulation_steps", "an integer >= 1",
              self.grad_accumulation_steps)
        check(self.seed is None or is_int_at_least(self.seed, 0), "seed", "an integer >= 0 or None", self.seed)


# --------------------------------------------------------------------------- optimizer
def learning_rate_at(config: TrainerConfig, step) -> float:
    """The schedule's learning rate after ``step`` trainer steps (plain Python; the graph version
    is :class:`WarmupSchedule`)."""
    return float(WarmupSchedule(config, None).value(float(step)))


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr(s) = peak * s / warmup for s < warmup, then constant, linear or cosine decay to
    ``min_lr_ratio * peak`` at ``total_steps``. ``s`` is the trainer's step counter (``step_var``),
    not the optimizer's update count, so PPO's several updates per step share one rate."""

    def __init__(self, config: TrainerConfig, step_var):
        self.peak = float(config.learning_rate)
        self.kind = config.lr_schedule
        self.warmup = int(config.warmup_steps)
        self.total = int(config.total_steps or 0)
        self.floor = float(config.min_lr_ratio) * self.peak
        self.step_var = step_var

    def value(self, s):
        s = tf.cast(s, tf.float32)
        peak = tf.constant(self.peak, tf.float32)
        if self.warmup:
            warm = peak * tf.minimum(1.0, (s + 1.0) / float(self.warmup))  # step 0 already moves the weights
        else:
            warm = peak
        if self.kind == "constant":
            return warm
        frac = tf.clip_by_value((s - self.warmup) / float(max(1, self.total - self.warmup)), 0.0, 1.0)
        if self.kind == "linear":
            decayed = self.floor + (self.peak - self.floor) * (1.0 - frac)
        else:
            decayed = self.floor + (self.peak - self.floor) * 0.5 * (1.0 + tf.cos(math.pi * frac))
        return tf.where(s < self.warmup, warm, decayed)

    def __call__(self, step):
        return self.value(self.step_var if self.step_var is not None else step)

    def get_config(self):
        return {"peak": self.peak, "kind": self.kind, "warmup": self.warmup, "total": self.total, "floor": self.floor}


def make_optimizer(config: TrainerConfig, step_var=None):
    """Adam (or AdamW when ``weight_decay`` > 0) with the config's learning-rate schedule.

    A constant rate without warm-up is a plain float (bit-identical to ``Adam(learning_rate)``).
    """
    if config.lr_schedule == "constant" and not config.warmup_steps:
        lr = float(config.learning_rate)
    else:
        lr = WarmupSchedule(config, step_var)
    if config.weight_decay:
        opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=float(config.weight_decay))
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY))
        return opt
    return keras.optimizers.Adam(learning_rate=lr)


def apply_clipped(optimizer, grads, variables, max_grad_norm=None, only_if_finite=False, loss=None,
                  aggregated=False):
    """Clip ``grads`` to the global norm ``max_grad_norm`` (None: no clipping), apply them; returns
    the norm before clipping. The one clip-and-apply block of the package (graph or eager code).

    ``only_if_finite``: apply only if the gradient norm (and ``loss``, when given) is finite;
    otherwise no variable is written, the optimizer's slots and step counter included. The
    trainers use it and then refuse the step (:func:`tf_rl_text.trainers.guard.check_update`).

    The norm is that of the dense gradient: ``tf.linalg.global_norm`` on an ``IndexedSlices``
    gradient (an embedding's) squares each slice separately, so a token that occurs twice in the
    batch would count as two rows instead of their sum; that made the norm, and with it the
    clipping, depend on how the batch is split.

    ``aggregated=True``: ``grads`` are already summed over a strategy's replicas (an explicit
    all-reduce before the clip, so the norm is that of the global gradient); the optimizer
    then applies them without summing again."""
    grad_norm = tf.linalg.global_norm([tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g
                                       for g in grads])

    def apply():
        clipped = grads
        if max_grad_norm is not None:
            clipped, _ = tf.clip_by_global_norm(grads, max_grad_norm, use_norm=grad_norm)
        if aggregated:
            optimizer.apply_gradients(zip(clipped, variables), skip_gradients_aggregation=True)
        else:
            optimizer.apply_gradients(zip(clipped, variables))
        return tf.constant(True)

    if not only_if_finite:
        apply()
        return grad_norm
    finite = tf.math.is_finite(grad_norm)  # inf or nan if any gradient element is
    if loss is not None:
        finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(loss)))
    tf.cond(finite, apply, lambda: tf.constant(False))
    return grad_norm


# --------------------------------------------------------------------------- python state in the checkpoint
class JSONState(tf.train.experimental.PythonState):
    """Python values saved inside a tf.train.Checkpoint as one JSON string: ``get()`` returns a
    JSON-able dict at save time, ``set(dict)`` puts it back at restore time."""

    def __init__(self, get, set):
        self._get, self._set = get, set

    def serialize(self):
        return json.dumps(self._get())

    def deserialize(self, string_value):
        if isinstance(string_value, bytes):
            string_value = string_value.decode("utf-8")
        self._set(json.loads(string_value))


def numpy_rng_state(rng: np.random.RandomState) -> list:
    name, keys, pos, has_gauss, cached = rng.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def set_numpy_rng_state(rng: np.random.RandomState, state) -> None:
    name, keys, pos, has_gauss, cached = state
    rng.set_state((name, np.asarray(keys, np.uint32), pos, has_gauss, cached))


def env_state(env):
    """The env's prompt order, cursor and shuffle RNG (JSON-able), or None for an env without them."""
    if hasattr(env, "state_dict"):
        return env.state_dict()
    return None


# --------------------------------------------------------------------------- the trainer
class _BuiltInStrategyScope(type):
    """Runs a trainer's whole construction (base and subclass ``__init__``) inside
    ``strategy.scope()``, so every variable it creates (reference model, heads, target network,
    optimizer slots, step counter) belongs to the strategy."""

    def __call__(cls, *args, strategy=None, **kwargs):
        from tf_rl_text import distribute

        strategy = distribute.resolve(strategy)
        with strategy.scope():  # the base __init__ finds it with tf.distribute.get_strategy() (a subclass
            return super().__call__(*args, **kwargs)  # __init__ need not pass strategy= on)


class Trainer(metaclass=_BuiltInStrategyScope):
    """What every trainer shares; see the module docstring.

    Args:
      agent, env, config: the policy, the environment and the algorithm's config.
      run_dir: a folder for this run (checkpoints/, tensorboard/, metrics.jsonl). When it holds a
        checkpoint, the trainer resumes from it at construction.
      checkpoint_every: with a run_dir, save every this many steps during :meth:`train` (0 = only
        at the end and on SIGINT/SIGTERM).
      keep_checkpoints: how many recent checkpoints to keep.
      auto_resume: restore run_dir's checkpoint at construction (True) or only when :meth:`train`
        starts (False: the starting model can still be measured after the trainer is built).
      strategy: a ``tf.distribute.Strategy`` (default: the current one, normally TensorFlow's
        single-device default). The trainer is built inside ``strategy.scope()``; the agent's
        model must have been built there too. Each update splits the global batch over the
        replicas and all-reduces their gradients; only the chief writes files. See
        :mod:`tf_rl_text.distribute` and docs/distributed.md.
    """

    algorithm = "trainer"
    config_class = TrainerConfig
    unit = "step"

    def __init__(self, agent, env, config=None, run_dir: str | None = None, checkpoint_every: int = 100,
                 keep_checkpoints: int = 3, auto_resume: bool = True, strategy=None):
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        check(is_int_at_least(checkpoint_every, 0), "checkpoint_every", "an integer >= 0", checkpoint_every)
        check(is_int_at_least(keep_checkpoints, 1), "keep_checkpoints", "an integer >= 1", keep_checkpoints)
        from tf_rl_text import distribute

        self.strategy = distribute.resolve(strategy)
        self.distributed = not distribute.is_default(self.strategy)
        """True under a strategy other than the default one: updates go through ``strategy.run``."""
        distribute.check_in_scope(self.strategy, agent.trainable_variables)
        self.agent = agent
        self.env = env
        self.config = config
        if run_dir:
            from tf_rl_text.validation import check_writable_folder

            check_writable_folder(run_dir, "run folder")  # now, not at the first checkpoint hours later
        self.run_dir = os.path.abspath(run_dir) if run_dir else None
        self.checkpoint_every = int(checkpoint_every)
        self.keep_checkpoints = int(keep_checkpoints)
        self.auto_resume = bool(auto_resume)
        self.history: list[dict] = []
        self.num_updates = 0
        self.restored_from: str | None = None
        self._step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.optimizer = make_optimizer(config, self._step_var)
        self._python = JSONState(self._get_python_state, self._set_python_state)
        self._manager = None
        self._manager_keys = None
        self._stop_signal = None
        self._last_saved_step = None  # the step of the checkpoint this process last saved or restored
        self._lora = getattr(agent, "lora", None)  # the adapters this trainer was built for (step() checks)

    # ------------------------------------------------------------------ subclasses fill in
    def _step(self) -> dict:
        """One step of the algorithm (rollout + update(s)); returns its statistics."""
        raise NotImplementedError

    def _trackables(self) -> dict:
        """TF objects of the run state: name -> trackable (model, optimizer, RNGs, heads, buffers)."""
        out = {"model": self.agent.model, "optimizer": self.optimizer, "sampling_rng": self.agent.rng,
               "global_step": self._step_var, "python_state": self._python}
        if getattr(self, "ref_model", None) is not None:
            out["ref_model"] = self.ref_model
        if getattr(self.agent, "lora", None) is not None:
            out["lora"] = self.agent.lora  # the adapters: the model's own variables do not include them
        return out

    def _python_state(self) -> dict:
        """JSON-able Python run state of the subclass (counters, baselines, ...)."""
        return {}

    def _load_python_state(self, state: dict) -> None:
        pass

    @property
    def acting_agent(self):
        """The agent whose completions :meth:`evaluate` scores (Q-learning: its greedy Q policy)."""
        return self.agent

    training_only_extras = ()
    """Names in :meth:`_export_kwargs`' extra objects/functions that a serving-only export leaves out."""

    def _export_kwargs(self) -> dict:
        """Extra keyword arguments of :func:`~tf_rl_text.export.export_policy` (train_step, metadata...)."""
        return {}

    # ------------------------------------------------------------------ python state
    def _get_python_state(self) -> dict:
        state = {"num_updates": self.num_updates, "history": self.history, "env": env_state(self.env)}
        state.update(self._python_state())
        return state

    def _set_python_state(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
        self.history = list(state["history"])
        if state.get("env") is not None and hasattr(self.env, "load_state_dict"):
            self.env.load_state_dict(state["env"])
        self._load_python_state(state)

    # ------------------------------------------------------------------ counters
    @property
    def global_step(self) -> int:
        """Number of completed :meth:`step` calls of this run (restored with the checkpoint)."""
        return int(self._step_var.numpy())

    @property
    def learning_rate(self) -> float:
        """The learning rate the next update uses."""
        if isinstance(getattr(self.optimizer, "_learning_rate", None), WarmupSchedule):
            return learning_rate_at(self.config, self.global_step)
        return float(self.config.learning_rate)

    # ------------------------------------------------------------------ update helpers
    def apply_gradients(self, grads, variables, loss=None):
        """Clip (``config.max_grad_norm``) and apply, only if the gradients and ``loss`` are finite;
        returns the global norm before clipping. The update's outputs carry ``loss`` and this
        ``grad_norm``; :meth:`check_update` turns non-finite ones into a refused step."""
        return apply_clipped(self.optimizer, grads, variables, self.config.max_grad_norm, only_if_finite=True,
                             loss=loss)

    def check_update(self, info: dict, where: str = "") -> dict:
        """Raise :class:`~tf_rl_text.trainers.guard.NonFiniteUpdateError` if the update that returned
        ``info`` was refused (non-finite ``loss`` or ``grad_norm``: nothing was applied), naming the
        step it belongs to. Returns ``info``."""
        return check_update(info, self.global_step + 1, self.algorithm, self.learning_rate, where)

    def _compiled_apply(self, variables):
        key = tuple(id(v) for v in variables)
        fns = self.__dict__.setdefault("_apply_fns", {})
        if key not in fns:
            specs = [tf.TensorSpec(v.shape, v.dtype) for v in variables]

            def apply(grads, loss):
                return self.apply_gradients(list(grads), variables, loss)

            fns[key] = tf.function(apply, input_signature=[specs, tf.TensorSpec([], tf.float32)], autograph=False)
        return fns[key]

    def accumulate(self, grad_fn, tensors, variables, num_chunks=None):
        """One update from ``num_chunks`` (default ``config.grad_accumulation_steps``) row chunks of ``tensors``.

        ``grad_fn(*chunk_tensors, total_rows, total_tokens) -> (grads, info)`` returns the
        gradients of its chunk's share of the batch loss: a per-row mean weighted by
        ``rows / total_rows``, a per-token mean by ``tokens / total_tokens`` (``total_tokens`` is
        the sum of ``tensors[3]``, the completion mask). Summing the chunks then gives the
        gradient of the whole batch's loss. The gradients are summed, clipped and applied once;
        ``info`` values are summed too (so weighted means add up to the batch's). Returns the
        summed info with ``grad_norm``.
        """
        k = int(num_chunks or self.config.grad_accumulation_steps)
        rows = int(tensors[0].shape[0])
        if self.distributed:
            return self._distributed_accumulate(grad_fn, tensors, variables, k)
        if k > rows:
            raise ValueError(f"grad_accumulation_steps={k} exceeds the batch's {rows} rows; lower it or raise "
                             "the batch size")
        total_rows = tf.constant(float(rows))
        total_tokens = tf.reduce_sum(tf.cast(tensors[3], tf.float32))
        grads_sum, info_sum = None, {}
        for index in np.array_split(np.arange(rows), k):
            chunk = [tf.gather(t, index) for t in tensors]
            grads, info = grad_fn(*chunk, total_rows, total_tokens)
            grads = [tf.convert_to_tensor(g) for g in grads]
            grads_sum = grads if grads_sum is None else [a + b for a, b in zip(grads_sum, grads)]
            for key, value in info.items():
                info_sum[key] = info_sum.get(key, 0.0) + value
        loss = tf.cast(tf.reshape(info_sum.get("loss", 0.0), []), tf.float32)  # the batch loss: refused if not finite
        info_sum["grad_norm"] = self._compiled_apply(variables)(grads_sum, loss)
        return info_sum

    def _distributed_accumulate(self, grad_fn, tensors, variables, k):
        """:meth:`accumulate` under a strategy: replica r takes its rows of the global batch (and
        splits them into ``k`` chunks); gradients and infos are summed over chunks and replicas."""
        from tf_rl_text import distribute

        distribute.global_batch_check(int(tensors[0].shape[0]), self.strategy, k)
        key = (id(grad_fn), tuple(id(v) for v in variables), k, len(tensors))
        fns = self.__dict__.setdefault("_distributed_fns", {})
        if key not in fns:
            specs = [tf.TensorSpec([None] * len(t.shape), t.dtype) for t in tensors]
            fns[key] = distribute.distributed_update(self.strategy, self.optimizer, grad_fn, specs, variables,
                                                     self.config.max_grad_norm, k)
        return fns[key](list(tensors))

    @property
    def is_chief(self) -> bool:
        """False on a non-chief worker of a multi-worker strategy (which writes no files)."""
        from tf_rl_text import distribute

        return distribute.is_chief(self.strategy)

    # ------------------------------------------------------------------ the loop
    def step(self) -> dict:
        """One step (a batch of episodes and its update(s)). Returns the step's statistics (floats)."""
        if getattr(self.agent, "lora", None) is not self._lora:
            raise ValueError(f"LoRA adapters were attached to the agent after {type(self).__name__} was built, which "
                             f"would keep training the variables it was built for: call agent.attach_lora(...) "
                             f"first, then build the {type(self).__name__}")
        start = time.perf_counter()
        lr = self.learning_rate
        stats = self._step()
        self._step_var.assign_add(1)
        stats.setdefault("step_time_s", time.perf_counter() - start)
        stats["lr"] = lr
        self.history.append(stats)
        return stats

    def _postfix(self, stats) -> dict:
        shown = {}
        if "reward_mean" in stats:
            shown["reward"] = f"{stats['reward_mean']:.3f}"
        if "kl" in stats:
            shown["kl"] = f"{stats['kl']:.3f}"
        return shown

    def train(self, num_steps: int, callbacks=None, progress: bool = True, callback=None) -> list[dict]:
        """Run steps with callbacks, checkpoints and a progress bar; returns the new steps' statistics.

        With a ``run_dir``, ``num_steps`` is the step count the run should reach: a resumed run
        continues from its restored :attr:`global_step`, so rerunning the same command after a
        crash finishes the run. Without a ``run_dir`` it is the number of steps to run now.
        ``callbacks``: :class:`tf_rl_text.callbacks.Callback` objects; ``callback(stats)`` (the
        older form) runs after each step. Checkpoints are written every ``checkpoint_every``
        steps, at the end, and when SIGINT/SIGTERM arrives (then the signal's usual effect
        follows: KeyboardInterrupt, or exit status 143).
        """
        from tf_rl_text import callbacks as cb

        check(is_int_at_least(num_steps, 0), "num_steps", "an integer >= 0", num_steps)
        if self.run_dir and self.restored_from is None:
            self.restore()
        target = int(num_steps) if self.run_dir else self.global_step + int(num_steps)
        self.target_step = target
        items = list(callbacks or [])
        if progress and not any(isinstance(c, cb.ProgressBar) for c in items):
            items.append(cb.ProgressBar(desc=self.algorithm, unit=self.unit, postfix=self._postfix))
        if callback is not None:
            items.append(cb.LambdaCallback(on_step_end=lambda step, logs: callback(logs)))
        callbacks = cb.CallbackList(items)
        out = []
        logs = {}
        callbacks.on_train_begin(self)
        with self._signals_saved():
            while self.global_step < target:
                logs = self.step()
                out.append(logs)
                callbacks.on_step_end(self.global_step, logs)
                if self.run_dir and self.checkpoint_every and self.global_step % self.checkpoint_every == 0:
                    self.save_checkpoint()
                if self._stop_signal is not None:
                    break
            # decided from this process's own saves, so every worker of a multi-worker run agrees
            if self.run_dir and self._last_saved_step != self.global_step:
                self.save_checkpoint()
            callbacks.on_train_end(logs)
            signum, self._stop_signal = self._stop_signal, None
        if signum == signal.SIGINT:
            raise KeyboardInterrupt(f"stopped by SIGINT at step {self.global_step}; checkpoint saved in {self.run_dir}")
        if signum is not None:
            raise SystemExit(128 + int(signum))
        return out

    def _signals_saved(self):
        """While training: SIGINT/SIGTERM set a flag; the loop saves a checkpoint and stops after the step."""
        import contextlib

        trainer = self

        @contextlib.contextmanager
        def guard():
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            old = {}

            def handler(signum, frame):
                if trainer._stop_signal is not None:  # a second signal: stop now
                    signal.signal(signum, old.get(signum, signal.SIG_DFL))
                    os.kill(os.getpid(), signum)
                trainer._stop_signal = signum

            for s in (signal.SIGINT, signal.SIGTERM):
                old[s] = signal.getsignal(s)
                signal.signal(s, handler)
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

        return guard()

    # ------------------------------------------------------------------ evaluation and export
    def evaluate(self, prompts=None, references=None, greedy: bool = True, seed: int = 0) -> float:
        """Mean reward of (greedy by default) completions of ``prompts`` (default: all env prompts)."""
        if prompts is None:
            prompts, references = self.env.prompts, self.env.references
        rollout = self.env.rollout(self.acting_agent, greedy=greedy, seed=seed, prompts=list(prompts),
                                   references=list(references) if references is not None else None)
        return float(np.mean(rollout.rewards))

    def export(self, path: str | None = None, max_new_tokens: int | None = None, serving_only: bool = False) -> str:
        """Write the policy as a SavedModel (see :func:`tf_rl_text.export.export_policy`);
        ``path`` defaults to ``run_dir/export``. ``serving_only``: without ``train_step``, the
        optimizer's slots and training-only extras (:attr:`training_only_extras`)."""
        from tf_rl_text.export import export_policy

        if path is None:
            if not self.run_dir:
                raise ValueError("export needs a path (this trainer has no run_dir to default to)")
            path = os.path.join(self.run_dir, "export")
        kwargs = self._export_kwargs()
        metadata = {"algorithm": self.algorithm, "config": dataclasses.asdict(self.config),
                    "updates": self.num_updates, "global_step": self.global_step}
        metadata.update(kwargs.pop("metadata", {}))
        if serving_only:  # a target network and the like only serve training
            for key in ("extra_objects", "extra_functions"):
                kwargs[key] = {k: v for k, v in (kwargs.get(key) or {}).items() if k not in self.training_only_extras}
        from tf_rl_text import distribute

        with distribute.write_dir(path, self.strategy) as target:  # non-chief workers: a removed temp folder
            written = export_policy(self.acting_agent, target,
                                    max_new_tokens=max_new_tokens or self.env.max_new_tokens,
                                    optimizer=self.optimizer, metadata=metadata, serving_only=serving_only, **kwargs)
        return written if self.is_chief else path

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint(self) -> tf.train.Checkpoint:
        """A ``tf.train.Checkpoint`` of the whole run state (built from :meth:`_trackables`)."""
        objects = self._trackables()
        keys = tuple(sorted((k, id(v)) for k, v in objects.items()))
        if getattr(self, "_checkpoint_keys", None) != keys:
            self._checkpoint = tf.train.Checkpoint(**objects)
            self._checkpoint_keys = keys
        return self._checkpoint

    @property
    def checkpoint_dir(self) -> str | None:
        return os.path.join(self.run_dir, "checkpoints") if self.run_dir else None

    def _checkpoint_manager(self, directory=None):
        directory = directory or self.checkpoint_dir
        if directory is None:
            raise ValueError("this trainer has no run_dir; pass run_dir= to the trainer (or a folder to restore)")
        ckpt = self.checkpoint
        if self._manager is None or self._manager_keys != (directory, id(ckpt)):
            self._manager = tf.train.CheckpointManager(ckpt, directory, max_to_keep=self.keep_checkpoints,
                                                       step_counter=self._step_var, checkpoint_name="ckpt")
            self._manager_keys = (directory, id(ckpt))
        return self._manager

    def _latest_step(self):
        path = tf.train.latest_checkpoint(self.checkpoint_dir) if self.run_dir else None
        return int(path.rsplit("-", 1)[1]) if path else None

    def save_checkpoint(self) -> str:
        """Save the whole run state to ``run_dir/checkpoints/ckpt-<global_step>``; returns its path."""
        if not self.is_chief:  # saving is collective: save too, into a temporary folder that is removed
            from tf_rl_text import distribute

            with distribute.write_dir(self.checkpoint_dir, self.strategy) as tmp:
                tf.train.CheckpointManager(self.checkpoint, tmp, max_to_keep=1, step_counter=self._step_var,
                                           checkpoint_name="ckpt").save(checkpoint_number=self.global_step)
            self._last_saved_step = self.global_step
            return os.path.join(self.checkpoint_dir, f"ckpt-{self.global_step}")
        manager = self._checkpoint_manager()
        step = self.global_step
        try:
            path = manager.save(checkpoint_number=step)
        except Exception as err:  # disk full, folder gone...: the index still names the last good checkpoint
            directory = self.checkpoint_dir
            for entry in os.listdir(directory) if os.path.isdir(directory) else []:
                if entry.startswith((f"ckpt-{step}.", f"ckpt-{step}_temp")):  # this save's partial files
                    target = os.path.join(directory, entry)
                    import shutil

                    shutil.rmtree(target, ignore_errors=True) if os.path.isdir(target) else os.remove(target)
            last = self._latest_step()
            kept = f"the last good checkpoint (step {last}) is kept" if last is not None else "no checkpoint was kept"
            message = (f"could not save the checkpoint of step {step} in {directory} ({type(err).__name__}: "
                       f"{str(err).strip().splitlines()[0] if str(err).strip() else 'no message'}); {kept}. Free "
                       f"space or fix the folder, then rerun: the run resumes from its last good checkpoint")
            if isinstance(err, OSError) and err.errno is not None:
                raise OSError(err.errno, message) from err
            raise RuntimeError(message) from err
        self._last_saved_step = step
        return path

    def restore(self, run_dir: str | None = None) -> bool:
        """Restore the latest checkpoint of ``run_dir`` (default: this trainer's). Returns False when
        there is none. A checkpoint that fails to load (a damaged file) is skipped with a warning
        in favour of the one before it."""
        run_dir = os.path.abspath(run_dir) if run_dir else self.run_dir
        if run_dir is None:
            raise ValueError("restore needs a run folder: pass restore(run_dir) or build the trainer with run_dir=")
        directory = run_dir if os.path.basename(run_dir.rstrip("/")) == "checkpoints" or not os.path.isdir(
            os.path.join(run_dir, "checkpoints")) else os.path.join(run_dir, "checkpoints")
        state = tf.train.get_checkpoint_state(directory)
        if state is None:
            if self.run_dir == run_dir:
                self.restored_from = ""  # looked: a fresh run
            return False
        candidates = list(reversed(list(state.all_model_checkpoint_paths))) or [state.model_checkpoint_path]
        last_error = None
        for path in candidates:
            if not os.path.isabs(path):
                path = os.path.join(directory, path)
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except Exception as err:  # noqa: BLE001 - a damaged or foreign checkpoint: try the one before
                warnings.warn(f"could not restore {path}: {type(err).__name__}: {err}; trying an older checkpoint")
                last_error = err
                continue
            self.restored_from = path
            if run_dir == self.run_dir:  # this run folder already holds this step
                self._last_saved_step = self.global_step
            self._after_restore()
            return True
        reason = str(last_error).strip().splitlines()[0][:200] if last_error is not None and str(last_error).strip() else ""
        detail = f"; last error {type(last_error).__name__}: {reason}" if reason else ""
        raise ValueError(f"no checkpoint in {directory} could be restored into this {type(self).__name__} (a different "
                         f"model or config, or damaged files{detail}); use a new run_dir")

    def _after_restore(self):
        """Hook: re-derive anything cached from the restored state."""

    def _auto_resume(self):
        """Called by subclasses at the end of ``__init__``: resume when run_dir holds a checkpoint."""
        if self.run_dir and self.auto_resume:
            self.restore()


__all__ = ["TrainerConfig", "Trainer", "WarmupSchedule", "make_optimizer", "apply_clipped", "check",
           "learning_rate_at", "JSONState", "LR_SCHEDULES"]
