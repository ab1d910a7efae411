"""Sentinel-2 L2A SAFE products (a ``.SAFE`` folder or its ``.zip``) as STAC items.

:func:`safe_to_item` reads the product metadata (``MTD_MSIL2A.xml``: baseline,
quantification, per-band ``BOA_ADD_OFFSET``, special values, cloud cover)
and the granule metadata (``MTD_TL.xml``: EPSG code, grid origin, pixel
size and shape per resolution), and describes each JP2 band file as an asset
keyed like CDSE (``B04_10m``, ``B8A_20m``, ``SCL_20m``) with ``raster:bands``
scale/offset and ``proj:*`` fields, so that :func:`territoire_geo.load`
reads it exactly as it reads STAC COGs.

:func:`extract_safe` unpacks a product zip, refusing any entry that would
land outside the target folder (absolute paths, ``..``, symbolic links).
Pure local reads and writes: no network.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import stat
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pystac
from pyproj import Transformer
from shapely.geometry import Polygon, box, mapping

from territoire_geo._atomic import commit
from territoire_geo.errors import DataError, ExportError

__all__ = ["ProductMetadata", "TileGrid", "extract_safe", "read_product_metadata", "read_tile_grid",
           "safe_to_item"]

#: ``band_id`` of the product metadata -> ESA band id (used when the file has no Spectral_Information).
BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
_COMMON = {"B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge",
           "B06": "rededge", "B07": "rededge", "B08": "nir", "B8A": "nir08", "B09": "nir09",
           "B10": "cirrus", "B11": "swir16", "B12": "swir22"}  # fmt: skip
_BAND_FILE = re.compile(r"_(?P<band>B\d[\dA]|SCL|AOT|WVP|TCI)_(?P<res>\d{2})m\.jp2$", re.IGNORECASE)
_TILE = re.compile(r"_T(\d{2}[A-Z]{3})_")


@dataclass(frozen=True)
class ProductMetadata:
    """What ``MTD_MSIL2A.xml`` says about scaling, time and quality."""

    product_uri: str
    start: dt.datetime
    baseline: str
    platform: str
    product_type: str
    quantification: float
    offsets: dict[str, float] = field(default_factory=dict)  # ESA band id -> BOA_ADD_OFFSET (DN)
    aux_quantification: dict[str, float] = field(default_factory=dict)  # AOT, WVP
    nodata: int = 0
    saturated: int | None = None
    cloud_cover: float | None = None
    footprint: Polygon | None = None


@dataclass(frozen=True)
class TileGrid:
    """The granule grid of ``MTD_TL.xml``: EPSG code and (shape, transform) per resolution in metres."""

    epsg: int
    grids: dict[int, tuple[tuple[int, int], tuple[float, float, float, float, float, float]]]


# -- XML helpers --------------------------------------------------------------------


def _parse(path: Path) -> ET.Element:
    try:
        return ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"cannot read {path}: {str(exc).splitlines()[0][:150]}; the product is damaged") from exc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _all(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if _local(e.tag) == name]


def _text(root: ET.Element, name: str, path: Path, default: str | None = None) -> str:
    found = _all(root, name)
    value = (found[0].text or "").strip() if found else ""
    if value or default is not None:
        return value or str(default)
    raise DataError(f"{path} has no {name}; is it Sentinel-2 L2A metadata?")


# -- product and granule metadata ------------------------------------------------------


def read_product_metadata(path: str | os.PathLike[str]) -> ProductMetadata:
    """Parse ``MTD_MSIL2A.xml``.

    Baselines before 04.00 carry no ``BOA_ADD_OFFSET_VALUES_LIST``: their
    offsets are empty (no offset).

    Raises
    ------
    DataError
        If the file is not L2A product metadata.
    """
    path = Path(path)
    root = _parse(path)
    quant = {_local(e.tag): float((e.text or "0").strip())
             for values in _all(root, "QUANTIFICATION_VALUES_LIST") for e in values}
    if "BOA_QUANTIFICATION_VALUE" not in quant:
        raise DataError(f"{path} has no BOA_QUANTIFICATION_VALUE; only Level-2A products are supported")
    ids = _band_ids(root)
    offsets = {ids.get(int(e.get("band_id", -1)), ""): float((e.text or "0").strip())
               for e in _all(root, "BOA_ADD_OFFSET")}
    specials = {_text(s, "SPECIAL_VALUE_TEXT", path): int(_text(s, "SPECIAL_VALUE_INDEX", path))
                for s in _all(root, "Special_Values")}
    cloud = _text(root, "Cloud_Coverage_Assessment", path, default="")
    return ProductMetadata(
        product_uri=_text(root, "PRODUCT_URI", path).removesuffix(".SAFE"),
        start=dt.datetime.fromisoformat(_text(root, "PRODUCT_START_TIME", path)),
        baseline=_text(root, "PROCESSING_BASELINE", path),
        platform=_text(root, "SPACECRAFT_NAME", path, default="Sentinel-2").lower(),
        product_type=_text(root, "PRODUCT_TYPE", path, default="S2MSI2A"),
        quantification=quant["BOA_QUANTIFICATION_VALUE"],
        offsets={k: v for k, v in offsets.items() if k},
        aux_quantification={k.split("_")[0]: v for k, v in quant.items() if k != "BOA_QUANTIFICATION_VALUE"},
        nodata=specials.get("NODATA", 0),
        saturated=specials.get("SATURATED"),
        cloud_cover=float(cloud) if cloud else None,
        footprint=_footprint(root),
    )


def _band_ids(root: ET.Element) -> dict[int, str]:
    """``bandId`` -> ESA id from Spectral_Information (``physicalBand="B4"`` -> ``B04``)."""
    ids = dict(enumerate(BAND_IDS))
    for info in _all(root, "Spectral_Information"):
        band, physical = info.get("bandId"), info.get("physicalBand", "")
        if band is not None and physical.startswith("B"):
            ids[int(band)] = "B" + physical[1:].zfill(2) if physical[1:].isdigit() else physical.upper()
    return ids


def _footprint(root: ET.Element) -> Polygon | None:
    found = _all(root, "EXT_POS_LIST")
    values = [float(v) for v in (found[0].text or "").split()] if found else []
    if len(values) < 8:
        return None
    ring = [(values[i + 1], values[i]) for i in range(0, len(values) - 1, 2)]  # lat lon -> lon lat
    polygon = Polygon(ring)
    return polygon if polygon.is_valid and polygon.area > 0 else None


def read_tile_grid(path: str | os.PathLike[str]) -> TileGrid:
    """Parse the granule ``MTD_TL.xml`` (EPSG code, and shape and transform per resolution).

    Raises
    ------
    DataError
        If the EPSG code or a grid is missing.
    """
    path = Path(path)
    root = _parse(path)
    code = _text(root, "HORIZONTAL_CS_CODE", path)
    try:
        epsg = int(code.upper().removeprefix("EPSG:"))
    except ValueError as exc:
        raise DataError(f"{path}: HORIZONTAL_CS_CODE {code!r} is not an EPSG code") from exc
    sizes = {int(s.get("resolution", 0)): (int(_text(s, "NROWS", path)), int(_text(s, "NCOLS", path)))
             for s in _all(root, "Size")}
    grids = {}
    for pos in _all(root, "Geoposition"):
        res = int(pos.get("resolution", 0))
        if res in sizes:
            ulx, uly, xdim, ydim = (float(_text(pos, k, path)) for k in ("ULX", "ULY", "XDIM", "YDIM"))
            grids[res] = (sizes[res], (xdim, 0.0, ulx, 0.0, ydim, uly))
    if not grids:
        raise DataError(f"{path} has no Size/Geoposition pair; the granule grid is unknown")
    return TileGrid(epsg, grids)


# -- item ------------------------------------------------------------------------------


def safe_to_item(path: str | os.PathLike[str], *, extract_to: str | os.PathLike[str] | None = None) -> pystac.Item:
    """Describe a downloaded Sentinel-2 L2A product as a STAC item with one asset per band file.

    Parameters
    ----------
    path
        A ``.SAFE`` folder, or a product ``.zip`` (extracted safely first).
    extract_to
        Where a zip is extracted (its folder by default); an already
        extracted product is reused.

    Returns
    -------
    pystac.Item
        Assets ``B02_10m``, ``B8A_20m``, ``SCL_20m``… pointing at the local
        JP2 files, with ``raster:bands`` (scale = 1/quantification, offset =
        BOA_ADD_OFFSET/quantification, nodata 0) and ``proj:*``.

    Raises
    ------
    DataError
        If the product is damaged, not L2A, multi-granule or unsafe to extract.

    Examples
    --------
    >>> item = safe_to_item("S2A_MSIL2A_…_.zip")  # doctest: +SKIP
    >>> ds = load([item], bands=["red", "nir"], aoi=aoi)  # doctest: +SKIP
    """
    folder = Path(path)
    if folder.is_file() and zipfile.is_zipfile(folder):
        folder = extract_safe(folder, extract_to if extract_to is not None else folder.parent)
    mtd = folder / "MTD_MSIL2A.xml"
    if not mtd.exists():
        level = "Level-1C products are not supported" if (folder / "MTD_MSIL1C.xml").exists() else \
            "no MTD_MSIL2A.xml found"
        raise DataError(f"{folder}: {level}; give a Sentinel-2 L2A .SAFE folder or zip")
    granules = sorted(folder.glob("GRANULE/*/MTD_TL.xml"))
    if len(granules) != 1:
        raise DataError(f"{folder} holds {len(granules)} granules; only single-tile (compact) products are supported")
    product, grid = read_product_metadata(mtd), read_tile_grid(granules[0])
    assets = _band_assets(granules[0].parent / "IMG_DATA", product, grid)
    if not assets:
        raise DataError(f"{folder} holds no JP2 band file under GRANULE/*/IMG_DATA; the product is incomplete")
    item = _item(product, grid, assets)
    item.add_asset("product_metadata", _xml_asset(mtd, "Product metadata (MTD_MSIL2A.xml)"))
    item.add_asset("granule_metadata", _xml_asset(granules[0], "Granule metadata (MTD_TL.xml)"))
    return item


def _band_assets(img_data: Path, product: ProductMetadata, grid: TileGrid) -> dict[str, pystac.Asset]:
    assets: dict[str, pystac.Asset] = {}
    for path in sorted(img_data.rglob("*.jp2")):
        match = _BAND_FILE.search(path.name)
        if not match or int(match["res"]) not in grid.grids:
            continue
        band, res = match["band"].upper(), int(match["res"])
        assets[f"{band}_{res}m"] = _band_asset(path, band, res, product, grid)
    return assets


def _band_asset(path: Path, band: str, res: int, product: ProductMetadata, grid: TileGrid) -> pystac.Asset:
    shape, transform = grid.grids[res]
    fields: dict[str, Any] = {"gsd": float(res), "proj:epsg": grid.epsg, "proj:shape": list(shape),
                              "proj:transform": list(transform), "raster:bands": [_raster(band, product)]}
    roles = ["data"]
    if band in _COMMON:
        fields["eo:bands"] = [{"name": band, "common_name": _COMMON[band]}]
        roles.append("reflectance")
    elif band == "TCI":
        roles = ["visual"]
    return pystac.Asset(str(path.resolve()), title=f"{band} ({res} m)", media_type="image/jp2", roles=roles,
                        extra_fields=fields)


def _raster(band: str, product: ProductMetadata) -> dict[str, Any]:
    if band in ("SCL", "TCI"):
        return {"nodata": 0, "data_type": "uint8"}
    quant = product.aux_quantification.get(band, product.quantification)
    offset = product.offsets.get(band, 0.0) if band in _COMMON else 0.0
    info: dict[str, Any] = {"nodata": product.nodata, "data_type": "uint16", "scale": 1.0 / quant,
                            "offset": offset / quant}
    if band in _COMMON:
        info["unit"] = "1"
    return info


def _item(product: ProductMetadata, grid: TileGrid, assets: dict[str, pystac.Asset]) -> pystac.Item:
    geometry = product.footprint or _grid_footprint(grid)
    tile = _TILE.search(product.product_uri)
    props: dict[str, Any] = {
        "platform": product.platform,
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "proj:epsg": grid.epsg,
        "s2:processing_baseline": product.baseline,
        "s2:product_type": product.product_type,
        "s2:product_uri": f"{product.product_uri}.SAFE",
        "s2:nodata_value": product.nodata,
    }
    if product.cloud_cover is not None:
        props["eo:cloud_cover"] = product.cloud_cover
    if product.saturated is not None:
        props["s2:saturated_value"] = product.saturated
    if tile:
        props["s2:mgrs_tile"] = tile.group(1)
    start = product.start if product.start.tzinfo else product.start.replace(tzinfo=dt.UTC)
    item = pystac.Item(product.product_uri, mapping(geometry), list(geometry.bounds), start, props,
                       collection="sentinel-2-l2a", assets=assets)
    item.stac_extensions = [
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
        "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    ]
    return item


def _grid_footprint(grid: TileGrid) -> Polygon:
    (rows, cols), (xdim, _, ulx, _, ydim, uly) = grid.grids[min(grid.grids)]
    outline = box(ulx, uly + ydim * rows, ulx + xdim * cols, uly).exterior
    lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(*outline.xy)
    return Polygon(zip(lon, lat, strict=True))


def _xml_asset(path: Path, title: str) -> pystac.Asset:
    return pystac.Asset(str(path.resolve()), title=title, media_type="application/xml", roles=["metadata"])


# -- safe extraction --------------------------------------------------------------------


def extract_safe(zip_path: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extract a product zip into ``dest`` and return its ``.SAFE`` folder.

    Every entry is checked before anything is written; the archive is
    extracted into a temporary folder inside ``dest`` and renamed into
    place, so an interrupted extraction never looks complete. A product
    already extracted there is reused.

    Raises
    ------
    DataError
        If the file is not a zip, is corrupt, or has an entry with an absolute
        path, a ``..`` component, a drive letter, or that is a symbolic link or
        special file (the error names the entry; nothing is written).
    ExportError
        If ``dest`` cannot be written.
    """
    zip_path, dest = Path(zip_path), Path(dest)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
            for info in members:
                _check_member(info, zip_path)
            top = _top_folder(members)
            final = dest / (top or f"{zip_path.stem}.SAFE")
            if (final / "MTD_MSIL2A.xml").exists():
                return final
            _extract_into(archive, members, dest, final, top)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{zip_path} is not a valid zip ({exc}); download it again") from exc
    return final


def _check_member(info: zipfile.ZipInfo, zip_path: Path) -> None:
    name = info.filename
    posix = PurePosixPath(name.replace("\\", "/"))
    mode = (info.external_attr >> 16) & 0o170000
    reason = None
    if name.startswith(("/", "\\")) or posix.is_absolute():
        reason = "absolute path"
    elif re.match(r"^[A-Za-z]:", name):
        reason = "drive letter"
    elif ".." in posix.parts:
        reason = "'..' component"
    elif mode == stat.S_IFLNK:
        reason = "symbolic link"
    elif mode not in (0, stat.S_IFREG, stat.S_IFDIR):
        reason = "special file"
    if reason:
        raise DataError(f"{zip_path.name}: entry {name!r} refused ({reason}: it could write outside the "
                        "target folder); the archive is unsafe and nothing was extracted")


def _top_folder(members: Iterable[zipfile.ZipInfo]) -> str | None:
    tops = {PurePosixPath(m.filename.replace("\\", "/")).parts[0] for m in members if m.filename.strip("/")}
    return next(iter(tops)) if len(tops) == 1 and next(iter(tops)).endswith(".SAFE") else None


def _extract_into(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], dest: Path, final: Path,
                  top: str | None) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    except OSError as exc:
        raise ExportError(f"cannot write into {dest}: {exc.strerror or exc}") from exc
    root = work.resolve()
    try:
        for info in members:
            target = (root / info.filename.replace("\\", "/")).resolve()
            if not target.is_relative_to(root):  # defence in depth, after _check_member
                raise DataError(f"entry {info.filename!r} escapes the target folder; nothing was kept")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        commit(root / top if top else root, final)
    except OSError as exc:
        raise ExportError(f"cannot extract into {dest}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
