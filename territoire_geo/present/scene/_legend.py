"""Words and legend entries of 3D scenes (French by default, English on request).

Legend entries are plain dicts rendered (escaped) by :mod:`territoire_geo.present.scene`:
``{"kind": "heading"|"swatch"|"line"|"gradient"|"note", "label": str, "color": "#rrggbb",
"colors": [...], "min": str, "max": str}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex

from territoire_geo.errors import ConfigError
from territoire_geo.present._style import OKABE_ITO, TYPEZONE_COLORS, format_number, hex_color, typezone_label

__all__ = ["TEXT", "categorical", "gradient_entry", "normalise_legend", "numeric"]

TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Scène 3D du territoire", "overview": "Vue d'ensemble", "top": "Vue de dessus",
        "project": "Projet", "rank": "N°{rank} — {name}", "zone": "Zone", "label": "Libellé",
        "type": "Type", "area": "Surface", "score": "Score", "rank_field": "Rang",
        "contrib": "Contribution : {name}", "exclusion": "Exclusion", "zones": "Zones",
        "height": "Hauteur des blocs : {col} (max {max} = {metres} m) — ce n'est pas une hauteur de bâti",
        "change": "Changement détecté", "change_type": "Nature", "before": "Avant", "after": "Après",
        "project_legend": "Projet (hauteur réelle des bâtiments)", "height_m": "Hauteur",
        "relief": "Relief : {source}, exagéré ×{exag}", "relief_flat": "Relief : {source} (non drapé)",
        "context": "Contexte {n}", "name": "Nom", "legend": "Légende", "sources": "Sources :",
        "generated": "Généré le {date} avec territoire_geo {version}", "presets": "Vues",
        "help": "Glisser : déplacer · Ctrl + glisser : pivoter · molette : zoomer · survoler : détails",
        "noscript": "Cette scène 3D a besoin de JavaScript et de WebGL.", "other": "autres",
        "basemap": "Fond de carte © contributeurs OpenStreetMap (connexion internet requise)",
        "show": "Afficher", "blocks": "Blocs (score)", "ground": "Zones au sol", "relief_toggle": "Relief",
    },
    "en": {
        "title": "3D territory scene", "overview": "Overview", "top": "Top view", "project": "Project",
        "rank": "No. {rank} — {name}", "zone": "Zone", "label": "Label", "type": "Type", "area": "Area",
        "score": "Score", "rank_field": "Rank", "contrib": "Contribution: {name}", "exclusion": "Excluded",
        "zones": "Zones",
        "height": "Block height: {col} (max {max} = {metres} m) — not a building height",
        "change": "Detected change", "change_type": "Kind", "before": "Before", "after": "After",
        "project_legend": "Project (real building heights)", "height_m": "Height",
        "relief": "Relief: {source}, exaggerated ×{exag}", "relief_flat": "Relief: {source} (not draped)",
        "context": "Context {n}", "name": "Name", "legend": "Legend", "sources": "Sources:",
        "generated": "Generated on {date} with territoire_geo {version}", "presets": "Views",
        "help": "Drag: pan · Ctrl + drag: rotate · wheel: zoom · hover: details",
        "noscript": "This 3D scene needs JavaScript and WebGL.", "other": "others",
        "basemap": "Basemap © OpenStreetMap contributors (needs an internet connection)",
        "show": "Show", "blocks": "Blocks (score)", "ground": "Zones on the ground", "relief_toggle": "Relief",
    },
}

_MAX_CATEGORIES = 12


def categorical(values: pd.Series, lang: str, *, typezone: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """One colour per category (zoning colours for TYPEZONE) and the legend swatches."""
    text = values.astype("string").fillna("—")
    counts = text.value_counts()
    kept = list(counts.index[:_MAX_CATEGORIES])
    if typezone:
        kept = sorted(kept, key=lambda c: list(TYPEZONE_COLORS).index(c) if c in TYPEZONE_COLORS else 99)
    palette: dict[str, str] = {}
    spare = iter(OKABE_ITO * 2)
    for cat in kept:
        palette[cat] = TYPEZONE_COLORS[cat] if typezone and cat in TYPEZONE_COLORS else next(spare)
    grey = "#bbbbbb"
    colors = [palette.get(v, grey) for v in text]
    legend = [{"kind": "swatch", "color": palette[c], "label": typezone_label(c, lang) if typezone else c}
              for c in kept]
    if len(counts) > len(kept):
        legend.append({"kind": "swatch", "color": grey, "label": TEXT[lang]["other"]})
    return colors, legend


def numeric(values: pd.Series, cmap: str, lang: str, label: str, *,
            levels: int = 32) -> tuple[list[str], list[dict[str, Any]]]:
    """Colours of a numeric column on ``levels`` steps of ``cmap`` and a gradient legend."""
    try:
        ramp = colormaps[cmap]
    except KeyError as exc:
        raise ConfigError(f"unknown colormap {cmap!r}; use a matplotlib name such as 'viridis'") from exc
    data = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    finite = data[np.isfinite(data)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = high - low or 1.0
    steps = np.clip(np.rint((data - low) / span * (levels - 1)), 0, levels - 1)
    table = [to_hex(ramp(i / (levels - 1))) for i in range(levels)]
    colors = [table[int(s)] if np.isfinite(d) else "#bbbbbb" for s, d in zip(steps, data, strict=True)]
    legend = [{"kind": "gradient", "label": label, "colors": [table[i] for i in range(0, levels, levels // 8)]
               + [table[-1]], "min": format_number(low, 2, lang, missing=""), "max": format_number(high, 2, lang, missing="")}]
    return colors, legend


def gradient_entry(cmap: str, label: str, low: str, high: str) -> dict[str, Any]:
    """A gradient legend entry for a matplotlib colormap."""
    ramp = colormaps[cmap]
    return {"kind": "gradient", "label": label, "colors": [to_hex(ramp(i / 8)) for i in range(9)],
            "min": low, "max": high}


def normalise_legend(entries: Sequence[Any]) -> list[dict[str, Any]]:
    """User legend entries: dicts as above, or ``(label, colour)`` pairs; colours validated."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        if isinstance(entry, (tuple, list)) and len(entry) == 2:
            entry = {"kind": "swatch", "label": entry[0], "color": entry[1]}
        if not isinstance(entry, dict) or "label" not in entry:
            raise ConfigError(f"legend entries are dicts with a 'label' or (label, colour) pairs, not {entry!r}")
        item = {"kind": str(entry.get("kind", "swatch" if "color" in entry else "note")),
                "label": str(entry["label"])}
        if item["kind"] not in ("heading", "swatch", "line", "gradient", "note"):
            raise ConfigError(f"unknown legend kind {item['kind']!r}")
        if "color" in entry:
            item["color"] = hex_color(entry["color"])
        if "colors" in entry:
            item["colors"] = [hex_color(c) for c in entry["colors"]]
        for key in ("min", "max"):
            if key in entry:
                item[key] = str(entry[key])
        out.append(item)
    return out
