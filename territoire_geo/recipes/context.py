"""What every recipe step stands on: the step record, the run's shared state, its result, cached cubes.

A step is a function ``(ctx, folder) -> artefacts`` that writes into its own cache
folder (``<run>/.cache/<step>-<key>/``) and returns names of files there (or small
JSON values); later steps read those files through ``ctx.artefacts``, never objects
in memory, so that any step can be replayed from the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from territoire_geo.provenance import Manifest
from territoire_geo.recipes.models import Recipe

__all__ = ["Progress", "RunContext", "RunResult", "Step", "open_zarr"]

#: Called with ``(event, **info)``: ``step`` (name, label, index, total), ``step-done`` (name, cached, seconds), ``done``.
Progress = Callable[..., None]


@dataclass(frozen=True)
class Step:
    """One step of the registry (:mod:`territoire_geo.recipes.registry`).

    Attributes
    ----------
    name
        Name of the step and of its cache folder.
    needs
        Steps whose artefacts it reads (their cache keys enter its own).
    func
        ``(ctx, folder) -> artefacts``: does the work, writes into ``folder``.
    key
        ``ctx -> JSON-able``: what the result depends on besides upstream keys (parameters,
        input checksums).
    enabled
        ``recipe -> bool``: whether the recipe asks for the step.
    label
        What the progress display shows (French, like the recipes).
    """

    name: str
    needs: tuple[str, ...]
    func: Callable[[RunContext, Path], dict[str, Any]]
    key: Callable[[RunContext], Any]
    enabled: Callable[[Recipe], bool]
    label: str


@dataclass
class RunContext:
    """State shared by the steps of one run."""

    recipe: Recipe
    run_dir: Path
    cache_dir: Path
    manifest: Manifest
    progress: Progress | None = None
    keys: dict[str, str] = field(default_factory=dict)
    artefacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliverables: list[Path] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    stamp: str = ""  # ISO time documents show as their date: the run's start, or the original run's

    def say(self, event: str, **info: Any) -> None:
        """Report progress to the caller (CLI progress display, notebook…)."""
        if self.progress:
            self.progress(event, **info)


@dataclass(frozen=True)
class RunResult:
    """What :func:`territoire_geo.recipes.run` did."""

    run_dir: Path
    outputs: dict[str, Path]
    cached_steps: tuple[str, ...]
    computed_steps: tuple[str, ...]
    seconds: float
    summary: dict[str, Any]


def open_zarr(path: Path, crs: str) -> xr.Dataset:
    """A cube a step wrote (composites, NDVI series), lazily, with its CRS."""
    return xr.open_zarr(path, consolidated=False).rio.write_crs(crs)
