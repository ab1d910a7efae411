"""``territoire-geo zoning``: validate (table, JSON, --fix, exit codes) and fetch (loopback API Carto)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from _gpu_fake import GpuFake, real, tiled_zones
from shapely.geometry import box
from territoire_geo_cli.main import app
from typer.testing import CliRunner

from territoire_geo.planning import zoning

runner = CliRunner()
PLU = Path(__file__).resolve().parents[2] / "data_samples" / "plu" / "30014_PLU_20171013"


@pytest.fixture
def fake() -> Iterator[GpuFake]:
    """A loopback API Carto GPU module knowing commune 01004 and its PLU."""
    with GpuFake() as server:
        town = real("municipality")["features"]
        town[0]["properties"].update(insee="01004", name="AMBERIEU-EN-BUGEY")
        document = real("document")["features"]
        document[0]["properties"].update(grid_name="01004", name="01004_PLU_20200101", partition="DU_01004")
        server.data[("municipality", "01004")] = town
        server.data[("document", "DU_01004")] = document
        server.data[("zone-urba", "DU_01004")] = tiled_zones(30)
        server.data[("prescription-pct", "DU_01004")] = []
        yield server


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# ------------------------------------------------------------------ validate
def test_validate_json_on_the_real_arpaillargues_plu() -> None:
    result = runner.invoke(app, ["zoning", "validate", str(PLU), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["blocking"] is False and data["zones"] == 90 and data["cnig_version"] == "2017"
    assert data["overlaps"]["count"] == 8
    overlap = next(i for i in data["issues"] if i["code"] == "overlap")
    assert overlap["count"] == 8 and len(overlap["ids"]) == 8
    counts = {row["TYPEZONE"]: row["n"] for row in data["counts_by_typezone"]}
    assert counts == {"A": 50, "N": 22, "U": 16, "AUc": 2}
    assert data["encodings"]["ZONE_URBA"]["found"] == "cp1252"
    assert any("Z coordinates" in line for line in data["repairs"]) and data["written"] is None


def test_validate_table_is_not_blocking() -> None:
    result = runner.invoke(app, ["zoning", "validate", str(PLU)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for text in ("overlap", "gap", "multipolygon", "duplicate_doc_urba", "796.68", "cp1252",
                 "Repairs when reading", "Not blocking."):  # fmt: skip
        assert text in result.stdout, text
    for typezone, n in (("A", 50), ("N", 22), ("U", 16), ("AUc", 2)):
        assert re.search(rf"│ {typezone}\s+│\s+{n} │", result.stdout), typezone
    assert re.search(r"overlap\s+│ ZONE_URBA\s+│\s+8 │\s+8,366.7 │", result.stdout)


def _shapefile(tmp_path: Path, frame: gpd.GeoDataFrame) -> Path:
    path = tmp_path / "bad" / "99999_ZONE_URBA_20240101.shp"
    path.parent.mkdir()
    frame.to_file(path, engine="pyogrio")
    return path


def test_validate_a_layer_without_mandatory_fields_exits_4_in_one_line(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"NOM": ["zone 1"]}, geometry=[box(700_000, 6_300_000, 700_100, 6_300_100)],
                             crs="EPSG:2154")  # fmt: skip
    result = runner.invoke(app, ["zoning", "validate", str(_shapefile(tmp_path, frame))])
    assert result.exit_code == 4
    assert "LIBELLE" in _one_line(result.stderr) and not result.stdout.strip()


def test_validate_an_empty_shapefile_exits_4(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"LIBELLE": [], "TYPEZONE": []}, geometry=gpd.GeoSeries([], crs="EPSG:2154"))
    result = runner.invoke(app, ["zoning", "validate", str(_shapefile(tmp_path, frame)), "--json"])
    assert result.exit_code == 4
    assert "has no features" in _one_line(result.stderr)


def test_validate_fix_writes_a_repaired_geopackage_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "arpaillargues.gpkg"
    result = runner.invoke(app, ["zoning", "validate", str(PLU), "--fix", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == str(out)
    layers = dict(pyogrio.list_layers(out))
    assert {"zone_urba", "prescription_surf", "prescription_lin", "prescription_pct", "info_surf", "info_pct",
            "doc_urba", "doc_urba_com"} <= set(layers)  # fmt: skip
    zones = gpd.read_file(out, layer="zone_urba")
    assert len(zones) == 90 and zones.crs.to_epsg() == 2154
    assert zones.is_valid.all() and not shapely.has_z(zones.geometry.array).any()
    assert set(zones.geom_type) <= {"Polygon", "MultiPolygon"}
    assert not list(tmp_path.glob("*.part*"))
    again = zoning.read(out)
    assert len(again.zones) == 90 and len(again.doc_urba) == 2
    assert again.zones["TYPEZONE"].value_counts().to_dict() == {"A": 50, "N": 22, "U": 16, "AUc": 2}

    refused = runner.invoke(app, ["zoning", "validate", str(PLU), "--fix", str(out)])
    assert refused.exit_code == 5
    assert "--overwrite" in _one_line(refused.stderr)
    replaced = runner.invoke(app, ["-q", "zoning", "validate", str(PLU), "--fix", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output


# --------------------------------------------------------------------- fetch
def test_fetch_by_insee_writes_a_geopackage(tmp_path: Path, fake: GpuFake) -> None:
    out = tmp_path / "plu_01004.gpkg"
    result = runner.invoke(app, ["zoning", "fetch", "--insee", "01004", "--out", str(out),
                                 "--base-url", fake.base_url, "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["path"] == str(out) and data["cnig_version"] == "apicarto"
    assert data["layers"]["zone_urba"] == 30 and data["layers"]["doc_urba"] == 1
    assert data["layers"]["prescription_pct"] == 0
    zones = gpd.read_file(out, layer="zone_urba")
    assert len(zones) == 30 and zones.crs.to_epsg() == 2154 and set(zones["INSEE"]) == {"01004"}


def test_fetch_table_and_refusals(tmp_path: Path, fake: GpuFake) -> None:
    out = tmp_path / "plu.gpkg"
    args = ["zoning", "fetch", "--partition", "DU_01004", "--out", str(out), "--base-url", fake.base_url]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "zone_urba" in result.stdout and "30" in result.stdout
    before = len(fake.server.requests)
    refused = runner.invoke(app, args)
    assert refused.exit_code == 5 and "--overwrite" in _one_line(refused.stderr)
    assert len(fake.server.requests) == before  # refused before any request
    none = runner.invoke(app, ["zoning", "fetch", "--out", str(tmp_path / "x.gpkg"), "--base-url", fake.base_url])
    assert none.exit_code == 2 and "exactly one of" in _one_line(none.stderr)


def test_fetch_rnu_commune_exits_3(tmp_path: Path, fake: GpuFake) -> None:
    fake.data[("municipality", "01004")][0]["properties"]["is_rnu"] = True
    result = runner.invoke(app, ["-q", "zoning", "fetch", "--insee", "01004", "--out", str(tmp_path / "x.gpkg"),
                                 "--base-url", fake.base_url])  # fmt: skip
    assert result.exit_code == 3 and "RNU" in _one_line(result.stderr)
    assert not (tmp_path / "x.gpkg").exists()
