"""Tests of per-period composites (territoire_geo.analysis.composites)."""

from __future__ import annotations

import warnings
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from territoire_geo.analysis.composites import composite, method_label, nan_quantile, select_period
from territoire_geo.errors import ConfigError, DataError

NAN = np.nan
TIMES = pd.to_datetime(["2021-01-10T10:30", "2021-03-05T10:30", "2021-06-18T10:30", "2021-09-16T10:30",
                        "2021-12-31T10:30"])
#: Five dates x four pixels: mixed NaNs, all NaN, a single observation, no NaN.
SERIES = np.array([
    [0.1, NAN, NAN, 0.1],
    [NAN, NAN, 0.7, 0.2],
    [0.5, NAN, NAN, 0.3],
    [0.3, NAN, NAN, 0.4],
    [0.2, NAN, NAN, 0.5],
], dtype=np.float32)
#: Hand-computed per pixel (sorted valid values of pixel 0: 0.1 0.2 0.3 0.5).
EXPECTED = {
    "median": [0.25, NAN, 0.7, 0.3],
    "mean": [0.275, NAN, 0.7, 0.3],
    "max": [0.5, NAN, 0.7, 0.5],
    "min": [0.1, NAN, 0.7, 0.1],
    ("percentile", 90): [0.44, NAN, 0.7, 0.46],  # 0.3 + 0.7 (0.5 - 0.3); 0.4 + 0.6 (0.5 - 0.4)
    ("percentile", 25): [0.175, NAN, 0.7, 0.2],  # 0.1 + 0.75 (0.2 - 0.1)
}


def cube(values: np.ndarray = SERIES, name: str = "ndvi") -> xr.DataArray:
    data = values.reshape(values.shape[0], 1, -1)
    return xr.DataArray(data, dims=("time", "y", "x"), name=name,
                        coords={"time": TIMES[: values.shape[0]], "y": [0.0], "x": np.arange(data.shape[2]) * 10.0},
                        attrs={"long_name": "NDVI"})


def _forbid_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("something was computed while building the graph")


@pytest.mark.parametrize("method", list(EXPECTED), ids=str)
def test_hand_computed_values(method: Any) -> None:
    out = composite(cube(), method=method)
    np.testing.assert_allclose(out.values[0], EXPECTED[method], rtol=1e-6)
    assert out.dtype == np.float32
    assert out["valid_count"].dtype == np.uint16
    assert out["valid_count"].values[0].tolist() == [4, 0, 1, 5]
    assert out.attrs["composite_method"] == method_label(method)


def test_dataset_uses_the_same_observations_for_every_variable() -> None:
    red = SERIES.copy()
    red[4, 0] = NAN  # observation 4 of pixel 0 now invalid for both variables
    ds = xr.Dataset({"ndvi": cube(), "red": cube(red, "red"), "scl": cube(SERIES, "scl").fillna(0).astype("uint8")})
    out = composite(ds, method="median")
    assert set(out.data_vars) == {"ndvi", "red", "valid_count"}  # integer scl dropped
    assert out["valid_count"].values[0].tolist() == [3, 0, 1, 5]
    assert out["ndvi"].values[0, 0] == pytest.approx(0.3)  # median of 0.1 0.5 0.3
    assert out["ndvi"].attrs["long_name"] == "NDVI"


def test_max_ndvi_picks_every_band_of_the_greenest_observation() -> None:
    ndvi = np.array([[0.2, NAN, 0.5], [0.8, NAN, 0.5], [0.4, NAN, NAN]], dtype=np.float32)
    red = np.array([[0.10, 0.2, 0.01], [0.03, 0.2, 0.02], [0.06, 0.2, 0.03]], dtype=np.float32)
    ds = xr.Dataset({"ndvi": cube(ndvi), "red": cube(red, "red")})
    out = composite(ds, method="max_ndvi")
    np.testing.assert_array_equal(out["ndvi"].values[0], np.array([0.8, NAN, 0.5], np.float32))
    np.testing.assert_array_equal(out["red"].values[0], np.array([0.03, NAN, 0.01], np.float32))  # tie: first
    assert out["valid_count"].values[0].tolist() == [3, 0, 2]


def test_max_ndvi_from_bands_or_explicit_series() -> None:
    red = np.array([[0.10, 0.05], [0.02, 0.08]], dtype=np.float32)
    nir = np.array([[0.30, 0.40], [0.40, 0.10]], dtype=np.float32)
    ds = xr.Dataset({"red": cube(red, "red"), "nir": cube(nir, "nir")})
    out = composite(ds, method="max_ndvi")
    np.testing.assert_array_equal(out["red"].values[0], np.array([0.02, 0.05], np.float32))
    assert "ndvi" in out.data_vars
    single = composite(ds["nir"], method="max_ndvi", ndvi=(ds.nir - ds.red) / (ds.nir + ds.red))
    np.testing.assert_array_equal(single.values[0], np.array([0.40, 0.40], np.float32))
    with pytest.raises(ConfigError, match="max_ndvi"):
        composite(ds["red"], method="max_ndvi")


def test_named_periods_and_listed_periods() -> None:
    yearly = composite(cube(), period="year")
    assert yearly["period"].values.tolist() == ["2021"]
    seasons = composite(cube(), period="season")
    assert seasons["period"].values.tolist() == ["2021-DJF", "2021-MAM", "2021-JJA", "2021-SON", "2022-DJF"]
    assert str(seasons["period_start"].values[-1])[:10] == "2021-12-01"
    monthly = composite(cube(), period="month")
    assert monthly.sizes["period"] == 5 and monthly["period"].values[0] == "2021-01"
    listed = composite(cube(), period=[("h1", "2021-01-01", "2021-06-30"), ("none", "2019", "2019")])
    np.testing.assert_allclose(listed.values[0, 0], [0.3, NAN, 0.7, 0.2], rtol=1e-6)  # 0.1 0.5 | 0.7 | 0.1 0.2 0.3
    assert np.isnan(listed.values[1]).all()
    assert listed["valid_count"].values[1].tolist() == [[0, 0, 0, 0]]


def test_select_period_is_inclusive_of_whole_end_day() -> None:
    picked = select_period(cube(), "2021-03-05", "2021-12-31")
    assert picked.sizes["time"] == 4  # the 2021-12-31T10:30 observation is in
    assert select_period(cube(), "2022", "2022").sizes["time"] == 0
    with pytest.raises(ConfigError):
        select_period(cube(), "2021-12-31", "2021-01-01")


@pytest.mark.parametrize("method", [*EXPECTED, "max_ndvi"], ids=str)
def test_lazy_and_identical_numpy_one_chunk_many_chunks(method: Any) -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(-0.2, 0.9, size=(9, 12, 10)).astype(np.float32)
    values[rng.uniform(size=values.shape) < 0.35] = NAN
    values[:, 0, 0] = NAN
    times = pd.date_range("2020-01-01", periods=9, freq="60D")
    base = xr.Dataset({"ndvi": (("time", "y", "x"), values), "red": (("time", "y", "x"), values[::-1] * 0.3)},
                      coords={"time": times})
    results = []
    for data in (base, base.chunk({"time": -1, "y": -1, "x": -1}), base.chunk({"time": 1, "y": 5, "x": 3})):
        with dask.config.set(scheduler=_forbid_compute):
            out = composite(data, method=method, period="year")
        if data.chunks:
            assert all(isinstance(var.data, da.Array) for var in out.data_vars.values())
        results.append(out.compute())
    for other in results[1:]:
        xr.testing.assert_identical(results[0], other)


def test_dask_all_nan_chunk_has_no_warning() -> None:
    data = cube(np.full((5, 4), NAN, np.float32)).chunk({"x": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = composite(data, method="median").compute()
    assert np.isnan(out.values).all() and int(out.valid_count.max()) == 0


def test_errors() -> None:
    with pytest.raises(ConfigError, match="unknown composite method"):
        composite(cube(), method="mode")
    with pytest.raises(ConfigError, match="out of range"):
        composite(cube(), method=("percentile", 120))
    with pytest.raises(ConfigError, match="unknown period"):
        composite(cube(), period="week")
    with pytest.raises(DataError, match="empty"):
        composite(cube().isel(time=slice(0, 0)))
    with pytest.raises(DataError, match="floating-point"):
        composite(xr.Dataset({"scl": cube().fillna(0).astype("uint8")}))
    with pytest.raises(DataError, match="dimension"):
        composite(cube().isel(time=0))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, (7, 5), elements=st.one_of(st.just(NAN), st.floats(-1, 1, width=32))),
       st.floats(0, 1))
def test_nan_quantile_matches_numpy(values: np.ndarray, q: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanquantile(values.astype(np.float64), q, axis=0)
    np.testing.assert_allclose(nan_quantile(values.T, q), expected, rtol=1e-6, atol=1e-7)
