"""Text-encoding detection and repair for DBF-based CNIG layers.

Shapefile and MapInfo attribute text is read with pyogrio's ``encoding="latin1"``:
every byte maps to exactly one code point, so the original bytes can be recovered
losslessly with ``text.encode("latin-1")``. The real encoding is then decided per
layer from the bytes themselves, like the national GPU validator does (it ignores
``.cpg`` files, which often lie):

* valid UTF-8 containing at least one multibyte sequence → UTF-8;
* anything else with non-ASCII bytes → CP1252 (a superset of Latin-1 for text);
* pure ASCII → ``"ascii"`` (nothing to decide).

Double-encoded UTF-8 ("Zone urbanisÃ©e") that survived an earlier wrong conversion is
repaired afterwards by :func:`fix_mojibake`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = [
    "EncodingReport",
    "decide_encoding",
    "fix_mojibake",
    "map_object",
    "normalise_codec_name",
    "read_cpg",
    "recode_frame",
    "repair_mojibake_frame",
]

# A UTF-8 multibyte sequence shown through CP1252/Latin-1: a lead byte (Ã, Â, â…) followed
# by continuation bytes rendered as U+0080-U+00BF or as their CP1252 glyphs (©, ’, €…).
_CONT = "[\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]"
_MOJIBAKE = re.compile(f"[\u00c2-\u00df]{_CONT}|[\u00e0-\u00ef]{_CONT}{{2}}|[\u00f0-\u00f4]{_CONT}{{3}}")

_CODEC_ALIASES = {
    "UTF8": "utf-8",
    "65001": "utf-8",
    "1252": "cp1252",
    "CP1252": "cp1252",
    "WINDOWS1252": "cp1252",
    "ANSI1252": "cp1252",
    "WINDOWSLATIN1": "cp1252",
    "88591": "latin-1",
    "ISO88591": "latin-1",
    "LATIN1": "latin-1",
    "28591": "latin-1",
    "ISO885915": "iso8859-15",
    "885915": "iso8859-15",
    "28605": "iso8859-15",
}


@dataclass(frozen=True)
class EncodingReport:
    """What a layer declared and what its bytes turned out to be.

    Attributes
    ----------
    declared
        Raw content of the ``.cpg`` file (``None`` when absent).
    found
        ``"utf-8"``, ``"cp1252"`` or ``"ascii"``.
    mojibake_fixed
        Number of values repaired by :func:`fix_mojibake` after decoding.
    """

    declared: str | None
    found: str
    mojibake_fixed: int = 0

    @property
    def declared_codec(self) -> str | None:
        """The Python codec the ``.cpg`` names, ``None`` if absent or unknown."""
        return normalise_codec_name(self.declared)

    @property
    def cpg_lied(self) -> bool:
        """True when the ``.cpg`` names a codec family other than the one found."""
        codec = self.declared_codec
        if codec is None or self.found == "ascii":
            return False
        family = "utf-8" if codec == "utf-8" else "cp1252"
        return family != self.found

    @property
    def repaired(self) -> bool:
        """True when a reader trusting the ``.cpg`` (Latin-1 when absent) would have garbled text."""
        if self.mojibake_fixed:
            return True
        if self.found == "ascii":
            return False
        codec = self.declared_codec or "latin-1"
        return ("utf-8" if codec == "utf-8" else "cp1252") != self.found

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable view."""
        return {
            "declared": self.declared,
            "found": self.found,
            "mojibake_fixed": self.mojibake_fixed,
            "cpg_lied": self.cpg_lied,
        }


def normalise_codec_name(name: str | None) -> str | None:
    """Map a ``.cpg``/metadata charset name to a Python codec, or ``None``."""
    if not name:
        return None
    key = re.sub(r"[^A-Z0-9]", "", name.strip().upper())
    return _CODEC_ALIASES.get(key)


def read_cpg(path: str | Path | None) -> str | None:
    """Return the stripped content of a ``.cpg`` next to ``path`` (any case), or ``None``."""
    if path is None:
        return None
    path = Path(path)
    for suffix in (".cpg", ".CPG", ".Cpg"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate.read_bytes().decode("ascii", "replace").strip() or None
    return None


def _raw_bytes(values: Iterable[str]) -> bytes:
    """Concatenate the latin-1 byte view of text values (NUL-separated)."""
    chunks = []
    for value in values:
        try:
            chunks.append(value.encode("latin-1"))
        except UnicodeEncodeError:  # already decoded text, not a byte view
            chunks.append(value.encode("utf-8"))
    return b"\x00".join(chunks)


def decide_encoding(values: Iterable[str]) -> str:
    """Decide the encoding of latin-1-decoded text values.

    Parameters
    ----------
    values
        Strings obtained by decoding the raw bytes as Latin-1.

    Returns
    -------
    str
        ``"ascii"``, ``"utf-8"`` or ``"cp1252"``.
    """
    raw = _raw_bytes(values)
    if raw.isascii():
        return "ascii"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _decode_cp1252(raw: bytes) -> str:
    """CP1252 decode, falling back to Latin-1 for its five undefined bytes."""
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return "".join(
            ch.decode("cp1252", "ignore") or ch.decode("latin-1")
            for ch in (raw[i : i + 1] for i in range(len(raw)))
        )


def _recode(value: object, codec: str) -> object:
    """Re-decode one latin-1 view string with ``codec``; leave non-strings untouched."""
    if not isinstance(value, str) or value.isascii():
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    if codec == "utf-8":
        return raw.decode("utf-8", "replace")
    return _decode_cp1252(raw)


def _text_columns(frame: pd.DataFrame) -> list[str]:
    geometry = getattr(frame, "_geometry_column_name", None)
    return [
        c
        for c in frame.columns
        if c != geometry
        and (pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c]))
    ]


def map_object(series: pd.Series, func) -> pd.Series:
    """Element-wise map that keeps ``object`` dtype (and ``None`` for missing values)."""
    return pd.Series([func(v) for v in series.astype(object)], index=series.index, dtype=object)


def recode_frame(frame: pd.DataFrame, declared: str | None = None) -> tuple[pd.DataFrame, EncodingReport]:
    """Decode every text column of a latin-1-read frame with the detected encoding.

    Parameters
    ----------
    frame
        Frame read with ``encoding="latin1"``.
    declared
        Content of the layer's ``.cpg`` (recorded, not trusted).

    Returns
    -------
    (DataFrame, EncodingReport)
        A copy with corrected text, and what was found.
    """
    columns = _text_columns(frame)
    values = (v for c in columns for v in frame[c] if isinstance(v, str))
    found = decide_encoding(values)
    out = frame.copy()
    if found != "ascii":
        for column in columns:
            out[column] = map_object(out[column], lambda v: _recode(v, found))
    out, fixed = repair_mojibake_frame(out)
    return out, EncodingReport(declared=declared, found=found, mojibake_fixed=fixed)


def fix_mojibake(text: object) -> object:
    """Repair UTF-8 text that was decoded as CP1252/Latin-1 once or twice.

    ``"Zone urbanisÃ©e"`` becomes ``"Zone urbanisée"``. Each suspicious sequence is
    repaired on its own, only when its bytes are valid UTF-8 giving Latin text, so
    clean text, mixed text and non-strings are safe.

    Parameters
    ----------
    text
        Any value; only strings are inspected.

    Returns
    -------
    object
        The repaired string, or ``text`` itself.
    """
    if not isinstance(text, str) or text.isascii():
        return text
    current = text
    for _ in range(3):  # double- and triple-encoded text exists in the wild
        repaired = _MOJIBAKE.sub(_undo_match, current)
        if repaired == current:
            break
        current = repaired
    return current


def _plausible(text: str) -> bool:
    """True when every character is Latin (≤ U+017F) or common punctuation: French text."""
    return all(ord(c) <= 0x17F or 0x2000 <= ord(c) <= 0x206F or c in "€™" for c in text)


def _undo_match(match: re.Match[str]) -> str:
    """Decode one mojibake sequence back to its character, or leave it as is."""
    sequence = match.group(0)
    for codec in ("cp1252", "latin-1"):
        try:
            repaired = sequence.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        return repaired if _plausible(repaired) else sequence
    return sequence


def repair_mojibake_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Apply :func:`fix_mojibake` to every text column; return the copy and the count."""
    out = frame.copy()
    total = 0
    for column in _text_columns(frame):
        fixed = map_object(out[column], fix_mojibake)
        changed = sum(
            1 for old, new in zip(out[column], fixed, strict=True) if isinstance(old, str) and old != new
        )
        if changed:
            out[column] = fixed
            total += changed
    return out, total
