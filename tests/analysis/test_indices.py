"""Tests of the spectral index catalogue and engine (territoire_geo.analysis.indices)."""

from __future__ import annotations

import json
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from territoire_geo.analysis import indices
from territoire_geo.errors import ConfigError, DataError, ExpressionError, MissingBandError

NAN = np.nan

#: Five pixels: vegetation, bare soil, water, all-zero, no data.
PIXELS: dict[str, list[float]] = {
    "blue": [0.05, 0.10, 0.08, 0.0, NAN],
    "green": [0.08, 0.12, 0.10, 0.0, NAN],
    "red": [0.10, 0.20, 0.06, 0.0, NAN],
    "rededge1": [0.15, 0.22, 0.05, 0.0, NAN],
    "nir": [0.50, 0.25, 0.03, 0.0, NAN],
    "swir16": [0.30, 0.35, 0.01, 0.0, NAN],
    "swir22": [0.20, 0.30, 0.005, 0.0, NAN],
}

#: Hand-computed in float64 from the standard formulas (EVI: g=2.5, C1=6, C2=7.5, L=1; SAVI: L=0.5).
EXPECTED: dict[str, list[float]] = {
    # (nir - red) / (nir + red): (0.5 - 0.1) / 0.6
    "ndvi": [0.6666667, 0.1111111, -0.3333333, NAN, NAN],
    # 2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1): 1.0 / 1.725
    "evi": [0.5797101, 0.07352941, -0.09493671, 0.0, NAN],
    # 1.5 (nir - red) / (nir + red + 0.5): 0.6 / 1.1
    "savi": [0.5454545, 0.07894737, -0.07627119, 0.0, NAN],
    # 0.5 (2 nir + 1 - sqrt((2 nir + 1)^2 - 8 (nir - red))): 0.5 (2 - sqrt(0.8))
    "msavi": [0.5527864, 0.06992647, -0.05386642, 0.0, NAN],
    "ndwi": [-0.7241379, -0.3513514, 0.5384615, NAN, NAN],
    "mndwi": [-0.5789474, -0.4893617, 0.8181818, NAN, NAN],
    "ndmi": [0.25, -0.1666667, 0.5, NAN, NAN],
    "nbr": [0.4285714, -0.09090909, 0.7142857, NAN, NAN],
    "ndbi": [-0.25, 0.1666667, -0.5, NAN, NAN],
    # ((swir16 + red) - (nir + blue)) / ((swir16 + red) + (nir + blue)): -0.15 / 0.95
    "bsi": [-0.1578947, 0.2222222, -0.2222222, NAN, NAN],
    "ndre": [0.5384615, 0.06382979, -0.25, NAN, NAN],
    "gndvi": [0.7241379, 0.3513514, -0.5384615, NAN, NAN],
}


def make_dataset(**overrides: Any) -> xr.Dataset:
    data = {name: ("x", np.array(values, dtype=np.float32)) for name, values in PIXELS.items()}
    data.update(overrides)
    return xr.Dataset(data, coords={"x": np.arange(5)})


@pytest.fixture
def ds() -> xr.Dataset:
    return make_dataset()


class _NoCompute:
    """A dask scheduler that fails if anything is computed."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compute() was triggered")


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("name", indices.FIRST_CLASS)
def test_first_class_hand_computed(ds: xr.Dataset, name: str) -> None:
    result = getattr(indices, name)(ds)
    assert isinstance(result, xr.DataArray)
    assert result.name == name
    assert result.dtype == np.float32
    np.testing.assert_allclose(result.values, np.array(EXPECTED[name], dtype=np.float32), rtol=2e-6, equal_nan=True)
    assert result.attrs["units"] == "1"
    assert result.attrs["catalog_version"] == indices.CATALOG_VERSION
    assert result.attrs["formula"] == indices.get(name).formula
    assert result.attrs["reference"]


def test_first_class_list_matches_functions() -> None:
    assert indices.FIRST_CLASS == (
        "ndvi", "evi", "savi", "msavi", "ndwi", "mndwi", "ndmi", "nbr", "ndbi", "bsi", "ndre", "gndvi",
    )
    for name in indices.FIRST_CLASS:
        function = getattr(indices, name)
        assert function.__name__ == name
        assert indices.get(name).formula in function.__doc__
        assert indices.get(name).first_class


def test_shipped_formulas_and_defaults() -> None:
    assert indices.get("EVI").formula == "g * (nir - red) / (nir + C1 * red - C2 * blue + L)"
    assert dict(indices.get("EVI").constants) == {"g": 2.5, "C1": 6.0, "C2": 7.5, "L": 1.0}
    assert dict(indices.get("SAVI").constants) == {"L": 0.5}
    assert indices.get("NDWI").formula == "(green - nir) / (green + nir)"
    assert indices.get("BSI").source == "added"
    assert indices.get("NDRE").source == "added"
    assert indices.get("NDVI").source == "asi"
    assert indices.get("NDVI").valid_range == (-1.0, 1.0)


def test_constants_override(ds: xr.Dataset) -> None:
    result = indices.savi(ds, L=1.0)
    np.testing.assert_allclose(result.values[0], 2 * 0.4 / 1.6, rtol=1e-6)
    assert result.attrs["constants"] == "L=1"
    evi = indices.evi(ds, g=1.0)
    np.testing.assert_allclose(evi.values[0], 0.4 / 1.725, rtol=1e-6)


def test_unused_or_bad_constants_refused(ds: xr.Dataset) -> None:
    with pytest.raises(ConfigError, match=r"constant.*l.*not used.*they use: L"):
        indices.savi(ds, l=0.5)
    with pytest.raises(ConfigError, match="they use: none"):
        indices.ndvi(ds, L=0.5)
    with pytest.raises(ConfigError, match="finite"):
        indices.savi(ds, L=float("nan"))


def test_inf_becomes_nan(ds: xr.Dataset) -> None:
    result = indices.compute(ds, [], expressions={"ratio": "red / (nir - 0.5)", "big": "nir ** -10"})
    assert np.isnan(result["ratio"].values[0])
    assert np.isnan(result["big"].values[3])
    assert not np.isinf(result.to_array().values).any()


def test_float64_input_gives_float32(ds: xr.Dataset) -> None:
    result = indices.ndvi(ds.astype(np.float64))
    assert result.dtype == np.float32


# ---------------------------------------------------------------- backends


def test_numpy_and_dask_backends_identical(ds: xr.Dataset) -> None:
    names = list(indices.FIRST_CLASS)
    reference = indices.compute(ds, names)
    single = indices.compute(ds.chunk({"x": -1}), names)
    many = indices.compute(ds.chunk({"x": 2}), names)
    mixed = ds.chunk({"x": 1})
    mixed["nir"] = mixed["nir"].chunk({"x": 3})
    uneven = indices.compute(mixed, names)
    assert isinstance(reference["ndvi"].data, np.ndarray)
    for result in (single, many, uneven):
        assert all(isinstance(result[name].data, da.Array) for name in names)
        computed = result.compute()
        xr.testing.assert_allclose(computed, reference)
        for name in names:
            np.testing.assert_allclose(computed[name].values, reference[name].values, rtol=1e-6, equal_nan=True)
            assert computed[name].dtype == np.float32
            assert computed[name].attrs == reference[name].attrs


def test_results_stay_lazy(ds: xr.Dataset) -> None:
    lazy = ds.chunk({"x": 2})
    with dask.config.set(scheduler=_NoCompute()):
        result = indices.compute(lazy, ["ndvi", "evi", "msavi"], expressions={"myidx": "sqrt(nir) * 2"})
        single = indices.bsi(lazy)
    assert isinstance(result["ndvi"].data, dask.array.Array)
    assert isinstance(single.data, dask.array.Array)
    assert result["ndvi"].data.chunks == ((2, 2, 1),)
    np.testing.assert_allclose(single.compute().values, EXPECTED["bsi"], rtol=2e-6, equal_nan=True)


def test_two_dimensional_coords_preserved() -> None:
    rng = np.random.default_rng(0)
    shape = (4, 6)
    data = {band: (("y", "x"), rng.uniform(0.0, 0.6, shape).astype(np.float32)) for band in ("red", "nir")}
    ds = xr.Dataset(data, coords={"y": np.arange(4.0), "x": np.arange(6.0) * 10}).chunk({"y": 2, "x": 3})
    result = indices.compute(ds, "NDVI")["ndvi"]
    assert result.dims == ("y", "x")
    np.testing.assert_array_equal(result["x"].values, np.arange(6.0) * 10)
    nir, red = ds["nir"].values, ds["red"].values
    np.testing.assert_allclose(result.values, (nir - red) / (nir + red), rtol=1e-6)


# ---------------------------------------------------------------- compute()


def test_custom_expression(ds: xr.Dataset) -> None:
    text = "(nir - red) / (nir + red + 0.5) * 1.5"
    result = indices.compute(ds, [], expressions={"myidx": text})
    assert list(result.data_vars) == ["myidx"]
    assert result["myidx"].dtype == np.float32
    np.testing.assert_allclose(result["myidx"].values, EXPECTED["savi"], rtol=2e-6, equal_nan=True)
    assert result["myidx"].attrs["formula"] == text
    assert result["myidx"].attrs["long_name"] == "myidx"
    assert result.attrs["catalog_attribution"].startswith("Awesome Spectral Indices, Montero et al. 2023")


def test_custom_expression_with_catalogue_constant(ds: xr.Dataset) -> None:
    result = indices.compute(ds, ["ndvi"], constants={"L": 0.25}, expressions={"s": "(1 + L) * (nir - red) / (nir + red + L)"})
    np.testing.assert_allclose(result["s"].values[0], 1.25 * 0.4 / 0.85, rtol=1e-6)
    assert result["s"].attrs["constants"] == "L=0.25"


def test_custom_expression_errors(ds: xr.Dataset) -> None:
    with pytest.raises(ExpressionError, match=r"expression 'bad': unsafe expression: attribute access '\.__class__'"):
        indices.compute(ds, [], expressions={"bad": "red.__class__"})
    with pytest.raises(MissingBandError, match="nir08"):
        indices.compute(ds, [], expressions={"x": "nir08 - red"})
    with pytest.raises(ConfigError, match="clash"):
        indices.compute(ds, ["ndvi"], expressions={"ndvi": "nir - red"})
    with pytest.raises(ConfigError, match="nothing to compute"):
        indices.compute(ds, [])


def test_several_names_and_duplicates(ds: xr.Dataset) -> None:
    result = indices.compute(ds, ["NDVI", "ndvi", "Nbr"])
    assert list(result.data_vars) == ["ndvi", "nbr"]


def test_missing_band_message(ds: xr.Dataset) -> None:
    with pytest.raises(MissingBandError) as info:
        indices.compute(ds.drop_vars(["swir16", "blue"]), ["ndvi", "bsi"])
    message = str(info.value)
    assert "BSI" in message
    assert "swir16" in message and "blue" in message
    assert "present: green, nir, red, rededge1, swir22" in message
    assert isinstance(info.value, LookupError)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32])
def test_integer_bands_refused(ds: xr.Dataset, dtype: type) -> None:
    raw = ds.fillna(0).astype(dtype) * 0 + 500
    with pytest.raises(DataError, match=rf"band '(nir|red)' has integer dtype {np.dtype(dtype).name}.*reflectance"):
        indices.ndvi(raw)


def test_unknown_index_suggests(ds: xr.Dataset) -> None:
    with pytest.raises(ExpressionError, match=r"unknown spectral index 'NVDI'; did you mean .*NDVI"):
        indices.compute(ds, "NVDI")
    with pytest.raises(ExpressionError, match="NBRT1 is not available: needs T"):
        indices.get("nbrt1")
    with pytest.raises(ExpressionError, match="ambiguous index name 'bai'"):
        indices.get("bai")


def test_get_is_case_insensitive() -> None:
    assert indices.get("ndvi") is indices.get("NDVI")
    assert indices.get("NDVI").variable == "ndvi"
    assert indices.get("BAI").variable == "BAI"
    assert indices.get("BaI").variable == "BaI"


# ---------------------------------------------------------------- catalogue


def test_catalog_dataframe() -> None:
    table = indices.catalog()
    assert isinstance(table, pd.DataFrame)
    assert len(table) >= 100
    assert table["name"].is_unique
    for column in ("name", "long_name", "formula", "bands", "constants", "reference", "valid_range", "domain"):
        assert column in table.columns
    lower = set(table["name"].str.lower())
    assert set(indices.FIRST_CLASS) <= lower
    assert set(table.loc[table["first_class"], "variable"]) == set(indices.FIRST_CLASS)
    allowed = set(indices.INDEX_BANDS)
    assert all(set(bands) <= allowed for bands in table["bands"])


def test_catalog_json_attribution_and_exclusions() -> None:
    raw = json.loads(indices._CATALOG_PATH.read_text(encoding="utf-8"))
    assert raw["catalog"]["attribution"] == "Awesome Spectral Indices, Montero et al. 2023, Sci. Data 10:197, MIT licence"
    assert raw["catalog"]["licence"] == "MIT"
    assert "LST" not in raw["indices"]
    assert "T" in raw["excluded"]["NBRT1"]
    assert all("S2" not in entry["bands"] for entry in raw["indices"].values())


def test_every_catalog_index_evaluates_quietly() -> None:
    rng = np.random.default_rng(42)
    size = 64
    data = {band: ("x", rng.uniform(0.0, 0.7, size).astype(np.float32)) for band in indices.INDEX_BANDS}
    data["red"][1][:4] = 0.0
    data["nir"][1][:4] = 0.0
    ds = xr.Dataset(data)
    names = list(indices.catalog()["name"])
    result = indices.compute(ds, names)
    assert len(result.data_vars) == len(names)
    for name in result.data_vars:
        values = result[name].values
        assert values.dtype == np.float32
        assert not np.isinf(values).any()


# ---------------------------------------------------------------- dev cross-check


@pytest.mark.parametrize(
    ("ours", "theirs", "params"),
    [
        ("NDVI", "NDVI", {}),
        ("EVI", "EVI", {"g": 2.5, "C1": 6.0, "C2": 7.5, "L": 1.0}),
        ("SAVI", "SAVI", {"L": 0.5}),
        ("MSAVI", "MSAVI", {}),
        ("NBR", "NBR", {}),
        ("BSI", "BI", {}),
        ("NDRE", "NDREI", {}),
        ("MNDWI", "MNDWI", {}),
    ],
)
def test_cross_check_spyndex(ds: xr.Dataset, ours: str, theirs: str, params: dict[str, float]) -> None:
    spyndex = pytest.importorskip("spyndex")
    letters = {"B": "blue", "G": "green", "R": "red", "RE1": "rededge1", "N": "nir", "S1": "swir16", "S2": "swir22"}
    arrays = {letter: ds[band].values[:3].astype(np.float64) for letter, band in letters.items()}
    expected = spyndex.computeIndex(theirs, params={**arrays, **params})
    result = indices.compute(ds, ours)[indices.get(ours).variable].values[:3]
    np.testing.assert_allclose(result, expected, rtol=2e-6)
