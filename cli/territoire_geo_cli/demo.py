"""``territoire-geo demo``: the main job on the embedded sample territory, offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

import territoire_geo
from territoire_geo.errors import ConfigError
from territoire_geo_cli._app import console, out, progress_display, run_with_progress, state


def find_samples(explicit: Path | None) -> Path:
    """The data_samples folder: given, in the working directory, or beside the package."""
    candidates = [explicit] if explicit else [Path("data_samples")]
    if not explicit:
        candidates.append(Path(territoire_geo.__file__).resolve().parents[1] / "data_samples")
    for candidate in candidates:
        if candidate and (candidate / "stac" / "catalog.json").exists():
            return candidate
    raise ConfigError("data_samples not found; run from the repository root or pass --data PATH")


def demo_cmd(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create.")] = Path(
        "runs/demo-reserve-fonciere"),
    data: Annotated[Path | None, typer.Option("--data", help="The data_samples folder.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder.")] = False,
) -> None:
    """Run the main job — the land-reserve recipe — on the sample territory (Arpaillargues, Gard), offline.

    Searches the sample imagery, detects change, reads and validates the real PLU, crosses soil and risk
    layers, scores and ranks the land, and writes the 3D scene, the report and the manifest.

    Example: [bold]territoire-geo demo --out runs/demo[/]
    """
    from territoire_geo.recipes import demo  # deferred: keeps --help fast

    started = time.perf_counter()
    bars, report = progress_display(state(ctx).quiet)

    def work() -> Any:
        return demo(find_samples(data), out_dir, overwrite=overwrite, progress=report)

    result = run_with_progress(ctx, bars, work)
    if state(ctx).quiet:
        return
    summary = result.summary
    out.print(f"[bold]{summary.get('ranked_units', 0)}[/] terrains classés, {summary.get('excluded_units', 0)} "
              f"exclus ; meilleurs : {', '.join(summary.get('top_units', []))}")
    out.print(f"alertes de nouvelle artificialisation : {summary.get('new_artificial_ha', 0)} ha")
    for key in ("scene.html", "rapport.html", "scores.csv"):
        if key in result.outputs:
            out.print(f"[bold green]{key:<13}[/] {result.outputs[key]}")
    out.print(f"[bold green]{'manifest.json':<13}[/] {result.run_dir / 'manifest.json'}")
    console.print(f"done in {time.perf_counter() - started:.1f} s — outputs in [bold]{result.run_dir}[/]")


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""
    app.command("demo")(demo_cmd)
