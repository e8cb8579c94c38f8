"""Input checks shared by the env, the agent, the loaded policy and export: each error names the
bad value and what to do (DESIGN.md rule 5). Every case is listed in docs/errors.md.

    check_prompts(["the movie was", "  "])   # ValueError: prompts[1] is empty or whitespace only ('  ') ...
    check_writable_folder("/etc/passwd/run")  # NotADirectoryError: ... '/etc/passwd' is a file, not a folder ...
    check(lr > 0, "learning_rate", "> 0", lr)  # ValueError: learning_rate must be > 0, got -1 (the config checks)
"""
from __future__ import annotations

import os

__all__ = ["check", "is_int_at_least", "resolve_alias", "check_prompts", "check_writable_folder", "DATA_ENV_VAR", "ConfigError"]


DATA_ENV_VAR = "TF_RL_TEXT_DATA"
"""The environment variable naming the folder that holds the real data sets (``multi30k/``, ``scitldr/``,
``topical_chat/``, ``sentiment/``): the loaders read it when no ``data_dir`` is passed, configs as ``$TF_RL_TEXT_DATA``."""


class ConfigError(ValueError):
    """A config mistake, as one line that names the field, the value and the file (raised by the config
    loader, the reward registry and the run builder)."""


def check(ok: bool, name: str, rule: str, value):
    """The one validation helper: ``ValueError(f"{name} must be {rule}, got {value!r}")`` unless ``ok``."""
    if not ok:
        shown = repr(value) if isinstance(value, str) else value
        raise ValueError(f"{name} must be {rule}, got {shown}")


def is_int_at_least(value, low) -> bool:
    try:
        return int(value) == value and value >= low
    except (TypeError, ValueError):
        return False


def resolve_alias(config, name: str, alias: str, default) -> None:
    """One concept, one name: ``config.<name>`` is the library's, ``config.<alias>`` another library's spelling
    of it (TRL's ``beta`` for ``kl_coef``), accepted on input. Given the alias, ``name`` takes its value (an
    error if both are given and differ); afterwards both hold the same value."""
    value, other = getattr(config, name), getattr(config, alias)
    if other is not None and value != default and value != other:
        raise ValueError(f"{name}={value!r} and {alias}={other!r} (another name for {name}) disagree; give one")
    if other is not None:
        setattr(config, name, other)
    setattr(config, alias, getattr(config, name))


def check_prompts(prompts, what: str = "prompts") -> list:
    """``prompts`` as a list of non-blank strings, or a ValueError naming the first bad entry.

    A single string is refused (wrap it in a list), as are non-strings and prompts that are empty
    or whitespace only (a causal LM then conditions on padding alone: its output is meaningless).
    An empty list is returned as is; callers decide whether that is an error.
    """
    if isinstance(prompts, (str, bytes)):
        kind = "string" if isinstance(prompts, str) else "bytes object"
        raise ValueError(f"{what} must be a list of strings, got a single {kind}; wrap it in a list")
    try:
        prompts = list(prompts)
    except TypeError:
        raise ValueError(f"{what} must be a list of strings, got {type(prompts).__name__}: {prompts!r}") from None
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"{what}[{i}] must be a string, got {type(p).__name__}: {p!r}; pass text, not token ids")
        if not p.strip():
            raise ValueError(f"{what}[{i}] is empty or whitespace only ({p!r}); every prompt needs some text to "
                             "condition on: drop it or fill it in")
    return prompts


def check_writable_folder(path: str, what: str = "output folder") -> str:
    """Fail now, with a clear error, if ``path`` cannot become a folder this process can write.

    Checks the nearest existing ancestor (``path`` itself if it exists): it must be a folder, and
    writable. Returns ``path``. Running out of disk space cannot be checked ahead; writers guard
    against it by writing to a temporary sibling and renaming (see ``export.export_policy``).
    """
    path = os.fspath(path)
    if not path:
        raise ValueError(f"the {what} path is empty; pass a folder path")
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        if probe == os.path.abspath(path):
            raise NotADirectoryError(f"cannot write the {what} to {path!r}: it is a file, not a folder; "
                                     "pass a folder path (or remove the file)")
        raise NotADirectoryError(f"cannot write the {what} to {path!r}: {probe!r} is a file, not a folder; "
                                 "choose a path under a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write the {what} to {path!r}: {probe!r} is not writable by this user; "
                              "choose a writable folder or fix its permissions")
    return path


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a lock or partial file of a dead one is stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
