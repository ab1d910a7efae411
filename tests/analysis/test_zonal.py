"""Zonal statistics: hand-computed coverage-weighted values, exactextract agreement, dask, CRS."""

from __future__ import annotations

import logging
from pathlib import Path

import dask.array
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from affine import Affine
from exactextract import exact_extract
from shapely.geometry import box

from territoire_geo.analysis import terrain, zonal
from territoire_geo.errors import ConfigError, CRSMismatchError, DataError

X0, Y0 = 700_000.0, 6_600_000.0  # Lambert-93 origin of the little grids


def grid(values: np.ndarray, res: float = 10.0, crs: object = 2154) -> xr.DataArray:
    """A north-up DataArray whose top-left corner is (X0, Y0 + rows × res)."""
    rows, cols = values.shape[-2:]
    x = X0 + res * (np.arange(cols) + 0.5)
    y = Y0 + res * (rows - np.arange(rows) - 0.5)
    dims = ("y", "x") if values.ndim == 2 else ("band", "y", "x")
    coords = {"y": y, "x": x} | ({"band": np.arange(1, values.shape[0] + 1)} if values.ndim == 3 else {})
    data = xr.DataArray(values, coords=coords, dims=dims)
    return data.rio.write_crs(crs) if crs is not None else data


def square(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def frame(*geoms: shapely.Geometry, crs: object = 2154) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [f"p{i}" for i in range(len(geoms))]}, geometry=list(geoms), crs=crs)


def write_tif(path: Path, values: np.ndarray, *, nodata: float | None = None, crs: object = "EPSG:2154",
              descriptions: list[str] | None = None) -> Path:
    bands = values[np.newaxis] if values.ndim == 2 else values
    profile = {"driver": "GTiff", "width": bands.shape[2], "height": bands.shape[1], "count": bands.shape[0],
               "dtype": bands.dtype.name, "transform": Affine(10, 0, X0, 0, -10, Y0 + 10 * bands.shape[1]),
               "nodata": nodata}
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)
        for i, text in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, text)
    return path


VALUES = np.arange(16, dtype="float32").reshape(4, 4)  # value = 4 × row + column, row 0 at the top
HALF = square(5, 5, 25, 25)  # quarter/half/full pixels: weights 1-2-1 / 2-4-2 / 1-2-1 (in quarters)


# --------------------------------------------------------- hand-computed references
def test_partial_pixels_are_weighted_by_coverage() -> None:
    out = zonal.stats(grid(VALUES), frame(HALF))
    row = out.iloc[0]
    # rows 1–3, columns 0–2: Σ w·v = 5 + 18 + 13 = 36 over Σ w = 4 pixel equivalents
    assert row["count"] == pytest.approx(4.0)
    assert row["mean"] == pytest.approx(9.0)
    assert (row["min"], row["max"], row["majority"]) == (4.0, 14.0, 9.0)
    assert row["coverage"] == pytest.approx(1.0)
    assert not [c for c in out.columns if c.startswith("frac_")]  # float raster: no class shares


def test_polygon_half_outside_the_raster_has_partial_coverage() -> None:
    out = zonal.stats(grid(VALUES), frame(square(30, 30, 50, 50)), ["count", "mean", "coverage"])
    assert out.iloc[0][["count", "mean", "coverage"]].tolist() == pytest.approx([1.0, 3.0, 0.25])


def test_nan_is_nodata_and_lowers_coverage() -> None:
    values = VALUES.copy()
    values[1, 1] = np.nan  # value 5, weight 0.5
    row = zonal.stats(grid(values), frame(HALF), ["mean", "count", "coverage"]).iloc[0]
    assert row["mean"] == pytest.approx((36 - 2.5) / 3.5)
    assert row["count"] == pytest.approx(3.5)
    assert row["coverage"] == pytest.approx(3.5 / 4)


def test_explicit_nodata_on_integer_raster(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "int.tif", VALUES.astype("int16"), nodata=9)
    row = zonal.stats(path, frame(HALF), ["mean", "count"]).iloc[0]
    assert row["mean"] == pytest.approx((36 - 9) / 3)
    row = zonal.stats(path, frame(HALF), ["mean", "count"], nodata=10).iloc[0]  # argument wins
    assert row["mean"] == pytest.approx((36 - 5) / 3.5)


def test_small_parcels_keep_a_value() -> None:
    parcels = frame(*[square(12 + 10 * i, 12, 18 + 10 * i, 18) for i in range(2)])  # 6×6 m inside pixels
    out = zonal.stats(grid(VALUES), parcels, ["count", "mean", "coverage"])
    assert out["count"].tolist() == pytest.approx([0.36, 0.36])
    assert out["mean"].tolist() == [9.0, 10.0]
    assert out["coverage"].tolist() == pytest.approx([1.0, 1.0])


def test_categorical_fractions_and_quantiles() -> None:
    classes = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3], [3, 3, 3, 3]], dtype="uint8")
    polys = frame(square(0, 10, 20, 30), square(20, 20, 40, 40))
    out = zonal.stats(grid(classes), polys, ["frac", "majority"], quantiles=[0.5])
    assert out.loc[0, ["frac_1", "frac_2", "frac_3"]].tolist() == pytest.approx([0.5, 0.0, 0.5])
    assert out.loc[1, ["frac_1", "frac_2", "frac_3"]].tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert out["majority"].iloc[1] == 2.0 and out["quantile_50"].iloc[1] == 2.0  # (polygon 0 is a 1/3 tie)


# ------------------------------------------------------------- exactextract itself
def random_case(seed: int = 1, n: int = 40) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    values = rng.normal(0.5, 0.2, (60, 80)).astype("float32")
    values[rng.random(values.shape) < 0.05] = np.nan
    cx, cy, r = rng.uniform(50, 750, n), rng.uniform(50, 550, n), rng.uniform(5, 120, n)
    angles = np.linspace(0, 2 * np.pi, 17)[:-1]
    rings = np.stack([X0 + cx[:, None] + r[:, None] * np.cos(angles),
                      Y0 + cy[:, None] + r[:, None] * np.sin(angles)], axis=-1)
    return values, gpd.GeoDataFrame({"id": np.arange(n)}, geometry=shapely.polygons(rings), crs=2154)


def test_agrees_with_exactextract_called_directly(tmp_path: Path) -> None:
    values, polys = random_case()
    path = write_tif(tmp_path / "r.tif", values, nodata=np.nan)
    ops = ["mean", "median", "stdev", "min", "max", "count"]
    ref = exact_extract(str(path), polys, ops, include_cols=["id"], output="pandas")
    for raster in (path, grid(values)):
        ours = zonal.stats(raster, polys, ops)
        for op in ops:
            np.testing.assert_allclose(ours[op].to_numpy(), ref[op].to_numpy(), rtol=1e-6, equal_nan=True)


def test_dask_path_equals_numpy_path_and_computes_once() -> None:
    values, polys = random_case(seed=2)
    calls = []

    def tracked(block: np.ndarray) -> np.ndarray:
        calls.append(block.shape)
        return block

    lazy = grid(values).copy(data=dask.array.from_array(values, chunks=(30, 40)).map_blocks(tracked))
    ours = zonal.stats(lazy, polys, ["mean", "count", "coverage"])
    expected = zonal.stats(grid(values), polys, ["mean", "count", "coverage"])
    pd.testing.assert_frame_equal(pd.DataFrame(ours.drop(columns="geometry")),
                                  pd.DataFrame(expected.drop(columns="geometry")))
    assert sum(shape == (30, 40) for shape in calls) == 4  # once per chunk, not once per polygon


# ----------------------------------------------------------- multi-band / multi-time
def time_cube() -> xr.DataArray:
    cube = xr.concat([grid(VALUES), grid(VALUES * 2)], dim="time")
    return cube.assign_coords(time=pd.to_datetime(["2021-06-18", "2022-06-18"]))


def test_multi_time_gives_one_column_per_date() -> None:
    out = zonal.stats(time_cube(), frame(HALF), ["mean", "coverage"], prefix="ndvi")
    assert out["ndvi_mean_2021-06-18"].iloc[0] == pytest.approx(9.0)
    assert out["ndvi_mean_2022-06-18"].iloc[0] == pytest.approx(18.0)
    assert out["ndvi_coverage_2022-06-18"].iloc[0] == pytest.approx(1.0)


def test_long_table_keeps_dates() -> None:
    polys = frame(HALF, square(30, 30, 50, 50))
    out = zonal.stats(time_cube(), polys, ["mean"], long=True, id_column="name")
    assert list(out.columns) == ["name", "time", "mean", "geometry"]
    assert len(out) == 4 and out["time"].iloc[1] == pd.Timestamp("2022-06-18")
    assert out.loc[out["name"] == "p1", "mean"].tolist() == pytest.approx([3.0, 6.0])


def test_multiband_file_uses_band_descriptions(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "b.tif", np.stack([VALUES, VALUES + 100]), descriptions=["red", "nir"])
    out = zonal.stats(path, frame(HALF), ["mean"])
    assert out[["mean_red", "mean_nir"]].iloc[0].tolist() == pytest.approx([9.0, 109.0])


def test_band_dim_must_be_explicit_with_two_extra_dims() -> None:
    cube = time_cube().expand_dims(sensor=["s2"])
    with pytest.raises(DataError, match="band_dim"):
        zonal.stats(cube.transpose("sensor", "time", "y", "x").isel(sensor=[0, 0]), frame(HALF), ["mean"])
    out = zonal.stats(cube, frame(HALF), ["mean"], band_dim="time")
    assert "mean_2021-06-18" in out.columns


# ------------------------------------------------------------------------ CRS
def test_polygons_in_another_crs_are_reprojected(caplog: pytest.LogCaptureFixture) -> None:
    polys = frame(HALF, square(30, 30, 50, 50))
    with caplog.at_level(logging.INFO, logger="territoire_geo.analysis"):
        out = zonal.stats(grid(VALUES), polys.to_crs(4326), ["mean", "coverage"])
    assert "reprojecting 2 polygons" in caplog.text
    assert out["mean"].tolist() == pytest.approx([9.0, 3.0], rel=1e-4)
    assert out.crs.to_epsg() == 4326  # output keeps the input geometry and CRS


def test_polygons_without_crs_are_refused() -> None:
    with pytest.raises(CRSMismatchError, match="set the CRS"):
        zonal.stats(grid(VALUES), frame(HALF, crs=None))


def test_raster_without_crs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no CRS"):
        zonal.stats(grid(VALUES, crs=None), frame(HALF))
    with pytest.raises(DataError, match="no CRS"):
        zonal.stats(write_tif(tmp_path / "nocrs.tif", VALUES, crs=None), frame(HALF))


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown statistic"):
        zonal.stats(grid(VALUES), frame(HALF), ["average"])
    with pytest.raises(ConfigError, match="quantiles"):
        zonal.stats(grid(VALUES), frame(HALF), ["mean"], quantiles=[1.5])
    with pytest.raises(DataError, match="Dataset"):
        zonal.stats(grid(VALUES).to_dataset(name="v"), frame(HALF))


def test_empty_geometry_gets_nan_and_keeps_index() -> None:
    polys = frame(HALF, shapely.Polygon()).set_index(pd.Index([10, 20]))
    out = zonal.stats(grid(VALUES), polys, ["mean", "count"])
    assert out.index.tolist() == [10, 20]
    assert out.loc[10, "mean"] == 9.0 and np.isnan(out.loc[20, "mean"])


# ---------------------------------------------------------------------- slope
def test_slope_percent_of_a_plane() -> None:
    rows, cols = np.mgrid[0:20, 0:30]
    heights = (0.1 * 30 * cols + 0.05 * 30 * (19 - rows)).astype("float32")  # +10 % east, +5 % north
    slope = terrain.slope_percent(grid(heights, res=30))
    assert float(slope.mean()) == pytest.approx(100 * np.hypot(0.1, 0.05), rel=1e-5)
    assert slope.rio.crs.to_epsg() == 2154 and slope.attrs["units"] == "%"


def test_slope_needs_a_projected_grid_and_reprojection_helper_works() -> None:
    dem = grid(np.full((20, 20), 100.0, dtype="float32"), res=0.0003, crs=4326)
    dem = dem.assign_coords(x=4.3 + 0.0003 * np.arange(20), y=44.0 - 0.0003 * np.arange(20))
    with pytest.raises(DataError, match="geographic"):
        terrain.slope_percent(dem)
    projected = terrain.reproject_dem(dem, "EPSG:2154", resolution=20.0)
    assert projected.rio.crs.to_epsg() == 2154
    slope = terrain.slope_percent(projected)
    assert float(slope.max(skipna=True)) == pytest.approx(0.0, abs=1e-3)
