"""``territoire-geo indices`` and ``territoire-geo change`` on the sample territory."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from territoire_geo_cli.main import app
from typer.testing import CliRunner

from territoire_geo.analysis import indices
from territoire_geo.analysis.composites import composite
from territoire_geo.imagery import load
from territoire_geo.sources import search

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
PLU_SHP = SAMPLES / "plu" / "30014_PLU_20171013" / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp"
BEFORE, AFTER = "2020-01-01/2021-12-31", "2022-01-01/2023-12-31"


def source_args(samples: Path, plu_shp: Path) -> list[str]:
    return ["-s", str(samples / "stac"), "-a", str(plu_shp), "-c", "sentinel-2-l2a"]


def test_indices_list_json() -> None:
    result = runner.invoke(app, ["indices", "--list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert len(rows) > 200
    assert rows["NDVI"]["formula"] == "(nir - red) / (nir + red)" and rows["NDVI"]["first_class"]


def test_indices_list_table() -> None:
    result = runner.invoke(app, ["indices", "--list"], terminal_width=250)
    assert result.exit_code == 0 and "NDVI" in result.output and "Awesome Spectral Indices" in result.output


def test_indices_writes_composites_equal_to_the_library(samples: Path, plu_shp: Path, tmp_path: Path) -> None:
    out = tmp_path / "indices"
    args = ["indices", *source_args(samples, plu_shp), "-p", "2022", "-i", "ndvi,ndbi",
            "--expr", "sv=(nir-red)/(nir+red+0.5)*1.5", "--out", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(p.name for p in out.iterdir()) == ["ndbi_median.tif", "ndvi_median.tif", "sv_median.tif",
                                                     "valid_count.tif"]
    assert [row["index"] for row in report["summary"]] == ["ndvi", "ndbi", "sv"]
    items = search(plu_shp, "2022", source=samples / "stac", collections="sentinel-2-l2a")
    ds = load(items, bands=["red", "nir"], aoi=plu_shp, mask=True)
    expected = composite(indices.ndvi(ds)).compute()
    with rasterio.open(out / "ndvi_median.tif") as src:
        assert src.crs.to_epsg() == 2154 and src.res == (10.0, 10.0)
        assert src.tags()["period"] == "2022-01-01/2022-12-31" and src.tags()["composite"] == "median"
        np.testing.assert_array_equal(src.read(1), expected.values)
    with rasterio.open(out / "valid_count.tif") as src:
        count = src.read(1)
        assert src.dtypes[0] == "uint16"
        np.testing.assert_array_equal(count, expected["valid_count"].values)
    assert 1 <= count.min() and count.max() == 3  # three 2022 scenes, one partly cloudy, one half empty
    with rasterio.open(out / "sv_median.tif") as src:
        sv = src.read(1)
    assert np.nanmax(sv) < 1.5 and report["summary"][2]["mean"] == pytest.approx(float(np.nanmean(sv)), rel=1e-5)


def test_indices_user_errors(samples: Path, plu_shp: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["indices", *source_args(samples, plu_shp), "-p", "2022", "--expr",
                              "x=__import__('os')", "--out", str(tmp_path / "x")], terminal_width=300)
    assert bad.exit_code == 4, bad.output
    assert "expression 'x'" in bad.output and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    missing = runner.invoke(app, ["indices", "-p", "2022"], terminal_width=300)
    assert missing.exit_code == 2 and "--source" in missing.output
    method = runner.invoke(app, ["indices", *source_args(samples, plu_shp), "-p", "2022", "--composite", "mode",
                                 "--out", str(tmp_path / "y")], terminal_width=300)
    assert method.exit_code == 2 and "--composite" in method.output


@pytest.fixture(scope="module")
def change_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, list[str]]:
    out = tmp_path_factory.mktemp("change") / "run"
    args = ["change", *source_args(SAMPLES, PLU_SHP), "--before", BEFORE, "--after", AFTER, "--out", str(out),
            "--min-area", "1000"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout), args


def test_change_outputs_and_summary(change_run: tuple[Path, dict, list[str]], samples: Path) -> None:
    out, report, _ = change_run
    assert sorted(p.name for p in out.iterdir()) == ["change_classes.tif", "change_patches.gpkg",
                                                     "change_patches.parquet", "delta_ndvi.tif"]
    planted_ha = float(gpd.read_file(samples / "truth" / "planted_change.geojson")["area_m2"].iloc[0]) / 10_000
    rows = {row["class_name"]: row for row in report["summary"]}
    artificial = rows["new_artificial_surface"]
    assert abs(artificial["area_ha"] - planted_ha) / planted_ha <= 0.15
    assert artificial["patches"] == 1 and abs(artificial["patch_area_ha"] - planted_ha) / planted_ha <= 0.15
    assert sum(row["pixels"] for name, row in rows.items() if name not in ("stable", "new_artificial_surface")) == 0
    with rasterio.open(out / "change_classes.tif") as src:
        classes = src.read(1)
        assert src.nodata == 255 and "new_artificial_surface" in src.tags()["flag_meanings"]
    assert int((classes == 3).sum()) == artificial["pixels"]
    for frame in (gpd.read_file(out / "change_patches.gpkg", layer="change_patches"),
                  gpd.read_parquet(out / "change_patches.parquet")):
        assert frame["class"].tolist() == [3] and frame.crs.to_epsg() == 2154
        assert frame["area_ha"].iloc[0] == pytest.approx(artificial["patch_area_ha"])
        assert str(frame["first_seen"].iloc[0])[:10] == "2022-04-14"
    assert "not a legal measure" in report["note"]


def test_change_refuses_to_overwrite_then_overwrites(change_run: tuple[Path, dict, list[str]]) -> None:
    _, _, args = change_run
    again = runner.invoke(app, args, terminal_width=300)
    assert again.exit_code == 5 and "--overwrite" in again.output
    assert len(again.output.strip().splitlines()) == 1
    table = runner.invoke(app, [*args, "--overwrite"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "new_artificial_surface" in table.output and "zones à vérifier" in table.output


def test_change_rejects_overlapping_periods(samples: Path, plu_shp: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["change", *source_args(samples, plu_shp), "--before", "2020/2022", "--after",
                                 "2022/2023", "--out", str(tmp_path / "c")], terminal_width=300)
    assert result.exit_code == 2 and "must end before" in result.output
