"""Builders of small real test data — for our tests and our users'.

- :func:`make_s2_item` writes per-band COGs and returns a Sentinel-2 L2A-shaped
  :class:`pystac.Item` (scale/offset, SCL, checksums), loadable by
  :func:`territoire_geo.load` without any network;
- :func:`write_items_ndjson` writes items as newline-delimited JSON (what a STAC API
  server such as ``rustac serve`` loads);
- :func:`multihash_sha256` gives the ``file:checksum`` of a file.

The loopback servers and SAFE builders of the project's own tests live in its
``tests/`` folder: they need development-only packages and are not shipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box, mapping

from territoire_geo._atomic import write_text
from territoire_geo.io import write_cog

__all__ = ["S2_BAND_INFO", "make_s2_item", "multihash_sha256", "write_items_ndjson"]

#: Canonical name -> (ESA band id, common name, centre wavelength µm, gsd m).
S2_BAND_INFO: dict[str, tuple[str, str | None, float | None, int]] = {
    "coastal": ("B01", "coastal", 0.443, 60),
    "blue": ("B02", "blue", 0.49, 10),
    "green": ("B03", "green", 0.56, 10),
    "red": ("B04", "red", 0.665, 10),
    "rededge1": ("B05", "rededge", 0.704, 20),
    "rededge2": ("B06", "rededge", 0.74, 20),
    "rededge3": ("B07", "rededge", 0.783, 20),
    "nir": ("B08", "nir", 0.842, 10),
    "nir08": ("B8A", "nir08", 0.865, 20),
    "nir09": ("B09", "nir09", 0.945, 60),
    "swir16": ("B11", "swir16", 1.61, 20),
    "swir22": ("B12", "swir22", 2.19, 20),
    "scl": ("SCL", None, None, 20),
}


def multihash_sha256(path: str | Path) -> str:
    """``file:checksum`` value (multihash, SHA2-256) of a file."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return "1220" + digest


def make_s2_item(
    folder: str | Path,
    item_id: str,
    datetime: dt.datetime,
    bands: Mapping[str, np.ndarray],
    transform: Affine,
    epsg: int,
    *,
    baseline: str = "05.00",
    offset_applied: bool | None = None,
    declare_offset: bool = True,
    cloud_cover: float = 0.0,
    collection: str = "sentinel-2-l2a",
    tile: str = "31TFJ",
    platform: str = "sentinel-2a",
    extra_properties: Mapping[str, Any] | None = None,
) -> pystac.Item:
    """Write one COG per band into ``folder`` and describe them as a STAC item.

    Parameters
    ----------
    folder
        Where the COGs go (created).
    bands
        Canonical band name -> array of DN (uint16, 0 = nodata; SCL uint8).
        Arrays of the 20 m bands may be half the size of the 10 m ones.
    transform
        Affine transform of the 10 m grid (20 m bands get a 2x pixel).
    baseline
        ``s2:processing_baseline``; from ``04.00`` the assets declare the
        -0.1 offset (unless ``declare_offset`` is false).
    offset_applied
        Sets ``earthsearch:boa_offset_applied`` when not ``None``.
    """
    folder = Path(folder)
    base_shape = max((a.shape for a in bands.values()), key=lambda s: s[0])
    geo_offset = -0.1 if float(baseline) >= 4.0 and declare_offset else None
    assets: dict[str, pystac.Asset] = {}
    for name, array in bands.items():
        factor = base_shape[0] // array.shape[0]
        band_transform = transform @ Affine.scale(factor)
        href = write_cog(folder / f"{name}.tif", array, band_transform, f"EPSG:{epsg}", nodata=0, blocksize=512,
                         resampling="nearest" if name == "scl" else "average")
        assets[name] = _asset(href, name, array, band_transform, epsg, geo_offset)
    return _item(item_id, datetime, transform, base_shape, epsg, assets, baseline, offset_applied,
                 cloud_cover, collection, tile, platform, extra_properties or {})


def _asset(href: Path, name: str, array: np.ndarray, transform: Affine, epsg: int,
           offset: float | None) -> pystac.Asset:
    band_id, common, wavelength, _ = S2_BAND_INFO[name]
    raster: dict[str, Any] = {"nodata": 0, "data_type": array.dtype.name}
    eo: dict[str, Any] = {"name": band_id}
    if name != "scl":
        raster.update({"scale": 0.0001, "offset": offset if offset is not None else 0.0, "unit": "1"})
        eo.update({"common_name": common, "center_wavelength": wavelength})
    return pystac.Asset(
        href=str(href),
        media_type=pystac.MediaType.COG,
        roles=["data"],
        title=f"{band_id} ({name})",
        extra_fields={
            "eo:bands": [eo],
            "raster:bands": [raster],
            "gsd": abs(transform.a),
            "proj:epsg": epsg,
            "proj:shape": list(array.shape),
            "proj:transform": list(transform)[:6],
            "file:checksum": multihash_sha256(href),
            "file:size": href.stat().st_size,
        },
    )


def _item(item_id: str, when: dt.datetime, transform: Affine, shape: Sequence[int], epsg: int,
          assets: dict[str, pystac.Asset], baseline: str, applied: bool | None, cloud: float,
          collection: str, tile: str, platform: str, extra: Mapping[str, Any]) -> pystac.Item:
    minx, maxy = transform.c, transform.f
    maxx, miny = minx + transform.a * shape[1], maxy + transform.e * shape[0]
    to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon, lat = to_ll.transform([minx, maxx, maxx, minx], [miny, miny, maxy, maxy])
    footprint = box(min(lon), min(lat), max(lon), max(lat))
    props: dict[str, Any] = {
        "platform": platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": round(float(cloud), 2),
        "proj:epsg": epsg,
        "s2:processing_baseline": baseline,
        "s2:mgrs_tile": tile,
        "s2:product_type": "S2MSI2A",
        "s2:product_uri": f"{platform[:3].upper()}{platform[-1].upper()}_MSIL2A_{when:%Y%m%dT%H%M%S}"
        f"_N{baseline.replace('.', '')}_R108_T{tile}_{when:%Y%m%dT%H%M%S}.SAFE",
        **extra,
    }
    if applied is not None:
        props["earthsearch:boa_offset_applied"] = applied
    item = pystac.Item(item_id, mapping(footprint), list(footprint.bounds), when, props,
                       collection=collection, assets=assets)
    item.stac_extensions = [
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    ]
    return item


def write_items_ndjson(items: Sequence[pystac.Item], path: str | Path) -> Path:
    """Write items as newline-delimited JSON (what ``rustac serve`` reads)."""
    lines = (json.dumps(item.to_dict(include_self_link=False, transform_hrefs=False)) + "\n" for item in items)
    return write_text(path, "".join(lines))
