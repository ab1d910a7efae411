"""What the scene and the report share: languages, zoning colours and names, number formats.

Both say the same things to the same people (planners, elected officials), so a zone
type has one colour and one name, and ``1 234,5 ha`` is written one way, wherever it
appears.
"""

from __future__ import annotations

import math
import re
from typing import Any

from territoire_geo.errors import ConfigError

__all__ = [
    "LANGS",
    "OKABE_ITO",
    "TYPEZONE_COLORS",
    "TYPEZONE_NAMES",
    "check_lang",
    "format_number",
    "hex_color",
    "rgba",
    "typezone_label",
]

#: Languages of everything shown (French first: the users are French local authorities).
LANGS: tuple[str, ...] = ("fr", "en")

#: Zoning colours close to the Géoportail de l'urbanisme conventions (U red, AU orange, A yellow, N green).
TYPEZONE_COLORS: dict[str, str] = {"U": "#d7301f", "AUc": "#f28e2b", "AUs": "#f9c48d", "A": "#ecd448",
                                   "N": "#4a9a4a"}
#: Names of the CNIG zone types (TYPEZONE), per language.
TYPEZONE_NAMES: dict[str, dict[str, str]] = {
    "fr": {"U": "zone urbaine", "AUc": "à urbaniser (ouverte)", "AUs": "à urbaniser (fermée)",
           "A": "agricole", "N": "naturelle"},
    "en": {"U": "urban", "AUc": "to be urbanised (open)", "AUs": "to be urbanised (closed)",
           "A": "agricultural", "N": "natural"},
}
#: Colour-blind-safe qualitative palette (Okabe & Ito 2008).
OKABE_ITO = ("#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7", "#999999")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def check_lang(lang: str) -> str:
    """``lang`` if supported (``fr``, ``en``).

    Raises
    ------
    ConfigError
        Any other language.
    """
    if lang not in LANGS:
        raise ConfigError(f"lang must be 'fr' or 'en', not {lang!r}")
    return lang


def format_number(value: Any, decimals: int, lang: str, unit: str = "", *, missing: str | None = "—") -> str | None:
    """``1 234,5 ha`` in French (narrow no-break spaces), ``1,234.5 ha`` in English.

    Negative numbers take the typographic minus (``−3,2``) and a value that rounds
    to zero is written without a sign; ``missing`` (``—`` by default) stands for a
    missing or non-finite value.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return missing
    if not math.isfinite(number):
        return missing
    if round(number, decimals) == 0:
        number = 0.0
    text = f"{number:,.{decimals}f}"
    if lang == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    text = text.replace("-", "−")
    return f"{text}\u00a0{unit}" if unit else text


def typezone_label(code: Any, lang: str) -> str:
    """``"AUc — à urbaniser (ouverte)"`` for a TYPEZONE code (the code alone if unknown)."""
    text = "" if code is None or (isinstance(code, float) and math.isnan(code)) else str(code)
    name = TYPEZONE_NAMES[lang].get(text)
    return f"{text} — {name}" if name else text


def hex_color(value: Any) -> str:
    """``#rrggbb`` from a hex string or an RGB(A) sequence of 0–255 ints; ConfigError otherwise."""
    if isinstance(value, str) and _HEX.match(value):
        return value.lower()
    if isinstance(value, (list, tuple)) and len(value) in (3, 4):
        try:
            channels = [int(v) for v in value[:3]]
        except (TypeError, ValueError):
            channels = [-1]
        if all(0 <= c <= 255 for c in channels):
            return "#{:02x}{:02x}{:02x}".format(*channels)
    raise ConfigError(f"not a colour: {value!r} (use '#rrggbb' or [r, g, b])")


def rgba(color: str, alpha: int = 255) -> list[int]:
    """``[r, g, b, a]`` from ``#rrggbb``."""
    return [int(color[i:i + 2], 16) for i in (1, 3, 5)] + [int(alpha)]
