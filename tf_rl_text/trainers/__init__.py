"""Trainers: one algorithm family per module (config dataclass + pure loss + trainer); ``registry.py`` lists them."""
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.trainers.reinforce import ReinforceConfig, ReinforceTrainer
from tf_rl_text.trainers.actor_critic import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer
from tf_rl_text.trainers.grpo import GRPOConfig, GRPOTrainer
from tf_rl_text.trainers.dpo import DPOConfig, DPOTrainer, OnlineDPOConfig, OnlineDPOTrainer
from tf_rl_text.trainers.q_learning import QLearningConfig, QLearningTrainer

__all__ = [
    "Trainer", "TrainerConfig",
    "ReinforceConfig", "ReinforceTrainer",
    "A2CConfig", "A2CTrainer", "PPOConfig", "PPOTrainer",
    "GRPOConfig", "GRPOTrainer",
    "DPOConfig", "DPOTrainer", "OnlineDPOConfig", "OnlineDPOTrainer",
    "QLearningConfig", "QLearningTrainer",
]
