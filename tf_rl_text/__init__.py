"""tf_rl_text: fine-tune Hugging Face TF language models with reinforcement learning.

    env = TextGenerationEnv(prompts, tokenizer, reward_fn)
    agent = RLAgent(model, tokenizer)
    trainer = ReinforceTrainer(agent, env, ReinforceConfig())
    for episode in range(num_episodes):
        trainer.step()
    trainer.export("saved_models/policy")
    tf_rl_text.load("saved_models/policy").generate(["a prompt"])
"""
from tf_rl_text import _compat  # noqa: F401  (first: sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from tf_rl_text.agent import RLAgent
from tf_rl_text.env import TextGenerationEnv
from tf_rl_text.defaults import default_model, default_tokenizer
from tf_rl_text.trainers.base import Trainer
from tf_rl_text.trainers.reinforce import ReinforceConfig, ReinforceTrainer
from tf_rl_text.trainers.actor_critic import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer
from tf_rl_text.trainers.q_learning import QLearningConfig, QLearningTrainer
from tf_rl_text.trainers.grpo import GRPOConfig, GRPOTrainer
from tf_rl_text.trainers.dpo import DPOConfig, DPOTrainer, OnlineDPOConfig, OnlineDPOTrainer
from tf_rl_text.trainers.choice import ChoiceQConfig, ChoiceQLearningTrainer, ChoiceReinforceTrainer
from tf_rl_text.trainers.mle import warm_start
from tf_rl_text.export import export_policy, load
from tf_rl_text import data, metrics, ops, rewards  # noqa: F401  (submodules, reachable as tf_rl_text.rewards etc.)

__version__ = "0.1.0"

# The public API: the agent, the env, the Trainer base and each trainer with its config, export and load,
# the warm start and the embedded model. Everything else is imported from the module that defines it.
__all__ = [
    "RLAgent", "TextGenerationEnv", "default_model", "default_tokenizer",
    "Trainer",
    "ReinforceConfig", "ReinforceTrainer",
    "A2CConfig", "A2CTrainer", "PPOConfig", "PPOTrainer",
    "QLearningConfig", "QLearningTrainer",
    "GRPOConfig", "GRPOTrainer",
    "DPOConfig", "DPOTrainer", "OnlineDPOConfig", "OnlineDPOTrainer",
    "ChoiceReinforceTrainer", "ChoiceQLearningTrainer", "ChoiceQConfig",
    "warm_start", "export_policy", "load",
]

# Names that were top-level before the public API was cut to the list above (issue 26), and the module
# that defines each: ``tf_rl_text.NAME`` raises an AttributeError that names the import to use.
MOVED = {
    "available_cores": "tf_rl_text.cpu", "use_cores": "tf_rl_text.cpu",
    "with_precision": "tf_rl_text.precision",
    "Generation": "tf_rl_text.generation", "Rollout": "tf_rl_text.env",
    "load_corpus": "tf_rl_text.defaults", "load_prompts": "tf_rl_text.defaults",
    "fit_pairs": "tf_rl_text.trainers.mle",
    "LoadedPolicy": "tf_rl_text.export",
    "reinforce_loss": "tf_rl_text.trainers.reinforce",
    "QHead": "tf_rl_text.heads", "ValueHead": "tf_rl_text.heads",
    "ReplayBuffer": "tf_rl_text.replay",
    "PromptDataset": "tf_rl_text.data",
    "ChoiceAgent": "tf_rl_text.choice", "ChoiceEnv": "tf_rl_text.choice", "LoadedChoicePolicy": "tf_rl_text.choice",
    "ClassifierReward": "tf_rl_text.rewards", "CompositeReward": "tf_rl_text.rewards",
    "RewardNormalizer": "tf_rl_text.rewards", "SimilarityReward": "tf_rl_text.rewards",
    "train_reward_model": "tf_rl_text.rewards",
}


def __getattr__(name):
    import importlib
    import importlib.util

    if name in MOVED:
        raise AttributeError(f"tf_rl_text.{name} is not part of the top-level API (since 0.1.0): use "
                             f"`from {MOVED[name]} import {name}`")
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # a submodule not imported yet: tf_rl_text.fairness
    raise AttributeError(f"module 'tf_rl_text' has no attribute {name!r}")
