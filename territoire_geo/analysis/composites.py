"""Per-period composites of image time series (pure xarray, lazy on dask).

:func:`composite` reduces a ``(time, y, x)`` cube to one image per period (the
whole series, calendar months, meteorological seasons, years, or periods you
name) with a statistic per pixel (median, mean, max, min, a percentile) or the
*max-NDVI* observation, and always returns ``valid_count``: how many valid
observations each composite pixel rests on. A median of one clear observation
is a snapshot, not a composite: check ``valid_count`` before trusting a pixel.

An observation is valid when every floating-point variable of the input (and,
for ``max_ndvi``, the NDVI) is not NaN; composites of a Dataset use the same
observations for every variable. Non-floating variables (e.g. ``scl``) are
dropped. Outputs are float32; pixels without any valid observation are NaN,
without numpy warnings.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import Any, TypeAlias, TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from territoire_geo._types import DateLike, normalize_date_range
from territoire_geo.analysis.indices import ndvi as ndvi_index
from territoire_geo.errors import ConfigError, DataError

__all__ = ["METHODS", "PERIODS", "Method", "PeriodSpec", "composite", "method_label", "nan_quantile", "select_period"]

#: Statistics :func:`composite` accepts (plus ``("percentile", q)``).
METHODS: tuple[str, ...] = ("median", "mean", "max", "min", "max_ndvi")
#: Named automatic periods.
PERIODS: tuple[str, ...] = ("month", "season", "year")

Method: TypeAlias = str | tuple[str, float]
PeriodSpec: TypeAlias = str | Sequence[tuple[str, DateLike, DateLike]] | None
T = TypeVar("T", xr.Dataset, xr.DataArray)

_SEASONS = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM", 6: "JJA", 7: "JJA", 8: "JJA",
            9: "SON", 10: "SON", 11: "SON"}  # fmt: skip
_Period = tuple[str, np.datetime64, np.datetime64]


def select_period(data: T, start: DateLike, end: DateLike, *, dim: str = "time") -> T:
    """The time steps of ``data`` between ``start`` and ``end`` (both inclusive).

    Parameters
    ----------
    data
        DataArray or Dataset with a datetime ``dim`` coordinate (UTC, naive).
    start, end
        Dates, datetimes or ISO strings (``"2021"``, ``"2021-06"``, ``"2021-12-31"``);
        a bare date as ``end`` covers that whole day.

    Returns
    -------
    Same type as ``data``, possibly with zero time steps.

    Raises
    ------
    ConfigError
        If a date cannot be parsed or ``start`` is after ``end``.
    """
    first, last = _bounds(start, end)
    times = _times(data, dim)
    return data.isel({dim: (times >= first) & (times <= last)})


def composite(data: T, *, period: PeriodSpec = None, method: Method = "median",
              ndvi: xr.DataArray | None = None, dim: str = "time") -> T:
    """Composite a time series per period, with the count of valid observations.

    Parameters
    ----------
    data
        ``(time, y, x)`` DataArray or Dataset, float, NaN = no data; numpy- or
        dask-backed (kept lazy: nothing is computed here).
    period
        ``None`` (the whole series, no ``period`` dimension), ``"month"``,
        ``"season"`` (DJF, MAM, JJA, SON; December counts in the next year's DJF),
        ``"year"``, or a list of ``(label, start, end)`` (inclusive dates). Named
        periods yield only periods holding data; listed periods are all returned,
        a period without observations gives NaN and ``valid_count`` 0.
    method
        ``"median"``, ``"mean"``, ``"max"``, ``"min"``, ``("percentile", q)`` with
        ``q`` in [0, 100] (linear interpolation, as :func:`numpy.nanpercentile`), or
        ``"max_ndvi"``: per pixel, every variable of the observation with the
        highest NDVI (first one on ties).
    ndvi
        NDVI series for ``"max_ndvi"``; by default the ``ndvi`` variable of
        ``data``, else computed from its ``red`` and ``nir`` bands.
    dim
        The time dimension.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        Same type as ``data``: float32 composites with a leading ``period``
        dimension (coordinates ``period``, ``period_start``, ``period_end``) unless
        ``period`` is None. A Dataset gains a ``valid_count`` variable (uint16), a
        DataArray a ``valid_count`` coordinate. For ``"max_ndvi"`` a Dataset also
        holds the picked ``ndvi``.

    Raises
    ------
    ConfigError
        Unknown method or period, percentile out of range, no NDVI for ``max_ndvi``.
    DataError
        No floating-point variable, no ``dim`` axis or no datetime coordinate.

    Examples
    --------
    >>> yearly = composite(idx[["ndvi", "ndbi"]], period="year")  # doctest: +SKIP
    >>> yearly.valid_count.sel(period="2022").min().item()  # doctest: +SKIP
    """
    kind, q = _method(method)
    ds = _as_dataset(data, dim)
    score = _ndvi_score(data, ndvi, dim) if kind == "max_ndvi" else None
    template = ds.isel({dim: 0}, drop=True)
    if period is None:
        out = _one(ds, score, kind, q, dim, template)
        out.attrs.update(_whole_series_attrs(ds, dim))
    else:
        periods = _periods(_times(ds, dim), period)
        parts = []
        for _, start, end in periods:
            keep = _in_period(_times(ds, dim), start, end)
            sub_score = None if score is None else score.isel({dim: keep})
            parts.append(_one(ds.isel({dim: keep}), sub_score, kind, q, dim, template))
        out = xr.concat(parts, dim="period", combine_attrs="override").assign_coords(
            period=[p[0] for p in periods], period_start=("period", np.array([p[1] for p in periods], "M8[ns]")),
            period_end=("period", np.array([p[2] for p in periods], "M8[ns]")))
    out.attrs["composite_method"] = _label(kind, q)
    return _as_input_type(out, data)


# ---------------------------------------------------------------- arguments


def _method(method: Method) -> tuple[str, float]:
    if isinstance(method, tuple | list):
        if len(method) != 2 or method[0] != "percentile":
            raise ConfigError(f"method {method!r} not understood; use ('percentile', q)")
        q = float(method[1])
        if not 0.0 <= q <= 100.0:
            raise ConfigError(f"percentile {q:g} out of range; use a value in [0, 100]")
        return "quantile", q / 100.0
    if method == "median":
        return "quantile", 0.5
    if method not in METHODS:
        raise ConfigError(f"unknown composite method {method!r}; use one of {', '.join(METHODS)} "
                          "or ('percentile', q)")
    return str(method), float("nan")


def method_label(method: Method) -> str:
    """Readable name of a composite method: ``"median"``, ``"percentile 90"``, ``"max_ndvi"``...

    Raises
    ------
    ConfigError
        If the method is not understood.
    """
    return _label(*_method(method))


def _label(kind: str, q: float) -> str:
    if kind != "quantile":
        return kind
    return "median" if q == 0.5 else f"percentile {q * 100:g}"


def _as_dataset(data: xr.Dataset | xr.DataArray, dim: str) -> xr.Dataset:
    if dim not in data.dims:
        raise DataError(f"no {dim!r} dimension to composite over (dimensions: {', '.join(map(str, data.dims))})")
    if data.sizes[dim] == 0:
        raise DataError(f"no time step to composite: the {dim!r} axis is empty; widen the period")
    if isinstance(data, xr.DataArray):
        return data.to_dataset(name=data.name if data.name is not None else "composite")
    floats = [name for name, var in data.data_vars.items() if var.dtype.kind == "f"]
    if not floats:
        raise DataError("no floating-point variable to composite; scale digital numbers to reflectance first")
    return data[floats]


def _as_input_type(out: xr.Dataset, data: xr.Dataset | xr.DataArray) -> Any:
    if isinstance(data, xr.Dataset):
        return out
    name = next(n for n in out.data_vars if n != "valid_count")
    array = out[name].assign_coords(valid_count=out["valid_count"])
    array.attrs["composite_method"] = out.attrs["composite_method"]
    return array.rename(data.name)


def _ndvi_score(data: xr.Dataset | xr.DataArray, ndvi: xr.DataArray | None, dim: str) -> xr.DataArray:
    if ndvi is None and isinstance(data, xr.Dataset):
        if "ndvi" in data.data_vars:
            ndvi = data["ndvi"]
        elif {"red", "nir"} <= set(data.data_vars):

            ndvi = ndvi_index(data)
    if ndvi is None:
        raise ConfigError("method 'max_ndvi' needs NDVI: pass ndvi=..., or data with an 'ndvi' variable "
                          "or 'red' and 'nir' bands")
    if dim not in ndvi.dims or ndvi.sizes[dim] != data.sizes[dim]:
        raise DataError(f"the NDVI series must share the {dim!r} axis of the data")
    return ndvi.astype(np.float32).rename("ndvi")


# ---------------------------------------------------------------- periods


def _bounds(start: DateLike, end: DateLike) -> tuple[np.datetime64, np.datetime64]:
    period = normalize_date_range((start, end))
    return _naive(period.start), _naive(period.end)


def _naive(moment: dt.datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(dt.UTC).replace(tzinfo=None), "us")


def _times(data: xr.Dataset | xr.DataArray, dim: str) -> np.ndarray:
    if dim not in data.coords or data[dim].dtype.kind != "M":
        raise DataError(f"periods need a datetime {dim!r} coordinate")
    return np.asarray(data[dim].values)


def _in_period(times: np.ndarray, start: np.datetime64, end: np.datetime64) -> np.ndarray:
    return (times >= start) & (times <= end)


def _periods(times: np.ndarray, period: PeriodSpec) -> list[_Period]:
    if isinstance(period, str):
        if period not in PERIODS:
            raise ConfigError(f"unknown period {period!r}; use {', '.join(PERIODS)}, None or "
                              "a list of (label, start, end)")
        return _calendar_periods(times, period)
    if not isinstance(period, Sequence) or not period:
        raise ConfigError("period must be None, 'month', 'season', 'year' or a non-empty list of "
                          "(label, start, end)")
    out: list[_Period] = []
    for entry in period:
        if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) != 3:
            raise ConfigError(f"period entry {entry!r} must be (label, start, end)")
        out.append((str(entry[0]), *_bounds(entry[1], entry[2])))
    labels = [p[0] for p in out]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"period labels must be unique, got {labels}")
    return out


def _calendar_periods(times: np.ndarray, kind: str) -> list[_Period]:
    stamps = pd.DatetimeIndex(times)
    found: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    for stamp in stamps.sort_values():
        found.setdefault(*_calendar_period(stamp, kind))
    return [(label, np.datetime64(start, "us"), np.datetime64(end - pd.Timedelta(1, "us"), "us"))
            for label, (start, end) in found.items()]


def _calendar_period(stamp: pd.Timestamp, kind: str) -> tuple[str, tuple[pd.Timestamp, pd.Timestamp]]:
    if kind == "year":
        start = pd.Timestamp(stamp.year, 1, 1)
        return f"{stamp.year}", (start, start + pd.DateOffset(years=1))
    if kind == "month":
        start = pd.Timestamp(stamp.year, stamp.month, 1)
        return f"{stamp:%Y-%m}", (start, start + pd.DateOffset(months=1))
    first_month = {12: 12, 1: 12, 2: 12}.get(stamp.month, stamp.month - (stamp.month - 3) % 3)
    year = stamp.year - (1 if stamp.month in (1, 2) else 0)
    start = pd.Timestamp(year, first_month, 1)
    end = start + pd.DateOffset(months=3)
    return f"{end.year if first_month == 12 else year}-{_SEASONS[stamp.month]}", (start, end)


def _whole_series_attrs(ds: xr.Dataset, dim: str) -> dict[str, str]:
    if dim not in ds.coords or ds[dim].dtype.kind != "M":
        return {}
    times = pd.DatetimeIndex(ds[dim].values)
    return {"period_start": times.min().isoformat(), "period_end": times.max().isoformat()}


# ---------------------------------------------------------------- reduction


def _one(ds: xr.Dataset, score: xr.DataArray | None, kind: str, q: float, dim: str,
         template: xr.Dataset) -> xr.Dataset:
    if ds.sizes[dim] == 0:
        return _empty(template, kind)
    valid = _joint_valid(ds, score)
    count = valid.sum(dim).astype(np.uint16).rename("valid_count")
    if len(ds.data_vars) > 1 or score is not None:
        ds = ds.where(valid)
    if kind == "max_ndvi":
        assert score is not None
        best = _core(_argmax_block, score.where(valid), dim, np.int32)
        names = list(ds.data_vars) + (["ndvi"] if "ndvi" not in ds.data_vars else [])
        source = ds.assign(ndvi=score.where(valid)) if "ndvi" not in ds.data_vars else ds
        out = xr.Dataset({n: _pick(source[n], best, dim) for n in names})
    else:
        out = xr.Dataset({n: _core(_reduce_block, var, dim, np.float32, kind=kind, q=q)
                          for n, var in ds.data_vars.items()})
    for name in out.data_vars:
        out[name].attrs = dict(ds[name].attrs) if name in ds else {"long_name": "NDVI of the picked observation"}
    out["valid_count"] = count
    out["valid_count"].attrs = {"long_name": "number of valid observations", "units": "1"}
    out.attrs = dict(ds.attrs)
    return out


def _empty(template: xr.Dataset, kind: str) -> xr.Dataset:
    out = xr.full_like(template, np.nan, dtype=np.float32)
    if kind == "max_ndvi" and "ndvi" not in out.data_vars:
        out["ndvi"] = next(iter(out.data_vars.values()))
    first = next(iter(template.data_vars.values()))
    out["valid_count"] = xr.zeros_like(first, dtype=np.uint16)
    return out


def _joint_valid(ds: xr.Dataset, score: xr.DataArray | None) -> xr.DataArray:
    arrays = [var.notnull() for var in ds.data_vars.values()]
    if score is not None:
        arrays.append(score.notnull())
    valid = arrays[0]
    for other in arrays[1:]:
        valid = valid & other
    return valid


def _core(func: Any, var: xr.DataArray, dim: str, dtype: Any, **kwargs: Any) -> xr.DataArray:
    """Apply a numpy reduction over ``dim`` (moved last) chunk by chunk; ``dim`` in one chunk."""
    if var.chunks is not None:
        var = var.chunk({dim: -1})
    return xr.apply_ufunc(func, var, input_core_dims=[[dim]], kwargs=kwargs, dask="parallelized",
                          output_dtypes=[dtype], keep_attrs=True)


def _pick(var: xr.DataArray, best: xr.DataArray, dim: str) -> xr.DataArray:
    if var.chunks is not None:
        var = var.chunk({dim: -1})
    return xr.apply_ufunc(_take_block, var, best, input_core_dims=[[dim], []], dask="parallelized",
                          output_dtypes=[np.float32], keep_attrs=True)


def _reduce_block(values: np.ndarray, *, kind: str, q: float) -> np.ndarray:
    """NaN-skipping reduction of the last axis; all-NaN -> NaN, silently."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        valid = ~np.isnan(values)
        count = valid.sum(axis=-1)
        if kind == "mean":
            out = np.where(valid, values, 0).sum(axis=-1, dtype=np.float64) / count
        elif kind in ("max", "min"):
            fill = -np.inf if kind == "max" else np.inf
            reduced = np.where(valid, values, fill)
            out = reduced.max(axis=-1) if kind == "max" else reduced.min(axis=-1)
        else:
            out = nan_quantile(values, q, count=count)
        return np.where(count > 0, out, np.nan).astype(np.float32)


def nan_quantile(values: np.ndarray, q: float, *, count: np.ndarray | None = None) -> np.ndarray:
    """Quantile ``q`` (0-1) of the last axis ignoring NaN, linear interpolation, float64 out.

    Same definition as :func:`numpy.nanquantile` (method ``"linear"``) but
    vectorised with one sort; all-NaN rows give NaN without a warning.
    """
    if count is None:
        count = (~np.isnan(values)).sum(axis=-1)
    ordered = np.sort(values, axis=-1)  # NaN sort last
    position = q * np.maximum(count - 1, 0)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, np.maximum(count - 1, 0))
    a = np.take_along_axis(ordered, low[..., None], axis=-1)[..., 0].astype(np.float64)
    b = np.take_along_axis(ordered, high[..., None], axis=-1)[..., 0].astype(np.float64)
    with np.errstate(invalid="ignore"):
        out = a + (b - a) * (position - low)
    return np.where(count > 0, out, np.nan)


def _argmax_block(score: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(score)
    best = np.where(valid, score, -np.inf).argmax(axis=-1).astype(np.int32)
    return np.where(valid.any(axis=-1), best, -1).astype(np.int32)


def _take_block(values: np.ndarray, best: np.ndarray) -> np.ndarray:
    picked = np.take_along_axis(values, np.maximum(best, 0)[..., None].astype(np.intp), axis=-1)[..., 0]
    return np.where(best >= 0, picked, np.nan).astype(np.float32)
