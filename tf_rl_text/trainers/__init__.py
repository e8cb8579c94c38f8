"""Trainers: one algorithm family per module (config dataclass + pure loss + trainer)."""
from tf_rl_text.trainers.reinforce import ReinforceConfig, ReinforceTrainer, reinforce_loss

__all__ = ["ReinforceConfig", "ReinforceTrainer", "reinforce_loss"]
