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
from tf_rl_text import ops
from tf_rl_text.cpu import available_cores, use_cores
from tf_rl_text.precision import with_precision
from tf_rl_text.agent import Generation, RLAgent
from tf_rl_text.defaults import default_model, default_tokenizer, load_corpus, load_prompts
from tf_rl_text.trainers.mle import fit_pairs, warm_start
from tf_rl_text.env import Rollout, TextGenerationEnv
from tf_rl_text.export import LoadedPolicy, export_policy, load
from tf_rl_text.trainers.reinforce import ReinforceConfig, ReinforceTrainer, reinforce_loss
from tf_rl_text.trainers.actor_critic import A2CConfig, A2CTrainer, PPOConfig, PPOTrainer
from tf_rl_text.trainers.grpo import GRPOConfig, GRPOTrainer
from tf_rl_text.trainers.dpo import DPOConfig, DPOTrainer
from tf_rl_text.heads import QHead, ValueHead
from tf_rl_text.trainers.q_learning import QLearningConfig, QLearningTrainer, ReplayBuffer
from tf_rl_text import data, metrics  # datasets (PromptDataset, task loaders) and evaluation metrics
from tf_rl_text.data import PromptDataset
from tf_rl_text.choice import ChoiceAgent, ChoiceEnv, LoadedChoicePolicy  # a sequence classifier as the policy
from tf_rl_text.trainers.choice import ChoiceQConfig, ChoiceQLearningTrainer, ChoiceReinforceTrainer
from tf_rl_text import rewards  # reward functions: lexicon, BLEU/ROUGE, classifier, similarity, composite
from tf_rl_text.rewards import ClassifierReward, CompositeReward, RewardNormalizer, SimilarityReward, train_reward_model

__version__ = "0.1.0"

__all__ = [
    "available_cores",
    "use_cores",
    "with_precision",
    "A2CConfig",
    "A2CTrainer",
    "PPOConfig",
    "PPOTrainer",
    "GRPOConfig",
    "GRPOTrainer",
    "DPOConfig",
    "DPOTrainer",
    "ValueHead",
    "Generation",
    "LoadedPolicy",
    "ReinforceConfig",
    "ReinforceTrainer",
    "RLAgent",
    "Rollout",
    "TextGenerationEnv",
    "default_model",
    "default_tokenizer",
    "export_policy",
    "load",
    "load_corpus",
    "load_prompts",
    "ops",
    "reinforce_loss",
    "warm_start",
    "fit_pairs",
    "data",
    "metrics",
    "PromptDataset",
    "rewards",
    "ClassifierReward",
    "CompositeReward",
    "RewardNormalizer",
    "SimilarityReward",
    "train_reward_model",
    "QHead",
    "QLearningConfig",
    "QLearningTrainer",
    "ReplayBuffer",
    "ChoiceAgent",
    "ChoiceEnv",
    "LoadedChoicePolicy",
    "ChoiceQConfig",
    "ChoiceQLearningTrainer",
    "ChoiceReinforceTrainer",
]
