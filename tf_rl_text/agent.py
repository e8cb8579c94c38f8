"""RLAgent: a policy over a Hugging Face TF language model.

The agent is the article's ``RLAgent(model, tokenizer)``: it acts (samples the next token from
``pi(a | s)``, the model's softmax over the vocabulary, through a
``tfp.distributions.Categorical``), generates whole completions in one compiled graph with a
key/value cache, and scores completions (per-token log-probabilities) for the trainers.

Extend it by subclassing and overriding the documented hooks:

* :meth:`RLAgent.process_logits` - change the logits before sampling *and* scoring
  (ban tokens, add a bias); must accept any leading shape ``(..., vocab)``.
* :meth:`RLAgent.action_distribution` - the distribution actions are drawn from.
* :meth:`RLAgent.encode_prompts` / :meth:`RLAgent.decode_completions` - text <-> ids.

Where its parts live: the decode loop and the checks of its arguments in :mod:`tf_rl_text.generation`
(``RLAgent`` is a :class:`~tf_rl_text.generation.GenerationMixin`), padding and encoding in
:mod:`tf_rl_text.tokens`, the Hugging Face forward and model-family checks in :mod:`tf_rl_text.models`.
This module keeps the agent's state, hooks, scoring, acting, LoRA and value-head methods.

Example::

    from transformers import GPT2Config, TFGPT2LMHeadModel
    from tf_rl_text import RLAgent, default_tokenizer
    tokenizer = default_tokenizer()
    model = TFGPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2))
    agent = RLAgent(model, tokenizer)
    print(agent.generate_text(["the movie was"], max_new_tokens=8))           # greedy
    print(agent.generate_text(["the movie was"], max_new_tokens=8, seed=0))   # sampled (a sampling argument)

Greedy or sampled: one rule for every generation call, :func:`~tf_rl_text.generation.resolve_greedy`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tf_rl_text import ops
from tf_rl_text._compat import tf, tfp
from tf_rl_text.generation import (GenerationMixin, check_controls, pick_generation_cache,
                                   resolve_generation_shards)
from tf_rl_text.adapters import adapter_for, policy_model
from tf_rl_text.lora import AdaptersOff, adapters_off
from tf_rl_text.models import PLAIN_GRAPH_MODEL_TYPES, as_float32, check_model_family
from tf_rl_text.policy import PolicyBase
from tf_rl_text.tokens import ensure_pad_token, ids_to_texts, pad_token_ids, resolve_tokenizer, texts_to_ids


class RLAgent(PolicyBase, GenerationMixin):
    """A policy pi(a | s) over a Hugging Face TF language model.

    ``RLAgent(model)`` over a ``TF...ForSequenceClassification`` model returns a
    :class:`~tf_rl_text.choice.ChoiceAgent`, whose actions are choices among candidates or labels (a
    sibling on :class:`~tf_rl_text.policy.PolicyBase`, not a subclass).

    Args:
      model: a causal LM (``TFAutoModelForCausalLM``; tested: GPT-2, GPT-J, OPT) or an
        encoder-decoder (``TFAutoModelForSeq2SeqLM``; tested: T5, BART, Marian). For
        encoder-decoders the prompt is the source: it is encoded once per rollout, and completions
        are decoder outputs. ``TFMistralForCausalLM`` (the Llama architecture) decodes with the
        agent's own key/value cache (see ``generation_cache``).
      tokenizer: its tokenizer. If it has no pad token, the EOS token is used for padding. None (default):
        loaded from the model's own folder (``from_pretrained`` / ``save_pretrained`` path).
      temperature: softmax temperature for sampling and for the log-probabilities trainers use.
      top_k: sample only among the k most likely tokens (0 = the whole vocabulary). Applied to
        sampling only; log-probabilities are of the temperature-scaled full softmax.
      top_p: sample only from the nucleus: the most likely tokens whose probability reaches
        ``top_p`` (Holtzman et al. 2020; 1.0 = off). Sampling only, like ``top_k``.
      repetition_penalty: CTRL's penalty on tokens already in the prompt or completion (Keskar et al.
        2019): their positive logits are divided by it, negative ones multiplied (1.0 = off). Applies
        to sampling and greedy decoding, not to the log-probabilities trainers score.
      min_new_tokens: EOS and the stop tokens are masked out until this many tokens are generated.
      stop_token_ids: token ids that end a completion like EOS (kept in it, mask 1; the rest is padding).
      seed: seed of the agent's random generator (sampling is reproducible for a fixed seed).
      generation_shards: split each generated batch into this many row groups, decoded as
        independent branches of one graph (with their own seeds), so each CPU core can run one
        with no cross-thread hand-offs: pair it with :func:`tf_rl_text.cpu.use_cores` (intra-op 1,
        inter-op = cores). ``None`` (default): the inter-op thread count when intra-op threads
        were set to 1, else 1. Greedy output does not depend on it; sampled output does.
      autograph: trace the compiled functions that run the model (rollouts, updates, export) with
        AutoGraph. ``None`` (default): off for model families known to be plain graph code
        (``PLAIN_GRAPH_MODEL_TYPES``: GPT-2, T5, Mistral), which traces several times faster; on for every
        other model, whose HF code may branch in Python on tensor shapes (BART, OPT, ...).
      generation_cache: how the compiled loop reuses past tokens. ``"model"``: the model's own
        ``past_key_values`` (GPT-2, GPT-J, OPT, T5, BART, Marian); ``"llama"``: the agent's own
        key/value cache for Llama-architecture decoders (``TFMistralForCausalLM``, whose TF code
        needs a static cache length; see :mod:`tf_rl_text.llama`); ``"none"``: no cache, the whole
        sequence is recomputed for every token (any causal LM, e.g. XGLM; quadratic cost).
        ``"auto"`` (default): ``"llama"`` for Mistral, ``"none"`` for other models known to need a
        static cache length (XGLM), else ``"model"``.
    """

    def __new__(cls, model=None, *args, **kwargs):
        """``RLAgent(classifier)`` is a :class:`~tf_rl_text.choice.ChoiceAgent` (actions = choices)."""
        if cls is RLAgent and model is not None:
            from tf_rl_text.choice.agent import ChoiceAgent
            from tf_rl_text.choice.selection import is_sequence_classifier

            if is_sequence_classifier(model):  # built whole here: Python calls no RLAgent.__init__ on it
                return ChoiceAgent(model, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, model, tokenizer=None, temperature: float = 1.0, top_k: int = 0, seed: int | None = None,
                 top_p: float = 1.0, repetition_penalty: float = 1.0, min_new_tokens: int = 0,
                 stop_token_ids: Sequence[int] = (),
                 generation_shards: int | None = None, autograph: bool | None = None,
                 generation_cache: str = "auto"):
        if temperature is None or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        if top_k is None or int(top_k) != top_k or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 = no top-k filtering), got {top_k!r}")
        model, tokenizer = policy_model(model, tokenizer)  # a KerasHub CausalLM -> KerasHubLM (adapters.py)
        config = getattr(model, "config", None)
        if config is None or not hasattr(model, "call"):
            raise TypeError(
                f"model must be a Hugging Face TF model (e.g. TFAutoModelForCausalLM), got {type(model).__name__}"
            )
        check_model_family(model)
        tokenizer = resolve_tokenizer(model, tokenizer)
        self.family = adapter_for(config)  # the model family's adapter (tf_rl_text/adapters.py)
        self.is_encoder_decoder = self.family.seq2seq
        self.padding_side = self.family.padding_side  # causal LMs: left; encoders: right (adapters.py says why)
        self.model = model
        self.tokenizer = tokenizer
        ensure_pad_token(tokenizer)
        self.eos_token_id = int(tokenizer.eos_token_id if tokenizer.eos_token_id is not None else -1)
        self.pad_token_id = int(tokenizer.pad_token_id)
        start = getattr(config, "decoder_start_token_id", None)
        self.decoder_start_token_id = int(start if start is not None else self.pad_token_id)
        self.vocab_size = int(config.vocab_size)
        try:
            tokenizer_size = len(tokenizer)
        except TypeError:  # not a Hugging Face tokenizer: nothing to compare
            tokenizer_size = None
        if tokenizer_size is not None and tokenizer_size > self.vocab_size:
            raise ValueError(
                f"the tokenizer has {tokenizer_size} tokens but the model's vocabulary has {self.vocab_size}: token ids "
                f">= {self.vocab_size} have no embedding. Use the tokenizer the model was trained with, or call "
                f"model.resize_token_embeddings({tokenizer_size}) first"
            )
        if top_k > self.vocab_size:
            raise ValueError(f"top_k={top_k} exceeds the model's vocabulary of {self.vocab_size} tokens; use "
                             f"0 < top_k <= {self.vocab_size}, or 0 for no top-k filtering")
        self.context_length = int(
            getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or 1024
        )
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p, self.repetition_penalty, self.min_new_tokens, self.stop_token_ids = check_controls(
            top_p, repetition_penalty, min_new_tokens, stop_token_ids)
        if autograph is None:
            autograph = getattr(config, "model_type", None) not in PLAIN_GRAPH_MODEL_TYPES
        self.autograph = bool(autograph)
        self.generation_shards = resolve_generation_shards(generation_shards)
        self.generation_cache = pick_generation_cache(model, generation_cache, self.family)
        self._init_rng(seed)
        if not model.built:
            model(model.dummy_inputs, training=False)
        self.reset_compiled()

    # ------------------------------------------------------------------ hooks
    def process_logits(self, logits):
        """Hook: transform raw logits ``(..., vocab)`` before sampling and scoring. Identity here."""
        return logits

    def action_distribution(self, logits, temperature=None, top_k=None):
        """Hook: the distribution pi(. | s) that actions are sampled from.

        logits: (B, vocab) processed logits. Returns a ``tfp.distributions.Categorical`` over
        ``logits / temperature``, restricted to the ``top_k`` most likely tokens when top_k > 0.
        """
        temperature = self.temperature if temperature is None else temperature
        top_k = self.top_k if top_k is None else top_k
        logits = logits / tf.cast(temperature, logits.dtype)
        if top_k and top_k < self.vocab_size:
            kth = tf.math.top_k(logits, k=top_k).values[:, -1:]  # (B, 1)
            logits = tf.where(logits < kth, tf.cast(-1e9, logits.dtype), logits)
        return tfp.distributions.Categorical(logits=logits, dtype=tf.int32)

    def encode_prompts(self, texts: Sequence[str], min_length: int | None = None):
        """Hook: tokenize prompts (sources) padded to the longest (at least ``min_length``).

        Left padded for causal LMs, right padded for encoder-decoders (``self.padding_side``).
        Returns (input_ids, attention_mask), int32 numpy arrays of shape (B, P).
        """
        return pad_token_ids(texts_to_ids(self.tokenizer, texts), self.pad_token_id, self.padding_side, min_length)

    def decode_completions(self, completion_ids, completion_mask=None):
        """Hook: completion ids (B, T) -> texts, dropping padding and special tokens."""
        return ids_to_texts(self.tokenizer, completion_ids, completion_mask)

    # ------------------------------------------------------------------ scoring
    def causal_lm(self, input_ids, attention_mask, position_ids=None, past_key_values=None, use_cache=False,
                  output_hidden_states=False, training=False, model=None, logits_at=None):
        """One causal-LM forward: ``(logits, past_key_values, hidden_states)`` (raw logits).

        Every causal forward of the agent goes through here. ``logits_at`` (a slice of sequence
        positions) keeps only those positions' logits (the LM head runs only there). The forward itself
        is the family adapter's (:func:`tf_rl_text.models.causal_lm_forward` for Hugging Face models, GPT-2's
        tied LM head as one 2-D matmul; :meth:`tf_rl_text.kerashub.KerasHubLM.forward` for KerasHub models).
        """
        model = self.model if model is None else model
        if isinstance(model, AdaptersOff):  # the LoRA reference: the same model, adapters left out of the graph
            with adapters_off():
                return self.causal_lm(input_ids, attention_mask, position_ids, past_key_values, use_cache,
                                      output_hidden_states, training, model.model, logits_at)
        return self.family.forward(model, input_ids, attention_mask, position_ids, past_key_values, use_cache,
                                   output_hidden_states, training, logits_at)

    def token_logits(self, input_ids, attention_mask, training=False):
        """Processed logits for every position: (B, L, vocab); position t predicts token t+1. Causal LMs."""
        return self.process_logits(self.causal_lm(input_ids, attention_mask, training=training).logits)

    def completion_forward(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False,
                           model=None, output_hidden_states=False):
        """One forward pass over prompt + completion, read at the completion tokens.

        Returns (logits, hidden): the processed logits that scored each completion token
        (B, T, vocab), not temperature-scaled, and the last hidden states of the states that chose
        them (B, T, d) if ``output_hidden_states`` else None. ``model`` defaults to the agent's
        (pass the frozen reference to score under it). Causal LMs run on the concatenation;
        encoder-decoders encode the prompt and teacher-force the completion in the decoder.
        """
        model = self.model if model is None else model
        if isinstance(model, AdaptersOff):  # the LoRA reference: the same model, adapters left out of the graph
            with adapters_off():
                return self.completion_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, training,
                                               model.model, output_hidden_states)
        return self.family.completion_forward(self, model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                               training, output_hidden_states)

    def completion_logits(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False, model=None):
        """Temperature-scaled logits that scored each completion token: (B, T, vocab)."""
        logits, _ = self.completion_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, training, model)
        return logits / tf.cast(self.temperature, logits.dtype)

    def log_probs(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False, model=None):
        """log pi(a_t | s_t) of each completion token: (B, T) float32, 0 where the mask is 0.

        ``model``: score under another model of the same architecture (the frozen reference).
        """
        logits = self.completion_logits(prompt_ids, prompt_mask, completion_ids, completion_mask, training, model)
        return ops.gather_log_probs(logits, completion_ids) * tf.cast(completion_mask, logits.dtype)

    def sequence_log_probs(self, input_ids, attention_mask):
        """log-probability of tokens 1..L-1 of whole sequences given their prefix: (B, L-1). Causal LMs only."""
        if self.family.seq2seq:
            raise ValueError("sequence_log_probs is for causal LMs; use log_probs(source..., target...) for encoder-decoders")
        logits = self.token_logits(input_ids, attention_mask)[:, :-1]
        logits = logits / tf.cast(self.temperature, logits.dtype)
        return ops.gather_log_probs(logits, input_ids[:, 1:]) * tf.cast(attention_mask[:, 1:], logits.dtype)

    # ------------------------------------------------------------------ acting
    def _act_logits(self, input_ids, attention_mask):
        return self.process_logits(self.causal_lm(input_ids, attention_mask, logits_at=slice(-1, None)).logits[:, -1])

    def _act_logits_seq2seq(self, input_ids, attention_mask, decoder_ids, decoder_mask):
        batch = tf.shape(decoder_ids)[0]
        step = tf.reduce_max(tf.reduce_sum(decoder_mask, axis=1))  # tokens generated so far (live rows)
        start = tf.fill([batch, 1], self.decoder_start_token_id)
        decoder_ids = tf.concat([start, decoder_ids], axis=1)[:, : step + 1]
        decoder_mask = tf.concat([tf.ones([batch, 1], tf.int32), decoder_mask], axis=1)[:, : step + 1]
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_ids,
                         decoder_attention_mask=decoder_mask, training=False)
        return self.process_logits(as_float32(out.logits[:, -1]))

    def act(self, time_step, greedy: bool = False):
        """One action (next token id) per row for a ``TextGenerationEnv`` time step: (B,) int32.

        ``time_step`` may also be an observation dict: a batched one (``GymTextVectorEnv``) gives (B,)
        actions, an unbatched one (``GymTextEnv``, arrays of shape (L,)) one ``int``.
        """
        observation = time_step if isinstance(time_step, dict) else time_step.observation
        if "choice_mask" in observation:
            from tf_rl_text.choice.env import check_choice_agent

            check_choice_agent(self, "a ChoiceEnv time step")
        single = np.ndim(next(iter(observation.values()))) == 1  # one Gymnasium observation, no batch axis
        obs = {k: tf.constant(np.asarray(v)[None] if single else v, tf.int32) for k, v in observation.items()}
        logits = self.family.act_logits(self, obs)
        if greedy:
            actions = tf.argmax(logits, axis=-1, output_type=tf.int32).numpy()
        else:
            actions = self.action_distribution(logits).sample(seed=self._next_seed()).numpy()
        return int(actions[0]) if single else actions

    # ------------------------------------------------------------------ utilities
    def reset_compiled(self):
        """Forget the compiled generation and acting functions (they retrace on next use)."""
        self._generate_fns = {}
        self._act_fn = self.compile_fn(self._act_logits, reduce_retracing=True)
        self._act_fn_seq2seq = self.compile_fn(self._act_logits_seq2seq, reduce_retracing=True)

    # ================================================================== value head (actor-critic)
    # V(s) on the model's last hidden states, for A2C / PPO (tf_rl_text/heads.py,
    # tf_rl_text/trainers/actor_critic.py). Nothing else in the agent depends on it.

    def attach_value_head(self, value_head=None):
        """Carry ``value_head`` (a fresh :class:`~tf_rl_text.heads.ValueHead` by default), built; returns it."""
        from tf_rl_text.heads import ValueHead

        head = ValueHead() if value_head is None else value_head
        if not head.built:
            head.build(tf.TensorShape([None, None, int(self.model.config.hidden_size)]))
        self.value_head = head
        return head

    def save_pretrained(self, path: str):
        """Save model and tokenizer (``from_pretrained`` loads them; a KerasHub policy writes a preset folder
        that ``keras_hub.models.CausalLM.from_preset`` loads), and the value head when one is attached."""
        self.family.save_pretrained(self, path)
        if self.value_head is not None:  # actor-critic: the critic travels with the model
            self.value_head.save(path)

    def load_value_head(self, path: str):
        """Attach the value head that :meth:`save_pretrained` wrote into ``path``; returns it."""
        from tf_rl_text.heads import ValueHead

        return self.attach_value_head(ValueHead.load(path))

    def logits_and_values(self, input_ids, attention_mask, training=False):
        """One forward pass: processed logits (B, L, vocab) and values V(s) (B, L) at every position."""
        if self.value_head is None:
            raise ValueError("this agent has no value head; call agent.attach_value_head() (or load_value_head(path))")
        out = self.causal_lm(input_ids, attention_mask, output_hidden_states=True, training=training)
        return self.process_logits(out.logits), as_float32(self.value_head(out.hidden_states[-1], training=training))

    def values(self, input_ids, attention_mask, training=False):
        """V(s_t) for every prefix of the (left-padded) sequences: (B, L); position t = state up to token t."""
        return self.logits_and_values(input_ids, attention_mask, training)[1]

    def completion_logits_and_values(self, prompt_ids, prompt_mask, completion_ids, completion_mask, training=False):
        """:meth:`completion_logits` (B, T, vocab) and V(s_t) (B, T) of the states that chose each token."""
        if self.value_head is None:
            raise ValueError("this agent has no value head; call agent.attach_value_head() (or load_value_head(path))")
        logits, hidden = self.completion_forward(prompt_ids, prompt_mask, completion_ids, completion_mask, training,
                                                 output_hidden_states=True)
        values = as_float32(self.value_head(hidden, training=training))  # (B, T)
        return logits / tf.cast(self.temperature, logits.dtype), values
    # ================================================================== end value head


__all__ = ["RLAgent"]
