"""3D scenes for elected officials: build with pydeck, export ONE offline HTML file, snapshot a PNG.

:func:`build` turns units (zones, parcels) with a score, change patches, a draped raster
(NDVI, change classes), a DEM (relief mesh), project footprints and context layers into a
:class:`SceneDeck` — a ``pydeck.Deck`` that also carries the legend, tooltips and camera
presets. :func:`export` writes a self-contained page: no external script, style, font or
tile (unless ``basemap=True``), every data value escaped, the deck.gl bundle inlined from
an installed package (:func:`ensure_bundle`). :func:`snapshot` renders it in headless
Chromium. :func:`scene_from_files` does all three from file paths (used by the CLI).

Example
-------
>>> deck = build(zones, extrude="score", dem=dem, change_patches=patches)  # doctest: +SKIP
>>> export(deck, "scene.html", title="Réserves foncières — Aigues-Mortes")  # doctest: +SKIP
>>> snapshot("scene.html", "scene.png")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pydeck as pdk
import rasterio

from territoire_geo._atomic import ensure_new, write_bytes
from territoire_geo.errors import ConfigError, DataError, ExportError
from territoire_geo.present._style import check_lang, format_number
from territoire_geo.present.scene._browser import Browser, file_url, find_chromium
from territoire_geo.present.scene._deck_bundle import (
    DECKGL_VERSION,
    INSTALL_COMMAND,
    BundleKind,
    DeckBundle,
    ensure_bundle,
)
from territoire_geo.present.scene._files import read_raster, read_vector
from territoire_geo.present.scene._geo import auto_tolerance, bounds_diag_m, scene_bounds
from territoire_geo.present.scene._html import encode_layers, render_page, write_page
from territoire_geo.present.scene._layers import (
    Part,
    change_part,
    context_part,
    project_part,
    raster_part,
    terrain_part,
    units_fill_part,
    units_part,
)
from territoire_geo.present.scene._legend import TEXT, normalise_legend
from territoire_geo.present.scene._presets import presets as make_presets
from territoire_geo.present.scene._raster import drape, terrain

__all__ = ["DECKGL_VERSION", "INSTALL_COMMAND", "DeckBundle", "SceneDeck", "SceneInfo", "build", "ensure_bundle",
           "export", "scene_from_files", "snapshot"]


@dataclass
class SceneInfo:
    """What the page needs besides the deck.gl layers (set by :func:`build`)."""

    title: str
    lang: str = "fr"
    legend: list[dict[str, Any]] = field(default_factory=list)
    presets: list[dict[str, Any]] = field(default_factory=list)
    initial: int = 0
    tooltips: dict[str, dict[str, Any]] = field(default_factory=dict)
    codecs: dict[str, dict[str, str]] = field(default_factory=dict)
    terrain: dict[str, Any] | None = None
    source_line: str = ""
    toggles: list[dict[str, Any]] = field(default_factory=list)


class SceneDeck(pdk.Deck):
    """A ``pydeck.Deck`` carrying its :class:`SceneInfo` (in a slot, so ``to_json()`` ignores it)."""

    __slots__ = ("scene_info",)


# -- presets ---------------------------------------------------------------------------------
def _view_state(bounds: Sequence[float], pitch: float, bearing: float) -> pdk.ViewState:
    west, south, east, north = bounds
    span = max(east - west, (north - south) * 1.4, 1e-6)
    zoom = math.log2(360 / span * 1200 / 512) - 0.4
    return pdk.ViewState(longitude=(west + east) / 2, latitude=(south + north) / 2, zoom=round(zoom, 2),
                         pitch=pitch, bearing=bearing)


# -- build -----------------------------------------------------------------------------------
def _source_line(*items: Any) -> str:
    sources = [str(getattr(i, "attrs", {}).get("source", "")).strip() for i in items if i is not None]
    return " · ".join(dict.fromkeys(s for s in sources if s))


def _raster_bounds(*arrays: Any) -> tuple[float, float, float, float] | None:
    for data in arrays:
        if data is not None and hasattr(data, "rio") and data.rio.crs is not None:
            return tuple(data.rio.transform_bounds("EPSG:4326"))  # type: ignore[return-value]
    return None


def build(units: gpd.GeoDataFrame | None = None, *, extrude: str | None = "score", color_by: str | None = None,
          colormap: str = "viridis", change_patches: gpd.GeoDataFrame | None = None, raster: Any = None,
          dem: Any = None, project: gpd.GeoDataFrame | None = None,
          context: Sequence[gpd.GeoDataFrame] | None = None, lang: str = "fr", title: str | None = None,
          camera: str = "overview", exaggeration: float | None = None, simplify: float | None = None,
          raster_colormap: str | None = None, project_height: str | None = None, ranked: int = 3,
          source_line: str | None = None) -> SceneDeck:
    """Build a 3D scene of a territory.

    Parameters
    ----------
    units
        Zones or parcels (any CRS). Tooltips show LIBELLE, LIBELONG, TYPEZONE, area (ha),
        the ``extrude`` column, ``rank``, ``contrib_<criterion>`` columns and ``exclusion``.
    extrude
        Numeric column giving block heights (proportional, max = 6 % of the scene
        diagonal); None for flat, draped units.
    color_by
        Column colouring the units; default TYPEZONE if present, else ``extrude``.
    colormap
        matplotlib colormap for a numeric ``color_by``.
    change_patches
        Polygons of detected change, drawn in red above the units.
    raster
        2-D DataArray with a CRS (NDVI, change classes…), draped as an image.
    dem
        2-D elevation DataArray with a CRS: relief mesh, exaggerated ``exaggeration`` times
        (default: so the relief spans ~8 % of the scene, 1–5×).
    project
        Footprints with a height column in metres (``project_height`` or hauteur_m, height…).
    context
        GeoDataFrames drawn as outlines, lines or dots (title from ``frame.attrs["title"]``).
    lang
        ``"fr"`` (default) or ``"en"``.
    title
        Page title.
    camera
        Initial preset: ``overview``, ``top``, ``project`` or ``rank-<n>``.
    simplify
        Simplification tolerance in metres (default: 1/10 000 of the scene, 0.5–25 m).
    ranked
        Number of top-ranked units (``rank`` column) that get a camera preset.
    source_line
        Provenance line; default from the inputs' ``attrs["source"]``.

    Returns
    -------
    SceneDeck

    Raises
    ------
    DataError
        Missing CRS, missing column, nothing to draw, rasters outside the scene.
    ConfigError
        Unknown language, colormap or camera preset.
    """
    lang = check_lang(lang)
    frames = [units, change_patches, project, *(context or [])]
    bounds = scene_bounds(frames) or _raster_bounds(dem, raster)
    if bounds is None:
        raise DataError("nothing to draw: give units, change_patches, project, context, raster or dem")
    diag = bounds_diag_m(bounds)
    tolerance = auto_tolerance(diag) if simplify is None else float(simplify)
    max_height = round(0.06 * diag, -1) or 10.0
    draped = dem is not None
    margin = 0.12 * max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    wide = (bounds[0] - margin, bounds[1] - margin, bounds[2] + margin, bounds[3] + margin)
    parts: list[Part] = []
    grid = None
    if dem is not None:
        relief = terrain(dem, bounds=wide, exaggeration=exaggeration, diag_m=diag, overlay=raster,
                         overlay_colormap=raster_colormap, lang=lang)
        grid = dict(relief.grid, plain=relief.plain) if relief.plain else relief.grid
        name = str(dem.attrs.get("title") or dem.attrs.get("source") or dem.name or "DEM")
        parts.append(terrain_part(relief.texture, [*relief.legend, {"kind": "note", "label": TEXT[lang]["relief"].format(
            source=name, exag=format_number(grid["exag"], 0 if grid["exag"] % 1 == 0 else 1, lang, missing=None))}]))
    if raster is not None and dem is None:  # with a DEM the raster is blended into the relief texture
        image = drape(raster, bounds=wide, colormap=raster_colormap, lang=lang)
        parts.append(raster_part(image.url, image.bounds, image.legend, draped=draped))
    for i, frame in enumerate(context or []):
        parts.extend(context_part(frame, i, lang=lang, tolerance=tolerance, draped=draped))
    units_wgs = None
    if units is not None:
        part, units_wgs = units_part(units, extrude=extrude, color_by=color_by, colormap=colormap, lang=lang,
                                     tolerance=tolerance, max_height=max_height, draped=draped)
        if draped and part.layer.extruded:  # blocks stand on the relief; the zones are also painted on it
            parts.append(units_fill_part(part, filled=raster is None))
        parts.append(part)
    if change_patches is not None:
        parts.append(change_part(change_patches, units_wgs, lang=lang, tolerance=tolerance,
                                 max_height=max_height, draped=draped))
    if project is not None:
        parts.append(project_part(project, height=project_height, lang=lang, draped=draped))
    return _assemble(parts, bounds, units_wgs, project, grid, lang=lang, title=title, camera=camera, ranked=ranked,
                     source_line=source_line if source_line is not None else
                     _source_line(units, change_patches, raster, dem, project))


_ORDER = {"units": 0, "units-ground": 1, "change": 2, "project": 3, "raster": 4, "terrain": 5}


def _legend_order(parts: Sequence[Part]) -> list[dict[str, Any]]:
    ordered = sorted(parts, key=lambda p: _ORDER.get(p.layer.id, 6))
    return [entry for p in ordered for entry in p.legend]


def _toggles(parts: Sequence[Part], lang: str) -> list[dict[str, Any]]:
    """One show/hide checkbox per layer, in legend order."""
    words, out = TEXT[lang], []
    for part in sorted(parts, key=lambda p: _ORDER.get(p.layer.id, 6)):
        layer_id = part.layer.id
        fixed = {"units-ground": words["ground"], "terrain": words["relief_toggle"], "change": words["change"],
                 "project": words["project"]}
        if layer_id == "units":
            label = words["blocks"] if getattr(part.layer, "extruded", False) else words["zones"]
        elif layer_id == "terrain" and len(part.legend) > 1:  # the raster blended into the relief texture
            out.append({"label": part.legend[0]["label"], "layers": ["raster"]})
            label = words["relief_toggle"]
        else:
            label = fixed.get(layer_id) or next((e["label"] for e in part.legend), layer_id)
        out.append({"label": label, "layers": [layer_id]})
    return out


def _assemble(parts: list[Part], bounds: Sequence[float], units_wgs: gpd.GeoDataFrame | None,
              project: gpd.GeoDataFrame | None, grid: dict[str, Any] | None, *, lang: str, title: str | None,
              camera: str, ranked: int, source_line: str) -> SceneDeck:
    presets = make_presets(bounds, units_wgs, project, grid, lang, ranked)
    ids = [p["id"] for p in presets]
    if camera not in ids:
        raise ConfigError(f"camera must be one of {', '.join(ids)}, not {camera!r}")
    initial = ids.index(camera)
    info = SceneInfo(
        title=title or TEXT[lang]["title"], lang=lang, legend=_legend_order(parts), presets=presets,
        initial=initial, terrain=grid, source_line=source_line,
        tooltips={p.layer.id: {"title": p.tip_title, "fields": p.tooltip} for p in parts if p.tooltip},
        codecs={p.layer.id: p.codecs for p in parts if p.codecs}, toggles=_toggles(parts, lang))
    start = presets[initial]
    deck = SceneDeck(layers=[p.layer for p in parts], map_style=None, tooltip=False,
                     initial_view_state=_view_state(start["bounds"], start["pitch"], start["bearing"]))
    deck.scene_info = info
    return deck


# -- export ----------------------------------------------------------------------------------
def _checked_presets(presets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in presets:
        try:
            box = [float(v) for v in p["bounds"]]
            item = {"label": str(p["label"]), "bounds": box, "pitch": float(p.get("pitch", 45)),
                    "bearing": float(p.get("bearing", 0))}
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"a preset needs 'label' and 'bounds' [west, south, east, north]: {p!r}") from exc
        if len(box) != 4 or not all(math.isfinite(v) for v in box):
            raise ConfigError(f"preset bounds must be 4 finite numbers: {p!r}")
        out.append(item)
    return out


def export(deck: pdk.Deck, path: str | os.PathLike[str], *, title: str | None = None, lang: str | None = None,
           legend: Sequence[Any] | None = None, source_line: str | None = None,
           presets: Sequence[dict[str, Any]] | None = None, basemap: bool = False, overwrite: bool = False,
           bundle: BundleKind = "auto", generated: dt.date | None = None) -> Path:
    """Write ``deck`` as one self-contained, offline HTML file.

    Parameters
    ----------
    deck
        A :class:`SceneDeck` from :func:`build` (or any ``pydeck.Deck``: no legend or presets then).
    path
        Output ``.html`` path.
    title, lang, legend, source_line, presets
        Override what :func:`build` derived. Legend entries: dicts (``kind``, ``label``,
        ``color``…) or ``(label, "#rrggbb")`` pairs. Presets: dicts with ``label`` and
        ``bounds`` (west, south, east, north) and optional ``pitch``/``bearing``.
    basemap
        Add OpenStreetMap tiles — the page then **needs the internet** for them.
    overwrite
        Replace an existing file.
    bundle
        deck.gl source, see :func:`ensure_bundle`.
    generated
        Date printed in the source line (today by default; recipes pass the run's date
        so that a rerun reproduces the page).

    Returns
    -------
    Path

    Raises
    ------
    ExportError
        File exists without ``overwrite``, disk full, or no usable deck.gl bundle.
    """
    info: SceneInfo = getattr(deck, "scene_info", None) or SceneInfo(title=TEXT[lang or "fr"]["title"])
    info = replace(info, lang=check_lang(lang or info.lang))
    if title is not None:
        info.title = title
    if legend is not None:
        info.legend = normalise_legend(legend)
    if presets is not None:
        info.presets, info.initial = _checked_presets(presets), 0
    if source_line is not None:
        info.source_line = source_line
    js = ensure_bundle(bundle)
    spec, codecs = encode_layers(deck, info.codecs)
    scene = {"deck": spec, "codecs": codecs, "tooltips": info.tooltips, "presets": info.presets,
             "toggles": [t["layers"] for t in info.toggles],
             "initial": info.initial, "terrain": info.terrain, "basemap": bool(basemap), "title": info.title,
             "lang": info.lang}
    page = render_page(title=info.title, lang=info.lang, scene=scene, bundle=js, legend=info.legend,
                       presets=info.presets, source_line=info.source_line, basemap=basemap,
                       toggles=[t["label"] for t in info.toggles], generated=generated)
    return write_page(page, path, overwrite=overwrite)


# -- snapshot --------------------------------------------------------------------------------
def snapshot(html_path: str | os.PathLike[str], png_path: str | os.PathLike[str], *, width: int = 1200,
             height: int = 800, timeout: float = 60, overwrite: bool = True) -> Path:
    """Render an exported scene in headless Chromium (offline) and save a PNG.

    Waits until the page title starts with ``rendered`` (set once every layer is
    loaded and drawn), then captures the viewport.

    Raises
    ------
    ExportError
        Chromium missing ("install chromium (apt-get install chromium) or drop --png"),
        the page did not render within ``timeout`` seconds, or the PNG cannot be written.
    """
    source = Path(html_path)
    if not source.is_file():
        raise ExportError(f"{source} does not exist; export the scene first")
    target = ensure_new(png_path, overwrite=overwrite)
    with Browser(width=width, height=height) as browser:
        browser.open(file_url(source))
        try:
            browser.wait_for("document.title.startsWith('rendered')", timeout=timeout)
        except TimeoutError as exc:
            errors = browser.console_errors()
            why = f": {errors[0][:200]}" if errors else ""
            raise ExportError(f"{source} did not finish rendering within {timeout:.0f} s{why}") from exc
        png = browser.screenshot()
    return write_bytes(target, png)


# -- from files ------------------------------------------------------------------------------
def scene_from_files(out: str | os.PathLike[str], *, units: str | os.PathLike[str] | None = None,
                     layer: str | None = None, extrude: str | None = "score", color_by: str | None = None,
                     raster: str | os.PathLike[str] | None = None, dem: str | os.PathLike[str] | None = None,
                     project: str | os.PathLike[str] | None = None, change: str | os.PathLike[str] | None = None,
                     context: Sequence[str | os.PathLike[str]] = (), title: str | None = None, lang: str = "fr",
                     png: str | os.PathLike[str] | None = None, overwrite: bool = False, basemap: bool = False,
                     bundle: BundleKind = "auto") -> tuple[Path, Path | None]:
    """Read the inputs, :func:`build`, :func:`export` and optionally :func:`snapshot`.

    ``extrude`` is ignored (flat units) when the units have no such column. Provenance
    (PLU document and date, STAC collection/item/date of rasters) fills the source line.

    Returns
    -------
    (Path, Path | None)
        The HTML file and the PNG (None without ``png``).
    """
    if png is not None:  # fail before the (slow) build when Chromium is missing or the PNG exists

        find_chromium()
        ensure_new(png, overwrite=overwrite)
    frames = read_vector(units, layer=layer) if units else None
    if frames is not None and extrude and extrude not in frames.columns:
        extrude = None

    try:  # rasters are read lazily: a truncated file fails inside build
        deck = build(frames, extrude=extrude, color_by=color_by, lang=lang, title=title,
                     raster=read_raster(raster) if raster else None, dem=read_raster(dem) if dem else None,
                     project=read_vector(project) if project else None,
                     change_patches=read_vector(change) if change else None,
                     context=[read_vector(c) for c in context])
    except rasterio.errors.RasterioIOError as exc:
        names = " or ".join(str(p) for p in (raster, dem) if p)
        raise DataError(f"cannot read {names}: {str(exc).splitlines()[0][:160]}; the raster is truncated "
                        "or corrupt, get it again") from exc
    html_path = export(deck, out, overwrite=overwrite, basemap=basemap, bundle=bundle)
    png_path = snapshot(html_path, png, overwrite=overwrite) if png is not None else None
    return html_path, png_path
