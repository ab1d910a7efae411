"""``territoire-geo demo``: the main job on the embedded sample territory, offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from territoire_geo_cli._app import console, out, run, state


def find_samples(explicit: Path | None) -> Path:
    """The data_samples folder: given, in the working directory, or beside the package."""
    from territoire_geo.errors import ConfigError

    candidates = [explicit] if explicit else [Path("data_samples")]
    if not explicit:
        import territoire_geo

        candidates.append(Path(territoire_geo.__file__).resolve().parents[1] / "data_samples")
    for candidate in candidates:
        if candidate and (candidate / "stac" / "catalog.json").exists():
            return candidate
    raise ConfigError("data_samples not found; run from the repository root or pass --data PATH")


def demo_cmd(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run folder to create.")] = Path("runs/demo"),
    data: Annotated[Path | None, typer.Option("--data", help="The data_samples folder.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder.")] = False,
) -> None:
    """Run the main job on the sample territory (Arpaillargues, Gard), offline, no account.

    Example: [bold]territoire-geo demo --out runs/demo[/]
    """
    started = time.perf_counter()
    result = run(ctx, lambda: _demo(find_samples(data), out_dir, overwrite, state(ctx).quiet))
    if not state(ctx).quiet:
        for label, path in result.items():
            out.print(f"  {label:<22} {path}")
        console.print(f"done in {time.perf_counter() - started:.1f} s — outputs in [bold]{out_dir}[/]")


def _demo(samples: Path, out_dir: Path, overwrite: bool, quiet: bool) -> dict[str, Any]:
    from territoire_geo.workflows import ndvi_quicklook

    return ndvi_quicklook(samples, out_dir, overwrite=overwrite,
                          progress=None if quiet else (lambda msg: console.print(f"[dim]{msg}[/]")))


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""
    app.command("demo")(demo_cmd)
