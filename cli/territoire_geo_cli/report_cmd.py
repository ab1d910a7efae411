"""``territoire-geo report``: the self-contained HTML report of a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from territoire_geo_cli._app import out, run, state


def report_cmd(
    ctx: typer.Context,
    run_folder: Annotated[Path, typer.Argument(metavar="RUN_FOLDER",
                                                      help="Run folder written by 'territoire-geo recipe run'.")],
    lang: Annotated[str, typer.Option("--lang", help="Language of the report: fr or en.")] = "fr",
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Report file (default: "
                                                  "RUN_FOLDER/rapport.html; figures go to figures/ beside it).")]
    = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing report and figures.")] = False,
) -> None:
    """Write one offline HTML report of a run for elected officials: maps, ZAN table, NDVI, PLU checks, provenance.

    Uses whatever the run produced and says which sections are absent and why.
    The file opens by double-click, offline: figures embedded, no script, no external font.

    Example: [bold]territoire-geo report runs/zan-suivi[/]
    """
    from territoire_geo.present.report import build_report  # deferred: keeps --help fast

    path = run(ctx, lambda: build_report(run_folder, lang=lang, out=out_file, overwrite=overwrite))
    if not state(ctx).quiet:
        out.print(str(path), highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the report command to ``app``."""
    app.command("report")(report_cmd)
