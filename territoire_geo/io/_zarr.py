"""Lazy cubes to Zarr stores, chunk by chunk and window by window (bounded memory)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask
import xarray as xr

from territoire_geo._atomic import commit, discard, ensure_new, export_error, temp_path
from territoire_geo.io._windows import DEFAULT_WINDOW, grid_windows

__all__ = ["write_cube_zarr", "write_cube_zarrs"]


def write_cube_zarr(ds: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a (lazy) Dataset or DataArray to a Zarr store, chunk by chunk, atomically.

    The store is written to ``<name>.part`` beside ``path`` (dask computes and writes
    one chunk at a time, so memory stays bounded) and renamed when complete; an
    existing store is replaced only with ``overwrite``. Irregular dask chunks are
    made regular first (Zarr needs equal chunks but the last). Metadata are not
    consolidated (not part of the Zarr 3 specification).

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    """
    return write_cube_zarrs({path: ds}, overwrite=overwrite)[0]


def write_cube_zarrs(stores: Mapping[str | os.PathLike[str], Any], *, overwrite: bool = False,
                     window: int | None = None) -> list[Path]:
    """Write several lazy cubes to Zarr stores in **one** dask computation.

    Cubes computed from the same lazy imagery (the composites of two periods and
    the index series, say) share tasks (reads, masks): computed together, these
    run once. On a grid larger than a few chunks, the stores are written one
    window of whole chunks at a time (all stores per window): dask's local
    scheduler would otherwise start reading many chunks before finishing any,
    and the peak memory would grow with the area (measured on the composites
    step: 1.97 GB on 4096² in one go, 0.96 GB by windows, same time). With a
    dask.distributed client the graph goes to the cluster in one go. Each store
    is written to ``<name>.part`` and renamed only when all are complete.

    Parameters
    ----------
    stores
        ``{path: Dataset or DataArray}`` on one ``y``/``x`` grid.
    overwrite
        Replace existing stores.
    window
        Window side in pixels (whole chunks); default
        :data:`territoire_geo.io.DEFAULT_WINDOW`.

    Returns
    -------
    list of Path
        The written stores, in the order given.

    Raises
    ------
    ExportError
        If a store exists and ``overwrite`` is false, or the disk is full.
    """
    targets = [ensure_new(path, overwrite=overwrite) for path in stores]
    parts = [temp_path(target) for target in targets]
    try:
        ready = [_zarr_ready(data) for data in stores.values()]
        pending = []
        for part, data in zip(parts, ready, strict=True):
            part.parent.mkdir(parents=True, exist_ok=True)
            discard(part)
            pending.append(data.to_zarr(part, mode="w-", compute=False, consolidated=False))
        windows = grid_windows(*(next(iter(d.data_vars.values())) for d in ready),
                               window=window or DEFAULT_WINDOW)
        if windows is None:
            dask.compute(*pending)
        else:  # metadata and coordinates are written; the data go window by window (bounded memory)
            for (y0, y1), (x0, x1) in windows:
                region = {"y": slice(y0, y1), "x": slice(x0, x1)}
                dask.compute(*(_region(data, region).to_zarr(part, region=region, compute=False, consolidated=False)
                               for part, data in zip(parts, ready, strict=True)))
        for part, target in zip(parts, targets, strict=True):
            commit(part, target)
    except OSError as exc:
        raise export_error(targets[0] if len(targets) == 1 else ", ".join(map(str, targets)), exc) from exc
    finally:
        for part in parts:
            discard(part)
    return targets


def _region(ds: Any, region: Mapping[str, slice]) -> Any:
    """The part of ``ds`` in ``region``, without the variables that do not lie on its dims (written already)."""
    part = ds.isel(region)
    return part.drop_vars([name for name, var in part.variables.items() if not set(var.dims) & set(region)])


def _zarr_ready(data: Any) -> Any:
    ds = data.to_dataset(name=data.name or "data") if isinstance(data, xr.DataArray) else data.copy()
    for name in list(ds.variables):
        ds[name].encoding = {}
    regular = {}
    for dim, sizes in (ds.chunksizes or {}).items():
        if len(sizes) > 1 and (len(set(sizes[:-1])) > 1 or sizes[-1] > sizes[0]):
            regular[dim] = max(sizes)
    return ds.chunk(regular) if regular else ds
