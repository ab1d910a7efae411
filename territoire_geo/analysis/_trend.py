"""Theil–Sen slope and Mann–Kendall test on many series at once (internal kernels).

Two engines compute the same numbers on a ``(pixels, T)`` block:

- ``numpy``: all ``T (T - 1) / 2`` pairwise slopes of a block of pixels along a new axis,
  built one lag at a time (memory bounded by :data:`PAIR_BUDGET` slopes per block; slopes
  are sorted in float32, which moves the median by at most one float32 rounding);
- ``numba``: a compiled per-pixel loop (single-threaded, so that it can run inside
  dask's thread pool), used when numba is importable.

Definitions (NaN observations are skipped per pixel):

- slope: median of ``(y_j - y_i) / (x_j - x_i)`` over valid pairs with ``x_j != x_i``
  (Sen 1968, *J. Am. Stat. Assoc.* 63:1379);
- intercept: ``median(y) - slope * median(x)`` (Conover 1980; as ``scipy.stats.theilslopes``
  ``method="separate"`` and ``pymannkendall``);
- ``S = sum(sign(y_j - y_i))`` over valid pairs ``i < j``; ``var(S) = (n (n - 1) (2n + 5) -
  sum_g t_g (t_g - 1) (2 t_g + 5)) / 18`` with ``t_g`` the sizes of groups of tied values
  (Mann 1945; Kendall 1975); ``z = (S - sign(S)) / sqrt(var(S))``; two-sided
  ``p = erfc(|z| / sqrt(2))``.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from territoire_geo.analysis.composites import nan_quantile
from territoire_geo.errors import ConfigError

__all__ = ["ENGINES", "PAIR_BUDGET", "theil_sen_mann_kendall"]

ENGINES = ("auto", "numpy", "numba")
#: Pairwise slopes per block of the numpy engine (pixels per block = budget // pairs).
PAIR_BUDGET = 2_000_000
_erfc = np.frompyfunc(math.erfc, 1, 1)


def theil_sen_mann_kendall(values: np.ndarray, x: np.ndarray, *, min_obs: int = 4,
                           engine: str = "auto") -> tuple[np.ndarray, ...]:
    """Slope, intercept, z, p and valid count of each series along the last axis.

    Parameters
    ----------
    values
        ``(..., T)`` array, NaN = missing.
    x
        ``(T,)`` abscissae (e.g. decimal years).
    min_obs
        Series with fewer valid observations give NaN.
    engine
        ``"auto"`` (numba if installed), ``"numpy"`` or ``"numba"``.

    Returns
    -------
    tuple of numpy.ndarray
        ``slope, intercept, z, p`` (float32) and ``n`` (uint16), shaped ``values.shape[:-1]``.
    """
    shape = values.shape[:-1]
    flat = np.ascontiguousarray(values.reshape(-1, values.shape[-1]))  # float64 only block by block
    if flat.dtype.kind != "f":
        flat = flat.astype(np.float64)
    xs = np.asarray(x, dtype=np.float64)
    kernel = _numba_kernel() if _use_numba(engine) else None
    if kernel is not None:
        out = np.full((4, flat.shape[0]), np.nan)
        kernel(flat, xs, int(min_obs), out)
    else:
        out = _numpy_engine(flat, xs, int(min_obs))
    count = (~np.isnan(flat)).sum(axis=1).astype(np.uint16)
    return (*(row.astype(np.float32).reshape(shape) for row in out), count.reshape(shape))


def _use_numba(engine: str) -> bool:
    if engine not in ENGINES:
        raise ConfigError(f"unknown trend engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "numpy":
        return False
    available = _numba_kernel() is not None
    if engine == "numba" and not available:
        raise ConfigError("engine='numba' needs numba: pip install 'territoire_geo[fast]'")
    return available


# ---------------------------------------------------------------- numpy engine


def _numpy_engine(flat: np.ndarray, x: np.ndarray, min_obs: int) -> np.ndarray:
    pixels, steps = flat.shape
    per_block = max(1, PAIR_BUDGET // max(steps * (steps - 1) // 2, 1))
    out = np.full((4, pixels), np.nan)
    for start in range(0, pixels, per_block):
        block = flat[start:start + per_block].astype(np.float64)
        out[:, start:start + per_block] = _numpy_block(block, x, min_obs)
    return out


def _numpy_block(y: np.ndarray, x: np.ndarray, min_obs: int) -> np.ndarray:
    """All pairs of a block of series, one lag at a time (contiguous slices, no fancy indexing)."""
    pixels, steps = y.shape
    valid = ~np.isnan(y)
    n = valid.sum(axis=1).astype(np.float64)
    slopes = np.empty((pixels, steps * (steps - 1) // 2), dtype=np.float32)
    s = np.zeros(pixels)
    ties = np.ones((pixels, steps))  # size of the tie group of each value
    offset = 0
    with np.errstate(all="ignore"):
        for lag in range(1, steps):
            d = y[:, lag:] - y[:, :-lag]
            s += (d > 0).sum(axis=1) - (d < 0).sum(axis=1)
            equal = d == 0
            ties[:, lag:] += equal
            ties[:, :-lag] += equal
            dx = x[lag:] - x[:-lag]
            slopes[:, offset:offset + steps - lag] = np.where(dx != 0, d / dx, np.nan)
            offset += steps - lag
        tie_term = np.where(valid, (ties - 1.0) * (2.0 * ties + 5.0), 0.0).sum(axis=1)
        var = (n * (n - 1.0) * (2.0 * n + 5.0) - tie_term) / 18.0
        z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
        slope = nan_quantile(slopes, 0.5)
        x_valid = np.where(valid, x, np.nan)
        intercept = nan_quantile(y, 0.5) - slope * nan_quantile(x_valid, 0.5)
        p = _erfc(np.abs(z) / math.sqrt(2.0)).astype(np.float64)
        out = np.stack([slope, intercept, z, p])
    out[:, n < min_obs] = np.nan
    return out


# ---------------------------------------------------------------- numba engine


@cache
def _numba_kernel() -> Any:
    try:
        import numba  # optional dependency (extra "fast")
    except ImportError:
        return None
    jit = numba.njit(cache=False, nogil=True)
    return jit(_make_pixel_loop(jit(_select), jit(_median), jit(_insertion_sort)))


def _select(a: np.ndarray, n: int, k: int) -> float:  # pragma: no cover - compiled by numba
    """Reorder ``a[:n]`` in place so that ``a[k]`` is its k-th smallest value and ``a[:k] <= a[k]``; return it.

    Wirth's selection (Hoare partition around ``a[k]``): O(n) on average, no allocation,
    where ``np.median`` copies and sorts for every pixel.
    """
    low, high = 0, n - 1
    while low < high:
        pivot = a[k]
        i, j = low, high
        while i <= j:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if j < k:
            low = i
        if k < i:
            high = j
    return a[k]


def _median(a: np.ndarray, n: int, select: Any) -> float:  # pragma: no cover - compiled by numba
    """Median of ``a[:n]`` (NaN-free; ``a`` is reordered), as :func:`numpy.median`."""
    if n == 0:
        return np.nan
    k = n // 2
    upper = select(a, n, k)
    if n % 2:
        return upper
    lower = a[0]
    for i in range(1, k):
        lower = max(lower, a[i])
    return (lower + upper) / 2.0


def _insertion_sort(a: np.ndarray, n: int) -> None:  # pragma: no cover - compiled by numba
    """Sort ``a[:n]`` in place (n is a few dozen dates: faster than a general sort)."""
    for i in range(1, n):
        value = a[i]
        j = i - 1
        while j >= 0 and a[j] > value:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = value


def _make_pixel_loop(select: Any, median: Any, insertion_sort: Any) -> Any:
    """The per-pixel loop, closing over the compiled helpers (numba freezes them as constants)."""
    def _pixel_loop(flat: np.ndarray, x: np.ndarray, min_obs: int, out: np.ndarray) -> None:  # pragma: no cover
        pixels, steps = flat.shape
        values = np.empty(steps)
        xs = np.empty(steps)
        slopes = np.empty(max(steps * (steps - 1) // 2, 1))
        for k in range(pixels):
            n = 0
            for t in range(steps):
                if not np.isnan(flat[k, t]):
                    values[n] = flat[k, t]
                    xs[n] = x[t]
                    n += 1
            if n < min_obs:
                continue
            s = 0.0
            count = 0
            for i in range(n):
                for j in range(i + 1, n):
                    d = values[j] - values[i]
                    s += (d > 0) - (d < 0)
                    if xs[j] != xs[i]:
                        slopes[count] = d / (xs[j] - xs[i])
                        count += 1
            insertion_sort(values, n)
            tie_term = 0.0
            run = 1
            for i in range(1, n + 1):
                if i < n and values[i] == values[i - 1]:
                    run += 1
                else:
                    tie_term += run * (run - 1.0) * (2.0 * run + 5.0)
                    run = 1
            var = (n * (n - 1.0) * (2.0 * n + 5.0) - tie_term) / 18.0
            z = (s - np.sign(s)) / math.sqrt(var) if var > 0 else 0.0
            slope = median(slopes, count, select) if count > 0 else np.nan
            middle = values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2.0
            out[0, k] = slope
            out[1, k] = middle - slope * median(xs, n, select)
            out[2, k] = z
            out[3, k] = math.erfc(abs(z) / math.sqrt(2.0))

    return _pixel_loop
