"""Recipe steps of the imagery: find the scenes, composite the indices, detect the change.

Composites and the NDVI series are written as Zarr stores in the step's cache
folder (one dask computation, window by window); the change step reads them back
and calls :func:`territoire_geo.analysis.change.detect`, the pipeline the
``change`` command runs too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pystac

from territoire_geo._atomic import write_text
from territoire_geo._types import normalize_date_range
from territoire_geo.analysis import change, indices
from territoire_geo.analysis.composites import composite
from territoire_geo.analysis.expr import parse
from territoire_geo.errors import NoDataFoundError
from territoire_geo.imagery import load
from territoire_geo.imagery.bands import CANONICAL_BANDS
from territoire_geo.io import CHANGE_COLOURS, write_cube_zarrs, write_raster
from territoire_geo.provenance import path_digest
from territoire_geo.recipes.context import RunContext, open_zarr
from territoire_geo.recipes.models import Recipe
from territoire_geo.sources import search

__all__ = [
    "bands_for",
    "change_key",
    "composites_key",
    "find_imagery",
    "imagery_key",
    "index_names",
    "make_change",
    "make_composites",
]


# ---------------------------------------------------------------- imagery


def imagery_key(ctx: RunContext) -> Any:
    """The source (a local catalogue by checksum), collections, cloud threshold and periods."""
    img, periods = ctx.recipe.imagery, ctx.recipe.periods
    assert img is not None and periods is not None
    source = Path(img.source)
    local = path_digest(source) if source.exists() else None
    return {"source": ctx.recipe.public_text(img.source),  # a ${VAR} token never enters a key (in the manifest)
            "local": local, "collections": img.collections, "max_cloud": img.max_cloud,
            "before": periods.before, "after": periods.after}


def find_imagery(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """The items over the territory and both periods, as an item collection (``items.json``)."""
    img, periods = ctx.recipe.imagery, ctx.recipe.periods
    assert img is not None and periods is not None
    aoi = gpd.read_parquet(ctx.artefacts["zoning"]["aoi"])
    first, last = normalize_date_range(periods.before), normalize_date_range(periods.after)
    span = (min(first.start, last.start), max(first.end, last.end))
    items = search(aoi, span, source=img.source, collections=img.collections, max_cloud=img.max_cloud)
    if not items:
        raise NoDataFoundError(f"no imagery over the territory between {span[0]:%Y-%m-%d} and {span[1]:%Y-%m-%d} "
                               f"in {img.source}; widen the periods or the cloud threshold")
    collection = pystac.ItemCollection(items)
    target = write_text(folder / "items.json", json.dumps(collection.to_dict(transform_hrefs=False)))
    return {"items": target, "summary": {"scenes": len(items)}}


# ---------------------------------------------------------------- composites


def bands_for(recipe: Recipe) -> list[str]:
    """The canonical bands a recipe's indices and custom formulas read (red and NIR always).

    Raises
    ------
    ExpressionError
        An unknown index or an invalid custom formula.
    """
    bands: list[str] = ["red", "nir"]
    for name in recipe.indices:
        bands += list(indices.get(name).bands)
    for text in recipe.custom_indices.values():
        bands += [n for n in parse(text, variables=CANONICAL_BANDS).names if n in CANONICAL_BANDS]
    return list(dict.fromkeys(bands))


def index_names(recipe: Recipe) -> list[str]:
    """The indices composited: the recipe's, plus NDVI, NDBI and MNDWI when change detection is on."""
    if recipe.change.enabled:
        return list(dict.fromkeys([*recipe.indices, "ndvi", "ndbi", "mndwi"]))
    return list(recipe.indices)


def composites_key(ctx: RunContext) -> Any:
    """Indices, formulas, composite method, grid and mask."""
    r = ctx.recipe
    return {"indices": index_names(r), "custom": r.custom_indices, "method": r.change.composite,
            "crs": r.territory.crs, "resolution": r.territory.resolution,
            "mask": r.imagery.mask if r.imagery else None}


def make_composites(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """Before and after composites of the indices and the NDVI series, as Zarr stores."""
    r = ctx.recipe
    assert r.imagery is not None and r.periods is not None
    items = list(pystac.ItemCollection.from_file(str(ctx.artefacts["imagery"]["items"])))
    aoi = gpd.read_parquet(ctx.artefacts["zoning"]["aoi"])
    names = index_names(r)
    bands = list(dict.fromkeys([*bands_for(r), *(b for n in names for b in indices.get(n).bands)]))
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


def change_key(ctx: RunContext) -> Any:
    """The change rules and the minimum mapping unit."""
    return {"rules": ctx.recipe.change.rules, "min_area_m2": ctx.recipe.change.min_area_m2}


def make_change(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """Change classes (COG with a colour table), patches (GeoParquet) and the summary by class (JSON)."""
    r = ctx.recipe
    crs = r.territory.crs
    art = ctx.artefacts["composites"]
    found = change.detect(open_zarr(art["before"], crs), open_zarr(art["after"], crs),
                          open_zarr(art["ndvi_series"], crs)["ndvi"], rules=change.ChangeRules(**r.change.rules),
                          min_area_m2=r.change.min_area_m2)
    write_raster(found.classes.rename("change_class"), folder / "change_classes.tif", colormap=CHANGE_COLOURS)
    found.patches.to_parquet(folder / "change_patches.parquet")
    table = write_text(folder / "change_summary.json", json.dumps(found.summary, ensure_ascii=False))
    return {"classes": folder / "change_classes.tif", "patches": folder / "change_patches.parquet",
            "table": table,
            "summary": {"new_artificial_ha": found.new_artificial_ha, "change_patches": len(found.patches)}}
