"""Generic loaders: jsonl, csv / tsv and aligned text files -> PromptDataset (each takes ``limit``)."""
from __future__ import annotations

import csv
import os

from tf_rl_text.data.dataset import PromptDataset
from tf_rl_text.data.files import DataFormatError, check_limit, check_reference, jsonl_records, open_text

def get_field(record: dict, field: str, path: str, lineno: int):
    if field not in record:
        raise DataFormatError(
            f"{path}, line {lineno}: field {field!r} not found; fields present: {sorted(record)} (name the field "
            "that holds the text with prompt_field= / reference_field=)"
        )
    return record[field]


def text_field(record, field, path, lineno) -> str:
    value = get_field(record, field, path, lineno)
    if not isinstance(value, str):
        raise DataFormatError(f"{path}, line {lineno}: field {field!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataFormatError(f"{path}, line {lineno}: field {field!r} is empty")
    return value


def load_jsonl(path: str, prompt_field: str = "prompt", reference_field: str | None = None,
               limit: int | None = None, prefix: str = "") -> PromptDataset:
    """One JSON object a line -> PromptDataset.

    Args:
      path: a ``.jsonl`` file (``.jsonl.gz`` too).
      prompt_field: the field holding the prompt / source text (a string).
      reference_field: the field holding the reference: a string or a list of strings; None = no references.
      limit: keep the first ``limit`` examples.
      prefix: prepended to every prompt (an instruction such as ``"summarize: "``).

    Raises DataFormatError naming the file and line for invalid JSON, a blank line, a record
    that is not an object, a missing field (listing the fields present) or an empty value.
    """
    limit = check_limit(limit)
    prompts, refs = [], []
    for lineno, record in jsonl_records(path):
        if limit is not None and len(prompts) >= limit:
            break
        prompts.append(prefix + text_field(record, prompt_field, path, lineno))
        if reference_field is not None:
            refs.append(check_reference(get_field(record, reference_field, path, lineno), f"{path}, line {lineno}"))
    return PromptDataset(prompts, refs if reference_field is not None else None, os.path.basename(path))


def load_csv(path: str, prompt_field="prompt", reference_field=None, delimiter: str | None = None,
             header: bool = True, limit: int | None = None, prefix: str = "") -> PromptDataset:
    """A csv / tsv file -> PromptDataset.

    Args:
      path: the file (``.gz`` too). ``delimiter`` defaults to a tab for ``.tsv`` / ``.tsv.gz``
        and a comma otherwise.
      prompt_field, reference_field: column names (with ``header=True``) or 0-based column
        indices (either way). ``reference_field=None``: no references.
      header: whether the first row names the columns.
      limit: keep the first ``limit`` examples. prefix: prepended to every prompt.

    Raises DataFormatError naming the file, the line and the columns present for a missing
    column, a short row or an empty prompt / reference.
    """
    limit = check_limit(limit)
    if delimiter is None:
        delimiter = "\t" if str(path).endswith((".tsv", ".tsv.gz")) else ","
    prompts, refs = [], []
    with open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        columns = None
        if header:
            try:
                columns = next(reader)
            except StopIteration:
                raise DataFormatError(f"{path}: the file is empty; expected a header row") from None

        def index_of(field, role):
            if field is None:
                return None
            if isinstance(field, int):
                return field
            if columns is None:
                raise ValueError(f"{role}={field!r} is a column name but header=False; pass a column index instead")
            if field not in columns:
                raise DataFormatError(f"{path}, line 1: column {field!r} not found; columns present: {columns}")
            return columns.index(field)

        p_idx, r_idx = index_of(prompt_field, "prompt_field"), index_of(reference_field, "reference_field")
        for row in reader:
            if limit is not None and len(prompts) >= limit:
                break
            lineno = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                raise DataFormatError(f"{path}, line {lineno}: empty line")
            if columns is not None and len(row) > len(columns):
                raise DataFormatError(
                    f"{path}, line {lineno}: {len(row)} fields but the header names {len(columns)} columns {columns}; "
                    f"quote values that contain the delimiter {delimiter!r}"
                )
            for idx, field in ((p_idx, prompt_field), (r_idx, reference_field)):
                if idx is not None and idx >= len(row):
                    raise DataFormatError(
                        f"{path}, line {lineno}: column {field!r} missing; the row has {len(row)} "
                        f"field(s){f' for columns {columns}' if columns else ''}"
                        f"{'' if delimiter != ',' else ' (is it a .tsv? pass delimiter=chr(9))'}"
                    )
                if idx is not None and not row[idx].strip():
                    raise DataFormatError(f"{path}, line {lineno}: column {field!r} is empty")
            prompts.append(prefix + row[p_idx])
            if r_idx is not None:
                refs.append(row[r_idx])
    return PromptDataset(prompts, refs if r_idx is not None else None, os.path.basename(path))


def load_parallel(source_path: str, target_path: str | None = None, limit: int | None = None,
                  prefix: str = "", strip: bool = True) -> PromptDataset:
    """Aligned text files, one example a line (``train.en`` -> ``train.de``; ``.gz`` too).

    Line i of ``source_path`` is prompt i (with ``prefix`` prepended) and line i of
    ``target_path`` its reference. ``target_path=None`` loads prompts only.

    Raises DataFormatError for an empty line (naming file and line) and for files of different
    lengths (giving both line counts). With ``limit``, only the first ``limit`` lines of each file
    are read, so a length mismatch after them is not seen.
    """
    limit = check_limit(limit)
    prompts, refs = [], []
    src = open_text(source_path)
    tgt = open_text(target_path) if target_path is not None else None
    try:
        lineno = 0
        while limit is None or lineno < limit:
            s = src.readline()
            t = tgt.readline() if tgt is not None else None
            if not s and (tgt is None or not t):
                break
            lineno += 1
            if tgt is not None and (not s or not t):  # one file ended first: count the other to report both
                if s:
                    n_src, n_tgt, short = lineno + sum(1 for _ in src), lineno - 1, target_path
                else:
                    n_src, n_tgt, short = lineno - 1, lineno + sum(1 for _ in tgt), source_path
                raise DataFormatError(
                    f"parallel files are not aligned: {source_path} has {n_src} lines but {target_path} has "
                    f"{n_tgt}; {short} ends after line {lineno - 1}. Line i of one file must translate line i of "
                    "the other: remove or add the lines that break the alignment"
                )
            for path, text in ((source_path, s), (target_path, t)):
                if text is not None and not text.strip():
                    raise DataFormatError(f"{path}, line {lineno}: empty line; every line must hold one sentence")
            prompts.append(prefix + (s.strip() if strip else s.rstrip("\r\n")))
            if tgt is not None:
                refs.append(t.strip() if strip else t.rstrip("\r\n"))
    finally:
        src.close()
        if tgt is not None:
            tgt.close()
    return PromptDataset(prompts, refs if tgt is not None else None, os.path.basename(source_path))


__all__ = ["load_jsonl", "load_csv", "load_parallel"]
