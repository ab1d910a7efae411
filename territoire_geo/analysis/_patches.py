"""Change patches: classes raster -> polygons with areas, index means and dates (pure numpy).

Published as :func:`territoire_geo.analysis.change.patches`, which turns an NDVI
series into per-pixel dates first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from shapely.geometry import shape

from territoire_geo.analysis._change_rules import ALERT_NOTE, CHANGE_CLASSES
from territoire_geo.errors import DataError

__all__ = ["COLUMNS", "vectorise"]

#: Columns of a patch table (then ``geometry``).
COLUMNS = ("class", "class_name", "area_m2", "area_ha", "mean_before", "mean_after", "first_seen")


def vectorise(classes: xr.DataArray, *, min_area_m2: float, class_values: Iterable[int] | None,
              before: xr.DataArray | xr.Dataset | None, after: xr.DataArray | xr.Dataset | None,
              index: str, first_seen: xr.DataArray | None) -> gpd.GeoDataFrame:
    """Vectorise change classes into patches; see :func:`territoire_geo.analysis.change.patches`.

    ``first_seen`` is here a 2-D datetime64 array of dates per pixel (or None).
    """
    array, transform, crs = _grid(classes)
    frame = _vectorise(array, transform, crs, _wanted(class_values))
    frame = frame[frame["area_m2"] >= float(min_area_m2)].sort_values("area_m2", ascending=False, kind="stable")
    frame = frame.reset_index(drop=True)
    labels = _label_raster(frame, array.shape, transform)
    frame["mean_before"] = _zonal_mean(labels, _layer(before, index, array.shape), len(frame))
    frame["mean_after"] = _zonal_mean(labels, _layer(after, index, array.shape), len(frame))
    frame["first_seen"] = _lower_median_dates(labels, _pixel_dates(first_seen, array.shape), len(frame))
    frame = frame[[*COLUMNS, "geometry"]]
    frame.attrs["note"] = ALERT_NOTE
    return frame


def _grid(classes: xr.DataArray) -> tuple[np.ndarray, Affine, Any]:
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
    wanted = [c for c in CHANGE_CLASSES if c not in (0, 255)] if class_values is None else list(class_values)
    unknown = sorted(set(wanted) - set(CHANGE_CLASSES))
    if unknown:
        raise DataError(f"unknown change class(es) {unknown}; see territoire_geo.analysis.change.CHANGE_CLASSES")
    return [int(c) for c in wanted]


def _vectorise(array: np.ndarray, transform: Affine, crs: Any, wanted: list[int]) -> gpd.GeoDataFrame:
    mask = np.isin(array, wanted)
    found = list(rasterio.features.shapes(array, mask=mask, connectivity=4, transform=transform)) if mask.any() else []
    codes = np.array([int(value) for _, value in found], dtype=np.int16)
    frame = gpd.GeoDataFrame({"class": codes, "class_name": [CHANGE_CLASSES[int(c)] for c in codes]},
                             geometry=[shape(geom) for geom, _ in found], crs=crs)
    frame["area_m2"] = frame.geometry.area.astype(np.float64)
    frame["area_ha"] = frame["area_m2"] / 10_000.0
    return frame


def _label_raster(frame: gpd.GeoDataFrame, shape: tuple[int, ...], transform: Affine) -> np.ndarray:
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


def _pixel_dates(first_seen: xr.DataArray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if first_seen is None:
        return None
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
