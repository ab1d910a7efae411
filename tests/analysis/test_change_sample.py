"""Acceptance: the planted change of data_samples is found, and found the same way on any chunking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import dask.array
import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
import xarray as xr

from territoire_geo.analysis import indices
from territoire_geo.analysis.change import classify, patches
from territoire_geo.analysis.composites import composite
from territoire_geo.imagery import load
from territoire_geo.sources import search

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
AOI = SAMPLES / "plu" / "30014_PLU_20171013" / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp"
PERIODS = [("before", "2020-01-01", "2021-12-31"), ("after", "2022-01-01", "2023-12-31")]
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22", "scl"]


def load_sample(chunks: dict[str, int] | None = None) -> xr.Dataset:
    items = search(AOI, "2020/2023", source=SAMPLES / "stac", collections="sentinel-2-l2a")
    return load(items, bands=BANDS, aoi=AOI, mask=True, chunks=chunks)


def run_change(ds: xr.Dataset) -> dict[str, Any]:
    """indices -> period composites -> classes -> patches, on a loaded (lazy or numpy) cube."""
    idx = indices.compute(ds, ["ndvi", "ndbi", "bsi", "mndwi"]).assign_coords(spatial_ref=ds.spatial_ref)
    comp = composite(idx, period=PERIODS)
    classes = classify(comp.sel(period="before"), comp.sel(period="after"))
    lazy = isinstance(classes.data, dask.array.Array)
    comp, classes, ndvi = dask.compute(comp, classes, idx.ndvi)
    found = patches(classes, before=comp.sel(period="before"), after=comp.sel(period="after"), first_seen=ndvi)
    return {"comp": comp, "classes": classes, "patches": found, "lazy": lazy}


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    ds = load_sample()
    return {
        "dask": run_change(ds),  # one 2048 chunk covers the territory
        "dask_128": run_change(ds.chunk({"x": 128, "y": 128})),
        "numpy": run_change(ds.compute()),
        "load_128": run_change(load_sample({"x": 128, "y": 128})),
    }


@pytest.fixture(scope="module")
def truth() -> gpd.GeoDataFrame:
    return gpd.read_file(SAMPLES / "truth" / "planted_change.geojson")


def burn(geometry: Any, like: xr.DataArray) -> np.ndarray:
    return rasterio.features.rasterize([(geometry, 1)], out_shape=like.shape, transform=like.rio.transform(),
                                       fill=0, dtype="uint8").astype(bool)


def test_new_artificial_surface_recall_and_precision(results: dict[str, Any], truth: gpd.GeoDataFrame) -> None:
    classes = results["dask"]["classes"]
    planted = burn(truth.geometry.iloc[0], classes)
    detected = classes.values == 3
    hits = int((detected & planted).sum())
    recall, precision = hits / planted.sum(), hits / detected.sum()
    print(f"\nplanted {planted.sum()} px, detected {detected.sum()} px, recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.9
    assert precision >= 0.8


def test_patch_area_matches_planted_area(results: dict[str, Any], truth: gpd.GeoDataFrame) -> None:
    found = results["dask"]["patches"]
    planted = truth.geometry.iloc[0]
    overlapping = found[found.intersects(planted)]
    assert overlapping["class"].tolist() == [3]
    area, expected = float(overlapping["area_m2"].iloc[0]), float(truth["area_m2"].iloc[0])
    print(f"\npatch {area:.0f} m² vs planted {expected:.0f} m²: {100 * (area - expected) / expected:+.1f} %")
    assert abs(area - expected) / expected <= 0.15
    patch = overlapping.iloc[0]
    assert str(patch["first_seen"])[:10] == "2022-04-14"  # first scene after the change (2021-09-16 -> 2022-04-14)
    assert patch["mean_before"] >= 0.4 and patch["mean_after"] <= 0.3


def test_very_few_false_alerts(results: dict[str, Any], truth: gpd.GeoDataFrame) -> None:
    classes = results["dask"]["classes"]
    near = burn(truth.geometry.iloc[0].buffer(10.0), classes)
    alerts = np.isin(classes.values, [1, 2, 3, 4, 5])
    false = int((alerts & ~near).sum())
    print(f"\nchange pixels away from the planted field: {false} of {classes.size}")
    assert false <= classes.size * 1e-4
    found = results["dask"]["patches"]
    assert len(found[~found.intersects(truth.geometry.iloc[0])]) == 0
    assert int((classes.values == 255).sum()) == 0  # every pixel has >= 2 clear observations per period
    assert int(results["dask"]["comp"]["valid_count"].min()) >= 4


def assert_same(reference: dict[str, Any], other: dict[str, Any], *, atol: float = 0.0) -> None:
    np.testing.assert_array_equal(reference["classes"].values, other["classes"].values)
    for name in ("ndvi", "ndbi", "bsi", "mndwi"):
        np.testing.assert_allclose(reference["comp"][name].values, other["comp"][name].values, rtol=0, atol=atol,
                                   err_msg=name)
    np.testing.assert_array_equal(reference["comp"]["valid_count"].values, other["comp"]["valid_count"].values)
    assert reference["patches"].drop(columns="geometry").equals(other["patches"].drop(columns="geometry"))
    assert reference["patches"].geometry.geom_equals(other["patches"].geometry).all()


def test_identical_on_numpy_one_chunk_and_many_chunks(results: dict[str, Any]) -> None:
    assert results["dask"]["lazy"] and results["dask_128"]["lazy"] and not results["numpy"]["lazy"]
    assert_same(results["dask"], results["dask_128"])
    assert_same(results["dask"], results["numpy"])


def test_load_chunking_moves_composites_slightly_but_not_the_change(results: dict[str, Any]) -> None:
    reference, other = results["dask"], results["load_128"]
    difference = float(np.nanmax(np.abs(reference["comp"]["ndvi"].values - other["comp"]["ndvi"].values)))
    print(f"\nmax |ΔNDVI composite| between load chunks 2048 and 128: {difference:.4f}")
    drop = ["mean_before", "mean_after"]
    assert_same({**reference, "patches": reference["patches"].drop(columns=drop)},
                {**other, "patches": other["patches"].drop(columns=drop)}, atol=0.01)


@pytest.mark.xfail(strict=True, reason="load() warps each output chunk on its own (GDAL approximate "
                   "transformer): 128 px chunks give reflectances a few DN away from one 2048 px chunk")
def test_load_chunking_is_bit_identical(results: dict[str, Any]) -> None:
    assert_same(results["dask"], results["load_128"])
