"""Band normalisation and per-item scale/offset on real provider layouts."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pystac
import pytest

from territoire_geo.errors import MissingBandError, ScalingWarning
from territoire_geo.imagery.bands import CANONICAL_BANDS, band_assets, processing_baseline, resolve_bands

S2_BANDS = ["coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "nir09",
            "swir16", "swir22", "scl"]


def _item(real_dir: Path, name: str) -> pystac.Item:
    return pystac.Item.from_file(str(real_dir / "stac" / name))


def test_earth_search_v0(real_dir: Path) -> None:
    item = _item(real_dir, "earthsearch_v0_item_S2A_28QCH_20200714_0_L2A.json")
    assets = band_assets(item)
    assert sorted(assets) == sorted(S2_BANDS)
    assert assets["red"].key == "B04" and assets["nir08"].key == "B8A" and assets["scl"].key == "SCL"
    assert processing_baseline(item) == "02.14"  # from sentinel:product_id …_N0214_…
    assert assets["red"].scale == pytest.approx(1e-4) and assets["red"].offset == 0.0
    assert assets["nir08"].gsd == 20.0  # from proj:transform, not the item gsd


def test_planetary_computer(real_dir: Path) -> None:
    item = _item(real_dir, "planetary_computer_item_S2B_MSIL2A_20190629_T06VVN_raster_ext.json")
    assets = band_assets(item, ["red", "nir", "rededge1", "nir08", "scl"])
    assert {k: v.key for k, v in assets.items()} == {"red": "B04", "nir": "B08", "rededge1": "B05",
                                                      "nir08": "B8A", "scl": "SCL"}
    assert assets["red"].offset == 0.0  # baseline 02.12
    assert assets["red"].nodata == 0
    assert assets["red"].href.endswith("_B04_10m.tif")


def test_landsat_c2(real_dir: Path) -> None:
    item = _item(real_dir, "usgs_landsatlook_item_LC08_L2SP_028030_20200114_SR.json")
    assets = band_assets(item, ["red", "nir", "swir16", "qa_pixel"])
    assert assets["nir"].key == "nir08"  # Landsat's NIR is B5 (0.85–0.88 µm)
    assert assets["red"].scale == pytest.approx(2.75e-5) and assets["red"].offset == pytest.approx(-0.2)
    assert assets["qa_pixel"].scale == 1.0 and assets["qa_pixel"].nodata == 1
    assert assets["red"].checksum.startswith("1340")  # sha2-512 multihash


def cdse_item(real_dir: Path, version: str = "05.10") -> pystac.Item:
    """A CDSE item built the way CDSE builds them: the collection's item_assets with hrefs."""
    collection = json.loads((real_dir / "stac" / "cdse_stac_collection_sentinel-2-l2a.json").read_text())
    assets = {}
    for key, spec in collection["item_assets"].items():
        asset = copy.deepcopy(spec)
        asset["href"] = f"s3://eodata/Sentinel-2/MSI/L2A/2024/06/01/S2A.SAFE/{key}.jp2"
        assets[key] = asset
    body = {
        "type": "Feature", "stac_version": "1.1.0", "id": "S2A_MSIL2A_20240601T103031_N0510_R108_T31TFJ",
        "geometry": {"type": "Polygon", "coordinates": [[[4, 43], [5, 43], [5, 44], [4, 44], [4, 43]]]},
        "bbox": [4, 43, 5, 44], "collection": "sentinel-2-l2a", "links": [], "assets": assets,
        "properties": {"datetime": "2024-06-01T10:30:31Z", "platform": "sentinel-2a", "constellation": "sentinel-2",
                       "processing:version": version, "proj:code": "EPSG:32631", "eo:cloud_cover": 3.2},
    }
    return pystac.Item.from_dict(body)


def test_cdse_resolution_suffixed_keys(real_dir: Path) -> None:
    item = cdse_item(real_dir)
    assets = band_assets(item)
    assert assets["red"].key == "B04_10m" and assets["scl"].key == "SCL_20m"
    assert assets["nir08"].key == "B8A_20m" and assets["rededge1"].key == "B05_20m"
    assert assets["coastal"].key == "B01_20m"  # finest resolution offered
    assert assets["red"].scale == pytest.approx(1e-4) and assets["red"].offset == pytest.approx(-0.1)
    assert "TCI" not in {a.key[:3] for a in assets.values()}  # 3-band visual asset is never a band


def test_cdse_reprocessed_pre_2022_keeps_offset(real_dir: Path) -> None:
    item = cdse_item(real_dir, "05.00")
    item.datetime = dt.datetime(2020, 7, 1, tzinfo=dt.UTC)
    assert band_assets(item, ["red"])["red"].offset == pytest.approx(-0.1)  # decided by baseline, not date


def earth_search_v1_item(applied: bool | None) -> pystac.Item:
    props = {"datetime": "2023-06-18T10:30:21Z", "platform": "sentinel-2a", "constellation": "sentinel-2",
             "s2:processing_baseline": "05.09", "proj:epsg": 32631}
    if applied is not None:
        props["earthsearch:boa_offset_applied"] = applied
    item = pystac.Item("S2A_31TFJ_20230618_0_L2A", None, None, dt.datetime(2023, 6, 18), props,
                       collection="sentinel-2-l2a")
    for key in ("red", "nir", "scl", "red-jp2"):
        extra = {"raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": 0.0001, "offset": -0.1}]}
        if key == "red-jp2":
            extra["eo:bands"] = [{"name": "red", "common_name": "red"}]
        item.add_asset(key, pystac.Asset(f"https://example.test/{key}.tif",
                                          media_type="image/tiff; application=geotiff", extra_fields=extra))
    return item


def test_earth_search_v1_offset_already_applied_warns_and_is_not_applied_twice() -> None:
    with pytest.warns(ScalingWarning, match="boa_offset_applied"):
        assets = band_assets(earth_search_v1_item(True), ["red", "nir"])
    assert assets["red"].key == "red"  # the COG, not the duplicate JP2
    assert assets["red"].offset == 0.0


def test_earth_search_c1_offset_not_applied_uses_raster_bands() -> None:
    assets = band_assets(earth_search_v1_item(None), ["red"])
    assert assets["red"].offset == pytest.approx(-0.1)


def test_old_baseline_with_declared_offset_warns() -> None:
    item = earth_search_v1_item(None)
    item.properties["s2:processing_baseline"] = "02.14"
    with pytest.warns(ScalingWarning, match="< 04.00"):
        assert band_assets(item, ["red"])["red"].offset == 0.0


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).parents[1] / "data/real/stac").glob("*item*")))
def test_every_real_item_normalises(real_dir: Path, name: str) -> None:
    assets = band_assets(_item(real_dir, name))
    assert {"red", "green", "blue"} <= set(assets)
    assert set(assets) <= set(CANONICAL_BANDS)


def test_sample_items_follow_their_baseline(sample_items: list[pystac.Item]) -> None:
    for item in sample_items:
        red = band_assets(item, ["red"])["red"]
        expected = -0.1 if float(item.properties["s2:processing_baseline"]) >= 4 else 0.0
        assert red.offset == pytest.approx(expected), item.id


def test_unknown_and_missing_bands(real_dir: Path) -> None:
    with pytest.raises(MissingBandError, match="unknown band 'infrared'"):
        resolve_bands(["infrared"])
    assert resolve_bands(["B04", "nir", "B8A"]) == ["red", "nir", "nir08"]
    landsat = _item(real_dir, "usgs_landsatlook_item_LC08_L2SP_028030_20200114_SR.json")
    with pytest.raises(MissingBandError, match=r"no asset for band.*rededge1"):
        band_assets(landsat, ["rededge1"])
