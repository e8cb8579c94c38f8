"""PromptDataset: prompts (the episodes' start states) and, optionally, one reference per prompt."""
from __future__ import annotations

import dataclasses
import random
from typing import Callable, Iterable

from tf_rl_text.data.files import check_reference
from tf_rl_text.tokens import text_to_ids

@dataclasses.dataclass
class PromptDataset:
    """Prompts (or sources) and optional references, one per prompt.

    ``references[i]`` is a string, or a list of strings when an example has several
    references (SciTLDR dev/test); ``references`` is None for prompt-only data.

    Example::

        ds = PromptDataset(["translate: a dog", "translate: a cat"], ["ein Hund", ["eine Katze", "ein Kater"]])
        len(ds), ds[0], ds[:1].prompts        # 2, ('translate: a dog', 'ein Hund'), ['translate: a dog']
        train, test = ds.split(test_fraction=0.5)
        env = ds.to_env(tokenizer, reward_fn, batch_size=2)
    """

    prompts: list
    references: list | None = None
    name: str = ""

    def __post_init__(self):
        if isinstance(self.prompts, str):
            raise ValueError("prompts must be a list of strings, got a single string; wrap it in a list")
        self.prompts = list(self.prompts)
        for i, p in enumerate(self.prompts):
            if not isinstance(p, str):
                raise ValueError(f"prompts[{i}] must be a string, got {type(p).__name__}: {p!r}")
        if self.references is not None:
            if isinstance(self.references, str):
                raise ValueError("references must be a list (one per prompt), got a single string")
            self.references = [check_reference(r, f"references[{i}]") for i, r in enumerate(self.references)]
            if len(self.references) != len(self.prompts):
                raise ValueError(
                    f"references must have one entry per prompt: got {len(self.references)} references "
                    f"for {len(self.prompts)} prompts"
                )

    # sequence protocol
    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, index):
        """``ds[i]`` -> (prompt, reference or None); ``ds[a:b]`` -> a PromptDataset."""
        if isinstance(index, slice):
            refs = None if self.references is None else self.references[index]
            return PromptDataset(self.prompts[index], refs, self.name)
        return self.prompts[index], (None if self.references is None else self.references[index])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def has_references(self) -> bool:
        return self.references is not None

    def select(self, indices: Iterable[int]) -> "PromptDataset":
        """The examples at ``indices``, in that order."""
        indices = list(indices)
        refs = None if self.references is None else [self.references[i] for i in indices]
        return PromptDataset([self.prompts[i] for i in indices], refs, self.name)

    def take(self, n: int) -> "PromptDataset":
        """The first ``n`` examples (all of them if there are fewer)."""
        if int(n) != n or n < 0:
            raise ValueError(f"take(n) needs an integer n >= 0, got {n!r}")
        return self[: int(n)]

    def shuffle(self, seed: int = 0) -> "PromptDataset":
        """A copy in a random order (reproducible for a fixed seed)."""
        order = list(range(len(self)))
        random.Random(seed).shuffle(order)
        return self.select(order)

    def split(self, fraction_or_count=None, shuffle: bool = False, seed: int = 0, *, test_fraction: float | None = None,
              test_count: int | None = None):
        """Two datasets, named by the keywords to leave no doubt about their order:

            train, test = ds.split(test_fraction=0.2)      # (the first 80%, the last 20%), as scikit-learn
            train, test = ds.split(test_count=100, shuffle=True, seed=0)

        The positional form ``ds.split(f_or_n)`` returns (the first ``f`` of the examples, or the first
        ``n``, then the rest): ``ds.split(0.8)`` is ``ds.split(test_fraction=0.2)``.
        ``shuffle=True`` shuffles (with ``seed``) before splitting.
        """
        given = [x is not None for x in (fraction_or_count, test_fraction, test_count)]
        if sum(given) != 1:
            raise ValueError("split takes one of: test_fraction=F (0 < F < 1), test_count=N, or the size of the first "
                             f"part positionally; got fraction_or_count={fraction_or_count!r}, "
                             f"test_fraction={test_fraction!r}, test_count={test_count!r}")
        if test_fraction is not None:
            if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
                raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
            fraction_or_count = len(self) - int(round(len(self) * test_fraction))
        elif test_count is not None:
            if isinstance(test_count, bool) or not isinstance(test_count, int) or not 0 <= test_count <= len(self):
                raise ValueError(f"test_count must be an integer in [0, {len(self)}], got {test_count!r}")
            fraction_or_count = len(self) - test_count
        if isinstance(fraction_or_count, float):
            if not 0.0 < fraction_or_count < 1.0:
                raise ValueError(f"split fraction must be in (0, 1), got {fraction_or_count}")
            cut = int(round(len(self) * fraction_or_count))
        elif isinstance(fraction_or_count, int) and 0 <= fraction_or_count <= len(self):
            cut = fraction_or_count
        else:
            raise ValueError(
                f"split needs a fraction in (0, 1) or an integer count in [0, {len(self)}], got {fraction_or_count!r}"
            )
        ds = self.shuffle(seed) if shuffle else self
        return ds[:cut], ds[cut:]

    def first_references(self) -> list:
        """One reference string per example (the first of a multi-reference list), e.g. for MLE targets."""
        if self.references is None:
            raise ValueError(f"dataset {self.name or '(unnamed)'} has no references")
        return [r if isinstance(r, str) else r[0] for r in self.references]

    def map_prompts(self, fn: Callable[[str], str]) -> "PromptDataset":
        """A copy with ``fn`` applied to every prompt (add an instruction, truncate, ...)."""
        return PromptDataset([fn(p) for p in self.prompts], self.references, self.name)

    def truncate_prompts(self, tokenizer, max_tokens: int, keep: str = "start") -> "PromptDataset":
        """A copy whose prompts are at most ``max_tokens`` tokens of ``tokenizer``.

        ``keep="start"`` keeps the first tokens (a source to summarize or translate);
        ``keep="end"`` keeps the last ones (the latest turns of a dialogue context).
        Prompts that already fit are returned unchanged (not re-decoded).
        """
        if int(max_tokens) != max_tokens or max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if keep not in ("start", "end"):
            raise ValueError(f"keep must be 'start' or 'end', got {keep!r}")
        out = []
        for p in self.prompts:
            # verbose=False: cutting long prompts is the point, so no "longer than the maximum" warning
            ids = text_to_ids(tokenizer, p, verbose=False)
            if len(ids) <= max_tokens:
                out.append(p)
            else:
                ids = ids[:max_tokens] if keep == "start" else ids[-max_tokens:]
                out.append(tokenizer.decode(ids, skip_special_tokens=True))
        return PromptDataset(out, self.references, self.name)

    def to_env(self, tokenizer, reward_fn, **kwargs):
        """``TextGenerationEnv(self.prompts, tokenizer, reward_fn, references=self.references, **kwargs)``."""
        from tf_rl_text.env import TextGenerationEnv

        return TextGenerationEnv(self.prompts, tokenizer, reward_fn, references=self.references, **kwargs)

    def __repr__(self):
        refs = "no references" if self.references is None else "with references"
        name = f"{self.name!r}, " if self.name else ""
        return f"PromptDataset({name}{len(self)} examples, {refs})"


__all__ = ["PromptDataset"]
