"""Workflows of the ``indices`` and ``change`` commands: search, load, composite, classify, write.

Re-exported by :mod:`territoire_geo.workflows`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)

from territoire_geo._atomic import ensure_new
from territoire_geo._types import DateRange, normalize_date_range
from territoire_geo.analysis import change, indices
from territoire_geo.analysis.composites import composite, method_label
from territoire_geo.analysis.expr import parse
from territoire_geo.errors import ConfigError, ExpressionError
from territoire_geo.imagery import load
from territoire_geo.io import compute_windows, write_raster, write_vector
from territoire_geo.sources import search
from territoire_geo.sources.profiles import get_profile

if TYPE_CHECKING:
    import xarray as xr

    from territoire_geo._types import AOILike, DateRangeLike
    from territoire_geo.analysis.change import ChangeRules
    from territoire_geo.analysis.composites import Method

__all__ = ["CHANGE_INDICES", "compute_indices", "detect_change"]

#: Indices the change detection composites (NDBI and BSI both, for either rule set).
CHANGE_INDICES: tuple[str, ...] = ("ndvi", "ndbi", "bsi", "mndwi")


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
    lazy = composite(idx, method=method, ndvi=ndvi)[[*variables, "valid_count"]]
    computed = compute_windows(*(lazy[v] for v in lazy.data_vars))  # bounded memory on large areas
    comp = lazy.copy(data={v: c.data for v, c in zip(lazy.data_vars, computed, strict=True)})
    say(f"{len(variables)} composite(s) computed")
    period_text = f"{span.start:%Y-%m-%d}/{span.end:%Y-%m-%d}"
    tags = {"period": period_text, "composite": label, "scenes": str(len(items))}
    outputs = {v: str(_write_layer(comp[v], path, overwrite, {**tags, "index": v})) for v, path in targets.items()}
    return {"outputs": outputs, "summary": [_layer_row(comp, v, outputs[v]) for v in variables],
            "items": [i.id for i in items], "period": period_text, "composite": label}


def _index_bands(names: Sequence[str], expressions: Mapping[str, str], method: Any) -> tuple[list[str], list[str]]:
    """Validate index names and expressions; the bands to load (before any search)."""
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
    for path in paths:
        ensure_new(path, overwrite=overwrite)


def _load(source: Any, aoi: Any, span: Any, bands: Sequence[str], collections: Any, max_cloud: float | None,
          chunks: Mapping[str, int] | None, say: Callable[[str], None]) -> tuple[xr.Dataset, list[Any]]:
    if collections is None and not (isinstance(source, str) and get_profile(source)):
        collections = "sentinel-2-l2a"
    items = search(aoi, (span.start, span.end), source=source, collections=collections, max_cloud=max_cloud)
    say(f"{len(items)} scene(s) found")
    ds = load(items, bands=list(bands), aoi=aoi, mask=True, chunks=chunks)
    say(f"{ds.sizes['time']} date(s) on a {ds.sizes['y']} x {ds.sizes['x']} grid (lazy)")
    return ds, items


def _write_layer(layer: xr.DataArray, path: Path, overwrite: bool, tags: dict[str, str]) -> Path:
    layer = layer.drop_vars([c for c in ("period", "period_start", "period_end") if c in layer.coords])
    if layer.rio.crs is None:
        raise ConfigError(f"{layer.name} lost its CRS; cannot write {path.name}")
    return write_raster(layer, path, overwrite=overwrite, tags=tags)


def _layer_row(comp: xr.Dataset, name: str, path: str) -> dict[str, Any]:
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
    period, classify (:func:`territoire_geo.analysis.change.classify`), vectorise patches above
    ``min_area_m2`` with mean NDVI before/after and the date the change was first seen
    (:func:`territoire_geo.analysis.change.detect`, as recipes do), and write ``change_classes.tif`` (uint8, 255 = insufficient data), ``delta_ndvi.tif``,
    ``change_patches.gpkg`` and ``change_patches.parquet`` into ``out_dir``. All rasters
    are computed in one pass over the imagery.

    Returns
    -------
    dict
        ``outputs``, ``summary`` (:func:`territoire_geo.analysis.change.change_summary`),
        ``patches`` (count), ``items``, ``before``, ``after``, ``min_area_m2``, ``note``.

    Raises
    ------
    ConfigError
        Bad or overlapping periods.
    ExportError
        An output exists and ``overwrite`` is false (checked before any computation).
    """
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
    found = change.detect(comp.sel(period="before"), comp.sel(period="after"), idx.ndvi, rules=rules,
                          min_area_m2=min_area_m2)
    say("change classes computed")
    outputs = _write_change(targets, found, overwrite)
    say(f"{len(found.patches)} patch(es) of at least {min_area_m2:g} m² written")
    return {"outputs": outputs, "summary": found.summary, "patches": len(found.patches),
            "items": [i.id for i in items], "before": _span_text(spans["before"]),
            "after": _span_text(spans["after"]), "min_area_m2": float(min_area_m2), "note": change.ALERT_NOTE}


def _change_periods(before: Any, after: Any) -> dict[str, Any]:
    spans = {"before": normalize_date_range(before), "after": normalize_date_range(after)}
    if spans["before"].end >= spans["after"].start:
        raise ConfigError(f"the before period ({_span_text(spans['before'])}) must end before the after "
                          f"period ({_span_text(spans['after'])}) starts")
    return spans


def _union(spans: Mapping[str, Any]) -> Any:
    return DateRange(spans["before"].start, spans["after"].end)


def _span_text(span: Any) -> str:
    return f"{span.start:%Y-%m-%d}/{span.end:%Y-%m-%d}"


def _write_change(targets: Mapping[str, Path], found: change.ChangeResult, overwrite: bool) -> dict[str, str]:
    classes = found.classes
    tags = {"flag_values": " ".join(str(int(v)) for v in classes.attrs["flag_values"]),
            "flag_meanings": str(classes.attrs["flag_meanings"])}
    layer = classes.rio.write_nodata(255, encoded=False)
    outputs = {"classes": _write_layer(layer, targets["classes"], overwrite, tags),
               "delta_ndvi": _write_layer(found.delta_ndvi, targets["delta_ndvi"], overwrite, {"index": "ndvi"})}
    outputs["patches_gpkg"] = write_vector(found.patches, targets["patches_gpkg"], layer="change_patches",
                                           overwrite=overwrite)
    outputs["patches_parquet"] = write_vector(found.patches, targets["patches_parquet"], overwrite=overwrite)
    return {k: str(v) for k, v in outputs.items()}
