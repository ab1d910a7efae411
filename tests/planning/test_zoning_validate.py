"""Validation report and prescription decoding on real and synthetic CNIG data."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely.geometry import Polygon, box

from territoire_geo.errors import SchemaError
from territoire_geo.planning import zoning
from territoire_geo.planning._zoning_validate import find_gaps, find_overlaps


def _real_root() -> Path:
    local = Path(__file__).parents[1] / "data" / "real"
    if (local / "france").is_dir():
        return local
    return Path(__file__).parents[2].parent / "shared" / "data" / "real"


REAL = _real_root() / "france"


@pytest.fixture(scope="module")
def arpa() -> zoning.ZoningSet:
    return zoning.read(REAL / "cnig_plu_30014_arpaillargues_2017")


@pytest.fixture(scope="module")
def pezou() -> zoning.ZoningSet:
    return zoning.read(REAL / "cnig_plu_41175_pezou_2014")


@pytest.fixture(scope="module")
def arpa_report(arpa: zoning.ZoningSet) -> zoning.ValidationReport:
    return zoning.validate(arpa)


@pytest.fixture(scope="module")
def pezou_report(pezou: zoning.ZoningSet) -> zoning.ValidationReport:
    return zoning.validate(pezou)


def one(report: zoning.ValidationReport, code: str, layer: str = "ZONE_URBA") -> zoning.Issue:
    found = [i for i in report.by_code(code) if i.layer == layer]
    assert len(found) == 1, [(i.code, i.layer) for i in report.issues]
    return found[0]


def hand_set(geoms: list, crs: object = 2154, **columns: object) -> zoning.ZoningSet:
    n = len(geoms)
    data = {"LIBELLE": [f"U{i}" for i in range(n)], "TYPEZONE": ["U"] * n, **columns}
    return zoning.ZoningSet(zones=gpd.GeoDataFrame(data, geometry=geoms, crs=crs))


# ------------------------------------------------------------------ real data
def test_arpaillargues_topology(arpa_report: zoning.ValidationReport) -> None:
    overlap = one(arpa_report, "overlap")
    assert overlap.count == 8 == len(arpa_report.overlaps)
    assert overlap.area_m2 == pytest.approx(8366.7, abs=1.0)  # 0.84 ha
    assert len(overlap.ids) == 8 and all(i < j for i, j in overlap.ids)
    gap = one(arpa_report, "gap")
    assert gap.count == 25 and gap.area_m2 == pytest.approx(7.5, abs=0.1)
    assert one(arpa_report, "multipolygon").count == 1
    assert one(arpa_report, "z_coordinates").severity == "info"


def test_arpaillargues_metadata(arpa_report: zoning.ValidationReport) -> None:
    dup = one(arpa_report, "duplicate_doc_urba", "DOC_URBA")
    assert dup.ids == ["30014_PLU_20171013"] and dup.count == 2
    unknown = one(arpa_report, "unknown_code", "INFO_SURF")
    assert "04-99" in unknown.message and unknown.count == 1
    assert "30014_PLU_20141013" in one(arpa_report, "idurba_mismatch", "INFO_SURF").message
    assert not arpa_report.by_code("encoding_repaired")  # .cpg 1252 was right
    assert not arpa_report.blocking
    counts = arpa_report.counts_by_typezone
    assert counts["n"].to_dict() == {"A": 50, "N": 22, "U": 16, "AUc": 2}
    assert counts["area_ha"].sum() == pytest.approx(1369.2, abs=1.0)


def test_pezou_topology(pezou_report: zoning.ValidationReport) -> None:
    overlap = one(pezou_report, "overlap")
    assert overlap.count == 157 and overlap.area_m2 == pytest.approx(4709.1, abs=1.0)  # 0.47 ha
    gap = one(pezou_report, "gap")
    assert gap.count == 236 and "233 under 100 m²" in gap.message
    assert one(pezou_report, "multipolygon").count == 7


def test_pezou_legacy_and_encoding(pezou_report: zoning.ValidationReport) -> None:
    assert "Nh ×29" in one(pezou_report, "typezone_legacy").message
    assert one(pezou_report, "encoding_repaired").message == "no .cpg, text is utf-8"
    assert "2011" in one(pezou_report, "bad_date", "DOC_URBA").message
    assert pezou_report.counts_by_typezone["n"].to_dict() == {"A": 49, "N": 37, "U": 24, "AUc": 6, "AUs": 2}
    assert not pezou_report.blocking


def test_report_serialisation(arpa_report: zoning.ValidationReport) -> None:
    payload = json.loads(json.dumps(arpa_report.to_dict()))
    assert payload["overlaps"]["count"] == 8 and payload["gaps"]["count"] == 25
    assert payload["cnig_version"] == "2017" and payload["blocking"] is False
    assert {"severity", "code", "message", "count", "area_m2", "ids"} <= set(payload["issues"][0])
    assert payload["encodings"]["ZONE_URBA"]["found"] == "cp1252"
    text = arpa_report.to_text()
    assert "overlap" in text and "TYPEZONE" in text and "Not blocking." in text


def test_overlaps_frame(arpa_report: zoning.ValidationReport) -> None:
    overlaps = arpa_report.overlaps
    assert {"index_left", "index_right", "LIBELLE_left", "TYPEZONE_right", "area_m2"} <= set(overlaps.columns)
    assert overlaps.crs.to_epsg() == 2154
    assert (overlaps["area_m2"] > 0.01).all()
    assert shapely.area(overlaps.geometry.to_numpy()).sum() == pytest.approx(overlaps["area_m2"].sum())


# -------------------------------------------------------------- synthetic
def test_overlap_and_gap_detected() -> None:
    geoms = [box(0, 0, 100, 100), box(90, 0, 200, 100), box(0, 100, 200, 200), box(0, 200, 50, 300)]
    ring = [box(0, 0, 300, 100), box(0, 100, 100, 200), box(200, 100, 300, 200), box(0, 200, 300, 300)]
    overlaps = find_overlaps(gpd.GeoDataFrame(geometry=geoms, crs=2154))
    assert overlaps[["index_left", "index_right"]].values.tolist() == [[0, 1]]
    assert overlaps["area_m2"].iloc[0] == pytest.approx(1000)
    gaps = find_gaps(gpd.GeoDataFrame(geometry=ring, crs=2154))
    assert len(gaps) == 1 and gaps["area_m2"].iloc[0] == pytest.approx(10_000)
    report = zoning.validate(hand_set(ring))
    assert one(report, "gap").count == 1 and not report.by_code("overlap")


def test_touching_zones_are_not_overlaps() -> None:
    report = zoning.validate(hand_set([box(0, 0, 1, 1), box(1, 0, 2, 1), box(1.0 - 1e-9, 1, 2, 2)]))
    assert not report.by_code("overlap")


def test_invalid_geometry_reported_and_fixed() -> None:
    bowtie = Polygon([(0, 0), (100, 100), (100, 0), (0, 100)])
    raw = hand_set([bowtie, box(200, 0, 300, 100)])
    report = zoning.validate(raw)
    assert one(report, "invalid_geometry").severity == "error" and not report.blocking
    fixed = zoning.fix(raw)
    assert fixed.zones.is_valid.all()
    assert "invalid_geometry" not in {i.code for i in zoning.validate(fixed).issues if i.severity == "error"}
    assert fixed.fixes["ZONE_URBA"]["invalid_geometry"] == 1


def test_z_reported_and_fixed() -> None:
    raw = hand_set([shapely.force_3d(box(0, 0, 1, 1), 3.0)])
    assert one(zoning.validate(raw), "z_coordinates").severity == "warning"
    fixed = zoning.fix(raw)
    assert not fixed.zones.has_z.any()
    assert one(zoning.validate(fixed), "z_coordinates").severity == "info"


def test_fix_normalises_hand_built_attributes() -> None:
    raw = hand_set([box(0, 0, 1, 1), box(1, 0, 2, 1)], TYPEZONE=["auc", "Nh"], DESTDOMI=[1, 8])
    fixed = zoning.fix(raw)
    assert fixed.zones["TYPEZONE"].tolist() == ["AUc", "N"]
    assert fixed.zones["TYPEZONE_ORIG"].tolist() == ["auc", "Nh"]
    assert fixed.zones["DESTDOMI"].tolist() == ["01", "08"]


@pytest.mark.parametrize(
    ("zoning_set", "code"),
    [
        (
            zoning.ZoningSet(zones=gpd.GeoDataFrame({"LIBELLE": [], "TYPEZONE": []}, geometry=[], crs=2154)),
            "no_zones",
        ),
        (
            zoning.ZoningSet(
                zones=gpd.GeoDataFrame({"TYPEZONE": ["U"]}, geometry=[box(0, 0, 1, 1)], crs=2154)
            ),
            "missing_field",
        ),
        (
            zoning.ZoningSet(
                zones=gpd.GeoDataFrame({"LIBELLE": ["U"], "TYPEZONE": ["U"]}, geometry=[box(0, 0, 1, 1)])
            ),
            "no_crs",
        ),
    ],
)
def test_blocking_errors(zoning_set: zoning.ZoningSet, code: str) -> None:
    report = zoning.validate(zoning_set)
    assert report.blocking
    assert code in report.codes
    assert "BLOCKING" in report.to_text()
    json.dumps(report.to_dict())


def test_unknown_typezone_is_error_not_blocking() -> None:
    report = zoning.validate(hand_set([box(0, 0, 1, 1), box(1, 0, 2, 1)], TYPEZONE=["UX", "U"]))
    issue = one(report, "unknown_code")
    assert issue.severity == "error" and "UX" in issue.message and issue.ids == [0]
    assert not report.blocking


def test_dates_checked() -> None:
    zs = hand_set(
        [box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)],
        DATAPPRO=["20200101", "20200101", "20200101"],
        DATVALID=["20210101", "2020-13-01", "20190101"],
    )
    messages = [i.message for i in zoning.validate(zs).by_code("bad_date")]
    assert any("DATVALID later than DATAPPRO" in m for m in messages)
    assert any("not AAAAMMJJ: 2020-13-01" in m for m in messages)


def test_typezone_inferred_reported() -> None:
    frame = gpd.GeoDataFrame(
        {"LIBELLE": ["Ua", "2AU"]}, geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs=2154
    )
    with pytest.warns(UserWarning, match="inferred"):
        zs = zoning.read(frame)
    assert one(zoning.validate(zs), "typezone_inferred").count == 2


def test_geographic_crs_measured_in_metres() -> None:
    zs = hand_set([box(2.0, 48.0, 2.001, 48.001), box(2.0005, 48.0, 2.002, 48.001)], crs=4326)
    report = zoning.validate(zs)
    assert one(report, "overlap").area_m2 == pytest.approx(0.0005 * 0.001 * 111_000 * 74_000, rel=0.05)


# ----------------------------------------------------------------- decoding
def test_decode_arpaillargues_prescriptions(arpa: zoning.ZoningSet) -> None:
    surf = zoning.decode_prescriptions(arpa.prescriptions_surf)
    assert surf["CODE"].value_counts().to_dict() == {"01-00": 41, "07-05": 14, "99-00": 14, "05-01": 3, "16-03": 2,
                                                     "18-00": 2, "05-04": 1}  # fmt: skip
    assert (surf["IS_EBC"].sum(), surf["IS_ER"].sum(), surf["IS_STECAL"].sum(), surf["IS_OAP"].sum()) == (
        41,
        4,
        2,
        2,
    )
    assert (
        surf.loc[surf["CODE"] == "16-03", "LIBELLE_CODE"]
        .iloc[0]
        .startswith("Secteur de taille et de capacité")
    )
    assert set(surf.loc[surf["IS_EBC"], "CONSTRAINT"]) == {"exclusion"}
    assert isinstance(surf, gpd.GeoDataFrame)
    lin = zoning.decode_prescriptions(arpa.prescriptions_lin)
    assert set(lin["CODE"]) == {"15-01"}


def test_decode_arpaillargues_informations(arpa: zoning.ZoningSet) -> None:
    info = zoning.decode_prescriptions(arpa.info_surf)
    assert info["CODE"].value_counts().to_dict() == {"04-00": 6, "19-01": 5, "16-00": 3, "13-00": 2, "04-99": 1,
                                                     "17-00": 1}  # fmt: skip
    assert info["IS_DPU"].sum() == 6
    assert info.loc[info["CODE"] == "04-99", "LIBELLE_CODE"].isna().all()
    points = zoning.decode_prescriptions(arpa.info_pct)
    assert set(points["CODE"]) == {"16-00"}


def test_decode_pezou_2014_generic_codes(pezou: zoning.ZoningSet) -> None:
    frames = [pezou.prescriptions_surf, pezou.prescriptions_lin, pezou.prescriptions_pct]
    codes = pd.concat([zoning.decode_prescriptions(f)["CODE"] for f in frames])
    assert codes.value_counts().to_dict() == {"07-00": 56, "01-00": 3}


def test_decode_raw_frame_with_integer_codes() -> None:
    frame = pd.DataFrame({"typepsc": [5, 18, 1, 42, None], "stypepsc": [5, 12, None, 0, None]})
    out = zoning.decode_prescriptions(frame)
    assert out["CODE"].tolist() == ["05-05", "18-12", "01-00", "42-00", None]
    assert out["IS_ER"].tolist() == [True, False, False, False, False]
    assert out["IS_OAP_RENATURATION"].tolist() == [False, True, False, False, False]
    assert out["IS_OAP"].tolist() == [False, True, False, False, False]
    with pytest.raises(SchemaError, match="TYPEPSC"):
        zoning.decode_prescriptions(pd.DataFrame({"x": [1]}))


def test_code_lists_shipped() -> None:
    psc = zoning._cnig.code_list("prescriptions")
    assert {"code", "TYPE", "STYPE", "libelle", "land_reserve_flag"} <= set(psc.columns)
    assert psc["code"].is_unique and psc["code"].str.fullmatch(r"\d{2}-\d{2}").all()
    flags = set(psc["land_reserve_flag"]) | set(zoning._cnig.code_list("informations")["land_reserve_flag"])
    assert flags <= {"ebc", "emplacement_reserve", "stecal", "oap", "oap_renaturation", "dpu", "zad", "ens", "paen",
                     "no_build", "heritage", "ecological_continuity", "soil_richness", "coastline_retreat",
                     "renewable", "density", ""}  # fmt: skip
    for name in ("typezone", "destdomi", "formdomi", "destinations"):
        assert len(zoning._cnig.code_list(name)) > 4
    assert "0111" in set(zoning._cnig.code_list("formdomi")["code"])


def test_apicarto_single_part_multipolygon_is_harmless() -> None:
    report = zoning.validate(zoning.read(REAL / "gpu_apicarto" / "zone_urba_point_query_17345.geojson"))
    assert one(report, "multipolygon").severity == "info"
    assert not [i for i in report.issues if i.severity != "info"]
