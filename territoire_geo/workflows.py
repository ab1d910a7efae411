"""Ready-made workflows chaining search, load, indices and outputs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from territoire_geo.errors import ConfigError, ExportError

if TYPE_CHECKING:
    import xarray as xr

    from territoire_geo._types import AOILike, DateRangeLike
    from territoire_geo.change import ChangeRules
    from territoire_geo.composites import Method
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

#: Indices the change detection composites (NDBI and BSI both, for either rule set).
CHANGE_INDICES: tuple[str, ...] = ("ndvi", "ndbi", "bsi", "mndwi")


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


def compute_indices(source: Any, aoi: AOILike, period: DateRangeLike, out_dir: str | Path, *,
                    names: Sequence[str] = ("ndvi",), expressions: Mapping[str, str] | None = None,
                    method: Method = "median", collections: Sequence[str] | str | None = None,
                    max_cloud: float | None = None, chunks: Mapping[str, int] | None = None,
                    overwrite: bool = False, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Search, load (cloud-masked), compute indices, composite the period, write COGs.

    Writes ``<index>_<method>.tif`` per catalogue index or expression (float32, NaN
    nodata, tags: index, formula, period, composite, scenes) and ``valid_count.tif``
    (uint16: valid observations behind each composite pixel) into ``out_dir``.

    Returns
    -------
    dict
        ``outputs`` (name -> path), ``summary`` (one row per layer: mean, min, max,
        valid observations), ``items`` (scene ids), ``period``, ``composite``.

    Raises
    ------
    ExpressionError
        Unknown index or invalid expression (checked before any search).
    ExportError
        An output exists and ``overwrite`` is false (checked before any computation).
    """
    from territoire_geo import indices
    from territoire_geo._types import normalize_date_range
    from territoire_geo.composites import composite, method_label

    say = progress or (lambda _msg: None)
    names, bands = _index_bands(names, expressions or {}, method)
    label = method_label(method).replace(" ", "")
    variables = [indices.get(n).variable for n in names] + list(expressions or {})
    targets = {v: Path(out_dir) / f"{v}_{label}.tif" for v in variables}
    targets["valid_count"] = Path(out_dir) / "valid_count.tif"
    _check_targets(targets.values(), overwrite)
    span = normalize_date_range(period)
    ds, items = _load(source, aoi, span, bands, collections, max_cloud, chunks, say)
    idx = indices.compute(ds, names, expressions=expressions).assign_coords(spatial_ref=ds.spatial_ref)
    ndvi = indices.ndvi(ds) if method == "max_ndvi" else None
    comp = composite(idx, method=method, ndvi=ndvi)[[*variables, "valid_count"]].compute()
    say(f"{len(variables)} composite(s) computed")
    period_text = f"{span.start:%Y-%m-%d}/{span.end:%Y-%m-%d}"
    tags = {"period": period_text, "composite": label, "scenes": str(len(items))}
    outputs = {v: str(_write_layer(comp[v], path, overwrite, {**tags, "index": v})) for v, path in targets.items()}
    return {"outputs": outputs, "summary": [_layer_row(comp, v, outputs[v]) for v in variables],
            "items": [i.id for i in items], "period": period_text, "composite": label}


def _index_bands(names: Sequence[str], expressions: Mapping[str, str], method: Any) -> tuple[list[str], list[str]]:
    """Validate index names and expressions; the bands to load (before any search)."""
    from territoire_geo import indices
    from territoire_geo.errors import ExpressionError
    from territoire_geo.expr import parse

    names = [n.strip() for n in ([names] if isinstance(names, str) else names) if n.strip()]
    if not names and not expressions:
        raise ConfigError("nothing to compute: give index names and/or expressions")
    bands = {band for name in names for band in indices.get(name).bands}
    constants: dict[str, float] = {}
    for entry in indices.catalog()["constants"]:
        constants.update(entry)
    for label, text in expressions.items():
        try:
            bands |= parse(text, variables=indices.INDEX_BANDS, constants=constants).names
        except ExpressionError as exc:
            raise ExpressionError(f"expression {label!r}: {exc}") from exc
    if method == "max_ndvi":
        bands |= {"red", "nir"}
    return names, sorted(bands)


def _check_targets(paths: Any, overwrite: bool) -> None:
    from territoire_geo.io import ensure_new

    for path in paths:
        ensure_new(path, overwrite=overwrite)


def _load(source: Any, aoi: Any, span: Any, bands: Sequence[str], collections: Any, max_cloud: float | None,
          chunks: Mapping[str, int] | None, say: Callable[[str], None]) -> tuple[xr.Dataset, list[Any]]:
    from territoire_geo.load import load
    from territoire_geo.sources import search
    from territoire_geo.sources.profiles import get_profile

    if collections is None and not (isinstance(source, str) and get_profile(source)):
        collections = "sentinel-2-l2a"
    items = search(aoi, (span.start, span.end), source=source, collections=collections, max_cloud=max_cloud)
    say(f"{len(items)} scene(s) found")
    ds = load(items, bands=list(bands), aoi=aoi, mask=True, chunks=chunks)
    say(f"{ds.sizes['time']} date(s) on a {ds.sizes['y']} x {ds.sizes['x']} grid (lazy)")
    return ds, items


def _write_layer(layer: xr.DataArray, path: Path, overwrite: bool, tags: dict[str, str]) -> Path:
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    from territoire_geo.io import write_raster

    layer = layer.drop_vars([c for c in ("period", "period_start", "period_end") if c in layer.coords])
    if layer.rio.crs is None:
        raise ConfigError(f"{layer.name} lost its CRS; cannot write {path.name}")
    return write_raster(layer, path, overwrite=overwrite, tags=tags)


def _layer_row(comp: xr.Dataset, name: str, path: str) -> dict[str, Any]:
    import numpy as np

    values = np.asarray(comp[name].values, dtype=np.float64)
    count = np.asarray(comp["valid_count"].values)
    finite = values[np.isfinite(values)]
    return {
        "index": name, "file": path,
        "mean": float(finite.mean()) if finite.size else None,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "valid_obs_min": int(count.min()), "valid_obs_median": float(np.median(count)),
        "pixels_under_2_obs": int((count < 2).sum()),
    }


def detect_change(source: Any, aoi: AOILike, before: DateRangeLike, after: DateRangeLike, out_dir: str | Path, *,
                  min_area_m2: float = 1000.0, rules: ChangeRules | None = None, method: Method = "median",
                  collections: Sequence[str] | str | None = None, max_cloud: float | None = None,
                  chunks: Mapping[str, int] | None = None, overwrite: bool = False,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Classified change between two periods, its patches and a summary by class.

    Search and load both periods (cloud-masked), composite NDVI, NDBI, BSI and MNDWI per
    period, classify (:func:`territoire_geo.change.classify`), vectorise patches above
    ``min_area_m2`` with mean NDVI before/after and the date the change was first seen,
    and write ``change_classes.tif`` (uint8, 255 = insufficient data), ``delta_ndvi.tif``,
    ``change_patches.gpkg`` and ``change_patches.parquet`` into ``out_dir``. All rasters
    are computed in one pass over the imagery.

    Returns
    -------
    dict
        ``outputs``, ``summary`` (per class: pixels, area_ha, patches, patch_area_ha),
        ``patches`` (count), ``items``, ``before``, ``after``, ``min_area_m2``, ``note``.

    Raises
    ------
    ConfigError
        Bad or overlapping periods.
    ExportError
        An output exists and ``overwrite`` is false (checked before any computation).
    """
    import dask

    from territoire_geo import change, indices
    from territoire_geo.composites import composite

    say = progress or (lambda _msg: None)
    spans = _change_periods(before, after)
    out = Path(out_dir)
    targets = {k: out / f for k, f in (("classes", "change_classes.tif"), ("delta_ndvi", "delta_ndvi.tif"),
                                       ("patches_gpkg", "change_patches.gpkg"),
                                       ("patches_parquet", "change_patches.parquet"))}
    _check_targets(targets.values(), overwrite)
    ds, items = _load(source, aoi, _union(spans), ["blue", "green", "red", "nir", "swir16"], collections,
                      max_cloud, chunks, say)
    idx = indices.compute(ds, CHANGE_INDICES).assign_coords(spatial_ref=ds.spatial_ref)
    comp = composite(idx, period=[(k, s.start, s.end) for k, s in spans.items()], method=method)
    b, a = comp.sel(period="before"), comp.sel(period="after")
    classes = change.classify(b, a, rules)
    lazy = (classes, b.ndvi, a.ndvi, change.difference(b.ndvi, a.ndvi),
            change.change_dates(classes, idx.ndvi, rules))
    classes, b_ndvi, a_ndvi, delta, dates = dask.compute(*lazy)
    say("change classes computed")
    found = change.patches(classes, min_area_m2=min_area_m2, before=b_ndvi, after=a_ndvi, first_seen=dates,
                           rules=rules)
    outputs = _write_change(targets, classes, delta, found, overwrite)
    say(f"{len(found)} patch(es) of at least {min_area_m2:g} m² written")
    return {"outputs": outputs, "summary": change_summary(classes, found), "patches": len(found),
            "items": [i.id for i in items], "before": _span_text(spans["before"]),
            "after": _span_text(spans["after"]), "min_area_m2": float(min_area_m2), "note": change.ALERT_NOTE}


def _change_periods(before: Any, after: Any) -> dict[str, Any]:
    from territoire_geo._types import normalize_date_range

    spans = {"before": normalize_date_range(before), "after": normalize_date_range(after)}
    if spans["before"].end >= spans["after"].start:
        raise ConfigError(f"the before period ({_span_text(spans['before'])}) must end before the after "
                          f"period ({_span_text(spans['after'])}) starts")
    return spans


def _union(spans: Mapping[str, Any]) -> Any:
    from territoire_geo._types import DateRange

    return DateRange(spans["before"].start, spans["after"].end)


def _span_text(span: Any) -> str:
    return f"{span.start:%Y-%m-%d}/{span.end:%Y-%m-%d}"


def _write_change(targets: Mapping[str, Path], classes: xr.DataArray, delta: xr.DataArray, found: Any,
                  overwrite: bool) -> dict[str, str]:
    from territoire_geo.io import write_vector

    tags = {"flag_values": " ".join(str(int(v)) for v in classes.attrs["flag_values"]),
            "flag_meanings": str(classes.attrs["flag_meanings"])}
    layer = classes.rio.write_nodata(255, encoded=False)
    outputs = {"classes": _write_layer(layer, targets["classes"], overwrite, tags),
               "delta_ndvi": _write_layer(delta, targets["delta_ndvi"], overwrite, {"index": "ndvi"})}
    outputs["patches_gpkg"] = write_vector(found, targets["patches_gpkg"], layer="change_patches",
                                           overwrite=overwrite)
    outputs["patches_parquet"] = write_vector(found, targets["patches_parquet"], overwrite=overwrite)
    return {k: str(v) for k, v in outputs.items()}


def change_summary(classes: xr.DataArray, found: Any) -> list[dict[str, Any]]:
    """Per change class: pixels, area (ha), patches kept and their area (ha)."""
    import numpy as np

    from territoire_geo.change import CHANGE_CLASSES

    values = np.asarray(classes.values)
    res_x, res_y = (abs(float(r)) for r in classes.rio.resolution())
    counts = np.bincount(values.ravel(), minlength=256)
    rows = []
    for code, name in CHANGE_CLASSES.items():
        kept = found[found["class"] == code] if len(found) else found
        rows.append({"class": code, "class_name": name, "pixels": int(counts[code]),
                     "area_ha": float(counts[code] * res_x * res_y / 10_000.0), "patches": len(kept),
                     "patch_area_ha": float(kept["area_ha"].sum()) if len(kept) else 0.0})
    return rows


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
