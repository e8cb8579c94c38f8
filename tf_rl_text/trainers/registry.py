"""The one list of algorithms: config name -> (trainer class, config class), read by the config loader,
the CLI and the run builder. Adding a trainer is its own module plus one line here.

    from tf_rl_text.trainers import registry
    registry.names()                       # ('reinforce', 'a2c', 'ppo', 'q_learning', 'grpo', 'online_dpo', 'dpo')
    registry.trainer_class("ppo")          # PPOTrainer
    registry.config_class("ppo")           # PPOConfig

Classes are looked up by module and name (``importlib``) when asked for. That saves no import time today:
``tf_rl_text`` and ``tf_rl_text.trainers`` import every trainer for their public names, so the trainer modules
are loaded before this table is read; the table's point is that adding a trainer is one line.
"""
from __future__ import annotations

import importlib

ALGORITHMS = {
    # config name: (module, trainer class, config class)
    "reinforce": ("tf_rl_text.trainers.reinforce", "ReinforceTrainer", "ReinforceConfig"),
    "a2c": ("tf_rl_text.trainers.actor_critic", "A2CTrainer", "A2CConfig"),
    "ppo": ("tf_rl_text.trainers.actor_critic", "PPOTrainer", "PPOConfig"),
    "q_learning": ("tf_rl_text.trainers.q_learning", "QLearningTrainer", "QLearningConfig"),
    "grpo": ("tf_rl_text.trainers.grpo", "GRPOTrainer", "GRPOConfig"),
    "online_dpo": ("tf_rl_text.trainers.dpo", "OnlineDPOTrainer", "OnlineDPOConfig"),
    "dpo": ("tf_rl_text.trainers.dpo", "DPOTrainer", "DPOConfig"),  # learns from pairs (data.preferences)
}


def names() -> tuple:
    """The algorithm names a config's ``algorithm:`` (and ``tf-rl-text config ALGO``) accepts."""
    return tuple(ALGORITHMS)


def _entry(name: str):
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {name!r}")
    return ALGORITHMS[name]


def trainer_class(name: str):
    module, trainer, _ = _entry(name)
    return getattr(importlib.import_module(module), trainer)


def config_class(name: str):
    module, _, config = _entry(name)
    return getattr(importlib.import_module(module), config)


__all__ = ["ALGORITHMS", "names", "trainer_class", "config_class"]
