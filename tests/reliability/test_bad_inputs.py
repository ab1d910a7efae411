"""Bad inputs through the command line: a one-line error with the documented exit code, or a repair.

The corpus is ``tests/data/bad/`` (written by ``make_bad_inputs.py``; what each file is and
what must happen: ``EXPECTED.md``). Inputs too big or too machine-specific to commit (a
100 000-feature layer, a 10 MB recipe, symbolic-link loops) are made here in a temporary
folder. Every case runs the real CLI (in process) and checks: the exit code, the one
error line (never a traceback), and — when the tool accepts the input — the numbers it
produced (never a silently wrong value).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from pyproj import Transformer
from territoire_geo_cli.main import app
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad"
PLU = REPO / "data_samples" / "plu" / "30014_PLU_20171013"
ZONE_URBA = PLU / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp"
STAC = REPO / "data_samples" / "stac"
BBOX = "4.33,43.97,4.40,44.03"

# warnings are shown as the command line shows them, not turned into errors
pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("default::UserWarning"),
              pytest.mark.filterwarnings("default::RuntimeWarning")]
runner = CliRunner()


@dataclass(frozen=True)
class Case:
    """One bad input: the command to run, the exit code and text expected, an optional check of the result."""

    args: tuple[str, ...]
    code: int
    text: str = ""
    check: Callable[[Path, str], None] | None = None
    setup: Callable[[Path], None] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _fill(args: tuple[str, ...], tmp: Path) -> list[str]:
    names = {"bad": BAD, "tmp": tmp, "plu": PLU, "zu": ZONE_URBA, "stac": STAC, "bbox": BBOX}
    return [a.format(**{k: str(v) for k, v in names.items()}) for a in args]


def _units(tmp: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(tmp / "units.gpkg")


# ---------------------------------------------------------------- checks of accepted inputs


def _all_nan_gives_no_number(tmp: Path, _out: str) -> None:
    units = _units(tmp)
    assert units["ndvi_mean"].isna().all() and (units["ndvi_coverage"] == 0).all()


def _lonlat_raster_is_reprojected(tmp: Path, _out: str) -> None:
    units = _units(tmp)
    covered = units[units["ndvi_coverage"] > 0]
    assert len(covered) >= 1 and covered["ndvi_mean"].between(0.1, 0.8).all()  # the file's value range


def _lonlat_dem_gives_a_slope(tmp: Path, _out: str) -> None:
    units = _units(tmp)
    assert units["slope_mean"].notna().sum() >= 1 and (units["slope_mean"].dropna() >= 0).all()


def _empty_composite(tmp: Path, out: str) -> None:
    with rasterio.open(tmp / "idx" / "ndvi_median.tif") as ndvi, rasterio.open(tmp / "idx" / "valid_count.tif") as n:
        assert np.isnan(ndvi.read(1)).all() and (n.read(1) == 0).all()  # no value made up
    assert re.search(r"0 / 0", out)  # and the summary says no valid observation


def _two_utm_zones_mosaic(tmp: Path, _out: str) -> None:
    to_l93 = Transformer.from_crs(4326, 2154, always_xy=True)
    with rasterio.open(tmp / "idx" / "ndvi_median.tif") as src:
        assert src.crs.to_epsg() == 2154 and src.res == (10.0, 10.0)
        west, east = (float(next(src.sample([to_l93.transform(lon, 43.405)]))[0]) for lon in (5.992, 6.008))
        values = src.read(1)
    assert west == pytest.approx(0.5, abs=1e-4) and east == pytest.approx(2 / 3, abs=1e-4)
    found = set(np.round(values[~np.isnan(values)].astype("float64"), 4).tolist())
    assert found <= {0.5, 0.6667}, found  # each pixel from one tile, no blend across the zone boundary
    assert np.isnan(values).mean() < 0.1


def _one_feature_aoi(tmp: Path, _out: str) -> None:
    with rasterio.open(tmp / "idx" / "ndvi_median.tif") as src:
        values = src.read(1)
    assert np.isfinite(values).mean() > 0.5 and np.nanmax(values) <= 1


def _mixed_aoi(tmp: Path, out: str) -> None:
    _one_feature_aoi(tmp, out)


def _dropped_reported(tmp: Path, out: str) -> None:
    assert "dropped 2 features (not polygons after repair)" in out


def _invalid_repaired(tmp: Path, out: str) -> None:
    assert "repaired 2 invalid geometries" in out and "dropped 1 features" in out  # zero-area one dropped


def _invalid_aoi_repaired(tmp: Path, out: str) -> None:
    assert "2 invalid geometries in the area of interest repaired" in out
    _one_feature_aoi(tmp, out)


def _nothing_written_in_inputs(tmp: Path, _out: str) -> None:
    assert not (PLU / "run").exists() and not (PLU / "manifest.json").exists()


def _scene_of_zones(tmp: Path, _out: str) -> None:
    html = (tmp / "s.html").read_text(encoding="utf-8")
    assert "PLU 30014_PLU_20171013, 13/10/2017" in html and "IIAU" in html  # the folder's zoning became the units


# ---------------------------------------------------------------- files made at run time


def _two_layers(tmp: Path) -> None:
    frame = gpd.GeoDataFrame({"v": [1]}, geometry=[shapely.box(808_000, 6_321_000, 808_100, 6_321_100)], crs=2154)
    for name in ("a", "b"):
        frame.to_file(tmp / "two.gpkg", layer=name, engine="pyogrio")


def _table(tmp: Path) -> None:
    (tmp / "table.csv").write_text("commune,surface\n30014,12.5\n", encoding="utf-8")


def _big_layer(tmp: Path) -> None:
    """100 000 small squares (the tiling of a big PLUi or a cadastre) near Arpaillargues."""
    i = np.arange(100_000)
    x, y = 808_000 + (i % 400) * 10.0, 6_321_000 + (i // 400) * 10.0
    frame = gpd.GeoDataFrame({"LIBELLE": np.where(i % 2, "U", "1AU"), "TYPEZONE": np.where(i % 2, "U", "AUc"),
                              "IDURBA": "30014_PLU_20171013"}, geometry=shapely.box(x, y, x + 9, y + 9), crs=2154)
    frame.to_file(tmp / "big.gpkg", engine="pyogrio")


def _huge_recipe(tmp: Path) -> None:
    text = (BAD / "recipes" / "unknown_key.yaml").read_text().replace("  colour: blue\n", "")
    (tmp / "huge.yaml").write_text(text + "# " + "x" * 10_000_000 + "\n", encoding="utf-8")


def _symlink_loop(tmp: Path) -> None:
    os.symlink("loop", tmp / "loop")
    (tmp / "loop.yaml").write_text("name: loop\nterritory:\n  plu: loop\n", encoding="utf-8")


def _self_link_in_plu(tmp: Path) -> None:
    shutil.copytree(PLU, tmp / "plu")
    os.symlink(".", tmp / "plu" / "self")  # a folder that contains itself
    (tmp / "self.yaml").write_text("name: self\nterritory:\n  plu: plu\noutput: out\n", encoding="utf-8")


def _output_is_input(tmp: Path) -> None:
    shutil.copytree(PLU, tmp / "plu")
    (tmp / "same.yaml").write_text("name: same\nterritory:\n  plu: plu\noutput: plu\n", encoding="utf-8")


def _input_inside_output(tmp: Path) -> None:
    shutil.copytree(PLU, tmp / "runs" / "plu")
    (tmp / "parent.yaml").write_text("name: parent\nterritory:\n  plu: runs/plu\noutput: runs\n", encoding="utf-8")


def _plu_intact(tmp: Path, _out: str) -> None:
    kept = sorted(p.name for p in (tmp / "plu").rglob("*") if p.is_file())
    assert kept == sorted(p.name for p in PLU.rglob("*") if p.is_file())  # nothing added, nothing deleted


# ---------------------------------------------------------------- the cases

OVERLAY = ("overlay", "-z", "{plu}", "-o", "{tmp}/units.gpkg")
INDICES = ("indices", "-p", "2022", "-o", "{tmp}/idx")

CASES: dict[str, Case] = {
    # rasters ------------------------------------------------------------------------------
    "corrupt GeoTIFF (zonal)": Case((*OVERLAY, "-r", "ndvi={bad}/rasters/corrupt.tif"), 4,
                                    "cannot open raster"),
    "corrupt GeoTIFF (DEM)": Case((*OVERLAY, "--dem", "{bad}/rasters/corrupt.tif"), 4, "cannot read DEM"),
    "corrupt GeoTIFF (scene)": Case(("scene", "-u", "{zu}", "--raster", "{bad}/rasters/corrupt.tif",
                                     "-o", "{tmp}/s.html"), 4, "cannot read"),
    "truncated COG (zonal)": Case((*OVERLAY, "-r", "ndvi={bad}/rasters/truncated_cog.tif"), 4,
                                  "truncated or corrupt"),
    "truncated COG (DEM)": Case((*OVERLAY, "--dem", "{bad}/rasters/truncated_cog.tif"), 4, "cannot read DEM"),
    "truncated COG (scene raster)": Case(("scene", "-u", "{zu}", "--raster", "{bad}/rasters/truncated_cog.tif",
                                          "-o", "{tmp}/s.html"), 4, "truncated or corrupt"),
    "truncated COG (scene DEM)": Case(("scene", "-u", "{zu}", "--dem", "{bad}/rasters/truncated_cog.tif",
                                       "-o", "{tmp}/s.html"), 4, "truncated or corrupt"),
    "truncated band in a STAC item": Case(("indices", "-s", "{bad}/catalogs/truncated_band", "-a", "{bbox}",
                                           *INDICES[1:]), 4, "cannot read raster data"),
    "TIFF without CRS (zonal)": Case((*OVERLAY, "-r", "ndvi={bad}/rasters/no_crs.tif"), 4, "has no CRS"),
    "TIFF without CRS (DEM)": Case((*OVERLAY, "--dem", "{bad}/rasters/no_crs.tif"), 4, "has no CRS"),
    "TIFF without CRS (scene)": Case(("scene", "-u", "{zu}", "--raster", "{bad}/rasters/no_crs.tif",
                                      "-o", "{tmp}/s.html"), 4, "has no CRS"),
    "EPSG:4326 raster (zonal)": Case((*OVERLAY, "-r", "ndvi={bad}/rasters/lonlat_4326.tif"), 0,
                                     check=_lonlat_raster_is_reprojected),
    "EPSG:4326 DEM (slope)": Case((*OVERLAY, "--dem", "{bad}/rasters/lonlat_4326.tif"), 0,
                                  check=_lonlat_dem_gives_a_slope),
    "EPSG:4326 raster (scene)": Case(("scene", "-u", "{zu}", "--raster", "{bad}/rasters/lonlat_4326.tif",
                                      "-o", "{tmp}/s.html"), 0),
    "all-NaN raster (zonal)": Case((*OVERLAY, "-r", "ndvi={bad}/rasters/all_nan.tif"), 0,
                                   check=_all_nan_gives_no_number),
    "all-NaN raster (scene)": Case(("scene", "-u", "{zu}", "--raster", "{bad}/rasters/all_nan.tif",
                                    "-o", "{tmp}/s.html"), 4, "no valid pixel"),
    "all-nodata scene": Case(("indices", "-s", "{bad}/catalogs/all_nodata", "-a", "{bbox}", *INDICES[1:]), 0,
                             check=_empty_composite),
    "all-cloud scene (SCL 9)": Case(("indices", "-s", "{bad}/catalogs/all_cloud", "-a", "{bbox}", *INDICES[1:]), 0,
                                    check=_empty_composite),
    # areas of interest ----------------------------------------------------------------------
    "AOI outside every item": Case(("indices", "-s", "{stac}", "-a", "{bad}/vectors/aoi_outside.geojson",
                                    *INDICES[1:]), 3, "no item covers the area of interest"),
    "AOI crossing two UTM zones": Case(("indices", "-s", "{bad}/catalogs/two_utm_zones", "-a",
                                        "{bad}/vectors/aoi_two_utm_zones.geojson", *INDICES[1:]), 0,
                                       check=_two_utm_zones_mosaic),
    "empty AOI file": Case(("indices", "-s", "{stac}", "-a", "{bad}/vectors/empty.geojson", *INDICES[1:]), 4,
                           "has no geometry"),
    "one-feature AOI": Case(("indices", "-s", "{stac}", "-a", "{bad}/vectors/one_feature.geojson", *INDICES[1:]),
                            0, check=_one_feature_aoi),
    "mixed-geometry AOI": Case(("indices", "-s", "{stac}", "-a", "{bad}/vectors/mixed_geometries.geojson",
                                *INDICES[1:]), 0, check=_mixed_aoi),
    "invalid and zero-area AOI": Case(("indices", "-s", "{stac}", "-a", "{bad}/vectors/invalid_polygons.geojson",
                                       *INDICES[1:]), 0, check=_invalid_aoi_repaired),
    "100k-feature AOI": Case(("search", "-s", "{stac}", "-a", "{tmp}/big.gpkg", "-p", "2022"), 0,
                             "S2", setup=_big_layer),
    # zoning layers --------------------------------------------------------------------------
    "empty zoning": Case(("zoning", "validate", "{bad}/vectors/empty.geojson"), 4, "has no features"),
    "empty zoning (overlay)": Case(("overlay", "-z", "{bad}/vectors/empty.geojson", "-o", "{tmp}/units.gpkg"), 4,
                                   "has no features"),
    "one-feature zoning": Case(("zoning", "validate", "{bad}/vectors/one_feature.geojson"), 0, "AUc"),
    "mixed-geometry zoning": Case(("zoning", "validate", "{bad}/vectors/mixed_geometries.geojson"), 0,
                                  check=_dropped_reported),
    "invalid and zero-area zoning": Case(("zoning", "validate", "{bad}/vectors/invalid_polygons.geojson"), 0,
                                         check=_invalid_repaired),
    "scene of a PLU folder": Case(("scene", "-u", "{plu}", "-o", "{tmp}/s.html"), 0, check=_scene_of_zones),
    "scene of a multi-layer GeoPackage": Case(("scene", "-u", "{tmp}/two.gpkg", "-o", "{tmp}/s.html"), 4,
                                              r"holds 2 layers \(a, b\); choose one with --layer",
                                              setup=_two_layers),
    "scene of a table without geometry": Case(("scene", "-u", "{tmp}/table.csv", "-o", "{tmp}/s.html"), 4,
                                              "has no geometry", setup=_table),
    # recipes -------------------------------------------------------------------------------
    "recipe: unknown key": Case(("recipe", "validate", "{bad}/recipes/unknown_key.yaml"), 2,
                                r"unknown_key.yaml:5: territory.colour: unknown key"),
    "recipe: wrong type": Case(("recipe", "validate", "{bad}/recipes/wrong_type.yaml"), 2,
                               r"territory.resolution: Input should be a valid number"),
    "recipe: missing path": Case(("recipe", "validate", "{bad}/recipes/missing_path.yaml"), 2,
                                 "missing file or folder"),
    "recipe: 1e308 resolution": Case(("recipe", "validate", "{bad}/recipes/huge_resolution.yaml"), 2,
                                     "less than or equal to 1000"),
    "recipe: infinite resolution": Case(("recipe", "validate", "{bad}/recipes/infinite_resolution.yaml"), 2,
                                        "territory.resolution: Input should be a finite number"),
    "recipe: negative resolution": Case(("recipe", "validate", "{bad}/recipes/negative_resolution.yaml"), 2,
                                        "greater than 0"),
    "recipe: NaN weight": Case(("recipe", "validate", "{bad}/recipes/nan_weight.yaml"), 2,
                               "scoring.weights.zoning: Input should be a finite number"),
    "recipe: NaN change rule": Case(("recipe", "validate", "{bad}/recipes/nan_rule.yaml"), 2,
                                    "change.rules.sparse_ndvi: Input should be a finite number"),
    "recipe: 1e9 sensitivity runs": Case(("recipe", "validate", "{bad}/recipes/huge_sensitivity.yaml"), 2,
                                         "less than or equal to 100000"),
    "recipe: not a mapping": Case(("recipe", "validate", "{bad}/recipes/not_a_mapping.yaml"), 2,
                                  "a recipe is a mapping"),
    "recipe: empty file": Case(("recipe", "validate", "{bad}/recipes/empty.yaml"), 2, "a recipe is a mapping"),
    "recipe: not UTF-8": Case(("recipe", "validate", "{bad}/recipes/non_utf8.yaml"), 2, "not UTF-8"),
    "recipe: 10 MB": Case(("recipe", "validate", "{tmp}/huge.yaml"), 2, "too large", setup=_huge_recipe),
    "recipe: YAML alias bomb": Case(("recipe", "validate", "{bad}/recipes/yaml_bomb.yaml"), 2,
                                    "expands to more than 100,000 values"),
    "recipe: python/object tag": Case(("recipe", "validate", "{bad}/recipes/python_tag.yaml"), 2,
                                      "not valid YAML"),
    "recipe: __import__ formula": Case(("recipe", "validate", "{bad}/recipes/evil_formula.yaml"), 2,
                                       "unsafe expression"),
    "recipe: 9**9**9 formula": Case(("recipe", "validate", "{bad}/recipes/power_tower.yaml"), 2,
                                    "power inside an exponent"),
    "recipe: output inside an input": Case(("recipe", "validate", "{bad}/recipes/output_inside_input.yaml"), 2,
                                           "is inside the input", check=_nothing_written_in_inputs),
    "recipe run: output inside an input": Case(("recipe", "run", "{bad}/recipes/output_inside_input.yaml"), 2,
                                               "is inside the input", check=_nothing_written_in_inputs),
    "recipe run: output is the input": Case(("recipe", "run", "{tmp}/same.yaml", "--overwrite"), 2,
                                            "is the input", setup=_output_is_input, check=_plu_intact),
    "recipe run: input inside the output": Case(("recipe", "run", "{tmp}/parent.yaml", "--overwrite"), 2,
                                                "contains the input", setup=_input_inside_output),
    "recipe: symbolic-link loop": Case(("recipe", "validate", "{tmp}/loop.yaml"), 2, "symbolic-link loop",
                                       setup=_symlink_loop),
    "recipe: PLU folder linking to itself": Case(("recipe", "validate", "{tmp}/self.yaml"), 0, "valid",
                                                 setup=_self_link_in_plu),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    if case.setup is not None:
        case.setup(tmp_path)
    result = runner.invoke(app, _fill(case.args, tmp_path), terminal_width=1000)
    out = result.output
    assert "Traceback" not in out and not isinstance(result.exception, (AssertionError, RuntimeError)), out
    assert result.exit_code == case.code, out
    if case.code:
        errors = [line for line in out.splitlines() if line.startswith(("error:", "unexpected error:"))]
        assert len(errors) == 1 and errors[0].startswith("error:"), out  # one line, a known error
    if case.text:
        assert re.search(case.text, out), out
    if case.check is not None:
        case.check(tmp_path, out)


def test_the_corpus_is_small_and_documented() -> None:
    files = [p for p in BAD.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2_000_000
    expected = (BAD / "EXPECTED.md").read_text(encoding="utf-8")
    for name in CASES:
        assert f"| {name} |" in expected, name  # every case has its documented outcome
