"""Change patches: classes raster -> polygons with areas and index statistics (internal).

Published as :func:`territoire_geo.change.patches`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from territoire_geo.errors import DataError

if TYPE_CHECKING:
    import geopandas as gpd
    from affine import Affine

    from territoire_geo.change import ChangeRules

__all__ = ["patches"]

_COLUMNS = ("class", "class_name", "area_m2", "area_ha", "mean_before", "mean_after", "first_seen")


def patches(classes: xr.DataArray, *, min_area_m2: float = 1000.0, class_values: Iterable[int] | None = None,
            before: xr.DataArray | xr.Dataset | None = None, after: xr.DataArray | xr.Dataset | None = None,
            index: str = "ndvi", first_seen: xr.DataArray | None = None,
            rules: ChangeRules | None = None) -> gpd.GeoDataFrame:
    """Vectorise change classes into patches (polygons) above a minimum mapping unit.

    This is where the 2-D class raster is computed (it is small); index layers are
    computed too. Polygons follow pixel edges (4-connectivity), one per connected
    group of pixels of one class.

    Parameters
    ----------
    classes
        2-D class codes (:func:`territoire_geo.change.classify`) with a projected CRS
        (``.rio.crs``) and x/y coordinates.
    min_area_m2
        Minimum mapping unit: smaller patches are dropped (1,000 m² = 10 pixels at 10 m;
        2,500 m² is the sealing threshold of the ZAN nomenclature).
    class_values
        Classes to vectorise; all change classes (not 0 stable, not 255) by default.
    before, after
        Composites (Dataset holding ``index``, or a DataArray) on the same grid, for
        ``mean_before`` / ``mean_after``.
    index
        Variable of ``before``/``after`` to average.
    first_seen
        NDVI series ``(time, y, x)`` on the same grid: per patch, the lower median over its
        pixels of the first date from which NDVI stays at or below ``rules.sparse_ndvi``
        (classes 1, 3) or at or above ``rules.vegetated_ndvi`` (class 2), see
        :func:`~territoire_geo.change.change_dates`; or an already computed 2-D datetime64
        array of dates per pixel (e.g. ``change_dates(...)``), used as is.
    rules
        Thresholds for ``first_seen`` (:class:`~territoire_geo.change.ChangeRules` defaults).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``class, class_name, area_m2, area_ha, mean_before, mean_after,
        first_seen`` (NaN/NaT when not asked), geometry in the raster CRS, largest first.

    Raises
    ------
    DataError
        If ``classes`` is not 2-D, has no projected CRS, or layers are on another grid.
    """
    from territoire_geo.change import ALERT_NOTE

    array, transform, crs = _grid(classes)
    frame = _vectorise(array, transform, crs, _wanted(class_values))
    frame = frame[frame["area_m2"] >= float(min_area_m2)].sort_values("area_m2", ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    labels = _label_raster(frame, array.shape, transform)
    frame["mean_before"] = _zonal_mean(labels, _layer(before, index, array.shape), len(frame))
    frame["mean_after"] = _zonal_mean(labels, _layer(after, index, array.shape), len(frame))
    dates = _pixel_dates(first_seen, classes, array.shape, rules)
    frame["first_seen"] = _lower_median_dates(labels, dates, len(frame))
    frame = frame[[*_COLUMNS, "geometry"]]
    frame.attrs["note"] = ALERT_NOTE
    return frame


def _grid(classes: xr.DataArray) -> tuple[np.ndarray, Affine, Any]:
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    if classes.ndim != 2:
        raise DataError(f"patches need a 2-D class raster, got dimensions {classes.dims}")
    crs = classes.rio.crs
    if crs is None or not crs.is_projected:
        raise DataError("the class raster needs a projected CRS (areas in metres); use .rio.write_crs('EPSG:2154')")
    array = np.asarray(classes.values)
    if array.dtype.kind not in "iu":
        raise DataError(f"class codes must be integers, got {array.dtype}")
    transform = classes.rio.transform()
    if transform.is_identity or transform.is_degenerate:
        raise DataError("cannot infer the pixel grid of the class raster (one row or column?); "
                        "write it with .rio.write_transform(...)")
    epsg = crs.to_epsg()
    return array.astype(np.uint8, copy=False), transform, f"EPSG:{epsg}" if epsg else crs.to_wkt()


def _wanted(class_values: Iterable[int] | None) -> list[int]:
    from territoire_geo.change import CHANGE_CLASSES

    wanted = [c for c in CHANGE_CLASSES if c not in (0, 255)] if class_values is None else list(class_values)
    unknown = sorted(set(wanted) - set(CHANGE_CLASSES))
    if unknown:
        raise DataError(f"unknown change class(es) {unknown}; see territoire_geo.change.CHANGE_CLASSES")
    return [int(c) for c in wanted]


def _vectorise(array: np.ndarray, transform: Affine, crs: Any, wanted: list[int]) -> gpd.GeoDataFrame:
    import geopandas as gpd
    import rasterio.features
    from shapely.geometry import shape

    from territoire_geo.change import CHANGE_CLASSES

    mask = np.isin(array, wanted)
    found = list(rasterio.features.shapes(array, mask=mask, connectivity=4, transform=transform)) if mask.any() else []
    codes = np.array([int(value) for _, value in found], dtype=np.int16)
    frame = gpd.GeoDataFrame({"class": codes, "class_name": [CHANGE_CLASSES[int(c)] for c in codes]},
                             geometry=[shape(geom) for geom, _ in found], crs=crs)
    frame["area_m2"] = frame.geometry.area.astype(np.float64)
    frame["area_ha"] = frame["area_m2"] / 10_000.0
    return frame


def _label_raster(frame: gpd.GeoDataFrame, shape: tuple[int, ...], transform: Affine) -> np.ndarray:
    import rasterio.features

    if frame.empty:
        return np.zeros(shape, dtype=np.int32)
    pairs = zip(frame.geometry, range(1, len(frame) + 1), strict=True)
    return rasterio.features.rasterize(pairs, out_shape=shape, transform=transform, fill=0, dtype="int32")


def _layer(data: xr.DataArray | xr.Dataset | None, index: str, shape: tuple[int, ...]) -> np.ndarray | None:
    if data is None:
        return None
    if isinstance(data, xr.Dataset):
        if index not in data.data_vars:
            raise DataError(f"{index!r} is not in the composite (variables: {', '.join(map(str, data.data_vars))})")
        data = data[index]
    values = np.asarray(data.values)  # kept as is (float32): bincount sums the kept pixels in float64 anyway
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    if values.shape != tuple(shape):
        raise DataError(f"index layer of shape {values.shape} is not on the class grid {tuple(shape)}")
    return values


def _zonal_mean(labels: np.ndarray, values: np.ndarray | None, count: int) -> np.ndarray:
    """Mean of ``values`` per label 1..count (NaN skipped), by bincount."""
    if values is None or count == 0:
        return np.full(count, np.nan)
    flat, data = labels.ravel(), values.ravel()
    keep = (flat > 0) & np.isfinite(data)
    sums = np.bincount(flat[keep], weights=data[keep], minlength=count + 1)[1:]
    counts = np.bincount(flat[keep], minlength=count + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _pixel_dates(first_seen: xr.DataArray | None, classes: xr.DataArray, shape: tuple[int, ...],
                 rules: ChangeRules | None) -> np.ndarray | None:
    from territoire_geo.change import change_dates

    if first_seen is None:
        return None
    if not (first_seen.ndim == 2 and first_seen.dtype.kind == "M"):
        first_seen = change_dates(classes, first_seen, rules)
    dates = np.asarray(first_seen.values).astype("datetime64[ns]")
    if dates.shape != tuple(shape):
        raise DataError(f"first_seen of shape {dates.shape} is not on the class grid {tuple(shape)}")
    return dates


def _lower_median_dates(labels: np.ndarray, dates: np.ndarray | None, count: int) -> pd.Series:
    """Per label, the lower median of the pixel dates (an actual observation date), vectorised."""
    result = np.full(count, np.datetime64("NaT", "ns"))
    if dates is not None and count:
        flat, stamps = labels.ravel(), dates.ravel()
        keep = (flat > 0) & ~np.isnat(stamps)
        flat, stamps = flat[keep], stamps[keep]
        order = np.lexsort((stamps.view(np.int64), flat))
        flat, stamps = flat[order], stamps[order]
        counts = np.bincount(flat, minlength=count + 1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        has = np.nonzero(counts > 0)[0]
        result[has - 1] = stamps[starts[has] + (counts[has] - 1) // 2]
    return pd.Series(result, dtype="datetime64[ns]")
