"""Reward functions: plain callables ``reward_fn(completions, prompts, references) -> list[float]``.

Any Python callable with that signature works as a reward; this package holds the ones the
library ships. Each returns one finite float per completion.
"""
from tf_rl_text.rewards.lexicon import LexiconReward, TokenFrequencyReward, default_sentiment_reward
from tf_rl_text.rewards.text_metrics import BleuReward, RougeReward, bleu_reward, rouge_l_reward
from tf_rl_text.rewards.classifier import ClassifierReward
from tf_rl_text.rewards.composite import CompositeReward, RewardNormalizer
from tf_rl_text.rewards.similarity import SimilarityReward, minilm_available, minilm_path
from tf_rl_text.rewards.training import RewardModelResult, load_labelled_texts, train_reward_model
from tf_rl_text.rewards.pairwise import PairwiseScorer, export_reward_model, train_pairwise_reward_model

__all__ = [
    "PairwiseScorer",
    "export_reward_model",
    "train_pairwise_reward_model",
    "LexiconReward", "TokenFrequencyReward", "default_sentiment_reward",
    "BleuReward", "RougeReward", "bleu_reward", "rouge_l_reward",
    "ClassifierReward", "CompositeReward", "RewardNormalizer",
    "SimilarityReward", "minilm_available", "minilm_path",
    "RewardModelResult", "load_labelled_texts", "train_reward_model",
]
