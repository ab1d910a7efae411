"""The steps a recipe can run, in order, and how the run folder is written.

Every step function takes the run context and its cache folder, writes its
artefacts there (GeoParquet, Zarr, COG, JSON) and returns a mapping of names to
paths or small JSON values. Steps read upstream artefacts from files, never
from memory, so any step can be replayed from cache.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import rioxarray  # noqa: F401  (registers the .rio accessor used on every raster)

from territoire_geo.provenance import path_digest
from territoire_geo.recipes.models import Recipe
from territoire_geo.recipes.runner import RunContext, Step

__all__ = ["STEPS", "write_deliverables"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- zoning


def _zoning_key(ctx: RunContext) -> Any:
    t = ctx.recipe.territory
    key: dict[str, Any] = {"plu": path_digest(t.plu) if t.plu else None,
                           "aoi": path_digest(t.aoi) if t.aoi else None,
                           "crs": t.crs}
    if t.from_communes:  # the cached contours' checksums (fetched now if not cached)
        from territoire_geo.recipes.territory import communes_key

        key["communes"] = communes_key(t)
    return key


def _zoning(ctx: RunContext, folder: Path) -> dict[str, Any]:
    from territoire_geo import zoning

    t = ctx.recipe.territory
    out: dict[str, Any] = {}
    if t.plu is not None:
        zset = zoning.read(t.plu, crs=t.crs)
        report = zoning.validate(zset)
        for name, frame in zset.layers().items():
            if frame is not None and len(frame):
                frame.to_parquet(folder / f"{name}.parquet")
                out[name] = folder / f"{name}.parquet"
        (folder / "validation.json").write_text(json.dumps(report.to_dict(), default=str, ensure_ascii=False))
        out["validation"] = folder / "validation.json"
        out["summary"] = {"zones": len(zset.zones), "plu_blocking_errors": bool(report.blocking)}
    aoi = _aoi_frame(ctx, out)
    aoi.to_parquet(folder / "aoi.parquet")
    out["aoi"] = folder / "aoi.parquet"
    return out


def _aoi_frame(ctx: RunContext, zoning_out: dict[str, Any]) -> Any:
    import geopandas as gpd

    t = ctx.recipe.territory
    if t.aoi is not None:
        frame = gpd.read_file(t.aoi).to_crs(t.crs)
    elif t.from_communes:
        from territoire_geo.recipes.territory import communes_frame

        frame = communes_frame(t)
    else:
        frame = gpd.read_parquet(zoning_out["zone_urba"])
    return gpd.GeoDataFrame(geometry=[frame.geometry.union_all()], crs=frame.crs)


# ---------------------------------------------------------------- imagery


def _imagery_key(ctx: RunContext) -> Any:
    img, periods = ctx.recipe.imagery, ctx.recipe.periods
    assert img is not None and periods is not None
    source = Path(img.source)
    local = path_digest(source) if source.exists() else None
    return {"source": ctx.recipe.public_text(img.source),  # a ${VAR} token never enters a key (in the manifest)
            "local": local, "collections": img.collections, "max_cloud": img.max_cloud,
            "before": periods.before, "after": periods.after}


def _imagery(ctx: RunContext, folder: Path) -> dict[str, Any]:
    import geopandas as gpd
    import pystac

    from territoire_geo._types import normalize_date_range
    from territoire_geo.sources import search

    img, periods = ctx.recipe.imagery, ctx.recipe.periods
    assert img is not None and periods is not None
    aoi = gpd.read_parquet(ctx.artefacts["zoning"]["aoi"])
    first, last = normalize_date_range(periods.before), normalize_date_range(periods.after)
    span = (min(first.start, last.start), max(first.end, last.end))
    items = search(aoi, span, source=img.source, collections=img.collections, max_cloud=img.max_cloud)
    if not items:
        from territoire_geo.errors import NoDataFoundError

        raise NoDataFoundError(f"no imagery over the territory between {span[0]:%Y-%m-%d} and {span[1]:%Y-%m-%d} "
                               f"in {img.source}; widen the periods or the cloud threshold")
    collection = pystac.ItemCollection(items)
    (folder / "items.json").write_text(json.dumps(collection.to_dict(transform_hrefs=False)), encoding="utf-8")
    return {"items": folder / "items.json", "summary": {"scenes": len(items)}}


# ---------------------------------------------------------------- composites


def _bands_for(recipe: Recipe) -> list[str]:
    from territoire_geo import indices
    from territoire_geo.bands import CANONICAL_BANDS
    from territoire_geo.expr import parse

    bands: list[str] = ["red", "nir"]
    for name in recipe.indices:
        bands += list(indices.get(name).bands)
    for text in recipe.custom_indices.values():
        bands += [n for n in parse(text, variables=CANONICAL_BANDS).names if n in CANONICAL_BANDS]
    return list(dict.fromkeys(bands))


def _index_names(recipe: Recipe) -> list[str]:
    names = list(dict.fromkeys([*recipe.indices, "ndvi", "ndbi", "mndwi"])) if recipe.change.enabled \
        else list(recipe.indices)
    return names


def _composites_key(ctx: RunContext) -> Any:
    r = ctx.recipe
    return {"indices": _index_names(r), "custom": r.custom_indices, "method": r.change.composite,
            "crs": r.territory.crs, "resolution": r.territory.resolution,
            "mask": r.imagery.mask if r.imagery else None}


def _composites(ctx: RunContext, folder: Path) -> dict[str, Any]:
    import geopandas as gpd
    import pystac

    from territoire_geo import indices
    from territoire_geo._types import normalize_date_range
    from territoire_geo.composites import composite
    from territoire_geo.io import write_cube_zarrs
    from territoire_geo.load import load

    r = ctx.recipe
    assert r.imagery is not None and r.periods is not None
    items = list(pystac.ItemCollection.from_file(str(ctx.artefacts["imagery"]["items"])))
    aoi = gpd.read_parquet(ctx.artefacts["zoning"]["aoi"])
    names = _index_names(r)
    bands = list(dict.fromkeys([*_bands_for(r), *(b for n in names for b in indices.get(n).bands)]))
    ds = load(items, bands=bands, aoi=aoi, crs=r.territory.crs, resolution=r.territory.resolution,
              chunks={"x": r.imagery.chunks, "y": r.imagery.chunks}, mask=r.imagery.mask)
    idx = indices.compute(ds, names, expressions=r.custom_indices or None)
    cubes: dict[str, Any] = {}
    for label, text in (("before", r.periods.before), ("after", r.periods.after)):
        period = normalize_date_range(text)
        comp = composite(idx, period=[(label, period.start, period.end)], method=r.change.composite)
        comp = comp.isel(period=0, drop=True) if "period" in comp.dims else comp
        comp = comp.drop_vars([c for c in ("period_start", "period_end") if c in comp.coords])
        comp.attrs.update({"period": text, "method": r.change.composite,
                           "period_start": period.start.date().isoformat(),
                           "period_end": period.end.date().isoformat()})
        cubes[label] = comp.rio.write_crs(r.territory.crs)
    cubes["ndvi_series"] = idx["ndvi"].rio.write_crs(r.territory.crs)
    # one computation for the three stores: the tasks they share (reads, masks, reflectance) run once
    written = write_cube_zarrs({folder / f"{label}.zarr": cube for label, cube in cubes.items()})
    out: dict[str, Any] = dict(zip(cubes, written, strict=True))
    out["summary"] = {"grid": [int(ds.sizes["y"]), int(ds.sizes["x"])], "time_slices": int(ds.sizes["time"])}
    return out


# ---------------------------------------------------------------- change


def _change_key(ctx: RunContext) -> Any:
    return {"rules": ctx.recipe.change.rules, "min_area_m2": ctx.recipe.change.min_area_m2}


def _open_zarr(path: Path, crs: str) -> Any:
    import xarray as xr

    return xr.open_zarr(path, consolidated=False).rio.write_crs(crs)


def _change(ctx: RunContext, folder: Path) -> dict[str, Any]:
    from territoire_geo.change import CHANGE_CLASSES, ChangeRules, classify, first_crossing
    from territoire_geo.change import patches as make_patches
    from territoire_geo.io import write_raster

    r = ctx.recipe
    crs = r.territory.crs
    art = ctx.artefacts["composites"]
    before, after = _open_zarr(art["before"], crs), _open_zarr(art["after"], crs)
    rules = ChangeRules(**r.change.rules)
    classes = classify(before, after, rules).rio.write_crs(crs).compute()
    series = _open_zarr(art["ndvi_series"], crs)["ndvi"]
    first_seen = first_crossing(series, rules.sparse_ndvi)
    found = make_patches(classes, min_area_m2=r.change.min_area_m2, before=before, after=after,
                         first_seen=first_seen, rules=rules)
    from territoire_geo.recipes.deliverables import CHANGE_COLOURS

    write_raster(classes.rename("change_class"), folder / "change_classes.tif", colormap=CHANGE_COLOURS)
    found.to_parquet(folder / "change_patches.parquet")
    table = _class_table(classes, CHANGE_CLASSES, r.territory.resolution)
    (folder / "change_summary.json").write_text(json.dumps(table, ensure_ascii=False))
    artificial = next((row["area_ha"] for row in table if row["class"] == 3), 0.0)
    return {"classes": folder / "change_classes.tif", "patches": folder / "change_patches.parquet",
            "table": folder / "change_summary.json",
            "summary": {"new_artificial_ha": artificial, "change_patches": len(found)}}


def _class_table(classes: Any, names: Any, resolution: float) -> list[dict[str, Any]]:
    import numpy as np

    values, counts = np.unique(np.asarray(classes.values), return_counts=True)
    pixel_ha = resolution * resolution / 10_000
    return [{"class": int(v), "name": str(dict(names).get(int(v), v)), "pixels": int(c),
             "area_ha": round(float(c) * pixel_ha, 2)} for v, c in zip(values, counts, strict=True)]


# ---------------------------------------------------------------- layers


def _layers_key(ctx: RunContext) -> Any:
    return [{"kind": s.kind, "path": path_digest(s.path), "layer": s.layer, "name": s.name}
            for s in ctx.recipe.layers]


def _layers(ctx: RunContext, folder: Path) -> dict[str, Any]:
    import geopandas as gpd

    from territoire_geo import soil

    out: dict[str, Any] = {}
    for spec in ctx.recipe.layers:
        name = spec.name or spec.kind
        if spec.kind == "distance":
            frame = gpd.read_file(spec.path, layer=spec.layer).to_crs(ctx.recipe.territory.crs)
        else:
            frame = soil.read(spec.path, spec.kind, layer=spec.layer, crs=ctx.recipe.territory.crs)
        frame.to_parquet(folder / f"{name}.parquet")
        out[f"layer:{spec.kind}:{name}"] = folder / f"{name}.parquet"
    return out


# ---------------------------------------------------------------- registry and deliverables


def _has_imagery(r: Recipe) -> bool:
    return r.imagery is not None and r.periods is not None


def _has_dem(r: Recipe) -> bool:
    return r.territory.dem is not None or (r.imagery is not None and r.imagery.dem_collection is not None)


def _decision() -> Any:
    from territoire_geo.recipes import decision_steps

    return decision_steps


def _lazy(name: str) -> Any:
    return lambda *args: getattr(_decision(), name)(*args)


def _monitoring(name: str) -> Any:
    def call(*args: Any) -> Any:
        from territoire_geo.recipes import monitoring_steps

        return getattr(monitoring_steps, name)(*args)

    return call


STEPS: list[Step] = [
    Step("zoning", (), _zoning, _zoning_key, lambda r: True, "Lecture du PLU / zonage"),
    Step("imagery", ("zoning",), _imagery, _imagery_key, _has_imagery, "Recherche des images Sentinel-2"),
    Step("composites", ("imagery",), _composites, _composites_key, _has_imagery, "Indices et composites"),
    Step("change", ("composites",), _change, _change_key, lambda r: _has_imagery(r) and r.change.enabled,
         "Détection des changements"),
    Step("zan", ("zoning", "change"), _monitoring("make_zan"), _monitoring("zan_key"),
         lambda r: r.zan and _has_imagery(r) and r.change.enabled and r.territory.plu is not None,
         "Comptes ZAN par commune, zone et année"),
    Step("crops", ("composites",), _monitoring("make_crops"), _monitoring("crops_key"),
         lambda r: r.crops is not None and _has_imagery(r), "Séries NDVI par parcelle"),
    Step("greening", ("zoning", "composites"), _monitoring("make_greening"), _monitoring("greening_key"),
         lambda r: r.greening is not None and _has_imagery(r) and r.territory.plu is not None,
         "Végétation des zones urbaines"),
    Step("layers", (), _layers, _layers_key, lambda r: bool(r.layers), "Couches sols et risques"),
    Step("dem", ("zoning",), _lazy("make_dem"), _lazy("dem_key"), _has_dem, "Relief (MNT)"),
    Step("units", ("zoning", "composites", "change", "layers", "dem"), _lazy("make_units"), _lazy("units_key"),
         lambda r: r.scoring is not None and r.territory.plu is not None, "Unités candidates et croisements"),
    Step("scores", ("units",), _lazy("score_units"), _lazy("score_key"), lambda r: r.scoring is not None
         and r.scoring.enabled, "Scores, rangs et sensibilité"),
    Step("scene", ("zoning", "change", "dem", "scores"), _lazy("make_scene"), _lazy("scene_key"),
         lambda r: r.scene is not None and r.scene.enabled, "Scène 3D hors ligne"),
]


def write_deliverables(ctx: RunContext) -> dict[str, Path]:
    """Write the run folder's files from the step artefacts (atomic writes)."""
    from territoire_geo.recipes import deliverables

    return deliverables.write_all(ctx)
