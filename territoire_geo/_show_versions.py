"""Versions of territoire_geo and its key dependencies, for bug reports and manifests."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

__all__ = ["show_versions", "versions"]

KEY_PACKAGES = (
    "numpy", "pandas", "xarray", "dask", "distributed", "rasterio", "pyogrio", "geopandas", "shapely",
    "pyproj", "odc-stac", "odc-geo", "pystac", "pystac-client", "exactextract", "pydeck", "zarr",
    "pydantic", "typer", "rich", "sentinelsat", "matplotlib",
)  # fmt: skip


def versions() -> dict[str, str | None]:
    """Package and library versions (``None`` when a package is not installed)."""
    from territoire_geo import __version__

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
    libs: dict[str, str | None] = {}
    try:
        import rasterio

        libs["GDAL (rasterio)"] = rasterio.__gdal_version__
        libs["PROJ (rasterio)"] = str(getattr(rasterio, "__proj_version__", "")) or None
    except ImportError:
        libs["GDAL (rasterio)"] = None
    try:
        import pyogrio

        libs["GDAL (pyogrio)"] = pyogrio.__gdal_version_string__
    except ImportError:
        libs["GDAL (pyogrio)"] = None
    try:
        import shapely

        libs["GEOS"] = shapely.geos_version_string
    except ImportError:
        libs["GEOS"] = None
    try:
        import pyproj

        libs["PROJ (pyproj)"] = pyproj.proj_version_str
    except ImportError:
        libs["PROJ (pyproj)"] = None
    return libs


def show_versions() -> str:
    """The versions as aligned text lines."""
    info = versions()
    width = max(map(len, info))
    return "\n".join(f"{k:<{width}} : {v if v is not None else 'not installed'}" for k, v in info.items())
