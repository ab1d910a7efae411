"""``territoire-geo``: the command-line tool of territoire_geo.

Exit codes: 0 success, 1 unexpected error, 2 usage/config/recipe error,
3 source/network error, 4 data error, 5 export error, 130 interrupted.
"""

from __future__ import annotations

from typing import Annotated

import typer

from territoire_geo._version import __version__
from territoire_geo_cli import (
    analysis,
    decision,
    demo,
    imagery,
    recipe_cmd,
    report_cmd,
    scene_cmd,
    zoning_cmd,
)
from territoire_geo_cli._app import AppState, out, setup_logging

app = typer.Typer(
    name="territoire-geo",
    help="Satellite analysis and land-reserve planning for French local authorities.\n\n"
    "Exit codes: 0 ok, 1 unexpected, 2 usage/config/recipe, 3 source/network, 4 data, 5 export.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:

        out.print(f"territoire-geo {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More log lines (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors; no progress bars.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of user errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Root options shared by every command."""
    ctx.obj = AppState(debug=debug, quiet=quiet, verbose=verbose)
    setup_logging(verbose, quiet)


@app.command("show-versions")
def show_versions_cmd() -> None:
    """Print the versions of territoire_geo and its key dependencies (GDAL, PROJ, GEOS).

    Example: [bold]territoire-geo show-versions[/]
    """
    from territoire_geo import show_versions  # deferred: keeps --help fast

    out.print(show_versions(), highlight=False)


imagery.register(app)
demo.register(app)
analysis.register(app)
recipe_cmd.register(app)
zoning_cmd.register(app)
decision.register(app)
report_cmd.register(app)
scene_cmd.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
