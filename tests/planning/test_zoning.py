"""Reading CNIG PLU data: real samples, every container format, hand-made broken files."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box

from territoire_geo.errors import DataError, SchemaError, SchemaWarning
from territoire_geo.planning import zoning

HERE = Path(__file__).parents[1]  # tests/


def _real_root() -> Path:
    """Copies shipped with the tests, else the shared folder next to the repository."""
    local = HERE / "data" / "real"
    if (local / "france").is_dir():
        return local
    return Path(__file__).parents[2].parent / "shared" / "data" / "real"


REAL = _real_root() / "france"
ARPA = REAL / "cnig_plu_30014_arpaillargues_2017"
PEZOU = REAL / "cnig_plu_41175_pezou_2014"
APICARTO = REAL / "gpu_apicarto" / "zone_urba_point_query_17345.geojson"
TEMPLATE = Path(__file__).parents[2].parent / "shared" / "data" / "cnig" / "Gabarit_PLU_CC_CNIG_v2024-01.zip"


@pytest.fixture(scope="module")
def arpa() -> zoning.ZoningSet:
    return zoning.read(ARPA)


@pytest.fixture(scope="module")
def pezou() -> zoning.ZoningSet:
    return zoning.read(PEZOU)


def squares(n: int, size: float = 100.0, x0: float = 700_000.0, y0: float = 6_600_000.0) -> list[Polygon]:
    return [box(x0 + i * size, y0, x0 + (i + 1) * size, y0 + size) for i in range(n)]


def zone_frame(n: int = 3, crs: object = 2154, **columns: object) -> gpd.GeoDataFrame:
    data = {"LIBELLE": ["Ua", "1AU", "N"][:n], "TYPEZONE": ["U", "AUc", "N"][:n], **columns}
    return gpd.GeoDataFrame(data, geometry=squares(n), crs=crs)


# ------------------------------------------------------------------ real data
def test_arpaillargues_2017(arpa: zoning.ZoningSet) -> None:
    zones = arpa.zones
    assert len(zones) == 90
    assert zones["TYPEZONE"].value_counts().to_dict() == {"A": 50, "N": 22, "U": 16, "AUc": 2}
    assert arpa.cnig_version == arpa.CNIG_VERSION == "2017"
    assert zones.crs.to_epsg() == 2154
    assert not shapely.has_z(np.asarray(zones.geometry.array)).any()
    assert shapely.is_valid(np.asarray(zones.geometry.array)).all()
    assert (zones.geom_type == "MultiPolygon").sum() == 1
    assert any("removed Z coordinates from 90 geometries" in r for r in arpa.repairs)
    assert arpa.fixes["ZONE_URBA"]["z_coordinates"] == 90


def test_arpaillargues_layers_and_codes(arpa: zoning.ZoningSet) -> None:
    sizes = {name: len(frame) for name, frame in arpa.layers().items()}
    assert sizes == {"zone_urba": 90, "prescription_surf": 77, "prescription_lin": 15, "prescription_pct": 93,
                     "info_surf": 18, "info_pct": 6}  # fmt: skip
    assert set(arpa.tables()) == {"doc_urba", "doc_urba_com"}
    assert len(arpa.doc_urba) == 2  # duplicate DOC_URBA rows kept and reported by validate
    assert set(arpa.prescriptions_lin["TYPEPSC"]) == {"15"}  # integer column in the DBF
    assert set(arpa.info_pct["TYPEINF"]) == {"16"}
    assert arpa.doc_urba["ETAT"].iloc[0] == "03"
    assert arpa.doc_urba_com["INSEE"].tolist() == ["30014"]


def test_arpaillargues_cp1252_accents(arpa: zoning.ZoningSet) -> None:
    text = " ".join(arpa.zones["LIBELONG"].dropna())
    assert "Zone urbaine soumise à des prescriptions architecturales particulières" in text
    assert "’" in text  # CP1252 byte 0x92, not a C1 control character
    assert "Ã" not in text and "\x92" not in text
    report = arpa.encodings["ZONE_URBA"]
    assert (report.declared, report.found, report.cpg_lied) == ("1252", "cp1252", False)


def test_pezou_2014(pezou: zoning.ZoningSet) -> None:
    zones = pezou.zones
    assert len(zones) == 118
    assert pezou.cnig_version == "2014"
    assert zones["TYPEZONE"].value_counts().to_dict() == {"A": 49, "N": 37, "U": 24, "AUc": 6, "AUs": 2}
    assert (zones["TYPEZONE_ORIG"] == "Nh").sum() == 29
    assert not zones["TYPEZONE_INFERRED"].any()
    assert set(zones["DESTDOMI"].dropna()) <= {"01", "02", "04", "07", "08"}
    assert set(zones["INSEE"]) == {"41175"}
    assert pezou.doc_urba["IDURBA"].tolist() == ["4117520140603"]
    assert pezou.info_surf is None and pezou.info_pct is None


def test_pezou_utf8_without_cpg(pezou: zoning.ZoningSet) -> None:
    text = " ".join(pezou.zones["LIBELONG"].dropna())
    assert "Zone urbanisée dédiée aux jardins" in text
    assert "Ã" not in text
    report = pezou.encodings["ZONE_URBA"]
    assert (report.declared, report.found, report.repaired) == (None, "utf-8", True)


def test_pezou_ignf_crs_relabelled_not_moved(pezou: zoning.ZoningSet) -> None:
    raw = pyogrio.read_dataframe(PEZOU / "ZONE_URBA.shp")
    assert pezou.zones.crs.to_epsg() == 2154
    np.testing.assert_allclose(pezou.zones.total_bounds, raw.total_bounds, atol=1e-6)


def test_apicarto_geojson() -> None:
    result = zoning.read(APICARTO)
    zones = result.zones
    assert result.cnig_version == "apicarto"
    assert len(zones) == 1 and zones["TYPEZONE"].iloc[0] == "N"
    assert {"GID", "PARTITION", "LIB_IDZONE", "IDURBA", "LIBELONG"} <= set(zones.columns)
    assert zones["DESTDOMI"].iloc[0] is None and zones["INSEE"].iloc[0] is None
    assert zones["LIBELONG"].iloc[0] == "N : Zone naturelle et forestière"
    assert zones.crs.to_epsg() == 2154
    minx, miny, maxx, maxy = zones.total_bounds
    assert 426_000 < minx < maxx < 428_000 and 6_485_000 < miny < maxy < 6_487_000
    assert zones.geom_type.iloc[0] == "MultiPolygon"


def test_other_target_crs() -> None:
    result = zoning.read(APICARTO, crs="EPSG:4326")
    assert result.zones.crs.to_epsg() == 4326
    assert -0.5 < result.zones.total_bounds[0] < -0.48


# ---------------------------------------------------------------- containers
def _gpu_layout(target: Path, source: Path, doc_id: str) -> Path:
    root = target / doc_id
    (root / "Donnees_geographiques").mkdir(parents=True)
    for item in source.iterdir():
        dest = root if "DOC_URBA" in item.name.upper() else root / "Donnees_geographiques"
        shutil.copy(item, dest / item.name)
    (root / "Pieces_ecrites").mkdir()
    (root / "Pieces_ecrites" / "Thumbs.db").write_bytes(b"\x00" * 16)
    return root


def test_gpu_folder_layout(tmp_path: Path) -> None:
    root = _gpu_layout(tmp_path, ARPA, "30014_PLU_20171013")
    xml = '<gmd:MD_CharacterSetCode codeList="http://x#MD_CharacterSetCode" codeListValue="utf8"/>'
    (root / "fr-000030014-plu20171013.xml").write_text(xml)
    result = zoning.read(root.parent)
    assert len(result.zones) == 90 and len(result.doc_urba) == 2
    assert result.metadata_charset == "utf8"


def test_gpu_zip_read_without_extracting(tmp_path: Path) -> None:
    root = _gpu_layout(tmp_path / "src", PEZOU, "41175_PLU_20140603")
    archive = tmp_path / "41175_PLU_20140603.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, path.relative_to(root.parent).as_posix())
    result = zoning.read(archive)
    assert len(result.zones) == 118
    assert "Zone urbanisée dédiée aux jardins" in set(result.zones["LIBELONG"])
    assert len(result.prescriptions_surf) == 23
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "41175_PLU_20140603.zip",
        "src",
    ]  # nothing extracted
    assert set(zoning.find_tables(archive)) >= {"ZONE_URBA", "DOC_URBA", "DOC_URBA_COM", "PRESCRIPTION_SURF"}


def test_upper_case_extensions(tmp_path: Path) -> None:
    for item in PEZOU.iterdir():
        shutil.copy(item, tmp_path / (item.stem + item.suffix.upper()))
    result = zoning.read(tmp_path)
    assert len(result.zones) == 118 and result.doc_urba is not None


def test_loose_shapefiles_list() -> None:
    result = zoning.read(
        [ARPA / "30014_ZONE_URBA_20171013.shp", ARPA / "30014_PRESCRIPTION_SURF_20171013.shp"]
    )
    assert len(result.zones) == 90 and len(result.prescriptions_surf) == 77
    assert result.prescriptions_lin is None


def test_single_prescription_file_is_not_zoning() -> None:
    with pytest.raises(DataError, match="no ZONE_URBA"):
        zoning.read(ARPA / "30014_PRESCRIPTION_SURF_20171013.shp")


@pytest.fixture(scope="module")
def pezou_plain(pezou: zoning.ZoningSet) -> gpd.GeoDataFrame:
    return pezou.zones.drop(columns=["TYPEZONE_ORIG", "TYPEZONE_INFERRED"])


def test_geopackage_case_insensitive_layers(
    tmp_path: Path, pezou: zoning.ZoningSet, pezou_plain: gpd.GeoDataFrame
) -> None:
    path = tmp_path / "plu.gpkg"
    pezou_plain.rename(columns=str.lower).rename_geometry("geom").to_file(path, layer="Zone_Urba")
    pezou.prescriptions_surf.to_file(path, layer="prescription_surf")
    result = zoning.read(path)
    assert len(result.zones) == 118 and len(result.prescriptions_surf) == 23
    assert "TYPEZONE" in result.zones.columns


def test_geopackage_explicit_layer(tmp_path: Path, pezou_plain: gpd.GeoDataFrame) -> None:
    path = tmp_path / "export.gpkg"
    pezou_plain.to_file(path, layer="zonage_plu")
    pezou_plain.iloc[:3].to_file(path, layer="autre")
    assert len(zoning.read(path, layer="zonage_plu").zones) == 118
    with pytest.raises(DataError, match="no layer"):
        zoning.read(path, layer="missing")


def test_gml_restores_codes(tmp_path: Path, arpa: zoning.ZoningSet) -> None:
    path = tmp_path / "zone_urba.gml"
    arpa.zones.drop(columns=["TYPEZONE_ORIG", "TYPEZONE_INFERRED"]).to_file(path, driver="GML")
    psc = tmp_path / "prescription_pct.gml"
    arpa.prescriptions_pct.assign(TYPEPSC=arpa.prescriptions_pct["TYPEPSC"].astype(int)).to_file(
        psc, driver="GML"
    )
    result = zoning.read(path)
    assert len(result.zones) == 90 and result.zones.crs.to_epsg() == 2154
    assert not list(tmp_path.glob("*.gfs"))  # reading leaves no side files
    points = zoning.read([path, psc]).prescriptions_pct
    assert set(points["TYPEPSC"]) == {"07"}


def test_mapinfo_tab(tmp_path: Path, pezou_plain: gpd.GeoDataFrame) -> None:
    path = tmp_path / "zonage.tab"
    pezou_plain.to_file(path, driver="MapInfo File")
    result = zoning.read(path)
    assert len(result.zones) == 118
    assert "Zone urbanisée dédiée aux jardins" in set(result.zones["LIBELONG"])


def test_geoparquet(tmp_path: Path, pezou_plain: gpd.GeoDataFrame) -> None:
    path = tmp_path / "zones.parquet"
    pezou_plain.to_crs(4326).to_parquet(path)
    result = zoning.read(path)
    assert len(result.zones) == 118 and result.zones.crs.to_epsg() == 2154


def test_in_memory_frame_lower_case_numeric_codes() -> None:
    frame = gpd.GeoDataFrame(
        {"libelle": ["Ua", "2AU"], "type_zone": ["u", "AUS"], "destdomi": [1, 3.0], "insee": [1004, 1004]},
        geometry=squares(2),
        crs=2154,
    )
    result = zoning.read(frame)
    zones = result.zones
    assert zones["TYPEZONE"].tolist() == ["U", "AUs"]
    assert zones["DESTDOMI"].tolist() == ["01", "03"]
    assert zones["INSEE"].tolist() == ["01004", "01004"]
    assert result.source == "<memory>"


def test_mapping_of_tables() -> None:
    doc = pd.DataFrame({"idurba": ["X_PLU_20200101", "X_PLU_20200101"], "etat": [3, 3]})
    result = zoning.read({"zone_urba": zone_frame(), "DOC_URBA": doc})
    assert result.doc_urba["ETAT"].tolist() == ["03", "03"]
    with pytest.raises(DataError, match="unknown CNIG table"):
        zoning.read({"zone_urba": zone_frame(), "whatever": doc})


@pytest.mark.skipif(not TEMPLATE.exists(), reason="CNIG template archive not available")
def test_cnig_2024_template_layout_and_fields() -> None:
    found = zoning.find_tables(TEMPLATE)
    assert {"ZONE_URBA", "PRESCRIPTION_SURF", "INFO_PCT", "DOC_URBA", "DOC_URBA_COM"} <= set(found)
    zone_path = next(p for p in found["ZONE_URBA"] if "_PLU_DATAPPRO" in p)
    fields = pyogrio.read_info(zone_path)["fields"]
    assert {zoning._cnig.normalize_field_name(f) for f in fields} >= {"FORMDOMI", "DESTOUI", "SYMBOLE"}
    assert all(zoning._cnig.normalize_field_name(f) in zoning._cnig.CNIG_FIELDS for f in fields)
    with pytest.raises(DataError, match="has no features"):
        zoning.read(TEMPLATE)  # the template is empty


# ------------------------------------------------------------- broken files
def test_self_intersection_repaired(tmp_path: Path) -> None:
    bowtie = Polygon([(700000, 6600000), (700100, 6600100), (700100, 6600000), (700000, 6600100)])
    frame = gpd.GeoDataFrame({"LIBELLE": ["Ua"], "TYPEZONE": ["U"]}, geometry=[bowtie], crs=2154)
    frame.to_file(tmp_path / "ZONE_URBA.shp")
    result = zoning.read(tmp_path / "ZONE_URBA.shp")
    geom = result.zones.geometry.iloc[0]
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and geom.area == pytest.approx(5000)
    assert any("make_valid" in r for r in result.repairs)


def test_lost_leading_zeros_in_dbf(tmp_path: Path) -> None:
    zone_frame().to_file(tmp_path / "ZONE_URBA.shp")
    points = gpd.GeoDataFrame(
        {"LIBELLE": ["a", "b"], "TYPEPSC": [7, 5], "STYPEPSC": [1.0, 4.0]},
        geometry=gpd.points_from_xy([700050, 700150], [6600050, 6600050]),
        crs=2154,
    )
    points.to_file(tmp_path / "PRESCRIPTION_PCT.shp")
    assert pyogrio.read_info(tmp_path / "PRESCRIPTION_PCT.shp")["dtypes"][1] == "int64"
    result = zoning.read(tmp_path)
    assert result.prescriptions_pct["TYPEPSC"].tolist() == ["07", "05"]
    assert result.prescriptions_pct["STYPEPSC"].tolist() == ["01", "04"]
    assert any("leading zeros" in r for r in result.repairs)


def _write_text_shapefile(folder: Path, encoding: str, cpg: str | None) -> Path:
    frame = zone_frame(LIBELONG=["Zone urbanisée à l’été", "Zone à urbaniser", "Naturelle et forestière"])
    path = folder / "ZONE_URBA.shp"
    frame.to_file(path, encoding=encoding)
    cpg_path = path.with_suffix(".cpg")
    if cpg is None:
        cpg_path.unlink(missing_ok=True)
    else:
        cpg_path.write_text(cpg)
    return path


@pytest.mark.parametrize(
    ("encoding", "cpg", "found", "lied"),
    [("cp1252", "UTF-8", "cp1252", True), ("utf-8", "1252", "utf-8", True), ("utf-8", None, "utf-8", False),
     ("cp1252", None, "cp1252", False), ("cp1252", "1252", "cp1252", False)],
)  # fmt: skip
def test_encoding_detection_ignores_lying_cpg(
    tmp_path: Path, encoding: str, cpg: str | None, found: str, lied: bool
) -> None:
    path = _write_text_shapefile(tmp_path, encoding, cpg)
    result = zoning.read(path)
    assert result.zones["LIBELONG"].iloc[0] == "Zone urbanisée à l’été"
    report = result.encodings["ZONE_URBA"]
    assert (report.declared, report.found, report.cpg_lied) == (cpg, found, lied)


def test_double_encoded_text_repaired() -> None:
    frame = zone_frame(LIBELONG=["Zone urbanisÃ©e", "ok", None])
    result = zoning.read(frame)
    assert result.zones["LIBELONG"].tolist() == ["Zone urbanisée", "ok", None]
    assert result.encodings["ZONE_URBA"].mojibake_fixed == 1


def test_missing_typezone_inferred(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"LIBELLE": ["Ua", "1AUh", "2AU", "Nh", "Ap"]}, geometry=squares(5), crs=2154)
    frame.to_file(tmp_path / "ZONE_URBA.shp")
    with pytest.warns(SchemaWarning, match="inferred from LIBELLE"):
        result = zoning.read(tmp_path / "ZONE_URBA.shp")
    assert result.zones["TYPEZONE"].tolist() == ["U", "AUc", "AUs", "N", "A"]
    assert result.zones["TYPEZONE_INFERRED"].all()


def test_empty_typezone_values_inferred() -> None:
    frame = zone_frame()
    frame["TYPEZONE"] = ["U", "", None]
    with pytest.warns(SchemaWarning):
        zones = zoning.read(frame).zones
    assert zones["TYPEZONE"].tolist() == ["U", "AUc", "N"]
    assert zones["TYPEZONE_INFERRED"].tolist() == [False, True, True]


def test_missing_mandatory_fields() -> None:
    frame = gpd.GeoDataFrame({"NOM": ["a"]}, geometry=squares(1), crs=2154)
    with pytest.raises(SchemaError, match=r"LIBELLE, TYPEZONE"):
        zoning.read(frame)
    with pytest.raises(SchemaError, match="LIBELLE"):
        zoning.read(gpd.GeoDataFrame({"TYPEZONE": ["U"]}, geometry=squares(1), crs=2154))
    with pytest.raises(SchemaError, match="TYPEZONE"):
        zoning.read(gpd.GeoDataFrame({"LIBELLE": ["ZAC"]}, geometry=squares(1), crs=2154))


def test_z_coordinates_removed(tmp_path: Path) -> None:
    polys = [shapely.force_3d(g, 55.0) for g in squares(3)]
    zone_frame().set_geometry(polys).to_file(tmp_path / "ZONE_URBA.shp")
    assert "Z" in pyogrio.read_info(tmp_path / "ZONE_URBA.shp")["geometry_type"]
    result = zoning.read(tmp_path / "ZONE_URBA.shp")
    assert not result.zones.has_z.any()
    assert result.fixes["ZONE_URBA"]["z_coordinates"] == 3


def test_empty_file(tmp_path: Path) -> None:
    pyogrio.write_dataframe(zone_frame().iloc[:0], tmp_path / "ZONE_URBA.shp", geometry_type="Polygon")
    with pytest.raises(DataError, match="has no features"):
        zoning.read(tmp_path / "ZONE_URBA.shp")


def _without_prj(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path)
    path.with_suffix(".prj").unlink()
    return path


def test_no_crs_lambert_assumed(tmp_path: Path) -> None:
    _without_prj(zone_frame(), tmp_path / "ZONE_URBA.shp")
    with pytest.warns(SchemaWarning, match="EPSG:2154 was assumed"):
        result = zoning.read(tmp_path / "ZONE_URBA.shp")
    assert result.zones.crs.to_epsg() == 2154
    assert any("assumed EPSG:2154" in r for r in result.repairs)


def test_no_crs_lonlat_refused(tmp_path: Path) -> None:
    lonlat = [box(2.0 + i * 0.01, 48.0, 2.01 + i * 0.01, 48.01) for i in range(3)]
    _without_prj(zone_frame(crs=4326).set_geometry(lonlat, crs=4326), tmp_path / "ZONE_URBA.shp")
    with pytest.raises(DataError, match="source_crs"):
        zoning.read(tmp_path / "ZONE_URBA.shp")
    result = zoning.read(tmp_path / "ZONE_URBA.shp", source_crs="EPSG:4326")
    assert result.zones.crs.to_epsg() == 2154
    assert 600_000 < result.zones.total_bounds[0] < 700_000


def test_wrong_geometry_type(tmp_path: Path) -> None:
    lines = [LineString([(700000, 6600000), (700100, 6600100)])] * 3
    zone_frame().set_geometry(lines).to_file(tmp_path / "ZONE_URBA.shp")
    with pytest.raises(SchemaError, match="expected polygons, found LineString"):
        zoning.read(tmp_path / "ZONE_URBA.shp")


def test_missing_path() -> None:
    with pytest.raises(DataError, match="no such file"):
        zoning.read("/nonexistent/plu.zip")


def _evil_zip(path: Path, member: str, *, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for item in ARPA.iterdir():
            zf.write(item, f"30014_PLU_20171013/{item.name}")
        info = zipfile.ZipInfo(member)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd" if symlink else "x")
    return path


@pytest.mark.parametrize(
    ("member", "symlink"),
    [("../evil.shp", False), ("30014_PLU_20171013/../../evil.shp", False), ("/etc/evil.shp", False),
     ("C:\\evil.shp", False), ("30014_PLU_20171013/link.shp", True)],
)  # fmt: skip
def test_zip_escapes_refused(tmp_path: Path, member: str, symlink: bool) -> None:
    archive = _evil_zip(tmp_path / "plu.zip", member, symlink=symlink)
    with pytest.raises(DataError, match="refusing archive member"):
        zoning.read(archive)
    assert sorted(os.listdir(tmp_path)) == ["plu.zip"]


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "plu.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        zoning.read(tmp_path / "plu.zip")


def test_layers_are_writable(tmp_path: Path, arpa: zoning.ZoningSet) -> None:
    path = tmp_path / "out.gpkg"
    for name, frame in arpa.layers().items():
        frame.to_file(path, layer=name)
    assert sorted(str(r[0]) for r in pyogrio.list_layers(path)) == sorted(arpa.layers())
    again = zoning.read(path)
    assert len(again.zones) == 90 and again.zones["TYPEZONE_ORIG"].notna().all()


def test_fix_is_idempotent_on_read_sets(arpa: zoning.ZoningSet) -> None:
    fixed = zoning.fix(arpa)
    pd.testing.assert_frame_equal(
        pd.DataFrame(fixed.zones.drop(columns="geometry")), pd.DataFrame(arpa.zones.drop(columns="geometry"))
    )
    assert fixed.zones.geometry.geom_equals(arpa.zones.geometry).all()
