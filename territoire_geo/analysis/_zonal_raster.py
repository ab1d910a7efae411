"""Raster inputs of :func:`territoire_geo.analysis.zonal.stats` turned into exactextract sources.

A raster arrives as a file path (anything rasterio opens, e.g. a COG) or as an xarray
DataArray (numpy- or dask-backed, 2-D or with one band/time dimension). Both end up
as one exactextract ``RasterSource`` per band with a checked CRS and explicit nodata:

* files are read window by window by exactextract through rasterio (no full read);
* DataArrays are materialised **once** (``.compute()`` for dask) and wrapped in
  ``NumPyRasterSource`` — exactextract's own xarray source would re-run a lazy dask
  graph for every polygon window and silently assume EPSG:4326 without a CRS
  (analysis notes §4.3).

Polygons reach exactextract as WKB through a tiny feature source (vectorised
``shapely.to_wkb``), which skips the GeoJSON round trip of the GeoPandas source.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
from exactextract.feature import Feature, FeatureSource
from exactextract.raster import NumPyRasterSource, RasterioRasterSource, RasterSource
from pyproj import CRS
from rasterio.windows import Window

from territoire_geo.errors import DataError

__all__ = ["RasterInput", "WKBFeatureSource", "band_labels", "open_raster"]

log = logging.getLogger(__name__)
_SPATIAL_X = ("x", "lon", "longitude")
_SPATIAL_Y = ("y", "lat", "latitude")


@dataclass(frozen=True)
class RasterInput:
    """A raster ready for exactextract.

    Attributes
    ----------
    sources
        One exactextract source per band (1 for a 2-D raster).
    labels
        Label of each band (``None`` for a single 2-D raster).
    band_dim
        Name of the band/time dimension (``"band"`` for files), or ``None``.
    crs
        CRS of the raster grid.
    pixel_area
        Area of one pixel in CRS units squared.
    integer
        True when the values are integers (categorical rasters).
    coords
        Band/time coordinate values (datetimes kept) for long tables; empty for files.
    """

    sources: tuple[RasterSource, ...]
    labels: tuple[str | None, ...]
    band_dim: str | None
    crs: CRS
    pixel_area: float
    integer: bool
    coords: tuple[Any, ...] = ()


class _FileSource(RasterioRasterSource):
    """Rasterio source whose nodata can be replaced by the caller (the file's mask is then ignored)."""

    def __init__(self, ds: Any, band_idx: int, nodata: float | None) -> None:
        super().__init__(ds, band_idx)
        self._nodata = nodata

    def nodata_value(self) -> float | int | None:
        return super().nodata_value() if self._nodata is None else None

    def read_window(self, x0: int, y0: int, nx: int, ny: int) -> Any:
        try:
            return self._read_window(x0, y0, nx, ny)
        except rasterio.errors.RasterioIOError as exc:  # a truncated or corrupt file: a data problem
            raise DataError(f"cannot read raster {self.ds.name}: {str(exc).splitlines()[0][:160]}; the file is "
                            "truncated or corrupt, get it again") from exc

    def _read_window(self, x0: int, y0: int, nx: int, ny: int) -> Any:
        if self._nodata is None:
            return super().read_window(x0, y0, nx, ny)

        raw = self.ds.read(self.band_idx, window=Window(x0, y0, nx, ny))
        values = raw * self.scale + self.offset if self.scaled else raw
        return np.ma.masked_array(values, mask=(raw == self._nodata) | np.isnan(values))


class _WKBFeature(Feature):  # type: ignore[misc]
    """One polygon as WKB with an integer id (``_zid``)."""

    def __init__(self, zid: int, wkb: bytes) -> None:
        Feature.__init__(self)
        self.zid, self.wkb = zid, wkb

    def geometry(self) -> bytes:
        return self.wkb

    def set_geometry_format(self) -> str:
        return "wkb"

    def get(self, name: str) -> int:
        return self.zid

    def fields(self) -> list[str]:
        return ["_zid"]


class WKBFeatureSource(FeatureSource):
    """Polygons given as a shapely array, read by exactextract as WKB."""

    def __init__(self, geometries: np.ndarray, ids: np.ndarray, crs: CRS) -> None:
        super().__init__()
        self._wkb = shapely.to_wkb(geometries)
        self._ids = [int(i) for i in ids]
        self._wkt = crs.to_wkt()

    def count(self) -> int:
        return len(self._wkb)

    def __iter__(self) -> Iterator[Any]:
        return (_WKBFeature(i, w) for i, w in zip(self._ids, self._wkb, strict=True))

    def srs_wkt(self) -> str:
        return self._wkt


def band_labels(values: np.ndarray) -> tuple[str, ...]:
    """Column labels for band/time coordinate values (``2021-06-18`` for dates)."""
    array = np.asarray(values)
    if array.dtype.kind == "M":
        for unit in ("D", "s", "ns"):
            labels = tuple(str(v) for v in np.datetime_as_string(array, unit=unit))
            if len(set(labels)) == len(labels):
                return labels
    labels = tuple(str(v) for v in array.tolist())
    if len(set(labels)) != len(labels):
        raise DataError(f"band/time labels are not unique ({', '.join(labels)}); relabel the coordinate")
    return labels


# ------------------------------------------------------------------ files
@contextmanager
def _open_file(path: str | os.PathLike[str], nodata: float | None) -> Iterator[RasterInput]:
    try:
        ds = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"cannot open raster {path}: {str(exc).splitlines()[0][:160]}") from exc
    with ds:
        if ds.crs is None:
            raise DataError(f"raster {path} has no CRS; assign one (e.g. rio edit-info --crs EPSG:2154)")
        if ds.transform.b != 0 or ds.transform.d != 0:
            raise DataError(f"raster {path} is rotated; warp it to a north-up grid first")
        labels = _file_labels(ds)
        sources = tuple(_FileSource(ds, band, nodata) for band in range(1, ds.count + 1))
        for band, source in enumerate(sources):
            source.set_name(f"b{band}")  # exactextract caches statistics by source name
        yield RasterInput(
            sources=sources,
            labels=labels,
            band_dim="band" if ds.count > 1 else None,
            crs=CRS.from_user_input(ds.crs),
            pixel_area=abs(ds.transform.a * ds.transform.e),
            integer=np.dtype(ds.dtypes[0]).kind in "iub",
        )


def _file_labels(ds: Any) -> tuple[str | None, ...]:
    if ds.count == 1:
        return (None,)
    names = [d or "" for d in ds.descriptions]
    if all(names) and len(set(names)) == len(names):
        return tuple(names)
    return tuple(f"b{i}" for i in range(1, ds.count + 1))


# ------------------------------------------------------------ DataArrays
def _spatial_dims(data: Any) -> tuple[str, str]:
    x = next((d for d in data.dims if d in _SPATIAL_X), None)
    y = next((d for d in data.dims if d in _SPATIAL_Y), None)
    if x is None or y is None:
        raise DataError(f"raster dims {tuple(data.dims)} have no x/y dimensions; name them 'x' and 'y'")
    return str(x), str(y)


def _band_dim(data: Any, x: str, y: str, band_dim: str | None) -> str | None:
    others = [str(d) for d in data.dims if d not in (x, y)]
    if band_dim is not None:
        if band_dim not in others:
            raise DataError(f"band_dim {band_dim!r} is not a dimension of the raster {tuple(data.dims)}")
        others.remove(band_dim)
        if any(data.sizes[d] > 1 for d in others):
            raise DataError(f"raster has extra dimensions {others}; select or reduce them first")
        return band_dim
    if len(others) > 1:
        raise DataError(f"raster has several non-spatial dimensions {others}; pass band_dim= or reduce them")
    return others[0] if others else None


def _grid(data: Any, x: str, y: str) -> tuple[float, float, float, float, float]:
    xs, ys = np.asarray(data[x].values, dtype="float64"), np.asarray(data[y].values, dtype="float64")
    if len(xs) < 2 or len(ys) < 2:
        dx, dy = (abs(v) for v in data.rio.resolution())
    else:
        dx, dy = abs(xs[1] - xs[0]), abs(ys[1] - ys[0])
        if not (np.allclose(np.diff(xs), xs[1] - xs[0]) and np.allclose(np.diff(ys), ys[1] - ys[0])):
            raise DataError("raster coordinates are not regularly spaced; resample it to a regular grid")
    xmin, xmax = xs.min() - dx / 2, xs.max() + dx / 2
    ymin, ymax = ys.min() - dy / 2, ys.max() + dy / 2
    return xmin, ymin, xmax, ymax, dx * dy


def _dataarray(data: Any, nodata: float | None, band_dim: str | None) -> RasterInput:
    if data.rio.crs is None:
        raise DataError(
            f"raster {data.name or ''!s} has no CRS; set it with .rio.write_crs('EPSG:2154') before zonal stats"
        )
    x, y = _spatial_dims(data)
    dim = _band_dim(data, x, y, band_dim)
    if getattr(data, "chunks", None) is not None:
        log.info("computing the dask-backed raster once (%s) before zonal statistics", dict(data.sizes))
        data = data.compute()
    data = data.squeeze([d for d in data.dims if d not in (x, y, dim)], drop=True)
    data = data.sortby(y, ascending=False).sortby(x)
    data = data.transpose(*([dim] if dim else []), y, x)
    xmin, ymin, xmax, ymax, pixel_area = _grid(data, x, y)
    value = nodata if nodata is not None else data.rio.nodata
    if value is not None and np.isnan(value):
        value = None  # NaN is always treated as nodata by exactextract
    array = np.asarray(data.values)
    bands = [array] if dim is None else list(array)
    wkt = CRS.from_user_input(data.rio.crs).to_wkt()
    sources = tuple(  # named: exactextract caches statistics by source name
        NumPyRasterSource(np.ascontiguousarray(b), xmin, ymin, xmax, ymax, nodata=value, srs_wkt=wkt, name=f"b{i}")
        for i, b in enumerate(bands)
    )
    labels: tuple[str | None, ...] = (None,) if dim is None else band_labels(data[dim].values)
    return RasterInput(
        sources=sources,
        labels=labels,
        band_dim=dim,
        crs=CRS.from_user_input(data.rio.crs),
        pixel_area=pixel_area,
        integer=array.dtype.kind in "iub",
        coords=() if dim is None else tuple(data[dim].values),
    )


@contextmanager
def open_raster(raster: Any, *, nodata: float | None = None, band_dim: str | None = None) -> Iterator[RasterInput]:
    """Open ``raster`` (path or DataArray) as exactextract sources; files stay open inside the block.

    Raises
    ------
    DataError
        No CRS, rotated or irregular grid, unreadable file, too many dimensions.
    """
    if isinstance(raster, str | os.PathLike):
        with _open_file(raster, nodata) as opened:
            yield opened
        return
    if not hasattr(raster, "dims"):
        raise DataError(f"raster must be a file path or an xarray DataArray, not {type(raster).__name__}")
    if hasattr(raster, "data_vars"):
        raise DataError("raster is a Dataset; pick one variable (ds['ndvi']) or stack them along a dimension")
    yield _dataarray(raster, nodata, band_dim)
