"""Ready-made workflows chaining search, load, indices and outputs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from territoire_geo.errors import ConfigError, ExportError

if TYPE_CHECKING:
    from territoire_geo._types import AOILike
    from territoire_geo.config import Settings
    from territoire_geo.zoning import ValidationReport, ZoningSet

__all__ = [
    "CHANGE_INDICES",
    "ZoningCheck",
    "change_summary",
    "compute_indices",
    "detect_change",
    "fetch_zoning_to",
    "ndvi_quicklook",
    "validate_zoning",
    "write_zoning",
]

def ndvi_quicklook(samples: Path, out_dir: Path, *, overwrite: bool = False,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Yearly max-NDVI composites of the sample territory, their difference, COGs and PNG maps."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    from territoire_geo.io import write_raster
    from territoire_geo.load import load
    from territoire_geo.report import quicklook_png
    from territoire_geo.sources import search

    say = progress or (lambda _msg: None)
    if out_dir.exists():
        if not overwrite:
            raise ExportError(f"{out_dir} already exists; pass --overwrite to replace it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    aoi = next((samples / "plu").glob("*/Donnees_geographiques/*ZONE_URBA*.shp"))
    items = search(aoi, "2021-01-01/2023-12-31", source=samples / "stac", collections="sentinel-2-l2a",
                   max_cloud=60)
    say(f"{len(items)} Sentinel-2 scenes found")
    ds = load(items, bands=["red", "nir"], aoi=aoi, mask=True)
    ndvi = ((ds.nir - ds.red) / (ds.nir + ds.red)).astype("float32")
    yearly = ndvi.groupby("time.year").max("time")
    first, last = int(yearly.year.min()), int(yearly.year.max())
    outputs: dict[str, Any] = {}
    for year in (first, last):
        layer = yearly.sel(year=year).rename(f"ndvi_max_{year}").rio.write_crs("EPSG:2154")
        layer.attrs.update({"long_name": f"max NDVI {year}", "units": "1"})
        outputs[f"ndvi_max_{year}.tif"] = write_raster(layer, out_dir / f"ndvi_max_{year}.tif")
        say(f"NDVI {year} written")
    diff = (yearly.sel(year=last) - yearly.sel(year=first)).rename("ndvi_difference").rio.write_crs("EPSG:2154")
    outputs["ndvi_difference.tif"] = write_raster(diff, out_dir / "ndvi_difference.tif")
    source = "Contient des données Copernicus Sentinel-2 synthétiques · PLU Arpaillargues (GPU, Etalab 2.0)"
    outputs["ndvi_quicklook.png"] = quicklook_png(yearly.sel(year=last), out_dir / "ndvi_quicklook.png",
                                                  title=f"NDVI maximal {last}", source=source)
    outputs["ndvi_difference.png"] = quicklook_png(diff, out_dir / "ndvi_difference.png", cmap="RdBu",
                                                   vmin=-0.6, vmax=0.6, label="ΔNDVI",
                                                   title=f"Évolution du NDVI maximal {first}→{last}",
                                                   source=source)
    (out_dir / "items.json").write_text(json.dumps([i.id for i in items], indent=1))
    return {k: str(v) for k, v in outputs.items()}


# ---------------------------------------------------------------- indices and change
# (implemented in _analysis_workflows to keep this module small)
from territoire_geo._analysis_workflows import (  # noqa: E402
    CHANGE_INDICES,
    change_summary,
    compute_indices,
    detect_change,
)


# ------------------------------------------------------------------- zoning
class ZoningCheck(NamedTuple):
    """What :func:`validate_zoning` read, found and wrote."""

    report: ValidationReport
    zoning: ZoningSet
    written: Path | None


def write_zoning(zoning: ZoningSet, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write every layer and table of a ZoningSet to one GeoPackage, atomically.

    Spatial layers keep their names (``zone_urba``, ``prescription_surf``…); DOC_URBA
    and DOC_URBA_COM become layers without geometry, so :func:`territoire_geo.zoning.read`
    reads the file back as the same set.

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    ConfigError
        If ``path`` is not a ``.gpkg``.
    """
    import geopandas as gpd

    from territoire_geo.io import write_vector

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
        GPU archive (zip or folder), shapefile, GeoPackage, GeoJSON… (see :func:`territoire_geo.zoning.read`).
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
    from territoire_geo import zoning as cnig
    from territoire_geo.io import ensure_new

    if fix is not None:
        ensure_new(fix, overwrite=overwrite)
    zoning = cnig.read(path)
    report = zoning.validate()
    written = None
    if fix is not None and not report.blocking:
        written = write_zoning(zoning, fix, overwrite=overwrite)
    return ZoningCheck(report, zoning, written)


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
    from territoire_geo.io import ensure_new
    from territoire_geo.sources import gpu

    target = ensure_new(path, overwrite=overwrite)
    if target.suffix.lower() != ".gpkg":
        raise ConfigError(f"cannot write zoning to {target.name}: give a .gpkg file")
    wanted = tuple(layers or gpu.LAYERS)
    fetched = gpu.fetch_zoning(insee=insee, partition=partition, aoi=aoi, layers=wanted,
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


# Overlay and scoring from files (implemented in _decision_workflows to keep this module small).
from territoire_geo._decision_workflows import (  # noqa: E402
    ScoreRun,
    overlay_from_files,
    parse_assignments,
    score_from_files,
)

__all__ += ["ScoreRun", "overlay_from_files", "parse_assignments", "score_from_files"]
