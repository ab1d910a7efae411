"""Workflows of the ``zoning`` commands: read and validate a PLU, fetch one from the GPU, save it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd

from territoire_geo._atomic import ensure_new
from territoire_geo._types import AOILike
from territoire_geo.config import Settings
from territoire_geo.errors import ConfigError
from territoire_geo.io import write_vector
from territoire_geo.planning import zoning as cnig
from territoire_geo.planning.zoning import ValidationReport, ZoningSet
from territoire_geo.sources import gpu

__all__ = ["ZoningCheck", "fetch_zoning", "fetch_zoning_to", "validate_zoning", "write_zoning"]

# ------------------------------------------------------------------- zoning
class ZoningCheck(NamedTuple):
    """What :func:`validate_zoning` read, found and wrote."""

    report: ValidationReport
    zoning: ZoningSet
    written: Path | None


def write_zoning(zoning: ZoningSet, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write every layer and table of a ZoningSet to one GeoPackage, atomically.

    Spatial layers keep their names (``zone_urba``, ``prescription_surf``…); DOC_URBA
    and DOC_URBA_COM become layers without geometry, so :func:`territoire_geo.planning.zoning.read`
    reads the file back as the same set.

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    ConfigError
        If ``path`` is not a ``.gpkg``.
    """
    target = Path(path)
    if target.suffix.lower() != ".gpkg":
        raise ConfigError(f"cannot write zoning to {target.name}: give a .gpkg file")
    layers: dict[str, Any] = dict(zoning.layers())
    for name, table in zoning.tables().items():
        empty = gpd.GeoSeries([None] * len(table), index=table.index, crs=zoning.zones.crs)
        layers[name] = gpd.GeoDataFrame(table, geometry=empty)
    return write_vector(layers, target, overwrite=overwrite)


def validate_zoning(path: str | Path, fix: str | Path | None = None, overwrite: bool = False) -> ZoningCheck:
    """Read a PLU/PLUi (any CNIG generation or container), validate it, optionally save the repaired set.

    Parameters
    ----------
    path
        GPU archive (zip or folder), shapefile, GeoPackage, GeoJSON… (see :func:`territoire_geo.planning.zoning.read`).
    fix
        GeoPackage to write the repaired layers to (2-D, valid, CNIG names, Lambert-93);
        nothing is written when the report is blocking.
    overwrite
        Replace an existing ``fix`` file.

    Returns
    -------
    ZoningCheck
        The validation report, the repaired set and the written path (or ``None``).

    Raises
    ------
    DataError
        The file cannot be read as a PLU (no ZONE_URBA, mandatory fields missing…).
    ExportError
        ``fix`` exists and ``overwrite`` is false (checked before reading), or the disk is full.
    """
    if fix is not None:
        ensure_new(fix, overwrite=overwrite)
    zoning = cnig.read(path)
    report = zoning.validate()
    written = None
    if fix is not None and not report.blocking:
        written = write_zoning(zoning, fix, overwrite=overwrite)
    return ZoningCheck(report, zoning, written)


def fetch_zoning(
    *,
    insee: str | int | None = None,
    partition: str | None = None,
    aoi: AOILike | None = None,
    layers: Sequence[str] = gpu.LAYERS,
    base_url: str = gpu.DEFAULT_BASE_URL,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
) -> ZoningSet:
    """Fetch a PLU/PLUi from the Géoportail de l'Urbanisme (API Carto) as a normalised ZoningSet.

    The layers come from :func:`territoire_geo.sources.gpu.fetch_tables` (same
    parameters) and go through :func:`territoire_geo.planning.zoning.read`, like a
    GPU archive read from disk.

    Returns
    -------
    ZoningSet
        Layers with upper-case CNIG fields and string codes, in EPSG:2154;
        ``cnig_version == "apicarto"``; ``source`` names the partition and the API;
        ``repairs`` starts with what was fetched.

    Raises
    ------
    ConfigError, NoDataFoundError, SourceUnavailableError, SourceError
        As :func:`territoire_geo.sources.gpu.fetch_tables`.

    Examples
    --------
    >>> plu = fetch_zoning(insee="30014")  # doctest: +SKIP
    >>> plu.zones.groupby("TYPEZONE").size()  # doctest: +SKIP
    """
    fetched = gpu.fetch_tables(insee=insee, partition=partition, aoi=aoi, layers=layers, base_url=base_url,
                               settings=settings, progress=progress)
    result = cnig.read(fetched.tables)
    return dataclasses.replace(result, source=fetched.source, repairs=[*fetched.notes, *result.repairs])


def fetch_zoning_to(
    path: str | Path,
    *,
    insee: str | None = None,
    partition: str | None = None,
    aoi: AOILike | None = None,
    layers: Sequence[str] | None = None,
    base_url: str | None = None,
    overwrite: bool = False,
    settings: Settings | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fetch a PLU/PLUi from API Carto (Géoportail de l'Urbanisme) and save it as a GeoPackage.

    Parameters
    ----------
    path
        GeoPackage to create (checked before any request).
    insee, partition, aoi
        Exactly one: commune INSEE code, GPU partition (``DU_30014``) or area of interest.
    layers
        API Carto endpoints (default: zones, prescriptions, informations, document).
    base_url
        API Carto GPU module (default ``https://apicarto.ign.fr/api/gpu``).
    overwrite
        Replace an existing file.
    settings
        HTTP settings (:class:`~territoire_geo.config.Settings`).
    progress
        Called with one message per page received.

    Returns
    -------
    dict
        ``path``, ``source``, ``cnig_version``, ``layers`` (feature count per requested
        layer, 0 when the API had none) and ``repairs``.
    """
    target = ensure_new(path, overwrite=overwrite)
    if target.suffix.lower() != ".gpkg":
        raise ConfigError(f"cannot write zoning to {target.name}: give a .gpkg file")
    wanted = tuple(layers or gpu.LAYERS)
    fetched = fetch_zoning(insee=insee, partition=partition, aoi=aoi, layers=wanted,
                           base_url=base_url or gpu.DEFAULT_BASE_URL, settings=settings, progress=progress)
    written = write_zoning(fetched, target, overwrite=overwrite)
    present = {**fetched.layers(), **fetched.tables()}
    names = ["doc_urba" if e == "document" else e.strip().lower().replace("-", "_") for e in wanted]
    return {
        "path": str(written),
        "source": fetched.source,
        "cnig_version": fetched.cnig_version,
        "layers": {name: len(present[name]) if name in present else 0 for name in names},
        "repairs": list(fetched.repairs),
    }
