"""Plan and load imagery lazily onto one grid (odc-stac underneath).

:func:`plan_load` is pure: it reads item metadata only and returns a frozen
:class:`LoadPlan` (grid, bands, per-item asset keys and scale/offset).
:func:`load` builds the lazy dask graph: DNs are read by odc-stac, turned into
float32 reflectance per item (``DN * scale + offset``, nodata -> NaN), masked
with SCL when asked, and mosaicked to one slice per solar day.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import odc.stac
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox
from pyproj import CRS
from shapely.geometry import shape

from territoire_geo._types import AOI, AOILike
from territoire_geo.config import gdal_options
from territoire_geo.errors import ConfigError, DataError, NoDataFoundError, ScalingWarning
from territoire_geo.imagery.bands import CLASS_BANDS, BandAsset, band_assets, resolve_bands
from territoire_geo.imagery.masks import DEFAULT_SCL_MASK, apply_mask, scl_mask
from territoire_geo.sources import item_time, resolve_aoi

__all__ = ["LoadPlan", "PlannedItem", "load", "load_plan", "plan_load"]

log = logging.getLogger(__name__)
#: Default spatial chunk (pixels). 1024 rather than 2048: a time-series chunk holds every date of
#: every band (10 dates x 5 bands of 2048² float32 is 0.8 GB before indices and composites), and
#: the benchmarks measured 1.6 GB -> 1.0 GB peak and 1.8x less wall time on a 4-Mpx, 10-date
#: pipeline (docs/performance.md); smaller chunks also read faster over HTTP (stack.md §8.3).
DEFAULT_CHUNK = 1024


@dataclass(frozen=True)
class PlannedItem:
    """One item as it will be read: asset key, scale and offset per band."""

    item: pystac.Item
    assets: Mapping[str, BandAsset]
    solar_day: dt.date

    @property
    def id(self) -> str:
        """The item id."""
        return self.item.id


@dataclass(frozen=True)
class LoadPlan:
    """Everything :func:`load` needs, decided without reading a pixel."""

    items: tuple[PlannedItem, ...]
    bands: tuple[str, ...]
    geobox: GeoBox
    chunks: Mapping[str, int]
    mask_classes: frozenset[int] | None
    keep_scl: bool
    resampling: Mapping[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the output grid."""
        return (int(self.geobox.shape[0]), int(self.geobox.shape[1]))

    @property
    def pixels(self) -> int:
        """Pixels per band and time slice."""
        return self.shape[0] * self.shape[1]

    @property
    def days(self) -> list[dt.date]:
        """The solar days of the output time axis."""
        return sorted({p.solar_day for p in self.items})

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary, for ``--dry-run`` and manifests."""
        return {
            "crs": str(self.geobox.crs),
            "resolution": abs(float(self.geobox.resolution.x)),
            "shape": list(self.shape),
            "bounds": [float(v) for v in self.geobox.boundingbox],
            "bands": list(self.bands),
            "time_slices": len(self.days),
            "pixels": self.pixels * len(self.days) * len(self.bands),
            "items": [_describe_item(p) for p in self.items],
        }


def _describe_item(planned: PlannedItem) -> dict[str, Any]:
    first = next((a for a in planned.assets.values() if a.name not in CLASS_BANDS), None)
    return {
        "id": planned.id,
        "collection": planned.item.collection_id,
        "datetime": item_time(planned.item).isoformat(),
        "processing_baseline": planned.item.properties.get("s2:processing_baseline")
        or planned.item.properties.get("processing:version"),
        "scale": first.scale if first else None,
        "offset": first.offset if first else None,
        "assets": {name: {"key": a.key, "href": a.href} for name, a in planned.assets.items()},
    }


def plan_load(
    items: Iterable[pystac.Item],
    *,
    bands: Sequence[str] | str,
    aoi: AOILike,
    crs: str | int | CRS = "EPSG:2154",
    resolution: float = 10.0,
    chunks: Mapping[str, int] | None = None,
    mask: bool | Iterable[int] = False,
) -> LoadPlan:
    """Decide the grid, bands and per-item scaling of a load (pure).

    Parameters
    ----------
    items
        STAC items (any provider; several UTM zones allowed).
    bands
        Canonical band names (``red``, ``nir``, ``scl``…).
    aoi
        Area to cover; the grid is its bounding box in ``crs``, snapped to
        multiples of ``resolution``.
    crs, resolution
        Output grid (Lambert-93 at 10 m by default).
    chunks
        Dask chunk sizes (``{"x": 1024, "y": 1024}`` by default, :data:`DEFAULT_CHUNK`).
    mask
        ``True`` for the default SCL classes, or an iterable of SCL codes.

    Raises
    ------
    ConfigError
        On a bad resolution, CRS or chunk size.
    NoDataFoundError
        If no item covers the AOI.
    MissingBandError
        If a band is unknown or missing from an item.
    """
    if not resolution or resolution <= 0 or not np.isfinite(resolution):
        raise ConfigError(f"resolution={resolution} must be a positive number of metres")
    wanted = resolve_bands(bands)
    area = resolve_aoi(aoi)
    target = _crs(crs)
    geobox = _geobox(area, target, float(resolution))
    mask_classes = _mask_classes(mask)
    read_bands = tuple(dict.fromkeys([*wanted, *(["scl"] if mask_classes else [])]))
    planned = tuple(_plan_item(i, read_bands, area) for i in _covering(items, area))
    if not planned:
        raise NoDataFoundError("no item covers the area of interest; widen the period or check the AOI")
    return LoadPlan(planned, tuple(wanted), geobox, _chunks(chunks), mask_classes, "scl" in wanted,
                    {b: ("nearest" if b in CLASS_BANDS else "bilinear") for b in read_bands})


def _crs(crs: str | int | CRS) -> CRS:
    try:
        value = CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises CRSError, a subclass of Exception
        raise ConfigError(f"unknown CRS {crs!r}; use e.g. EPSG:2154") from exc
    if value.is_geographic:
        raise ConfigError(f"{crs} is geographic; give a projected CRS so that resolution is in metres")
    return value


def _geobox(aoi: AOI, crs: CRS, resolution: float) -> GeoBox:
    minx, miny, maxx, maxy = aoi.to_crs(crs).bounds
    if (maxx - minx) / resolution * (maxy - miny) / resolution > 2e9:
        raise ConfigError(f"the AOI at {resolution} m is over 2 billion pixels; split it or coarsen")
    return GeoBox.from_bbox((minx, miny, maxx, maxy), crs=crs.to_string(), resolution=resolution)


def _mask_classes(mask: bool | Iterable[int]) -> frozenset[int] | None:
    if mask is True:
        return DEFAULT_SCL_MASK
    if mask is False or mask is None:
        return None
    return frozenset(int(c) for c in mask)  # type: ignore[union-attr]


def _chunks(chunks: Mapping[str, int] | None) -> dict[str, int]:
    out = {"x": DEFAULT_CHUNK, "y": DEFAULT_CHUNK, **(chunks or {})}
    if any(not isinstance(v, int) or v < 1 for v in out.values()):
        raise ConfigError(f"chunks {dict(out)} must be positive integers")
    return out


def _covering(items: Iterable[pystac.Item], aoi: AOI) -> list[pystac.Item]:
    area = aoi.to_crs(4326).geometry
    return [i for i in items if i.geometry is None or shape(i.geometry).intersects(area)]


def _plan_item(item: pystac.Item, bands: Sequence[str], aoi: AOI) -> PlannedItem:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScalingWarning)
        assets = band_assets(item, bands)
    for warning in caught:
        warnings.warn(warning.message, ScalingWarning, stacklevel=3)
    lon = aoi.to_crs(4326).geometry.centroid.x
    moment = item_time(item) + dt.timedelta(hours=lon / 15.0)
    return PlannedItem(item, assets, moment.date())


def load_plan(plan: LoadPlan, *, sign: Callable[[str], str] | None = None,
              progress: Callable[[str], None] | None = None) -> xr.Dataset:
    """Build the lazy dataset described by ``plan``; see :func:`load`."""
    odc.stac.configure_rio(**gdal_options())
    renamed = [_renamed_item(p) for p in plan.items]
    read = list(plan.resampling)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(dtype|nodata).*", category=UserWarning)
        raw = odc.stac.load(renamed, bands=read, groupby="id", geobox=plan.geobox, chunks=dict(plan.chunks),
                            resampling=dict(plan.resampling), stac_cfg=_stac_cfg(plan), patch_url=sign,
                            preserve_original_order=True, fail_on_error=True)
    if progress:
        progress(f"graph built for {len(plan.items)} item(s), {len(plan.days)} day(s)")
    return _to_reflectance(raw, plan)


def _renamed_item(planned: PlannedItem) -> pystac.Item:
    item = planned.item.clone()
    item.clear_links()
    item.assets = {}
    for name, band in planned.assets.items():
        asset = planned.item.assets[band.key].clone()
        asset.href = band.href
        item.add_asset(name, asset)
    return item


def _stac_cfg(plan: LoadPlan) -> dict[str, Any]:
    assets = {b: {"data_type": "uint8" if b == "scl" else "uint16", "nodata": 0} for b in plan.resampling}
    return {"*": {"assets": assets}}


def _to_reflectance(raw: xr.Dataset, plan: LoadPlan) -> xr.Dataset:
    out = xr.Dataset(coords={k: v for k, v in raw.coords.items() if k != "time"})
    index = np.arange(len(plan.items))
    for band in plan.resampling:
        data = raw[band].assign_coords(time=index)
        if band in CLASS_BANDS:
            out[band] = data
            continue
        scale = xr.DataArray(np.array([p.assets[band].scale for p in plan.items], "float32"), dims="time",
                             coords={"time": index})
        offset = xr.DataArray(np.array([p.assets[band].offset for p in plan.items], "float32"), dims="time",
                              coords={"time": index})
        nodata = plan.items[0].assets[band].nodata
        out[band] = xr.apply_ufunc(_reflectance_block, data, scale, offset, kwargs={"nodata": nodata},
                                   dask="parallelized", output_dtypes=[np.float32])
    if plan.mask_classes:
        out = apply_mask(out, scl_mask(out["scl"], plan.mask_classes) | (out["scl"] == 0))
    if not plan.keep_scl and "scl" in out:
        out = out.drop_vars("scl")
    return _mosaic_days(out, plan)


def _reflectance_block(raw: np.ndarray, scale: np.ndarray, offset: np.ndarray, *,
                       nodata: float | None) -> np.ndarray:
    """``raw * scale + offset`` in float32, NaN where ``raw == nodata``, in one buffer per block.

    Same operations in the same order as ``raw.astype("float32") * scale + offset`` then
    ``.where(raw != nodata)`` (bit-identical), without three more block-sized arrays.
    """
    out = raw.astype(np.float32)
    out *= scale
    out += offset
    if nodata is not None:
        out[raw == nodata] = np.nan
    return out


def _mosaic_days(ds: xr.Dataset, plan: LoadPlan) -> xr.Dataset:
    days = [p.solar_day for p in plan.items]
    slices = []
    stamps = []
    for day in sorted(set(days)):
        idx = [i for i, d in enumerate(days) if d == day]
        day_ds = ds.isel(time=idx[0])
        for i in idx[1:]:
            day_ds = _fill(day_ds, ds.isel(time=i))
        slices.append(day_ds.drop_vars("time", errors="ignore"))
        stamps.append(min(item_time(plan.items[i].item) for i in idx))
    times = np.array([s.astimezone(dt.UTC).replace(tzinfo=None) for s in stamps], "datetime64[ns]")
    result = xr.concat(slices, dim="time", combine_attrs="drop_conflicts").assign_coords(time=times)
    result = result.transpose("time", "y", "x")
    for name in result.data_vars:
        result[name].attrs.update(_band_attrs(name))
    result.attrs.update({
        "crs": str(plan.geobox.crs),
        "territoire_geo:items": json.dumps([_describe_item(p) for p in plan.items]),
        "source_items": ", ".join(p.id for p in plan.items),
    })
    return result


def _fill(first: xr.Dataset, second: xr.Dataset) -> xr.Dataset:
    out = first.copy()
    for name, var in first.data_vars.items():
        if var.dtype.kind == "f":
            out[name] = var.fillna(second[name])
        else:
            out[name] = var.where(var != 0, second[name])
    return out


def _band_attrs(name: str) -> dict[str, str]:
    if name in CLASS_BANDS:
        return {"long_name": f"{name} classes", "units": "1", "nodata": "0"}
    return {"long_name": f"{name} surface reflectance", "units": "1"}


def load(
    items: Iterable[pystac.Item],
    *,
    bands: Sequence[str] | str,
    aoi: AOILike,
    crs: str | int | CRS = "EPSG:2154",
    resolution: float = 10.0,
    chunks: Mapping[str, int] | None = None,
    mask: bool | Iterable[int] = False,
    sign: Callable[[str], str] | None = None,
) -> xr.Dataset:
    """Load items lazily as float32 reflectance on one grid.

    Parameters
    ----------
    items
        STAC items from any source (API, static catalog, fetched folder).
    bands
        Canonical band names; ``scl`` is kept as an integer variable.
    aoi, crs, resolution, chunks, mask
        See :func:`plan_load`.
    sign
        Hook applied to every href before reading (URL signing).

    Returns
    -------
    xarray.Dataset
        ``(time, y, x)`` dask-backed variables, one per band; NaN = no data or
        masked; one time slice per solar day (same-day tiles mosaicked).

    Examples
    --------
    >>> ds = load(items, bands=["red", "nir"], aoi="aoi.geojson", mask=True)  # doctest: +SKIP
    >>> ndvi = (ds.nir - ds.red) / (ds.nir + ds.red)  # doctest: +SKIP
    """
    plan = plan_load(items, bands=bands, aoi=aoi, crs=crs, resolution=resolution, chunks=chunks, mask=mask)
    try:
        return load_plan(plan, sign=sign)
    except (OSError, RuntimeError) as exc:
        raise DataError(f"cannot read imagery: {str(exc).splitlines()[0][:200]}; check the files") from exc


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}
