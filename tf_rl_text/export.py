"""SavedModel export of a trained policy, and loading it back for inference.

A SavedModel written here loads with plain ``tf.saved_model.load(path)`` in a process that never
imports tf_rl_text. Its functions (all also reachable as ``loaded.signatures[name]``):

* ``generate`` (= ``serving_default``): ``input_ids``, ``attention_mask`` (B, P) int32, left
  padded -> ``sequences`` (B, max_new_tokens) greedy completion ids and ``completion_mask``;
* ``sample``: the same plus ``seed`` (2,) int32 and ``temperature`` () float32, sampled (top-k
  filtering as the exported agent's ``top_k``, recorded in the description); also
  callable (as ``loaded.sample``, or the signature ``sample_controls``) with the sampling controls
  after them: ``top_p`` () float32 (1 = off), ``repetition_penalty`` () float32 (1 = off),
  ``min_new_tokens`` () int32 and ``stop_token_ids`` (S,) int32 (see :meth:`RLAgent.generate`).
  Exports from before the controls have only the 4-input form (metadata ``sampling_controls``
  absent);
* ``log_probs``: ``input_ids``, ``attention_mask`` (B, P) prompts as above, ``completion_ids``,
  ``completion_mask`` (B, T) -> ``log_probs`` (B, T), log pi of each completion token;
* ``train_step``: one update of the trainer's algorithm (for REINFORCE: the four tensors of
  ``log_probs`` plus ``advantages`` (B, T) -> ``loss``), which changes the loaded variables;
* whatever a trainer adds (``q_values``, ``values``...).

``serving_only=True`` (``trainer.export(path, serving_only=True)``, ``tf-rl-text export RUN OUT
--serving-only``) leaves out ``train_step``, the optimizer's slots and training-only extras
(a target network): about a third of the full export's size, and nothing a serving caller runs
changes the weights.

The tokenizer files lie in ``PATH/assets/tokenizer/`` (saved with the padding side the model
needs: left for causal LMs, so ``AutoTokenizer.from_pretrained`` gives batches the model can
generate from) and a description in ``PATH/assets/tf_rl_text.json`` (max_new_tokens, token ids,
algorithm, config, serving_only).
"""
from __future__ import annotations

import json
import os
import threading

from tf_rl_text._compat import tf
from tf_rl_text.generation import check_sampling_args, resolve_greedy
from tf_rl_text.savedmodel import (COMPLETION_SPECS, METADATA_FILE, PARTIAL_MARK, TOKENIZER_DIR,  # noqa: F401
                                   Unsaved, check_replaceable, first_line, write_atomically)
from tf_rl_text.tokens import ensure_pad_token, ids_to_texts, pad_token_ids, texts_to_ids
from tf_rl_text.validation import check_prompts, check_writable_folder


RESERVED_NAMES = ("generate", "sample", "sample_controls", "log_probs", "train_step", "optimizer", "model_variables")


def export_policy(agent, path, max_new_tokens, train_step=None, optimizer=None, extra_functions=None, metadata=None,
                  extra_objects=None, serving_only: bool = False):
    """Write ``agent``'s policy as a SavedModel at ``path`` and return ``path``.

    train_step: optional ``(fn, input_signature)`` of the trainer's update; optimizer: the
    optimizer it uses (its state is saved so a loaded ``train_step`` continues training);
    extra_functions: ``{name: (fn, input_signature)}`` exported as more signatures;
    extra_objects: ``{name: trackable}`` saved beside the model and reachable as
    ``loaded.<name>`` (a value head, a target network's variables, ...);
    serving_only: leave out ``train_step`` and ``optimizer`` (inference only, smaller).

    An agent with LoRA adapters exports the merged, plain model (weights ``W + (alpha / rank) A B``,
    no adapter ops); its ``train_step`` and optimizer state are the adapters', so they are left out
    (metadata ``lora`` says so; keep training from ``agent.lora.save(path)``). The live model is unchanged.

    The write is atomic (:func:`write_atomically`): a killed or failed export never leaves a
    folder at ``path`` that looks complete, and an existing export at ``path`` is replaced only
    once the new one is whole. An unwritable ``path`` fails before any tracing.
    """
    if serving_only:
        train_step = optimizer = None
    lora = getattr(agent, "lora", None)
    if lora is None:
        return _write_policy(agent, path, max_new_tokens, train_step, optimizer, extra_functions, metadata,
                             extra_objects, serving_only)
    metadata = dict(metadata or {}, lora=lora.export_metadata())
    traced, agent._generate_fns = agent._generate_fns, {}  # graphs traced with the adapters on stay for live use
    try:
        with lora.merged():
            return _write_policy(agent, path, max_new_tokens, None, None, extra_functions, metadata, extra_objects,
                                 serving_only)
    finally:
        agent._generate_fns = traced


def _write_policy(agent, path, max_new_tokens, train_step, optimizer, extra_functions, metadata, extra_objects,
                  serving_only=False):
    """The SavedModel: the policy's signatures (:func:`_policy_signatures`), the extra functions and objects,
    the optimizer, the tokenizer and ``tf_rl_text.json``, written atomically."""
    if int(max_new_tokens) < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    check_writable_folder(path, "export")  # before the (slow) tracing
    check_replaceable(path)
    extra_objects = dict(extra_objects or {})
    for name in list(extra_objects) + list(extra_functions or {}):
        if name in RESERVED_NAMES or not name.isidentifier() or name in (extra_functions or {}) and name in extra_objects:
            raise ValueError(f"extra name {name!r} is taken or not an identifier; the export already uses "
                             f"{', '.join(RESERVED_NAMES)}: pick another name")
    max_new_tokens = int(max_new_tokens)
    module = tf.Module()
    module._holder = Unsaved(agent)
    module.model_variables = list(agent.model.variables)
    signatures = _policy_signatures(agent, module, max_new_tokens)
    functions = dict(extra_functions or {})
    if train_step is not None:
        functions["train_step"] = train_step
    for name, (fn, signature) in functions.items():
        compiled = tf.function(fn, input_signature=signature)
        setattr(module, name, compiled)
        signatures[name] = compiled
    if optimizer is not None:
        if not optimizer.variables:
            optimizer.build(agent.trainable_variables)
        module.optimizer = optimizer
    for name, obj in extra_objects.items():
        setattr(module, name, obj)
    meta = _policy_metadata(agent, max_new_tokens, signatures, serving_only)
    meta.update(metadata or {})

    def write(folder):
        tf.saved_model.save(module, folder, signatures=signatures)
        _save_tokenizer(agent.tokenizer, os.path.join(folder, TOKENIZER_DIR), agent.padding_side)
        with open(os.path.join(folder, METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=1, default=str)

    write_atomically(path, write)
    return path


def _policy_signatures(agent, module, max_new_tokens) -> dict:
    """generate (greedy), sample (4 inputs, or 4 + the sampling controls) and log_probs, compiled as the agent's
    own functions are and set on ``module``; returns the signatures by name."""
    greedy_fn = agent.generate_fn(greedy=True)
    sample_fn = agent.generate_fn(greedy=False)
    controlled_fn = agent.generate_fn(greedy=False, nucleus=True, penalty=True)
    ids_spec = tf.TensorSpec([None, None], tf.int32, name="input_ids")
    mask_spec = tf.TensorSpec([None, None], tf.int32, name="attention_mask")

    def generate(input_ids, attention_mask):
        ids, mask = greedy_fn(input_ids, attention_mask, tf.constant(max_new_tokens), tf.constant([0, 0]),
                              tf.constant(1.0))
        return {"sequences": ids, "completion_mask": mask}

    def sample(input_ids, attention_mask, seed, temperature, top_p=None, repetition_penalty=None,
               min_new_tokens=None, stop_token_ids=None):
        if top_p is None:  # the 4-input form every export has had
            ids, mask = sample_fn(input_ids, attention_mask, tf.constant(max_new_tokens), seed, temperature)
        else:
            ids, mask = controlled_fn(input_ids, attention_mask, tf.constant(max_new_tokens), seed, temperature, top_p,
                                      repetition_penalty, min_new_tokens, stop_token_ids)
        return {"sequences": ids, "completion_mask": mask}

    def log_probs(input_ids, attention_mask, completion_ids, completion_mask):
        return {"log_probs": agent.log_probs(input_ids, attention_mask, completion_ids, completion_mask)}

    # the built-in signatures compile as the agent's own functions do (AutoGraph only if the model needs it)
    generate = agent.compile_fn(generate, [ids_spec, mask_spec])
    sample_specs = [ids_spec, mask_spec, tf.TensorSpec([2], tf.int32, name="seed"),
                    tf.TensorSpec([], tf.float32, name="temperature")]
    control_specs = [tf.TensorSpec([], tf.float32, name="top_p"),
                     tf.TensorSpec([], tf.float32, name="repetition_penalty"),
                     tf.TensorSpec([], tf.int32, name="min_new_tokens"),
                     tf.TensorSpec([None], tf.int32, name="stop_token_ids")]
    sample = agent.compile_fn(sample)  # two forms: sample(4 inputs) and sample(4 + the 4 sampling controls)
    sample_plain = sample.get_concrete_function(*sample_specs)
    sample_controls = sample.get_concrete_function(*sample_specs, *control_specs)
    log_probs = agent.compile_fn(log_probs, [ids_spec, mask_spec, *COMPLETION_SPECS])
    module.generate, module.sample, module.log_probs = generate, sample, log_probs
    return {"serving_default": generate, "generate": generate, "sample": sample_plain,
            "sample_controls": sample_controls, "log_probs": log_probs}


def _policy_metadata(agent, max_new_tokens, signatures, serving_only) -> dict:
    """``tf_rl_text.json``: what :func:`load` needs to serve the export and check its tokenizer."""
    return {
        "format": "tf_rl_text.policy/1",
        "max_new_tokens": max_new_tokens,
        "context_length": agent.context_length,
        "padding_side": agent.padding_side,
        "encoder_decoder": agent.family.seq2seq,  # the model family (tf_rl_text/adapters.py)
        "eos_token_id": agent.eos_token_id,
        "pad_token_id": agent.pad_token_id,
        "model_type": getattr(agent.model.config, "model_type", None),
        "temperature": agent.temperature,  # the default of LoadedPolicy's sampling
        "top_k": agent.top_k,              # baked into the ``sample`` signature
        "signatures": sorted(signatures),
        "sampling_controls": ["top_p", "repetition_penalty", "min_new_tokens", "stop_token_ids"],
        "serving_only": bool(serving_only),
        "vocab_size": agent.vocab_size,  # the model's embedding rows: load checks the shipped tokenizer against them
        "tokenizer_size": len(agent.tokenizer),
        "tokenizer_sha256": tokenizer_fingerprint(agent.tokenizer),
    }


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of the tokenizer's vocabulary (token -> id) and its special ids: what the model's
    embedding rows were trained with. Equal for a tokenizer saved and loaded back."""
    import hashlib

    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    text = json.dumps([vocab, tokenizer.eos_token_id], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check_tokenizer(path, tokenizer, meta):
    """The shipped tokenizer must be the one the model was exported with (a swapped or edited
    ``assets/tokenizer`` would generate garbage or fail inside the graph)."""
    where = f"{path!r}: the tokenizer in {TOKENIZER_DIR}"
    fix = "put back the tokenizer it was exported with, or export the policy again"
    size, vocab = len(tokenizer), meta.get("vocab_size")
    if vocab is not None and size > int(vocab):
        raise ValueError(f"{where} has {size} tokens but the model's vocabulary has {vocab}: ids >= {vocab} have no "
                         f"embedding; {fix}")
    if meta.get("tokenizer_size") is not None and size != meta["tokenizer_size"]:
        raise ValueError(f"{where} has {size} tokens, the model was exported with a tokenizer of "
                         f"{meta['tokenizer_size']}; {fix}")
    if meta.get("eos_token_id") is not None and tokenizer.eos_token_id != meta["eos_token_id"]:
        raise ValueError(f"{where} has end-of-sequence id {tokenizer.eos_token_id}, the model was exported with "
                         f"{meta['eos_token_id']}; {fix}")
    if meta.get("tokenizer_sha256") and tokenizer_fingerprint(tokenizer) != meta["tokenizer_sha256"]:
        raise ValueError(f"{where} is not the one the model was exported with (its vocabulary differs: fingerprint "
                         f"{tokenizer_fingerprint(tokenizer)}, exported {meta['tokenizer_sha256']}); {fix}")


def _save_tokenizer(tokenizer, folder, padding_side):
    """``save_pretrained`` with ``padding_side`` written into tokenizer_config.json (the agent pads
    itself, so the tokenizer object's own setting may differ; a reloaded tokenizer must not)."""
    tokenizer.save_pretrained(folder)
    config_path = os.path.join(folder, "tokenizer_config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config["padding_side"] = padding_side
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)


SAMPLE_OPTIONS = {
    "temperature": (tf.float32, 1.0),
    "top_k": (tf.int32, 0),
}
"""Sampling options :class:`LoadedPolicy` knows: name -> (dtype of the exported ``sample`` input
that takes it, default when the export's description records no value). An export whose
``sample`` signature has the input gets the value as a tensor; one without it had the option
fixed at export (its value in the description, ``tf_rl_text.json``), and asking for another
value is a ValueError. A new option (top-p, a repetition penalty) is one
more entry here plus the input in :func:`export_policy`; older exports stay loadable."""


class LoadedPolicy:
    """A policy loaded from an exported SavedModel: texts in, texts out.

    ``loaded.module`` is the raw ``tf.saved_model.load`` object; ``loaded.tokenizer`` the
    tokenizer shipped beside it.

    Greedy or sampled follows the rule of ``RLAgent.generate_text``
    (:func:`tf_rl_text.generation.resolve_greedy`): :meth:`generate` decodes greedily unless
    ``greedy=False`` or a sampling argument (``seed``, ``temperature``, ``top_k``) is given;
    :meth:`sample` always samples. ``max_new_tokens`` may be at most the exported maximum
    (``loaded.max_new_tokens``): the SavedModel generates that many and the output is cut, which
    gives the same tokens as a shorter run (sampling draws each position from its own seed) at
    the cost of the full length.
    """

    def __init__(self, path):
        from transformers import AutoTokenizer

        path = os.fspath(path)
        self.metadata = _read_metadata(path)
        self.path = path
        try:
            self.module = tf.saved_model.load(path)
        except Exception as err:  # noqa: BLE001 - any failure to parse or restore means a damaged export
            raise ValueError(f"{path!r} is a damaged tf_rl_text export: its SavedModel does not load "
                             f"({type(err).__name__}: {first_line(err)}); export it again") from err
        tokenizer_dir = os.path.join(path, TOKENIZER_DIR)
        try:
            if not os.path.isdir(tokenizer_dir):  # never a Hub look-up: the export carries its tokenizer
                raise FileNotFoundError("the folder is missing")
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        except Exception as err:  # noqa: BLE001
            raise ValueError(f"{path!r} is a damaged tf_rl_text export: its tokenizer in {TOKENIZER_DIR} does not load "
                             f"({type(err).__name__}: {first_line(err)}); export it again") from err
        _check_tokenizer(path, self.tokenizer, self.metadata)
        ensure_pad_token(self.tokenizer)
        self.max_new_tokens = int(self.metadata["max_new_tokens"])
        # Hugging Face fast tokenizers are not safe to call from several threads at once ("Already
        # borrowed"); text <-> ids goes through this lock, the graph call does not.
        self._tokenizer_lock = threading.Lock()
        sample_fn = self.module.signatures.get("sample")
        self._sample_inputs = set(sample_fn.structured_input_signature[1]) if sample_fn is not None else None

    def _encode(self, texts):
        """Token ids padded as the exported model expects: left for causal LMs, right for encoders."""
        with self._tokenizer_lock:
            encoded = texts_to_ids(self.tokenizer, texts)
        side = self.metadata.get("padding_side", "left")
        context = self.metadata.get("context_length")  # None in exports older than this check
        for i, ids in enumerate(encoded):
            needed = len(ids) + (self.max_new_tokens if side == "left" else 0)
            if context is not None and needed > context:
                room = context - (self.max_new_tokens if side == "left" else 0)
                raise ValueError(
                    f"texts[{i}] ({texts[i][:40]!r}...) is {len(ids)} tokens; with the export's max_new_tokens="
                    f"{self.max_new_tokens} that exceeds the model's context of {context} tokens. Shorten it to at "
                    f"most {room} tokens"
                )
        return pad_token_ids(encoded, self.tokenizer.pad_token_id, side)

    def _sample_options(self, options):
        """The export's ``sample`` inputs for the given options (None = this export's default)."""
        if self._sample_inputs is None:
            raise ValueError(f"{self.path!r} has no sample signature, so it can only decode greedily: call generate "
                             f"without greedy=False, seed, temperature or top_k")
        inputs = {}
        for name, (dtype, default) in SAMPLE_OPTIONS.items():
            value = options.get(name)
            if name in self._sample_inputs:
                inputs[name] = tf.constant(self.metadata.get(name, default) if value is None else value, dtype)
            elif value is not None and value != self.metadata.get(name, object()):
                fixed = (f"fixed at {self.metadata[name]!r} when it was exported" if name in self.metadata
                         else "fixed when it was exported (this export does not record the value)")
                raise ValueError(f"{name}={value!r}: this export's sample signature has no {name} input, its {name} "
                                 f"is {fixed}; leave {name} unset, or export from an agent built with "
                                 f"RLAgent(..., {name}={value!r})")
        return inputs

    def _run(self, texts, greedy, seed, max_new_tokens, options):
        check_sampling_args(max_new_tokens=max_new_tokens, max_allowed=self.max_new_tokens)
        if isinstance(texts, str):
            texts = [texts]
        texts = check_prompts(texts, "texts")  # non-blank strings
        inputs = None if greedy else self._sample_options(options)  # validated before any work
        if not texts:
            return []
        ids, mask = self._encode(texts)
        if greedy:
            out = self.module.generate(tf.constant(ids), tf.constant(mask))
        else:
            seed = 0 if seed is None else int(seed)
            out = self.module.signatures["sample"](input_ids=tf.constant(ids), attention_mask=tf.constant(mask),
                                                   seed=tf.constant([seed, 0], tf.int32), **inputs)
        n = self.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
        seqs, cmask = out["sequences"].numpy()[:, :n], out["completion_mask"].numpy()[:, :n]
        with self._tokenizer_lock:
            return ids_to_texts(self.tokenizer, seqs, cmask)

    def generate(self, texts, greedy: bool | None = None, seed: int | None = None, temperature: float | None = None,
                 top_k: int | None = None, max_new_tokens: int | None = None):
        """Complete each text; returns the completions (prompt not repeated).

        Greedy by default (the export's ``generate``); sampled (the export's ``sample``) with
        ``greedy=False`` or when ``seed``, ``temperature`` or ``top_k`` is given, as
        ``RLAgent.generate_text`` does. ``greedy=True`` with ``temperature``/``top_k`` is a ValueError.
        Sampling defaults: seed 0 (the same output on every call: pass seeds for different
        samples), the exported agent's temperature and top_k. ``max_new_tokens``: at most the
        exported maximum (default), see the class notes.
        """
        greedy = resolve_greedy(greedy, temperature, top_k, seed)
        return self._run(texts, greedy, seed, max_new_tokens, {"temperature": temperature, "top_k": top_k})

    def sample(self, texts, seed: int = 0, temperature: float | None = None, top_k: int | None = None,
               max_new_tokens: int | None = None):
        """Sampled completions, the export's ``sample`` signature (``seed``, ``temperature``) for texts.

        temperature: > 0, default the exported agent's (usually 1.0). top_k: the exported
        agent's top-k is fixed in the signature; passing another value is a ValueError that says so.
        max_new_tokens: at most the exported maximum.
        """
        check_sampling_args(temperature, top_k, seed=seed)
        return self._run(texts, False, seed, max_new_tokens, {"temperature": temperature, "top_k": top_k})


    def chat(self, messages, tools=None, max_turns: int = 3, greedy: bool | None = None, seed: int | None = None,
             temperature: float | None = None, max_new_tokens: int | None = None) -> list:
        """Continue a conversation (:mod:`tf_rl_text.conversation`'s message format): the policy's next turn
        for ``messages``, rendered as training rendered it (the tokenizer's chat template, else the plain
        ``Role: content`` form), appended as an assistant message. With ``tools`` (functions or
        :class:`~tf_rl_text.tools.Tool` objects), a turn that calls one (``NAME(ARGUMENTS)``) runs it
        here, outside the graph, appends its result (or ``error: ...``) as a tool message and goes on, up to
        ``max_turns`` policy turns. Returns the conversation with the new messages. Greedy unless ``greedy=False``
        or ``seed``/``temperature`` is given, as :meth:`generate`."""
        from tf_rl_text.conversation import Renderer, as_message
        from tf_rl_text.tools import answer_call, as_tools

        greedy = resolve_greedy(greedy, temperature, None, seed)
        renderer = Renderer(self.tokenizer)
        out = [as_message(m) for m in messages]
        tools = as_tools(tools) if tools else {}
        for turn in range(int(max_turns)):
            text = self._run([renderer.text(out)], greedy, None if seed is None else int(seed) + turn,
                             max_new_tokens, {"temperature": temperature})[0]
            out.append({"role": "assistant", "content": text})
            reply = answer_call(text, tools)[0] if tools else None
            if reply is None:  # an answer (or no tools to call)
                break
            out.append(reply)  # the tool's result, or error: ... (a malformed call, a tool that raised or hung)
        return out


def _read_metadata(path) -> dict:
    """The export's description, or an error saying what ``path`` is instead of an export."""
    hint = "pass the folder that trainer.export(path) or tf_rl_text.export_policy wrote"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} does not exist; {hint}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{path!r} is a file, not a tf_rl_text SavedModel folder; {hint}")
    meta_path = os.path.join(path, METADATA_FILE)
    has_graph = os.path.exists(os.path.join(path, "saved_model.pb"))
    if not os.path.exists(meta_path):
        if has_graph:
            raise ValueError(
                f"{path!r} is a SavedModel but not a tf_rl_text SavedModel (no {METADATA_FILE}; another library "
                f"wrote it?). Load it with tf.saved_model.load(path), or export a policy with trainer.export(path)"
            )
        raise FileNotFoundError(f"{path!r} is not a tf_rl_text SavedModel (no saved_model.pb, no {METADATA_FILE}); {hint}")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path!r} is a damaged tf_rl_text export: {METADATA_FILE} is not valid JSON ({err}); "
                         "export it again") from None
    if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith("tf_rl_text.policy/"):
        raise ValueError(f"{path!r}: {METADATA_FILE} does not describe a tf_rl_text policy (format "
                         f"{meta.get('format') if isinstance(meta, dict) else meta!r}); export it again")
    if not has_graph:
        raise ValueError(f"{path!r} is a damaged tf_rl_text export: saved_model.pb is missing; export it again")
    if not isinstance(meta.get("max_new_tokens"), int) or meta["max_new_tokens"] < 1:
        raise ValueError(f"{path!r}: {METADATA_FILE} has no valid max_new_tokens (got {meta.get('max_new_tokens')!r}); "
                         "export it again")
    return meta


def load(path) -> LoadedPolicy:
    """Load a policy written by ``trainer.export(path)``; ``load(path).generate(["a prompt"])``.

    A choice policy (a sequence classifier, :mod:`tf_rl_text.choice`) loads as a
    :class:`~tf_rl_text.choice.LoadedChoicePolicy`: ``load(path).choose(...)``; a reward model
    (:func:`~tf_rl_text.rewards.pairwise.export_reward_model`) as a
    :class:`~tf_rl_text.rewards.pairwise.LoadedRewardModel`: ``load(path)(completions, prompts)``.
    """
    meta_path = os.path.join(path, METADATA_FILE)
    if os.path.exists(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (ValueError, UnicodeDecodeError):
            meta = None  # damaged: LoadedPolicy's checks say so, naming the file and the fix
        if isinstance(meta, dict) and str(meta.get("format", "")).startswith("tf_rl_text.choice/"):
            from tf_rl_text.choice.export import LoadedChoicePolicy

            return LoadedChoicePolicy(path, meta)
        if isinstance(meta, dict) and str(meta.get("format", "")).startswith("tf_rl_text.reward/"):
            from tf_rl_text.rewards.pairwise import LoadedRewardModel

            return LoadedRewardModel(path, meta)
    return LoadedPolicy(path)


__all__ = ["export_policy", "load", "LoadedPolicy", "SAMPLE_OPTIONS"]
