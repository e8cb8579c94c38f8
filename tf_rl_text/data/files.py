"""Reading data files: UTF-8 text (gzip too) with errors that name the file and line, and the folder of
the real data sets (``data_dir`` or ``$TF_RL_TEXT_DATA``)."""
from __future__ import annotations

import gzip
import os

from tf_rl_text.validation import DATA_ENV_VAR  # the variable naming the real data's folder, read when no data_dir



class DataFormatError(ValueError):
    """A data file does not have the expected shape (missing field, empty line, misaligned files)."""


def shared_data_dir(data_dir: str | None = None) -> str:
    """The folder holding the real data sets: ``data_dir`` if given, else ``$TF_RL_TEXT_DATA``.

    The package never guesses a folder outside itself (an installed package has no checkout
    around it). With neither given this raises FileNotFoundError saying what to pass; in this
    repository's layout the data lies in ``../shared/data`` next to the checkout.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV_VAR) or None
        source = f"${DATA_ENV_VAR}"
    else:
        source = "data_dir"
    if data_dir is None:
        raise FileNotFoundError(
            f"no data folder given: pass data_dir=\"path/to/data\" (the folder holding multi30k/, scitldr/, "
            f"topical_chat/; in this repository's layout ../shared/data, next to the checkout), or the data set's "
            f"own folder as path=..., or set the environment variable {DATA_ENV_VAR}=path/to/data"
        )
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"data folder not found: {data_dir!r} (from {source}, resolved against the working directory "
            f"{os.getcwd()!r}); pass the folder holding multi30k/, scitldr/, topical_chat/ (this repository "
            f"keeps them in ../shared/data) as data_dir=... or in ${DATA_ENV_VAR}"
        )
    return data_dir


class _Utf8Lines:
    """A UTF-8 text file read line by line (``for line in f``, ``readline``, ``read``), lines ending
    as in the file; bytes that are not UTF-8 raise a DataFormatError naming the line and column."""

    def __init__(self, path, raw):
        self.path, self._raw, self.lineno = path, raw, 0

    def readline(self) -> str:
        line = self._raw.readline()
        if not line:
            return ""
        self.lineno += 1
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFormatError(
                f"{self.path}, line {self.lineno}: not valid UTF-8 (byte 0x{line[e.start]:02x} at byte {e.start + 1} "
                "of the line); re-save the file as UTF-8"
            ) from None

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def read(self) -> str:
        return "".join(self)

    def close(self):
        self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_text(path: str):
    """Open a UTF-8 text file for reading; ``.gz`` files are decompressed transparently.

    Invalid UTF-8 raises :class:`DataFormatError` naming the file and line.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file not found: {path}; check the path (a relative one starts from {os.getcwd()})")
    if os.path.isdir(path):
        raise IsADirectoryError(f"data file {path} is a folder; pass the path of a file in it")
    raw = gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")
    return _Utf8Lines(path, raw)


def jsonl_records(path: str, skip_blank: bool = False):
    """Yield ``(line number, record)`` for each line of a JSONL file (``.gz`` too), every record a JSON object.

    Errors are :class:`DataFormatError` naming the file and line: invalid JSON, a record that is not an
    object, and a blank line (skipped instead with ``skip_blank``).
    """
    import json

    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                if skip_blank:
                    continue
                raise DataFormatError(f"{path}, line {lineno}: empty line; jsonl needs one JSON object per line")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path}, line {lineno}: invalid JSON ({e.msg} at column {e.colno}); "
                                      "each line must be one complete JSON object") from None
            if not isinstance(record, dict):
                raise DataFormatError(f"{path}, line {lineno}: expected a JSON object, got {type(record).__name__}")
            yield lineno, record


def check_limit(limit):
    if limit is not None and (int(limit) != limit or limit < 0):
        raise ValueError(f"limit must be None (everything) or an integer >= 0, got {limit!r}")
    return None if limit is None else int(limit)


def check_reference(ref, where: str):
    """A reference is a non-empty string or a non-empty list of non-empty strings."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, (list, tuple)) and ref and all(isinstance(r, str) for r in ref):
        return list(ref)
    raise DataFormatError(f"{where}: a reference must be a string or a non-empty list of strings, got {ref!r}")


__all__ = ["DATA_ENV_VAR", "DataFormatError", "shared_data_dir", "open_text", "check_limit", "check_reference"]
