"""Model-family adapters: what a causal LM and an encoder-decoder do differently, in one place each.

An :class:`~tf_rl_text.agent.RLAgent` holds the adapter of its model's family (``agent.family``,
chosen once, where the model is first classified) and hands it the family-specific work:

* the padding side of prompts (left for a causal LM, whose next token is always at the end; right
  for an encoder, whose learned absolute positions, as in BART, start at 0);
* the context a prompt and its completion need (:func:`tf_rl_text.families.tokens_needed`);
* the completion forward pass (teacher forcing the completion after the prompt, or in the decoder);
* the decode loop's prefill (read the prompt once) and advance (one token through the cache);
* the observation layout of a :class:`~tf_rl_text.env.TextGenerationEnv` (its spec, what a time step
  shows, how a token joins it) and the logits of one action for an env time step.

Adapters run the agent's hooks (``causal_lm``, ``process_logits``) and read its state, so a subclass
of ``RLAgent`` that overrides a hook is honoured. They hold no state of their own.
"""
from __future__ import annotations

import numpy as np

from tf_rl_text import specs
from tf_rl_text._compat import tf
from tf_rl_text.families import family_of, tokens_needed
from tf_rl_text.models import as_float32, causal_lm_forward
from tf_rl_text.savedmodel import COMPLETION_SPECS, PROMPT_SPECS
from tf_rl_text.tokens import position_ids_from_mask


class CausalLM:
    """A decoder-only LM: prompt and completion share one left-padded sequence."""

    seq2seq = False
    padding_side = "left"

    def tokens_needed(self, prompt_tokens: int, new_tokens: int) -> int:
        return tokens_needed(False, prompt_tokens, new_tokens)

    def prompt_room(self, context_length: int, new_tokens: int) -> int:
        """The longest prompt that leaves room for ``new_tokens`` in the context."""
        return context_length - new_tokens

    def forward(self, model, input_ids, attention_mask, position_ids=None, past_key_values=None, use_cache=False,
                output_hidden_states=False, training=False, logits_at=None):
        """One causal forward of the bare model: :class:`~tf_rl_text.models.LMOutput` (float32 raw logits)."""
        return causal_lm_forward(model, input_ids, attention_mask, position_ids, past_key_values, use_cache,
                                 output_hidden_states, training, logits_at)

    def save_pretrained(self, agent, path: str):
        """Model and tokenizer with ``save_pretrained`` (``from_pretrained`` loads them)."""
        agent.model.save_pretrained(path)
        agent.tokenizer.save_pretrained(path)

    def completion_forward(self, agent, model, prompt_ids, prompt_mask, completion_ids, completion_mask, training,
                           output_hidden_states):
        input_ids = tf.concat([prompt_ids, completion_ids], axis=1)  # (B, P+T)
        mask = tf.concat([prompt_mask, completion_mask], axis=1)
        start = tf.shape(prompt_ids)[1] - 1  # position P-1 predicts the first completion token
        out = agent.causal_lm(input_ids, mask, output_hidden_states=output_hidden_states, training=training,
                              model=model, logits_at=slice(start, -1))
        hidden = out.hidden_states[-1][:, start:-1] if output_hidden_states else None
        return agent.process_logits(out.logits), hidden  # (B, T, V), (B, T, d)

    def prefill(self, agent, input_ids, attention_mask):
        if agent.generation_cache == "llama":
            from tf_rl_text.llama import llama_forward

            positions = position_ids_from_mask(attention_mask)
            logits, past = llama_forward(agent.model, input_ids, attention_mask, positions)
            state = {"past": past, "mask": attention_mask, "position": positions[:, -1]}
        elif agent.generation_cache == "none":  # no cache: the state is the sequence so far
            logits = agent.causal_lm(input_ids, attention_mask, logits_at=slice(-1, None)).logits[:, -1]
            state = {"ids": input_ids, "mask": attention_mask}
        else:
            positions = position_ids_from_mask(attention_mask)
            out = agent.causal_lm(input_ids, attention_mask, positions, use_cache=True, logits_at=slice(-1, None))
            state = {"past": out.past_key_values, "mask": attention_mask, "position": positions[:, -1]}
            logits = out.logits[:, -1]
        return agent.process_logits(as_float32(logits)), state

    def advance(self, agent, token, state):
        """One token (B,) through the cache: :meth:`extend` with a one-token chunk (``"none"``: the sequence grows)."""
        if agent.generation_cache != "none":
            return self.extend(agent, token[:, None], tf.ones_like(token)[:, None], state)
        ids = tf.concat([state["ids"], token[:, None]], axis=1)
        mask = tf.concat([state["mask"], tf.ones_like(token)[:, None]], axis=1)
        logits = agent.causal_lm(ids, mask, logits_at=slice(-1, None)).logits[:, -1]
        return agent.process_logits(as_float32(logits)), {"ids": ids, "mask": mask}

    def extend(self, agent, input_ids, attention_mask, state):
        """Feed a left-padded chunk of tokens (B, Q) through the cache ``state`` (the other side's turn in a
        conversation): (logits after the chunk's last token, the state with the chunk in it). Its positions go on
        from each row's last real token, so a row's tokens sit where re-encoding the compact sequence puts them."""
        mask = tf.concat([state["mask"], attention_mask], axis=1)
        positions = state["position"][:, None] + tf.cumsum(tf.cast(attention_mask, state["position"].dtype), axis=1)
        if agent.generation_cache == "llama":
            from tf_rl_text.llama import llama_forward

            logits, past = llama_forward(agent.model, input_ids, mask, positions, state["past"])
        else:
            out = agent.causal_lm(input_ids, mask, positions, past_key_values=state["past"], use_cache=True,
                                  logits_at=slice(-1, None))
            logits, past = out.logits[:, -1], out.past_key_values
        return agent.process_logits(as_float32(logits)), {"past": past, "mask": mask, "position": positions[:, -1]}

    def head_export(self, per_prefix, per_completion):
        """The exported signature of a per-position head (values, Q-values): a causal LM's reads the
        sequence, ``input_ids``, ``attention_mask`` (B, L) -> (B, L), one number per prefix.
        Returns (fn, input specs)."""
        return per_prefix, list(PROMPT_SPECS)

    def observation_spec(self, prompt_length: int, new_tokens: int, vocab: int) -> dict:
        """A TextGenerationEnv observation: one left-padded window, the prompt then the tokens so far."""
        return _token_specs(prompt_length + new_tokens, vocab, "input_ids", "attention_mask")

    def observe(self, ids, mask, generated, generated_mask, new_tokens: int, pad_token_id: int) -> dict:
        return {"input_ids": ids.copy(), "attention_mask": mask.copy()}

    def grow(self, ids, mask, token, live):
        """The window after one step: left padding drops off, the token joins."""
        return (np.concatenate([ids[:, 1:], token[:, None]], axis=1),
                np.concatenate([mask[:, 1:], live[:, None].astype(np.int32)], axis=1))

    def act_logits(self, agent, obs):
        """Logits of the next token for a TextGenerationEnv observation (the sequence so far, left padded)."""
        return agent._act_fn(obs["input_ids"], obs["attention_mask"])


class KerasHubCausalLM(CausalLM):
    """A KerasHub ``CausalLM`` (wrapped as :class:`~tf_rl_text.kerashub.KerasHubLM`): a causal LM whose forward
    runs the backbone's Keras 3 layers, with the same padding, cache and observation rules as ``CausalLM``."""

    def forward(self, model, input_ids, attention_mask, position_ids=None, past_key_values=None, use_cache=False,
                output_hidden_states=False, training=False, logits_at=None):
        if not hasattr(model, "forward"):  # a wrapper around the KerasHubLM (Q-learning's QHeadModel): HF's calls
            return super().forward(model, input_ids, attention_mask, position_ids, past_key_values, use_cache,
                                   output_hidden_states, training, logits_at)
        return model.forward(input_ids, attention_mask, position_ids, past_key_values, use_cache,
                             output_hidden_states, training, logits_at)

    def save_pretrained(self, agent, path: str):
        """A KerasHub preset folder (``keras_hub.models.CausalLM.from_preset(path)``), the tokenizer in
        ``path/hf_tokenizer`` (:func:`tf_rl_text.kerashub.load_preset` reads both)."""
        agent.model.save_pretrained(path, agent.tokenizer)


class EncoderDecoder:
    """An encoder-decoder LM (T5, BART, Marian): the source is encoded once, the completion is decoded."""

    seq2seq = True
    padding_side = "right"

    def tokens_needed(self, prompt_tokens: int, new_tokens: int) -> int:
        return tokens_needed(True, prompt_tokens, new_tokens)

    def prompt_room(self, context_length: int, new_tokens: int) -> int:
        """The longest source: the whole context (the target is decoded apart)."""
        return context_length

    def completion_forward(self, agent, model, prompt_ids, prompt_mask, completion_ids, completion_mask, training,
                           output_hidden_states):
        batch = tf.shape(completion_ids)[0]
        start = tf.fill([batch, 1], agent.decoder_start_token_id)
        decoder_ids = tf.concat([start, completion_ids[:, :-1]], axis=1)  # (B, T) shifted right
        decoder_mask = tf.concat([tf.ones([batch, 1], completion_mask.dtype), completion_mask[:, :-1]], axis=1)
        out = model(input_ids=prompt_ids, attention_mask=prompt_mask, decoder_input_ids=decoder_ids,
                    decoder_attention_mask=decoder_mask, output_hidden_states=output_hidden_states,
                    training=training)
        hidden = out.decoder_hidden_states[-1] if output_hidden_states else None
        return agent.process_logits(as_float32(out.logits)), hidden

    save_pretrained = CausalLM.save_pretrained

    def prefill(self, agent, input_ids, attention_mask):
        from transformers.modeling_tf_outputs import TFBaseModelOutput

        model = agent.model
        encoded = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask, training=False)
        hidden = encoded.last_hidden_state  # (B, P, d): computed once per rollout
        start = tf.fill([tf.shape(input_ids)[0], 1], agent.decoder_start_token_id)
        out = model(input_ids=None, encoder_outputs=TFBaseModelOutput(last_hidden_state=hidden),
                    attention_mask=attention_mask, decoder_input_ids=start, use_cache=True, training=False)
        state = {"past": out.past_key_values, "encoder": hidden, "mask": attention_mask}
        return agent.process_logits(as_float32(out.logits[:, -1])), state

    def advance(self, agent, token, state):
        from transformers.modeling_tf_outputs import TFBaseModelOutput

        out = agent.model(input_ids=None, encoder_outputs=TFBaseModelOutput(last_hidden_state=state["encoder"]),
                          attention_mask=state["mask"], decoder_input_ids=token[:, None],
                          past_key_values=state["past"], use_cache=True, training=False)
        state = dict(state, past=out.past_key_values)
        return agent.process_logits(as_float32(out.logits[:, -1])), state

    def head_export(self, per_prefix, per_completion):
        """The exported signature of a per-position head (values, Q-values): an encoder-decoder's reads
        the source ``input_ids``, ``attention_mask`` (B, P) and ``completion_ids``, ``completion_mask``
        (B, T) -> (B, T), one number per decoder state. Returns (fn, input specs)."""
        return per_completion, [*PROMPT_SPECS, *COMPLETION_SPECS]

    def observation_spec(self, prompt_length: int, new_tokens: int, vocab: int) -> dict:
        """A TextGenerationEnv observation: the right-padded source, and the target so far apart."""
        return {**_token_specs(prompt_length, vocab, "input_ids", "attention_mask"),
                **_token_specs(new_tokens, vocab, "decoder_input_ids", "decoder_attention_mask")}

    def observe(self, ids, mask, generated, generated_mask, new_tokens: int, pad_token_id: int) -> dict:
        t = generated.shape[1]  # the generated tokens, right padded to new_tokens
        return {"input_ids": ids.copy(), "attention_mask": mask.copy(),
                "decoder_input_ids": np.pad(generated, [(0, 0), (0, new_tokens - t)], constant_values=pad_token_id),
                "decoder_attention_mask": np.pad(generated_mask, [(0, 0), (0, new_tokens - t)])}

    def grow(self, ids, mask, token, live):
        """The source stays; the token joins the target (kept by the env)."""
        return ids, mask

    def act_logits(self, agent, obs):
        """Logits of the next token for a TextGenerationEnv observation (source, and the target so far)."""
        if "decoder_input_ids" not in obs:
            raise ValueError("an encoder-decoder agent needs the env's encoder-decoder layout: build it with "
                             "TextGenerationEnv(..., agent=agent)")
        return agent._act_fn_seq2seq(obs["input_ids"], obs["attention_mask"], obs["decoder_input_ids"],
                                     obs["decoder_attention_mask"])


def _token_specs(length: int, vocab: int, ids_name: str, mask_name: str) -> dict:
    return {ids_name: specs.BoundedArraySpec((length,), np.int32, 0, vocab - 1, name=ids_name),
            mask_name: specs.BoundedArraySpec((length,), np.int32, 0, 1, name=mask_name)}


CAUSAL_LM, ENCODER_DECODER, KERAS_HUB_CAUSAL_LM = CausalLM(), EncoderDecoder(), KerasHubCausalLM()


def adapter_for(model_or_config):
    """The adapter of a model's family: its config's ``is_encoder_decoder``, or a KerasHub family
    (:mod:`tf_rl_text.families`): where a model is classified."""
    config = getattr(model_or_config, "config", model_or_config)
    family = family_of(config)
    if family is not None and family.keras_hub:
        return KERAS_HUB_CAUSAL_LM
    return ENCODER_DECODER if getattr(config, "is_encoder_decoder", False) else CAUSAL_LM


def policy_model(model, tokenizer=None):
    """``(model, tokenizer)`` as the agent holds them: a KerasHub ``CausalLM`` becomes a
    :class:`~tf_rl_text.kerashub.KerasHubLM` (with its tokenizer when none is given); any other model is
    returned as it is."""
    from tf_rl_text import kerashub

    if isinstance(model, kerashub.KerasHubLM) or kerashub.is_keras_hub_model(model):
        return kerashub.wrap(model, tokenizer)
    return model, tokenizer


__all__ = ["CausalLM", "EncoderDecoder", "KerasHubCausalLM", "CAUSAL_LM", "ENCODER_DECODER", "KERAS_HUB_CAUSAL_LM",
           "adapter_for", "policy_model"]
