"""The one list of algorithms: config name -> (trainer class, config class), read by the config loader,
the CLI and the run builder. Adding a trainer is its own module plus one line here (or, for a user's own
algorithm, one :func:`register` call).

    from tf_rl_text.trainers import registry
    registry.names()                       # ('reinforce', 'a2c', 'ppo', 'q_learning', 'grpo', 'online_dpo', 'dpo')
    registry.trainer_class("ppo")          # PPOTrainer
    registry.config_class("ppo")           # PPOConfig
    registry.register("my_pg", MyPGTrainer, MyPGConfig)   # configs (algorithm: my_pg) and the run builder know it

The classes are imported here, when the registry is (``tf_rl_text`` imports every trainer for its public names
anyway). The choice trainers (``ChoiceReinforceTrainer``, ``ChoiceQLearningTrainer``) are library-only: a config
run builds a token policy, and they train a classifier that picks among candidates (docs/choice.md).
"""
from __future__ import annotations

from tf_rl_text.trainers.actor_critic import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.trainers.dpo import DPOConfig, DPOTrainer, OnlineDPOConfig, OnlineDPOTrainer
from tf_rl_text.trainers.grpo import GRPOConfig, GRPOTrainer
from tf_rl_text.trainers.q_learning import QLearningConfig, QLearningTrainer
from tf_rl_text.trainers.reinforce import ReinforceConfig, ReinforceTrainer

ALGORITHMS = {
    # config name: (trainer class, config class)
    "reinforce": (ReinforceTrainer, ReinforceConfig),
    "a2c": (A2CTrainer, A2CConfig),
    "ppo": (PPOTrainer, PPOConfig),
    "q_learning": (QLearningTrainer, QLearningConfig),
    "grpo": (GRPOTrainer, GRPOConfig),
    "online_dpo": (OnlineDPOTrainer, OnlineDPOConfig),
    "dpo": (DPOTrainer, DPOConfig),  # learns from pairs (data.preferences): DPOTrainer.for_run asks for them
}


def names() -> tuple:
    """The algorithm names a config's ``algorithm:`` (and ``tf-rl-text config ALGO``) accepts."""
    return tuple(ALGORITHMS)


def register(name: str, trainer_class, config_class) -> None:
    """Add an algorithm: ``trainer_class`` (a :class:`~tf_rl_text.trainers.base.Trainer` subclass with
    ``score`` and ``optimize``) and its ``config_class`` (a :class:`~tf_rl_text.trainers.base.TrainerConfig`
    dataclass) under ``name``; configs with ``algorithm: NAME`` and the run builder then use it in this process."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an algorithm name must be a Python identifier (configs write it), got {name!r}")
    if name in ALGORITHMS and ALGORITHMS[name] != (trainer_class, config_class):
        raise ValueError(f"algorithm {name!r} is already registered as {ALGORITHMS[name][0].__name__}; pick another name")
    if not (isinstance(trainer_class, type) and issubclass(trainer_class, Trainer)):
        raise TypeError(f"trainer_class must be a Trainer subclass, got {trainer_class!r}")
    if not (isinstance(config_class, type) and issubclass(config_class, TrainerConfig)):
        raise TypeError(f"config_class must be a TrainerConfig subclass, got {config_class!r}")
    if trainer_class.config_class is not config_class:
        raise ValueError(f"{trainer_class.__name__}.config_class is {trainer_class.config_class.__name__}, not "
                         f"{config_class.__name__}; set config_class = {config_class.__name__} on the trainer")
    ALGORITHMS[name] = (trainer_class, config_class)


def _entry(name: str):
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {name!r}")
    return ALGORITHMS[name]


def trainer_class(name: str):
    return _entry(name)[0]


def config_class(name: str):
    return _entry(name)[1]


__all__ = ["ALGORITHMS", "names", "register", "trainer_class", "config_class"]
