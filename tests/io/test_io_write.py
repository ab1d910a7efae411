"""Tests of the atomic Zarr and vector writers (territoire_geo.io)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import xarray as xr
from shapely.geometry import box

from territoire_geo.errors import ConfigError, ExportError
from territoire_geo.io import grid_windows, write_cube_zarr, write_cube_zarrs, write_vector


@pytest.fixture
def frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"class": np.array([3, 1], np.int16), "class_name": ["a", "b"],
                             "first_seen": pd.to_datetime(["2022-04-14 10:30:21", None])},
                            geometry=[box(0, 0, 10, 10), box(10, 0, 20, 10)], crs="EPSG:2154")


def cube() -> xr.Dataset:
    values = np.arange(3 * 50 * 40, dtype=np.float32).reshape(3, 50, 40)
    ds = xr.Dataset({"ndvi": (("time", "y", "x"), values), "valid_count": (("y", "x"), np.ones((50, 40), np.uint16))},
                    coords={"time": pd.date_range("2022-01-01", periods=3)},
                    attrs={"flag_values": np.array([0, 3], np.uint8), "note": "zones à vérifier"})
    return ds.chunk({"time": 1, "y": 20, "x": 15})


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_write_vector_round_trip_and_refusal(tmp_path: Path, frame: gpd.GeoDataFrame, suffix: str) -> None:
    target = tmp_path / f"patches{suffix}"
    read = gpd.read_file if suffix == ".gpkg" else gpd.read_parquet
    assert write_vector(frame, target, layer="patches") == target
    back = read(target)
    assert back["class"].tolist() == [3, 1] and back.crs.to_epsg() == 2154
    assert back.geometry.area.tolist() == [100.0, 100.0]
    assert pd.isna(back["first_seen"].iloc[1])
    with pytest.raises(ExportError, match="overwrite"):
        write_vector(frame, target, layer="patches")
    write_vector(frame.iloc[:1], target, layer="patches", overwrite=True)
    assert len(read(target)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left behind


def test_write_vector_several_gpkg_layers_and_errors(tmp_path: Path, frame: gpd.GeoDataFrame) -> None:
    target = write_vector({"patches": frame, "empty": frame.iloc[:0]}, tmp_path / "out.gpkg")
    assert sorted(pyogrio.list_layers(target)[:, 0].tolist()) == ["empty", "patches"]
    with pytest.raises(ConfigError, match="one layer"):
        write_vector({"a": frame, "b": frame}, tmp_path / "out.parquet")
    with pytest.raises(ConfigError, match="gpkg"):
        write_vector(frame, tmp_path / "out.shp")


def test_write_cube_zarr_round_trip_atomic_and_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "cube.zarr"
    ds = cube()
    assert write_cube_zarr(ds, target) == target
    back = xr.open_zarr(target, consolidated=False)
    xr.testing.assert_equal(back.compute(), ds.compute())
    assert back.attrs["note"] == "zones à vérifier"
    with pytest.raises(ExportError, match="overwrite"):
        write_cube_zarr(ds, target)
    write_cube_zarr(ds.isel(time=[0]), target, overwrite=True)
    assert xr.open_zarr(target, consolidated=False).sizes["time"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.zarr"]


def test_write_cube_zarr_regularises_chunks(tmp_path: Path) -> None:
    ds = cube().isel(x=[0, 1, 2, 10, 20, 30, 39]).chunk({"x": (2, 4, 1), "y": (10, 30, 10)})
    write_cube_zarr(ds["ndvi"], tmp_path / "irregular.zarr")
    back = xr.open_zarr(tmp_path / "irregular.zarr", consolidated=False)
    np.testing.assert_array_equal(back["ndvi"].values, ds["ndvi"].values)


def test_write_cube_zarrs_by_windows_equals_one_go(tmp_path: Path) -> None:
    """Several stores written window by window hold exactly what one computation writes."""
    ds = cube().assign_coords(y=np.arange(50) * -10.0, x=np.arange(40) * 10.0)
    composite = (ds["ndvi"].mean("time") * 2).rename("ndvi_mean").to_dataset()  # a store without time
    stores = {"series": ds, "composite": composite}
    assert len(grid_windows(ds["ndvi"], window=15) or []) == 9  # the windowed path is the one taken
    windowed = write_cube_zarrs({tmp_path / f"w_{k}.zarr": v for k, v in stores.items()}, window=15)
    whole = write_cube_zarrs({tmp_path / f"o_{k}.zarr": v for k, v in stores.items()}, window=10_000)
    for a, b, source in zip(windowed, whole, stores.values(), strict=True):
        by_window, one_go = xr.open_zarr(a, consolidated=False), xr.open_zarr(b, consolidated=False)
        xr.testing.assert_identical(by_window.compute(), one_go.compute())
        xr.testing.assert_equal(by_window.compute(), source.compute())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o_composite.zarr", "o_series.zarr",
                                                          "w_composite.zarr", "w_series.zarr"]
