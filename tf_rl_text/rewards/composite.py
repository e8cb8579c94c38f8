"""Combining rewards, and keeping their scale steady: :class:`CompositeReward`, :class:`RewardNormalizer`.

Pure NumPy (no TensorFlow): rewards are plain numbers between the environment and the trainer.
"""
from __future__ import annotations

import collections
from typing import Callable, Mapping, Sequence

import numpy as np


class RewardNormalizer:
    """Running mean / standard deviation of rewards, and rewards rescaled by them (optionally clipped).

    ``normalizer(rewards)`` first folds the batch into the running statistics, then returns
    ``(r - mean) / (std + eps)`` (or ``r / (std + eps)`` with ``center=False``), clipped to
    ``[-clip, clip]`` when ``clip`` is set. The statistics over every reward seen so far are
    merged batch by batch with the parallel update of Chan, Golub & LeVeque (1979) -- Welford's
    algorithm for a batch -- so they equal the mean and (population) variance of all rewards
    concatenated, without keeping them. The running-reward scaling of PPO implementations
    (Engstrom et al. 2020, "Implementation Matters in Deep Policy Gradients") and of
    Stable-Baselines3's ``VecNormalize``; with ``normalize=False`` only the clipping applies.

    Example::

        norm = RewardNormalizer(clip=5.0)
        norm([1.0, 2.0, 3.0])        # [-1.22, 0.0, 1.22]: statistics of the first batch
        norm([4.0])                  # uses the mean 2.5 and std 1.118 of all four rewards
        norm.mean, norm.std, norm.count

    Args:
      normalize: rescale by the running statistics (False: clip only).
      center: subtract the running mean (False: divide by the running std only).
      clip: clip the (normalised) rewards to ``[-clip, clip]``; None = no clipping.
      epsilon: added to the std (avoids dividing by 0 while all rewards are equal).
    """

    def __init__(self, normalize: bool = True, center: bool = True, clip: float | None = None, epsilon: float = 1e-8):
        if clip is not None and not clip > 0:
            raise ValueError(f"clip must be > 0 or None, got {clip}")
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.normalize = bool(normalize)
        self.center = bool(center)
        self.clip = None if clip is None else float(clip)
        self.epsilon = float(epsilon)
        self.count = 0
        self.mean = 0.0
        self._m2 = 0.0  # sum of squared deviations from the mean

    def state_dict(self) -> list:
        """The running statistics ``[count, mean, m2]`` (JSON-safe; a trainer's checkpoint carries them)."""
        return [self.count, self.mean, self._m2]

    def load_state_dict(self, state) -> None:
        """Put back what :meth:`state_dict` returned."""
        self.count, self.mean, self._m2 = state

    @property
    def var(self) -> float:
        """Population variance of every reward seen so far (0 before any)."""
        return self._m2 / self.count if self.count else 0.0

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var))

    def update(self, rewards) -> None:
        """Fold a batch into the running statistics (Chan et al.'s parallel combination)."""
        x = np.asarray(rewards, np.float64).reshape(-1)
        if x.size == 0:
            return
        if not np.all(np.isfinite(x)):
            raise ValueError(f"rewards must be finite to normalise them, got {x[~np.isfinite(x)][:3].tolist()}")
        n_b, mean_b = x.size, float(np.mean(x))
        m2_b = float(np.sum((x - mean_b) ** 2))
        n = self.count + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self._m2 += m2_b + delta * delta * self.count * n_b / n
        self.count = n

    def normalize_rewards(self, rewards, update: bool = True) -> np.ndarray:
        """Rescale (and clip) ``rewards``; ``update=False`` uses the statistics without adding the batch."""
        x = np.asarray(rewards, np.float64).reshape(-1)
        if self.normalize:
            if update:
                self.update(x)
            if self.count:
                x = (x - self.mean if self.center else x) / (self.std + self.epsilon)
        if self.clip is not None:
            x = np.clip(x, -self.clip, self.clip)
        return x.astype(np.float32)

    __call__ = normalize_rewards

    def state(self) -> dict:
        return {"count": self.count, "mean": self.mean, "var": self.var}

    def __repr__(self):
        return (f"RewardNormalizer(normalize={self.normalize}, center={self.center}, clip={self.clip}, "
                f"count={self.count}, mean={self.mean:.4g}, std={self.std:.4g})")


def named_functions(functions, empty_message: str, what: str = "reward function") -> list:
    """``[(name, fn)]`` of reward functions given as ``{name: fn}``, a list (named by ``__name__`` or class,
    repeats numbered ``name_2``...) or one function; each must be callable, and there must be one."""
    if callable(functions) and not isinstance(functions, (list, tuple, Mapping)):
        functions = [functions]
    if isinstance(functions, Mapping):
        items = [(str(k), v) for k, v in functions.items()]
    else:
        items, seen = [], collections.Counter()
        for fn in functions:
            name = getattr(fn, "__name__", None) or type(fn).__name__
            seen[name] += 1
            items.append((name if seen[name] == 1 else f"{name}_{seen[name]}", fn))
    if not items:
        raise ValueError(empty_message)
    for name, fn in items:
        if not callable(fn):
            raise ValueError(f"{what} {name!r} must be callable (completions, prompts, references), "
                             f"got {type(fn).__name__}")
    return items


class CompositeReward:
    """A weighted sum of reward functions, with each component's values kept for logging.

        R(x, y) = sum_k w_k * r_k(x, y)          (r_k optionally normalised first)

    Each component is any ``reward_fn(completions, prompts, references) -> list``, one number per
    completion, or None where the component does not score that completion (a format check that does
    not apply): it is left out of that sum, and a completion no component scores gets 0 (TRL's rule
    for GRPO's reward functions; GRPO weighs its reward functions with this class). After
    every call, :attr:`last` holds each component's raw values (NaN for None) and :meth:`stats` their batch
    means (``{"reward/<name>": mean, ...}``); :attr:`history` keeps one stats dict per call,
    and ``log_fn(stats)`` is called with it when given. ``normalize_components=True`` passes each
    component through its own :class:`RewardNormalizer` before weighting, so that signals on
    different scales (a probability and a BLEU score, say) weigh as their weights say.

    Example::

        reward = CompositeReward({"sentiment": ClassifierReward(model, tok, label=1),
                                  "fidelity": SimilarityReward()},
                                 weights={"sentiment": 1.0, "fidelity": 0.5})
        reward(completions, prompts, references)     # 1.0 * sentiment + 0.5 * fidelity
        reward.stats()                               # {"reward/sentiment": ..., "reward/fidelity": ...}

    Args:
      components: ``{name: reward_fn}`` or a list of reward functions (named by their class).
      weights: ``{name: w}`` or a list in component order; default 1.0 each.
      normalize_components: normalise each component with its own running statistics.
      clip: with ``normalize_components``, clip each normalised component to ``[-clip, clip]``.
      log_fn: called with the stats dict after every call (e.g. a TensorBoard writer).
    """

    def __init__(self, components: Mapping[str, Callable] | Sequence[Callable],
                 weights: Mapping[str, float] | Sequence[float] | None = None, normalize_components: bool = False,
                 clip: float | None = None, log_fn: Callable[[dict], None] | None = None):
        items = named_functions(components, "CompositeReward needs at least one component reward function, got none",
                                "component")
        if clip is not None and not normalize_components:
            raise ValueError(f"clip={clip} applies to normalised components; set normalize_components=True "
                             "(or clip the total in the trainer: ReinforceConfig(reward_clip=...))")
        names = [n for n, _ in items]
        if weights is None:
            w = {n: 1.0 for n in names}
        elif isinstance(weights, Mapping):
            extra = sorted(set(weights) - set(names))
            if extra:
                raise ValueError(f"weights name unknown components {extra}; the components are {names}")
            w = {n: float(weights.get(n, 1.0)) for n in names}
        else:
            weights = list(weights)
            if len(weights) != len(names):
                raise ValueError(f"got {len(weights)} weights for {len(names)} components {names}")
            w = {n: float(x) for n, x in zip(names, weights)}
        bad = {n: x for n, x in w.items() if not np.isfinite(x)}
        if bad:
            raise ValueError(f"weights must be finite numbers, got {bad}")
        self.components = dict(items)
        self.weights = w
        self.normalizers = ({n: RewardNormalizer(clip=clip) for n in names} if normalize_components else None)
        self.log_fn = log_fn
        self.last: dict[str, np.ndarray] = {}
        self.history: list[dict] = []
        self.__name__ = "+".join(self.components)  # how the env's reward errors name it

    def __call__(self, completions, prompts=None, references=None):
        n = len(completions)
        total = np.zeros(n, np.float64)
        last = {}
        for name, fn in self.components.items():
            raw = fn(list(completions), list(prompts or [None] * n), list(references or [None] * n))
            raw = list(raw) if raw is not None else None
            if raw is None or len(raw) != n:
                got = "None" if raw is None else f"{len(raw)} values"
                raise ValueError(f"reward function {name!r} returned {got} for {n} completions; it must return one "
                                 "number (or None) per completion")
            try:
                values = np.array([np.nan if v is None else float(v) for v in raw], np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"reward function {name!r} must return numbers or None, got {str(raw)[:80]}") from None
            if np.isinf(values).any():
                raise ValueError(f"reward function {name!r} returned an infinite reward; rewards must be finite "
                                 "numbers (or None to leave a completion unscored)")
            last[name] = values
            scored = ~np.isnan(values)
            if self.normalizers is not None and scored.any():  # running statistics of the scored values only
                values = values.copy()
                values[scored] = self.normalizers[name](values[scored]).astype(np.float64)
            total += self.weights[name] * np.nan_to_num(values, nan=0.0)
        self.last = last
        stats = self.stats()
        stats["reward/total"] = float(np.mean(total)) if n else 0.0
        self.history.append(stats)
        if self.log_fn is not None:
            self.log_fn(stats)
        return [float(x) for x in total]

    def stats(self) -> dict:
        """Batch means of each component's raw values from the last call: ``{"reward/<name>": mean}``."""
        return {f"reward/{k}": float(np.mean(v[~np.isnan(v)])) if (~np.isnan(v)).any() else 0.0
                for k, v in self.last.items()}


__all__ = ["CompositeReward", "RewardNormalizer", "named_functions"]
