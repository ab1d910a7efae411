"""Tests of change classes, trends and patches (territoire_geo.analysis.change)."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import Counter

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from territoire_geo.analysis import change
from territoire_geo.analysis.change import CHANGE_CLASSES, ChangeRules, classify, difference, patches, trend
from territoire_geo.errors import ConfigError, DataError, MissingBandError

NAN = np.nan

#: One pixel per case: (ndvi, ndbi, mndwi, valid_count) before and after, expected class.
PIXELS: dict[str, tuple[tuple[float, float, float, int], tuple[float, float, float, int], int]] = {
    "stable": ((0.60, -0.20, -0.50, 6), (0.62, -0.21, -0.50, 6), 0),
    "vegetation_loss": ((0.70, -0.20, -0.50, 6), (0.35, -0.10, -0.45, 5), 1),
    "harvested_bare_field": ((0.60, -0.15, -0.50, 6), (0.25, -0.10, -0.45, 6), 1),  # ΔNDBI too small
    "vegetation_gain": ((0.30, -0.05, -0.40, 6), (0.60, -0.20, -0.50, 6), 2),
    "new_artificial_surface": ((0.60, -0.15, -0.50, 6), (0.15, 0.10, -0.40, 4), 3),  # also ΔNDVI -0.45
    "water_gain": ((0.50, -0.20, -0.40, 6), (0.00, -0.30, 0.30, 6), 4),  # also vegetation loss
    "water_loss": ((-0.20, -0.40, 0.50, 6), (0.40, -0.20, -0.30, 6), 5),  # also vegetation gain
    "too_few_before": ((0.60, -0.15, -0.50, 1), (0.15, 0.10, -0.40, 4), 255),
    "nan_after": ((0.60, -0.15, -0.50, 6), (NAN, NAN, NAN, 0), 255),
}


def composites(built: str = "ndbi") -> tuple[xr.Dataset, xr.Dataset]:
    columns = list(zip(*[case[:2] for case in PIXELS.values()], strict=True))

    def frame(rows: tuple[tuple[float, float, float, int], ...]) -> xr.Dataset:
        ndvi, built_values, mndwi, count = (np.array(v) for v in zip(*rows, strict=True))
        return xr.Dataset({"ndvi": ("x", ndvi.astype(np.float32)), built: ("x", built_values.astype(np.float32)),
                           "mndwi": ("x", mndwi.astype(np.float32)), "valid_count": ("x", count.astype(np.uint16))},
                          coords={"x": np.arange(len(rows))})

    return frame(columns[0]), frame(columns[1])


def test_classify_covers_every_class_with_priorities() -> None:
    before, after = composites()
    classes = classify(before, after)
    assert classes.dtype == np.uint8
    assert classes.values.tolist() == [case[2] for case in PIXELS.values()]
    assert set(classes.values.tolist()) == set(CHANGE_CLASSES)
    assert classes.attrs["flag_values"].tolist() == list(CHANGE_CLASSES)
    assert classes.attrs["flag_meanings"].split() == list(CHANGE_CLASSES.values())
    assert "100 m²" in classes.attrs["note"] and "50 m²" in classes.attrs["note"]


def test_classify_with_bsi_lazy_and_custom_rules() -> None:
    before, after = composites("bsi")
    lazy = classify(before.chunk({"x": 4}), after.chunk({"x": 4}))
    assert isinstance(lazy.data, da.Array)
    assert lazy.compute().values.tolist() == [case[2] for case in PIXELS.values()]
    assert lazy.attrs["built_index"] == "bsi"
    strict = classify(before, after, ChangeRules(min_valid=5))
    assert strict.values[list(PIXELS).index("new_artificial_surface")] == 255  # 4 valid obs after


def test_classify_errors_and_rules_validation() -> None:
    before, after = composites()
    with pytest.raises(MissingBandError, match="mndwi"):
        classify(before.drop_vars("mndwi"), after)
    with pytest.raises(ConfigError):
        ChangeRules(sparse_ndvi=0.5, vegetated_ndvi=0.4)
    with pytest.raises(ConfigError):
        ChangeRules(built_index="ndwi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ChangeRules().min_valid = 3  # type: ignore[misc]


def test_difference_names_periods() -> None:
    before = xr.DataArray([0.5, 0.2], dims="x", name="ndvi", coords={"period": "before"},
                          attrs={"period_start": "2020-01-01T00:00:00", "period_end": "2021-12-31T00:00:00"})
    after = xr.DataArray([0.1, 0.3], dims="x", name="ndvi", coords={"period": "after"})
    delta = difference(before, after)
    np.testing.assert_allclose(delta.values, [-0.4, 0.1])
    assert delta.name == "delta_ndvi" and "period" not in delta.coords
    assert delta.attrs["before_period"] == "2020-01-01/2021-12-31"
    times = pd.to_datetime(["2020-01-01", "2021-12-31", "2022-01-01", "2023-12-31"]).values
    comp = xr.Dataset({"ndvi": (("period", "x"), [[0.5, 0.2], [0.1, 0.3]]),
                       "valid_count": (("period", "x"), np.array([[3, 3], [2, 1]], np.uint16))},
                      coords={"period": ["before", "after"], "period_start": ("period", times[::2]),
                              "period_end": ("period", times[1::2])})
    deltas = difference(comp.sel(period="before"), comp.sel(period="after"))
    assert list(deltas.data_vars) == ["delta_ndvi"]
    assert deltas["delta_ndvi"].attrs["after_period"] == "2022-01-01/2023-12-31"


# ---------------------------------------------------------------- trend


def reference_trend(y: np.ndarray, x: np.ndarray) -> tuple[float, float, float, float]:
    """Straightforward per-series Theil-Sen / Mann-Kendall (tie-corrected), pure Python."""
    keep = ~np.isnan(y)
    ys, xs = [float(v) for v in y[keep]], [float(v) for v in x[keep]]
    n = len(ys)
    if n < 4:
        return (NAN,) * 4
    slopes = [(ys[j] - ys[i]) / (xs[j] - xs[i]) for i in range(n) for j in range(i + 1, n) if xs[j] != xs[i]]
    s = sum((ys[j] > ys[i]) - (ys[j] < ys[i]) for i in range(n) for j in range(i + 1, n))
    ties = sum(t * (t - 1) * (2 * t + 5) for t in Counter(ys).values())
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18
    z = (s - 1) / math.sqrt(var) if s > 0 else (s + 1) / math.sqrt(var) if s < 0 else 0.0
    slope = statistics.median(slopes)
    return slope, statistics.median(ys) - slope * statistics.median(xs), z, math.erfc(abs(z) / math.sqrt(2))


@pytest.fixture(scope="module")
def trend_cube() -> xr.DataArray:
    rng = np.random.default_rng(42)
    steps, ny, nx = 17, 6, 7
    years = np.arange(steps) * 0.5
    values = 0.02 * years[:, None, None] * rng.normal(1, 1, (1, ny, nx)) + rng.normal(0, 0.05, (steps, ny, nx))
    values = np.round(values, 2).astype(np.float32)  # many ties
    values[rng.uniform(size=values.shape) < 0.25] = NAN
    values[:, 0, 0] = NAN
    values[:3, 0, 1] = [0.1, 0.2, 0.3]
    values[3:, 0, 1] = NAN  # three observations: NaN
    values[:, 1, 1] = 0.5  # constant: no trend, var(S) = 0
    times = pd.Timestamp("2018-01-01") + pd.to_timedelta(years * 365.25, unit="D")
    return xr.DataArray(values, dims=("time", "y", "x"), coords={"time": times}, name="ndvi")


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_trend_matches_slow_reference(trend_cube: xr.DataArray, engine: str) -> None:
    out = trend(trend_cube, engine=engine).compute()
    x = np.arange(trend_cube.sizes["time"]) * 0.5
    expected = np.array([[reference_trend(trend_cube.values[:, i, j], x) for j in range(trend_cube.sizes["x"])]
                         for i in range(trend_cube.sizes["y"])])
    for k, name in enumerate(("slope", "intercept", "z", "p_value")):
        np.testing.assert_allclose(out[name].values, expected[..., k], rtol=1e-6, atol=1e-6, err_msg=name)
    assert np.isnan(out.slope.values[0, :2]).all() and not out.significant.values[0, :2].any()
    assert out.p_value.values[1, 1] == 1.0 and out.slope.values[1, 1] == 0.0
    assert out.n_obs.values[0, 1] == 3


def test_trend_lazy_chunks_identical(trend_cube: xr.DataArray) -> None:
    eager = trend(trend_cube, engine="numpy").compute()
    lazy = trend(trend_cube.chunk({"time": 4, "y": 2, "x": 3}), engine="numpy")
    assert isinstance(lazy.slope.data, da.Array)
    xr.testing.assert_identical(eager, lazy.compute())
    xr.testing.assert_allclose(eager, trend(trend_cube, engine="auto").compute(), rtol=1e-6)


def test_trend_linear_series_per_year() -> None:
    times = pd.date_range("2019-01-01", periods=8, freq="365.25D")
    series = xr.DataArray((2.0 * np.arange(8) + 1.0).astype(np.float32).reshape(8, 1), dims=("time", "x"),
                          coords={"time": times})
    out = trend(series, engine="numpy")
    assert out.slope.item() == pytest.approx(2.0) and out.intercept.item() == pytest.approx(1.0)
    assert bool(out.significant.item()) and out.p_value.item() < 0.001
    with pytest.raises(ConfigError, match="engine"):
        trend(series, engine="fortran").compute()


def test_first_crossing_stays_below() -> None:
    times = pd.date_range("2021-01-01", periods=6, freq="MS")
    values = np.array([[0.6, 0.2, 0.6, 0.2, NAN, 0.1],  # dips, comes back, settles at index 3
                       [0.6, 0.6, 0.6, 0.6, 0.6, 0.6],  # never
                       [0.2, 0.2, 0.2, 0.2, 0.2, 0.2]], np.float32).T  # always
    dates = change.first_crossing(xr.DataArray(values, dims=("time", "x"), coords={"time": times}), 0.3).values
    assert dates[0] == np.datetime64("2021-04-01", "ns")
    assert np.isnat(dates[1]) and dates[2] == np.datetime64("2021-01-01", "ns")


# ---------------------------------------------------------------- patches


def class_raster() -> xr.DataArray:
    codes = np.zeros((30, 30), np.uint8)
    codes[2:12, 2:12] = 3  # 10 x 10 px at 10 m = 10,000 m²
    codes[2:12, 12:17] = 1  # touches the first block: separate patch (5 x 10 = 5,000 m²)
    codes[20:23, 20:23] = 2  # 900 m² < 1,000 m²: dropped
    codes[25:30, 0:5] = 255  # insufficient data: never a patch
    x = 800_005.0 + 10.0 * np.arange(30)
    y = 6_300_295.0 - 10.0 * np.arange(30)
    return xr.DataArray(codes, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs("EPSG:2154")


def test_patches_areas_and_minimum_mapping_unit() -> None:
    found = patches(class_raster())
    assert found["class"].tolist() == [3, 1]
    assert found["class_name"].tolist() == ["new_artificial_surface", "vegetation_loss"]
    assert found["area_m2"].tolist() == [10_000.0, 5_000.0]
    assert found["area_ha"].tolist() == [1.0, 0.5]
    assert found.crs.to_epsg() == 2154
    assert found.geometry.iloc[0].bounds == (800_020.0, 6_300_180.0, 800_120.0, 6_300_280.0)
    assert found["mean_before"].isna().all() and found["first_seen"].isna().all()
    everything = patches(class_raster(), min_area_m2=0)
    assert sorted(everything["area_m2"].tolist()) == [900.0, 5_000.0, 10_000.0]
    assert patches(class_raster(), class_values=[1])["class"].tolist() == [1]


def test_patches_means_by_labels_and_first_seen() -> None:
    classes = class_raster()
    before = classes.copy(data=np.full(classes.shape, 0.6, np.float32))
    ramp = np.tile(np.arange(30, dtype=np.float32) / 100.0, (30, 1))  # column j -> j / 100
    after = xr.Dataset({"ndvi": classes.copy(data=ramp)})
    times = pd.date_range("2021-04-01", periods=4, freq="90D")
    series = np.stack([before.values, before.values, ramp, ramp])
    series[2, 2:7, 2:12] = 0.5  # half of the artificial block settles one date later
    found = patches(classes, before=before, after=after, first_seen=xr.DataArray(
        series, dims=("time", "y", "x"), coords={"time": times, "y": classes.y, "x": classes.x}))
    np.testing.assert_allclose(found["mean_before"], [0.6, 0.6], rtol=1e-6)
    np.testing.assert_allclose(found["mean_after"], [0.065, 0.14], rtol=1e-6)  # mean of columns 2-11, 12-16
    assert found["first_seen"].tolist() == [times[2], times[2]]  # lower median: 50 px at t2, 50 at t3


def test_patches_empty_and_errors() -> None:
    classes = class_raster()
    empty = patches(classes.copy(data=np.zeros(classes.shape, np.uint8)))
    assert empty.empty and list(empty.columns)[:3] == ["class", "class_name", "area_m2"]
    with pytest.raises(DataError, match="CRS"):
        patches(xr.DataArray(np.zeros((3, 3), np.uint8), dims=("y", "x")))
    with pytest.raises(DataError, match="grid"):
        patches(classes, before=classes.isel(x=slice(0, 10)).astype(np.float32))
    with pytest.raises(DataError, match="unknown change class"):
        patches(classes, class_values=[7])


def test_patches_from_classify_keep_crs() -> None:
    before, after = composites()
    grid = {"y": [6_300_015.0, 6_300_005.0], "x": 800_005.0 + 10.0 * np.arange(len(PIXELS))}
    b, a = (ds.expand_dims(y=2).assign_coords(grid).rio.write_crs(2154) for ds in (before, after))
    classes = classify(b, a)
    assert classes.rio.crs.to_epsg() == 2154
    found = patches(classes, min_area_m2=100)
    assert sorted(found["class"].tolist()) == [1, 2, 3, 4, 5]  # the two loss pixels touch: one patch
    assert found.set_index("class")["area_m2"].to_dict() == {1: 400.0, 2: 200.0, 3: 200.0, 4: 200.0, 5: 200.0}
    with pytest.raises(DataError, match="grid"):
        patches(classes.isel(y=[0]))  # one row: rioxarray cannot infer the pixel size
