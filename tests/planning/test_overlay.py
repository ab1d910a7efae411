"""Overlay of zones with constraint layers: shares on hand-made squares, CRS handling, accounts."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from territoire_geo.errors import ConfigError, CRSMismatchError
from territoire_geo.planning import overlay, soil, zan, zoning

X0, Y0 = 700_000.0, 6_600_000.0


def sq(x0: float, y0: float, x1: float, y1: float) -> object:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def zones(crs: object = 2154) -> gpd.GeoDataFrame:
    """Three 100 × 100 m zones side by side: U | AUc | A, then an N zone far east."""
    return gpd.GeoDataFrame(
        {"LIBELLE": ["Ua", "1AU", "A", "N"], "TYPEZONE": ["U", "AUc", "A", "N"],
         "IDURBA": ["30014_PLU_20171013"] * 4, "DATVALID": ["20171013"] * 4},
        geometry=[sq(0, 0, 100, 100), sq(100, 0, 200, 100), sq(200, 0, 300, 100), sq(600, 0, 700, 100)],
        crs=crs,
    )


def ppr(crs: object = 2154) -> gpd.GeoDataFrame:
    """Red zone over the right half of Ua and left half of 1AU (two overlapping pieces), blue corner."""
    frame = gpd.GeoDataFrame(
        {"codezone": ["R", "R", "B"], "typereg": ["03", "03", "02"]},
        geometry=[sq(50, 0, 150, 100), sq(60, 0, 110, 100), sq(150, 0, 200, 50)], crs=crs,
    )
    return soil.read(frame, "ppr_covadis", crs=crs) if crs is not None else frame


def rga() -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({"NIVEAU": [3, 1]}, geometry=[sq(0, 0, 25, 100), sq(25, 0, 200, 100)], crs=2154)
    return soil.read(frame, "rga")


def test_shares_under_constraint_layers_are_area_shares_without_double_counting() -> None:
    units = overlay.overlay(zones(), ppr(), rga())
    assert units["unit_id"].tolist() == [1, 2, 3, 4] and len(units) == 4  # no slivers: units stay zones
    assert units["area_m2"].tolist() == pytest.approx([10_000] * 4)
    assert units["area_ha"].iloc[0] == pytest.approx(1.0)
    assert units["ppr_red_share"].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.0])  # overlap counted once
    assert units["ppr_blue_share"].tolist() == pytest.approx([0.0, 0.25, 0.0, 0.0])
    assert units["ppr_share"].tolist() == pytest.approx([0.5, 0.75, 0.0, 0.0])
    assert units["rga_strong_share"].tolist() == pytest.approx([0.25, 0.0, 0.0, 0.0])
    assert units["rga_weak_share"].tolist() == pytest.approx([0.75, 1.0, 0.0, 0.0])
    assert units["rga_max"].tolist() == [3, 1, 0, 0]  # uncovered = no exposure
    assert units["rga_classe"].iloc[0] == "exposition faible"  # dominant feature (75 %)
    assert units["ppr_codezone"].iloc[1] == "R"


def test_distances_to_urban_zones_and_user_layers() -> None:
    stops = gpd.GeoDataFrame(geometry=[Point(X0 + 150, Y0 + 150)], crs=2154)
    units = overlay.overlay(zones(), distances={"bus": stops})
    assert units["dist_urban_m"].tolist() == pytest.approx([0.0, 0.0, 100.0, 500.0])
    assert units["dist_bus_m"].tolist() == pytest.approx([np.hypot(50, 50), 50.0, np.hypot(50, 50),
                                                          np.hypot(450, 50)])
    far = overlay.distance_to(units, stops, max_distance=100)
    assert far.isna().tolist() == [False, False, False, True]


def test_prescription_flags_become_shares() -> None:
    psc = gpd.GeoDataFrame({"TYPEPSC": ["01", "05", "01"], "STYPEPSC": ["00", "01", "00"]},
                           geometry=[sq(200, 0, 300, 60), sq(0, 0, 10, 100), sq(250, 0, 300, 100)], crs=2154)
    units = overlay.overlay(zones(), zoning.decode_prescriptions(psc))
    assert units["ebc_share"].tolist() == pytest.approx([0.0, 0.0, 0.8, 0.0])  # union of two EBC
    assert units["er_share"].tolist() == pytest.approx([0.1, 0.0, 0.0, 0.0])
    assert units["plu_codes"].tolist() == ["05-01", "", "01-00", ""]


def test_parcels_are_cut_by_zones_and_slivers_dropped(caplog: pytest.LogCaptureFixture) -> None:
    parcels = gpd.GeoDataFrame({"id": ["P1", "P2"]},
                               geometry=[sq(50, 0, 150, 50), sq(199.5, 50, 260, 100)], crs=2154)
    with caplog.at_level(logging.INFO, logger="territoire_geo.planning"):
        units = overlay.overlay(zones(), ppr(), parcels=parcels, min_area_m2=30.0)
    assert "slivers" in caplog.text
    assert units[["parcel_id", "LIBELLE"]].values.tolist() == [["P1", "Ua"], ["P1", "1AU"], ["P2", "A"]]
    assert units["area_m2"].tolist() == pytest.approx([2500.0, 2500.0, 3000.0])
    assert units["ppr_red_share"].tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_layers_in_another_crs_are_reprojected_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="territoire_geo.planning"):
        units = overlay.overlay(zones(), ("flood", ppr().to_crs(4326)))
    assert "reprojecting layer flood from EPSG:4326 to EPSG:2154" in caplog.text
    assert units["flood_share"].tolist() == pytest.approx([0.5, 0.75, 0.0, 0.0], abs=1e-4)


def test_missing_crs_is_refused() -> None:
    with pytest.raises(CRSMismatchError, match="no CRS"):
        overlay.overlay(zones(), ("flood", ppr().set_crs(None, allow_override=True)))
    with pytest.raises(CRSMismatchError, match="no CRS"):
        overlay.overlay(zones(crs=None))


def test_layer_names_and_conflicts() -> None:
    with pytest.raises(ConfigError, match="give a name"):
        overlay.overlay(zones(), gpd.GeoDataFrame(geometry=[sq(0, 0, 10, 10)], crs=2154))
    with pytest.raises(ConfigError, match="same column"):
        overlay.overlay(zones(), ppr(), ppr())
    spec = overlay.Layer("wet", gpd.GeoDataFrame({"kind": ["a", "b"]}, geometry=[sq(0, 0, 50, 100),
                                                                              sq(100, 0, 150, 100)], crs=2154),
                       shares={"a": ("kind", ("a",)), "": None}, keep={"kind": "kind"})
    units = overlay.overlay(zones(), spec)
    assert units["wet_a_share"].tolist() == pytest.approx([0.5, 0.0, 0.0, 0.0])
    assert units["wet_share"].tolist() == pytest.approx([0.5, 0.5, 0.0, 0.0])
    assert units["wet_kind"].tolist()[:2] == ["a", "b"] and pd.isna(units["wet_kind"].iloc[2])


def test_keep_selects_zone_columns_and_dominant_attributes() -> None:
    units = overlay.overlay(zones(), ppr(), keep={"zones": ["LIBELLE", "TYPEZONE"], "ppr": ["typereg"]})
    assert "IDURBA" not in units.columns and units["ppr_typereg"].iloc[0] == "03"


# --------------------------------------------------------------- artificialisation
def alerts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"class_name": ["new_artificial_surface"] * 3 + ["vegetation_loss"],
         "first_seen": pd.to_datetime(["2022-04-14", "2016-05-01", "2023-06-01", "2022-01-01"])},
        geometry=[sq(120, 10, 180, 90), sq(100, 0, 110, 10), sq(220, 20, 240, 40), sq(0, 0, 90, 90)], crs=2154,
    )


def test_artificialisation_accounts_by_zone_type_and_year() -> None:
    table, au = zan.artificialisation(alerts(), zones())
    by_year = table.set_index("period")
    assert by_year.loc["2022", "area_ha_AUc"] == pytest.approx(0.48)
    assert by_year.loc["2023", "area_ha_A"] == pytest.approx(0.04)
    assert by_year.loc["2023", "share_a_n"] == pytest.approx(1.0)
    assert by_year.loc["2022", "share_a_n"] == pytest.approx(0.0)
    assert set(table["commune"]) == {"30014"}  # from the IDURBA prefix
    assert table["n_alerts"].sum() == 3  # the vegetation-loss patch is not an artificialisation alert
    row = au.iloc[0]
    assert row["LIBELLE"] == "1AU" and row["approval_date"] == pd.Timestamp("2017-10-13")
    assert row["built_since_approval_ha"] == pytest.approx(0.48)  # the 2016 patch predates the PLU
    assert row["built_share"] == pytest.approx(0.48) and row["status"] == "partly_consumed"


def test_artificialisation_with_periods_and_communes() -> None:
    communes = gpd.GeoDataFrame({"insee": ["30014", "30015"]},
                                geometry=[sq(0, -10, 200, 110), sq(200, -10, 800, 110)], crs=2154)
    table, _ = zan.artificialisation(alerts(), zones(), communes, periods=["2021-09-16/2022-04-14"])
    rows = table.set_index(["commune", "period"])
    assert rows.loc[("30014", "2021-09-16/2022-04-14"), "area_ha"] == pytest.approx(0.48)
    assert rows.loc[("30015", "other"), "area_ha_A"] == pytest.approx(0.04)
    _, consumed = zan.artificialisation(alerts(), zones(), consumed=0.4)
    assert consumed["status"].iloc[0] == "consumed"
