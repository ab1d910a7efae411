"""``territoire-geo overlay`` and ``territoire-geo score``: candidate land units and their ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from territoire_geo_cli._app import console, out, print_json, run, state

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")]
ListOpt = list[str] | None


def overlay_cmd(
    ctx: typer.Context,
    zoning: Annotated[Path, typer.Option("--zoning", "-z", help="PLU folder, zip or vector file (CNIG).")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Units GeoPackage to write.")],
    layer: Annotated[ListOpt, typer.Option("--layer", "-l", help="kind=PATH (repeatable); kinds: rga, "
                                           "ppr_covadis, ppr_cnig, znieff1, znieff2, natura2000, geology, change.")] = None,
    raster: Annotated[ListOpt, typer.Option("--raster", "-r", help="name=PATH.tif (repeatable): "
                                            "<name>_mean and <name>_coverage per unit.")] = None,
    dem: Annotated[Path | None, typer.Option("--dem", help="DEM file: slope_mean (%) per unit.")] = None,
    distance: Annotated[ListOpt, typer.Option("--distance", "-d", help="name=PATH (repeatable): points/lines "
                                              "(bus stops, roads, services) → dist_<name>_m.")] = None,
    parcels: Annotated[Path | None, typer.Option("--parcels", help="Cadastral parcels (units = parcels "
                                                 "cut by zones).")] = None,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Cross PLU zones (or parcels) with soil, risk and nature layers into candidate land units.

    Example: [bold]territoire-geo overlay -z data_samples/plu/30014_PLU_20171013 -l rga=data_samples/layers/rga_argiles.gpkg -d services=data_samples/layers/services.gpkg -o units.gpkg[/]
    """
    from territoire_geo.workflows import overlay_from_files, parse_assignments  # deferred: keeps --help fast

    quiet = state(ctx).quiet or json

    def work() -> Any:
        return overlay_from_files(
            zoning, layers=parse_assignments(layer or [], "--layer"),
            rasters=parse_assignments(raster or [], "--raster"), dem=dem,
            distances=parse_assignments(distance or [], "--distance"), parcels=parcels, out=out_path,
            overwrite=overwrite, progress=None if quiet else (lambda msg: console.print(f"[dim]{msg}[/]")),
        )

    units = run(ctx, work)
    summary = {"out": str(out_path), "units": len(units), "area_ha": round(float(units["area_ha"].sum()), 2),
               "columns": [c for c in units.columns if c != "geometry"]}
    if json:
        print_json(summary)
    elif not state(ctx).quiet:
        out.print(f"{summary['units']} units ({summary['area_ha']:,.1f} ha) with {len(summary['columns'])} "
                  f"columns written to {out_path}")


def _ranked_table(scored: Any, stability: Any, top: int) -> Table:
    table = Table(title=f"Top {top} candidate units")
    for column in ("rank", "unit", "zone", "ha", "score", "reliability", "max possible"):
        table.add_column(column, justify="right" if column not in ("unit", "zone") else "left")
    if stability is not None:
        table.add_column("rank range", justify="right")
        table.add_column("top-k %", justify="right")
    for index, row in scored[scored["rank"].notna()].head(top).iterrows():
        cells = [str(row["rank"]), str(row.get("LIBELLE", row.get("unit_id", index))), str(row.get("TYPEZONE", "")),
                 f"{row.get('area_ha', float('nan')):,.2f}", f"{row['score']:.1f}", f"{row['reliability']:.0%}",
                 f"{row['score_max_possible']:.1f}"]
        if stability is not None:
            s = stability.loc[index]
            cells += [f"{s['rank_min']:.0f}–{s['rank_max']:.0f}", f"{s['top_k_share']:.0%}"]
        table.add_row(*cells)
    return table


def _exclusion_table(counts: dict[str, int]) -> Table:
    table = Table(title="Excluded units by reason")
    table.add_column("reason")
    table.add_column("units", justify="right")
    for reason, count in counts.items():
        table.add_row(reason, str(count))
    return table


def _json_rows(scored: Any, top: int) -> list[dict[str, Any]]:
    columns = [c for c in ("rank", "unit_id", "LIBELLE", "TYPEZONE", "area_ha", "score", "reliability",
                           "score_max_possible") if c in scored.columns]
    rows = scored[scored["rank"].notna()].head(top)[columns]
    return [{k: (int(v) if k in ("rank", "unit_id") else v) for k, v in row.items()} for row in
            rows.astype(object).to_dict("records")]


def score_cmd(
    ctx: typer.Context,
    units: Annotated[Path, typer.Option("--units", "-u", help="Units file from 'territoire-geo overlay'.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder (scores.gpkg, scores.csv, "
                                          "criteria.csv, sensitivity.csv).")],
    criteria: Annotated[Path | None, typer.Option("--criteria", "-c", help="Criteria YAML (default: the "
                                                  "réserve foncière set).")] = None,
    sensitivity: Annotated[int, typer.Option("--sensitivity", min=0, help="Weight draws for the rank "
                                             "stability table (0: none).")] = 0,
    top: Annotated[int, typer.Option("--top", min=1, help="Rows of the ranked table.")] = 10,
    lang: Annotated[str, typer.Option("--lang", help="Language of exclusion reasons: fr or en.")] = "fr",
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Score and rank candidate land units (score 0–100, reliability, exclusions with reasons).

    Example: [bold]territoire-geo score -u units.gpkg -o scores --sensitivity 500[/]
    """
    from territoire_geo.workflows import score_from_files  # deferred: keeps --help fast

    result = run(ctx, lambda: score_from_files(units, out_dir, criteria=criteria, sensitivity=sensitivity,
                                               lang=lang, overwrite=overwrite))
    if json:
        print_json({"outputs": {k: str(v) for k, v in result.outputs.items()},
                    "units": len(result.scored), "ranked": int(result.scored["rank"].notna().sum()),
                    "exclusions": result.exclusions, "top": _json_rows(result.scored, top)})
        return
    if state(ctx).quiet:
        return
    out.print(_ranked_table(result.scored, result.sensitivity, top))
    if result.exclusions:
        out.print(_exclusion_table(result.exclusions))
    out.print(f"outputs: {', '.join(str(p) for p in result.outputs.values())}")


def register(app: typer.Typer) -> None:
    """Add ``overlay`` and ``score`` to ``app``."""
    app.command("overlay")(overlay_cmd)
    app.command("score")(score_cmd)
