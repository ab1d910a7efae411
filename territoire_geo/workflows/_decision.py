"""File-to-file orchestration of overlay and scoring (used by ``territoire-geo overlay`` / ``score``).

Re-exported by :mod:`territoire_geo.workflows`. The pure work happens in
:mod:`territoire_geo.planning.overlay`, :mod:`territoire_geo.analysis.zonal` and
:mod:`territoire_geo.planning.scoring`; this module reads the
inputs, chains the calls and writes through :mod:`territoire_geo.io`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import rasterio
import rioxarray

from territoire_geo._atomic import ensure_new
from territoire_geo.analysis import zonal
from territoire_geo.analysis.terrain import reproject_dem, slope_percent
from territoire_geo.errors import ConfigError, DataError, ExportError
from territoire_geo.io import write_table_csv, write_vector
from territoire_geo.planning import overlay, scoring, soil
from territoire_geo.planning import zoning as zoning_mod

__all__ = ["LAYER_KINDS", "ScoreRun", "overlay_from_files", "parse_assignments", "score_from_files"]

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: ``--layer`` kinds: the soil/risk/nature kinds of :mod:`territoire_geo.planning.soil`, plus change alerts.
LAYER_KINDS: tuple[str, ...] = ("rga", "ppr_covadis", "ppr_cnig", "znieff1", "znieff2", "natura2000", "geology",
                                "change")
_SCORE_OUTPUTS = ("scores.gpkg", "scores.csv", "criteria.csv", "sensitivity.csv")
_FIRST_COLUMNS = ("rank", "unit_id", "LIBELLE", "TYPEZONE", "area_ha", "score", "reliability",
                  "score_max_possible", "excluded", "exclusion", "exclusion_rules")


def parse_assignments(items: Iterable[str], what: str) -> list[tuple[str, str]]:
    """``["rga=a.gpkg", "ndvi=b.tif"]`` → ``[("rga", "a.gpkg"), ("ndvi", "b.tif")]``.

    Raises
    ------
    ConfigError
        An item without ``=``, an empty side, or a name that is not ``[a-z][a-z0-9_]*``.
    """
    pairs = []
    for item in items:
        name, sep, path = str(item).partition("=")
        name = name.strip().lower()
        if not sep or not path.strip() or not _NAME.match(name):
            raise ConfigError(f"{what} {item!r}: expected name=PATH with a lower-case name (e.g. rga=argiles.gpkg)")
        pairs.append((name, path.strip()))
    return pairs


def _read_vector(path: PathLike, label: str) -> gpd.GeoDataFrame:
    if not Path(path).exists():
        raise DataError(f"{label} {path}: no such file")
    try:
        return gpd.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise DataError(f"cannot read {label} {path}: {' '.join(str(exc).split())[:160]}") from exc


def _layer(kind: str, path: PathLike) -> Any:
    if kind not in LAYER_KINDS:
        raise ConfigError(f"unknown layer kind {kind!r}; choose one of {', '.join(LAYER_KINDS)}")
    if kind != "change":
        return soil.read(path, kind)
    alerts = _read_vector(path, "change layer")
    for column in ("class_name", "change"):
        if column in alerts.columns:
            alerts = alerts[alerts[column] == "new_artificial_surface"]
            break
    return overlay.Layer("change_artificial", alerts)


def _dem_slope(path: PathLike, crs: Any) -> Any:
    if not Path(path).exists():
        raise DataError(f"DEM {path}: no such file")
    try:
        return slope_percent(reproject_dem(rioxarray.open_rasterio(path), crs))
    except rasterio.errors.RasterioIOError as exc:  # not a raster, truncated or corrupt
        raise DataError(f"cannot read DEM {path}: {str(exc).splitlines()[0][:160]}; check the file") from exc


def overlay_from_files(
    zoning: PathLike,
    *,
    layers: Sequence[tuple[str, PathLike]] = (),
    rasters: Sequence[tuple[str, PathLike]] = (),
    dem: PathLike | None = None,
    distances: Sequence[tuple[str, PathLike]] = (),
    parcels: PathLike | None = None,
    out: PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> gpd.GeoDataFrame:
    """Read a PLU and layers from files, build the candidate units, optionally write them.

    Parameters
    ----------
    zoning
        PLU folder, zip or vector file (:func:`territoire_geo.planning.zoning.read`).
    layers
        ``(kind, path)`` pairs, kind in :data:`LAYER_KINDS` (``change``: alert polygons,
        gives ``change_artificial_share``).
    rasters
        ``(name, path)`` pairs: ``<name>_mean`` and ``<name>_coverage`` per unit.
    dem
        A DEM file: reprojected to the zoning CRS, ``slope_mean`` (%) per unit.
    distances
        ``(name, path)`` pairs of points/lines/polygons: ``dist_<name>_m``.
    parcels
        Cadastral parcels: units become parcels cut by the zones.
    out
        GeoPackage to write (layer ``units``), atomically.
    overwrite
        Replace ``out`` when it exists.
    progress
        Called with a short message after each step.

    Returns
    -------
    GeoDataFrame
        The units (see :func:`territoire_geo.planning.overlay.overlay`).
    """
    say = progress or (lambda _msg: None)
    if out is not None:
        ensure_new(out, overwrite=overwrite)
        if Path(out).suffix.lower() not in (".gpkg", ".parquet"):
            raise ConfigError(f"cannot write units to {Path(out).name}: use a .gpkg or .parquet file")
    plu = zoning_mod.read(zoning)
    say(f"PLU read: {len(plu.zones)} zones")
    specs = [_layer(kind, path) for kind, path in layers]
    near = {name: _read_vector(path, f"distance layer {name}") for name, path in distances}
    units = overlay.overlay(plu, *specs, parcels=_read_vector(parcels, "parcels") if parcels else None,
                          distances=near)
    say(f"{len(units)} units crossed with {len(specs)} layer(s)")
    for name, path in rasters:
        units = zonal.stats(path, units, ["mean", "coverage"], prefix=name)
        say(f"raster {name}: zonal statistics done")
    if dem is not None:
        units = zonal.stats(_dem_slope(dem, units.crs), units, ["mean"], prefix="slope")
        say("slope from the DEM done")
    if out is not None:
        write_vector(units, out, layer="units", overwrite=overwrite)
        say(f"written {out}")
    return units


@dataclass(frozen=True)
class ScoreRun:
    """What :func:`score_from_files` produced.

    Attributes
    ----------
    scored
        The units with ``score``, ``rank``, ``reliability``, ``exclusion``…, best first.
    sensitivity
        Rank stability per unit (or ``None``).
    exclusions
        Number of excluded units per reason.
    outputs
        Written files by name.
    criteria_table
        The criteria used (name, label, column, transform, weight %).
    """

    scored: gpd.GeoDataFrame
    sensitivity: pd.DataFrame | None
    exclusions: dict[str, int]
    outputs: dict[str, Path] = field(default_factory=dict)
    criteria_table: pd.DataFrame | None = None


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    existing = [n for n in _SCORE_OUTPUTS if (out_dir / n).exists()]
    if existing and not overwrite:
        raise ExportError(f"{out_dir} already holds {', '.join(existing)}; pass --overwrite to replace them")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file; give a folder for the outputs")


def _ordered(scored: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    first = [c for c in _FIRST_COLUMNS if c in scored.columns]
    rest = [c for c in scored.columns if c not in first]
    ranked = scored.sort_values(["rank", "score"], ascending=[True, False], na_position="last", kind="stable")
    return ranked[first + rest]


def score_from_files(
    units: PathLike,
    out_dir: PathLike,
    *,
    criteria: PathLike | Mapping[str, Any] | None = None,
    sensitivity: int = 0,
    lang: str = "fr",
    overwrite: bool = False,
    seed: int = 0,
) -> ScoreRun:
    """Score a units GeoPackage and write ``scores.gpkg``, ``scores.csv``, ``criteria.csv``.

    Parameters
    ----------
    units
        Output of :func:`overlay_from_files` (any vector file).
    out_dir
        Output folder (created); existing outputs are kept unless ``overwrite``.
    criteria
        Criteria YAML (default: the réserve foncière set).
    sensitivity
        Number of weight draws for ``sensitivity.csv`` (0: none).
    lang
        Language of the exclusion reasons (``fr`` or ``en``).
    overwrite
        Replace existing outputs.
    seed
        Random seed of the sensitivity draws.

    Returns
    -------
    ScoreRun
    """
    folder = Path(out_dir)
    _check_out_dir(folder, overwrite)
    frame = _read_vector(units, "units")
    criteria_set = scoring.load_criteria(criteria)
    scored = _ordered(scoring.score(frame, criteria_set, lang=lang))
    table = scoring.explain(criteria_set.criteria, lang=lang)
    stability = scoring.sensitivity(frame, criteria_set, n=sensitivity, seed=seed) if sensitivity > 0 else None
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {
        "scores.gpkg": write_vector(scored, folder / "scores.gpkg", layer="scores", overwrite=overwrite),
        "scores.csv": write_table_csv(scored, folder / "scores.csv", overwrite=overwrite),
        "criteria.csv": write_table_csv(table, folder / "criteria.csv", overwrite=overwrite),
    }
    if stability is not None:
        stability = stability.loc[scored.index]
        outputs["sensitivity.csv"] = write_table_csv(stability, folder / "sensitivity.csv", overwrite=overwrite)
    counts = scored["exclusion"].dropna().value_counts()
    return ScoreRun(scored, stability, {str(k): int(v) for k, v in counts.items()}, outputs, table)
