"""``territoire-geo recipe …``: run, validate, init, verify and rerun recipes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from territoire_geo_cli._app import console, out, print_json, progress_display, run, run_with_progress, state

recipe_app = typer.Typer(help="Run the whole pipeline from a YAML/TOML recipe, reproducibly.",
                         no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="Recipe file (.yaml, .yml or .toml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@recipe_app.command("run")
def run_cmd(
    ctx: typer.Context, file: FileArg,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a finished run folder.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; compute and write nothing.")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", envvar="TERRITOIRE_DASK_SCHEDULER",
                                                  help="dask.distributed scheduler, tcp://host:8786.")] = None,
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (overrides the recipe).")] = None,
    json: JsonOpt = False,
) -> None:
    """Run a recipe: search, load, indices, change, zoning, overlay, scoring, scene, report.

    Steps are cached: a rerun recomputes nothing, changing one weight reruns only scoring and what follows.

    Example: [bold]territoire-geo recipe run recipes/reserve-fonciere.yaml[/]
    """
    from territoire_geo.recipes import dry_run as plan_of  # deferred: keeps --help fast
    from territoire_geo.recipes import run_file  # deferred: keeps --help fast

    if dry_run:
        info = run(ctx, lambda: plan_of(file))
        print_json(info) if json else _print_plan(info)
        return
    bars, report = progress_display(state(ctx).quiet or json)
    started = time.perf_counter()
    result = run_with_progress(ctx, bars, lambda: run_file(file, overwrite=overwrite, scheduler=scheduler,
                                                           output=output, progress=report))
    if json:
        print_json({"run_dir": str(result.run_dir), "outputs": {k: str(v) for k, v in result.outputs.items()},
                    "cached_steps": result.cached_steps, "computed_steps": result.computed_steps,
                    "seconds": round(result.seconds, 2), "summary": result.summary})
        return
    if not state(ctx).quiet:
        _print_result(result, time.perf_counter() - started)


def _print_plan(info: dict[str, Any]) -> None:
    out.print(f"[bold]{info['recipe']}[/] → {info['output']}")
    out.print("steps: " + " → ".join(info["steps"]))
    if "items_found" in info:
        out.print(f"scenes found: {info['items_found']}; grid {info.get('grid')}; bands {info.get('bands')}; "
                  f"≈ {info.get('estimated_pixels', 0) / 1e6:.1f} Mpixels to read")


def _print_result(result: Any, seconds: float) -> None:
    table = Table(title=f"Run folder: {result.run_dir}", show_header=True)
    table.add_column("output", no_wrap=True)
    table.add_column("path")
    for label, path in result.outputs.items():
        table.add_row(label, str(path))
    out.print(table)
    for key in ("scene.html", "rapport.html"):
        if key in result.outputs:
            out.print(f"[bold green]{key}[/]: {result.outputs[key]}")
    console.print(f"done in {seconds:.1f} s ({len(result.cached_steps)} step(s) from cache)")


@recipe_app.command("validate")
def validate_cmd(ctx: typer.Context, file: FileArg, json: JsonOpt = False) -> None:
    """Check a recipe without running it (unknown keys, types, paths, expressions).

    Example: [bold]territoire-geo recipe validate recipes/zan-suivi.yaml[/]
    """
    from territoire_geo.recipes import load_recipe, validate_recipe  # deferred: keeps --help fast

    recipe = run(ctx, lambda: validate_recipe(load_recipe(file)))
    if json:
        print_json({"valid": True, "name": recipe.name})
    elif not state(ctx).quiet:
        out.print(f"[green]valid[/]: {file} ({recipe.name})")


@recipe_app.command("init")
def init_cmd(
    ctx: typer.Context,
    template: Annotated[str, typer.Option("--template", "-t", help="reserve-fonciere, zan-suivi, suivi-cultures, "
                                          "vegetalisation-urbaine, implantation-entreprises")] = "reserve-fonciere",
    target: Annotated[Path, typer.Option("--out", "-o", help="File to write.")] = Path("recette.yaml"),
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Write a commented starter recipe.

    Example: [bold]territoire-geo recipe init --template zan-suivi --out ma-recette.yaml[/]
    """
    from territoire_geo.recipes import init_recipe  # deferred: keeps --help fast

    path = run(ctx, lambda: init_recipe(template, target, overwrite=overwrite))
    if not state(ctx).quiet:
        out.print(f"written {path}: edit the paths, then run [bold]territoire-geo recipe run {path}[/]")


@recipe_app.command("verify")
def verify_cmd(ctx: typer.Context, run_dir: Annotated[Path, typer.Argument(help="Run folder.")],
               json: JsonOpt = False) -> None:
    """Re-check every output checksum of a run folder against its manifest (exit 4 if altered).

    Example: [bold]territoire-geo recipe verify runs/reserve-fonciere[/]
    """
    from territoire_geo.provenance import verify_run  # deferred: keeps --help fast

    report = run(ctx, lambda: verify_run(run_dir))
    if json:
        print_json(report.to_dict())
    elif not state(ctx).quiet:
        verdict = "[green]intact[/]" if report.intact else "[bold red]ALTERED[/]"
        out.print(f"{run_dir}: {verdict} — {report.checked} output(s) checked")
        for label, names in (("modified", report.modified), ("missing", report.missing),
                             ("not in manifest", report.unexpected)):
            for name in names:
                out.print(f"  {label}: {name}")
    if not report.intact:
        raise typer.Exit(4)


@recipe_app.command("rerun")
def rerun_cmd(
    ctx: typer.Context, run_dir: Annotated[Path, typer.Argument(help="Run folder with a manifest.")],
    output: Annotated[Path | None, typer.Option("--out", "-o", help="Where to rerun (default <run>-rerun).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False, json: JsonOpt = False,
) -> None:
    """Reproduce a run from its manifest and say whether the outputs are identical (exit 4 if not).

    Example: [bold]territoire-geo recipe rerun runs/reserve-fonciere[/]
    """
    from territoire_geo.recipes import rerun  # deferred: keeps --help fast

    report = run(ctx, lambda: rerun(run_dir, output=output, overwrite=overwrite))
    if json:
        print_json({"reproduced": report.reproduced, "identical": report.identical,
                    "different": report.different, "missing": report.missing, "rerun": str(report.rerun)})
    elif not state(ctx).quiet:
        verdict = "[green]identical[/]" if report.reproduced else "[bold red]DIFFERENT[/]"
        out.print(f"rerun in {report.rerun}: {verdict} ({len(report.identical)} identical, "
                  f"{len(report.different)} different, {len(report.missing)} missing)")
        for name in report.different:
            out.print(f"  different: {name}")
    if not report.reproduced:
        raise typer.Exit(4)


def register(app: typer.Typer) -> None:
    """Add the recipe command group to ``app``."""
    app.add_typer(recipe_app, name="recipe")
