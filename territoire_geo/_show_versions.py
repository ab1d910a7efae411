"""Versions of territoire_geo and its key dependencies, for bug reports and manifests."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

import pyogrio
import pyproj
import rasterio
import shapely

from territoire_geo._version import __version__

__all__ = ["show_versions", "versions"]

KEY_PACKAGES = (
    "numpy", "pandas", "xarray", "dask", "distributed", "rasterio", "pyogrio", "geopandas", "shapely",
    "pyproj", "odc-stac", "odc-geo", "pystac", "pystac-client", "exactextract", "pydeck", "zarr",
    "pydantic", "typer", "rich", "sentinelsat", "matplotlib",
)  # fmt: skip


def versions() -> dict[str, str | None]:
    """Package and library versions (``None`` when a package is not installed)."""
    out: dict[str, str | None] = {
        "territoire_geo": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for name in KEY_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out.update(_native_libraries())
    return out


def _native_libraries() -> dict[str, str | None]:
    return {
        "GDAL (rasterio)": rasterio.__gdal_version__,
        "PROJ (rasterio)": str(getattr(rasterio, "__proj_version__", "")) or None,
        "GDAL (pyogrio)": pyogrio.__gdal_version_string__,
        "GEOS": shapely.geos_version_string,
        "PROJ (pyproj)": pyproj.proj_version_str,
    }


def show_versions() -> str:
    """The versions as aligned text lines."""
    info = versions()
    width = max(map(len, info))
    return "\n".join(f"{k:<{width}} : {v if v is not None else 'not installed'}" for k, v in info.items())
