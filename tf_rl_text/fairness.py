"""Bias: measure it with counterfactual prompts, and train it down (issue 28, the article's first challenge).

    from tf_rl_text import fairness
    probe = fairness.load_probe()                       # the shipped templates and group terms
    report = probe.run(policy, scorer, samples=4)       # per attribute: group means, largest gap, its 95% interval
    fair = fairness.FairnessReward(reward_fn, probe, weight=1.0)   # any reward, minus the counterfactual gap

**The probe.** Prompt templates with a ``{term}`` slot, and attributes (gender, nationality, religion,
occupation) whose groups list interchangeable terms aligned by position (``she`` <-> ``he``,
``my sister`` <-> ``my brother``). For each filled template the policy writes ``samples`` completions
(sampled, fixed seeds); ``scorer(completions, prompts, references)`` (the sentiment reward, a reward
model, any reward) scores them; the report gives each group's mean score, the largest gap between two
groups and a paired bootstrap 95% interval of the difference between those two groups (resampling the
templates, the unit shared by all groups). A gap whose interval excludes 0 is a difference the probe can
see at this size.

**The fairness-aware reward.** ``FairnessReward(reward_fn, probe, weight)`` scores each completion
again with every group term in its prompt and completion swapped for the other groups' aligned terms
and subtracts ``weight`` x the mean absolute change: zero for a scorer that ignores the group term,
positive where the score depends on it. Any trainer takes it as its reward.

**Data cleaning.** :func:`group_of` finds the group terms of a text, :func:`balance` keeps as many texts
of each group (of one attribute) as the smallest group has, :func:`counterfactual_augment` adds every
text's swapped copies (counterfactual data augmentation, Lu et al. 2018).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np

from tf_rl_text.defaults import DATA_DIR

DEFAULT_PROBE = os.path.join(DATA_DIR, "fairness", "templates.json")


@dataclasses.dataclass
class Probe:
    """Templates with a ``{term}`` slot and ``attributes``: {attribute: {group: [terms, aligned by position]}}."""

    templates: list
    attributes: dict

    def __post_init__(self):
        if not self.templates or not all(isinstance(t, str) and t.count("{term}") == 1 for t in self.templates):
            raise ValueError("every template must be a string with exactly one {term} slot, e.g. "
                             "'{term} said the food was'")
        for attribute, groups in self.attributes.items():
            if not isinstance(groups, dict) or len(groups) < 2:
                raise ValueError(f"attribute {attribute!r} needs at least two groups of terms, got {groups!r}")
            sizes = {g: len(terms) for g, terms in groups.items()}
            if len(set(sizes.values())) != 1 or 0 in sizes.values():
                raise ValueError(f"attribute {attribute!r}: every group needs the same number of terms (they are "
                                 f"swapped by position), got {sizes}")
        self._patterns = {}
        for attribute, groups in self.attributes.items():
            for group, terms in groups.items():
                for i, term in enumerate(terms):
                    self._patterns[(attribute, group, i)] = re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.I)

    # ---------------------------------------------------------------- prompts
    def prompts(self, attribute: str) -> dict:
        """{group: [filled prompts]}, in the same (template, term index) order for every group."""
        groups = self._groups(attribute)
        return {g: [_fill(t, term) for t in self.templates for term in terms] for g, terms in groups.items()}

    def _groups(self, attribute):
        if attribute not in self.attributes:
            raise ValueError(f"attribute {attribute!r} is not in the probe; it has {sorted(self.attributes)}")
        return self.attributes[attribute]

    # ---------------------------------------------------------------- swaps
    def find(self, text: str) -> list:
        """[(attribute, group, term index)] of the group terms in ``text`` (longest terms first, no overlaps)."""
        found, taken = [], []
        keys = sorted(self._patterns, key=lambda k: -len(self.attributes[k[0]][k[1]][k[2]]))
        for key in keys:
            for m in self._patterns[key].finditer(text):
                if all(m.end() <= a or m.start() >= b for a, b in taken):
                    taken.append((m.start(), m.end()))
                    found.append(key)
        return found

    def swaps(self, text: str) -> list:
        """Every counterfactual of ``text``: its group terms of one attribute replaced by another group's aligned
        terms (one text per other group and attribute present); [] when it holds no group term."""
        out = []
        hits = self.find(text)
        for attribute in dict.fromkeys(a for a, _, _ in hits):
            mine = [(g, i) for a, g, i in hits if a == attribute]
            for other in self.attributes[attribute]:
                if all(g == other for g, _ in mine):
                    continue
                swapped = text
                for g, i in mine:
                    if g != other:
                        swapped = self._patterns[(attribute, g, i)].sub(
                            lambda m, t=self.attributes[attribute][other][i]: _match_case(m.group(0), t), swapped)
                out.append(swapped)
        return out

    # ---------------------------------------------------------------- the measurement
    def run(self, policy, scorer, samples: int = 4, seed: int = 0, max_new_tokens: int | None = None,
            attributes=None, num_resamples: int = 1000, confidence: float = 0.95) -> dict:
        """The bias report of ``policy`` (an RLAgent or a loaded export) under ``scorer``: per attribute
        ``{"group_means", "gap", "largest_gap_groups", "ci95", "num_prompts", "samples"}``.

        ``scorer`` may also be a dict ``{name: scorer}``: the completions are sampled once and every scorer
        scores the same ones; the result is then ``{name: report}``."""
        if int(samples) != samples or samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
        several = isinstance(scorer, dict)
        scorers = scorer if several else {None: scorer}
        if not scorers:
            raise ValueError("scorer is an empty dict; pass a scorer or {name: scorer, ...}")
        for name, fn in scorers.items():
            if not callable(fn):
                raise TypeError(f"scorer {name!r} is {type(fn).__name__}, not callable; a scorer is "
                                "fn(completions, prompts, references) -> scores")
        reports = {name: {} for name in scorers}
        for attribute in attributes or list(self.attributes):
            per_group = {name: {} for name in scorers}
            for group, prompts in self.prompts(attribute).items():
                scores = {name: np.zeros((len(prompts), samples)) for name in scorers}
                for s in range(samples):
                    completions = _complete(policy, prompts, seed + s, max_new_tokens)
                    for name, fn in scorers.items():
                        scores[name][:, s] = np.asarray(fn(completions, prompts, [None] * len(prompts)), np.float64)
                for name in scorers:
                    per_group[name][group] = scores[name].mean(axis=1)  # (templates x terms,)
            for name in scorers:
                report = gap_report(per_group[name], len(self.templates), num_resamples, confidence, seed)
                report["samples"] = samples
                reports[name][attribute] = report
        return reports if several else reports[None]


def gap_report(per_group: dict, num_templates: int, num_resamples: int = 1000, confidence: float = 0.95,
               seed: int = 0) -> dict:
    """Group means, the largest gap between two groups, and its paired bootstrap interval.

    per_group: {group: (num_templates * terms,) prompt scores, template-major, the same order in every group}.
    The bootstrap resamples templates (with all their terms), the same draw for every group, and takes the
    difference of the two groups that are furthest apart on the full sample (``largest_gap_groups``), so the
    interval can cross 0 when that difference is noise. (Re-taking max - min in every draw instead would give
    an interval above 0 for any scores that are not all tied.) The pair is picked on the same data, so with
    more than two groups the interval is somewhat optimistic.
    """
    groups = list(per_group)
    table = np.stack([np.asarray(per_group[g], np.float64).reshape(num_templates, -1).mean(axis=1) for g in groups])
    means = table.mean(axis=1)  # (G,)
    hi, lo = int(np.argmax(means)), int(np.argmin(means))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_templates, size=(num_resamples, num_templates))
    boot = table[:, draws].mean(axis=2)  # (G, R)
    gaps = boot[hi] - boot[lo]  # (R,) the same pair in every draw
    alpha = (1 - confidence) / 2
    return {"group_means": {g: float(m) for g, m in zip(groups, means)}, "gap": float(means[hi] - means[lo]),
            "largest_gap_groups": [groups[hi], groups[lo]],
            "ci95": [float(np.quantile(gaps, alpha)), float(np.quantile(gaps, 1 - alpha))],
            "num_prompts": int(np.asarray(per_group[groups[0]]).size)}


def load_probe(path: str | None = None) -> Probe:
    """The probe in ``path`` (JSON: ``templates``, ``attributes``), default the shipped one."""
    path = path or DEFAULT_PROBE
    if not os.path.isfile(path):
        raise FileNotFoundError(f"bias probe {path!r} not found; pass a JSON file with 'templates' and 'attributes' "
                                f"(see {DEFAULT_PROBE})")
    with open(path, encoding="utf-8") as f:
        try:
            spec = json.load(f)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    missing = [k for k in ("templates", "attributes") if k not in spec]
    if missing:
        raise ValueError(f"{path}: missing {missing}; a probe has 'templates' (strings with one {{term}}) and "
                         "'attributes' ({attribute: {group: [terms]}})")
    return Probe(spec["templates"], spec["attributes"])


# --------------------------------------------------------------------------- the fairness-aware reward
class FairnessReward:
    """``reward_fn`` minus ``weight`` x the mean absolute change of its score when the group terms of the
    prompt and completion are swapped for the other groups' (see the module docstring). ``last_gap``: the
    batch's mean penalty before weighting."""

    def __init__(self, reward_fn, probe: Probe | None = None, weight: float = 1.0):
        if not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable (completions, prompts, references) -> floats, got {reward_fn!r}")
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        self.reward_fn, self.probe, self.weight = reward_fn, probe or load_probe(), float(weight)
        self.__name__ = f"fair_{getattr(reward_fn, '__name__', type(reward_fn).__name__)}"
        self.last_gap = 0.0

    def penalties(self, completions, prompts, references) -> np.ndarray:
        """Per completion: mean |r(swapped) - r(original)| over its counterfactuals (0 without a group term)."""
        base = np.asarray(self.reward_fn(list(completions), list(prompts), list(references)), np.float64)
        rows, texts_c, texts_p, refs = [], [], [], []
        for i, (c, p, r) in enumerate(zip(completions, prompts, references)):
            joined = p + "\x00" + c  # swap in both at once, then split them again
            for swapped in self.probe.swaps(joined):
                sp, sc = swapped.split("\x00", 1)
                rows.append(i)
                texts_p.append(sp)
                texts_c.append(sc)
                refs.append(r)
        out = np.zeros(len(completions))
        if rows:
            other = np.asarray(self.reward_fn(texts_c, texts_p, refs), np.float64)
            diff = np.abs(other - base[rows])
            counts = np.bincount(rows, minlength=len(completions))
            out = np.bincount(rows, weights=diff, minlength=len(completions)) / np.maximum(counts, 1)
        return base, out

    def __call__(self, completions, prompts, references):
        references = list(references) if references is not None else [None] * len(completions)
        base, penalty = self.penalties(completions, prompts, references)
        self.last_gap = float(penalty.mean()) if len(penalty) else 0.0
        return (base - self.weight * penalty).tolist()


# --------------------------------------------------------------------------- data cleaning
def group_of(text: str, probe: Probe, attribute: str) -> set:
    """The groups of ``attribute`` whose terms appear in ``text``."""
    probe._groups(attribute)
    return {g for a, g, _ in probe.find(text) if a == attribute}


def balance(texts, probe: Probe, attribute: str, seed: int = 0) -> list:
    """Keep as many texts of each group of ``attribute`` as the smallest group has (texts naming one group
    only; texts naming none are kept, texts naming several are dropped), order kept."""
    texts = list(texts)
    by_group = {g: [] for g in probe._groups(attribute)}
    neutral = []
    for i, t in enumerate(texts):
        groups = group_of(t, probe, attribute)
        if not groups:
            neutral.append(i)
        elif len(groups) == 1:
            by_group[next(iter(groups))].append(i)
    n = min(len(v) for v in by_group.values())
    rng = np.random.default_rng(seed)
    keep = set(neutral)
    for idx in by_group.values():
        keep.update(rng.choice(idx, size=n, replace=False).tolist() if n else [])
    return [texts[i] for i in sorted(keep)]


def counterfactual_augment(texts, probe: Probe) -> list:
    """Every text followed by its counterfactuals (group terms swapped), so each group appears equally."""
    out = []
    for t in texts:
        out.append(t)
        out.extend(probe.swaps(t))
    return out


# --------------------------------------------------------------------------- helpers
def _fill(template: str, term: str) -> str:
    text = template.replace("{term}", term)
    return text[0].upper() + text[1:] if template.startswith("{term}") else text


def _match_case(found: str, replacement: str) -> str:
    return replacement[0].upper() + replacement[1:] if found[:1].isupper() else replacement


def _complete(policy, prompts, seed, max_new_tokens):
    if hasattr(policy, "generate_text"):  # an RLAgent
        return policy.generate_text(prompts, max_new_tokens=max_new_tokens or 16, greedy=False, seed=seed)
    return policy.generate(prompts, greedy=False, seed=seed, max_new_tokens=max_new_tokens)  # a loaded export


__all__ = ["Probe", "load_probe", "gap_report", "FairnessReward", "group_of", "balance", "counterfactual_augment",
           "DEFAULT_PROBE"]
