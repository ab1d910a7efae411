"""Fetch imagery assets into a local cache folder (whole files or AOI clips).

Layout: ``<dest>/<collection>/<item id>/<band>.tif`` plus ``<dest>/items.json``,
an item collection whose hrefs point at the local files, so that
``load(search(..., source=dest))`` works offline afterwards.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pystac

from territoire_geo._atomic import write_text
from territoire_geo._types import AOILike
from territoire_geo.config import Settings
from territoire_geo.errors import AuthenticationError, ConfigError
from territoire_geo.imagery._clip import clip_to_cog
from territoire_geo.imagery.bands import band_assets
from territoire_geo.sources import HttpClient, redact_url, resolve_aoi
from territoire_geo.sources.download import download
from territoire_geo.sources.safe import safe_to_item

__all__ = ["FetchedAsset", "fetch", "fetch_report"]

Progress = Callable[[str, int, int | None], None]
T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedAsset:
    """One asset after :func:`fetch`."""

    item_id: str
    band: str
    href: str
    path: str
    bytes: int
    cached: bool
    resumed: bool
    verified: str | None
    clipped: bool


def fetch(
    items: Iterable[pystac.Item],
    bands: Sequence[str] | str,
    dest: str | os.PathLike[str],
    *,
    aoi: AOILike | None = None,
    settings: Settings | None = None,
    sign: Callable[[str], str] | None = None,
    progress: Progress | None = None,
    source: Any = None,
) -> tuple[list[pystac.Item], list[FetchedAsset]]:
    """Download the given bands of the given items into ``dest``.

    Parameters
    ----------
    items
        Items from :func:`territoire_geo.search`.
    bands
        Canonical band names.
    dest
        Cache folder (created). A file already there and intact is not
        downloaded again.
    aoi
        When given, each asset is clipped to the AOI (window read through
        GDAL, written as a COG) instead of downloaded whole.
    sign
        Hook applied to every href before it is requested. When the server
        refuses a signed URL (401/403: an expired signature), the href is
        signed again and requested once more; a second refusal is an
        :class:`~territoire_geo.errors.AuthenticationError`.
    progress
        Called with (label, bytes just received, total bytes or None).
    source
        The hub source the items came from (DHuS, CDSE OData): their products are
        downloaded whole (zip, verified, resumable) and described as SAFE items.

    Returns
    -------
    (items, assets)
        Items whose hrefs point at the local files, and what was done per asset.

    Raises
    ------
    SourceError
        If a download fails (one line naming the URL); ChecksumError on a bad checksum.
    ExportError
        If the disk is full or ``dest`` cannot be written.
    """
    root = Path(dest)
    http = HttpClient(settings)
    area = resolve_aoi(aoi, settings=settings) if aoi is not None else None
    local_items, report = [], []
    for item in items:
        if _is_hub_product(item):
            hub_item, fetched = _fetch_product(item, root, source, progress)
            local_items.append(hub_item)
            report.append(fetched)
            continue
        local = item.clone()
        for name, band in band_assets(item, bands).items():
            target = root / (item.collection_id or "items") / item.id / f"{name}.tif"
            label = f"{item.id}/{name}"
            if area is not None:
                done = _signed(band.href, sign, partial(_clip, target=target, area=area, settings=settings,
                                                        label=label))
            else:
                result = _signed(band.href, sign, partial(
                    download, target=target, http=http, checksum=band.checksum, size=_size(item, band.key),
                    progress=partial(progress, label) if progress else None))
                done = FetchedAsset(item.id, name, redact_url(band.href), str(target), result.bytes_transferred,
                                    result.cached, result.resumed, result.verified, False)
            report.append(FetchedAsset(item.id, name, redact_url(band.href), done.path, done.bytes,
                                       done.cached, done.resumed, done.verified, done.clipped))
            _point_to_local(local, band.key, target, done.clipped)
        local_items.append(local)
    _write_item_collection(root / "items.json", local_items)
    return local_items, report


def _signed(href: str, sign: Callable[[str], str] | None, get: Callable[[str], T]) -> T:
    """``get(sign(href))``; on 401/403 sign once more (the signature may have expired) and retry once.

    Raises
    ------
    AuthenticationError
        If the freshly signed URL is refused too (no loop).
    """
    if sign is None:
        return get(href)
    try:
        return get(sign(href))
    except AuthenticationError:
        log.info("%s refused the signed URL (expired?); signing it again, once", redact_url(href))
    try:
        return get(sign(href))
    except AuthenticationError as exc:
        raise AuthenticationError(
            f"{redact_url(href)} was refused even after signing the URL again; check the signing "
            "credentials or that you may read this asset"
        ) from exc


def _size(item: pystac.Item, key: str) -> int | None:
    """The asset's ``file:size`` when it is a usable byte count."""
    value = item.assets[key].extra_fields.get("file:size")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _is_hub_product(item: pystac.Item) -> bool:
    return "product" in item.assets and not any(k.upper().startswith(("B0", "B1", "B8", "SCL", "RED", "NIR"))
                                                  for k in item.assets)


def _fetch_product(item: pystac.Item, root: Path, source: Any, progress: Progress | None
                   ) -> tuple[pystac.Item, FetchedAsset]:
    if source is None or not hasattr(source, "download"):
        raise ConfigError(f"item {item.id} is a hub product (zip); fetch it with the hub source it came from")
    folder = root / (item.collection_id or "products")
    label = f"{item.id}/product"
    result = source.download(item, folder, (lambda n, t: progress(label, n, t)) if progress else None)
    local = safe_to_item(result.path, extract_to=folder / "safe")
    fetched = FetchedAsset(item.id, "product", redact_url(item.assets["product"].href), str(result.path),
                           result.bytes_transferred, result.cached, result.resumed, result.verified, False)
    return local, fetched


def _point_to_local(item: pystac.Item, key: str, target: Path, clipped: bool) -> None:
    asset = item.assets[key]
    asset.href = str(target.resolve())
    if clipped:
        asset.extra_fields.pop("file:checksum", None)
        for field in ("proj:shape", "proj:transform", "proj:bbox"):
            asset.extra_fields.pop(field, None)


def _clip(href: str, target: Path, area: Any, settings: Settings | None, label: str) -> FetchedAsset:
    if target.exists():
        return FetchedAsset("", "", href, str(target), 0, True, False, None, True)
    size = clip_to_cog(href, target, area, settings=settings)
    return FetchedAsset("", "", href, str(target), size, False, False, None, True)


def _write_item_collection(path: Path, items: list[pystac.Item]) -> None:
    existing: dict[str, dict[str, Any]] = {}
    if path.exists():
        for feature in json.loads(path.read_text(encoding="utf-8")).get("features", []):
            existing[f"{feature.get('collection')}/{feature['id']}"] = feature
    for item in items:
        existing[f"{item.collection_id}/{item.id}"] = item.to_dict(include_self_link=False, transform_hrefs=False)
    body = {"type": "FeatureCollection", "features": list(existing.values())}
    write_text(path, json.dumps(body, indent=1))


def fetch_report(assets: Iterable[FetchedAsset]) -> list[dict[str, Any]]:
    """The fetch report as JSON-serialisable dictionaries."""
    return [asdict(a) for a in assets]
