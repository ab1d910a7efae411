"""Run a recipe: the steps of the registry in order, each cached by the hash of its inputs.

Each step computes a key from its parameters, the keys of the steps it reads and the
checksums of its input files; its artefacts live in ``<run>/.cache/<step>-<key>/``
and are reused when the key matches, so rerunning an unchanged recipe recomputes
nothing and changing one weight reruns only scoring and what follows. Deliverables
are then written into the run folder, and ``manifest.json`` last.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from territoire_geo._atomic import write_text
from territoire_geo._version import __version__
from territoire_geo.cancel import check as check_cancelled
from territoire_geo.config import dask_client
from territoire_geo.errors import ExportError, TerritoireError
from territoire_geo.provenance import MANIFEST, Manifest, hash_inputs, now
from territoire_geo.recipes import deliverables
from territoire_geo.recipes.checks import check_paths
from territoire_geo.recipes.context import Progress, RunContext, RunResult, Step
from territoire_geo.recipes.models import Recipe
from territoire_geo.recipes.registry import steps_for

__all__ = ["code_digest", "plan", "run"]

log = logging.getLogger(__name__)


def plan(recipe: Recipe) -> list[Step]:
    """The steps a recipe will run, in order (for ``--dry-run``)."""
    return steps_for(recipe)


def run(recipe: Recipe, *, recipe_text: str = "", recipe_file: str | None = None, overwrite: bool = False,
        scheduler: str | None = None, progress: Progress | None = None,
        report_overrides: dict[str, Any] | None = None) -> RunResult:
    """Run every enabled step of ``recipe`` and write the run folder.

    Parameters
    ----------
    recipe
        A validated recipe with absolute paths (:func:`load_recipe` does that).
    recipe_text
        The recipe as written (kept in the manifest; secrets stay ``${VAR}``).
    overwrite
        Replace a finished run folder. An unfinished one (no manifest: the run
        was interrupted) is resumed from its cache without this flag.
    scheduler
        ``tcp://host:port`` of a dask.distributed scheduler (overrides the recipe).
    progress
        Called with ``(event, **info)``: ``step`` (name, index, total), ``step-done``
        (name, cached, seconds), ``done``.
    report_overrides
        Manifest fields the report shows instead of this run's (``started``,
        ``finished``, ``steps``): ``recipe rerun`` passes the original run's, so that
        the reproduced report is byte-identical when the data are.

    Raises
    ------
    ExportError
        If the run folder holds a finished run and ``overwrite`` is false.
    """
    started = time.perf_counter()
    check_paths(recipe)
    run_dir = _prepare(recipe.output, overwrite)
    manifest = Manifest(recipe=_public_recipe(recipe), recipe_text=recipe_text, recipe_file=recipe_file)
    ctx = RunContext(recipe, run_dir, run_dir / ".cache", manifest, progress)
    ctx.stamp = (report_overrides or {}).get("started") or manifest.started
    client = dask_client(scheduler or recipe.scheduler)
    try:
        with _disk_errors(run_dir):
            steps = plan(recipe)
            for index, step in enumerate(steps, start=1):
                _run_step(ctx, step, index, len(steps))
            outputs = _finish(ctx, report_overrides)
    finally:
        if client is not None:
            client.close()
    ctx.say("done", run_dir=str(run_dir))
    return RunResult(run_dir, outputs, tuple(ctx.cached), tuple(ctx.computed), time.perf_counter() - started,
                     _summary(ctx))


@contextmanager
def _disk_errors(run_dir: Path) -> Iterator[None]:
    """A full or read-only disk met by any writer (parquet, zarr, copies) is an :class:`ExportError`."""
    try:
        yield
    except TerritoireError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ExportError(f"disk full while writing the run folder {run_dir}; free space and run again "
                              "(finished steps are kept and reused)") from exc
        if exc.errno == errno.EROFS:
            raise ExportError(f"{run_dir} is on a read-only file system; choose another --out") from exc
        raise


def _prepare(run_dir: Path, overwrite: bool) -> Path:
    if (run_dir / MANIFEST).exists():
        if not overwrite:
            raise ExportError(f"{run_dir} holds a finished run; pass --overwrite to replace it")
        for child in run_dir.iterdir():
            if child.name != ".cache":  # a symbolic link is removed, never followed
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    elif run_dir.exists() and any(run_dir.iterdir()):
        log.info("%s holds an unfinished run: resuming from its cache", run_dir)
    (run_dir / ".cache").mkdir(parents=True, exist_ok=True)
    return run_dir


def _public_recipe(recipe: Recipe) -> dict[str, Any]:
    return recipe.public_dump()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 of the package's source and data files: a code change invalidates every cached step."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".json", ".csv", ".yaml", ".js", ".css"} \
                and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run_step(ctx: RunContext, step: Step, index: int, total: int) -> None:
    check_cancelled()  # an interrupt a library swallowed during the previous step stops the run here
    ctx.say("step", name=step.name, label=step.label, index=index, total=total)
    started = time.perf_counter()
    upstream = [ctx.keys[n] for n in step.needs if n in ctx.keys]
    key = hash_inputs(step.name, __version__, code_digest(), upstream, step.key(ctx))
    ctx.keys[step.name] = key
    folder = ctx.cache_dir / f"{step.name}-{key}"
    done = folder / ".done"
    if done.exists():
        ctx.artefacts[step.name] = _read_done(done, folder)
        ctx.cached.append(step.name)
        cached = True
    else:
        _clear_stale(ctx.cache_dir, step.name, folder)
        shutil.rmtree(folder, ignore_errors=True)  # what an interrupted attempt left (no .done)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = step.func(ctx, folder)
            _write_done(done, result, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # half-written artefacts are never reused
            raise
        ctx.artefacts[step.name] = result
        ctx.computed.append(step.name)
        cached = False
    seconds = time.perf_counter() - started
    ctx.manifest.steps.append({"name": step.name, "key": key, "cached": cached, "seconds": round(seconds, 3)})
    ctx.say("step-done", name=step.name, cached=cached, seconds=seconds)


def _clear_stale(cache_dir: Path, name: str, keep: Path) -> None:
    for old in cache_dir.glob(f"{name}-*"):
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _write_done(done: Path, result: dict[str, Any], folder: Path) -> None:
    body = {k: (f"@{Path(v).relative_to(folder).as_posix()}" if isinstance(v, Path) else v)
            for k, v in result.items()}
    write_text(done, json.dumps(body, default=str))  # the step's folder counts only once this exists


def _read_done(done: Path, folder: Path) -> dict[str, Any]:
    body = json.loads(done.read_text(encoding="utf-8"))
    return {k: (folder / v[1:] if isinstance(v, str) and v.startswith("@") else v) for k, v in body.items()}


def _finish(ctx: RunContext, report_overrides: dict[str, Any] | None) -> dict[str, Path]:
    outputs = deliverables.write_all(ctx)
    ctx.manifest.add_outputs(ctx.run_dir, outputs.values())
    if ctx.recipe.report is not None and ctx.recipe.report.enabled:
        check_cancelled()
        ctx.manifest.finished = now()  # the report reads the manifest from memory: none on disk before it
        written = deliverables.write_report(ctx, report_overrides)
        outputs["rapport.html"] = written[-1]
        ctx.manifest.add_outputs(ctx.run_dir, written)
    check_cancelled()  # an interrupted run never gets a manifest
    ctx.manifest.write(ctx.run_dir)  # last, once: a folder without it is an unfinished run
    return outputs


def _summary(ctx: RunContext) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for artefacts in ctx.artefacts.values():
        summary.update(artefacts.get("summary", {}) if isinstance(artefacts.get("summary"), dict) else {})
    return summary
