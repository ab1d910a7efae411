"""Land change between two periods: differences, classes, trends and patches (pure).

The method is the cheap, explainable one of the design notes: same-season cloud-masked
composites before/after (:mod:`territoire_geo.composites`), index differences, rule
thresholds (:class:`ChangeRules`), a minimum mapping unit on the vectorised patches.
Multi-year median composites absorb crop rotation (each field shows both its
winter-cereal and summer-crop states in every two-year period).

Results are **alerts to review** ("zones à vérifier"), not a legal measure of
artificialisation: a 10 m pixel is 100 m², above the 50 m² OCS GE building threshold,
and published 10 m new-built detection reaches F1 ≈ 0.5–0.65 at best. Check every patch
against OCS GE, the cadastre or an orthophoto before using it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from territoire_geo._patches import patches
from territoire_geo.errors import ConfigError, DataError, MissingBandError

__all__ = [
    "ALERT_NOTE",
    "CHANGE_CLASSES",
    "PRIORITY",
    "ChangeRules",
    "change_dates",
    "classify",
    "difference",
    "first_crossing",
    "patches",
    "trend",
]

#: Change classes (codes of :func:`classify`).
CHANGE_CLASSES: Mapping[int, str] = MappingProxyType({
    0: "stable", 1: "vegetation_loss", 2: "vegetation_gain", 3: "new_artificial_surface",
    4: "water_gain", 5: "water_loss", 255: "insufficient_data",
})  # fmt: skip
#: Order in which rules are tested; the first that matches wins (255 before all).
PRIORITY: tuple[int, ...] = (255, 3, 4, 5, 1, 2, 0)
#: Recorded on every output.
ALERT_NOTE = ("Alerts to review (zones à vérifier), not a legal measure of artificialisation: "
              "a 10 m pixel is 100 m², above the 50 m² OCS GE building threshold; "
              "confirm each patch against OCS GE, the cadastre or an orthophoto.")


@dataclass(frozen=True)
class ChangeRules:
    """Thresholds of :func:`classify` (NDVI, NDBI/BSI and MNDWI of period composites).

    Attributes
    ----------
    vegetated_ndvi
        NDVI at or above which a pixel is vegetated *before* (0.4).
    sparse_ndvi
        NDVI at or below which a pixel is not vegetated *after* (0.3). Together with
        ``vegetated_ndvi``: the "locally calibrated 0.3–0.4" vegetation threshold of
        urban-greening indicators (domain notes §4.5); a new artificial surface must
        cross the whole band, which leaves seasonal and rotation swings out.
    built_index
        ``"ndbi"``, ``"bsi"`` or ``"auto"`` (NDBI if present, else BSI).
    built_after
        Built-up index *after* must exceed this (−0.05). NDBI > 0 marks built-up land
        (Zha, Gao & Ni 2003, *Int. J. Remote Sens.* 24:583); the 0.05 margin keeps new
        10 m pixels that mix roofs, asphalt and leftover vegetation.
    built_delta
        Minimum rise of the built-up index (0.15): bare fields and rotations move the
        two-year medians of stable covers by less than that on the sample territory.
    ndvi_loss, ndvi_gain
        ΔNDVI at or below / at or above which vegetation is lost / gained (∓0.25: about
        the distance between sparse (0.3) and dense (0.55+) canopy). A fixed value rather
        than the mean ± k·σ of the difference image (Singh 1989, *Int. J. Remote Sens.*
        10:989), so that results do not depend on how much of the AOI changed.
    water_mndwi
        MNDWI at or above which a pixel is open water (0; Xu 2006, *Int. J. Remote Sens.*
        27:3025).
    water_delta
        Minimum |ΔMNDWI| of a water gain or loss (0.3), against mixed shore pixels.
    min_valid
        Minimum valid observations in *each* period composite (2); fewer gives class
        255 (insufficient data).

    Notes
    -----
    Priority (first match wins): insufficient data, new artificial surface, water gain,
    water loss, vegetation loss, vegetation gain, stable. Artificial surface comes
    before vegetation loss because a new building also loses vegetation; water before
    vegetation because a flooded field also loses NDVI. Values are physical magnitudes,
    not fitted to the sample; calibrate them locally (e.g. against OCS GE) before
    reporting figures.
    """

    vegetated_ndvi: float = 0.4
    sparse_ndvi: float = 0.3
    built_index: str = "auto"
    built_after: float = -0.05
    built_delta: float = 0.15
    ndvi_loss: float = -0.25
    ndvi_gain: float = 0.25
    water_mndwi: float = 0.0
    water_delta: float = 0.3
    min_valid: int = 2

    def __post_init__(self) -> None:
        if self.built_index not in ("auto", "ndbi", "bsi"):
            raise ConfigError(f"built_index={self.built_index!r}; use 'auto', 'ndbi' or 'bsi'")
        if not self.sparse_ndvi < self.vegetated_ndvi:
            raise ConfigError("sparse_ndvi must be below vegetated_ndvi")
        if not (self.ndvi_loss < 0 < self.ndvi_gain and self.built_delta > 0 and self.water_delta > 0):
            raise ConfigError("ndvi_loss must be negative; ndvi_gain, built_delta and water_delta positive")
        if int(self.min_valid) < 1:
            raise ConfigError("min_valid must be at least 1")

    def to_json(self) -> str:
        """The rules as a JSON string (recorded in output attributes)."""
        return json.dumps(asdict(self), sort_keys=True)


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
        (see :func:`territoire_geo.composites.composite`), on the same grid.
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
                               "ndvi, ndbi (or bsi), mndwi with territoire_geo.composites.composite")


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
    from territoire_geo._trend import theil_sen_mann_kendall

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
