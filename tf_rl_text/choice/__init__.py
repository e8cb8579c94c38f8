"""A sequence classifier as the policy: actions are choices, not tokens.

With a ``TF...ForSequenceClassification`` model (BERT, MiniLM, DistilBERT, RoBERTa...), the agent's
action in state s is one of the choices available in s, and

    pi(a | s) = softmax over the available choices of the classifier's logits / temperature.

Two kinds of state, one agent:

* **candidates** (``ChoiceEnv(prompts, tokenizer, reward_fn, candidates=...)``): each state is a
  prompt (a dialogue context, a document...) with its own list of candidate texts; the classifier
  scores every (prompt, candidate) pair (a ``num_labels=1`` model's logit, or the logit of
  ``score_label``), and the chosen candidate is the completion the reward function scores. With
  ``select=k`` an episode picks k candidates one after another without replacement (extractive
  summarization as sequential sentence selection, Narayan et al. 2018, "Ranking Sentences for
  Extractive Summarization with Reinforcement Learning"); the completion is the chosen candidates
  in their original order, and

      log pi(a_1..a_k | s) = sum_t [ z(a_t) - logsumexp_{a available at step t} z(a) ]

  (Plackett-Luce; sampling it = Gumbel top-k of the scores).
* **labels** (``ChoiceEnv(prompts, tokenizer, reward_fn, labels=[...])``): a one-step contextual
  bandit over the classifier's ``num_labels`` outputs; the completion is the chosen label's name.

``RLAgent(classifier)`` returns a :class:`ChoiceAgent` (the article's ``agent = RLAgent(model)``
over ``TFBertForSequenceClassification``). The trainers are in :mod:`tf_rl_text.trainers.choice`
(REINFORCE with the library's baselines, and Q-learning with the logits read as Q-values).

Example::

    from transformers import TFBertForSequenceClassification
    from tf_rl_text import RLAgent
    from tf_rl_text.choice import ChoiceEnv
    from tf_rl_text.trainers.choice import ChoiceReinforceTrainer

    model = TFBertForSequenceClassification.from_pretrained(folder, num_labels=2)
    env = ChoiceEnv(texts, tokenizer, reward_fn, labels=["negative", "positive"], references=gold)
    agent = RLAgent(model)                                  # a ChoiceAgent
    trainer = ChoiceReinforceTrainer(agent, env)
    for episode in range(100):
        trainer.step()
    trainer.export("saved_models/chooser"); tf_rl_text.load("saved_models/chooser").choose(["great film"])
"""
from tf_rl_text.choice.selection import (INPUT_NAMES, NEG, encode_choices, encode_pair, is_sequence_classifier,
                                         mask_choices, sample_selection, selection_log_probs, step_logits)
from tf_rl_text.choice.agent import ChoiceAgent, completions_of
from tf_rl_text.choice.env import ChoiceEnv, ChoiceRollout, check_choice_agent
from tf_rl_text.choice.export import CHOICE_FORMAT, LoadedChoicePolicy, export_choice_policy

__all__ = ["ChoiceAgent", "ChoiceEnv", "ChoiceRollout", "LoadedChoicePolicy", "encode_choices", "encode_pair",
           "export_choice_policy", "is_sequence_classifier", "mask_choices", "sample_selection", "selection_log_probs",
           "step_logits", "completions_of", "check_choice_agent", "INPUT_NAMES", "NEG", "CHOICE_FORMAT"]
