"""The SavedModel folder every export writes (a policy, a choice policy, a reward model): where its
tokenizer and description go, and the one atomic writer (a killed or failed export never leaves a
folder that looks complete). The bottom layer of exporting: it imports nothing of the package's
models or trainers, so every exporter can use it.
"""
from __future__ import annotations

import os

from tf_rl_text._compat import tf
from tf_rl_text.validation import process_alive

PROMPT_SPECS = (tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                tf.TensorSpec([None, None], tf.int32, name="attention_mask"))
"""The (B, P) prompt half of a batch, as every exported function takes it first."""
COMPLETION_SPECS = (tf.TensorSpec([None, None], tf.int32, name="completion_ids"),
                    tf.TensorSpec([None, None], tf.int32, name="completion_mask"))
"""The (B, T) completion half of a batch, as the exported functions take it after the prompt's (B, P)."""

TOKENIZER_DIR = os.path.join("assets", "tokenizer")
METADATA_FILE = os.path.join("assets", "tf_rl_text.json")


class Unsaved:
    """Holds the Keras model outside TF's object tracking (its variables are tracked instead)."""

    def __init__(self, agent):
        self.agent = agent


def check_replaceable(path):
    """An export replaces the whole folder at ``path``: refuse a folder that holds other things."""
    if not os.path.isdir(path):
        return
    entries = sorted(os.listdir(path))
    is_export = os.path.exists(os.path.join(path, METADATA_FILE)) or "saved_model.pb" in entries
    if entries and not is_export:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise FileExistsError(
            f"cannot export to {path!r}: it is a folder holding other files ({shown}) and no export, and an export "
            f"replaces the whole folder; pass a new or empty folder, e.g. {os.path.join(path, 'policy')!r}"
        )


PARTIAL_MARK = ".partial-"
"""Infix of the temporary sibling an export is written into before it is renamed into place."""


def write_atomically(path, write):
    """``write(folder)`` into a temporary sibling of ``path``, then rename it to ``path``.

    A killed or failed write never leaves a folder at ``path`` that looks complete: ``path`` is
    either absent, the previous complete folder, or the new complete one. An existing ``path``
    is replaced (moved aside, the new folder renamed in, the old one removed). A failed write
    removes its temporary folder; a killed one leaves ``.NAME.partial-PID-*`` beside ``path``,
    removed by the next successful write to ``path`` once that process is gone.
    """
    import shutil
    import uuid

    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    prefix = os.path.join(parent, f".{name}{PARTIAL_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp, old = prefix + "-new", None
    os.mkdir(tmp)  # (not tempfile.mkdtemp: the export keeps the umask's permissions, not 0700)
    try:
        write(tmp)
        if os.path.lexists(path):
            old = prefix + "-old"
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException as err:
        if old is not None and not os.path.lexists(path):
            os.rename(old, path)  # the previous export goes back in place
        shutil.rmtree(tmp, ignore_errors=True)
        disk_full = isinstance(err, tf.errors.ResourceExhaustedError) or (
            isinstance(err, tf.errors.OpError) and "no space left" in str(err).lower())
        if disk_full:  # TensorFlow's own error for a full disk: an OSError, as for any other file written
            import errno

            kept = "the previous export at that path is kept" if os.path.lexists(path) else "nothing was written there"
            raise OSError(errno.ENOSPC, f"no space left on the device while exporting to {path} ({first_line(err)}); "
                                        f"{kept}. Free space and export again") from err
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    for entry in os.listdir(parent):  # leftovers of killed writes to this path
        if entry.startswith(f".{name}{PARTIAL_MARK}"):
            pid = entry[len(f".{name}{PARTIAL_MARK}"):].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
                shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    return path


def first_line(err) -> str:
    """The first line of an error's message (at most 200 characters)."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else "no message"


__all__ = ["TOKENIZER_DIR", "METADATA_FILE", "PARTIAL_MARK", "Unsaved", "check_replaceable", "write_atomically",
           "first_line"]
