"""``territoire-geo indices`` and ``territoire-geo change``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from territoire_geo.errors import ConfigError
from territoire_geo_cli._app import console, out, print_json, run, state
from territoire_geo_cli.imagery import AOI_HELP, AoiCrsOpt, CloudOpt, CollectionOpt, JsonOpt, parse_aoi

OptSource = Annotated[str | None, typer.Option("--source", "-s", help="STAC API URL, profile (earth-search, "
                                               "planetary-computer, cdse) or static catalog path.")]
OptAoi = Annotated[str | None, typer.Option("--aoi", "-a", help=AOI_HELP)]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output folder.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]


def parse_method(text: str) -> Any:
    """``median|mean|max|min|max_ndvi`` as is, ``p90`` as ``("percentile", 90.0)``."""
    value = text.strip().lower()
    if value.startswith("p") and value[1:].replace(".", "", 1).isdigit():
        return ("percentile", float(value[1:]))
    if value in ("median", "mean", "max", "min", "max_ndvi"):
        return value
    raise ConfigError(f"--composite {text!r} not understood; use median, mean, max, min, max_ndvi or pNN (p90)")


def parse_expressions(entries: list[str] | None) -> dict[str, str]:
    """``['name=formula', ...]`` as a dict."""
    parsed: dict[str, str] = {}
    for entry in entries or []:
        name, sep, formula = entry.partition("=")
        if not sep or not name.strip().isidentifier() or not formula.strip():
            raise ConfigError(f"--expr {entry!r} must look like 'name=(nir-red)/(nir+red)'")
        parsed[name.strip()] = formula.strip()
    return parsed


def _required(**values: Any) -> None:
    missing = [f"--{k.replace('_', '-')}" for k, v in values.items() if v is None]
    if missing:
        raise ConfigError(f"missing option(s) {', '.join(missing)}; see --help")


def indices_cmd(
    ctx: typer.Context, source: OptSource = None, aoi: OptAoi = None,
    period: Annotated[str | None, typer.Option("--period", "-p", help="'2022', '2022-06' or "
                                               "'YYYY-MM-DD/YYYY-MM-DD'.")] = None,
    index: Annotated[str, typer.Option("--index", "-i", help="Comma-separated catalogue indices.")] = "ndvi",
    expr: Annotated[list[str] | None, typer.Option("--expr", "-e", help="Custom index 'name=formula' "
                                                   "(repeatable).")] = None,
    composite: Annotated[str, typer.Option("--composite", help="median, mean, max, min, max_ndvi or pNN.")] = "median",
    out_dir: OutOpt = None, overwrite: OverwriteOpt = False, aoi_crs: AoiCrsOpt = "EPSG:4326",
    collection: CollectionOpt = None, max_cloud: CloudOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the index catalogue and exit.")] = False,
    json: JsonOpt = False,
) -> None:
    """Compute spectral indices over a period: one cloud-masked composite COG per index + valid_count.

    With --list, print the catalogue of available indices instead.

    Example: [bold]territoire-geo indices -s data_samples/stac -a data_samples/plu/30014_PLU_20171013/Donnees_geographiques/30014_ZONE_URBA_20171013.shp -p 2022 -i ndvi,ndbi --out runs/indices[/]
    """
    if list_:
        _print_catalog(ctx, json)
        return

    def work() -> dict[str, Any]:
        from territoire_geo.workflows import compute_indices  # deferred: keeps --help fast

        _required(source=source, aoi=aoi, period=period, out=out_dir)
        return compute_indices(source, parse_aoi(str(aoi), aoi_crs), str(period), Path(str(out_dir)),
                               names=[n for n in index.split(",") if n.strip()],
                               expressions=parse_expressions(expr), method=parse_method(composite),
                               collections=collection or None, max_cloud=max_cloud, overwrite=overwrite,
                               progress=_progress(ctx, json))

    result = run(ctx, work)
    if json:
        print_json(result)
    elif not state(ctx).quiet:
        out.print(_indices_table(result))


def _print_catalog(ctx: typer.Context, json: bool) -> None:
    from territoire_geo.analysis import indices  # deferred: keeps --help fast

    frame = indices.catalog()
    if json:
        print_json(frame[["name", "variable", "long_name", "formula", "bands", "constants", "first_class",
                          "reference"]].to_dict(orient="records"))
        return
    table = Table(title=f"{len(frame)} spectral indices (Awesome Spectral Indices, {indices.CATALOG_VERSION})")
    for col in ("name", "long name", "formula", "bands"):
        table.add_column(col)
    for row in frame.itertuples():
        name = f"[bold]{row.name}[/]" if row.first_class else row.name
        table.add_row(name, row.long_name, row.formula, " ".join(row.bands))
    if not state(ctx).quiet:
        out.print(table)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _indices_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['composite']} composites {result['period']} ({len(result['items'])} scenes)")
    for col in ("index", "mean", "min", "max", "valid obs (min / median)", "file"):
        table.add_column(col)
    for row in result["summary"]:
        table.add_row(row["index"], _fmt(row["mean"]), _fmt(row["min"]), _fmt(row["max"]),
                      f"{row['valid_obs_min']} / {row['valid_obs_median']:g}", Path(row["file"]).name)
    return table


def change_cmd(
    ctx: typer.Context, source: OptSource = None, aoi: OptAoi = None,
    before: Annotated[str | None, typer.Option("--before", "-b", help="Reference period "
                                               "'YYYY-MM-DD/YYYY-MM-DD' (or '2020').")] = None,
    after: Annotated[str | None, typer.Option("--after", help="Later period, after --before.")] = None,
    out_dir: OutOpt = None,
    min_area: Annotated[float, typer.Option("--min-area", min=0, help="Minimum patch area, m².")] = 1000.0,
    composite: Annotated[str, typer.Option("--composite", help="median, mean or pNN.")] = "median",
    overwrite: OverwriteOpt = False, aoi_crs: AoiCrsOpt = "EPSG:4326", collection: CollectionOpt = None,
    max_cloud: CloudOpt = None, json: JsonOpt = False,
) -> None:
    """Detect land change between two periods: classes COG, patches (GPKG + GeoParquet), summary in ha.

    Outputs are alerts to check (zones à vérifier) against OCS GE and the cadastre, not a legal measure.

    Example: [bold]territoire-geo change -s data_samples/stac -a data_samples/plu/30014_PLU_20171013/Donnees_geographiques/30014_ZONE_URBA_20171013.shp --before 2020-01-01/2021-12-31 --after 2022-01-01/2023-12-31 --out runs/change[/]
    """
    def work() -> dict[str, Any]:
        from territoire_geo.workflows import detect_change  # deferred: keeps --help fast

        _required(source=source, aoi=aoi, before=before, after=after, out=out_dir)
        return detect_change(source, parse_aoi(str(aoi), aoi_crs), str(before), str(after), Path(str(out_dir)),
                             min_area_m2=min_area, method=parse_method(composite),
                             collections=collection or None, max_cloud=max_cloud, overwrite=overwrite,
                             progress=_progress(ctx, json))

    result = run(ctx, work)
    if json:
        print_json(result)
    elif not state(ctx).quiet:
        out.print(_change_table(result))
        console.print(f"[dim]{result['note']}[/]")


def _change_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"Change {result['before']} → {result['after']} "
                        f"(patches ≥ {result['min_area_m2']:g} m²)")
    for col, justify in (("class", "left"), ("pixels", "right"), ("area (ha)", "right"),
                         ("patches", "right"), ("patch area (ha)", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in result["summary"]:
        table.add_row(f"{row['class']} {row['class_name']}", str(row["pixels"]), f"{row['area_ha']:.2f}",
                      str(row["patches"]), f"{row['patch_area_ha']:.2f}")
    return table


def _progress(ctx: typer.Context, json: bool) -> Any:
    if state(ctx).quiet or json:
        return None
    return lambda msg: console.print(f"[dim]{msg}[/]")


def register(app: typer.Typer) -> None:
    """Add the analysis commands to ``app``."""
    app.command("indices")(indices_cmd)
    app.command("change")(change_cmd)
