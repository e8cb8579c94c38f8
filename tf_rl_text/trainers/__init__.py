"""Trainers: one algorithm family per module (config dataclass + pure loss + trainer)."""
from tf_rl_text.trainers.base import Trainer, TrainerConfig
from tf_rl_text.trainers.reinforce import ReinforceConfig, ReinforceTrainer, reinforce_loss
from tf_rl_text.ops import a2c_loss, ppo_loss
from tf_rl_text.trainers.actor_critic import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer
from tf_rl_text.trainers.grpo import GRPOConfig, GRPOTrainer
from tf_rl_text.trainers.dpo import DPOConfig, DPOTrainer
from tf_rl_text.trainers.q_learning import QLearningConfig, QLearningTrainer
from tf_rl_text.replay import ReplayBuffer

__all__ = [
    "Trainer", "TrainerConfig",
    "ReinforceConfig", "ReinforceTrainer", "reinforce_loss",
    "A2CConfig", "A2CTrainer", "PPOConfig", "PPOTrainer", "a2c_loss", "ppo_loss",
    "GRPOConfig", "GRPOTrainer",
    "DPOConfig", "DPOTrainer",
    "QLearningConfig", "QLearningTrainer", "ReplayBuffer",
]
