"""The Gymnasium face of :class:`~tf_rl_text.env.TextGenerationEnv`, for Stable Baselines3, RLlib and
other libraries that speak ``gymnasium.Env``.

Token-level stepping, as the tf-agents face: the observation is the token ids and attention mask of
the prompt plus the completion so far (the env's layout: left padded for a causal LM), the action is
the next token id, and the reward (the env's ``reward_fn``) arrives on the last step.

* :class:`GymTextEnv` wraps an env with ``batch_size=1``: one episode at a time, as
  ``gymnasium.Env``. ``terminated`` is True when the episode ended with EOS, ``truncated`` when it
  reached ``max_new_tokens``; the completion and prompt are in ``info`` on the last step.
  ``reset(seed=...)`` reseeds the prompt draws from ``self.np_random``, so equal seeds give equal
  episodes (``gymnasium.utils.env_checker.check_env`` passes).
* :class:`GymTextVectorEnv` wraps an env with ``batch_size=B`` as a ``gymnasium.vector.VectorEnv``
  of ``num_envs=B`` rows run in lockstep. All rows end on the same step (as in the env): a row that
  emitted EOS earlier has its later actions ignored (padding) and reports ``terminated`` on the
  batch's last step with its reward. Autoreset mode ``NEXT_STEP``: the ``step`` after the last one
  starts a new batch (its actions are ignored, rewards 0).

Example::

    env = TextGenerationEnv(prompts, tokenizer, reward_fn, batch_size=1, max_new_tokens=8)
    gym_env = GymTextEnv(env)
    obs, info = gym_env.reset(seed=0)
    done = False
    while not done:
        obs, reward, terminated, truncated, info = gym_env.step(gym_env.action_space.sample())
        done = terminated or truncated
    print(info["completion"], reward)
"""
from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

__all__ = ["GymTextEnv", "GymTextVectorEnv"]


def _box(spec):
    return spaces.Box(low=np.broadcast_to(spec.minimum, spec.shape), high=np.broadcast_to(spec.maximum, spec.shape),
                      shape=spec.shape, dtype=spec.dtype)


def _spaces_of(env):
    """(observation space of one row, action space of one row) from the env's tf-agents-style specs."""
    observation = spaces.Dict({name: _box(spec) for name, spec in env.observation_spec().items()})
    action_spec = env.action_spec()
    return observation, spaces.Discrete(int(action_spec.maximum) - int(action_spec.minimum) + 1,
                                        start=int(action_spec.minimum))


def _check_env(env, want_one: bool, cls: str):
    from tf_rl_text.env import TextGenerationEnv

    if not isinstance(env, TextGenerationEnv):
        raise TypeError(f"{cls} wraps a TextGenerationEnv, got {type(env).__name__}")
    if want_one and env.batch_size != 1:
        raise ValueError(f"GymTextEnv runs one episode at a time: build the TextGenerationEnv with batch_size=1 "
                         f"(got batch_size={env.batch_size}), or use GymTextVectorEnv for batches")


def _reseed(env, rng):
    """Restart the env's prompt draws from a seed taken from ``rng`` (gymnasium's ``np_random``)."""
    env.reseed(int(rng.integers(2**31 - 1)))


def _ends(env, time_step):
    """(terminated, truncated) per row for a time step of ``env``."""
    last = np.asarray(time_step.is_last(), bool).reshape(-1)
    eos = env.ended_with_eos if last.any() else np.zeros_like(last)
    return last & eos, last & ~eos


class GymTextEnv(gymnasium.Env):
    """A ``TextGenerationEnv`` with ``batch_size=1`` as a ``gymnasium.Env`` (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, env):
        _check_env(env, want_one=True, cls="GymTextEnv")
        self.env = env
        self.observation_space, self.action_space = _spaces_of(env)

    @staticmethod
    def _row(observation):
        return {name: np.asarray(value)[0] for name, value in observation.items()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            _reseed(self.env, self.np_random)
        time_step = self.env.reset()
        return self._row(time_step.observation), {"prompt": self.env.batch_prompts[0]}

    def step(self, action):
        if not self.action_space.contains(np.int64(action)):
            raise ValueError(f"action must be a token id in [0, {self.action_space.n - 1}], got {action!r}")
        time_step = self.env.step(np.array([action], np.int32))
        terminated, truncated = _ends(self.env, time_step)
        info = {}
        if terminated[0] or truncated[0]:
            info = {"prompt": self.env.batch_prompts[0], "completion": self.env.completions[0]}
        return (self._row(time_step.observation), float(time_step.reward[0]), bool(terminated[0]),
                bool(truncated[0]), info)


class GymTextVectorEnv(gymnasium.vector.VectorEnv):
    """A ``TextGenerationEnv`` of ``batch_size=B`` as a ``gymnasium.vector.VectorEnv`` with ``num_envs=B``
    (rows in lockstep; see the module docstring)."""

    metadata = {"autoreset_mode": gymnasium.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, env):
        _check_env(env, want_one=False, cls="GymTextVectorEnv")
        self.env = env
        self.num_envs = env.batch_size
        self.single_observation_space, self.single_action_space = _spaces_of(env)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._needs_reset = False

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._np_random, self._np_random_seed = gymnasium.utils.seeding.np_random(
                seed if isinstance(seed, int) else int(np.asarray(seed).reshape(-1)[0]))
            _reseed(self.env, self._np_random)
        time_step = self.env.reset()
        self._needs_reset = False
        return dict(time_step.observation), {"prompt": np.array(self.env.batch_prompts, dtype=object)}

    def step(self, actions):
        actions = np.asarray(actions).reshape(-1)
        if actions.shape[0] != self.num_envs:
            raise ValueError(f"step expects one action per row ({self.num_envs}), got {actions.shape[0]}")
        if self._needs_reset:  # NEXT_STEP autoreset: this step starts the next batch
            obs, info = self.reset()
            zeros = np.zeros(self.num_envs, bool)
            return obs, np.zeros(self.num_envs, np.float32), zeros, zeros.copy(), info
        time_step = self.env.step(actions.astype(np.int32))
        terminated, truncated = _ends(self.env, time_step)
        info = {}
        if terminated.any() or truncated.any():
            self._needs_reset = True
            info = {"prompt": np.array(self.env.batch_prompts, dtype=object),
                    "completion": np.array(self.env.completions, dtype=object)}
        return (dict(time_step.observation), np.asarray(time_step.reward, np.float32), terminated, truncated, info)
