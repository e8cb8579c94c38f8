"""tf-agents' environment vocabulary (``PyEnvironment``, array specs, ``TimeStep``), with or without tf-agents.

tf-agents 0.19 (its last release, 2023-12) is installed by pip only on Python <= 3.11: it pins
``pygame==2.1.3``, which does not build on 3.12+ (docs/install.md). Where it is importable,
``TextGenerationEnv`` and ``ChoiceEnv`` subclass its ``PyEnvironment`` and this module hands out
tf-agents' own classes and functions, so the envs pass
``tf_agents.environments.utils.validate_py_environment`` and plug into tf-agents drivers.
Where it is not (Python 3.12+ without a hand install), the stand-ins below carry the same
names, methods and results: the template methods (``reset`` calls ``_reset``, ``step`` calls
``_step`` and auto-resets after ``LAST`` when asked), ``ArraySpec``/``BoundedArraySpec`` with
the same equality and ``check_array`` rules, a ``TimeStep`` named tuple with
``is_first``/``is_mid``/``is_last``, and ``restart``/``transition``/``termination`` returning the
same dtypes and shapes for the numpy (batched or not) case the envs use. They are adapted
from tf-agents (Apache-2.0) and trimmed to that case.

``BACKEND`` says which path this process took (``"tf-agents"`` or ``"standalone"``). Setting
``TF_RL_TEXT_NO_TF_AGENTS=1`` before the first import forces the stand-ins even where
tf-agents is installed (the test suite uses it to run one env on both paths and compare).
``STANDALONE`` holds the stand-ins whichever path is taken.
"""
from __future__ import annotations

import numbers
import os
import pprint
import types
from typing import NamedTuple

import numpy as np

__all__ = ["BACKEND", "PyEnvironment", "ArraySpec", "BoundedArraySpec", "StepType", "TimeStep", "restart",
           "transition", "termination", "time_step_spec", "validate_py_environment", "STANDALONE"]


# ---------------------------------------------------------------- stand-ins (adapted from tf-agents)
class _StepType:
    """The place of a time step in its episode: ``FIRST`` (0), ``MID`` (1), ``LAST`` (2), int32 scalars."""

    FIRST = np.asarray(0, dtype=np.int32)
    MID = np.asarray(1, dtype=np.int32)
    LAST = np.asarray(2, dtype=np.int32)


class _TimeStep(NamedTuple("TimeStep", [("step_type", object), ("reward", object), ("discount", object),
                                         ("observation", object)])):
    """What ``reset`` and ``step`` return: ``step_type``, ``reward``, ``discount``, ``observation``."""

    __slots__ = ()

    def is_first(self):
        return np.equal(self.step_type, _StepType.FIRST)

    def is_mid(self):
        return np.equal(self.step_type, _StepType.MID)

    def is_last(self):
        return np.equal(self.step_type, _StepType.LAST)

    def __repr__(self):
        return "TimeStep(\n" + pprint.pformat(dict(self._asdict()), sort_dicts=False) + ")"


class _ArraySpec:
    """The shape and dtype of a numpy array; equal to another spec with the same shape and dtype."""

    __hash__ = None

    def __init__(self, shape, dtype, name=None):
        self._shape = tuple(shape)
        self._dtype = np.dtype(dtype)
        self._name = name

    shape = property(lambda self: self._shape)
    dtype = property(lambda self: self._dtype)
    name = property(lambda self: self._name)

    def __repr__(self):
        return f"ArraySpec(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r})"

    def __eq__(self, other):
        return isinstance(other, _ArraySpec) and self.shape == other.shape and self.dtype == other.dtype

    def __ne__(self, other):
        return not self == other

    def check_array(self, array):
        """Whether ``array`` (a numpy array or a number; lists are not converted) has this shape and dtype."""
        if isinstance(array, np.ndarray):
            return self.shape == array.shape and self.dtype == array.dtype
        if isinstance(array, numbers.Number):
            return self.shape == () and self.dtype == np.dtype(type(array))
        return False


class _BoundedArraySpec(_ArraySpec):
    """An array spec with inclusive ``minimum`` and ``maximum`` (broadcast to ``shape``)."""

    def __init__(self, shape, dtype, minimum=None, maximum=None, name=None):
        super().__init__(shape, dtype, name)
        info = np.finfo(self._dtype) if np.issubdtype(self._dtype, np.floating) else np.iinfo(self._dtype)
        for label, bound in (("minimum", minimum), ("maximum", maximum)):
            try:
                np.broadcast_to(bound, shape=self._shape)
            except ValueError as err:
                raise ValueError(f"{label} is not compatible with shape. Message: {err!r}.") from None
        low = np.array(info.min if minimum is None else minimum)
        high = np.array(info.max if maximum is None else maximum)
        if np.any(low > high):
            raise ValueError(f"Spec bounds min has values greater than max: [{low},{high}]")
        if np.any(low < info.min) or np.any(high > info.max):
            raise ValueError(f"Spec bounds [{low},{high}] not within the range [{info.min}, {info.max}] of the given "
                             f"dtype ({self._dtype})")
        self._minimum, self._maximum = low.astype(self._dtype), high.astype(self._dtype)
        self._minimum.setflags(write=False)
        self._maximum.setflags(write=False)

    minimum = property(lambda self: self._minimum)
    maximum = property(lambda self: self._maximum)

    def __repr__(self):
        return (f"BoundedArraySpec(shape={self.shape}, dtype={self.dtype!r}, name={self.name!r}, "
                f"minimum={self._minimum}, maximum={self._maximum})")

    def __eq__(self, other):
        return (isinstance(other, _BoundedArraySpec) and super().__eq__(other)
                and bool((self.minimum == other.minimum).all()) and bool((self.maximum == other.maximum).all()))

    def check_array(self, array):
        return super().check_array(array) and bool(np.all(array >= self.minimum)) and bool(np.all(array <= self.maximum))


def _as_array(value, dtype=np.float32):
    return np.asarray(value, dtype=dtype)


def _restart(observation, batch_size=None, reward_spec=None):
    """The FIRST step: reward 0, discount 1 (``batch_size`` rows, or unbatched)."""
    if reward_spec is not None:
        raise NotImplementedError("the standalone restart() takes no reward_spec (tf_rl_text's envs need none)")
    if batch_size is None:
        return _TimeStep(_StepType.FIRST, _as_array(0.0), _as_array(1.0), observation)
    return _TimeStep(np.tile(_StepType.FIRST, batch_size), np.zeros(batch_size, np.float32),
                     np.ones(batch_size, np.float32), observation)


def _transition(observation, reward, discount=1.0, outer_dims=None):
    """A MID step with ``reward`` and ``discount`` (batch size from the reward's shape)."""
    if outer_dims is not None:
        return _TimeStep(np.tile(_StepType.MID, outer_dims), reward, _as_array(discount), observation)
    reward = _as_array(reward, np.asarray(reward).dtype if isinstance(reward, np.ndarray) else np.float32)
    step_type = np.tile(_StepType.MID, reward.shape) if reward.shape else _StepType.MID
    return _TimeStep(step_type, reward, _as_array(discount), observation)


def _termination(observation, reward, outer_dims=None):
    """The LAST step of an episode: ``reward``, discount 0."""
    if outer_dims is not None:
        return _TimeStep(np.tile(_StepType.LAST, outer_dims), reward, np.zeros(outer_dims, np.float32), observation)
    reward = _as_array(reward, np.asarray(reward).dtype if isinstance(reward, np.ndarray) else np.float32)
    if reward.shape:
        return _TimeStep(np.tile(_StepType.LAST, reward.shape[0]), reward, np.zeros(reward.shape[0], np.float32),
                         observation)
    return _TimeStep(_StepType.LAST, reward, _as_array(0.0), observation)


def _time_step_spec(observation_spec=None, reward_spec=None):
    """The specs of a time step's fields for an env with ``observation_spec``."""
    if observation_spec is None:
        return _TimeStep(step_type=(), reward=(), discount=(), observation=())
    return _TimeStep(step_type=_ArraySpec([], np.int32, name="step_type"),
                     reward=reward_spec or _ArraySpec([], np.float32, name="reward"),
                     discount=_BoundedArraySpec([], np.float32, minimum=0.0, maximum=1.0, name="discount"),
                     observation=observation_spec)


class _PyEnvironment:
    """tf-agents' ``PyEnvironment`` contract: subclasses write ``_reset``/``_step`` and the specs; the public
    ``reset``/``step`` keep the current time step and, with ``handle_auto_reset=True``, ``step`` after a
    ``LAST`` step (every row last) starts a new episode instead."""

    def __init__(self, handle_auto_reset: bool = False):
        self._handle_auto_reset = handle_auto_reset
        self._current_time_step = None

    @property
    def batched(self) -> bool:
        return False

    @property
    def batch_size(self):
        return None

    def should_reset(self, current_time_step) -> bool:
        return getattr(self, "_handle_auto_reset", False) and bool(np.all(current_time_step.is_last()))

    def observation_spec(self):
        raise NotImplementedError

    def action_spec(self):
        raise NotImplementedError

    def reward_spec(self):
        return _ArraySpec(shape=(), dtype=np.float32, name="reward")

    def discount_spec(self):
        return _BoundedArraySpec(shape=(), dtype=np.float32, minimum=0.0, maximum=1.0, name="discount")

    def time_step_spec(self):
        return _time_step_spec(self.observation_spec(), self.reward_spec())

    def current_time_step(self):
        return self._current_time_step

    def reset(self):
        self._current_time_step = self._reset()
        return self._current_time_step

    def step(self, action):
        if self._current_time_step is None or self.should_reset(self._current_time_step):
            return self.reset()
        self._current_time_step = self._step(action)
        return self._current_time_step

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def render(self, mode="rgb_array"):
        raise NotImplementedError("No rendering support.")

    def seed(self, seed):
        raise NotImplementedError("No seed support for this environment.")

    def get_info(self):
        raise NotImplementedError("No support of get_info for this environment.")

    def get_state(self):
        raise NotImplementedError("This environment has not implemented `get_state()`.")

    def set_state(self, state):
        raise NotImplementedError("This environment has not implemented `set_state()`.")


def _flatten(tree):
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in _flatten(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _flatten(item)]
    return [tree]


def _with_outer_dim(spec, n):
    if isinstance(spec, dict):
        return {k: _with_outer_dim(v, n) for k, v in spec.items()}
    if isinstance(spec, tuple) and hasattr(spec, "_fields"):
        return type(spec)(*(_with_outer_dim(v, n) for v in spec))
    if isinstance(spec, _BoundedArraySpec):
        return _BoundedArraySpec((n,) + spec.shape, spec.dtype, spec.minimum, spec.maximum, spec.name)
    return _ArraySpec((n,) + spec.shape, spec.dtype, spec.name)


def _validate_py_environment(environment, episodes: int = 5):
    """tf-agents' ``validate_py_environment`` for the standalone path: random actions from the action spec
    until ``episodes`` episodes ended; every time step must match the (batched) time-step spec, else
    ValueError."""
    spec = environment.time_step_spec()
    action_spec = environment.action_spec()
    if environment.batch_size is not None:
        spec = _with_outer_dim(spec, environment.batch_size)
    outer = () if environment.batch_size is None else (environment.batch_size,)
    rng = np.random.RandomState()
    episode_count, time_step = 0, environment.reset()
    while episode_count < episodes:
        arrays, specs = _flatten(time_step), _flatten(spec)
        if len(arrays) != len(specs) or not all(s.check_array(a) for a, s in zip(arrays, specs)):
            raise ValueError(f"Given `time_step`: {time_step!r} does not match expected `time_step_spec`: {spec!r}")
        low = np.broadcast_to(action_spec.minimum, action_spec.shape)
        high = np.broadcast_to(action_spec.maximum, action_spec.shape)
        action = rng.randint(low, high.astype(np.int64) + 1, size=outer + action_spec.shape).astype(action_spec.dtype)
        time_step = environment.step(action)
        episode_count += np.sum(time_step.is_last())


STANDALONE = types.SimpleNamespace(
    PyEnvironment=_PyEnvironment, ArraySpec=_ArraySpec, BoundedArraySpec=_BoundedArraySpec, StepType=_StepType,
    TimeStep=_TimeStep, restart=_restart, transition=_transition, termination=_termination,
    time_step_spec=_time_step_spec, validate_py_environment=_validate_py_environment)
"""The stand-ins, whichever path this process took."""


def _load_tf_agents():
    if os.environ.get("TF_RL_TEXT_NO_TF_AGENTS", "") not in ("", "0"):
        return None
    try:
        from tf_agents.environments import py_environment, utils
        from tf_agents.specs import array_spec
        from tf_agents.trajectories import time_step
    except ImportError:  # not installed (Python 3.12+): the stand-ins, documented in docs/install.md
        return None
    return types.SimpleNamespace(
        PyEnvironment=py_environment.PyEnvironment, ArraySpec=array_spec.ArraySpec,
        BoundedArraySpec=array_spec.BoundedArraySpec, StepType=time_step.StepType, TimeStep=time_step.TimeStep,
        restart=time_step.restart, transition=time_step.transition, termination=time_step.termination,
        time_step_spec=time_step.time_step_spec, validate_py_environment=utils.validate_py_environment)


_TF_AGENTS = _load_tf_agents()
BACKEND = "tf-agents" if _TF_AGENTS is not None else "standalone"
_chosen = _TF_AGENTS or STANDALONE
PyEnvironment = _chosen.PyEnvironment
ArraySpec = _chosen.ArraySpec
BoundedArraySpec = _chosen.BoundedArraySpec
StepType = _chosen.StepType
TimeStep = _chosen.TimeStep
restart = _chosen.restart
transition = _chosen.transition
termination = _chosen.termination
time_step_spec = _chosen.time_step_spec
validate_py_environment = _chosen.validate_py_environment
