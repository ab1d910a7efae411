"""Shared CLI plumbing: state, error mapping, output helpers, progress bars."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from territoire_geo.cancel import sigint_sets_flag
from territoire_geo.errors import TerritoireError, exit_code_for

T = TypeVar("T")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@dataclass
class AppState:
    """Options of the root callback, carried in ``ctx.obj``."""

    debug: bool = False
    quiet: bool = False
    verbose: int = 0


def state(ctx: typer.Context) -> AppState:
    """The AppState of this invocation."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, AppState) else AppState()


def setup_logging(verbose: int, quiet: bool) -> None:
    """Library log lines to stderr: warnings by default, info with -v, debug with -vv."""

    # GDAL notes this for the in-memory arrays odc-loader warps (it passes the transform):
    # noise for a planner, not a problem with their data.
    warnings.filterwarnings("ignore", message="Dataset has no geotransform", module="rasterio")
    level = logging.ERROR if quiet else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("territoire_geo")
    root.handlers = [h for h in root.handlers if not isinstance(h, logging.StreamHandler)] + [handler]
    root.setLevel(level)


def run(ctx: typer.Context, func: Callable[[], T]) -> T:
    """Call ``func``; map user errors to one line and the documented exit code.

    While it runs, Ctrl-C also sets the library's cancellation flag, so that a
    recipe stops at its next step boundary even if a library swallowed the
    :class:`KeyboardInterrupt`.
    """
    try:
        with sigint_sets_flag():
            return func()
    except TerritoireError as exc:
        if state(ctx).debug:
            raise
        console.print(f"[bold red]error:[/] {_one_line(exc)}", highlight=False, markup=True)
        raise typer.Exit(exit_code_for(exc)) from None
    except KeyboardInterrupt:
        _quiet_abandoned_tasks()
        console.print("[yellow]interrupted[/]: partial downloads are kept and resume on the next run")
        raise typer.Exit(130) from None
    except MemoryError:
        console.print("[bold red]error:[/] out of memory; use a smaller AOI or smaller --chunks")
        raise typer.Exit(1) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if state(ctx).debug:
            raise
        if _unreadable_raster(exc):  # raised by GDAL while computing (lazy reads): a data problem
            cause = f" ({_one_line(exc.__cause__)[:160]})" if exc.__cause__ else ""
            console.print(f"[bold red]error:[/] cannot read raster data: {_one_line(exc)[:160]}{cause}; a file is "
                          "truncated or corrupt — fetch it again or check the catalogue", highlight=False)
            raise typer.Exit(4) from None
        console.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {_one_line(exc)[:300]} "
                      "— rerun with --debug and report it")
        raise typer.Exit(1) from None


def _quiet_abandoned_tasks() -> None:
    """After Ctrl-C, say nothing of the writes the interrupt abandoned.

    An interrupt that lands while zarr writes a store leaves its asynchronous writes
    pending; at exit, asyncio reports each ("Task was destroyed but it is pending!",
    "coroutine … was never awaited"). The store is a temporary that the next run
    removes: the user is told once that the run was interrupted, nothing more.
    """
    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)


def _unreadable_raster(exc: BaseException) -> bool:
    from rasterio.errors import RasterioIOError  # deferred: keeps --help fast (only after an error)

    return isinstance(exc, RasterioIOError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.replace("[", "\\[")


def print_json(data: Any) -> None:
    """Data as JSON on stdout."""
    out.print_json(json.dumps(data, default=str, ensure_ascii=False))


@contextmanager
def download_progress(quiet: bool) -> Iterator[Callable[[str, int, int | None], None] | None]:
    """A rich progress display fed by (label, bytes, total) calls."""
    if quiet:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        tasks: dict[str, Any] = {}

        def advance(label: str, n: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = bars.add_task(label, total=total)
            bars.update(tasks[label], advance=n, total=total)

        yield advance


def progress_display(quiet: bool) -> tuple[Any, Any]:
    """A step-by-step progress display for recipe runs: ``(bars, report)``, or ``(None, None)`` when quiet."""
    if quiet:
        return None, None
    bars = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=False)
    task: dict[str, Any] = {}

    def report(event: str, **info: Any) -> None:
        if event == "step":
            if "id" not in task:
                task["id"] = bars.add_task("recette", total=info["total"])
            bars.update(task["id"], description=f"{info['index']}/{info['total']} {info['label']}")
        elif event == "step-done":
            bars.advance(task["id"])
            mark = "[dim](cache)[/]" if info["cached"] else f"[dim]{info['seconds']:.1f} s[/]"
            console.print(f"  ✓ {info['name']} {mark}")

    return bars, report


def run_with_progress(ctx: typer.Context, bars: Any, work: Any) -> Any:
    """Run ``work`` through the error mapping, inside the progress display when there is one."""
    if bars is None:
        return run(ctx, work)
    with bars:
        return run(ctx, work)
