"""Tables as UTF-8 CSV that spreadsheets open safely."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from territoire_geo._atomic import atomic_path, ensure_new

__all__ = ["csv_safe", "write_table_csv"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """Neutralise a text cell that a spreadsheet would run as a formula (prefix ``'``)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_table_csv(frame: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a (Geo)DataFrame as UTF-8 CSV (geometry dropped), atomically, formula-safe.

    Text cells starting with ``= + - @`` (or tab / carriage return) are prefixed with
    ``'`` so that spreadsheets show them as text instead of running them.

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    """
    target = ensure_new(path, overwrite=overwrite)
    table = frame.drop(columns=[c for c in ("geometry",) if c in frame.columns])
    table = table.apply(lambda col: col.map(csv_safe) if col.dtype.kind == "O" else col)  # object and str
    with atomic_path(target) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8")
    return target
