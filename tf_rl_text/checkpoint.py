"""A trainer's run state on disk: one ``tf.train.Checkpoint`` per step, resumed automatically.

:class:`Checkpointing` is the part of :class:`~tf_rl_text.trainers.base.Trainer` that owns the
run folder: the checkpoint of the whole run state (the trainer's ``_trackables()``: model,
optimizer, RNGs, step counter, heads, buffers), saved into ``run_dir/checkpoints`` with the last
``keep_checkpoints`` kept, restored when ``run_dir`` holds one (a damaged checkpoint is skipped for
the one before it), and saved once more when SIGINT/SIGTERM stops :meth:`Trainer.train`.

Run state that lives in Python (step counters, baselines, KL coefficient, reward-normaliser
statistics, the env's prompt order and cursor, numpy RNG states, the metrics history) is saved
inside the same checkpoint as JSON (:class:`JSONState`, a ``tf.train.experimental.PythonState``),
so one file set is always consistent: a kill at any instant leaves the previous complete
checkpoint as the latest one (TensorFlow writes the data, then swaps the ``checkpoint`` pointer
file atomically).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import warnings

import numpy as np

from tf_rl_text import env as env_module
from tf_rl_text._compat import tf
from tf_rl_text.validation import process_alive

__all__ = ["Checkpointing", "JSONState", "numpy_rng_state", "set_numpy_rng_state", "checkpoint_steps",
           "repair_checkpoint_index", "RunMismatchError", "RunFolderLockedError", "run_folder_lock"]


class RunFolderLockedError(RuntimeError):
    """Another live process holds the run folder's lock (``RUN_DIR/.lock``)."""


LOCK_FILE = ".lock"
_held_locks: dict = {}  # run folder -> how many times this process holds it (the lock is re-entrant)


@contextlib.contextmanager
def run_folder_lock(run_dir: str):
    """Hold ``run_dir/.lock`` (pid, host, start time) while a process trains into the folder: a second
    process on the same folder stops at once with :class:`RunFolderLockedError` naming the holder,
    instead of both overwriting each other's checkpoints and logs. Re-entrant within a process. A lock
    left by a killed process (its pid is gone on this host) is taken over with a warning."""
    import socket
    import time

    run_dir = os.path.abspath(run_dir)
    if _held_locks.get(run_dir):
        _held_locks[run_dir] += 1
        try:
            yield
        finally:
            _held_locks[run_dir] -= 1
        return
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK_FILE)
    host = socket.gethostname()
    me = {"pid": os.getpid(), "host": host, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path, encoding="utf-8") as f:
                    holder = json.load(f)
                pid = int(holder["pid"])
            except (OSError, ValueError, KeyError, TypeError):
                holder, pid = {}, None  # torn by a kill while it was written: stale
            alive = pid is not None and (holder.get("host") != host or process_alive(pid))
            if alive:
                where = "" if holder.get("host") == host else f" on host {holder.get('host')}"
                raise RunFolderLockedError(
                    f"{run_dir} is in use: process {pid}{where} has been training into it since {holder.get('since')} "
                    f"(lock file {path}). Wait for it to finish or stop it, or use another run folder; if no such "
                    "process runs any more, delete the lock file") from None
            warnings.warn(f"{path}: taking over the lock of process {pid}, which no longer runs (killed?)")
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        break
    else:
        raise RunFolderLockedError(f"{run_dir}: could not take the lock {path} (another process keeps taking it)")
    _held_locks[run_dir] = 1
    try:
        yield
    finally:
        _held_locks.pop(run_dir, None)
        try:
            with open(path, encoding="utf-8") as f:
                ours = json.load(f).get("pid") == os.getpid()
        except (OSError, ValueError):
            ours = False
        if ours:
            os.remove(path)


class RunMismatchError(ValueError):
    """A run folder's checkpoint belongs to another algorithm or to settings that must match (named)."""


def checkpoint_steps(directory) -> list:
    """Steps of the checkpoints whose files are all in ``directory`` (``ckpt-N.index`` and every
    ``ckpt-N.data-K-of-M`` shard), ascending: what is on disk, whatever the index file says."""
    if not directory or not os.path.isdir(directory):
        return []
    names = set(os.listdir(directory))
    steps = []
    for name in names:
        if not (name.startswith("ckpt-") and name.endswith(".index")):
            continue
        step = name[len("ckpt-"):-len(".index")]
        if not step.isdigit():
            continue
        shards = [n for n in names if n.startswith(f"ckpt-{step}.data-")]
        total = shards[0].rsplit("-of-", 1)[-1] if shards else None
        if total and total.isdigit() and len(shards) == int(total):
            steps.append(int(step))
    return sorted(steps)


def repair_checkpoint_index(directory, warn=True):
    """Make ``directory/checkpoint`` (TensorFlow's index of the checkpoints) name the checkpoints
    whose files are there, newest last. A missing, empty or damaged index, or one naming a
    checkpoint whose files are gone, is rewritten from the files (with a warning naming the folder):
    a run folder with intact checkpoints is never taken for a fresh run. Returns the steps found."""
    steps = checkpoint_steps(directory)
    if not steps:
        return steps
    index = os.path.join(directory, "checkpoint")
    why = None
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception as err:  # noqa: BLE001 - an unparsable index
        state, why = None, f"is damaged ({type(err).__name__})"
    if why is None and state is None:
        why = "is missing" if not os.path.exists(index) else "is empty or damaged"
    if why is None:
        named = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
        latest = os.path.basename(state.model_checkpoint_path)
        wanted = [f"ckpt-{n}" for n in steps]
        if latest != wanted[-1] or sorted(set(named)) != sorted(wanted):
            why = f"names {latest} (and {named}) but the files on disk are {wanted}"
    if why is None:
        return steps
    # with their files' times, and nothing preserved: a CheckpointManager given an index without timestamps keeps
    # every checkpoint it names forever (max_to_keep never deletes them)
    times = [os.path.getmtime(os.path.join(directory, f"ckpt-{n}.index")) for n in steps]
    lines = ([f'model_checkpoint_path: "ckpt-{steps[-1]}"'] + [f'all_model_checkpoint_paths: "ckpt-{n}"' for n in steps]
             + [f"all_model_checkpoint_timestamps: {t!r}" for t in times] + ["last_preserved_timestamp: 0.0"])
    tmp = index + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, index)
    if warn:
        warnings.warn(f"{index} {why}: rebuilt it from the checkpoint files there (steps {steps}); the run resumes "
                      f"from step {steps[-1]}")
    return steps


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


class Checkpointing:
    """Run folder, checkpoints, resume and the save on SIGINT/SIGTERM, for a trainer.

    The trainer provides ``_trackables()`` (name -> TF object; it includes ``self._python``, the
    :class:`JSONState` of :meth:`_get_python_state`), ``_step_var`` (the step counter),
    ``global_step``, ``num_updates``, ``history``, ``source``, ``strategy``, ``is_chief``, the
    hooks ``_python_state`` / ``_load_python_state``, and the loop's ``_stop_signal`` (set by a
    signal) and ``_last_saved_step`` (the step of the checkpoint this process last saved or
    restored); it calls :meth:`_init_checkpointing` in its ``__init__``, and :meth:`_auto_resume` runs
    once construction is complete (the trainer's metaclass calls it).
    """

    def _init_checkpointing(self, run_dir, checkpoint_every: int, keep_checkpoints: int, auto_resume: bool):
        if run_dir:
            from tf_rl_text.validation import check_writable_folder

            check_writable_folder(run_dir, "run folder")  # now, not at the first checkpoint hours later
        self.run_dir = os.path.abspath(run_dir) if run_dir else None
        self.checkpoint_every = int(checkpoint_every)
        self.keep_checkpoints = int(keep_checkpoints)
        self.auto_resume = bool(auto_resume)
        self.restored_from: str | None = None
        self._python = JSONState(self._get_python_state, self._set_python_state)
        self._manager = None
        self._manager_keys = None

    # ------------------------------------------------------------------ python state
    resume_must_match = ("baseline", "num_samples_per_prompt")
    """Config fields (where the config has them) that a resumed run must share with its checkpoint: they
    change what the saved state means. The algorithm must match too (see :meth:`_run_identity`)."""

    def _run_identity(self) -> dict:
        """What a checkpoint records of the run that wrote it, checked on restore."""
        return {"algorithm": self.algorithm,
                "settings": {k: getattr(self.config, k) for k in self.resume_must_match if hasattr(self.config, k)}}

    def _check_identity(self, path) -> None:
        """Refuse (RunMismatchError, naming both sides) a checkpoint of another algorithm or settings."""
        try:
            raw = tf.train.load_checkpoint(path).get_tensor("python_state/.ATTRIBUTES/py_state")
            recorded = json.loads(raw.decode() if isinstance(raw, bytes) else raw).get("run")
        except Exception:  # noqa: BLE001 - unreadable here: the restore itself reports a damaged checkpoint
            return
        if not recorded:  # written before checkpoints recorded their run
            return
        mine = self._run_identity()
        where = os.path.dirname(os.path.dirname(path)) if os.path.basename(os.path.dirname(path)) == "checkpoints" \
            else os.path.dirname(path)
        if recorded.get("algorithm") != mine["algorithm"]:
            raise RunMismatchError(
                f"{where} holds a {recorded.get('algorithm')} run, and this is a {mine['algorithm']} trainer "
                f"({type(self).__name__}); resume it with a {recorded.get('algorithm')} trainer, or use a new run folder")
        theirs = recorded.get("settings", {})
        diff = [f"{k}: {theirs[k]!r} in the checkpoint, {v!r} now" for k, v in mine["settings"].items()
                if k in theirs and theirs[k] != v]
        if diff:
            raise RunMismatchError(f"{where} holds a {mine['algorithm']} run with other settings ({'; '.join(diff)}); "
                                   "resume it with the same settings, or use a new run folder")

    def _get_python_state(self) -> dict:
        # "env": the experience source's draw state (an env's prompt order, a pair stream's...), under its old name
        state = {"num_updates": self.num_updates, "history": self.history, "env": self.source.state_dict(),
                 "run": self._run_identity()}
        state.update(self._python_state())
        return state

    def _set_python_state(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
        self.history = list(state["history"])
        if state.get("env") is not None:
            self.source.load_state_dict(state["env"])
        self._load_python_state(state)

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
        repair_checkpoint_index(directory)
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
            self._check_identity(path)  # another algorithm or settings: an error, not an older checkpoint
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
        """Called once construction is complete: resume when run_dir holds a checkpoint."""
        if self.run_dir and self.auto_resume and self.restored_from is None:
            self.restore()

    # ------------------------------------------------------------------ SIGINT / SIGTERM
    def _signals_saved(self):
        """While training: SIGINT/SIGTERM set a flag; the loop saves a checkpoint and stops after the step."""
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
                env_module.STOP.set()  # a reward call waiting under reward_timeout_s stops on it
                if env_module.IN_REWARD.is_set():  # the main thread is inside a reward function: leave it now
                    raise env_module.StopRequested(f"signal {signum} during the reward function")

            for s in (signal.SIGINT, signal.SIGTERM):
                old[s] = signal.getsignal(s)
                signal.signal(s, handler)
            env_module.STOP.clear()
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)
                env_module.STOP.clear()

        return guard()

    def _raise_for_signal(self, signum) -> None:
        """After the checkpoint a signal asked for: the signal's usual effect (KeyboardInterrupt for
        SIGINT, exit status 128 + signum otherwise); nothing when ``signum`` is None."""
        if signum == signal.SIGINT:
            raise KeyboardInterrupt(f"stopped by SIGINT at step {self.global_step}; checkpoint saved in {self.run_dir}")
        if signum is not None:
            raise SystemExit(128 + int(signum))
