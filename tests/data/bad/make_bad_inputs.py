"""Write the bad-input corpus of ``tests/reliability/test_bad_inputs.py`` (small files, committed).

Run from the repository root: ``python tests/data/bad/make_bad_inputs.py``. The output is
deterministic (fixed seeds and dates), so a rerun gives the same bytes for the rasters
and vectors. Files that are big or machine-specific (the 100 000-feature layer, the
10 MB recipe, symbolic links) are made by the tests in a temporary folder instead.
What each file is and what the tool must do with it: ``EXPECTED.md`` beside this script.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pystac
from affine import Affine

from territoire_geo.io import write_cog
from territoire_geo.testing import make_s2_item

HERE = Path(__file__).resolve().parent
#: 10 m grid in Lambert-93 over Arpaillargues (inside the sample imagery).
ORIGIN = (808_700.0, 6_323_300.0)
SIZE = 64


def _grid() -> Affine:
    return Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1])


def rasters(folder: Path) -> None:
    """Corrupt, truncated, CRS-less, lon/lat and all-NaN GeoTIFFs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(42)
    values = rng.uniform(0.1, 0.8, (SIZE, SIZE)).astype("float32")
    (folder / "corrupt.tif").write_bytes(b"II*\x00" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    full = write_cog(folder / "_full.tif", rng.uniform(0, 1, (256, 256)).astype("float32"), _grid(), "EPSG:2154",
                     nodata=float("nan"))
    data = full.read_bytes()
    (folder / "truncated_cog.tif").write_bytes(data[: int(len(data) * 0.55)])
    full.unlink()
    write_cog(folder / "no_crs.tif", values, _grid(), None, nodata=float("nan"))
    lonlat = Affine(0.0001, 0.0, 4.36, 0.0, -0.0001, 44.0)  # ~8 m x 11 m pixels, in degrees
    write_cog(folder / "lonlat_4326.tif", values, lonlat, "EPSG:4326", nodata=float("nan"))
    write_cog(folder / "all_nan.tif", np.full((SIZE, SIZE), np.nan, dtype="float32"), _grid(), "EPSG:2154",
              nodata=float("nan"))


WHEN = dt.datetime(2022, 6, 23, 10, 30, 21, tzinfo=dt.UTC)


def _catalog(folder: Path, name: str, bands: dict[str, np.ndarray], cloud: float = 0.0,
             items: list[pystac.Item] | None = None) -> None:
    """A self-contained static catalog with Sentinel-2-shaped items (relative hrefs)."""
    root = folder / name
    if items is None:
        shutil.rmtree(root, ignore_errors=True)
        items = [make_s2_item(root / "item", f"{name}_item", WHEN, bands, _grid(), 2154, cloud_cover=cloud,
                              tile="31TFJ")]
    catalog = pystac.Catalog(name, f"bad input: {name}")
    for item in items:
        catalog.add_item(item)
    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    for json_file in root.rglob("*.json"):  # stable formatting
        json_file.write_text(json.dumps(json.loads(json_file.read_text()), indent=1) + "\n")


def catalogs(folder: Path) -> None:
    """Scenes that load but carry nothing: all nodata, all cloud; and one with a truncated band."""
    rng = np.random.default_rng(7)
    dn = rng.integers(1500, 4000, (SIZE, SIZE), dtype=np.uint16)
    half = SIZE // 2
    _catalog(folder, "all_nodata", {"red": np.zeros_like(dn), "nir": np.zeros_like(dn),
                                    "scl": np.zeros((half, half), dtype=np.uint8)})
    _catalog(folder, "all_cloud", {"red": dn, "nir": dn + 500, "scl": np.full((half, half), 9, dtype=np.uint8)},
             cloud=100.0)
    _catalog(folder, "truncated_band", {"red": dn, "nir": dn + 500, "scl": np.full((half, half), 4, dtype=np.uint8)})
    red = next((folder / "truncated_band").rglob("red.tif"))
    data = red.read_bytes()
    red.write_bytes(data[: len(data) // 2])  # the catalog's checksum no longer matches either
    two_zones(folder)


def two_zones(folder: Path) -> None:
    """Two items of the same day on both sides of 6°E: UTM 31N (NDVI 0.5) and UTM 32N (NDVI 2/3)."""
    from pyproj import Transformer

    root = folder / "two_utm_zones"
    shutil.rmtree(root, ignore_errors=True)
    items = []
    for epsg, tile, west, nir in ((32631, "31TGH", 5.975, 3000), (32632, "32TKP", 5.998, 5000)):
        x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(west, 43.418)
        transform = Affine(10.0, 0.0, round(x, -1), 0.0, -10.0, round(y, -1))
        red = np.full((200, 200), 1000, dtype=np.uint16)
        items.append(make_s2_item(root / tile, f"S2A_T{tile}_20220623T103021_L2A", WHEN,
                                  {"red": red, "nir": np.full_like(red, nir),
                                   "scl": np.full((100, 100), 4, dtype=np.uint8)},
                                  transform, epsg, baseline="02.14", tile=tile))
    _catalog(folder, "two_utm_zones", {}, items=items)


def _fc(features: list[dict], crs: str | None = None) -> str:
    body: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        body["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(body, indent=1) + "\n"


def _feature(geometry: dict, **props: object) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def _box(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def vectors(folder: Path) -> None:
    """AOIs and zoning layers: empty, one feature, mixed types, invalid and zero-area, far away, two UTM zones."""
    folder.mkdir(parents=True, exist_ok=True)
    zone = {"LIBELLE": "1AU", "TYPEZONE": "AUc", "IDURBA": "30014_PLU_20171013", "DATAPPRO": "20171013"}
    (folder / "empty.geojson").write_text(_fc([]))
    (folder / "one_feature.geojson").write_text(_fc([_feature(_box(4.355, 43.99, 4.37, 44.0), **zone)]))
    (folder / "mixed_geometries.geojson").write_text(_fc([
        _feature(_box(4.355, 43.99, 4.36, 43.995), **zone),
        _feature({"type": "LineString", "coordinates": [[4.36, 43.99], [4.37, 44.0]]}, **zone),
        _feature({"type": "Point", "coordinates": [4.365, 43.995]}, **zone),
    ]))
    bowtie = {"type": "Polygon", "coordinates": [[[4.355, 43.99], [4.37, 44.0], [4.37, 43.99], [4.355, 44.0],
                                                  [4.355, 43.99]]]}
    flat = {"type": "Polygon", "coordinates": [[[4.36, 43.99], [4.365, 43.99], [4.37, 43.99], [4.36, 43.99]]]}
    (folder / "invalid_polygons.geojson").write_text(_fc([
        _feature(bowtie, **{**zone, "LIBELLE": "bowtie"}),
        _feature(flat, **{**zone, "LIBELLE": "zero_area"}),
        _feature(_box(4.36, 43.992, 4.365, 43.996), **{**zone, "LIBELLE": "valid"}),
    ]))
    (folder / "aoi_outside.geojson").write_text(_fc([_feature(_box(2.30, 48.85, 2.35, 48.87), name="Paris")]))
    (folder / "aoi_two_utm_zones.geojson").write_text(_fc([_feature(_box(5.99, 43.40, 6.01, 43.41), name="Var")]))


RECIPE_HEAD = """\
schema_version: 1
name: bad-input
territory:
  plu: ../../../../data_samples/plu/30014_PLU_20171013
"""

RECIPES: dict[str, bytes] = {
    "unknown_key.yaml": (RECIPE_HEAD + "  colour: blue\n").encode(),
    "wrong_type.yaml": (RECIPE_HEAD + "  resolution: ten metres\n").encode(),
    "missing_path.yaml": RECIPE_HEAD.replace("30014_PLU_20171013", "no_such_plu").encode(),
    "huge_resolution.yaml": (RECIPE_HEAD + "  resolution: 1e308\n").encode(),
    "infinite_resolution.yaml": (RECIPE_HEAD + "  resolution: .inf\n").encode(),
    "negative_resolution.yaml": (RECIPE_HEAD + "  resolution: -10\n").encode(),
    "nan_weight.yaml": (RECIPE_HEAD + "scoring:\n  weights:\n    zoning: .nan\n").encode(),
    "nan_rule.yaml": (RECIPE_HEAD + "change:\n  rules:\n    sparse_ndvi: .nan\n").encode(),
    "huge_sensitivity.yaml": (RECIPE_HEAD + "scoring:\n  sensitivity_runs: 1000000000\n").encode(),
    "not_a_mapping.yaml": b"- just\n- a list\n",
    "empty.yaml": b"",
    "non_utf8.yaml": (RECIPE_HEAD + "title: R\xe9serve fonci\xe8re\n").encode("latin-1"),
    "yaml_bomb.yaml": (b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       b"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nname: bomb\n"),
    "evil_formula.yaml": (RECIPE_HEAD + "custom_indices:\n  evil: \"__import__('os').system('id')\"\n").encode(),
    "power_tower.yaml": (RECIPE_HEAD + "custom_indices:\n  big: \"9**9**9\"\n").encode(),
    "output_inside_input.yaml": (RECIPE_HEAD + "output: ../../../../data_samples/plu/30014_PLU_20171013/run\n"
                                 ).encode(),
    "python_tag.yaml": (RECIPE_HEAD + "title: !!python/object/apply:os.system ['id']\n").encode(),
}


def recipes(folder: Path) -> None:
    """Broken recipes (one fault each); paths are relative to ``tests/data/bad/recipes``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in RECIPES.items():
        (folder / name).write_bytes(body)


def main() -> None:
    """Write every committed bad input beside this script."""
    rasters(HERE / "rasters")
    catalogs(HERE / "catalogs")
    vectors(HERE / "vectors")
    recipes(HERE / "recipes")
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"bad-input corpus written to {HERE} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
