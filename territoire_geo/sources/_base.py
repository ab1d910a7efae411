"""What every imagery source offers, and the query it receives."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pystac
import shapely
from shapely.geometry import shape

from territoire_geo._types import AOI, DateRange

__all__ = ["ImagerySource", "SearchQuery", "Signer", "filter_items", "item_time", "sort_items"]

log = logging.getLogger(__name__)

#: A hook that turns an asset href into one the client may read (e.g. SAS-signed).
Signer = Callable[[str], str]


@dataclass(frozen=True)
class SearchQuery:
    """A normalised search: where, when, what, and how cloudy at most."""

    aoi: AOI
    period: DateRange
    collections: tuple[str, ...] = ()
    max_cloud: float | None = None
    limit: int | None = None
    extra: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class ImagerySource(Protocol):
    """A place items come from: a STAC API, a static catalog, a hub."""

    name: str

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Items matching ``query``, ordered by datetime."""
        ...


def item_time(item: pystac.Item) -> dt.datetime:
    """The item's datetime, or its start_datetime, as an aware UTC datetime."""
    moment = item.datetime or item.common_metadata.start_datetime
    if moment is None:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def sort_items(items: Iterable[pystac.Item]) -> list[pystac.Item]:
    """Items by datetime, then id; duplicates (same collection and id) dropped."""
    seen: set[tuple[str | None, str]] = set()
    unique = []
    for item in items:
        key = (item.collection_id, item.id)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return sorted(unique, key=lambda i: (item_time(i), i.id))


def _overlaps_period(item: pystac.Item, period: DateRange) -> bool:
    start = item.common_metadata.start_datetime or item.datetime
    end = item.common_metadata.end_datetime or item.datetime
    if start is None or end is None:
        return True
    start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
    end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    return start <= period.end and end >= period.start


def filter_items(items: Iterable[pystac.Item], query: SearchQuery, *, spatial: bool = True,
                 temporal: bool = True, cloud: bool = True) -> list[pystac.Item]:
    """Client-side filtering: footprint, period, collections and cloud cover.

    Items without ``eo:cloud_cover`` (DEM, radar) are kept by the cloud filter.
    """
    area = query.aoi.to_crs(4326).geometry
    kept = []
    for item in items:
        if query.collections and item.collection_id not in query.collections:
            continue
        if spatial and item.geometry and not shape(item.geometry).intersects(area):
            continue
        if temporal and not _overlaps_period(item, query.period):
            continue
        cover = item.properties.get("eo:cloud_cover")
        if cloud and query.max_cloud is not None and cover is not None and float(cover) > query.max_cloud:
            continue
        kept.append(item)
    return kept


def footprint_union(items: Sequence[pystac.Item]) -> shapely.Geometry | None:
    """Union of the items' footprints (EPSG:4326), ``None`` for no item."""
    geoms = [shape(i.geometry) for i in items if i.geometry]
    return shapely.union_all(geoms) if geoms else None
