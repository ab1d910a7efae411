"""Rasters as Cloud-Optimized GeoTIFFs, from DataArrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)

from territoire_geo._atomic import ensure_new
from territoire_geo.errors import DataError
from territoire_geo.io._cog import write_cog

__all__ = ["write_raster"]


def write_raster(data: Any, path: str | os.PathLike[str], *, overwrite: bool = False,
                 tags: dict[str, str] | None = None,
                 colormap: dict[int, tuple[int, int, int, int]] | None = None) -> Path:
    """Write a 2-D or (band, y, x) DataArray with a CRS as a COG, atomically.

    The array is computed here (the caller has reduced it to one or a few
    layers); float data keep NaN as nodata.

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    DataError
        If the array has no CRS.
    """
    target = ensure_new(path, overwrite=overwrite)
    crs = data.rio.crs
    if crs is None:
        raise DataError(f"{getattr(data, 'name', 'array')} has no CRS; write_raster needs one")
    values = np.asarray(data.values)
    nodata = float("nan") if values.dtype.kind == "f" else data.rio.nodata
    names = [str(data.name)] if values.ndim == 2 else [str(v) for v in data[data.dims[0]].values]
    all_tags = {k: str(v) for k, v in data.attrs.items() if isinstance(v, (str, int, float))}
    all_tags.update(tags or {})
    return write_cog(target, values, data.rio.transform(), crs, nodata=nodata, descriptions=names,
                     tags=all_tags, colormap=colormap,
                     resampling="nearest" if values.dtype.kind in "iu" else "average")
