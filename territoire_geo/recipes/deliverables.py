"""Write a run folder's deliverables from cached step artefacts.

Files open in QGIS as they are: GeoPackages carry a ``layer_styles`` table,
rasters are COGs with band descriptions (and a colour table for classes).
Every file is written atomically; ``manifest.json`` comes after, in the runner.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pystac

from territoire_geo._atomic import atomic_path, write_bytes
from territoire_geo.imagery.bands import band_assets
from territoire_geo.io import TYPEZONE_COLOURS, categorized_qml, graduated_qml, write_table_csv, write_vector
from territoire_geo.present.report import FIGURES, REPORT, render_report
from territoire_geo.recipes.context import RunContext
from territoire_geo.recipes.territory import commune_inputs
from territoire_geo.sources import redact_url

__all__ = ["SCORE_BREAKS", "write_all", "write_report"]


def write_all(ctx: RunContext) -> dict[str, Path]:
    """Every deliverable of the run, by label."""
    out: dict[str, Path] = {}
    art = ctx.artefacts
    if "zoning" in art:
        out.update(_zoning(ctx, art["zoning"]))
    if "imagery" in art:
        _record_items(ctx, art["imagery"]["items"])
    if "change" in art:
        out.update(_change(ctx, art["change"]))
    if "scores" in art:
        out.update(_scores(ctx, art["scores"]))
    for name in ("zan", "crops", "greening", "scores", "scene"):
        for label, path in art.get(name, {}).items():
            if isinstance(path, Path) and label.startswith("out:"):
                out[label[4:]] = _copy(path, ctx.run_dir / label[4:])
    _record_inputs(ctx)
    return out


def _copy(source: Path, target: Path) -> Path:
    with atomic_path(target) as tmp:
        if source.is_dir():
            shutil.copytree(source, tmp)
        else:
            shutil.copyfile(source, tmp)
    return target


def _zoning(ctx: RunContext, art: dict[str, Any]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    layers = {k: gpd.read_parquet(v) for k, v in art.items() if isinstance(v, Path) and v.suffix == ".parquet"
              and k != "aoi"}
    if layers:
        target = ctx.run_dir / "zonage.gpkg"
        styles = {"zone_urba": categorized_qml("TYPEZONE", TYPEZONE_COLOURS)} if "zone_urba" in layers else None
        write_vector(layers, target, overwrite=True, styles=styles)
        out["zonage.gpkg"] = target
    if "validation" in art:
        out["validation_plu.json"] = _copy(art["validation"], ctx.run_dir / "validation_plu.json")
    return out


def _change(ctx: RunContext, art: dict[str, Any]) -> dict[str, Path]:
    classes = _copy(art["classes"], ctx.run_dir / "changements_classes.tif")
    patches = gpd.read_parquet(art["patches"])
    gpkg = write_vector(patches, ctx.run_dir / "alertes_changement.gpkg", layer="alertes", overwrite=True)
    table = json.loads(Path(art["table"]).read_text(encoding="utf-8"))

    csv = write_table_csv(pd.DataFrame(table), ctx.run_dir / "changements_par_classe.csv", overwrite=True)
    return {"changements_classes.tif": classes, "alertes_changement.gpkg": gpkg,
            "changements_par_classe.csv": csv}


#: Score classes of the QGIS style of ``unites_scores.gpkg`` (red to green).
SCORE_BREAKS = [(0, 20, "215,48,39"), (20, 40, "252,141,89"), (40, 60, "254,224,139"), (60, 80, "145,207,96"),
                (80, 100.001, "26,152,80")]


def _scores(ctx: RunContext, art: dict[str, Any]) -> dict[str, Path]:
    scored = gpd.read_parquet(art["scored"])
    out = {"unites_scores.gpkg": write_vector(scored, ctx.run_dir / "unites_scores.gpkg", layer="unites",
                                              overwrite=True, styles={"unites": graduated_qml("score", SCORE_BREAKS)}),
           "scores.csv": write_table_csv(scored, ctx.run_dir / "scores.csv", overwrite=True)}
    if "sensitivity" in art:
        sens = pd.read_parquet(art["sensitivity"])
        out["sensibilite.csv"] = write_table_csv(sens.reset_index(), ctx.run_dir / "sensibilite.csv",
                                                 overwrite=True)
    out["criteres.csv"] = write_table_csv(pd.read_parquet(art["criteria"]), ctx.run_dir / "criteres.csv",
                                          overwrite=True)
    return out


def write_report(ctx: RunContext, overrides: dict[str, Any] | None) -> list[Path]:
    """Render the report of the finished run and write it with its figures.

    The report shows the run's times and step durations from the manifest, or
    ``overrides`` (for ``recipe rerun``: the original run's, so that a rerun
    reproduces the report byte for byte).
    """
    lang = ctx.recipe.report.lang if ctx.recipe.report else "fr"
    manifest = json.loads(json.dumps(ctx.manifest.to_dict(), default=str))  # as it is written
    manifest.update(overrides or {})
    html, figures = render_report(ctx.run_dir, lang=lang, manifest=manifest,
                                  now=dt.datetime.fromisoformat(manifest["started"]))
    written = []
    for name, png in figures.items():
        written.append(write_bytes(ctx.run_dir / FIGURES / f"{Path(name).stem}.png", png))
    written.append(write_bytes(ctx.run_dir / REPORT, html.encode("utf-8")))
    return written


def _record_items(ctx: RunContext, items_path: Path) -> None:
    for item in pystac.ItemCollection.from_file(str(items_path)):
        assets = band_assets(item)
        first = next((a for n, a in assets.items() if n not in ("scl", "qa_pixel")), None)
        ctx.manifest.items.append({
            "id": item.id, "collection": item.collection_id,
            "datetime": item.datetime.isoformat() if item.datetime else None,
            "processing_baseline": item.properties.get("s2:processing_baseline")
            or item.properties.get("processing:version"),
            "scale": first.scale if first else None, "offset": first.offset if first else None,
            "assets": {n: {"href": redact_url(a.href) if a.href.startswith("http") else a.href,
                           "checksum": a.checksum} for n, a in assets.items()},
        })


def _record_inputs(ctx: RunContext) -> None:
    r = ctx.recipe
    if r.territory.plu is not None:
        ctx.manifest.add_input("plu", r.territory.plu)
    if r.territory.aoi is not None:
        ctx.manifest.add_input("aoi", r.territory.aoi)
    if r.territory.from_communes:  # the cached geo.api.gouv.fr contours the area was made of

        for role, path in commune_inputs(r.territory):
            ctx.manifest.add_input(role, path)
    for spec in r.layers:
        ctx.manifest.add_input(f"layer:{spec.kind}", spec.path)
    if r.scoring is not None and isinstance(r.scoring.criteria, Path):
        ctx.manifest.add_input("criteria", r.scoring.criteria)
    for path in (r.territory.dem, r.territory.parcels,
                 r.crops.parcels if r.crops else None,
                 r.site_finder.destinations if r.site_finder else None,
                 r.scene.project if r.scene else None):
        if path is not None:
            ctx.manifest.add_input("file", path)
    ctx.manifest.parameters = {"keys": ctx.keys}
