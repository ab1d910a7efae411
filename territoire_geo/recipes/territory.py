"""Recipe steps of the territory: the PLU and the area, and the soil, risk and distance layers.

The area comes from, in this order: ``territory.aoi`` (a vector file), the communes
named by ``territory.insee`` or ``territory.epci`` (contours from geo.api.gouv.fr
through :mod:`territoire_geo.sources.communes`, cached per code in the user cache
folder), or the extent of the PLU zones. Each cached contour is a recipe input: its
SHA-256 enters the zoning step's cache key and the run's manifest, so a rerun reads
the same bytes and gives the same outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd

from territoire_geo._atomic import write_text
from territoire_geo.config import Settings
from territoire_geo.planning import soil, zoning
from territoire_geo.provenance import path_digest
from territoire_geo.recipes.context import RunContext
from territoire_geo.recipes.models import Territory
from territoire_geo.sources.communes import boundary_files, communes_area, read_boundaries

__all__ = [
    "commune_inputs",
    "communes_frame",
    "communes_key",
    "layers_key",
    "make_layers",
    "make_zoning",
    "zoning_key",
]


# ---------------------------------------------------------------- zoning and area


def zoning_key(ctx: RunContext) -> Any:
    """The PLU and AOI files by checksum, the CRS, and the commune contours by checksum."""
    t = ctx.recipe.territory
    key: dict[str, Any] = {"plu": path_digest(t.plu) if t.plu else None,
                           "aoi": path_digest(t.aoi) if t.aoi else None,
                           "crs": t.crs}
    if t.from_communes:  # the cached contours' checksums (fetched now if not cached)
        key["communes"] = communes_key(t)
    return key


def make_zoning(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """The PLU layers (GeoParquet), its validation report (JSON) and the area of the territory."""
    t = ctx.recipe.territory
    out: dict[str, Any] = {}
    if t.plu is not None:
        zset = zoning.read(t.plu, crs=t.crs)
        report = zoning.validate(zset)
        for name, frame in zset.layers().items():
            if frame is not None and len(frame):
                frame.to_parquet(folder / f"{name}.parquet")
                out[name] = folder / f"{name}.parquet"
        out["validation"] = write_text(folder / "validation.json",
                                       json.dumps(report.to_dict(), default=str, ensure_ascii=False))
        out["summary"] = {"zones": len(zset.zones), "plu_blocking_errors": bool(report.blocking)}
    aoi = _aoi_frame(ctx, out)
    aoi.to_parquet(folder / "aoi.parquet")
    out["aoi"] = folder / "aoi.parquet"
    return out


def _aoi_frame(ctx: RunContext, zoning_out: dict[str, Any]) -> gpd.GeoDataFrame:
    t = ctx.recipe.territory
    if t.aoi is not None:
        frame = gpd.read_file(t.aoi).to_crs(t.crs)
    elif t.from_communes:
        frame = communes_frame(t)
    else:
        frame = gpd.read_parquet(zoning_out["zone_urba"])
    return gpd.GeoDataFrame(geometry=[frame.geometry.union_all()], crs=frame.crs)


def commune_inputs(territory: Territory) -> list[tuple[str, Path]]:
    """``(role, cached file)`` of every commune and EPCI named, fetching what is not cached.

    Roles are ``commune:<INSEE>`` and ``epci:<SIREN>``.

    Raises
    ------
    NoDataFoundError
        An unknown code.
    SourceUnavailableError
        The API is unreachable and a contour is not cached.
    """
    codes = list(dict.fromkeys(territory.insee))
    files = boundary_files(codes, epci=territory.epci, settings=Settings.from_env()) \
        if codes or territory.epci else []
    roles = [f"commune:{code}" for code in codes] + ([f"epci:{territory.epci}"] if territory.epci else [])
    return list(zip(roles, files, strict=True))


def communes_key(territory: Territory) -> list[dict[str, str]]:
    """The part of the zoning step's cache key that names the contour files by checksum."""
    return [{"role": role, "sha256": path_digest(path)} for role, path in commune_inputs(territory)]


def communes_frame(territory: Territory) -> gpd.GeoDataFrame:
    """The union of the communes, one row, in the territory's CRS."""
    frame = read_boundaries([path for _, path in commune_inputs(territory)])
    return communes_area(frame, crs=territory.crs)


# ---------------------------------------------------------------- soil, risk and distance layers


def layers_key(ctx: RunContext) -> Any:
    """Each layer file by checksum, with its kind, layer and name."""
    return [{"kind": s.kind, "path": path_digest(s.path), "layer": s.layer, "name": s.name}
            for s in ctx.recipe.layers]


def make_layers(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """Each layer read (soil/risk kinds classified, distance layers as they are), as GeoParquet."""
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
