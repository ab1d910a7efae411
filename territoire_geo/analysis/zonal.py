"""Zonal statistics: raster values summarised per polygon (pure).

:func:`stats` gives exactextract statistics per polygon, weighted by the exact share
of each pixel inside the polygon (parcels and PLU slivers smaller than a pixel keep a
value), with an explicit CRS check, explicit nodata, dask inputs computed once and one
column per band/date (or a long table). Crossing vector layers (constraints, zones,
parcels) is planning work: :mod:`territoire_geo.planning.overlay`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from exactextract import exact_extract
from exactextract.operation import Operation

from territoire_geo.analysis._zonal_raster import RasterInput, WKBFeatureSource, open_raster
from territoire_geo.errors import ConfigError, CRSMismatchError, DataError

__all__ = ["DEFAULT_STATS", "STATS", "stats"]

log = logging.getLogger(__name__)

#: Statistics :func:`stats` knows (exactextract names, plus ``coverage``).
STATS: tuple[str, ...] = (
    "count", "sum", "mean", "median", "stdev", "variance", "min", "max",
    "majority", "minority", "variety", "frac", "coverage",
)  # fmt: skip
DEFAULT_STATS: tuple[str, ...] = ("count", "mean", "median", "stdev", "min", "max", "majority", "frac", "coverage")


def _check_stats(names: Sequence[str] | str, quantiles: Sequence[float] | None) -> tuple[list[str], list[float]]:
    wanted = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in wanted if n not in STATS]
    if unknown:
        raise ConfigError(f"unknown statistic(s) {', '.join(unknown)}; choose from {', '.join(STATS)}")
    qs = [float(q) for q in (quantiles or ())]
    if any(not 0.0 <= q <= 1.0 for q in qs):
        raise ConfigError(f"quantiles must lie between 0 and 1, got {qs}")
    if not wanted and not qs:
        raise ConfigError("no statistic asked; give stats= or quantiles=")
    return wanted, qs


def quantile_name(q: float) -> str:
    """Column name of quantile ``q`` (``0.25`` → ``quantile_25``)."""
    return f"quantile_{q * 100:g}"


def _as_frame(polygons: gpd.GeoDataFrame | gpd.GeoSeries) -> gpd.GeoDataFrame:
    if isinstance(polygons, gpd.GeoSeries):
        polygons = polygons.to_frame("geometry")
    if not isinstance(polygons, gpd.GeoDataFrame):
        raise DataError(f"polygons must be a GeoDataFrame or GeoSeries, not {type(polygons).__name__}")
    if polygons.crs is None:
        raise CRSMismatchError("the polygons have no CRS; set the CRS (gdf.set_crs('EPSG:2154')) first")
    return polygons


def _geometries_in(frame: gpd.GeoDataFrame, raster: RasterInput) -> np.ndarray:
    if frame.crs == raster.crs:
        return frame.geometry.to_numpy()
    log.info("reprojecting %d polygons from %s to the raster CRS %s", len(frame), frame.crs.to_string(),
             raster.crs.to_string())
    return frame.geometry.to_crs(raster.crs).to_numpy()


def _operations(raster: RasterInput, names: list[str], qs: list[float], frac: bool) -> list[Operation]:
    keys = [n for n in names if n not in ("frac", "coverage")]
    if "coverage" in names and "count" not in keys:
        keys.append("count")
    ops = []
    for band, source in enumerate(raster.sources):
        ops += [Operation(k, f"{band}__{k}", source, None, {}) for k in keys]
        ops += [Operation("quantile", f"{band}__q{i}", source, None, {"q": q}) for i, q in enumerate(qs)]
        if frac:
            ops += [Operation(k, f"{band}__{k}", source, None, {}) for k in ("unique", "frac")]
    return ops


def _value_label(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _frac_columns(part: pd.DataFrame) -> pd.DataFrame:
    """``frac_<class>`` columns from exactextract's per-row ``unique``/``frac`` arrays."""
    pairs = part[["_zid", "unique", "frac"]].explode(["unique", "frac"]).dropna(subset=["unique"])
    if pairs.empty:
        return pd.DataFrame(index=part["_zid"])
    pairs["column"] = "frac_" + pairs["unique"].map(_value_label)
    table = pairs.pivot_table(index="_zid", columns="column", values="frac", aggfunc="sum", fill_value=0.0)
    table.columns.name = None
    return table.reindex(part["_zid"]).fillna(0.0)


def _tidy(raw: pd.DataFrame, raster: RasterInput, names: list[str], qs: list[float], frac: bool,
          areas: pd.Series) -> pd.DataFrame:
    """One row per (polygon, band) with one column per statistic."""
    keep = [n for n in names if n not in ("frac", "coverage")] + [quantile_name(q) for q in qs]
    parts = []
    for band in range(len(raster.sources)):
        cols = {f"{band}__{k}": k for k in [*keep, "count", "unique", "frac"] if f"{band}__{k}" in raw}
        # exactextract appends the percentile to a quantile field name: match them by position
        cols |= dict(zip([c for c in raw if c.startswith(f"{band}__q")], map(quantile_name, qs), strict=True))
        part = raw[["_zid", *cols]].rename(columns=cols)
        table = part.set_index("_zid")[keep].astype("float64")
        if "coverage" in names:
            share = part["count"].to_numpy(dtype="float64") * raster.pixel_area / areas.loc[part["_zid"]].to_numpy()
            table["coverage"] = np.clip(share, 0.0, 1.0)
        if frac:
            table = table.join(_frac_columns(part))
        parts.append(table.assign(_band=band))
    return pd.concat(parts).reset_index()


def _wide(tidy: pd.DataFrame, raster: RasterInput, prefix: str) -> pd.DataFrame:
    stats_cols = [c for c in tidy.columns if c not in ("_zid", "_band")]
    frames = []
    for band, label in enumerate(raster.labels):
        part = tidy[tidy["_band"] == band].set_index("_zid")[stats_cols]
        suffix = "" if label is None else f"_{label}"
        frames.append(part.add_prefix(prefix).add_suffix(suffix))
    out = pd.concat(frames, axis=1)
    frac = [c for c in out.columns if "frac_" in c]
    out[frac] = out[frac].fillna(0.0)
    return out


def _extract(raster: RasterInput, frame: gpd.GeoDataFrame, names: list[str], qs: list[float], frac: bool,
             strategy: str) -> pd.DataFrame:
    geoms = _geometries_in(frame, raster)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    zid = np.arange(len(frame))
    areas = pd.Series(shapely.area(geoms), index=zid).replace(0.0, np.nan)
    if not ok.any():
        raise DataError("no polygon with a geometry to summarise")
    raw = exact_extract(list(raster.sources), WKBFeatureSource(geoms[ok], zid[ok], raster.crs),
                        _operations(raster, names, qs, frac), include_cols=["_zid"], output="pandas",
                        strategy=strategy)
    return _tidy(raw, raster, names, qs, frac, areas)


def stats(
    raster: Any,
    polygons: gpd.GeoDataFrame | gpd.GeoSeries,
    stats: Sequence[str] | str = DEFAULT_STATS,
    *,
    quantiles: Sequence[float] | None = None,
    nodata: float | None = None,
    band_dim: str | None = None,
    long: bool = False,
    id_column: str | None = None,
    prefix: str | None = None,
    categorical: bool | None = None,
    strategy: str = "feature-sequential",
) -> gpd.GeoDataFrame:
    """Coverage-weighted statistics of a raster per polygon (exactextract underneath).

    Parameters
    ----------
    raster
        A file path (GeoTIFF/COG, read window by window) or an xarray DataArray with
        x/y dimensions and a CRS (``.rio.crs``), 2-D or with one band/time dimension;
        dask-backed arrays are computed once, not once per polygon.
    polygons
        Polygons with a CRS; reprojected to the raster CRS when it differs (logged).
    stats
        Names from :data:`STATS`. ``count`` is the number of valid pixels weighted by
        coverage (0.36 for a 6×6 m parcel on a 10 m grid); ``frac`` gives one
        ``frac_<class>`` column per class (categorical rasters only, see
        ``categorical``); ``coverage`` is the share of the polygon area covered by
        valid (non-nodata, non-NaN) pixels.
    quantiles
        Quantiles in [0, 1], as ``quantile_<percent>`` columns (exactextract ``quantile(q=…)``).
    nodata
        Nodata value overriding the file's or the array's (``.rio.nodata``); NaN is
        always nodata.
    band_dim
        Band/time dimension of a 3-D DataArray (default: the only non-spatial one).
    long
        Return one row per polygon and band/date instead of one column per band/date.
    id_column
        Keep only this polygon column (plus statistics and geometry) in the output; in
        long form it identifies the polygons (default: a column holding the index).
    prefix
        Prepended to statistic columns (``"ndvi"`` → ``ndvi_mean``).
    categorical
        Compute ``frac`` (default: only for integer rasters; skipped with a log line otherwise).
    strategy
        exactextract processing strategy (``feature-sequential`` or ``raster-sequential``).

    Returns
    -------
    GeoDataFrame
        Wide: the polygons (same index, original CRS) plus one column per statistic,
        suffixed ``_<band or date>`` for multi-band rasters (``mean_2021-06-18``).
        Long: columns ``<id>``, ``<band_dim>``, the statistics and the geometry.

    Raises
    ------
    CRSMismatchError
        The polygons have no CRS.
    DataError
        The raster has no CRS, is rotated or irregular, or has too many dimensions.
    ConfigError
        Unknown statistic or strategy, or a quantile outside [0, 1].

    Examples
    --------
    >>> table = stats("ndvi_2021.tif", zones, ["mean", "coverage"], prefix="ndvi")  # doctest: +SKIP
    """
    names, qs = _check_stats(stats, quantiles)
    if strategy not in ("feature-sequential", "raster-sequential"):
        raise ConfigError(f"strategy must be 'feature-sequential' or 'raster-sequential', got {strategy!r}")
    frame = _as_frame(polygons)
    if id_column is not None and id_column not in frame.columns:
        raise DataError(f"id_column {id_column!r} is not a column of the polygons")
    with open_raster(raster, nodata=nodata, band_dim=band_dim) as opened:
        frac = "frac" in names and (opened.integer if categorical is None else categorical)
        if "frac" in names and not frac:
            log.info("frac skipped: the raster holds floats; pass categorical=True for class shares")
        tidy = _extract(opened, frame, names, qs, frac, strategy)
        if long:
            return _long_output(frame, tidy, opened, id_column, f"{prefix}_" if prefix else "")
        wide = _wide(tidy, opened, f"{prefix}_" if prefix else "")
    base = frame[[id_column, frame.geometry.name]] if id_column else frame
    values = wide.reindex(np.arange(len(frame)))
    values.index = frame.index
    return gpd.GeoDataFrame(pd.concat([base.drop(columns=frame.geometry.name), values], axis=1),
                            geometry=frame.geometry, crs=frame.crs)


def _long_output(frame: gpd.GeoDataFrame, tidy: pd.DataFrame, raster: RasterInput, id_column: str | None,
                 prefix: str) -> gpd.GeoDataFrame:
    key = id_column or (frame.index.name or "index")
    ids = frame[id_column].to_numpy() if id_column else frame.index.to_numpy()
    band = raster.band_dim or "band"
    coords = list(raster.coords) if raster.coords else list(raster.labels)
    stats_cols = [c for c in tidy.columns if c not in ("_zid", "_band")]
    out = tidy.sort_values(["_zid", "_band"], kind="stable")
    frac = [c for c in stats_cols if c.startswith("frac_")]
    out[frac] = out[frac].fillna(0.0)
    table = pd.DataFrame({key: ids[out["_zid"].to_numpy()], band: np.asarray(coords, dtype=object)[out["_band"]]})
    table = pd.concat([table, out[stats_cols].add_prefix(prefix).reset_index(drop=True)], axis=1)
    geometry = frame.geometry.to_numpy()[out["_zid"].to_numpy()]
    return gpd.GeoDataFrame(table, geometry=geometry, crs=frame.crs)
