"""pydeck layers of a 3D scene: units, change patches, project, context, raster, relief.

Each builder returns a :class:`Part`: the pydeck layer, its legend entries, the
labels of its tooltip rows (values travel in each datum under ``"t"``) and the
codecs the exporter applies to its data (``"p"`` polygon rings, ``"path"`` line
vertices, ``"c"`` colours → palette).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pydeck as pdk

from territoire_geo.errors import DataError
from territoire_geo.present._style import format_number, rgba, typezone_label
from territoire_geo.present.scene._geo import (
    explode,
    line_paths,
    metric_area_ha,
    polygon_rings,
    to_wgs84,
)
from territoire_geo.present.scene._legend import TEXT, categorical, numeric

__all__ = ["TERRAIN_EXTENSION", "Part", "change_part", "column", "context_part", "project_part",
           "raster_part", "terrain_part", "units_fill_part", "units_part"]

#: deck.gl ``_TerrainExtension``: extruded layers offset by the relief, flat ones draped on it.
TERRAIN_EXTENSION: list[dict[str, str]] = [{"@@type": "_TerrainExtension"}]
_POLY = ("Polygon",)
_HEIGHT_COLUMNS = ("hauteur_m", "hauteur", "height_m", "height", "haut_m", "h")
_NAME_COLUMNS = ("nom", "name", "libelle", "label", "toponyme", "nom_1")
_CHANGE = "#e4003a"
_PROJECT = "#f7f7f7"


@dataclass
class Part:
    """One layer of a scene and what the page needs to explain it."""

    layer: pdk.Layer
    legend: list[dict[str, Any]] = field(default_factory=list)
    tooltip: list[str] | None = None
    codecs: dict[str, str] = field(default_factory=dict)
    tip_title: str = ""


def column(frame: pd.DataFrame, *names: str) -> str | None:
    """First column of ``frame`` matching one of ``names``, case-insensitively."""
    lower = {str(c).lower(): c for c in frame.columns}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _rows(frame: gpd.GeoDataFrame, fields: list[tuple[str, list[str | None]]]) -> list[list[str | None]]:
    """Tooltip values per row of ``frame`` (same order as ``fields``)."""
    return [list(row) for row in zip(*(values for _, values in fields), strict=True)] if fields \
        else [[] for _ in range(len(frame))]


def _polygon_layer(layer_id: str, frame: gpd.GeoDataFrame, extra: dict[str, list[Any]],
                   **props: Any) -> pdk.Layer:
    """PolygonLayer of ``frame`` (already exploded, EPSG:4326); ``extra`` holds one list per datum key."""
    rings = polygon_rings(frame.geometry.values)
    keys = list(extra)
    data = [dict(zip(["p", *keys], values, strict=True)) for values in zip(rings, *extra.values(), strict=True)]
    return pdk.Layer("PolygonLayer", data=data, id=layer_id, get_polygon="p", pickable=True, **props)


def _fields_units(frame: gpd.GeoDataFrame, score: str | None, lang: str) -> list[tuple[str, list[str | None]]]:
    words, fields = TEXT[lang], []
    for key, names in (("zone", ("LIBELLE",)), ("label", ("LIBELONG",))):
        col = column(frame, *names)
        if col is not None:
            fields.append((words[key], [_text(v) for v in frame[col]]))
    col = column(frame, "TYPEZONE")
    if col is not None:
        fields.append((words["type"], [typezone_label(v, lang) or None for v in frame[col]]))
    fields.append((words["area"], [format_number(v, 2, lang, "ha", missing=None) for v in frame["_area_ha"]]))
    if score is not None:
        label = words["score"] if score.lower() == "score" else score
        fields.append((label, [format_number(v, 2, lang, missing=None) for v in frame[score]]))
    col = column(frame, "rank", "rang")
    if col is not None:
        fields.append((words["rank_field"], [format_number(v, 0, lang, missing=None) for v in frame[col]]))
    for col in frame.columns:
        if str(col).lower().startswith("contrib_"):
            name = words["contrib"].format(name=str(col)[8:])
            fields.append((name, [format_number(v, 2, lang, missing=None) for v in frame[col]]))
    col = column(frame, "exclusion")
    if col is not None:
        fields.append((words["exclusion"], [_text(v) for v in frame[col]]))
    return fields


def _unit_colors(frame: gpd.GeoDataFrame, color_by: str | None, score: str | None, colormap: str,
                 lang: str) -> tuple[list[str], list[dict[str, Any]]]:
    by = color_by or column(frame, "TYPEZONE") or score
    if by is None:
        return ["#7f9cc0"] * len(frame), []
    if by not in frame.columns:
        raise DataError(f"color_by column {by!r} not found; columns: {', '.join(map(str, frame.columns))}")
    heading = [{"kind": "heading", "label": TEXT[lang]["zones"] if by.upper() == "TYPEZONE" else by}]
    if pd.api.types.is_numeric_dtype(frame[by]):
        colors, legend = numeric(frame[by], colormap, lang, by)
        return colors, legend
    colors, legend = categorical(frame[by], lang, typezone=by.upper() == "TYPEZONE")
    return colors, heading + legend


def units_part(units: gpd.GeoDataFrame, *, extrude: str | None, color_by: str | None, colormap: str, lang: str,
               tolerance: float, max_height: float, draped: bool) -> tuple[Part, gpd.GeoDataFrame]:
    """Units (zones, parcels…) coloured by ``color_by`` and extruded by ``extrude``.

    Returns the part and the units in EPSG:4326 with ``_height`` (m) and ``_area_ha`` columns.
    """
    frame = units.copy()
    frame["_area_ha"] = metric_area_ha(frame) if column(frame, "area_ha") is None \
        else pd.to_numeric(frame[column(frame, "area_ha")], errors="coerce")
    score = extrude if extrude and extrude in frame.columns else None
    if extrude and score is None:
        raise DataError(f"extrude column {extrude!r} not found; pass extrude=None for flat units "
                        f"(columns: {', '.join(map(str, frame.columns))})")
    values = pd.to_numeric(frame[score], errors="coerce") if score else pd.Series(0.0, index=frame.index)
    if score and not np.isfinite(values).any():
        raise DataError(f"extrude column {score!r} has no numeric value")
    top = float(values.abs().max()) if score else 1.0
    frame["_height"] = (values.clip(lower=0) / (top or 1.0) * max_height).fillna(0.0).round(1)
    excluded = _excluded(frame)
    frame.loc[excluded, "_height"] = 0.0  # excluded land lies flat: its score is not a candidacy
    colors, legend = _unit_colors(frame, color_by, score, colormap, lang)
    frame["_color"] = [rgba(c) for c in colors]
    fields = _fields_units(frame, score, lang)
    frame["_tip"] = _rows(frame, fields)
    frame = to_wgs84(frame, tolerance=tolerance, label="units")
    parts = explode(frame, _POLY)
    props: dict[str, Any] = {"extruded": bool(score), "wireframe": bool(score), "get_fill_color": "c",
                             "get_line_color": [50, 50, 50, 220], "line_width_min_pixels": 1,
                             "auto_highlight": True, "highlight_color": [255, 255, 255, 110]}
    extra: dict[str, list[Any]] = {"c": parts["_color"].tolist(), "t": parts["_tip"].tolist()}
    if score:
        extra["e"] = parts["_height"].tolist()
        props["get_elevation"] = "e"
        legend.append({"kind": "note", "label": TEXT[lang]["height"].format(
            col=score, max=format_number(top, 2, lang, missing=None), metres=format_number(max_height, 0, lang, missing=None))})
        if excluded.any():
            legend.append({"kind": "note", "label": _FLAT[lang].format(n=int(excluded.sum()))})
    else:
        props.update(stroked=True, opacity=0.8)
    if draped:
        props["extensions"] = TERRAIN_EXTENSION
    layer = _polygon_layer("units", parts, extra, **props)
    return Part(layer, legend, [f for f, _ in fields], {"p": "polygon", "c": "palette"}), frame


_FLAT = {"fr": "{n} terrains exclus (A, N, EBC, PPR rouge…) restent à plat ; survolez-les pour le motif",
         "en": "{n} excluded units (A, N, woodland, red risk zone…) lie flat; hover for the reason"}


def _excluded(frame: gpd.GeoDataFrame) -> pd.Series:
    """Units carrying an exclusion reason (scoring output)."""
    if "exclusion" not in frame.columns:
        return pd.Series(False, index=frame.index)
    reason = frame["exclusion"].astype("string").fillna("").str.strip()
    return reason.ne("") & reason.ne("nan")


def units_fill_part(units: Part, *, filled: bool = True) -> Part:
    """The units painted flat on the relief (same data as ``units``, shared in the page); outlines only
    when ``filled`` is false (a draped raster stays visible)."""
    layer = pdk.Layer("PolygonLayer", data="tg:units", id="units-ground", get_polygon="p", get_fill_color="c",
                      extruded=False, stroked=True, filled=filled, get_line_color=[40, 40, 40, 200],
                      line_width_min_pixels=1,
                      pickable=True, auto_highlight=True, highlight_color=[255, 255, 255, 110], opacity=0.9,
                      extensions=TERRAIN_EXTENSION)
    return Part(layer, [], units.tooltip, {}, units.tip_title)


def change_part(change: gpd.GeoDataFrame, units: gpd.GeoDataFrame | None, *, lang: str, tolerance: float,
                max_height: float, draped: bool) -> Part:
    """Change patches in red, standing just above the units they fall in."""
    words = TEXT[lang]
    frame = change.copy()
    frame["_area_ha"] = metric_area_ha(frame)
    frame = to_wgs84(frame, tolerance=tolerance, label="change_patches")
    lift = max(10.0, 0.03 * max_height)
    frame["_height"] = lift
    if units is not None and len(units):
        joined = gpd.sjoin(frame[["geometry"]], units[["_height", "geometry"]], how="left", predicate="intersects")
        frame["_height"] = joined.groupby(level=0)["_height"].max().reindex(frame.index).fillna(0) + lift
    fields = []
    col = column(frame, "change", "changement", "nature", "type")
    if col is not None:
        fields.append((words["change_type"], [_text(v) for v in frame[col]]))
    fields.append((words["area"], [format_number(v, 2, lang, "ha", missing=None) for v in frame["_area_ha"]]))
    for key in ("before", "after"):
        col = column(frame, key, "avant" if key == "before" else "apres")
        if col is not None:
            fields.append((words[key], [_text(v) for v in frame[col]]))
    frame["_tip"] = _rows(frame, fields)
    parts = explode(frame, _POLY)
    props: dict[str, Any] = {"extruded": True, "wireframe": True, "get_fill_color": rgba(_CHANGE, 235),
                             "get_line_color": [120, 0, 20, 255], "get_elevation": "e", "auto_highlight": True}
    if draped:
        props["extensions"] = TERRAIN_EXTENSION
    layer = _polygon_layer("change", parts, {"e": parts["_height"].round(1).tolist(), "t": parts["_tip"].tolist()},
                           **props)
    legend = [{"kind": "swatch", "color": _CHANGE, "label": words["change"]}]
    return Part(layer, legend, [f for f, _ in fields], {"p": "polygon"}, words["change"])


def project_part(project: gpd.GeoDataFrame, *, height: str | None, lang: str, draped: bool) -> Part:
    """Project footprints extruded by their real height (metres)."""
    words = TEXT[lang]
    col = height or column(project, *_HEIGHT_COLUMNS)
    if col is None or col not in project.columns:
        raise DataError(f"project needs a height column in metres (one of {', '.join(_HEIGHT_COLUMNS)}); "
                        f"columns: {', '.join(map(str, project.columns))}")
    frame = project.copy()
    frame["_m2"] = metric_area_ha(frame) * 1e4
    frame = to_wgs84(frame, tolerance=0.0, label="project")
    heights = pd.to_numeric(frame[col], errors="coerce").fillna(0.0).clip(lower=0)
    fields = []
    name = column(frame, *_NAME_COLUMNS)
    if name is not None:
        fields.append((words["name"], [_text(v) for v in frame[name]]))
    usage = column(frame, "usage", "destination", "use")
    if usage is not None:
        fields.append((str(usage), [_text(v) for v in frame[usage]]))
    fields.append((words["height_m"], [format_number(v, 1, lang, "m", missing=None) for v in heights]))
    fields.append((words["area"], [format_number(v, 0, lang, "m²", missing=None) for v in frame["_m2"]]))
    frame["_tip"], frame["_h"] = _rows(frame, fields), heights.round(1)
    parts = explode(frame, _POLY)
    props: dict[str, Any] = {"extruded": True, "wireframe": True, "get_fill_color": rgba(_PROJECT),
                             "get_line_color": [40, 40, 40, 255], "get_elevation": "e", "auto_highlight": True}
    if draped:
        props["extensions"] = TERRAIN_EXTENSION
    layer = _polygon_layer("project", parts, {"e": parts["_h"].tolist(), "t": parts["_tip"].tolist()}, **props)
    legend = [{"kind": "swatch", "color": _PROJECT, "label": words["project_legend"]}]
    return Part(layer, legend, [f for f, _ in fields], {"p": "polygon"}, words["project"])


def context_part(frame: gpd.GeoDataFrame, index: int, *, lang: str, tolerance: float, draped: bool) -> list[Part]:
    """Context layer: polygon outlines and lines as paths, points as dots; named if a name column exists."""
    label = str(frame.attrs.get("title") or TEXT[lang]["context"].format(n=index + 1))
    data = to_wgs84(frame, tolerance=tolerance, label=f"context {label}")
    name = column(data, *_NAME_COLUMNS)
    ext = {"extensions": TERRAIN_EXTENSION} if draped else {}
    parts: list[Part] = []
    lines = explode(data, ("LineString", "Polygon"))
    if len(lines):
        polygonal = bool((lines.geom_type == "Polygon").all())
        color = "#303030" if polygonal else "#5a5a5a"
        paths, names = [], []
        for geom, value in zip(lines.geometry.values, lines[name] if name else [None] * len(lines), strict=True):
            for path in line_paths([geom]):
                paths.append(path)
                names.append([_text(value)])
        data_rows = [{"path": p, "t": n} for p, n in zip(paths, names, strict=True)]
        layer = pdk.Layer("PathLayer", data=data_rows, id=f"context-{index}", get_path="path",
                          get_color=rgba(color, 230), width_units=pdk.types.String("meters"), width_min_pixels=2,
                          get_width=8 if polygonal else 14, pickable=name is not None, **ext)
        parts.append(Part(layer, [{"kind": "line", "color": color, "label": label}],
                          [TEXT[lang]["name"]] if name else None, {"path": "path"}, label))
    points = explode(data, ("Point",))
    if len(points):
        rows = [{"position": [round(g.x, 6), round(g.y, 6)], "t": [_text(v)]}
                for g, v in zip(points.geometry.values, points[name] if name else [None] * len(points), strict=True)]
        layer = pdk.Layer("ScatterplotLayer", data=rows, id=f"context-{index}-points", get_position="position",
                          get_fill_color=[34, 34, 34, 230], get_radius=25, radius_min_pixels=4,
                          pickable=name is not None, **ext)
        parts.append(Part(layer, [{"kind": "swatch", "color": "#222222", "label": label}],
                          [TEXT[lang]["name"]] if name else None, {}, label))
    return parts


def raster_part(url: str, bounds: tuple[float, float, float, float], legend: list[dict[str, Any]], *,
                draped: bool) -> Part:
    """The draped image (``image`` wrapped in ``pdk.types.String``: a bare string would be an expression)."""
    ext = {"extensions": TERRAIN_EXTENSION} if draped else {}
    layer = pdk.Layer("BitmapLayer", id="raster", image=pdk.types.String(url), bounds=list(bounds),
                      opacity=0.85, **ext)
    return Part(layer, legend)


def terrain_part(texture: str, legend: list[dict[str, Any]]) -> Part:
    """Relief mesh: the page builds ``@@#TERRAIN_MESH`` from the grid, lon/lat vertices, z in metres."""
    layer = pdk.Layer("SimpleMeshLayer", id="terrain", data=[{"position": [0, 0, 0]}],
                      mesh=pdk.types.String("@@#TERRAIN_MESH"), texture=pdk.types.String(texture),
                      get_position=[0, 0, 0], get_color=[255, 255, 255], _instanced=False, material=False,
                      coordinate_system=pdk.types.String("@@#COORDINATE_SYSTEM.LNGLAT"),
                      operation=pdk.types.String("terrain+draw"))
    return Part(layer, legend)
