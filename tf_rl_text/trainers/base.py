"""The trainer core every algorithm stands on: config, the one loop, update, evaluation, export.

The loop (:meth:`Trainer.step`) is the same for every algorithm::

    batch  = self.source.next()              # an experience source (tf_rl_text.experience)
    scored = self.score(batch)               # the algorithm: log-probs, values, advantages, KL...
    info   = self.optimize(scored)           # the algorithm: its update(s), through the update runner
    stats  = self.statistics(batch, scored, info)   # + the source's figures, the update count, the time

then callbacks, checkpoints and the progress bar (:meth:`Trainer.train`). An algorithm subclasses
:class:`Trainer` and writes only what is its own: ``score`` and ``optimize`` (and, where the default
``EnvRollouts(env, agent, num_samples_per_prompt)`` is not its experience, ``make_source``), the extra
state it keeps (``_trackables``, ``_python_state``), what its SavedModel carries (``_export_kwargs``).
Resuming from ``run_dir`` happens once construction is complete (no subclass calls it).
The base gives it

* an optimizer from the config (:mod:`tf_rl_text.optim`): Adam (AdamW with
  ``weight_decay``), a learning-rate schedule ("constant", "linear" or "cosine" decay after a
  linear warm-up, counted in trainer steps);
* :func:`tf_rl_text.optim.apply_clipped`, the one clip-and-apply block, and :meth:`Trainer.accumulate`, which
  splits a batch into ``grad_accumulation_steps`` chunks and sums their gradients (each chunk's
  loss is weighted by its share of the batch's rows or tokens, so the update equals the one of
  the whole batch up to float error);
* ``train(num_steps, callbacks=...)``, ``evaluate``, ``export``;
* ``strategy=`` (a ``tf.distribute.Strategy``): construction inside its scope, each update split
  over its replicas with ``strategy.run`` and all-reduced gradients, files written by the chief
  only (:mod:`tf_rl_text.distribute`, docs/distributed.md);
* one ``tf.train.Checkpoint`` (:attr:`Trainer.checkpoint`) with the whole run state, Python state
  included as JSON, saved into ``run_dir/checkpoints`` (every ``checkpoint_every`` steps, at the
  end, on SIGINT/SIGTERM; the last ``keep_checkpoints`` kept) and restored automatically when
  ``run_dir`` holds one (:class:`tf_rl_text.checkpoint.Checkpointing`).
"""
from __future__ import annotations

import contextlib

import dataclasses
import os
import time

import numpy as np

from tf_rl_text._compat import tf
from tf_rl_text.checkpoint import Checkpointing
from tf_rl_text.experience import EnvRollouts, token_scores as policy_token_scores
from tf_rl_text.trainers.guard import check_update
from tf_rl_text.optim import LR_SCHEDULES, WarmupSchedule, learning_rate_at, make_optimizer
from tf_rl_text.validation import check, is_int_at_least

__all__ = ["TrainerConfig", "Trainer"]


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


class _BuiltInStrategyScope(type):
    """Runs a trainer's whole construction (base and subclass ``__init__``) inside
    ``strategy.scope()``, so every variable it creates (reference model, heads, target network,
    optimizer slots, step counter) belongs to the strategy; then, construction complete, gives it its
    experience source (:meth:`Trainer.make_source`, unless ``__init__`` set one) and resumes from
    ``run_dir`` when that holds a checkpoint."""

    def __call__(cls, *args, strategy=None, **kwargs):
        from tf_rl_text import distribute

        strategy = distribute.resolve(strategy)
        with strategy.scope():  # the base __init__ finds it with tf.distribute.get_strategy() (a subclass
            trainer = super().__call__(*args, **kwargs)  # __init__ need not pass strategy= on)
            if trainer.source is None:
                trainer.source = trainer.make_source()
            trainer._auto_resume()
        return trainer


class Trainer(Checkpointing, metaclass=_BuiltInStrategyScope):
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
        """The environment evaluations roll out in (and, for most algorithms, the source's); may be None (DPO
        without a reward)."""
        self.config = config
        if getattr(self, "source", None) is None:  # a subclass may set its source before calling this
            self.source = None
            """The experience source (:mod:`tf_rl_text.experience`): set by :meth:`make_source` after ``__init__``."""
        self._init_checkpointing(run_dir, checkpoint_every, keep_checkpoints, auto_resume)  # run_dir, restored_from...
        self.history: list[dict] = []
        self.num_updates = 0
        self._step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.optimizer = make_optimizer(config, self._step_var)
        self._stop_signal = None
        self._last_saved_step = None  # the step of the checkpoint this process last saved or restored
        self._lora = getattr(agent, "lora", None)  # the adapters this trainer was built for (step() checks)

    @classmethod
    def for_run(cls, agent, env, config, pairs, **kwargs):
        """How a config-built run (:func:`tf_rl_text.workflow.build`) makes this trainer: ``cls(agent, env,
        config, **kwargs)``. ``pairs``: a function that makes the run's preference pairs, for a trainer that
        learns from them (DPO overrides this)."""
        return cls(agent, env, config, **kwargs)

    # ------------------------------------------------------------------ subclasses fill in
    reward_fn = None
    """The reward that scores this trainer's rollouts and evaluations instead of the env's own (GRPO's
    weighted reward functions); None = the env's."""

    def make_source(self):
        """The experience source (called once ``__init__`` is done, unless it set ``self.source``): on-policy
        rollouts of ``env``, ``config.num_samples_per_prompt`` samples per prompt (1 without that field)."""
        return EnvRollouts(self.env, self.agent, getattr(self.config, "num_samples_per_prompt", 1), self.reward_fn)

    def score(self, batch, per_token: bool = False):
        """What the update needs of ``batch`` (a :class:`~tf_rl_text.experience.Scored`): rewards, baselines,
        advantages, reference log-probs... With ``per_token``, also ``tokens``: the per-token (B, T)
        quantities :func:`tf_rl_text.explain.explain` shows (log-probs, entropy, KL, the credit)."""
        raise NotImplementedError(f"{type(self).__name__} must define score(batch) and optimize(scored)")

    def optimize(self, scored) -> dict:
        """The algorithm's update(s) on a scored batch, through :meth:`accumulate`; counts them in
        ``num_updates``. Returns the update statistics (numbers or scalar tensors)."""
        raise NotImplementedError(f"{type(self).__name__} must define score(batch) and optimize(scored)")

    def statistics(self, batch, scored, info) -> dict:
        """A step's statistics: the update's ``info`` (floats), the source's figures of ``batch`` (reward mean and
        std, completion length...) and the update count. An algorithm adds its own by overriding this."""
        stats = {k: float(v) for k, v in info.items()}
        stats.update(self.source.statistics(batch))
        stats["update"] = self.num_updates
        return stats

    def _step(self) -> dict:
        """One step of the loop: source -> score -> optimize -> statistics."""
        batch = self.source.next()
        scored = self.score(batch)
        info = self.optimize(scored)
        return self.statistics(batch, scored, info)

    def token_scores(self, ids, estimator: str = "kl") -> dict:
        """The policy's per-token figures of a batch's completions (:func:`tf_rl_text.experience.token_scores`):
        log pi, entropy and, against this trainer's frozen reference (when it has one), log ratio and KL."""
        return policy_token_scores(self.agent, ids, getattr(self, "ref_model", None), estimator)

    def token_credit(self, rollout):
        """The per-token view of one rollout (a :class:`~tf_rl_text.experience.Scored` with ``tokens``): what
        :func:`tf_rl_text.explain.explain` shows. By default :meth:`score` with ``per_token=True``."""
        return self.score(rollout, per_token=True)

    group_size_field = None
    """The config field that fixes how many samples of a prompt the baseline compares (explain keeps it)."""

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

    def completion_train_step(self, loss_of, extra_specs, label: str):
        """A SavedModel ``train_step`` for a policy-gradient loss of the completions' log-probs:
        f(input_ids, attention_mask, completion_ids, completion_mask, *extra) -> {"loss"}, prompts (B, P)
        as for ``generate``, completions (B, T), ``extra`` as ``extra_specs`` name them. ``loss_of(logp (B, T),
        completion_mask, *extra)`` is the algorithm's loss; one clipped update with the trainer's optimizer
        through the update runner (:func:`~tf_rl_text.update.apply_update`), refused (an error)
        when the loss is not finite. Returns (fn, signature)."""
        from tf_rl_text.savedmodel import COMPLETION_SPECS
        from tf_rl_text.update import apply_update

        agent, trainer = self.agent, self

        def grad_fn(input_ids, attention_mask, completion_ids, completion_mask, *rest):
            extra = rest[:-2]  # then total_rows, total_tokens: one chunk, the whole batch
            with tf.GradientTape() as tape:
                logp = agent.log_probs(input_ids, attention_mask, completion_ids, completion_mask)  # (B, T)
                loss = tf.debugging.check_numerics(loss_of(logp, completion_mask, *extra),
                                                   f"{label} loss is NaN or Inf")
            return tape.gradient(loss, agent.trainable_variables), {"loss": loss}

        def train_step(input_ids, attention_mask, completion_ids, completion_mask, *extra):
            info = apply_update(grad_fn, [input_ids, attention_mask, completion_ids, completion_mask, *extra],
                                agent.trainable_variables, trainer.optimizer, trainer.config.max_grad_norm)
            return {"loss": info["loss"]}

        signature = [tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                     tf.TensorSpec([None, None], tf.int32, name="attention_mask"), *COMPLETION_SPECS, *extra_specs]
        return agent.graph_code(train_step), signature

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
    def check_update(self, info: dict, where: str = "") -> dict:
        """Raise :class:`~tf_rl_text.trainers.guard.NonFiniteUpdateError` if the update that returned
        ``info`` was refused (non-finite ``loss`` or ``grad_norm``: nothing was applied), naming the
        step it belongs to. Returns ``info``."""
        return check_update(info, self.global_step + 1, self.algorithm, self.learning_rate, where)

    def accumulate(self, grad_fn, tensors, variables, num_chunks=None):
        """One update from ``num_chunks`` (default ``config.grad_accumulation_steps``) row chunks of
        ``tensors``, on one device or split over the trainer's strategy: the update runner
        (:func:`tf_rl_text.update.compile_update`, compiled once per gradient function).

        ``grad_fn(*chunk_tensors, total_rows, total_tokens) -> (grads, info)`` returns the
        gradients of its chunk's share of the batch loss: a per-row mean weighted by
        ``rows / total_rows``, a per-token mean by ``tokens / total_tokens`` (``total_tokens`` is
        the sum of ``tensors[3]``, the completion mask). Summing the chunks then gives the
        gradient of the whole batch's loss. The gradients are summed, clipped and applied once,
        only if they and ``info["loss"]`` are finite; ``info`` values are summed too (so weighted
        means add up to the batch's). Returns the summed info with ``grad_norm``.
        """
        from tf_rl_text import distribute
        from tf_rl_text.update import compile_update

        k = int(num_chunks or self.config.grad_accumulation_steps)
        rows = int(tensors[0].shape[0])
        if self.distributed:
            distribute.global_batch_check(rows, self.strategy, k)
        elif k > rows:
            raise ValueError(f"grad_accumulation_steps={k} exceeds the batch's {rows} rows; lower it or raise "
                             "the batch size")
        key = (id(grad_fn), tuple(id(v) for v in variables), k, len(tensors))
        fns = self.__dict__.setdefault("_update_fns", {})
        if key not in fns:
            specs = [tf.TensorSpec([None] * len(t.shape), t.dtype) for t in tensors]
            fns[key] = compile_update(grad_fn, specs, variables, self.optimizer, self.config.max_grad_norm,
                                      self.strategy if self.distributed else None, k)
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
        from tf_rl_text.env import StopRequested

        before = self.rollout_state()
        try:
            stats = self._step()
        except StopRequested:  # a signal while the reward function ran: this step never happened
            self.set_rollout_state(before)
            raise
        self._step_var.assign_add(1)
        stats.setdefault("step_time_s", time.perf_counter() - start)
        stats["lr"] = lr
        self.history.append(stats)
        return stats

    def rollout_state(self) -> tuple:
        """What drawing a batch moves: the source's order and cursor, the sampling RNG, the reward-call count."""
        rng = getattr(self.acting_agent, "rng", None)  # the sampling agent's (Q-learning: its exploring policy)
        return (self.source.state_dict(), None if rng is None else rng.state.numpy(),
                getattr(self.env, "num_reward_batches", None))

    def set_rollout_state(self, state: tuple) -> None:
        """Put back what :meth:`rollout_state` returned (the next batch drawn is then the same one)."""
        source, rng, batches = state
        if source is not None:
            self.source.load_state_dict(source)
        if rng is not None:
            self.acting_agent.rng.state.assign(rng)
        if batches is not None:
            self.env.num_reward_batches = batches

    def _postfix(self, stats) -> dict:
        shown = {}
        if "reward_mean" in stats:
            shown["reward"] = f"{stats['reward_mean']:.3f}"
        if "kl" in stats:
            shown["kl"] = f"{stats['kl']:.3f}"
        return shown

    def train(self, num_steps: int, callbacks=None, progress: bool = True) -> list[dict]:
        """Run steps with callbacks, checkpoints and a progress bar; returns the new steps' statistics.

        With a ``run_dir``, ``num_steps`` is the step count the run should reach: a resumed run
        continues from its restored :attr:`global_step`, so rerunning the same command after a
        crash finishes the run. Without a ``run_dir`` it is the number of steps to run now.
        ``callbacks``: :class:`tf_rl_text.callbacks.Callback` objects (``LambdaCallback(on_step_end=fn)`` for a
        plain function). Checkpoints are written every ``checkpoint_every``
        steps, at the end, and when SIGINT/SIGTERM arrives (then the signal's usual effect
        follows: KeyboardInterrupt, or exit status 143). While it trains, the process holds the run
        folder's lock (``RUN_DIR/.lock``): a second process on the same folder stops with an error.
        """
        from tf_rl_text.checkpoint import run_folder_lock

        check(is_int_at_least(num_steps, 0), "num_steps", "an integer >= 0", num_steps)
        # one process at a time trains into a run folder (a second one stops here, naming the first)
        lock = run_folder_lock(self.run_dir) if self.run_dir and self.is_chief else contextlib.nullcontext()
        with lock:
            if self.run_dir and self.restored_from is None:
                self.restore()
            return self._train_loop(int(num_steps), callbacks, progress)

    def _train_loop(self, num_steps, callbacks, progress) -> list[dict]:
        from tf_rl_text import callbacks as cb

        target = int(num_steps) if self.run_dir else self.global_step + int(num_steps)
        self.target_step = target
        items = list(callbacks or [])
        if progress and not any(isinstance(c, cb.ProgressBar) for c in items):
            items.append(cb.ProgressBar(desc=self.algorithm, unit=self.unit, postfix=self._postfix))
        callbacks = cb.CallbackList(items)
        out = []
        logs = {}
        callbacks.on_train_begin(self)
        with self._signals_saved():
            from tf_rl_text.env import StopRequested

            while self.global_step < target:
                try:
                    logs = self.step()
                except StopRequested:  # the state is the last complete step's: saved below, then the signal's effect
                    break
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
        self._raise_for_signal(signum)
        return out

    # ------------------------------------------------------------------ evaluation and export
    def evaluate(self, prompts=None, references=None, greedy: bool = True, seed: int = 0) -> float:
        """Mean reward of (greedy by default) completions of ``prompts`` (default: all env prompts); a
        ConversationEnv's: the mean return of its episodes (``prompts``: tasks)."""
        if self.env is None:
            raise ValueError(f"this {self.algorithm} trainer has no env to score completions with: build it with "
                             "env=a TextGenerationEnv (its reward_fn scores them)")
        if prompts is None:
            prompts, references = self.env.prompts, self.env.references
        kwargs = {} if self.reward_fn is None else {"reward_fn": self.reward_fn}
        rollout = self.env.rollout(self.acting_agent, greedy=greedy, seed=seed, prompts=list(prompts),
                                   references=list(references) if references is not None else None, **kwargs)
        return float(np.mean(getattr(rollout, "episode_returns", rollout.rewards)))  # conversations: per episode

    def export(self, path: str | None = None, max_new_tokens: int | None = None, serving_only: bool = False,
               metadata: dict | None = None) -> str:
        """Write the policy as a SavedModel (see :func:`tf_rl_text.export.export_policy`);
        ``path`` defaults to ``run_dir/export``. ``serving_only``: without ``train_step``, the
        optimizer's slots and training-only extras (:attr:`training_only_extras`). ``metadata``:
        more entries for the export's description (``tf_rl_text.json``)."""
        from tf_rl_text.export import export_policy

        if path is None:
            if not self.run_dir:
                raise ValueError("export needs a path (this trainer has no run_dir to default to)")
            path = os.path.join(self.run_dir, "export")
        extra_metadata = dict(metadata or {})
        kwargs = self._export_kwargs()
        metadata = {"algorithm": self.algorithm, "config": dataclasses.asdict(self.config),
                    "updates": self.num_updates, "global_step": self.global_step}
        metadata.update(kwargs.pop("metadata", {}))
        metadata.update(extra_metadata)
        if serving_only:  # a target network and the like only serve training
            for key in ("extra_objects", "extra_functions"):
                kwargs[key] = {k: v for k, v in (kwargs.get(key) or {}).items() if k not in self.training_only_extras}
        from tf_rl_text import distribute

        with distribute.write_dir(path, self.strategy) as target:  # non-chief workers: a removed temp folder
            written = export_policy(self.acting_agent, target,
                                    max_new_tokens=max_new_tokens or self.source.max_new_tokens,
                                    optimizer=self.optimizer, metadata=metadata, serving_only=serving_only, **kwargs)
        return written if self.is_chief else path
