"""Cloud-Optimized GeoTIFFs from numpy arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine

from territoire_geo._atomic import atomic_path

__all__ = ["write_cog"]


def write_cog(
    path: str | os.PathLike[str],
    data: np.ndarray,
    transform: Affine,
    crs: Any,
    *,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    tags: dict[str, str] | None = None,
    blocksize: int = 256,
    resampling: str = "average",
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
) -> Path:
    """Write a 2-D or 3-D (band, y, x) array as a COG, atomically (:mod:`territoire_geo._atomic`).

    Raises
    ------
    ExportError
        The disk is full or the folder not writable.
    """
    target = Path(path)
    array = data[np.newaxis] if data.ndim == 2 else data
    profile = {
        "driver": "COG",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
        "compress": "DEFLATE",
        "level": 9,
        "predictor": 3 if array.dtype.kind == "f" else 2,
        "blocksize": blocksize,
        "overview_resampling": resampling,
    }
    with atomic_path(target) as tmp:
        if colormap:  # the COG driver keeps a colour table only when copying from a dataset holding one
            staging = tmp.with_name(tmp.name + ".stage.tif")
            gtiff = {**profile, "driver": "GTiff", "tiled": True, "blockxsize": blocksize, "blockysize": blocksize}
            for key in ("blocksize", "overview_resampling", "level"):
                gtiff.pop(key, None)
            try:
                _write(staging, array, gtiff, descriptions, tags, colormap)
                options = {k: profile[k] for k in ("compress", "predictor", "blocksize", "overview_resampling")}
                rasterio.shutil.copy(staging, tmp, driver="COG", **options)
            finally:
                staging.unlink(missing_ok=True)
        else:
            _write(tmp, array, profile, descriptions, tags, None)
    return target


def _write(path: Path, array: np.ndarray, profile: dict[str, Any], descriptions: list[str] | None,
           tags: dict[str, str] | None, colormap: dict[int, tuple[int, int, int, int]] | None) -> None:
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
        if tags:
            dst.update_tags(**tags)
        if colormap:
            dst.write_colormap(1, colormap)
