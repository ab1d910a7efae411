"""Compute lazy rasters window by window, so that memory does not grow with the area (internal).

dask's local threaded scheduler starts the reads of many chunks before it finishes the
composites of any, so one ``dask.compute`` over a whole tile holds the intermediate
arrays of many chunks at once: on a 10-date, 5-band change pipeline its peak grew by
~120 MB per output Mpx (2.2–2.4 GB on 4096², ~15 GB extrapolated to a full 10980² tile;
``docs/performance.md``, case 6). Computing the same graph one window of a few chunks
at a time bounds it (1.2 GB after the dask pass on 4096², +14 MB per Mpx for the 2-D
results) for the same CPU time, at the cost of a graph cull per window.

Windows follow the chunk boundaries of the first array, so every chunk is computed
once and the values are those of a single ``dask.compute``. A dask.distributed client
has its own scheduling (task queuing bounds the root tasks), so with a client the
arrays are computed in one go, spread over the whole cluster.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import dask
import numpy as np

__all__ = ["DEFAULT_WINDOW", "compute_windows", "grid_windows"]

#: Target window side in pixels (rounded to whole chunks).
DEFAULT_WINDOW = 2048


def compute_windows(*arrays: Any, window: int = DEFAULT_WINDOW) -> tuple[Any, ...]:
    """``dask.compute(*arrays)`` for DataArrays with ``y``/``x`` dims, one window of the grid at a time.

    Parameters
    ----------
    arrays
        xarray DataArrays on one grid (same ``y``/``x`` sizes), dask- or numpy-backed.
    window
        Approximate window side in pixels; whole chunks of the first dask array.

    Returns
    -------
    tuple
        numpy-backed DataArrays with the coordinates and attributes of the inputs.
    """
    windows = grid_windows(*arrays, window=window)
    if windows is None:
        return tuple(dask.compute(*arrays))
    outs = [np.empty(a.shape, dtype=a.dtype) for a in arrays]
    for (y0, y1), (x0, x1) in windows:
        parts = dask.compute(*(a.isel(y=slice(y0, y1), x=slice(x0, x1)) for a in arrays))
        for out, array, part in zip(outs, arrays, parts, strict=True):
            out[_key(array.dims, y0, y1, x0, x1)] = np.asarray(part.values)
    return tuple(a.copy(deep=False, data=out) for a, out in zip(arrays, outs, strict=True))


def grid_windows(*arrays: Any, window: int = DEFAULT_WINDOW) -> list[tuple[tuple[int, int], tuple[int, int]]] | None:
    """The ``((y0, y1), (x0, x1))`` windows of whole chunks to compute ``arrays`` by, or None for one go.

    None when nothing is lazy, a dask.distributed client is active, an array lacks
    ``y``/``x``, or the grid holds two windows or fewer.
    """
    lazy = [a for a in arrays if getattr(a, "chunks", None) is not None]
    if not lazy or _has_client() or not all({"y", "x"} <= set(a.dims) for a in arrays):
        return None
    ys = _edges(lazy[0].chunksizes["y"], window)
    xs = _edges(lazy[0].chunksizes["x"], window)
    if len(ys) * len(xs) <= 2:
        return None
    return list(itertools.product(ys, xs))


def _edges(chunks: Sequence[int], window: int) -> list[tuple[int, int]]:
    """Windows of whole chunks, about ``window`` pixels each."""
    edges, start, size = [], 0, 0
    for chunk in chunks:
        size += chunk
        if size >= window:
            edges.append((start, start + size))
            start, size = start + size, 0
    if size:
        edges.append((start, start + size))
    return edges


def _key(dims: Sequence[Any], y0: int, y1: int, x0: int, x1: int) -> tuple[slice, ...]:
    return tuple(slice(y0, y1) if d == "y" else slice(x0, x1) if d == "x" else slice(None) for d in dims)


def _has_client() -> bool:
    try:
        from distributed import default_client  # only with a cluster; importing it costs ~0.5 s
    except ImportError:  # pragma: no cover - distributed is a core dependency
        return False
    try:
        default_client()
    except ValueError:
        return False
    return True
