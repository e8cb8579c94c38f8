"""Generation: the compiled decode loop of :class:`~tf_rl_text.agent.RLAgent` and the checks of its arguments.

* :class:`GenerationMixin` - what ``RLAgent`` generates with: :meth:`~GenerationMixin.generate`
  (padded ids in, a :class:`Generation` out), :meth:`~GenerationMixin.generate_text` (texts in and
  out) and :meth:`~GenerationMixin.generate_fn` (the compiled rollout the trainers and the export
  call). The loop reads the prompt once (``_prefill``), then feeds one token per step through a
  key/value cache (``_advance``: the model's own, the Llama cache of :mod:`tf_rl_text.llama`, or
  none), optionally split into independent row groups (``_decode_sharded``). The per-step
  sampling controls are the pure functions of :mod:`tf_rl_text.sampling`.
  :meth:`~GenerationMixin.generate_turn` decodes one turn of a conversation and returns its cache, which
  the next turn continues (the family adapter's ``extend`` feeds the other side's tokens through it).
* :func:`resolve_greedy` - greedy or sampled. ``generate``, ``generate_text`` and
  ``tf_rl_text.load(path).generate`` follow one rule: greedy by default; sampled with
  ``greedy=False`` or when any sampling argument (``seed``, ``temperature``, ``top_k``) is given.
  ``greedy=True`` together with ``temperature`` or ``top_k`` is a ValueError, never a silent greedy decode.
* :func:`check_sampling_args`, :func:`check_controls` - the argument checks, with messages that
  name the bad value and the fix.
"""
from __future__ import annotations

import collections
import math
from typing import Sequence

import numpy as np

from tf_rl_text import sampling
from tf_rl_text._compat import tf
from tf_rl_text.families import family_of, types_where
from tf_rl_text.precision import weights_cast_once
from tf_rl_text.validation import check_prompts

GENERATION_CACHES = ("auto", "model", "llama", "none")
"""The values of ``RLAgent(generation_cache=...)``."""
# causal LM families whose HF TF code needs the cache length as a static shape and that
# llama.py does not cover: "auto" recomputes the sequence for them
STATIC_CACHE_MODEL_TYPES = types_where(lambda f: f.static_cache)  # tf_rl_text/families.py

Generation = collections.namedtuple("Generation", ["completion_ids", "completion_mask"])
Generation.__doc__ = """Completions from :meth:`RLAgent.generate`.

completion_ids: (B, max_new_tokens) int32, ``pad_token_id`` after a row's end.
completion_mask: (B, max_new_tokens) int32, 1 on generated tokens (EOS included), 0 after.
"""

_NO_TOKENS = np.zeros([0], np.int32)


def check_controls(top_p, repetition_penalty, min_new_tokens, stop_token_ids):
    """The sampling controls, validated: (top_p, repetition_penalty, min_new_tokens, stop_token_ids tuple)."""
    if top_p is None or not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (1 = no nucleus filtering), got {top_p!r}")
    if repetition_penalty is None or not repetition_penalty > 0:
        raise ValueError(f"repetition_penalty must be > 0 (1 = off, > 1 discourages repeats), got {repetition_penalty!r}")
    if min_new_tokens is None or int(min_new_tokens) != min_new_tokens or min_new_tokens < 0:
        raise ValueError(f"min_new_tokens must be an integer >= 0, got {min_new_tokens!r}")
    if isinstance(stop_token_ids, (int, np.integer)):
        stop_token_ids = [stop_token_ids]
    stops = tuple(int(t) for t in stop_token_ids)
    if any(t < 0 or t != s for t, s in zip(stops, stop_token_ids)):
        raise ValueError(f"stop_token_ids must be token ids >= 0, got {list(stop_token_ids)!r}")
    return float(top_p), float(repetition_penalty), int(min_new_tokens), stops


def _loose_shape(x):
    return tf.TensorShape([None] * x.shape.rank)


def check_sampling_args(temperature=None, top_k=None, max_new_tokens=None, max_allowed=None, seed=None):
    """Validate sampling arguments (None = not given); raise ValueError naming the value and the fix.

    temperature: a finite float > 0; top_k: an integer >= 0 (0 = no top-k filtering);
    max_new_tokens: an integer >= 1 and, when ``max_allowed`` is given, <= it; seed: an int32 integer.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or not -2**31 <= seed < 2**31):
        raise ValueError(f"seed must be an integer in [-2**31, 2**31), got {seed!r}")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)) \
                or not math.isfinite(temperature) or not temperature > 0:
            raise ValueError(f"temperature must be a finite number > 0 (1.0 = the model's own distribution, lower = "
                             f"sharper; for the most likely tokens use greedy decoding), got {temperature!r}")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 = no top-k filtering), got {top_k!r}")
    if max_new_tokens is not None:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
            raise ValueError(f"max_new_tokens must be an integer (a number of tokens), got {max_new_tokens!r}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens!r}")
        if max_allowed is not None and max_new_tokens > max_allowed:
            raise ValueError(f"max_new_tokens must be <= {max_allowed} (the most this policy was exported to "
                             f"generate; export again with a larger max_new_tokens for longer outputs), "
                             f"got {max_new_tokens!r}")


def resolve_greedy(greedy, temperature=None, top_k=None, seed=None, top_p=None) -> bool:
    """The one greedy-vs-sampling rule of every text generation call in tf_rl_text.

    ``greedy=None`` (the default): greedy decoding, unless a sampling argument (``seed``,
    ``temperature``, ``top_k``, ``top_p``) is given, then sampling. ``greedy=False``: sampling.
    ``greedy=True``: greedy; passing ``temperature``, ``top_k`` or ``top_p`` with it is a ValueError
    (they would be ignored), a ``seed`` is accepted and has no effect. Also validates the arguments.
    """
    check_sampling_args(temperature, top_k, seed=seed)
    sampling_args = (("temperature", temperature), ("top_k", top_k), ("top_p", top_p))
    if greedy is None:
        return all(v is None for _, v in sampling_args) and seed is None
    if greedy and any(v is not None for _, v in sampling_args):
        given = ", ".join(f"{k}={v!r}" for k, v in sampling_args if v is not None)
        raise ValueError(f"{given} only applies to sampling, but greedy=True; pass greedy=False (or leave greedy "
                         f"unset) to sample, or drop {given.split('=')[0]} for greedy decoding")
    return bool(greedy)


def pick_generation_cache(model, choice, family):
    """The ``generation_cache`` to run ``model`` (of ``family``, its adapter) with: ``choice`` validated,
    ``"auto"`` resolved."""
    from tf_rl_text.llama import llama_parts

    if choice not in GENERATION_CACHES:
        raise ValueError(f"generation_cache must be one of {GENERATION_CACHES}, got {choice!r}")
    llama = llama_parts(model) is not None
    if choice == "auto":
        model_type = getattr(model.config, "model_type", None)
        choice = "llama" if llama else "none" if model_type in STATIC_CACHE_MODEL_TYPES else "model"
    if choice == "llama" and not llama:
        raise ValueError(f"generation_cache='llama' runs Llama-architecture decoders (TFMistralForCausalLM); "
                         f"{type(model).__name__} is not one: use 'model' or 'none'")
    if choice == "none" and family.seq2seq:
        raise ValueError("generation_cache='none' is for causal LMs; encoder-decoders use 'model'")
    return choice


def resolve_generation_shards(generation_shards=None) -> int:
    """``RLAgent(generation_shards=...)`` validated; None: the inter-op thread count when intra-op
    threads were set to 1 (:func:`tf_rl_text.cpu.use_cores`), else 1."""
    if generation_shards is None:
        threading = tf.config.threading
        single = threading.get_intra_op_parallelism_threads() == 1
        generation_shards = max(1, threading.get_inter_op_parallelism_threads()) if single else 1
    if int(generation_shards) != generation_shards or generation_shards < 1:
        raise ValueError(f"generation_shards must be an integer >= 1, got {generation_shards!r}")
    return int(generation_shards)


class GenerationMixin:
    """The generation methods of :class:`~tf_rl_text.agent.RLAgent` (see the module docstring).

    It runs on the agent's state: ``model``, ``family`` (its adapter: prefill and advance), ``generation_cache``,
    ``generation_shards``, the token ids (``eos_token_id``, ``pad_token_id``, ``decoder_start_token_id``),
    ``vocab_size``, ``context_length``, the sampling defaults (``temperature``, ``top_k``, ``top_p``,
    ``repetition_penalty``, ``min_new_tokens``, ``stop_token_ids``), ``_generate_fns`` (the compiled
    rollouts, reset by ``reset_compiled``), and on its hooks and helpers ``process_logits``,
    ``action_distribution``, ``causal_lm``, ``compile_fn``, ``encode_prompts``, ``decode_completions``
    and ``_next_seed``.
    """

    def _prefill(self, input_ids, attention_mask):
        """Generation, first step: read the prompt once. Returns (logits (B, V), cache state)."""
        return self.family.prefill(self, input_ids, attention_mask)

    def _advance(self, token, state):
        """Generation, later steps: feed one token (B,) through the cache. Returns (logits, state)."""
        return self.family.advance(self, token, state)

    def _decode(self, input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy, top_k,
                nucleus=False, penalty=False):
        """The rollout loop: prefill once, then one cached decoder step per token."""
        with weights_cast_once(self.model):  # mixed precision: weights cast to bfloat16 once, not per token
            return self._decode_loop(input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy,
                                     top_k, nucleus, penalty)

    def _decode_loop(self, input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy, top_k,
                     nucleus, penalty):
        """``controls``: (top_p, repetition_penalty, min_new_tokens, stop_token_ids) tensors; ``nucleus`` and
        ``penalty`` (Python bools) say whether top-p and the repetition penalty are traced at all."""
        logits, state = self._prefill(input_ids, attention_mask)  # (B, V)
        finished = tf.zeros([tf.shape(input_ids)[0]], tf.bool)
        seen = sampling.seen_tokens(input_ids, attention_mask, tf.shape(logits)[1]) if penalty else tf.zeros([0])
        completion_ids, completion_mask, _ = self._sample_loop(logits, state, finished, seen, max_new_tokens, seed,
                                                               temperature, controls, greedy, top_k, nucleus, penalty)
        return completion_ids, completion_mask

    def _sample_loop(self, logits, state, finished, seen, max_new_tokens, seed, temperature, controls, greedy, top_k,
                     nucleus, penalty):
        """From the logits of the next token and the cache ``state``: one token per step until every row has
        ``finished`` (it starts as given) or ``max_new_tokens``. Returns (completion ids, mask, the state after
        the last token: every sampled token, padding after a row's end included, is in its cache)."""
        top_p, rep_penalty, min_new_tokens, stop_token_ids = controls
        batch = tf.shape(logits)[0]
        ends = tf.concat([[self.eos_token_id], tf.reshape(stop_token_ids, [-1])], axis=0)  # (S + 1,) end a row
        tokens = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
        masks = tf.TensorArray(tf.int32, size=0, dynamic_size=True)

        def keep_going(t, logits, state, finished, tokens, masks, seen):
            return tf.logical_and(t < max_new_tokens, tf.logical_not(tf.reduce_all(finished)))

        def step(t, logits, state, finished, tokens, masks, seen):
            if penalty:
                logits = sampling.repetition_penalty(logits, seen, rep_penalty)
            logits = tf.cond(t < min_new_tokens, lambda: sampling.ban_tokens(logits, ends, True), lambda: logits)
            if greedy:
                token = tf.argmax(logits, axis=-1, output_type=tf.int32)
            else:
                step_seed = tf.random.experimental.stateless_fold_in(seed, t)
                if nucleus:  # temperature and top-k here, so the nucleus is that of the distribution sampled
                    logits = logits / tf.cast(temperature, logits.dtype)
                    if top_k and top_k < self.vocab_size:
                        kth = tf.math.top_k(logits, k=top_k).values[:, -1:]  # (B, 1)
                        logits = tf.where(logits < kth, tf.cast(sampling.BANNED, logits.dtype), logits)
                    logits = sampling.top_p_filter(logits, top_p)
                    token = self.action_distribution(logits, 1.0, 0).sample(seed=step_seed)
                else:
                    token = self.action_distribution(logits, temperature, top_k).sample(seed=step_seed)
            token = tf.where(finished, self.pad_token_id, token)  # (B,)
            tokens = tokens.write(t, token)
            masks = masks.write(t, tf.cast(tf.logical_not(finished), tf.int32))
            finished = tf.logical_or(finished, tf.reduce_any(tf.equal(token[:, None], ends[None, :]), axis=1))
            if penalty:
                seen = sampling.mark_seen(seen, token)
            logits, state = self._advance(token, state)
            return t + 1, logits, state, finished, tokens, masks, seen

        # an explicit loop (no AutoGraph): the cache state grows by one position per token
        loop_vars = (tf.constant(0), logits, state, finished, tokens, masks, seen)
        invariants = (tf.TensorShape([]), tf.TensorShape([None, None]), tf.nest.map_structure(_loose_shape, state),
                      tf.TensorShape([None]), tf.TensorShape(None), tf.TensorShape(None), _loose_shape(seen))
        t, _, state, _, tokens, masks, _ = tf.while_loop(keep_going, step, loop_vars, shape_invariants=invariants)
        pad = max_new_tokens - t  # rows stopped early: pad to a fixed width
        completion_ids = tf.pad(tf.transpose(tokens.stack()), [[0, 0], [0, pad]], constant_values=self.pad_token_id)
        completion_mask = tf.pad(tf.transpose(masks.stack()), [[0, 0], [0, pad]])
        completion_ids = tf.reshape(completion_ids, [batch, max_new_tokens])
        completion_mask = tf.reshape(completion_mask, [batch, max_new_tokens])
        return completion_ids, completion_mask, state

    def _decode_sharded(self, decode, input_ids, attention_mask, max_new_tokens, seed, *rest):
        """``decode`` (the compiled :meth:`_decode`) on ``generation_shards`` row groups side by side.

        The batch is padded to a multiple of the shard count with copies of its last row (dropped
        again at the end), so every shard is non-empty; shard i samples with seed fold_in(seed, i).
        The shards are independent branches of one graph: each core can run one.
        """
        shards = self.generation_shards
        batch = tf.shape(input_ids)[0]
        per_shard = (batch + shards - 1) // shards
        rows = tf.concat([tf.range(batch), tf.fill([per_shard * shards - batch], batch - 1)], axis=0)
        ids, mask = tf.gather(input_ids, rows), tf.gather(attention_mask, rows)
        outs = [
            decode(ids[i * per_shard:(i + 1) * per_shard], mask[i * per_shard:(i + 1) * per_shard], max_new_tokens,
                   tf.random.experimental.stateless_fold_in(seed, i), *rest)
            for i in range(shards)
        ]
        completion_ids = tf.concat([o[0] for o in outs], axis=0)[:batch]
        completion_mask = tf.concat([o[1] for o in outs], axis=0)[:batch]
        return completion_ids, completion_mask

    def generate_fn(self, greedy: bool = False, top_k: int | None = None, nucleus: bool = False,
                    penalty: bool = False):
        """The compiled rollout ``f(input_ids, attention_mask, max_new_tokens, seed, temperature, top_p=1.0,
        repetition_penalty=1.0, min_new_tokens=0, stop_token_ids=[])``.

        ``nucleus`` / ``penalty``: trace top-p filtering / the repetition penalty (each step then sorts
        the vocabulary / tracks the tokens seen); without them ``top_p`` / ``repetition_penalty`` are
        ignored. Traced once per (greedy, top_k, nucleus, penalty) for any batch size, prompt length
        and token count.
        """
        top_k = self.top_k if top_k is None else int(top_k)
        key = (bool(greedy), top_k, bool(nucleus) and not greedy, bool(penalty))
        if key not in self._generate_fns:
            greedy, top_k, nucleus, penalty = key
            signature = [
                tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                tf.TensorSpec([None, None], tf.int32, name="attention_mask"),
                tf.TensorSpec([], tf.int32, name="max_new_tokens"),
                tf.TensorSpec([2], tf.int32, name="seed"),
                tf.TensorSpec([], tf.float32, name="temperature"),
                tf.TensorSpec([], tf.float32, name="top_p"),
                tf.TensorSpec([], tf.float32, name="repetition_penalty"),
                tf.TensorSpec([], tf.int32, name="min_new_tokens"),
                tf.TensorSpec([None], tf.int32, name="stop_token_ids"),
            ]

            def fn(input_ids, attention_mask, max_new_tokens, seed, temperature, top_p=1.0, repetition_penalty=1.0,
                   min_new_tokens=0, stop_token_ids=_NO_TOKENS):
                controls = (top_p, repetition_penalty, min_new_tokens, stop_token_ids)
                return self._decode(input_ids, attention_mask, max_new_tokens, seed, temperature, controls, greedy,
                                    top_k, nucleus, penalty)

            if self.generation_shards > 1:  # one trace of the loop, called once per shard
                decode = self.compile_fn(fn, signature)

                def fn(input_ids, attention_mask, max_new_tokens, seed, temperature, top_p=1.0,  # noqa: F811
                       repetition_penalty=1.0, min_new_tokens=0, stop_token_ids=_NO_TOKENS):
                    return self._decode_sharded(decode, input_ids, attention_mask, max_new_tokens, seed, temperature,
                                                top_p, repetition_penalty, min_new_tokens, stop_token_ids)

            self._generate_fns[key] = self.compile_fn(fn, signature)
        return self._generate_fns[key]

    def _call_controls(self, top_k, seed, temperature, top_p, repetition_penalty, min_new_tokens, stop_token_ids):
        """One call's checked ``top_k``, seed tensor, temperature and validated controls, the agent's own where
        not given (``generate`` and ``generate_turn`` read their arguments here)."""
        if top_k is not None and (int(top_k) != top_k or not 0 <= top_k <= self.vocab_size):
            raise ValueError(f"top_k must be an integer in [0, {self.vocab_size}] (the vocabulary size; 0 = no "
                             f"filtering), got {top_k!r}")
        seed = self._next_seed() if seed is None else tf.constant([int(seed), 0], tf.int32)
        temperature = self.temperature if temperature is None else float(temperature)
        if temperature is None or not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        controls = check_controls(
            self.top_p if top_p is None else top_p,
            self.repetition_penalty if repetition_penalty is None else repetition_penalty,
            self.min_new_tokens if min_new_tokens is None else min_new_tokens,
            self.stop_token_ids if stop_token_ids is None else stop_token_ids)
        return seed, temperature, controls

    def generate(self, input_ids, attention_mask, max_new_tokens: int = 32, greedy: bool | None = None, seed=None,
                 temperature: float | None = None, top_k: int | None = None, top_p: float | None = None,
                 repetition_penalty: float | None = None, min_new_tokens: int | None = None,
                 stop_token_ids: Sequence[int] | None = None) -> Generation:
        """Greedily decode (the default) or sample completions for padded prompts.

        input_ids, attention_mask: (B, P) int, padded as :meth:`encode_prompts` pads. Returns a
        :class:`Generation` of (B, max_new_tokens) tensors. Greedy or sampled by
        :func:`resolve_greedy`: greedy unless ``greedy=False`` or a sampling argument is given.
        Sampling: ``seed`` (int) makes it reproducible (by default the agent's generator supplies
        one); ``temperature`` (> 0) and ``top_k`` (>= 0) default to the agent's own.
        ``top_p``, ``repetition_penalty``, ``min_new_tokens`` and ``stop_token_ids`` override the
        agent's settings for this call (see the class docstring; greedy decoding uses all but top_p).
        """
        greedy = resolve_greedy(greedy, temperature, top_k, seed, top_p)
        check_sampling_args(max_new_tokens=max_new_tokens)
        input_ids = tf.convert_to_tensor(input_ids, tf.int32)
        attention_mask = tf.convert_to_tensor(attention_mask, tf.int32)
        total = int(max_new_tokens) if self.family.seq2seq else int(input_ids.shape[1]) + int(max_new_tokens)
        if self.family.tokens_needed(int(input_ids.shape[1]), int(max_new_tokens)) > self.context_length:
            raise ValueError(
                f"prompt length {input_ids.shape[1]} + max_new_tokens {max_new_tokens} = {total} exceeds the "
                f"model's context of {self.context_length} tokens; shorten prompts or lower max_new_tokens"
            )
        seed, temperature, (top_p, repetition_penalty, min_new_tokens, stop_token_ids) = self._call_controls(
            top_k, seed, temperature, top_p, repetition_penalty, min_new_tokens, stop_token_ids)
        fn = self.generate_fn(greedy, top_k, nucleus=top_p < 1.0, penalty=repetition_penalty != 1.0)
        try:
            ids, mask = fn(input_ids, attention_mask, tf.constant(int(max_new_tokens), tf.int32), seed,
                           tf.constant(temperature, tf.float32), tf.constant(top_p, tf.float32),
                           tf.constant(repetition_penalty, tf.float32), tf.constant(min_new_tokens, tf.int32),
                           tf.constant(stop_token_ids, tf.int32, shape=[len(stop_token_ids)]))
        except TypeError as e:  # first trace of the loop failed inside the model's own code
            if fn.experimental_get_tracing_count() or "transformers/models/" not in str(e).replace("\\", "/"):
                raise
            causes = [line.strip() for line in str(e).splitlines()
                      if line.strip().startswith("TypeError:") and "Exception encountered" not in line]
            raise TypeError(
                f"{type(self.model).__name__} cannot run in RLAgent's compiled generation loop with its own "
                f"key/value cache: the cache grows by one position per token, so its length is not a static "
                f"shape, and this model's TF code needs it to be. Use RLAgent(..., generation_cache='none') "
                f"(recompute the sequence for each token; Mistral has generation_cache='llama'). The model's "
                f"error: {(causes or [e])[-1]}"
            ) from e
        return Generation(ids, mask)

    def turn_cache_blocker(self, repetition_penalty: float | None = None) -> str | None:
        """Why :meth:`generate_turn` cannot keep this agent's key/value cache across turns, for a call with this
        ``repetition_penalty`` (None: the agent's own); None when it can."""
        if self.family.seq2seq:
            return "an encoder-decoder's source would be re-encoded every turn"
        if self.generation_cache not in ("model", "llama"):
            return f"generation_cache={self.generation_cache!r} keeps no cache"
        family = family_of(self.model)
        if family is None or not family.turn_cache:
            return (f"{getattr(self.model.config, 'model_type', type(self.model).__name__)}'s cache is not known to "
                    f"continue across a masked hole (families.py: turn_cache)")
        if (self.repetition_penalty if repetition_penalty is None else repetition_penalty) != 1.0:
            return "the repetition penalty needs every earlier token of the conversation"
        return None

    def generate_turn(self, input_ids, attention_mask, state=None, finished=None, max_new_tokens: int = 32,
                      greedy: bool | None = None, seed=None, temperature: float | None = None, top_k: int | None = None,
                      top_p: float | None = None, min_new_tokens: int | None = None, stop_token_ids=None,
                      repetition_penalty: float | None = None):
        """One turn of a conversation, decoded on a key/value cache kept across turns. Returns
        (:class:`Generation`, state): pass the state to the next turn's call.

        ``state`` None: ``input_ids``, ``attention_mask`` (B, P) are the whole conversation so far, left padded,
        read once. Otherwise they are only the tokens added since the last turn (the other side's reply and the
        cue of the next turn), left padded (B, Q), at least one real token in each row that decodes; they are fed
        through ``state`` and decoding goes on from there, instead of re-reading the conversation.
        ``finished`` (B,) bool: rows that decode nothing this turn (ended episodes; pad tokens, mask 0).

        The returned state holds every token read or said, with the turn's EOS and padding masked out, so the
        next turn sees the positions and attention that re-encoding the conversation without them gives
        (``tests/test_conversation.py`` compares the log-probs). The sampling arguments are :meth:`generate`'s;
        the repetition penalty is not available here (:meth:`turn_cache_blocker` says when the cache cannot be kept).
        """
        blocker = self.turn_cache_blocker(repetition_penalty)
        if blocker:
            raise ValueError(f"generate_turn cannot keep the cache across turns: {blocker}; re-encode the "
                             f"conversation with generate() each turn")
        greedy = resolve_greedy(greedy, temperature, top_k, seed, top_p)
        check_sampling_args(max_new_tokens=max_new_tokens)
        seed, temperature, (top_p, _, min_new_tokens, stop_token_ids) = self._call_controls(
            top_k, seed, temperature, top_p, None, min_new_tokens, stop_token_ids)
        top_k = self.top_k if top_k is None or greedy else int(top_k)
        input_ids = tf.convert_to_tensor(input_ids, tf.int32)
        attention_mask = tf.convert_to_tensor(attention_mask, tf.int32)
        finished = tf.zeros([input_ids.shape[0]], tf.bool) if finished is None else tf.convert_to_tensor(finished,
                                                                                                           tf.bool)
        key = ("turn", bool(greedy), top_k, top_p < 1.0 and not greedy, state is None)
        if key not in self._generate_fns:  # traced once per key: every size is a None dimension
            loose = [] if state is None else [tf.nest.map_structure(
                lambda x: tf.TensorSpec(_loose_shape(x), x.dtype), state)]
            signature = [tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32), *loose,
                         tf.TensorSpec([None], tf.bool), tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32),
                         tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32),
                         tf.TensorSpec([None], tf.int32)]
            self._generate_fns[key] = self.compile_fn(self._turn_fn(*key[1:]), signature)
        ids, mask, state = self._generate_fns[key](
            input_ids, attention_mask, *([] if state is None else [state]), finished,
            tf.constant(int(max_new_tokens), tf.int32), seed, tf.constant(temperature, tf.float32),
            tf.constant(top_p, tf.float32), tf.constant(min_new_tokens, tf.int32),
            tf.constant(stop_token_ids, tf.int32, shape=[len(stop_token_ids)]))
        return Generation(ids, mask), state

    def _turn_fn(self, greedy, top_k, nucleus, first):
        def turn(input_ids, attention_mask, state, finished, max_new_tokens, seed, temperature, top_p, min_new_tokens,
                 stop_token_ids):
            controls = (top_p, tf.constant(1.0), min_new_tokens, stop_token_ids)
            with weights_cast_once(self.model):
                if state is None:
                    logits, state = self._prefill(input_ids, attention_mask)
                else:
                    logits, state = self.family.extend(self, input_ids, attention_mask, state)
                width = tf.shape(state["mask"])[1]
                ids, mask, state = self._sample_loop(logits, state, finished, tf.zeros([0]), max_new_tokens, seed,
                                                     temperature, controls, greedy, top_k, nucleus, False)
            said = mask * tf.cast(tf.not_equal(ids, self.eos_token_id), mask.dtype)  # what the next turn reads
            full = tf.concat([state["mask"][:, :width], tf.cast(said[:, :tf.shape(state["mask"])[1] - width],
                                                                 state["mask"].dtype)], axis=1)
            position = tf.cast(tf.reduce_sum(full, axis=1) - 1, state["position"].dtype)
            return ids, mask, dict(state, mask=full, position=position)

        if first:
            return lambda input_ids, attention_mask, *rest: turn(input_ids, attention_mask, None, *rest)
        return turn

    def generate_text(self, prompts: Sequence[str], max_new_tokens: int = 32, greedy: bool | None = None, seed=None,
                      temperature: float | None = None, top_k: int | None = None, best_of: int | None = None,
                      reward_fn=None, **controls):
        """Texts in, completions out (prompt not repeated).

        Greedy by default; sampled with ``greedy=False`` or any of ``seed``, ``temperature``,
        ``top_k`` (:func:`resolve_greedy`, the rule ``tf_rl_text.load(path).generate`` follows too).
        ``controls``: :meth:`generate`'s other keywords (top_p, repetition_penalty, min_new_tokens,
        stop_token_ids).

        ``best_of=n`` with ``reward_fn``: best-of-n sampling (rejection sampling at inference): n sampled
        completions per prompt (``seed`` 0 unless given), each prompt's highest-reward one returned (the
        first of ties). ``reward_fn(completions, prompts, references)``, e.g. a loaded reward model.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = check_prompts(prompts)  # non-blank strings: [None] names the entry, not the tokenizer's message
        if best_of is not None or reward_fn is not None:
            return self._best_of(prompts, best_of, reward_fn, max_new_tokens, seed, temperature, top_k, controls)
        greedy = resolve_greedy(greedy, temperature, top_k, seed, controls.get("top_p"))  # bad arguments fail fast
        ids, mask = self.encode_prompts(prompts)
        gen = self.generate(ids, mask, max_new_tokens=max_new_tokens, greedy=greedy, seed=seed,
                            temperature=None if greedy else temperature, top_k=None if greedy else top_k, **controls)
        return self.decode_completions(gen.completion_ids.numpy(), gen.completion_mask.numpy())

    def _best_of(self, prompts, n, reward_fn, max_new_tokens, seed, temperature, top_k, controls):
        if n is None or reward_fn is None:
            raise ValueError("best-of-n sampling needs both best_of=n and reward_fn=... (the reward that picks the best "
                             f"of n samples); got best_of={n!r}, reward_fn={reward_fn!r}")
        if int(n) != n or n < 1:
            raise ValueError(f"best_of must be an integer >= 1, got {n!r}")
        n = int(n)
        repeated = [p for p in prompts for _ in range(n)]
        ids, mask = self.encode_prompts(repeated)
        gen = self.generate(ids, mask, max_new_tokens=max_new_tokens, greedy=False, seed=0 if seed is None else seed,
                            temperature=temperature, top_k=top_k, **controls)
        texts = self.decode_completions(gen.completion_ids.numpy(), gen.completion_mask.numpy())
        rewards = np.asarray(reward_fn(texts, repeated, [None] * len(texts)), np.float64).reshape(-1)
        if rewards.shape[0] != len(texts) or not np.all(np.isfinite(rewards)):
            raise ValueError(f"reward_fn must return one finite number per completion; got {rewards.shape[0]} values "
                             f"for {len(texts)} completions")
        best = rewards.reshape(len(prompts), n).argmax(axis=1)
        return [texts[i * n + int(b)] for i, b in enumerate(best)]


__all__ = ["GenerationMixin", "Generation", "GENERATION_CACHES", "check_sampling_args", "check_controls",
           "resolve_greedy", "pick_generation_cache", "resolve_generation_shards"]
