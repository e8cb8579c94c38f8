"""LoRA: low-rank adapters on a Hugging Face TF model's projections (Hu et al. 2021, arXiv:2106.09685).

Each chosen projection ``y = x W (+ b)`` becomes ``y = x W (+ b) + (alpha / rank) * dropout(x) A B`` with
``A`` (in, rank) random and ``B`` (rank, out) zero, so the adapted model starts as the base model.
Only ``A`` and ``B`` train; the base weights are frozen (``model.trainable = False``). Works on
GPT-2's fused ``Conv1D`` projections (``c_attn``, ``c_proj``, ``c_fc``) and on Keras ``Dense``
projections (T5's ``q``/``k``/``v``/``o``/``wi``/``wo``; BART's, Marian's, OPT's and Mistral's
``q_proj``/``k_proj``/``v_proj``/``out_proj``/``o_proj``, Mistral's ``gate_proj``/``up_proj``/``down_proj``).

With adapters attached, the KL reference of every trainer is *the same model with the adapters
switched off*: :meth:`RLAgent.clone_model` returns an :class:`AdaptersOff` view (no second copy of
the weights), and the agent's forward passes run it with the adapters left out of the graph.
Q-learning's target network is the same model run with a copy of the adapters (:class:`AdapterCopy`,
switched in by :meth:`LoRA.using`), so it holds no second copy of the weights either.

Example::

    agent = RLAgent(model, tokenizer)
    lora = agent.attach_lora(rank=8, alpha=16, targets=["c_attn"])   # before building the trainer
    trainer = ReinforceTrainer(agent, env, ReinforceConfig(kl_coef=0.05))
    trainer.train(100)
    lora.save("adapters.npz")          # the adapters alone (a small file)
    trainer.export("saved_models/p")   # the merged, plain model: W + (alpha / rank) A B

    # later: the same base model, the saved adapters
    agent = RLAgent(base_model, tokenizer); agent.load_lora("adapters.npz")
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import threading

import numpy as np

from tf_rl_text._compat import tf
from tf_rl_text.families import FAMILIES, family_of

DEFAULT_TARGETS = {name: family.lora_targets for name, family in FAMILIES.items() if family.lora_targets}
"""Projections adapted when ``targets`` is not given (peft's defaults), by ``config.model_type``."""

_switch = threading.local()  # .off: adapters left out of what is being run / traced now


def adapters_active() -> bool:
    return not getattr(_switch, "off", False)


def _swapped(lora):
    """The :class:`AdapterCopy` of ``lora`` that runs in place of its live adapters now, or None."""
    return getattr(_switch, "copies", {}).get(id(lora))


@contextlib.contextmanager
def adapters_off():
    """Inside this block every LoRA layer runs as its base layer (a trace-time switch: the graphs
    traced inside hold no adapter ops)."""
    old = getattr(_switch, "off", False)
    _switch.off = True
    try:
        yield
    finally:
        _switch.off = old


def _kernel(layer):
    """The (in, out) weight of a Dense or HF TFConv1D layer, or None for other layers."""
    from transformers.modeling_tf_utils import TFConv1D

    if isinstance(layer, TFConv1D):
        return getattr(layer, "weight", None)
    if type(layer).__name__ == "Dense" and hasattr(layer, "kernel"):
        return layer.kernel
    return None


def _layer_path(layer, kernel):
    """'transformer/h_._0/attn/c_attn': the kernel's variable name without the model scope and ':0'."""
    parts = kernel.name.split(":")[0].split("/")
    return "/".join(parts[1:-1])


def _matches(path, patterns):
    name = path.split("/")[-1]
    return any(name == p or re.fullmatch(p, path) for p in patterns)


class LoRA(tf.Module):
    """The adapters on one model. Made by :meth:`RLAgent.attach_lora` (or :func:`attach`).

    Args:
      model: the Hugging Face TF model (built).
      rank: r, the adapters' inner width (>= 1).
      alpha: the scale numerator: the update is ``(alpha / rank) * x A B``.
      dropout: dropout on the adapters' input in ``training=True`` forward passes. The trainers
        score with ``training=False`` (rollout and update must see the same policy), so it acts in
        supervised passes (``fit_pairs``, ``warm_start``) only.
      targets: projections to adapt: a layer name (``"c_attn"``, ``"q_proj"``) or a regular
        expression fully matching its path (``r"transformer/h_\\._[0-5]/attn/c_attn"``).
        Default: :data:`DEFAULT_TARGETS` for the model type.
      seed: seed of ``A``'s initialisation.
    """

    # the model and its layers are referenced, not owned: lora.variables are the adapters only
    _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES | {"model", "_layers", "_originals"}

    def __init__(self, model, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0, targets=None, seed: int = 0):
        super().__init__(name="lora")
        if int(rank) != rank or rank < 1:
            raise ValueError(f"rank must be an integer >= 1, got {rank!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        model_type = getattr(model.config, "model_type", None)
        family = family_of(model)
        if family is not None and family.keras_hub:
            raise ValueError(f"attach_lora adapts Hugging Face (tf-keras) layers; this policy is a KerasHub model "
                             f"({model_type}). Use KerasHub's own adapters before building the agent: "
                             f"lm.backbone.enable_lora(rank={int(rank)}); RLAgent(lm, tokenizer) then trains the adapters "
                             f"(and the adapted projections' biases), with a frozen copy as the KL reference")
        if targets is None:
            if model_type not in DEFAULT_TARGETS:
                raise ValueError(f"no default LoRA targets for model_type {model_type!r}; pass targets=[...] "
                                 f"(projection names such as 'q_proj' or regular expressions over layer paths)")
            targets = DEFAULT_TARGETS[model_type]
        if isinstance(targets, str):
            targets = [targets]
        self.rank, self.alpha, self.dropout = int(rank), float(alpha), float(dropout)
        self.targets = tuple(targets)
        self.scale = self.alpha / self.rank
        self.model = model
        self.paths, self._layers, self._originals = [], [], []
        self.a, self.b = [], []
        init = tf.random.stateless_normal
        seen = set()
        for layer in model.submodules:
            kernel = _kernel(layer) if isinstance(layer, tf.Module) else None
            if kernel is None or id(layer) in seen:
                continue
            path = _layer_path(layer, kernel)
            if not _matches(path, self.targets):
                continue
            seen.add(id(layer))
            fan_in, fan_out = int(kernel.shape[0]), int(kernel.shape[-1])
            i = len(self.paths)
            # A ~ N(0, 1 / fan_in) (Kaiming-like, as peft's kaiming_uniform on A); B = 0: starts as the base
            self.a.append(tf.Variable(init([fan_in, self.rank], [seed, i]) / np.sqrt(fan_in), name=f"lora_a_{i}"))
            self.b.append(tf.Variable(tf.zeros([self.rank, fan_out]), name=f"lora_b_{i}"))
            self.paths.append(path)
            self._layers.append(layer)
        if not self.paths:
            available = sorted({_layer_path(l, _kernel(l)).split("/")[-1] for l in model.submodules
                                if isinstance(l, tf.Module) and _kernel(l) is not None})
            raise ValueError(f"no projection of {type(model).__name__} matches targets {list(self.targets)}; "
                             f"its Dense/Conv1D projections are named {available}")
        self.base_trainable_variables = list(model.trainable_variables)
        for index, layer in enumerate(self._layers):
            self._patch(layer, index)
        model.trainable = False  # the base weights are frozen; only the adapters train

    # ------------------------------------------------------------------ the adapted call
    def _patch(self, layer, index):
        original = layer.call
        self._originals.append(original)
        a, b, lora = self.a[index], self.b[index], self

        def call(inputs, *args, **kwargs):
            out = original(inputs, *args, **kwargs)
            if not adapters_active():
                return out
            copy = _swapped(lora)  # a target network's adapters, read at trace time
            a_, b_ = (copy.a[index], copy.b[index]) if copy is not None else (a, b)
            x = inputs
            if lora.dropout and _training():
                x = tf.nn.dropout(x, rate=lora.dropout)
            flat = tf.reshape(x, [-1, a_.shape[0]])  # (N, in)
            delta = tf.matmul(tf.matmul(flat, tf.cast(a_, flat.dtype)), tf.cast(b_, flat.dtype))  # (N, out)
            delta = tf.reshape(delta * tf.cast(lora.scale, delta.dtype), tf.shape(out))
            return out + tf.cast(delta, out.dtype)

        layer.call = call

    @property
    def trainable_variables(self):
        return [v for pair in zip(self.a, self.b) for v in pair]

    def copy(self, name: str = "adapter_copy") -> "AdapterCopy":
        """A second set of adapters on the same frozen base (see :class:`AdapterCopy`): a target network
        that costs the adapters' bytes, not the model's."""
        return AdapterCopy(self, name=name)

    @contextlib.contextmanager
    def using(self, copy: "AdapterCopy"):
        """Inside this block the adapted layers run ``copy``'s A and B instead of the live ones (a
        trace-time switch, like :func:`adapters_off`: graphs traced inside read ``copy``'s variables)."""
        if copy.lora is not self:
            raise ValueError("this AdapterCopy was made from other adapters; use the LoRA it came from")
        old = getattr(_switch, "copies", {})
        _switch.copies = {**old, id(self): copy}
        try:
            yield
        finally:
            _switch.copies = old

    def deltas(self):
        """The weight update of every adapted projection: ``(alpha / rank) A B`` (in, out), as numpy."""
        return [self.scale * (a.numpy() @ b.numpy()) for a, b in zip(self.a, self.b)]

    # ------------------------------------------------------------------ merging (export)
    @contextlib.contextmanager
    def merged(self):
        """Inside the block the base weights hold ``W + (alpha / rank) A B`` and the adapters are off:
        the model *is* the adapted model as a plain one (what ``export`` saves). Restored after, exactly."""
        kernels = [_kernel(layer) for layer in self._layers]
        saved = [k.numpy() for k in kernels]
        try:
            for k, w, d in zip(kernels, saved, self.deltas()):
                k.assign((w + d.reshape(w.shape)).astype(w.dtype))
            with adapters_off():
                yield self.model
        finally:
            for k, w in zip(kernels, saved):
                k.assign(w)

    def export_metadata(self) -> dict:
        """The ``lora`` entry of an export's metadata: the settings, ``merged`` and why ``train_step`` is
        left out (it would train all the merged weights, not these adapters; see docs/lora.md)."""
        return dict(self.config(), merged=True, train_step="left out: it trains adapters")

    # ------------------------------------------------------------------ save / load
    def config(self) -> dict:
        return {"rank": self.rank, "alpha": self.alpha, "dropout": self.dropout, "targets": list(self.targets),
                "paths": list(self.paths), "model_type": getattr(self.model.config, "model_type", None)}

    def save(self, path: str) -> str:
        """Write the adapters alone (``A``, ``B`` and the settings) to ``path`` (a ``.npz`` file)."""
        arrays = {f"a_{i}": a.numpy() for i, a in enumerate(self.a)}
        arrays.update({f"b_{i}": b.numpy() for i, b in enumerate(self.b)})
        with open(path, "wb") as f:
            np.savez(f, config=np.array(json.dumps(self.config())), **arrays)
        return path

    def load_weights(self, path: str):
        """Assign the adapters saved at ``path`` (same targets and shapes); returns self."""
        saved = read(path)
        if saved["config"]["paths"] != list(self.paths):
            raise ValueError(f"the adapters in {path!r} are on {saved['config']['paths']}, these on {self.paths}; "
                             "attach them with the same targets (agent.load_lora(path) does)")
        for var, value in zip(self.a + self.b, saved["a"] + saved["b"]):
            if tuple(var.shape) != value.shape:
                raise ValueError(f"adapter {var.name} is {tuple(var.shape)} here but {value.shape} in {path!r}")
            var.assign(value)
        return self


def _training() -> bool:
    """Whether the Keras call being run was called with ``training=True``."""
    try:
        from tf_keras.src.engine import base_layer_utils
    except ImportError:  # pragma: no cover
        return False
    training = base_layer_utils.call_context().training
    return bool(training) if isinstance(training, bool) else False


def read(path: str) -> dict:
    """The saved adapters at ``path``: ``{"config": dict, "a": [arrays], "b": [arrays]}``."""
    with open(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()))
    config = json.loads(str(data["config"]))
    n = len(config["paths"])
    return {"config": config, "a": [data[f"a_{i}"] for i in range(n)], "b": [data[f"b_{i}"] for i in range(n)]}


class AdaptersOff:
    """The adapted model with its adapters switched off: the frozen base model, same variables.

    What :meth:`RLAgent.clone_model` returns for a LoRA agent (the KL reference). The agent's
    scoring functions (``log_probs``, ``completion_logits``, ...) accept it as ``model=``; calling
    it runs the model with the adapters left out.
    """

    def __init__(self, model, lora):
        self.model, self.lora = model, lora
        self.config = model.config
        self.trainable = False

    @property
    def variables(self):
        return self.model.variables

    @property
    def trainable_variables(self):
        return []

    def __call__(self, *args, **kwargs):
        with adapters_off():
            return self.model(*args, **kwargs)


class AdapterCopy(tf.Module):
    """A second set of adapters on the same frozen base model: the LoRA target network of Q-learning.

    Holds copies of every ``A`` and ``B`` (not trainable; ``variables`` are these copies only) and, when
    called like a Hugging Face model, runs the shared base model with them in place of the live adapters
    (:meth:`LoRA.using`, a trace-time switch). So a target network costs the adapters' bytes, not a second
    copy of the model's weights. Made by :meth:`LoRA.copy`; :meth:`variable_pairs` pairs its variables with
    the live ones for a sync.
    """

    # the model and the live adapters are referenced, not owned: .variables are this copy's A and B only
    _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES | {"model", "lora", "config"}

    def __init__(self, lora: LoRA, name: str = "adapter_copy"):
        super().__init__(name=name)
        self.lora, self.model, self.config = lora, lora.model, lora.model.config
        self.a = [tf.Variable(a, trainable=False, name=f"{name}_a_{i}") for i, a in enumerate(lora.a)]
        self.b = [tf.Variable(b, trainable=False, name=f"{name}_b_{i}") for i, b in enumerate(lora.b)]
        self.built, self.trainable = True, False

    @property
    def dummy_inputs(self):
        return self.model.dummy_inputs

    def variable_pairs(self):
        """``[(live, copy), ...]`` over every A and B: what a target-network sync assigns."""
        return list(zip(self.lora.a + self.lora.b, self.a + self.b))

    def call(self, *args, **kwargs):
        with self.lora.using(self):
            return self.model(*args, **kwargs)

    __call__ = call


def attach(agent, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0, targets=None, seed: int = 0) -> LoRA:
    """Put LoRA adapters on ``agent``'s model (see :class:`LoRA`); returns them (also ``agent.lora``)."""
    if getattr(agent, "lora", None) is not None:
        raise ValueError("this agent already has LoRA adapters (agent.lora); attach them once")
    lora = LoRA(agent.model, rank=rank, alpha=alpha, dropout=dropout, targets=targets, seed=seed)
    agent.lora = lora
    agent.reset_compiled()  # graphs traced before carry no adapters
    return lora


def load(agent, path: str) -> LoRA:
    """Attach the adapters saved at ``path`` to ``agent``'s model (same base model); returns them."""
    config = read(path)["config"]
    paths = [re.escape(p) for p in config["paths"]]
    lora = attach(agent, rank=config["rank"], alpha=config["alpha"], dropout=config["dropout"], targets=paths)
    return lora.load_weights(path)


__all__ = ["LoRA", "AdaptersOff", "AdapterCopy", "attach", "load", "read", "adapters_off", "adapters_active",
           "DEFAULT_TARGETS"]
