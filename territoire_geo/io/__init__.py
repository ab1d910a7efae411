"""Local formats: COG, Zarr (windowed), GeoPackage with QGIS styles, GeoParquet, CSV — written atomically."""

from territoire_geo.io._cog import write_cog
from territoire_geo.io._csv import csv_safe, write_table_csv
from territoire_geo.io._qgis import (
    CHANGE_COLOURS,
    TYPEZONE_COLOURS,
    add_style,
    categorized_qml,
    graduated_qml,
)
from territoire_geo.io._raster import write_raster
from territoire_geo.io._vector import GPKG_TIMESTAMP, write_vector
from territoire_geo.io._windows import DEFAULT_WINDOW, compute_windows, grid_windows
from territoire_geo.io._zarr import write_cube_zarr, write_cube_zarrs

__all__ = [
    "CHANGE_COLOURS",
    "DEFAULT_WINDOW",
    "GPKG_TIMESTAMP",
    "TYPEZONE_COLOURS",
    "add_style",
    "categorized_qml",
    "compute_windows",
    "csv_safe",
    "graduated_qml",
    "grid_windows",
    "write_cog",
    "write_cube_zarr",
    "write_cube_zarrs",
    "write_raster",
    "write_table_csv",
    "write_vector",
]
