"""Land change between two periods: differences, classes, trends and patches (pure).

The method is the cheap, explainable one of the design notes: same-season cloud-masked
composites before/after (:mod:`territoire_geo.analysis.composites`), index differences, rule
thresholds (:class:`ChangeRules`), a minimum mapping unit on the vectorised patches.
Multi-year median composites absorb crop rotation (each field shows both its
winter-cereal and summer-crop states in every two-year period).

:func:`detect` is the whole pipeline from two composites and an NDVI series to
classes, patches and the summary by class: the ``change`` command, the workflows
and the recipes all call it, so they give the same answer on the same data.

Results are **alerts to review** ("zones à vérifier"), not a legal measure of
artificialisation: a 10 m pixel is 100 m², above the 50 m² OCS GE building threshold,
and published 10 m new-built detection reaches F1 ≈ 0.5–0.65 at best. Check every patch
against OCS GE, the cadastre or an orthophoto before using it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from territoire_geo.analysis import _patches
from territoire_geo.analysis._change_rules import ALERT_NOTE, CHANGE_CLASSES, PRIORITY, ChangeRules
from territoire_geo.analysis._trend import theil_sen_mann_kendall
from territoire_geo.errors import DataError, MissingBandError
from territoire_geo.io import compute_windows

__all__ = [
    "ALERT_NOTE",
    "CHANGE_CLASSES",
    "PRIORITY",
    "ChangeResult",
    "ChangeRules",
    "change_dates",
    "change_summary",
    "classify",
    "detect",
    "difference",
    "first_crossing",
    "patches",
    "trend",
]

# ---------------------------------------------------------------- difference and classes


def difference(before: Any, after: Any) -> Any:
    """``after - before`` of two composites, with attributes naming both periods.

    Parameters
    ----------
    before, after
        DataArrays (or Datasets) on the same grid, e.g. ``comp.sel(period="before")``.

    Returns
    -------
    Same type: the difference (lazy if the inputs are), named ``delta_<name>``.
    """
    attrs = {"long_name": f"change in {getattr(after, 'name', None) or 'value'} (after - before)",
             "before_period": _period_text(before), "after_period": _period_text(after), "units": "1"}
    before, after = _strip(before), _strip(after)
    if isinstance(after, xr.Dataset):
        before, after = (d.drop_vars("valid_count", errors="ignore") for d in (before, after))
    delta = after - before
    if isinstance(delta, xr.DataArray):
        delta.attrs = attrs
        return delta.rename(f"delta_{after.name}" if after.name is not None else "delta")
    for name in delta.data_vars:
        delta[name].attrs = {**attrs, "long_name": f"change in {name} (after - before)"}
    return delta.rename({n: f"delta_{n}" for n in delta.data_vars})


def classify(before: xr.Dataset, after: xr.Dataset, rules: ChangeRules | None = None) -> xr.DataArray:
    """Change class of each pixel between two period composites (lazy).

    Parameters
    ----------
    before, after
        Composites holding ``ndvi``, ``ndbi`` (or ``bsi``), ``mndwi`` and ``valid_count``
        (see :func:`territoire_geo.analysis.composites.composite`), on the same grid.
    rules
        Thresholds; :class:`ChangeRules` defaults when None.

    Returns
    -------
    xarray.DataArray
        uint8 codes of :data:`CHANGE_CLASSES` with CF ``flag_values``/``flag_meanings``,
        the rules and :data:`ALERT_NOTE` in its attributes.

    Raises
    ------
    MissingBandError
        If a composite lacks one of the variables.
    """
    rules = rules or ChangeRules()
    built = _built_index(before, after, rules)
    for label, ds in (("before", before), ("after", after)):
        _require(ds, label, ("ndvi", built, "mndwi", "valid_count"))
    b, a = _strip(before), _strip(after)
    d_ndvi, d_built, d_water = a.ndvi - b.ndvi, a[built] - b[built], a.mndwi - b.mndwi
    water_b, water_a = b.mndwi >= rules.water_mndwi, a.mndwi >= rules.water_mndwi
    tests = {
        3: (b.ndvi >= rules.vegetated_ndvi) & (a.ndvi <= rules.sparse_ndvi) & (a[built] > rules.built_after)
        & (d_built >= rules.built_delta),
        4: ~water_b & water_a & (d_water >= rules.water_delta),
        5: water_b & ~water_a & (d_water <= -rules.water_delta),
        1: d_ndvi <= rules.ndvi_loss,
        2: d_ndvi >= rules.ndvi_gain,
    }
    enough = (b.valid_count >= rules.min_valid) & (a.valid_count >= rules.min_valid)
    for var in (b.ndvi, a.ndvi, b[built], a[built], b.mndwi, a.mndwi):
        enough = enough & var.notnull()
    classes = xr.zeros_like(a.ndvi, dtype=np.uint8)
    for code in reversed(PRIORITY[1:-1]):
        classes = classes.where(~tests[code], np.uint8(code))
    classes = classes.where(enough, np.uint8(255)).astype(np.uint8).rename("change_class")
    classes.attrs = _class_attrs(before, after, rules, built)
    return classes


def _class_attrs(before: xr.Dataset, after: xr.Dataset, rules: ChangeRules, built: str) -> dict[str, Any]:
    return {
        "long_name": "land change class",
        "flag_values": np.array(list(CHANGE_CLASSES), dtype=np.uint8),
        "flag_meanings": " ".join(CHANGE_CLASSES.values()),
        "before_period": _period_text(before),
        "after_period": _period_text(after),
        "built_index": built,
        "rules": rules.to_json(),
        "priority": " > ".join(CHANGE_CLASSES[c] for c in PRIORITY),
        "note": ALERT_NOTE,
    }


def _built_index(before: xr.Dataset, after: xr.Dataset, rules: ChangeRules) -> str:
    if rules.built_index != "auto":
        return rules.built_index
    both = set(before.data_vars) & set(after.data_vars)
    return "ndbi" if "ndbi" in both else "bsi" if "bsi" in both else "ndbi"


def _require(ds: xr.Dataset, label: str, names: Iterable[str]) -> None:
    if not isinstance(ds, xr.Dataset):
        raise DataError(f"the {label} composite must be an xarray.Dataset of indices")
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise MissingBandError(f"the {label} composite lacks {', '.join(missing)}; composite the indices "
                               "ndvi, ndbi (or bsi), mndwi with territoire_geo.analysis.composites.composite")


def _strip(data: Any) -> Any:
    """Drop period coordinates so that two periods combine without conflicts."""
    drop = [c for c in ("period", "period_start", "period_end", "valid_count") if c in data.coords]
    return data.drop_vars(drop)


def _period_text(data: Any) -> str:
    if "period_start" in data.coords and data["period_start"].ndim == 0:
        start, end = (pd.Timestamp(data[c].values) for c in ("period_start", "period_end"))
        return f"{start:%Y-%m-%d}/{end:%Y-%m-%d}"
    if "period_start" in data.attrs:
        return f"{str(data.attrs['period_start'])[:10]}/{str(data.attrs.get('period_end', ''))[:10]}"
    return "unknown"


# ---------------------------------------------------------------- trend


def trend(series: xr.DataArray, dim: str = "time", *, alpha: float = 0.05, min_obs: int = 4,
          engine: str = "auto") -> xr.Dataset:
    """Theil–Sen slope and Mann–Kendall test per pixel (lazy, chunk by chunk).

    Parameters
    ----------
    series
        ``(time, y, x)`` values, NaN = missing; deseasonalise first (e.g. annual
        composites): a trend is a slow greening/greying, not an abrupt construction.
    dim
        Time dimension: datetimes (slope per year) or numbers (slope per unit).
    alpha
        Significance level of the two-sided test.
    min_obs
        Pixels with fewer valid observations give NaN (and ``significant`` False).
    engine
        ``"auto"`` (numba if installed), ``"numpy"`` or ``"numba"``.

    Returns
    -------
    xarray.Dataset
        ``slope``, ``intercept`` (at the first time step), ``z``, ``p_value`` (float32),
        ``significant`` (bool), ``n_obs`` (uint16). Memory per dask chunk is bounded:
        ``dim`` is gathered into one chunk, pairs are formed per block of pixels.
    """
    if dim not in series.dims:
        raise DataError(f"no {dim!r} dimension in the series")
    x, unit, origin = _abscissa(series[dim].values)
    data = series.chunk({dim: -1}) if series.chunks is not None else series
    outputs = xr.apply_ufunc(
        theil_sen_mann_kendall, data, input_core_dims=[[dim]], output_core_dims=[[]] * 5,
        kwargs={"x": x, "min_obs": min_obs, "engine": engine}, dask="parallelized",
        output_dtypes=[np.float32] * 4 + [np.uint16], keep_attrs=True)
    names = ("slope", "intercept", "z", "p_value", "n_obs")
    out = xr.Dataset(dict(zip(names, outputs, strict=True)))
    out["significant"] = out.p_value < alpha
    out["slope"].attrs = {"long_name": "Theil-Sen slope", "units": f"{series.attrs.get('units', '1')} {unit}"}
    out["intercept"].attrs = {"long_name": "Theil-Sen intercept (median(y) - slope median(x))",
                              "origin": origin}
    out["p_value"].attrs = {"long_name": "two-sided Mann-Kendall p-value (tie-corrected)"}
    out.attrs = {"method": "Theil-Sen slope, Mann-Kendall test", "alpha": alpha, "min_obs": min_obs}
    return out


def _abscissa(values: np.ndarray) -> tuple[np.ndarray, str, str]:
    if values.dtype.kind == "M":
        stamps = values.astype("datetime64[ns]")
        days = (stamps - stamps.min()).astype("timedelta64[ns]").astype(np.float64) / 86_400e9
        return days / 365.25, "per year", str(pd.Timestamp(stamps.min()))
    return values.astype(np.float64), "per unit of the time coordinate", "0"


# ---------------------------------------------------------------- first crossing


def first_crossing(series: xr.DataArray, threshold: float, *, below: bool = True,
                   dim: str = "time") -> xr.DataArray:
    """Date from which each pixel stays below (or above) ``threshold`` (lazy).

    The first valid observation past ``threshold`` after which no valid observation
    comes back; NaN observations are skipped. NaT when the series never settles there.
    """
    times = np.asarray(series[dim].values).astype("datetime64[ns]")
    data = series.chunk({dim: -1}) if series.chunks is not None else series
    out = xr.apply_ufunc(_crossing_block, data, input_core_dims=[[dim]], dask="parallelized",
                         kwargs={"times": times, "threshold": float(threshold), "below": below},
                         output_dtypes=[np.dtype("datetime64[ns]")], keep_attrs=True)
    out.attrs = {"long_name": f"first date {'below' if below else 'above'} {threshold:g} for good"}
    return out.rename("first_seen")


def change_dates(classes: xr.DataArray, series: xr.DataArray, rules: ChangeRules | None = None,
                 *, dim: str = "time") -> xr.DataArray:
    """Per pixel, the first date from which NDVI stays in the state of its change class (lazy).

    Vegetation loss and new artificial surface: NDVI at or below ``rules.sparse_ndvi``
    for good; vegetation gain: at or above ``rules.vegetated_ndvi``; other classes: NaT.

    Parameters
    ----------
    classes
        Codes from :func:`classify`.
    series
        NDVI time series on the same grid.
    rules
        Thresholds (:class:`ChangeRules` defaults when None).
    """
    rules = rules or ChangeRules()
    below = first_crossing(series, rules.sparse_ndvi, below=True, dim=dim)
    above = first_crossing(series, rules.vegetated_ndvi, below=False, dim=dim)
    nat = np.datetime64("NaT", "ns")
    dates = below.where(classes.isin([1, 3]), nat).where(~(classes == 2), above)
    dates.attrs = {"long_name": "first date of the after state (NDVI)", "note": ALERT_NOTE}
    return dates.rename("first_seen")


def _crossing_block(values: np.ndarray, *, times: np.ndarray, threshold: float, below: bool) -> np.ndarray:
    valid = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        settled = (values <= threshold) if below else (values >= threshold)
    back = valid & ~settled
    steps = values.shape[-1]
    last_back = np.where(back.any(axis=-1), steps - 1 - back[..., ::-1].argmax(axis=-1), -1)
    after = valid & settled & (np.arange(steps) > last_back[..., None])
    first = after.argmax(axis=-1)
    return np.where(after.any(axis=-1), times[first], np.datetime64("NaT", "ns"))


# ---------------------------------------------------------------- patches


def patches(classes: xr.DataArray, *, min_area_m2: float = 1000.0, class_values: Iterable[int] | None = None,
            before: xr.DataArray | xr.Dataset | None = None, after: xr.DataArray | xr.Dataset | None = None,
            index: str = "ndvi", first_seen: xr.DataArray | None = None,
            rules: ChangeRules | None = None) -> gpd.GeoDataFrame:
    """Vectorise change classes into patches (polygons) above a minimum mapping unit.

    This is where the 2-D class raster is computed (it is small); index layers are
    computed too. Polygons follow pixel edges (4-connectivity), one per connected
    group of pixels of one class.

    Parameters
    ----------
    classes
        2-D class codes (:func:`classify`) with a projected CRS (``.rio.crs``) and x/y
        coordinates.
    min_area_m2
        Minimum mapping unit: smaller patches are dropped (1,000 m² = 10 pixels at 10 m;
        2,500 m² is the sealing threshold of the ZAN nomenclature).
    class_values
        Classes to vectorise; all change classes (not 0 stable, not 255) by default.
    before, after
        Composites (Dataset holding ``index``, or a DataArray) on the same grid, for
        ``mean_before`` / ``mean_after``.
    index
        Variable of ``before``/``after`` to average.
    first_seen
        NDVI series ``(time, y, x)`` on the same grid: per patch, the lower median over its
        pixels of the first date from which NDVI stays at or below ``rules.sparse_ndvi``
        (classes 1, 3) or at or above ``rules.vegetated_ndvi`` (class 2), see
        :func:`change_dates`; or an already computed 2-D datetime64 array of dates per
        pixel (e.g. ``change_dates(...)``), used as is.
    rules
        Thresholds for ``first_seen`` (:class:`ChangeRules` defaults).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``class, class_name, area_m2, area_ha, mean_before, mean_after,
        first_seen`` (NaN/NaT when not asked), geometry in the raster CRS, largest first.

    Raises
    ------
    DataError
        If ``classes`` is not 2-D, has no projected CRS, or layers are on another grid.
    """
    if first_seen is not None and not (first_seen.ndim == 2 and first_seen.dtype.kind == "M"):
        first_seen = change_dates(classes, first_seen, rules)
    return _patches.vectorise(classes, min_area_m2=min_area_m2, class_values=class_values, before=before,
                              after=after, index=index, first_seen=first_seen)


# ---------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class ChangeResult:
    """What :func:`detect` found between two periods (computed, in memory).

    Attributes
    ----------
    classes
        uint8 codes of :data:`CHANGE_CLASSES` (255 = insufficient data), with CRS and attributes.
    delta_ndvi
        NDVI after − before (float32).
    patches
        Patches above the minimum mapping unit (:func:`patches`), with the date each
        change was first seen (:func:`change_dates`).
    summary
        One row per class (:func:`change_summary`).
    """

    classes: xr.DataArray
    delta_ndvi: xr.DataArray
    patches: gpd.GeoDataFrame
    summary: list[dict[str, Any]]

    @property
    def new_artificial_ha(self) -> float:
        """Area of new artificial surface (class 3), in hectares."""
        return next(row["area_ha"] for row in self.summary if row["class"] == 3)


def detect(before: xr.Dataset, after: xr.Dataset, ndvi_series: xr.DataArray, *,
           rules: ChangeRules | None = None, min_area_m2: float = 1000.0) -> ChangeResult:
    """Classified change between two period composites, its patches and the summary by class.

    Classes (:func:`classify`), the NDVI difference and the per-pixel date of the
    change (:func:`change_dates` on ``ndvi_series``) are computed together, one window
    of the grid at a time (bounded memory, same values as one computation); then
    the patches above ``min_area_m2`` get their mean NDVI before/after and the lower
    median of their pixels' dates.

    Parameters
    ----------
    before, after
        Composites holding ``ndvi``, ``ndbi`` (or ``bsi``), ``mndwi`` and ``valid_count``
        (:func:`territoire_geo.analysis.composites.composite`), on one projected grid.
    ndvi_series
        The NDVI observations ``(time, y, x)`` behind the composites, on the same grid.
    rules
        Thresholds (:class:`ChangeRules` defaults when None).
    min_area_m2
        Minimum mapping unit of the patches.

    Returns
    -------
    ChangeResult

    Raises
    ------
    MissingBandError
        If a composite lacks one of the variables.
    DataError
        If the grid has no projected CRS.
    """
    rules = rules or ChangeRules()
    crs = before.rio.crs or after.rio.crs
    lazy = classify(before, after, rules)
    if lazy.rio.crs is None and crs is not None:
        lazy = lazy.rio.write_crs(crs)
    dates = change_dates(lazy, ndvi_series, rules)
    classes, b_ndvi, a_ndvi, delta, dates = compute_windows(
        lazy, before["ndvi"], after["ndvi"], difference(before["ndvi"], after["ndvi"]), dates)
    found = patches(classes, min_area_m2=min_area_m2, before=b_ndvi, after=a_ndvi, first_seen=dates, rules=rules)
    return ChangeResult(classes, delta, found, change_summary(classes, found))


def change_summary(classes: xr.DataArray, found: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Per change class, in code order: pixels, area (ha), patches kept and their area (ha).

    Every class of :data:`CHANGE_CLASSES` has a row (zeros included); areas are
    rounded to 1 m² (4 decimals of a hectare).

    Parameters
    ----------
    classes
        Computed class codes with a projected grid.
    found
        The patches of :func:`patches` (possibly empty).
    """
    values = np.asarray(classes.values)
    res_x, res_y = (abs(float(r)) for r in classes.rio.resolution())
    counts = np.bincount(values.ravel(), minlength=256)
    rows = []
    for code, name in CHANGE_CLASSES.items():
        kept = found[found["class"] == code] if len(found) else found
        rows.append({"class": code, "class_name": name, "pixels": int(counts[code]),
                     "area_ha": round(float(counts[code] * res_x * res_y / 10_000.0), 4), "patches": len(kept),
                     "patch_area_ha": round(float(kept["area_ha"].sum()), 4) if len(kept) else 0.0})
    return rows
