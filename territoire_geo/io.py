"""Local reads and writes: COG clips, rasters, vectors — always atomic.

Every writer puts its bytes in ``<name>.part`` and renames, so a crash never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np

from territoire_geo._cog import write_cog
from territoire_geo._types import AOI
from territoire_geo.config import Settings, gdal_env
from territoire_geo.errors import DataError, ExportError

__all__ = ["clip_to_cog", "write_cog"]


def clip_to_cog(href: str, target: str | os.PathLike[str], aoi: AOI, *, settings: Settings | None = None) -> int:
    """Read the AOI window of a (remote) raster and write it as a COG.

    Returns the size of the written file in bytes.

    Raises
    ------
    DataError
        If the raster cannot be read or the AOI misses it.
    ExportError
        If the disk is full.
    """
    import rasterio
    from rasterio.windows import Window, from_bounds

    path = f"/vsicurl/{href}" if href.startswith(("http://", "https://")) else href
    try:
        with gdal_env(settings), rasterio.open(path) as src:
            minx, miny, maxx, maxy = aoi.to_crs(src.crs).bounds
            window = from_bounds(minx, miny, maxx, maxy, src.transform).round_offsets().round_lengths()
            window = window.intersection(Window(0, 0, src.width, src.height))
            data = src.read(window=window)
            transform = src.window_transform(window)
            crs, nodata = src.crs, src.nodata
    except rasterio.errors.WindowError as exc:
        raise DataError(f"the AOI does not overlap {href}; check the AOI") from exc
    except rasterio.errors.RasterioIOError as exc:
        raise DataError(f"cannot read {href}: {str(exc).splitlines()[0][:160]}") from exc
    try:
        out = write_cog(target, np.ascontiguousarray(data), transform, crs, nodata=nodata)
    except OSError as exc:
        raise _export_error(target, exc) from exc
    return out.stat().st_size


def _export_error(target: Any, exc: OSError) -> ExportError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ExportError(f"disk full while writing {target}; free space and run again")
    return ExportError(f"cannot write {target}: {exc.strerror or exc}")


def ensure_new(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Refuse to replace an existing output unless ``overwrite`` is true."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; pass --overwrite to replace it")
    return target


def write_raster(data: Any, path: str | os.PathLike[str], *, overwrite: bool = False,
                 tags: dict[str, str] | None = None) -> Path:
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
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    target = ensure_new(path, overwrite=overwrite)
    crs = data.rio.crs
    if crs is None:
        raise DataError(f"{getattr(data, 'name', 'array')} has no CRS; write_raster needs one")
    values = np.asarray(data.values)
    nodata = float("nan") if values.dtype.kind == "f" else data.rio.nodata
    names = [str(data.name)] if values.ndim == 2 else [str(v) for v in data[data.dims[0]].values]
    all_tags = {k: str(v) for k, v in data.attrs.items() if isinstance(v, (str, int, float))}
    all_tags.update(tags or {})
    try:
        return write_cog(target, values, data.rio.transform(), crs, nodata=nodata, descriptions=names,
                         tags=all_tags)
    except OSError as exc:
        raise _export_error(target, exc) from exc
