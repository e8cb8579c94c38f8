"""The acting side of Q-learning: Q(s, .) of a completion's tokens, and the policy of a Q-function
(greedy, epsilon-greedy or Boltzmann) as an :class:`~tf_rl_text.agent.RLAgent` that generates."""
from __future__ import annotations

from tf_rl_text import ops
from tf_rl_text._compat import tf, tfp
from tf_rl_text.agent import RLAgent

EXPLORATIONS = ("epsilon_greedy", "boltzmann")


def completion_q_values(agent, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False):
    """Q(s_t, .) before every completion token: (B, T, V), the agent's processed raw logits
    (no temperature) at the positions that predict each completion token (causal LMs and
    encoder-decoders alike, through :meth:`RLAgent.completion_forward`)."""
    logits, _ = agent.completion_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, training=training)
    return logits  # (B, T, V)


class QPolicyAgent(RLAgent):
    """The policy of a Q-function: greedy argmax_a Q(s, a), epsilon-greedy or Boltzmann.

    Shares the wrapped agent's hooks (``process_logits``, ``encode_prompts``,
    ``decode_completions``) and, for ``q_values="logits"``, its model. ``epsilon`` is a
    tf.Variable, so changing it never retraces the compiled rollout.
    """

    def __init__(self, model, base_agent, exploration="epsilon_greedy", epsilon=0.1, temperature=1.0, seed=None):
        if exploration not in EXPLORATIONS:
            raise ValueError(f"exploration must be one of {EXPLORATIONS}, got {exploration!r}")
        super().__init__(model, base_agent.tokenizer, temperature=temperature, top_k=0,
                         seed=base_agent.seed if seed is None else seed,
                         generation_shards=base_agent.generation_shards, autograph=base_agent.autograph,
                         generation_cache=getattr(base_agent, "generation_cache", "auto"))
        self.base_agent = base_agent
        self.exploration = exploration
        self.epsilon = tf.Variable(float(epsilon), trainable=False, dtype=tf.float32, name="epsilon")
        if model is base_agent.model or getattr(model, "lm", None) is base_agent.model:
            self.lora = base_agent.lora  # the online network carries the agent's adapters (export merges them)

    @property
    def trainable_variables(self):
        """The model's trainable variables; with LoRA the adapters plus the Q head (``q_values="head"``),
        the base weights being frozen."""
        if self.lora is None:
            return self.model.trainable_variables
        return self.lora.trainable_variables + list(self.model.trainable_variables)

    def process_logits(self, logits):
        return self.base_agent.process_logits(logits)

    def encode_prompts(self, texts, min_length=None):
        return self.base_agent.encode_prompts(texts, min_length)

    def decode_completions(self, completion_ids, completion_mask=None):
        return self.base_agent.decode_completions(completion_ids, completion_mask)

    def policy_probs(self, q):
        """pi(. | s) of the acting policy for Q-values q (..., V)."""
        if self.exploration == "boltzmann":
            return ops.boltzmann_probs(q, self.temperature)
        return ops.epsilon_greedy_probs(q, self.epsilon)

    def action_distribution(self, logits, temperature=None, top_k=None):
        if self.exploration == "boltzmann":
            return super().action_distribution(logits, temperature, 0)
        return tfp.distributions.Categorical(probs=ops.epsilon_greedy_probs(logits, self.epsilon), dtype=tf.int32)


__all__ = ["EXPLORATIONS", "completion_q_values", "QPolicyAgent"]
