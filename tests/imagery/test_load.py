"""Loading: reflectance = DN * scale + offset per item, masks, grids, mosaics, HTTP, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dask.array as da
import numpy as np
import pystac
import pytest
import rasterio
from _servers import StacApiServer
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from territoire_geo import load, plan_load
from territoire_geo._types import normalize_bbox
from territoire_geo.errors import ConfigError, MissingBandError, NoDataFoundError
from territoire_geo.testing import make_s2_item

# A window of the sample grid (UTM 31N, 10 m), aligned on 20 m so 10 m and 20 m pixels nest exactly
X0, Y1 = 608_000.0, 4_874_000.0
NATIVE = normalize_bbox((X0, Y1 - 2000, X0 + 3000, Y1), crs=32631)


def _dn(item: pystac.Item, band: str) -> np.ndarray:
    with rasterio.open(item.assets[band].get_absolute_href()) as src:
        window = rasterio.windows.from_bounds(*NATIVE.bounds, transform=src.transform)
        data = src.read(1, window=window.round_offsets().round_lengths())
    return np.repeat(np.repeat(data, 2, 0), 2, 1) if band == "scl" else data


def test_reflectance_matches_hand_computed_values_with_and_without_offset(sample_items: list) -> None:
    chosen = [i for i in sample_items if i.id[11:19] in ("20210419", "20220414", "20200623")]
    ds = load(chosen, bands=["red", "nir"], aoi=NATIVE, crs="EPSG:32631").compute()
    ds20 = load(chosen, bands=["swir16"], aoi=NATIVE, crs="EPSG:32631", resolution=20).compute()
    assert ds.red.dtype == np.float32 and ds.sizes == {"time": 3, "y": 200, "x": 300}
    for t, item in enumerate(chosen):
        baseline = float(item.properties["s2:processing_baseline"])
        offset = -0.1 if baseline >= 4 else 0.0  # 20200623 is a 2020 scene reprocessed at 05.00
        for band, data in (("red", ds), ("nir", ds), ("swir16", ds20)):
            dn = _dn(item, band).astype("float64")
            expected = np.where(dn == 0, np.nan, dn * 1e-4 + offset)
            np.testing.assert_allclose(data[band].isel(time=t).values, expected, atol=2e-6, equal_nan=True)
    assert 0.02 < float(ds.red.mean()) < 0.25  # offset applied once: plausible surface reflectance


def test_mask_removes_scl_cloud_shadow_cirrus(sample_items: list) -> None:
    cloudy = next(i for i in sample_items if i.id[11:19] == "20220623")
    aoi = normalize_bbox((607_000, 4_869_800, 612_440, 4_875_360), crs=32631)
    raw = load([cloudy], bands=["red", "scl"], aoi=aoi, crs="EPSG:32631").compute()
    masked = load([cloudy], bands=["red", "scl"], aoi=aoi, crs="EPSG:32631", mask=True).compute()
    scl = raw.scl.isel(time=0).values
    bad = np.isin(scl, [0, 1, 3, 8, 9, 10, 11])
    assert bad.sum() > 10_000  # the scene really is cloudy
    red = masked.red.isel(time=0).values
    assert np.isnan(red[bad]).all() and not np.isnan(red[~bad]).any()
    assert np.array_equal(masked.scl.values, raw.scl.values)  # SCL kept as integers when asked
    assert masked.scl.dtype == np.uint8


def test_default_grid_is_lambert93_10m_and_lazy(sample_items: list, plu_shp: Path) -> None:
    ds = load(sample_items, bands=["red", "nir"], aoi=plu_shp, mask=True)
    assert ds.rio.crs.to_epsg() == 2154 if hasattr(ds, "rio") else True
    assert str(ds.attrs["crs"]) == "EPSG:2154"
    assert float(ds.x[1] - ds.x[0]) == 10.0 and float(ds.y[0] - ds.y[1]) == 10.0
    assert all(isinstance(v.data, da.Array) for v in ds.data_vars.values())
    assert ds.sizes["time"] == 12
    assert ds.time.dtype == np.dtype("datetime64[ns]")


def test_plan_needs_no_pixels(sample_items: list) -> None:
    broken = []
    for item in sample_items[:2]:
        clone = item.clone()
        for asset in clone.assets.values():
            asset.href = "/nonexistent/" + Path(asset.href).name
        broken.append(clone)
    plan = plan_load(broken, bands=["red", "nir"], aoi=(4.35, 43.99, 4.37, 44.0), mask=True)
    summary = plan.describe()
    assert summary["crs"] == "EPSG:2154" and summary["bands"] == ["red", "nir"]
    assert [i["offset"] for i in summary["items"]] == [0.0, pytest.approx(-0.1)]
    assert plan.shape[0] > 100 and len(plan.days) == 2


def test_same_day_tiles_in_two_utm_zones_mosaic_onto_one_grid(tmp_path: Path, sample_items: list) -> None:
    source = next(i for i in sample_items if i.id[11:19] == "20230618")
    bands = {b: rasterio.open(source.assets[b].get_absolute_href()) for b in ("red", "nir")}
    transform = bands["red"].transform
    split_col = bands["red"].width // 2
    west = {b: src.read(1) for b, src in bands.items()}
    for array in west.values():
        array[:, split_col:] = 0
    when = source.datetime
    item_a = make_s2_item(tmp_path / "a", "west_31N", when, west, transform, 32631, baseline="05.09")
    east = {}
    for b, src in bands.items():
        data = src.read(1)
        data[:, :split_col - 4] = 0  # small overlap
        dst_t, w, h = calculate_default_transform(src.crs, "EPSG:32632", src.width, src.height, *src.bounds,
                                                  resolution=10)
        out = np.zeros((h, w), "uint16")
        reproject(data, out, src_transform=src.transform, src_crs=src.crs, dst_transform=dst_t,
                  dst_crs="EPSG:32632", resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
        east[b], east_t = out, dst_t
    item_b = make_s2_item(tmp_path / "b", "east_32N", when + dt.timedelta(seconds=3), east, east_t, 32632,
                          baseline="05.09", tile="32TLP")
    for src in bands.values():
        src.close()
    aoi = (4.345, 43.985, 4.39, 44.015)
    mosaic = load([item_a, item_b], bands=["red", "nir"], aoi=aoi).compute()
    reference = load([source], bands=["red", "nir"], aoi=aoi).compute()
    assert mosaic.sizes["time"] == 1  # one slice per solar day
    assert np.isnan(reference.red).sum() == 0
    assert np.isnan(mosaic.red).mean() < 0.002  # both halves filled
    diff = np.abs(mosaic.nir - reference.nir)
    assert float(diff.median()) < 0.005


def test_http_load_from_stac_api_equals_local(stac_api: StacApiServer, sample_items: list) -> None:
    from territoire_geo import search

    remote = search((4.35, 43.99, 4.37, 44.0), "2022-04", source=stac_api.url, collections="sentinel-2-l2a")
    assert remote[0].assets["red"].href.startswith("http://127.0.0.1")
    local = [i for i in sample_items if i.id == remote[0].id]
    over_http = load(remote, bands=["red", "scl"], aoi=NATIVE, crs="EPSG:32631", mask=True).compute()
    on_disk = load(local, bands=["red", "scl"], aoi=NATIVE, crs="EPSG:32631", mask=True).compute()
    np.testing.assert_array_equal(over_http.red.values, on_disk.red.values)


def test_bad_input_errors(sample_items: list) -> None:
    with pytest.raises(MissingBandError, match="unknown band"):
        load(sample_items, bands=["thermal"], aoi=NATIVE)
    with pytest.raises(MissingBandError, match="no asset for band"):
        load(sample_items, bands=["coastal"], aoi=NATIVE)
    with pytest.raises(NoDataFoundError, match="no item covers"):
        load(sample_items, bands=["red"], aoi=(2.0, 48.8, 2.1, 48.9))
    with pytest.raises(ConfigError, match="resolution"):
        load(sample_items, bands=["red"], aoi=NATIVE, resolution=-10)
    with pytest.raises(ConfigError, match="geographic"):
        load(sample_items, bands=["red"], aoi=NATIVE, crs="EPSG:4326")


def test_corrupt_cog_fails_when_read(tmp_path: Path, sample_items: list) -> None:
    item = sample_items[0].clone()
    good = Path(item.assets["red"].get_absolute_href())
    bad = tmp_path / "red.tif"
    bad.write_bytes(good.read_bytes()[:5000])
    item.assets["red"].href = str(bad)
    ds = load([item], bands=["red"], aoi=NATIVE, crs="EPSG:32631")
    with pytest.raises(rasterio.errors.RasterioIOError):
        ds.red.compute()


def test_affine_helper_is_used_consistently() -> None:
    assert Affine(10, 0, X0, 0, -10, Y1) @ (0, 0) == (X0, Y1)
