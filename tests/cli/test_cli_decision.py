"""``territoire-geo overlay`` and ``territoire-geo score`` on the sample territory, and their errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from territoire_geo_cli.main import app
from typer.testing import CliRunner

runner = CliRunner()
LAYERS = {"rga": "rga_argiles", "ppr_covadis": "ppr_inondation", "znieff1": "znieff1",
          "natura2000": "natura2000", "geology": "geologie_bdcharm50"}


@pytest.fixture(scope="module")
def ndvi_tif(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Path:
    """Median NDVI of the 2021 growing season of the sample scenes, as a COG."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    from territoire_geo.imagery import load
    from territoire_geo.io import write_raster
    from territoire_geo.sources import search

    aoi = next((samples / "plu").glob("*/Donnees_geographiques/*ZONE_URBA*.shp"))
    items = search(aoi, "2021-04-01/2021-09-30", source=samples / "stac", collections="sentinel-2-l2a",
                   max_cloud=60)
    ds = load(items, bands=["red", "nir"], aoi=aoi, mask=True)
    ndvi = ((ds.nir - ds.red) / (ds.nir + ds.red)).median("time").astype("float32").rename("ndvi")
    return write_raster(ndvi.rio.write_crs("EPSG:2154"), tmp_path_factory.mktemp("ndvi") / "ndvi.tif")


def overlay_args(samples: Path, out: Path, ndvi: Path, skip: tuple[str, ...] = ()) -> list[str]:
    args = ["overlay", "-z", str(samples / "plu" / "30014_PLU_20171013"), "-o", str(out)]
    for kind, name in LAYERS.items():
        if kind not in skip:
            args += ["-l", f"{kind}={samples / 'layers' / f'{name}.gpkg'}"]
    args += ["-l", f"change={samples / 'truth' / 'planted_change.geojson'}", "-r", f"ndvi={ndvi}",
             "--dem", str(next((samples / "stac" / "cop-dem-glo-30").rglob("dem.tif"))),
             "-d", f"services={samples / 'layers' / 'services.gpkg'}",
             "-d", f"roads={samples / 'layers' / 'routes.gpkg'}"]
    return args


@pytest.fixture(scope="module")
def units_gpkg(tmp_path_factory: pytest.TempPathFactory, samples: Path, ndvi_tif: Path) -> Path:
    out = tmp_path_factory.mktemp("overlay") / "units.gpkg"
    result = runner.invoke(app, [*overlay_args(samples, out, ndvi_tif), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["units"] == 90 and "ndvi_mean" in summary["columns"]
    return out


def test_overlay_writes_units_with_layer_columns(units_gpkg: Path) -> None:
    units = gpd.read_file(units_gpkg, layer="units")
    assert len(units) == 90 and units.crs.to_epsg() == 2154
    expected = {"rga_max", "ppr_red_share", "znieff1_share", "natura2000_share", "geology_suitability",
                "ebc_share", "er_share", "dpu_share", "change_artificial_share", "ndvi_mean", "ndvi_coverage",
                "slope_mean", "dist_urban_m", "dist_services_m", "dist_roads_m", "area_ha"}
    assert expected <= set(units.columns)
    assert units["area_ha"].sum() == pytest.approx(1369.2, abs=0.5)
    assert units["ndvi_mean"].between(-1, 1).all() and units["rga_max"].isin([1, 2, 3]).all()


def test_score_writes_ranked_outputs(units_gpkg: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores"
    result = runner.invoke(app, ["score", "-u", str(units_gpkg), "-o", str(out), "--sensitivity", "100"],
                           terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "IAU" in result.stdout and "Excluded units by reason" in result.stdout
    assert {p.name for p in out.iterdir()} == {"scores.gpkg", "scores.csv", "criteria.csv", "sensitivity.csv"}
    table = pd.read_csv(out / "scores.csv")
    assert set(table["LIBELLE"].head(2)) == {"IAU", "IIAU"} and table["rank"].head(2).tolist() == [1, 2]
    assert table["reliability"].min() == pytest.approx(1.0)
    assert table["exclusion"].str.contains("espace boisé classé").sum() >= 5
    scores = gpd.read_file(out / "scores.gpkg", layer="scores")
    assert len(scores) == 90 and scores["score"].between(0, 100).all()
    assert len(pd.read_csv(out / "criteria.csv")) == 16
    stability = pd.read_csv(out / "sensitivity.csv")
    assert stability["unit_id"].tolist() == table["unit_id"].tolist()


def test_score_json_and_missing_layer(samples: Path, ndvi_tif: Path, tmp_path: Path) -> None:
    units = tmp_path / "units_no_rga.gpkg"
    result = runner.invoke(app, ["-q", *overlay_args(samples, units, ndvi_tif, skip=("rga",))])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["score", "-u", str(units), "-o", str(tmp_path / "s"), "--json", "--lang", "en"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["units"] == 90 and report["ranked"] == 18
    assert {row["LIBELLE"] for row in report["top"][:2]} == {"IAU", "IIAU"}
    assert all(row["reliability"] < 1 for row in report["top"])
    assert "natural and forest zone (N), protected under ZAN" in report["exclusions"]


def test_csv_cells_are_escaped_against_formula_injection(tmp_path: Path, units_gpkg: Path) -> None:
    units = gpd.read_file(units_gpkg, layer="units")
    units.loc[0, "LIBELLE"] = '=HYPERLINK("http://evil","x")'
    units.loc[1, "LIBELLE"] = "@SUM(A1)"
    units.to_file(tmp_path / "evil.gpkg", layer="units")
    result = runner.invoke(app, ["-q", "score", "-u", str(tmp_path / "evil.gpkg"), "-o", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "s" / "scores.csv", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in cells and "'@SUM(A1)" in cells
    assert not any(cell.startswith(("=", "@")) for cell in cells)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["overlay", "-z", "nowhere", "-o", "u.gpkg"], 4, "no such file"),
    (["overlay", "-z", "{plu}", "-o", "u.gpkg", "-l", "rga"], 2, "name=PATH"),
    (["overlay", "-z", "{plu}", "-o", "u.gpkg", "-l", "lava=x.gpkg"], 2, "unknown layer kind"),
    (["overlay", "-z", "{plu}", "-o", "u.gpkg", "-d", "bus=missing.gpkg"], 4, "no such file"),
    (["overlay", "-z", "{plu}", "-o", "u.txt"], 2, ".gpkg"),
    (["score", "-u", "missing.gpkg", "-o", "s"], 4, "no such file"),
    (["score", "-u", "{units}", "-o", "s", "-c", "{bad_yaml}"], 2, "unknown key"),
    (["score", "-u", "{units}", "-o", "s", "--lang", "de"], 2, "lang"),
])
def test_bad_inputs_give_documented_exit_codes(args: list[str], code: int, message: str, samples: Path,
                                               units_gpkg: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("criteria:\n  - {name: a, column: x, transform: {linear: [0, 1]}, weigth: 1}\n")
    values = {"plu": str(samples / "plu" / "30014_PLU_20171013"), "units": str(units_gpkg), "bad_yaml": str(bad_yaml)}
    result = runner.invoke(app, [a.format(**values) for a in args])
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_existing_outputs_need_overwrite(units_gpkg: Path, tmp_path: Path, samples: Path) -> None:
    out = tmp_path / "s"
    assert runner.invoke(app, ["-q", "score", "-u", str(units_gpkg), "-o", str(out)]).exit_code == 0
    again = runner.invoke(app, ["-q", "score", "-u", str(units_gpkg), "-o", str(out)])
    assert again.exit_code == 5 and "--overwrite" in again.output
    assert runner.invoke(app, ["-q", "score", "-u", str(units_gpkg), "-o", str(out), "--overwrite"]).exit_code == 0
    plu = str(samples / "plu" / "30014_PLU_20171013")
    result = runner.invoke(app, ["-q", "overlay", "-z", plu, "-o", str(units_gpkg)])
    assert result.exit_code == 5 and "--overwrite" in result.output
