"""Canonical band names, provider alias tables and per-item scale/offset.

Every provider names its assets its own way (``red`` on Earth Search v1,
``B04`` on Planetary Computer and Earth Search v0, ``B04_10m`` on CDSE,
``red``/``nir08`` on Landsat C2). :func:`band_assets` maps an item's assets
onto the canonical names of :data:`CANONICAL_BANDS` and decides, per item,
the scale and offset that turn digital numbers into reflectance::

    reflectance = DN * scale + offset        (DN == nodata -> NaN)

The Sentinel-2 L2A offset rule (analysis-viz.md §2.3) is decided from the
item's metadata, never from its date:

1. the provider says the offset is already applied
   (``earthsearch:boa_offset_applied: true``) -> offset 0;
2. else processing baseline >= 04.00 (``s2:processing_baseline``,
   ``processing:version`` or ``_N04xx_`` in the product name) -> the declared
   ``raster:bands`` offset, or -1000 DN (-0.1) when none is declared;
3. else (baseline < 04.00) -> offset 0;
4. no baseline at all -> the declared offset, or 0.

When two signals disagree a :class:`~territoire_geo.errors.ScalingWarning`
says which one was followed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pystac

from territoire_geo.errors import MissingBandError, ScalingWarning

__all__ = [
    "CANONICAL_BANDS",
    "CLASS_BANDS",
    "BandAsset",
    "ItemScaling",
    "band_assets",
    "item_scaling",
    "processing_baseline",
    "resolve_bands",
]

#: Canonical band names (design.md §3).
CANONICAL_BANDS: tuple[str, ...] = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3",
    "nir", "nir08", "nir09", "cirrus", "swir16", "swir22", "scl", "qa_pixel",
)  # fmt: skip

#: Bands that hold classes or bit flags, never scaled.
CLASS_BANDS: frozenset[str] = frozenset({"scl", "qa_pixel"})

_S2_IDS = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1",
    "B06": "rededge2", "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09",
    "B10": "cirrus", "B11": "swir16", "B12": "swir22", "SCL": "scl",
}  # fmt: skip
_LANDSAT_IDS = {
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "nir08",
    "B6": "swir16", "B7": "swir22", "QA_PIXEL": "qa_pixel",
}  # fmt: skip
_COMMON_NAMES = {
    "coastal": "coastal", "blue": "blue", "green": "green", "red": "red",
    "nir": "nir", "nir08": "nir08", "nir09": "nir09", "cirrus": "cirrus",
    "swir16": "swir16", "swir22": "swir22", "rededge071": "rededge1",
    "rededge075": "rededge2", "rededge078": "rededge3",
}  # fmt: skip
_RESOLUTION_SUFFIX = re.compile(r"^(?P<band>[A-Za-z0-9]+?)_(?P<res>\d+)m$")
_BASELINE_IN_NAME = re.compile(r"_N(\d{2})(\d{2})_")
S2_DN_OFFSET = -1000
S2_SCALE = 1e-4
LANDSAT_C2_SCALE = 2.75e-5
LANDSAT_C2_OFFSET = -0.2


@dataclass(frozen=True)
class BandAsset:
    """One band of one item, with what is needed to read it as reflectance.

    Attributes
    ----------
    name
        Canonical band name (``red``, ``scl``…).
    key
        Asset key in the item (``B04_10m``…).
    href
        Where the pixels are.
    scale, offset
        ``reflectance = DN * scale + offset``; 1 and 0 for class bands.
    nodata
        DN marking missing pixels (``None`` if the asset declares none).
    gsd
        Pixel size in metres when known.
    """

    name: str
    key: str
    href: str
    scale: float
    offset: float
    nodata: float | None
    gsd: float | None = None
    checksum: str | None = None


@dataclass(frozen=True)
class ItemScaling:
    """How one item's DNs are turned into reflectance, and why."""

    scale: float | None
    offset: float
    baseline: str | None
    reason: str


def processing_baseline(item: pystac.Item) -> str | None:
    """The Sentinel-2 processing baseline of an item (``"04.00"``), if it says.

    Looks at ``s2:processing_baseline``, ``processing:version``,
    ``sentinel:processing_baseline`` and then ``_Nxxxx_`` in the product name.
    """
    props = item.properties
    for key in ("s2:processing_baseline", "processing:version", "sentinel:processing_baseline"):
        value = props.get(key)
        if value not in (None, ""):
            return _format_baseline(str(value))
    for key in ("s2:product_uri", "sentinel:product_id", "s2:product_id", "title"):
        match = _BASELINE_IN_NAME.search(str(props.get(key, "")))
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    match = _BASELINE_IN_NAME.search(item.id)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _format_baseline(value: str) -> str:
    try:
        return f"{float(value):05.2f}"
    except ValueError:
        return value


def _is_sentinel2(item: pystac.Item) -> bool:
    text = " ".join(str(item.properties.get(k, "")) for k in ("platform", "constellation"))
    return "sentinel-2" in text.lower().replace(" ", "-") or (item.collection_id or "").startswith(
        ("sentinel-2", "sentinel-s2")
    )


def _is_landsat(item: pystac.Item) -> bool:
    platform = str(item.properties.get("platform", "")).lower()
    return "landsat" in platform or "landsat" in (item.collection_id or "")


def item_scaling(item: pystac.Item, declared_offset: float | None, declared_scale: float | None) -> ItemScaling:
    """Decide the reflectance scale and offset of an item from its metadata.

    Parameters
    ----------
    item
        The STAC item.
    declared_offset, declared_scale
        What the item's reflectance assets declare in ``raster:bands`` (or
        ``raster:offset``/``raster:scale``), ``None`` when nothing is declared.

    Returns
    -------
    ItemScaling
        The scale (``None``: use the declared one or the sensor default), the
        offset in reflectance units and the reason, for the run manifest.
    """
    if _is_landsat(item):
        return ItemScaling(
            declared_scale or LANDSAT_C2_SCALE,
            LANDSAT_C2_OFFSET if declared_offset is None else declared_offset,
            None,
            "Landsat Collection 2 surface reflectance scaling",
        )
    if not _is_sentinel2(item):
        return ItemScaling(declared_scale, declared_offset or 0.0, None, "declared raster:bands scaling")
    return _sentinel2_scaling(item, declared_offset, declared_scale or S2_SCALE)


def _sentinel2_scaling(item: pystac.Item, declared: float | None, scale: float) -> ItemScaling:
    baseline = processing_baseline(item)
    applied = item.properties.get("earthsearch:boa_offset_applied")
    native = S2_DN_OFFSET * scale
    if applied is True:
        if declared not in (None, 0.0):
            _warn(item, f"declares offset {declared} but earthsearch:boa_offset_applied is true; offset not applied")
        return ItemScaling(scale, 0.0, baseline, "offset already applied by the provider")
    if baseline is None:
        return ItemScaling(scale, declared or 0.0, None, "no processing baseline; declared offset used")
    if _baseline_value(baseline) >= 4.0:
        if declared is None:
            return ItemScaling(scale, native, baseline, f"baseline {baseline} >= 04.00: BOA offset -1000 DN")
        if declared != native:
            _warn(item, f"baseline {baseline} needs offset {native} but declares {declared}; baseline followed")
            return ItemScaling(scale, native, baseline, f"baseline {baseline} >= 04.00 (declared offset ignored)")
        return ItemScaling(scale, declared, baseline, f"baseline {baseline} >= 04.00: declared offset")
    if declared not in (None, 0.0):
        _warn(item, f"baseline {baseline} < 04.00 has no offset but declares {declared}; baseline followed")
    return ItemScaling(scale, 0.0, baseline, f"baseline {baseline} < 04.00: no offset")


def _baseline_value(baseline: str) -> float:
    try:
        return float(baseline)
    except ValueError:
        return 0.0


def _warn(item: pystac.Item, message: str) -> None:
    warnings.warn(f"item {item.id}: {message}", ScalingWarning, stacklevel=4)


def _canonical_from_key(key: str) -> tuple[str | None, int]:
    """Canonical name from an asset key, with a resolution rank (lower is better)."""
    lowered = key.lower()
    if lowered in CANONICAL_BANDS:
        return lowered, 0
    match = _RESOLUTION_SUFFIX.match(key)
    band, res = (match.group("band"), int(match.group("res"))) if match else (key, 0)
    upper = band.upper()
    name = _S2_IDS.get(upper) or _LANDSAT_IDS.get(upper)
    return name, res


def _canonical_from_bands(asset: pystac.Asset) -> str | None:
    bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    if len(bands) != 1 or not isinstance(bands[0], Mapping):
        return None
    entry = bands[0]
    by_id = _S2_IDS.get(str(entry.get("name", "")).upper())
    if by_id:
        return by_id
    common = entry.get("common_name") or entry.get("eo:common_name")
    return _COMMON_NAMES.get(str(common)) if common else None


def _raster_info(asset: pystac.Asset) -> dict[str, Any]:
    fields = asset.extra_fields
    info: dict[str, Any] = {}
    rbands = fields.get("raster:bands") or fields.get("bands") or []
    if rbands and isinstance(rbands[0], Mapping):
        first = rbands[0]
        info.update({k: first[k] for k in ("scale", "offset", "nodata") if k in first})
        for key in ("raster:scale", "raster:offset"):
            if key in first:
                info[key.split(":")[1]] = first[key]
    for key in ("raster:scale", "raster:offset"):
        if key in fields:
            info[key.split(":")[1]] = fields[key]
    if "nodata" in fields:
        info["nodata"] = fields["nodata"]
    return info


def _is_image(asset: pystac.Asset) -> bool:
    media = (asset.media_type or "").lower()
    if media and not any(t in media for t in ("tiff", "jp2", "jpeg2000", "geotiff")):
        return False
    return "metadata" not in (asset.roles or [])


def _candidates(item: pystac.Item) -> dict[str, tuple[int, int, str]]:
    """canonical -> (priority, resolution rank, key); lower tuples win."""
    chosen: dict[str, tuple[int, int, str]] = {}
    for key, asset in item.assets.items():
        if not _is_image(asset):
            continue
        name, res = _canonical_from_key(key)
        priority = 0
        if name is None:
            name, priority = _canonical_from_bands(asset), 1
            res = int(asset.extra_fields.get("gsd") or 0)
        if name is None:
            continue
        rank = (priority, res, key)
        if name not in chosen or rank < chosen[name]:
            chosen[name] = rank
    if "nir" not in chosen and "nir08" in chosen and _is_landsat(item):
        chosen["nir"] = chosen["nir08"]
    return chosen


def band_assets(item: pystac.Item, bands: Iterable[str] | None = None) -> dict[str, BandAsset]:
    """Map an item's assets onto canonical band names.

    Parameters
    ----------
    item
        A STAC item from any supported provider.
    bands
        Canonical names wanted; all recognised bands when omitted.

    Returns
    -------
    dict
        Canonical name -> :class:`BandAsset` with the scale and offset that
        turn this item's DNs into reflectance.

    Raises
    ------
    MissingBandError
        If a requested band is not a canonical name, or the item has no asset
        for it.

    Examples
    --------
    >>> assets = band_assets(item, ["red", "nir"])  # doctest: +SKIP
    >>> assets["red"].key, assets["red"].offset  # doctest: +SKIP
    ('B04_10m', -0.1)
    """
    wanted = resolve_bands(bands) if bands is not None else None
    chosen = _candidates(item)
    if wanted is not None:
        missing = [b for b in wanted if b not in chosen]
        if missing:
            raise MissingBandError(
                f"item {item.id} has no asset for band(s) {', '.join(missing)}; "
                f"it has {', '.join(sorted(chosen)) or 'no image asset'}"
            )
    names = wanted if wanted is not None else sorted(chosen)
    scaling = _scaling_for(item, chosen)
    return {name: _band_asset(item, name, chosen[name][2], scaling) for name in names}


def _scaling_for(item: pystac.Item, chosen: Mapping[str, tuple[int, int, str]]) -> ItemScaling:
    reflective = [v[2] for k, v in chosen.items() if k not in CLASS_BANDS]
    infos = [_raster_info(item.assets[key]) for key in reflective]
    offsets = [i["offset"] for i in infos if "offset" in i]
    scales = [i["scale"] for i in infos if "scale" in i]
    return item_scaling(item, offsets[0] if offsets else None, scales[0] if scales else None)


def _band_asset(item: pystac.Item, name: str, key: str, scaling: ItemScaling) -> BandAsset:
    asset = item.assets[key]
    href = asset.get_absolute_href() or asset.href
    info = _raster_info(asset)
    nodata = info.get("nodata", 1 if name == "qa_pixel" else 0)
    checksum = asset.extra_fields.get("file:checksum")
    gsd = asset.extra_fields.get("gsd") or _pixel_size(asset) or item.properties.get("gsd")
    if name in CLASS_BANDS:
        return BandAsset(name, key, href, 1.0, 0.0, nodata, _float(gsd), checksum)
    scale = scaling.scale if scaling.scale is not None else float(info.get("scale", 1.0))
    return BandAsset(name, key, href, float(scale), float(scaling.offset), nodata, _float(gsd), checksum)


def _pixel_size(asset: pystac.Asset) -> float | None:
    transform = asset.extra_fields.get("proj:transform")
    return abs(float(transform[0])) if transform else None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def resolve_bands(bands: Iterable[str]) -> list[str]:
    """Validate band names, accepting canonical names and Sentinel-2 ids (``B04``).

    Raises
    ------
    MissingBandError
        If a name is neither canonical nor a known band id.
    """
    if isinstance(bands, str):
        bands = [bands]
    result: list[str] = []
    for band in bands:
        name = band.lower() if band.lower() in CANONICAL_BANDS else _S2_IDS.get(band.upper())
        if name is None:
            raise MissingBandError(
                f"unknown band {band!r}; use one of {', '.join(CANONICAL_BANDS)}"
            )
        if name not in result:
            result.append(name)
    return result
