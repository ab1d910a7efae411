"""Vector layers to GeoPackage (with QGIS styles) or GeoParquet, reproducibly."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyogrio

from territoire_geo._atomic import atomic_path, ensure_new
from territoire_geo.errors import ConfigError
from territoire_geo.io._qgis import add_style

__all__ = ["GPKG_TIMESTAMP", "write_vector"]

#: Timestamp GDAL writes into GeoPackage metadata, fixed so that reruns are byte-identical.
GPKG_TIMESTAMP = "2000-01-01T00:00:00.000Z"


def write_vector(frame: Any, path: str | os.PathLike[str], *, layer: str | None = None,
                 overwrite: bool = False, styles: Mapping[str, str] | None = None) -> Path:
    """Write a GeoDataFrame (or ``{layer: GeoDataFrame}``) to GeoPackage or GeoParquet, atomically.

    The format follows the extension: ``.gpkg`` (pyogrio; several layers allowed) or
    ``.parquet`` (GeoParquet, one layer). Everything is written to
    ``<stem>.part.<ext>`` and renamed, so readers never see a half-written file.

    Parameters
    ----------
    frame
        A GeoDataFrame, or a mapping of layer name to GeoDataFrame (GPKG only).
    path
        Output file.
    layer
        Layer name of a single frame (default: the file stem).
    overwrite
        Replace an existing file.
    styles
        ``{layer: QML}`` QGIS styles stored in the GeoPackage (``layer_styles``).

    Raises
    ------
    ConfigError
        Unknown extension, or several layers for GeoParquet.
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    """
    target = ensure_new(path, overwrite=overwrite)
    suffix = target.suffix.lower()
    layers = dict(frame) if isinstance(frame, Mapping) else {layer or target.stem: frame}
    if suffix not in (".gpkg", ".parquet"):
        raise ConfigError(f"cannot write vectors to {target.name}: use a .gpkg or .parquet file")
    if suffix == ".parquet" and len(layers) != 1:
        raise ConfigError(f"GeoParquet holds one layer; got {len(layers)} for {target.name}")
    with atomic_path(target, keep_suffix=True) as tmp, _reproducible_gpkg():
        for name, data in layers.items():
            if suffix == ".parquet":
                data.to_parquet(tmp)
            else:
                data.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        if suffix == ".gpkg":
            for name, qml in (styles or {}).items():
                add_style(tmp, name, qml)
    return target


@contextmanager
def _reproducible_gpkg() -> Iterator[None]:
    """Fix the GeoPackage ``last_change`` timestamps (GDAL's OGR_CURRENT_DATE) while writing."""
    old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})
