"""Camera presets of a scene: overview, top view, project, and one per top-ranked unit.

A preset is ``{"id", "label", "bounds": [w, s, e, n], "pitch", "bearing", "z", "hide"}``:
the page fits ``bounds`` to the window, looks at height ``z`` (metres: relief under the
centre plus half the block there) and hides the layers listed in ``hide``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import pandas as pd

from territoire_geo.present.scene._geo import WGS84
from territoire_geo.present.scene._layers import column
from territoire_geo.present.scene._legend import TEXT

__all__ = ["ground", "padded", "presets"]


def padded(bounds: Sequence[float], min_span_m: float) -> list[float]:
    """``bounds`` grown around its centre to at least ``min_span_m`` metres a side."""
    west, south, east, north = bounds
    cx, cy = (west + east) / 2, (south + north) / 2
    half_x = max(east - west, min_span_m / (111_320 * math.cos(math.radians(cy)))) / 2
    half_y = max(north - south, min_span_m / 110_540) / 2
    return [round(cx - half_x, 6), round(cy - half_y, 6), round(cx + half_x, 6), round(cy + half_y, 6)]


def ground(grid: dict[str, Any] | None, lon: float, lat: float) -> float:
    """Drawn height (m, exaggerated, above the lowest point) of the relief at ``lon, lat``; 0 without relief."""
    if not grid:
        return 0.0
    i = min(max(round((lon - grid["x0"]) / grid["dx"]), 0), grid["w"] - 1)
    j = min(max(round((lat - grid["y0"]) / grid["dy"]), 0), grid["h"] - 1)
    return round(grid["z"][j * grid["w"] + i] * grid["scale"] * grid["exag"], 1)


def _centre(bounds: Sequence[float]) -> tuple[float, float]:
    return (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2


def presets(bounds: Sequence[float], units: gpd.GeoDataFrame | None, project: gpd.GeoDataFrame | None,
            grid: dict[str, Any] | None, lang: str, ranked: int) -> list[dict[str, Any]]:
    """The presets of a scene, overview first."""
    words = TEXT[lang]
    middle = 0.0 if not grid else round((grid["zmax"] - grid["zmin"]) * grid["exag"] / 3, 1)
    out = [{"id": "overview", "label": words["overview"], "bounds": list(bounds), "pitch": 50, "bearing": -20,
            "z": middle},
           {"id": "top", "label": words["top"], "bounds": list(bounds), "pitch": 0, "bearing": 0, "z": middle}]
    if project is not None and len(project):
        box = padded(project.to_crs(WGS84).total_bounds, 300)
        out.append({"id": "project", "label": words["project"], "pitch": 55, "bearing": -30, "bounds": box,
                    "z": ground(grid, *_centre(box)), "hide": ["units", "change"]})
    rank = column(units, "rank", "rang") if units is not None else None
    if rank is None or ranked <= 0:
        return out
    name = column(units, "LIBELLE", "nom", "name")
    order = units.assign(_r=pd.to_numeric(units[rank], errors="coerce")).dropna(subset=["_r"])
    for _, row in order.sort_values("_r").head(ranked).iterrows():
        label = words["rank"].format(rank=int(row["_r"]), name=row[name] if name else "").rstrip(" —")
        block = float(row.get("_height", 0.0) or 0.0)
        box = padded(row.geometry.bounds, max(600.0, 3 * block))
        out.append({"id": f"rank-{int(row['_r'])}", "label": label, "pitch": 50, "bearing": -25, "bounds": box,
                    "z": round(ground(grid, *_centre(box)) + block / 2, 1)})
    return out
