"""Acceptance on the sample territory: the Arpaillargues PLU scored for a réserve foncière.

Inputs: the real PLU (90 zones), the synthetic soil/risk/nature layers, a 2021 growing-
season NDVI median of the sample Sentinel-2 scenes (dask-backed, computed once by
zonal.stats), the slope of the sample DEM, the bus stop/services and roads layers, and
the planted change polygon standing in for the new-artificial-surface alerts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import rioxarray

from territoire_geo.analysis import terrain, zonal
from territoire_geo.planning import overlay, scoring, soil, zan, zoning

LAYERS = {"rga": "rga_argiles", "ppr_covadis": "ppr_inondation", "znieff1": "znieff1",
          "natura2000": "natura2000", "geology": "geologie_bdcharm50"}


@pytest.fixture(scope="module")
def inputs(samples: Path) -> dict[str, Any]:
    from territoire_geo.imagery import load
    from territoire_geo.sources import search

    plu_dir = samples / "plu" / "30014_PLU_20171013"
    aoi = next(plu_dir.glob("Donnees_geographiques/*ZONE_URBA*.shp"))
    items = search(aoi, "2021-04-01/2021-09-30", source=samples / "stac", collections="sentinel-2-l2a",
                   max_cloud=60)
    ds = load(items, bands=["red", "nir"], aoi=aoi, mask=True)
    ndvi = ((ds.nir - ds.red) / (ds.nir + ds.red)).median("time").astype("float32")
    dem = rioxarray.open_rasterio(next((samples / "stac" / "cop-dem-glo-30").rglob("dem.tif")))
    return {
        "plu": zoning.read(plu_dir),
        "layers": {kind: soil.read(samples / "layers" / f"{name}.gpkg", kind) for kind, name in LAYERS.items()},
        "change": gpd.read_file(samples / "truth" / "planted_change.geojson"),
        "ndvi": ndvi,
        "slope": terrain.slope_percent(terrain.reproject_dem(dem)),
        "distances": {"services": gpd.read_file(samples / "layers" / "services.gpkg"),
                      "roads": gpd.read_file(samples / "layers" / "routes.gpkg")},
    }


def build_units(inputs: dict[str, Any], drop: tuple[str, ...] = ()) -> gpd.GeoDataFrame:
    layers = [layer for kind, layer in inputs["layers"].items() if kind not in drop]
    units = overlay.overlay(inputs["plu"], *layers, ("change_artificial", inputs["change"]),
                          distances=inputs["distances"])
    assert inputs["ndvi"].chunks is not None  # dask-backed: zonal.stats computes it once
    units = zonal.stats(inputs["ndvi"], units, ["mean", "coverage"], prefix="ndvi")
    return zonal.stats(inputs["slope"], units, ["mean"], prefix="slope")


@pytest.fixture(scope="module")
def scored(inputs: dict[str, Any]) -> gpd.GeoDataFrame:
    return scoring.score(build_units(inputs), scoring.load_criteria())


def test_every_zone_is_a_unit_with_full_data(scored: gpd.GeoDataFrame) -> None:
    assert len(scored) == 90
    assert scored["reliability"].min() == pytest.approx(1.0)
    assert scored["ndvi_coverage"].min() > 0.95 and scored["slope_mean"].between(0, 30).all()
    assert scored.loc[scored["LIBELLE"] == "IIAU", "change_artificial_share"].iloc[0] == pytest.approx(0.52, abs=0.02)


def test_au_zones_rank_first_among_candidates(scored: gpd.GeoDataFrame) -> None:
    ranked = scored[scored["rank"].notna()].sort_values("rank")
    assert set(ranked["LIBELLE"].head(2)) == {"IAU", "IIAU"}
    assert set(ranked["TYPEZONE"]) <= {"U", "AUc", "AUs"}  # A and N are all excluded
    assert ranked["score"].iloc[1] > ranked["score"].iloc[2]


def test_n_and_ebc_units_are_excluded_with_the_reason(scored: gpd.GeoDataFrame) -> None:
    n_zones = scored[scored["TYPEZONE"] == "N"]
    assert n_zones["excluded"].all() and n_zones["rank"].isna().all()
    wooded = scored[scored["ebc_share"] > 0.5]
    assert len(wooded) >= 5 and wooded["exclusion_rules"].str.contains("ebc").all()
    reasons = scored["exclusion"].value_counts()
    assert reasons["espace boisé classé sur plus de la moitié de la surface"] >= 5
    assert reasons["zone naturelle et forestière (N) protégée par le ZAN"] >= 1
    assert reasons["zone agricole (A) protégée par le ZAN"] >= 40


def test_missing_rga_layer_lowers_reliability(inputs: dict[str, Any]) -> None:
    criteria = scoring.load_criteria()
    without = scoring.score(build_units(inputs, drop=("rga",)), criteria)
    clay = next(c.weight for c in criteria.criteria if c.name == "clay")
    total = sum(c.weight for c in criteria.criteria)
    assert without["reliability"].tolist() == pytest.approx([1 - clay / total] * 90)
    ranked = without[without["rank"].notna()].sort_values("rank")
    assert set(ranked["LIBELLE"].head(2)) == {"IAU", "IIAU"}


def test_ranking_of_au_zones_is_stable_under_weight_changes(inputs: dict[str, Any]) -> None:
    units = build_units(inputs)
    stability = scoring.sensitivity(units, scoring.load_criteria(), n=300, spread=0.2, top_k=2, seed=1)
    au = stability[units["LIBELLE"].isin(["IAU", "IIAU"]).to_numpy()]
    assert (au["top_k_share"] > 0.9).all() and (au["rank_min"] <= 2).all()


def test_planted_change_consumes_the_iiau_zone(inputs: dict[str, Any]) -> None:
    alerts = inputs["change"].assign(first_seen="2022-04-14")
    table, au = zan.artificialisation(alerts, inputs["plu"])
    status = au.set_index("LIBELLE")["status"]
    assert status["IIAU"] == "consumed" and status["IAU"] == "reserve"
    assert table.loc[table["period"] == "2022", "area_ha_AUc"].iloc[0] == pytest.approx(2.54, abs=0.01)
