"""SAFE products: metadata parsing, item building, loading like STAC COGs, safe zip extraction."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
from _safe_builder import make_s2_safe, zip_safe

from territoire_geo.errors import DataError
from territoire_geo.imagery import load
from territoire_geo.imagery.bands import band_assets
from territoire_geo.sources.safe import extract_safe, read_product_metadata, read_tile_grid, safe_to_item

MTD = "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_MTD_MSIL2A.xml"
SAMPLE = "S2A_T31TFJ_20220414T103021_L2A"
AOI = (4.34, 43.98, 4.40, 44.02)


@pytest.fixture(scope="module")
def stac_item(sample_items: list[pystac.Item]) -> pystac.Item:
    return next(i for i in sample_items if i.id == SAMPLE)


@pytest.fixture(scope="module")
def safe_dir(tmp_path_factory: pytest.TempPathFactory, stac_item: pystac.Item, real_dir: Path) -> Path:
    """red and nir (10 m) and scl (20 m) of the sample item as lossless JP2 in a SAFE folder."""
    return make_s2_safe(tmp_path_factory.mktemp("safe"), stac_item, real_dir / "metadata" / MTD)


def test_real_product_metadata(real_dir: Path) -> None:
    meta = read_product_metadata(real_dir / "metadata" / MTD)
    assert meta.baseline == "04.00" and meta.quantification == 10000 and meta.platform == "sentinel-2b"
    assert meta.offsets == dict.fromkeys(["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09",
                                          "B10", "B11", "B12"], -1000.0)
    assert (meta.nodata, meta.saturated) == (0, 65535)
    assert meta.aux_quantification == {"AOT": 1000.0, "WVP": 1000.0}
    assert meta.cloud_cover == pytest.approx(98.944211)
    assert meta.start.isoformat() == "2022-04-13T15:07:59.024000+00:00"
    assert meta.footprint is not None and 14.9 < meta.footprint.centroid.x < 17.8 and meta.footprint.centroid.y > 80


def test_item_from_safe_folder(safe_dir: Path) -> None:
    item = safe_to_item(safe_dir)
    assert item.id == safe_dir.name.removesuffix(".SAFE") and item.collection_id == "sentinel-2-l2a"
    assert set(item.assets) == {"B04_10m", "B08_10m", "SCL_20m", "product_metadata", "granule_metadata"}
    props = item.properties
    assert props["s2:processing_baseline"] == "04.00" and props["platform"] == "sentinel-2a"
    assert props["proj:epsg"] == 32631 and props["eo:cloud_cover"] == 0.0 and props["s2:mgrs_tile"] == "31TFJ"
    assert item.datetime.isoformat() == "2022-04-14T10:30:21.024000+00:00"
    red, scl = item.assets["B04_10m"].extra_fields, item.assets["SCL_20m"].extra_fields
    assert red["raster:bands"][0] == {"nodata": 0, "data_type": "uint16", "scale": 1e-4, "offset": -0.1, "unit": "1"}
    assert red["proj:shape"] == [556, 544] and red["proj:transform"] == [10, 0, 607000, 0, -10, 4875360]
    assert scl["proj:shape"] == [278, 272] and scl["proj:transform"] == [20, 0, 607000, 0, -20, 4875360]
    assert "scale" not in scl["raster:bands"][0]
    assert Path(item.assets["B04_10m"].href).is_file() and item.assets["B04_10m"].href.endswith("_B04_10m.jp2")
    resolved = band_assets(item, ["red", "nir", "scl"])
    assert [resolved[b].key for b in ("red", "nir", "scl")] == ["B04_10m", "B08_10m", "SCL_20m"]
    assert (resolved["red"].scale, resolved["red"].offset, resolved["scl"].scale) == (1e-4, -0.1, 1.0)


def _same_reflectance(safe_item: pystac.Item, stac_item: pystac.Item, **kw: Any) -> None:
    args: dict[str, Any] = {"bands": ["red", "nir", "scl"], "aoi": AOI, **kw}
    from_safe, from_stac = load([safe_item], **args).compute(), load([stac_item], **args).compute()
    for band in ("red", "nir"):
        values = from_stac[band].values
        assert np.isfinite(values).mean() > 0.9 and np.nanmax(values) > 0.05
        np.testing.assert_allclose(from_safe[band].values, values, equal_nan=True)
    np.testing.assert_array_equal(from_safe["scl"].values, from_stac["scl"].values)


def test_load_gives_the_same_reflectance_as_the_stac_item(safe_dir: Path, stac_item: pystac.Item) -> None:
    item = safe_to_item(safe_dir)
    _same_reflectance(item, stac_item)  # Lambert-93, reprojected
    _same_reflectance(item, stac_item, crs="EPSG:32631")  # native grid


def test_zip_variant_extracts_once_and_loads(safe_dir: Path, stac_item: pystac.Item, tmp_path: Path) -> None:
    zipped = zip_safe(safe_dir, tmp_path / "product.zip")
    item = safe_to_item(zipped, extract_to=tmp_path / "x")
    extracted = tmp_path / "x" / safe_dir.name
    assert Path(item.assets["B04_10m"].href).is_relative_to(extracted)
    stamp = (extracted / "MTD_MSIL2A.xml").stat().st_mtime_ns
    assert safe_to_item(zipped, extract_to=tmp_path / "x").id == item.id
    assert (extracted / "MTD_MSIL2A.xml").stat().st_mtime_ns == stamp  # reused, not extracted again
    assert [p.name for p in (tmp_path / "x").iterdir()] == [safe_dir.name]  # no temporary folder left
    _same_reflectance(item, stac_item, crs="EPSG:32631")


def test_baseline_before_04_has_no_offset(tmp_path: Path, stac_item: pystac.Item, real_dir: Path) -> None:
    safe = make_s2_safe(tmp_path, stac_item, real_dir / "metadata" / MTD, bands=("red",), baseline="02.12")
    assert read_product_metadata(safe / "MTD_MSIL2A.xml").offsets == {}
    item = safe_to_item(safe)
    assert item.assets["B04_10m"].extra_fields["raster:bands"][0]["offset"] == 0.0
    assert band_assets(item, ["red"])["red"].offset == 0.0


def test_granule_grid(safe_dir: Path) -> None:
    grid = read_tile_grid(next(safe_dir.glob("GRANULE/*/MTD_TL.xml")))
    assert grid.epsg == 32631
    assert grid.grids[20] == ((278, 272), (20.0, 0.0, 607000.0, 0.0, -20.0, 4875360.0))


def test_not_a_product(tmp_path: Path, safe_dir: Path) -> None:
    with pytest.raises(DataError, match=r"no MTD_MSIL2A\.xml"):
        safe_to_item(tmp_path)
    (tmp_path / "MTD_MSIL1C.xml").write_text("<x/>")
    with pytest.raises(DataError, match="Level-1C products are not supported"):
        safe_to_item(tmp_path)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a valid zip"):
        extract_safe(bad, tmp_path / "out")


# -- zip-slip ----------------------------------------------------------------------------------


def _zip_with(path: Path, name: str, *, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("P.SAFE/MTD_MSIL2A.xml", "<x/>")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd" if symlink else "pwned")
    return path


@pytest.mark.parametrize(("entry", "reason", "symlink"), [
    ("../evil.txt", "'..' component", False),
    ("P.SAFE/../../evil.txt", "'..' component", False),
    ("/abs.txt", "absolute path", False),
    ("C:\\evil.txt", "drive letter", False),
    ("..\\evil.txt", "'..' component", False),
    ("P.SAFE/link", "symbolic link", True),
])
def test_zip_slip_entries_refused(tmp_path: Path, entry: str, reason: str, symlink: bool) -> None:
    archive = _zip_with(tmp_path / "evil.zip", entry, symlink=symlink)
    dest = tmp_path / "a" / "b"
    with pytest.raises(DataError, match=rf"entry {entry!r}".replace("\\", "\\\\") + rf" refused \({reason}"):
        safe_to_item(archive, extract_to=dest)
    assert not dest.exists()  # nothing written at all
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.zip"]


def test_corrupt_member_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        out.writestr("P.SAFE/MTD_MSIL2A.xml", "<x>" + "a" * 1000 + "</x>")
    data = bytearray(archive.read_bytes())
    data[data.index(b"aaaa")] = ord("b")  # payload changed, CRC not
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="not a valid zip"):
        extract_safe(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
