"""The library code as it was before the performance fixes of this suite, for before/after rows.

``ndvi_ours_before`` / ``aweish_ours_before`` / ``trend_ours_before`` patch these copies into
the child process (never into the library files) and then run the same setup as the
current variant, so that one run of the suite gives both figures:

- ``territoire_geo.analysis.expr``: the evaluator allocated a new array for every operator, the
  safe division filled a NaN array first, and ``inf`` was replaced through ``np.where``
  (one more block-sized array);
- ``territoire_geo.analysis._trend``: the numba loop sorted and took ``np.median`` (a copy and a
  sort) for every pixel;
- ``territoire_geo.imagery._load``: DN -> reflectance was ``astype * scale + offset`` then
  ``where(raw != nodata)``, four block-sized arrays per chunk (the old xarray expression,
  fused by dask into one task, allocated the same temporaries as :func:`_reflectance_block`).
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmarks._harness import Run


def _safe_divide(numerator: Any, denominator: Any) -> np.ndarray:
    numerator, denominator = np.broadcast_arrays(numerator, denominator)
    out = np.full(numerator.shape, np.nan, dtype=np.result_type(numerator, denominator))
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _eval(node: ast.expr, env: dict[str, Any], dtype: np.dtype[Any]) -> Any:
    from territoire_geo.analysis import expr

    binary = {**expr._BINARY, ast.Div: _safe_divide}
    if isinstance(node, ast.Constant):
        return dtype.type(node.value)
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env, dtype)
        return np.negative(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return binary[type(node.op)](_eval(node.left, env, dtype), _eval(node.right, env, dtype))
    if isinstance(node, ast.Compare):
        operands = [_eval(item, env, dtype) for item in (node.left, *node.comparators)]
        tests = [expr._COMPARE[type(op)][1](a, b) for op, a, b in zip(node.ops, operands, operands[1:], strict=False)]
        return functools.reduce(np.logical_and, tests)
    return expr._CALLS[node.func.id](*(_eval(arg, env, dtype) for arg in node.args))  # type: ignore[attr-defined]


def _kernel(body: ast.expr, names: tuple[str, ...], constants: dict[str, float], dtype: np.dtype[Any],
            *arrays: Any) -> np.ndarray:
    with np.errstate(all="ignore"):
        env = {name: np.asarray(array, dtype=dtype) for name, array in zip(names, arrays, strict=True)}
        env.update({name: dtype.type(value) for name, value in constants.items() if name not in env})
        result = np.asarray(_eval(body, env, dtype), dtype=dtype)
        return np.where(np.isinf(result), dtype.type(np.nan), result)


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
        ordered = np.sort(values[:n])
        tie_term = 0.0
        run = 1
        for i in range(1, n + 1):
            if i < n and ordered[i] == ordered[i - 1]:
                run += 1
            else:
                tie_term += run * (run - 1.0) * (2.0 * run + 5.0)
                run = 1
        var = (n * (n - 1.0) * (2.0 * n + 5.0) - tie_term) / 18.0
        z = (s - np.sign(s)) / math.sqrt(var) if var > 0 else 0.0
        slope = np.median(slopes[:count]) if count > 0 else np.nan
        out[0, k] = slope
        out[1, k] = np.median(values[:n]) - slope * np.median(xs[:n])
        out[2, k] = z
        out[3, k] = math.erfc(abs(z) / math.sqrt(2.0))


def _reflectance_block(raw: np.ndarray, scale: np.ndarray, offset: np.ndarray, *,
                       nodata: float | None) -> np.ndarray:
    values = raw.astype(np.float32) * scale + offset
    return np.where(raw != nodata, values, np.float32(np.nan)) if nodata is not None else values


def _patch_expr() -> None:
    from territoire_geo.analysis import expr

    expr._kernel = _kernel  # type: ignore[assignment]


def _patch_trend() -> None:
    import numba

    from territoire_geo.analysis import _trend

    kernel = numba.njit(cache=False, nogil=True)(_pixel_loop)
    _trend._numba_kernel = lambda: kernel  # type: ignore[assignment]


def ndvi_ours_before(params: Mapping[str, Any]) -> Run:
    """``ndvi_ours`` with the evaluator as it was before the fix."""
    from benchmarks._cases import ndvi_ours

    _patch_expr()
    return ndvi_ours(params)


def aweish_ours_before(params: Mapping[str, Any]) -> Run:
    """``aweish_ours`` with the evaluator as it was before the fix."""
    from benchmarks._cases import aweish_ours

    _patch_expr()
    return aweish_ours(params)


def trend_ours_before(params: Mapping[str, Any]) -> Run:
    """``trend_ours`` with the numba loop as it was before the fix."""
    from benchmarks._cases import trend_ours

    _patch_trend()
    return trend_ours(params)


def read_ours_before(params: Mapping[str, Any]) -> Run:
    """``read_ours`` with DN -> reflectance as it was before the fix."""
    import importlib

    from benchmarks._pipeline import read_ours

    importlib.import_module("territoire_geo.imagery._load")._reflectance_block = _reflectance_block
    return read_ours(params)
