"""Terrain slope from a DEM, for the slope criterion of land-reserve scoring."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pyproj import CRS
from rasterio.enums import Resampling

from territoire_geo.errors import DataError

__all__ = ["reproject_dem", "slope_percent"]

log = logging.getLogger(__name__)


def reproject_dem(dem: xr.DataArray, crs: str | int | CRS = "EPSG:2154", *,
                  resolution: float | None = 30.0) -> xr.DataArray:
    """Reproject a DEM (e.g. Copernicus DEM in EPSG:4326) to a projected grid, bilinear.

    Parameters
    ----------
    dem
        2-D DataArray with a CRS (``.rio.crs``); a ``band`` dimension of size 1 is dropped.
    crs
        Projected target CRS.
    resolution
        Target pixel size in metres (``None``: let GDAL choose).

    Returns
    -------
    DataArray
        float32 heights, NaN where there is no data.

    Raises
    ------
    DataError
        The DEM has no CRS or the target CRS is geographic.
    """
    target = CRS.from_user_input(crs)
    if not target.is_projected:
        raise DataError(f"target CRS {target.to_string()} is not projected; slopes need metres")
    dem = _single_band(dem)
    if dem.rio.crs is None:
        raise DataError("the DEM has no CRS; set it with .rio.write_crs(...) first")
    source_nodata = dem.rio.nodata
    data = dem.astype("float32")
    if source_nodata is not None and not np.isnan(source_nodata):
        data = data.where(dem != source_nodata)
    data = data.rio.write_nodata(np.nan, encoded=False)
    options: dict[str, Any] = {"resampling": Resampling.bilinear, "nodata": np.nan}
    if resolution is not None:
        options["resolution"] = resolution
    log.info("reprojecting the DEM from %s to %s", dem.rio.crs.to_string(), target.to_string())
    return data.rio.reproject(target, **options)


def _single_band(dem: xr.DataArray) -> xr.DataArray:
    extra = [d for d in dem.dims if d not in ("x", "y")]
    if any(dem.sizes[d] > 1 for d in extra):
        raise DataError(f"the DEM must be one band, got dims {tuple(dem.dims)}")
    return dem.squeeze(extra, drop=True) if extra else dem


def slope_percent(dem: xr.DataArray) -> xr.DataArray:
    """Slope in percent (100 × rise / run) of a DEM on a projected grid (numpy gradient).

    Central differences inside, one-sided at the edges; NaN heights give NaN slopes
    around them. The array is computed in memory (DEM tiles are small).

    Parameters
    ----------
    dem
        2-D DataArray with ``x``/``y`` coordinates in metres (projected CRS, see
        :func:`reproject_dem`).

    Returns
    -------
    DataArray
        float32 ``slope_percent`` on the same grid, CRS kept.

    Raises
    ------
    DataError
        The DEM is in a geographic CRS, has no CRS or is smaller than 2×2.
    """
    dem = _single_band(dem)
    crs = dem.rio.crs
    if crs is None:
        raise DataError("the DEM has no CRS; slopes need a projected grid in metres")
    if CRS.from_user_input(crs).is_geographic:
        raise DataError("the DEM is in a geographic CRS (degrees); reproject it with reproject_dem() first")
    if dem.sizes["y"] < 2 or dem.sizes["x"] < 2:
        raise DataError("the DEM must be at least 2×2 pixels to compute a slope")
    heights = np.asarray(dem.transpose("y", "x").values, dtype="float64")
    dz_dy, dz_dx = np.gradient(heights, dem["y"].values.astype("float64"), dem["x"].values.astype("float64"))
    slope = 100.0 * np.hypot(dz_dx, dz_dy)
    out = xr.DataArray(slope.astype("float32"), coords={"y": dem["y"], "x": dem["x"]}, dims=("y", "x"),
                       name="slope_percent", attrs={"long_name": "slope", "units": "%"})
    return out.rio.write_crs(crs).rio.write_nodata(np.nan, encoded=False)
