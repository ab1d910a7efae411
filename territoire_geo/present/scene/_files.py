"""Read the inputs of a scene from files, recording their provenance in ``attrs["source"]``.

Vectors: anything pyogrio reads (GPKG with ``layer``, shapefile — its ``.cpg`` or
cp1252 for CNIG shapefiles without one —, GeoJSON, FlatGeobuf). Rasters: one band of
a GeoTIFF/COG. When a raster sits next to a STAC item JSON (as in a ``fetch`` cache
or ``data_samples/stac``), the provenance names the collection, item and date.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import rasterio
import rioxarray

from territoire_geo.errors import DataError

log = logging.getLogger(__name__)

__all__ = ["provenance", "read_raster", "read_vector"]


def _stac_item(path: Path) -> dict[str, Any] | None:
    for candidate in sorted(path.parent.glob("*.json")):
        try:
            item = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(item, dict) and item.get("type") == "Feature" and "assets" in item:
            return item
    return None


#: Readable names of the STAC collections territoire_geo knows.
_COLLECTIONS = {"cop-dem-glo-30": "Copernicus DEM GLO-30", "cop-dem-glo-90": "Copernicus DEM GLO-90",
                "sentinel-2-l2a": "Sentinel-2 L2A", "landsat-c2-l2": "Landsat C2 L2"}


def provenance(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(short title, full source) of a raster file.

    ``("Sentinel-2 L2A (2022-04-14)", "Sentinel-2 L2A S2A_… (2022-04-14)")`` for an asset next to a
    STAC item, else the file name twice.
    """
    file = Path(path)
    item = _stac_item(file)
    if item is None:
        return file.stem, file.name
    collection = str(item.get("collection") or "")
    name = _COLLECTIONS.get(collection, collection or file.stem)
    date = str(item.get("properties", {}).get("datetime") or "")[:10]
    suffix = f" ({date})" if date and not collection.startswith("cop-dem") else ""
    return f"{name}{suffix}", f"{name} {item.get('id') or file.parent.name}" + (f" ({date})" if date else "")


def _plu_source(frame: gpd.GeoDataFrame, file: Path) -> str:
    lower = {str(c).lower(): c for c in frame.columns}
    if "idurba" in lower and frame[lower["idurba"]].notna().any():
        doc = str(frame[lower["idurba"]].dropna().iloc[0])
        date = ""
        if "datvalid" in lower and frame[lower["datvalid"]].notna().any():
            raw = str(frame[lower["datvalid"]].dropna().iloc[0])[:10].replace("-", "")
            date = f", {raw[6:8]}/{raw[4:6]}/{raw[:4]}" if len(raw) == 8 and raw.isdigit() else f", {raw}"
        return f"PLU {doc}{date}"
    return file.name


def read_vector(path: str | os.PathLike[str], *, layer: str | None = None) -> gpd.GeoDataFrame:
    """A vector file as a 2D GeoDataFrame with ``attrs["source"]`` and ``attrs["title"]``.

    Raises
    ------
    DataError
        The file cannot be read or has no CRS.
    """
    file, layer = _vector_source(Path(path), layer)
    options: dict[str, Any] = {}
    if file.suffix.lower() == ".shp" and not file.with_suffix(".cpg").exists():
        options["encoding"] = "cp1252"  # CNIG shapefiles without .cpg are Windows-1252
    try:
        frame = gpd.read_file(file, layer=layer, **options)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise DataError(f"cannot read {file}: {str(exc).splitlines()[0][:200]}") from exc
    if not isinstance(frame, gpd.GeoDataFrame):  # a table without geometry (e.g. the DOC_URBA of a PLU folder)
        raise DataError(f"{file}{f' layer {layer}' if layer else ''} has no geometry; give a polygon layer "
                        "(for a PLU folder, its ZONE_URBA file)")
    if frame.crs is None:
        raise DataError(f"{file} has no CRS (missing .prj?); fix the file or reproject it first")
    frame = frame.set_geometry(frame.geometry.force_2d())
    frame.attrs["source"] = _plu_source(frame, file)
    frame.attrs["title"] = file.stem.replace("_", " ")
    return frame


def _vector_source(file: Path, layer: str | None) -> tuple[Path, str | None]:
    """The file and layer to read: a PLU folder gives its ZONE_URBA, a lone spatial layer is taken.

    Raises
    ------
    DataError
        Several spatial layers and no ``layer`` given.
    """
    if file.is_dir():
        zones = sorted(p for p in file.rglob("*") if p.suffix.lower() == ".shp" and "zone_urba" in p.name.lower())
        if len(zones) == 1:
            log.info("%s: reading its zoning %s", file, zones[0].name)
            return zones[0], layer
    if layer is not None:
        return file, layer
    try:
        layers = pyogrio.list_layers(file)
    except (pyogrio.errors.DataSourceError, OSError):
        return file, None  # the read reports what is wrong
    if len(layers) <= 1:
        return file, None
    spatial = [str(name) for name, geometry in layers if geometry is not None]
    if len(spatial) == 1:
        return file, spatial[0]
    names = ", ".join(str(name) for name in layers[:8, 0]) + (", …" if len(layers) > 8 else "")
    raise DataError(f"{file} holds {len(layers)} layers ({names}); choose one with --layer")


def read_raster(path: str | os.PathLike[str]) -> Any:
    """Band 1 of a raster as a DataArray (dtype and nodata kept) with provenance in ``attrs``.

    Raises
    ------
    DataError
        The file cannot be read or has no CRS.
    """
    file = Path(path)
    try:
        data = rioxarray.open_rasterio(file)
    except (rasterio.errors.RasterioIOError, OSError) as exc:
        raise DataError(f"cannot read {file}: {str(exc).splitlines()[0][:200]}") from exc
    if data.rio.crs is None:
        raise DataError(f"{file} has no CRS; georeference it first")
    band = data.isel(band=0, drop=True) if "band" in data.dims else data
    band.name = band.attrs.get("long_name") if isinstance(band.attrs.get("long_name"), str) else file.stem
    band.attrs["title"], band.attrs["source"] = provenance(file)
    return band
