"""Build small but real Sentinel-2 L2A SAFE products from STAC items, for tests.

The band COGs of an item are converted losslessly to JPEG 2000 in the SAFE
layout (``GRANULE/<granule>/IMG_DATA/R10m/T31TFJ_<time>_B04_10m.jp2``); the
product metadata is a real ``MTD_MSIL2A.xml`` used as a template (its time,
name, footprint, baseline and image list rewritten) and the granule metadata
a minimal ``MTD_TL.xml`` with the item's grid. Test support only: not shipped.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree as ET

import pystac
from affine import Affine

__all__ = ["make_s2_safe", "zip_safe"]

_IDS = {"coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
        "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09", "swir16": "B11", "swir22": "B12",
        "scl": "SCL"}  # fmt: skip
_NS = {"n1": "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd",
       "xsi": "http://www.w3.org/2001/XMLSchema-instance"}  # fmt: skip


def make_s2_safe(folder: str | os.PathLike[str], item: pystac.Item, template: str | os.PathLike[str], *,
                 bands: Sequence[str] = ("red", "nir", "scl"), baseline: str | None = None) -> Path:
    """Write ``<folder>/<product>.SAFE`` from the band COGs of ``item``; return the ``.SAFE`` path.

    Parameters
    ----------
    item
        A Sentinel-2 item with local COG assets keyed by canonical names
        (``red``, ``nir``, ``scl``…) in one EPSG-coded CRS, and ``s2:mgrs_tile``.
    template
        A real ``MTD_MSIL2A.xml``.
    baseline
        Processing baseline to write (the template's by default); below
        ``04.00`` the ``BOA_ADD_OFFSET_VALUES_LIST`` is removed, as ESA does.
    """
    import rasterio

    when = item.datetime
    if when is None:
        raise ValueError(f"item {item.id} has no datetime")
    tile = str(item.properties.get("s2:mgrs_tile", "31TFJ"))
    stamp = f"{when:%Y%m%dT%H%M%S}"
    root = ET.parse(template).getroot()
    baseline = baseline or _find(root, "PROCESSING_BASELINE").text or "04.00"
    sat = "S2" + str(item.properties.get("platform", "sentinel-2a"))[-1].upper()
    name = f"{sat}_MSIL2A_{stamp}_N{baseline.replace('.', '')}_R108_T{tile}_{stamp}"
    safe = Path(folder) / f"{name}.SAFE"
    granule = safe / "GRANULE" / f"L2A_T{tile}_A000000_{stamp}"
    grids: dict[int, tuple[int, int, Affine]] = {}
    files = []
    for band in bands:
        with rasterio.open(item.assets[band].get_absolute_href()) as src:
            data, transform, crs = src.read(1), src.transform, src.crs
        res = round(transform.a)
        grids[res] = (data.shape[0], data.shape[1], transform)
        rel = f"GRANULE/{granule.name}/IMG_DATA/R{res}m/T{tile}_{stamp}_{_IDS[band]}_{res}m"
        target = safe / f"{rel}.jp2"
        target.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(target, "w", driver="JP2OpenJPEG", width=data.shape[1], height=data.shape[0], count=1,
                           dtype=data.dtype, crs=crs, transform=transform, QUALITY="100", REVERSIBLE="YES",
                           YCBCR420="NO") as dst:
            dst.write(data, 1)
        files.append(rel)
    _write_product_metadata(root, safe / "MTD_MSIL2A.xml", item, name, baseline, files)
    _write_tile_metadata(granule / "MTD_TL.xml", int(crs.to_epsg()), grids)
    return safe


def _find(root: ET.Element, name: str) -> ET.Element:
    return next(e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == name)


def _write_product_metadata(root: ET.Element, path: Path, item: pystac.Item, name: str, baseline: str,
                            files: list[str]) -> None:
    when = f"{item.datetime:%Y-%m-%dT%H:%M:%S}.024Z"
    ring = item.geometry["coordinates"][0] if item.geometry else []
    texts = {
        "PRODUCT_START_TIME": when, "PRODUCT_STOP_TIME": when, "PRODUCT_URI": f"{name}.SAFE",
        "PROCESSING_BASELINE": baseline, "SPACECRAFT_NAME": f"Sentinel-2{name[2]}",
        "Cloud_Coverage_Assessment": f"{float(item.properties.get('eo:cloud_cover', 0.0)):.6f}",
        "EXT_POS_LIST": " ".join(f"{lat} {lon}" for lon, lat in ring) + " ",
    }  # fmt: skip
    for tag, text in texts.items():
        _find(root, tag).text = text
    granule = _find(root, "Granule")
    for old in list(granule):
        granule.remove(old)
    for rel in files:
        ET.SubElement(granule, "IMAGE_FILE").text = rel
    if float(baseline) < 4.0:
        for parent in root.iter():
            for child in [c for c in parent if c.tag == "BOA_ADD_OFFSET_VALUES_LIST"]:
                parent.remove(child)
    for prefix, uri in _NS.items():
        ET.register_namespace(prefix, uri)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


def _write_tile_metadata(path: Path, epsg: int, grids: dict[int, tuple[int, int, Affine]]) -> None:
    rows10, cols10, transform = grids.get(10) or next(iter(grids.values()))
    ulx, uly = transform.c, transform.f
    parts = [f'<Size resolution="{r}"><NROWS>{rows10 * 10 // r}</NROWS><NCOLS>{cols10 * 10 // r}</NCOLS></Size>'
             for r in (10, 20, 60)]
    parts += [f'<Geoposition resolution="{r}"><ULX>{ulx:g}</ULX><ULY>{uly:g}</ULY><XDIM>{r}</XDIM>'
              f"<YDIM>-{r}</YDIM></Geoposition>" for r in (10, 20, 60)]
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<n1:Level-2A_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd">'
        "<n1:Geometric_Info><Tile_Geocoding><HORIZONTAL_CS_NAME>WGS84 / UTM</HORIZONTAL_CS_NAME>"
        f"<HORIZONTAL_CS_CODE>EPSG:{epsg}</HORIZONTAL_CS_CODE>{''.join(parts)}</Tile_Geocoding>"
        "</n1:Geometric_Info></n1:Level-2A_Tile_ID>\n",
        encoding="utf-8",
    )


def zip_safe(safe: str | os.PathLike[str], target: str | os.PathLike[str] | None = None) -> Path:
    """Zip a ``.SAFE`` folder as the hubs do (entries under ``<name>.SAFE/``); return the zip path."""
    safe = Path(safe)
    target = Path(target) if target else safe.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(safe.rglob("*")):
            archive.write(path, path.relative_to(safe.parent).as_posix())
    return target
