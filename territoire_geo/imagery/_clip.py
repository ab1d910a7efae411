"""The AOI window of a (remote) raster as a local COG, read through GDAL (``/vsicurl`` for URLs)."""

from __future__ import annotations

import os
import re

import numpy as np
import rasterio
import rasterio.errors
from rasterio.windows import Window, from_bounds

from territoire_geo._types import AOI
from territoire_geo.config import Settings, gdal_env
from territoire_geo.errors import AuthenticationError, DataError
from territoire_geo.io import write_cog
from territoire_geo.sources import redact_url

__all__ = ["clip_to_cog"]

_URL = re.compile(r"https?://[^\s'\"]+")


def clip_to_cog(href: str, target: str | os.PathLike[str], aoi: AOI, *, settings: Settings | None = None) -> int:
    """Read the AOI window of a (remote) raster and write it as a COG.

    Returns the size of the written file in bytes.

    Raises
    ------
    DataError
        If the raster cannot be read or the AOI misses it.
    AuthenticationError
        If the server refuses the URL (401/403).
    ExportError
        If the disk is full.
    """
    remote = href.startswith(("http://", "https://"))
    path = f"/vsicurl/{href}" if remote else href
    shown = redact_url(href) if remote else href  # signed URLs hold secrets
    try:
        with gdal_env(settings), rasterio.open(path) as src:
            minx, miny, maxx, maxy = aoi.to_crs(src.crs).bounds
            window = from_bounds(minx, miny, maxx, maxy, src.transform).round_offsets().round_lengths()
            window = window.intersection(Window(0, 0, src.width, src.height))
            data = src.read(window=window)
            transform = src.window_transform(window)
            crs, nodata = src.crs, src.nodata
    except rasterio.errors.WindowError as exc:
        raise DataError(f"the AOI does not overlap {shown}; check the AOI") from exc
    except rasterio.errors.RasterioIOError as exc:
        detail = _URL.sub(lambda m: redact_url(m.group(0)), str(exc).splitlines()[0])[:160]
        if re.search(r"HTTP response code: 40[13]\b", detail):
            raise AuthenticationError(f"{shown} was refused ({detail}); check your credentials or that the "
                                      "URL is signed and not expired") from exc
        raise DataError(f"cannot read {shown}: {detail}") from exc
    return write_cog(target, np.ascontiguousarray(data), transform, crs, nodata=nodata).stat().st_size
