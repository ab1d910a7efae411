"""``territoire-geo zoning validate`` and ``territoire-geo zoning fetch``: CNIG PLU/PLUi data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from territoire_geo_cli._app import console, out, print_json, run, state
from territoire_geo_cli.imagery import parse_aoi

if TYPE_CHECKING:
    from territoire_geo.workflows import ZoningCheck

__all__ = ["register", "zoning_app"]

zoning_app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")]
_MAX_REPAIRS = 15


# ------------------------------------------------------------------ validate
def _issues_table(report: Any) -> Table:
    table = Table(title=f"Validation of {report.source} (CNIG {report.cnig_version})")
    for column in ("severity", "code", "layer"):
        table.add_column(column, no_wrap=True)
    table.add_column("count", justify="right", no_wrap=True)
    table.add_column("area m²", justify="right", no_wrap=True)
    table.add_column("message", ratio=1, min_width=20)
    colour = {"error": "red", "warning": "yellow", "info": "dim"}
    order = {"error": 0, "warning": 1, "info": 2}
    for issue in sorted(report.issues, key=lambda i: order.get(i.severity, 3)):
        area = "" if issue.area_m2 is None else f"{issue.area_m2:,.1f}"
        table.add_row(f"[{colour.get(issue.severity, 'white')}]{issue.severity}[/]", issue.code, issue.layer,
                      str(issue.count), area, issue.message)  # fmt: skip
    return table


def _typezone_table(report: Any) -> Table:
    table = Table(title="Zones by TYPEZONE")
    table.add_column("TYPEZONE")
    table.add_column("zones", justify="right")
    table.add_column("ha", justify="right")
    for typezone, row in report.counts_by_typezone.iterrows():
        table.add_row(str(typezone), str(int(row["n"])), f"{row['area_ha']:,.2f}")
    return table


def _encodings_table(report: Any) -> Table:
    table = Table(title="Text encodings")
    for column in ("layer", ".cpg says", "found", "double-encoded fixed"):
        table.add_column(column)
    for layer, found in report.encodings.items():
        table.add_row(layer, str(found.get("declared") or "—"), str(found.get("found") or "?"),
                      str(found.get("mojibake_fixed", 0)))  # fmt: skip
    return table


def _print_check(check: ZoningCheck) -> None:
    report, repairs = check.report, check.zoning.repairs
    out.print(_issues_table(report))
    out.print(_typezone_table(report))
    if report.encodings:
        out.print(_encodings_table(report))
    out.print(f"[bold]Repairs when reading[/] ({len(repairs)}):", highlight=False)
    for line in repairs[:_MAX_REPAIRS]:
        out.print(f"  • {line}", highlight=False, markup=False)
    if len(repairs) > _MAX_REPAIRS:
        out.print(f"  … {len(repairs) - _MAX_REPAIRS} more (use --json)", highlight=False)
    verdict = "[bold red]BLOCKING[/]: the file cannot be used as is" if report.blocking else "[green]Not blocking.[/]"
    out.print(verdict)
    if check.written is not None:
        out.print(f"repaired layers written to [bold]{check.written}[/]", highlight=False)


def _check_json(check: ZoningCheck) -> dict[str, Any]:
    data = check.report.to_dict()
    data["zones"] = len(check.zoning.zones)
    data["layers"] = {name: len(frame) for name, frame in check.zoning.layers().items()}
    data["repairs"] = list(check.zoning.repairs)
    data["written"] = None if check.written is None else str(check.written)
    return data


@zoning_app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="GPU archive (zip or folder), shapefile, GeoPackage, GeoJSON…")],
    json: JsonOpt = False,
    fix: Annotated[Path | None, typer.Option("--fix", help="Write the repaired layers to this GeoPackage.")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Check a PLU/PLUi against the CNIG géostandard: topology, codes, dates, encodings.

    Overlaps, gaps, MultiPolygons, Z coordinates, unknown codes and mis-declared
    encodings are reported; the exit code is 4 only when the file cannot be used
    (no zones, mandatory fields missing, no CRS). With --fix, the repaired set
    (2-D, valid, CNIG names, Lambert-93) is saved as a GeoPackage.

    Example: [bold]territoire-geo zoning validate data_samples/plu/30014_PLU_20171013[/]
    """
    from territoire_geo.workflows import validate_zoning  # deferred: keeps --help fast

    check = run(ctx, lambda: validate_zoning(path, fix=fix, overwrite=overwrite))
    if json:
        print_json(_check_json(check))
    elif not state(ctx).quiet or check.report.blocking:
        _print_check(check)
    if check.report.blocking:
        blocking = "; ".join(i.message for i in check.report.issues if i.blocking)
        console.print(f"[bold red]error:[/] {path}: {blocking}", highlight=False)
        raise typer.Exit(4)


# --------------------------------------------------------------------- fetch
def _parse_aoi(text: str | None) -> Any:
    if text is None:
        return None

    return parse_aoi(text, "EPSG:4326")


@zoning_app.command("fetch")
def fetch_cmd(
    ctx: typer.Context,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="GeoPackage to create.")],
    insee: Annotated[str | None, typer.Option("--insee", help="INSEE code of the commune (e.g. 30014).")] = None,
    partition: Annotated[str | None, typer.Option("--partition", help="GPU partition (DU_30014, DU_<SIREN>).")] = None,
    aoi: Annotated[str | None, typer.Option("--aoi", help="Vector file or lon/lat bbox 'minx,miny,maxx,maxy'.")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="API Carto GPU module URL.")] = None,
    overwrite: OverwriteOpt = False,
    json: JsonOpt = False,
) -> None:
    """Download a PLU/PLUi from the Géoportail de l'Urbanisme (IGN API Carto) into a GeoPackage.

    Give one of --insee, --partition or --aoi. Pages of 1,000 features are
    followed; layers are normalised to CNIG names and Lambert-93 like a GPU archive.

    Example: [bold]territoire-geo zoning fetch --insee 30014 --out plu_30014.gpkg[/]
    """
    from territoire_geo.workflows import fetch_zoning_to  # deferred: keeps --help fast

    quiet = state(ctx).quiet or json
    progress = None if quiet else (lambda msg: console.print(f"[dim]{msg}[/]", highlight=False))
    result = run(ctx, lambda: fetch_zoning_to(out_path, insee=insee, partition=partition, aoi=_parse_aoi(aoi),
                                              base_url=base_url, overwrite=overwrite, progress=progress))  # fmt: skip
    if json:
        print_json(result)
        return
    if state(ctx).quiet:
        return
    table = Table(title=f"{result['source']} → {result['path']}")
    table.add_column("layer")
    table.add_column("features", justify="right")
    for name, count in result["layers"].items():
        table.add_row(name, str(count))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``zoning`` command group to ``app``."""
    app.add_typer(
        zoning_app,
        name="zoning",
        help="PLU/PLUi zoning (CNIG géostandard): validate and repair files, fetch from the GPU.\n\n"
        "Example: [bold]territoire-geo zoning validate data_samples/plu/30014_PLU_20171013[/]",
    )
