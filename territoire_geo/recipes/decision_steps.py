"""Recipe steps of the decision half: terrain, candidate units, scoring, scene.

Each reads the artefacts of earlier steps from the cache folder (GeoParquet,
Zarr, COG) and writes its own there; deliverables are written by
:mod:`territoire_geo.recipes.deliverables`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import rioxarray as rxr  # also registers the .rio accessor

from territoire_geo.analysis import zonal
from territoire_geo.analysis.terrain import reproject_dem, slope_percent
from territoire_geo.errors import ConfigError, NoDataFoundError
from territoire_geo.io import write_raster
from territoire_geo.planning import overlay, scoring, zoning
from territoire_geo.planning.criteria import load_criteria
from territoire_geo.present import scene
from territoire_geo.provenance import path_digest
from territoire_geo.recipes.context import RunContext, open_zarr
from territoire_geo.sources import search

__all__ = ["dem_key", "make_dem", "make_scene", "make_units", "scene_key", "score_key", "score_units", "units_key"]


# ---------------------------------------------------------------- terrain


def dem_key(ctx: RunContext) -> Any:
    r = ctx.recipe
    if r.territory.dem is not None:
        return {"file": path_digest(r.territory.dem)}
    return {"source": r.imagery.source if r.imagery else None,
            "collection": r.imagery.dem_collection if r.imagery else None}


def make_dem(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """The elevation raster, clipped to the territory and in the working CRS (GeoTIFF)."""
    r = ctx.recipe
    aoi = gpd.read_parquet(ctx.artefacts["zoning"]["aoi"])
    href, identity = _dem_href(ctx, aoi)
    elevation = _clip_dem(href, aoi, r.territory.crs)
    target = write_raster(elevation.rename("elevation"), folder / "dem.tif")
    return {"dem": target, "summary": {"dem": identity,
                                       "elevation_range_m": [round(float(elevation.min()), 1),
                                                             round(float(elevation.max()), 1)]}}


def _dem_href(ctx: RunContext, aoi: Any) -> tuple[str, str]:
    r = ctx.recipe
    if r.territory.dem is not None:
        return str(r.territory.dem), Path(r.territory.dem).name
    assert r.imagery is not None and r.imagery.dem_collection is not None
    found = search(aoi, "1900-01-01/..", source=r.imagery.source, collections=r.imagery.dem_collection)
    if not found:
        raise NoDataFoundError(f"no {r.imagery.dem_collection} item covers the territory in {r.imagery.source}")
    asset = found[0].assets.get("data") or next(iter(found[0].assets.values()))
    return asset.get_absolute_href() or asset.href, f"{found[0].collection_id}/{found[0].id}"


def _clip_dem(href: str, aoi: Any, crs: str) -> Any:
    dem = rxr.open_rasterio(href, masked=True).squeeze("band", drop=True)
    minx, miny, maxx, maxy = aoi.to_crs(dem.rio.crs).buffer(0).total_bounds
    pad = 0.01 if dem.rio.crs.is_geographic else 500
    dem = dem.rio.clip_box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    return reproject_dem(dem, crs).astype("float32")


# ---------------------------------------------------------------- units


def units_key(ctx: RunContext) -> Any:
    r = ctx.recipe
    sf = r.site_finder
    return {"parcels": path_digest(r.territory.parcels) if r.territory.parcels else None,
            "layers": [(s.kind, s.name, s.layer) for s in r.layers],
            "site_finder": None if sf is None else {**sf.model_dump(mode="json", exclude={"destinations"}),
                                                    "table": path_digest(sf.destinations) if sf.destinations
                                                    else None}}


def make_units(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """Candidate units: zones (or parcels) × soil/risk/prescription layers, NDVI, change, slope, distances."""
    r = ctx.recipe
    crs = r.territory.crs
    assert r.territory.plu is not None
    zset = zoning.read(r.territory.plu, crs=crs)
    layers, distances = _layers(ctx)
    parcels = gpd.read_file(r.territory.parcels).to_crs(crs) if r.territory.parcels else None
    units = overlay.overlay(zset, *layers, parcels=parcels, distances=distances)
    units = _raster_stats(ctx, units)
    if r.site_finder is not None:
        units = site_finder_columns(ctx, units)
    units["unit_id"] = [f"u{i:04d}" for i in range(len(units))]
    units.to_parquet(folder / "units.parquet")
    return {"units": folder / "units.parquet", "summary": {"units": len(units)}}


def _layers(ctx: RunContext) -> tuple[list[Any], dict[str, Any]]:
    layers, distances = [], {}
    for label, path in ctx.artefacts.get("layers", {}).items():
        if not isinstance(path, Path):
            continue
        _, kind, name = label.split(":", 2)
        frame = gpd.read_parquet(path)
        if kind == "distance":
            distances[name] = frame
        else:
            frame.attrs["kind"] = kind
            layers.append(frame)
    if "change" in ctx.artefacts:
        alerts = gpd.read_parquet(ctx.artefacts["change"]["patches"])
        layers.append(overlay.Layer("change_artificial", alerts[alerts["class"] == 3]))
    return layers, distances


def _raster_stats(ctx: RunContext, units: Any) -> Any:
    crs = ctx.recipe.territory.crs
    if "composites" in ctx.artefacts:

        after = open_zarr(ctx.artefacts["composites"]["after"], crs)
        units = zonal.stats(after["ndvi"].rio.write_crs(crs), units, ["mean", "coverage"], prefix="ndvi")
    if "dem" in ctx.artefacts:

        dem = rxr.open_rasterio(ctx.artefacts["dem"]["dem"], masked=True).squeeze("band", drop=True)
        units = zonal.stats(slope_percent(dem), units, ["mean"], prefix="slope")
    return units


# ---------------------------------------------------------------- scoring


def score_key(ctx: RunContext) -> Any:
    s = ctx.recipe.scoring
    assert s is not None
    criteria = s.criteria if isinstance(s.criteria, str) else path_digest(s.criteria)
    return {"criteria": criteria, "weights": s.weights, "runs": s.sensitivity_runs, "spread": s.sensitivity_spread,
            "top_k": s.top_k, "lang": ctx.recipe.report.lang if ctx.recipe.report else "fr"}


def score_units(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """Scores, ranks, contributions, exclusions, reliability and rank sensitivity."""
    s = ctx.recipe.scoring
    assert s is not None
    criteria = load_criteria(_criteria_source(s.criteria))
    unknown = set(s.weights) - {c.name for c in criteria.criteria}
    if unknown:
        raise ConfigError(f"scoring.weights: unknown criterion {sorted(unknown)[0]!r}; "
                          f"criteria are {', '.join(c.name for c in criteria.criteria)}")
    criteria = dataclasses.replace(criteria, criteria=tuple(
        dataclasses.replace(c, weight=s.weights.get(c.name, c.weight)) for c in criteria.criteria))
    units = gpd.read_parquet(ctx.artefacts["units"]["units"])
    lang = ctx.recipe.report.lang if ctx.recipe.report else "fr"
    scored = scoring.score(units, criteria, lang=lang)
    scored = scored.sort_values(["rank", "score"], ascending=[True, False], na_position="last", kind="stable")
    scored.to_parquet(folder / "scored.parquet")
    out: dict[str, Any] = {"scored": folder / "scored.parquet"}
    if s.sensitivity_runs:
        sens = scoring.sensitivity(units, criteria, n=s.sensitivity_runs, spread=s.sensitivity_spread,
                                   top_k=s.top_k)
        sens.to_parquet(folder / "sensitivity.parquet")
        out["sensitivity"] = folder / "sensitivity.parquet"
    scoring.explain(criteria.criteria, lang).to_parquet(folder / "criteria.parquet")
    out["criteria"] = folder / "criteria.parquet"
    ranked = scored[scored["rank"].notna()].sort_values("rank")
    out["summary"] = {"ranked_units": len(ranked), "excluded_units": int(scored["exclusion"].fillna("").astype(str).ne("").sum()),
                      "top_units": ranked.head(5).get("LIBELLE", ranked.head(5).index).astype(str).tolist()}
    return out


def _criteria_source(criteria: str | Path) -> Path | None:
    if criteria in ("default", "reserve_fonciere"):
        return None
    if criteria == "implantation_entreprises":
        return Path(__file__).resolve().parents[1] / "data" / "criteria_implantation_entreprises.yaml"
    return Path(criteria)


# ---------------------------------------------------------------- site finder


def site_finder_columns(ctx: RunContext, units: Any) -> Any:
    """``dest_codes``, ``dest_allowed``, ``built_share``, ``available_ha`` for the site finder."""
    sf = ctx.recipe.site_finder
    assert sf is not None
    units = units.copy()
    codes = _destination_codes(units, sf.destinations)
    wanted = set(sf.activities)
    test = (lambda c: wanted <= c) if sf.match == "all" else (lambda c: bool(wanted & c))
    units["dest_codes"] = ["-".join(sorted(c)) for c in codes]
    units["dest_allowed"] = [test(c) and t in sf.typezones for c, t in zip(codes, units["TYPEZONE"], strict=True)]
    units = _built_share(ctx, units)
    units["available_ha"] = (units["area_ha"] * (1 - units["built_share"].fillna(0))).round(3)
    return units


def _destination_codes(units: Any, table_path: Path | None) -> list[set[str]]:
    table: dict[str, str] = {}
    if table_path is not None:
        frame = pd.read_csv(table_path, sep=None, engine="python", dtype=str)
        table = dict(zip(frame["LIBELLE"].str.strip(), frame["DESTOUI"].fillna(""), strict=True))
    out = []
    for _, row in units.iterrows():
        text = str(row.get("DESTOUI") or "") or table.get(str(row.get("LIBELLE", "")).strip(), "")
        codes = {c.strip().zfill(2) for c in text.replace(";", "-").split("-") if c.strip()}
        codes |= _legacy_codes(str(row.get("DESTDOMI") or ""), str(row.get("FORMDOMI") or ""))
        out.append(codes)
    return out


def _legacy_codes(destdomi: str, formdomi: str) -> set[str]:
    """Destinations implied by the 2014 DESTDOMI / 2022 FORMDOMI vocations (activity → 31, 33, 51–53)."""
    if destdomi == "02" or formdomi.startswith("02"):
        return {"31", "33", "51", "52", "53"}
    if destdomi == "03" or formdomi.startswith("03"):
        return {"21", "31", "34", "53"}
    return set()


def _built_share(ctx: RunContext, units: Any) -> Any:
    if "composites" not in ctx.artefacts:
        units["built_share"] = float("nan")
        return units
    crs = ctx.recipe.territory.crs
    after = open_zarr(ctx.artefacts["composites"]["after"], crs)
    built = ((after["ndvi"] <= 0.3) & (after["ndbi"] > -0.05)).astype("float32").where(after["ndvi"].notnull())
    units = zonal.stats(built.rio.write_crs(crs), units, ["mean"], prefix="built")
    return units.rename(columns={"built_mean": "built_share"})


# ---------------------------------------------------------------- scene


def scene_key(ctx: RunContext) -> Any:
    sc = ctx.recipe.scene
    assert sc is not None
    return {"title": ctx.recipe.public_text(sc.title), "extrude": sc.extrude, "lang": sc.lang, "png": sc.png,
            "project": path_digest(sc.project) if sc.project else None}


def make_scene(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """The offline 3D scene (and its PNG snapshot when asked)."""
    sc = ctx.recipe.scene
    assert sc is not None
    units = gpd.read_parquet(_scene_units(ctx.artefacts))
    extrude = sc.extrude if sc.extrude in units.columns else None
    alerts = gpd.read_parquet(ctx.artefacts["change"]["patches"]) if "change" in ctx.artefacts else None
    dem = rxr.open_rasterio(ctx.artefacts["dem"]["dem"], masked=True).squeeze("band", drop=True) \
        if "dem" in ctx.artefacts else None
    project = gpd.read_file(sc.project) if sc.project else None
    deck = scene.build(units, extrude=extrude, change_patches=alerts, dem=dem, project=project, lang=sc.lang,
                       title=ctx.recipe.public_text(sc.title or ctx.recipe.title),  # never a ${VAR} secret
                       source_line=_source_line(ctx))

    generated = dt.date.fromisoformat(ctx.stamp[:10])
    html = scene.export(deck, folder / "scene.html", generated=generated)
    out: dict[str, Any] = {"out:scene.html": html}
    if sc.png:
        out["out:scene.png"] = scene.snapshot(html, folder / "scene.png")
    return out


def _scene_units(artefacts: dict[str, Any]) -> Path:
    """Scored units, else the PLU zones, else the area itself (a territory given by AOI or communes)."""
    if "scores" in artefacts:
        return Path(artefacts["scores"]["scored"])
    plu = artefacts["zoning"]
    return Path(plu.get("zone_urba") or plu["aoi"])


def _source_line(ctx: RunContext) -> str:
    parts = []
    if "imagery" in ctx.artefacts:
        items = json.loads(Path(ctx.artefacts["imagery"]["items"]).read_text())["features"]
        dates = sorted(f["properties"]["datetime"][:10] for f in items)
        parts.append(f"Copernicus Sentinel-2 ({len(items)} scènes, {dates[0]} → {dates[-1]})")
    if ctx.recipe.territory.plu is not None:
        parts.append(f"PLU {Path(ctx.recipe.territory.plu).name} (Géoportail de l'Urbanisme)")
    if "dem" in ctx.artefacts:
        parts.append(f"relief : {ctx.artefacts['dem']['summary']['dem']}")
    return " · ".join(parts)
