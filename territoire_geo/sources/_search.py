"""Find items: a source from a URL, profile, hub or path, and the search over an area and a period.

:func:`search` accepts a STAC API URL, a named profile (``earth-search``,
``planetary-computer``, ``cdse``), a DHuS hub (``dhus+https://…``), the CDSE OData
catalogue (``cdse-odata``) or a path to a static catalog, and returns
``pystac.Item`` objects ordered by datetime. :func:`resolve_aoi` is the AOI
normaliser of the whole package once the network may be needed: communes named
by code become their contours.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pystac
from pyproj import CRS

from territoire_geo._types import (
    AOI,
    AOILike,
    DateRangeLike,
    is_commune_spec,
    normalize_aoi,
    normalize_date_range,
)
from territoire_geo.config import Settings
from territoire_geo.errors import ConfigError
from territoire_geo.sources._base import ImagerySource, SearchQuery
from territoire_geo.sources.cdse import CdseODataSource
from territoire_geo.sources.communes import commune_aoi
from territoire_geo.sources.dhus import DhusSource
from territoire_geo.sources.profiles import PROFILES, get_profile
from territoire_geo.sources.stac import StacApiSource, StaticCatalogSource

__all__ = ["open_source", "resolve_aoi", "search"]

log = logging.getLogger(__name__)


def open_source(source: str | os.PathLike[str] | ImagerySource, *,
                settings: Settings | None = None) -> ImagerySource:
    """Turn a URL, profile name, path or source object into an :class:`ImagerySource`.

    Raises
    ------
    ConfigError
        If ``source`` is none of these.
    """
    if isinstance(source, ImagerySource) and not isinstance(source, (str, os.PathLike)):
        return source
    text = os.fspath(source)
    profile = get_profile(text)
    if profile is not None:
        return StacApiSource(profile.url, settings=settings, name=profile.name)
    if text.startswith(("http://", "https://")):
        return StacApiSource(text, settings=settings)
    if text.startswith("dhus+"):
        return DhusSource(text.removeprefix("dhus+"), settings=settings)
    if text.lower() == "cdse-odata":
        return CdseODataSource(settings=settings)
    path = Path(text).expanduser()
    if path.exists():
        return StaticCatalogSource(path)
    raise ConfigError(
        f"source {text!r} is not a URL, a profile ({', '.join(PROFILES)}) or an existing catalog path"
    )


def resolve_aoi(aoi: AOILike, crs: str | int | CRS | None = None, *, settings: Settings | None = None) -> AOI:
    """Any accepted AOI form as an :class:`~territoire_geo.AOI`, communes named by code included.

    ``"insee:30014"``, ``"insee:30014,30028"`` (the union of the communes) and
    ``"epci:200066918"`` (the communes of an EPCI, by SIREN) become their contours
    from geo.api.gouv.fr, cached (:mod:`territoire_geo.sources.communes`); every
    other form goes to :func:`territoire_geo._types.normalize_aoi` (bbox, geometry,
    GeoJSON, vector file, GeoDataFrame).

    Raises
    ------
    ConfigError
        If the input is of no accepted form, or a code is malformed.
    DataError
        If a file cannot be read, is empty, or has no CRS.
    SourceError
        If commune contours are unknown, or unreachable and not cached.
    """
    if isinstance(aoi, str) and is_commune_spec(aoi):
        return commune_aoi(aoi, settings=settings)
    return normalize_aoi(aoi, crs)


def search(
    aoi: AOILike,
    period: DateRangeLike,
    *,
    source: str | os.PathLike[str] | ImagerySource,
    collections: Sequence[str] | str | None = None,
    max_cloud: float | None = None,
    limit: int | None = None,
    settings: Settings | None = None,
) -> list[pystac.Item]:
    """Find imagery (or DEM) items over an area and a period.

    Parameters
    ----------
    aoi
        A bbox in lon/lat, a shapely geometry (lon/lat), a GeoJSON mapping, a
        vector file path, a GeoDataFrame (reprojected as needed) or communes
        (``"insee:30014"``, ``"epci:200066918"``; see :func:`resolve_aoi`).
    period
        ``"2021"``, ``"2021-06"``, ``"2021-01-01/2022-06-30"`` or a pair.
    source
        STAC API URL, profile name, or path to a static catalog.
    collections
        Collection ids; the profile's Sentinel-2 L2A collection when a
        profile is named and none is given.
    max_cloud
        Maximum ``eo:cloud_cover`` in percent (items without it are kept).
    limit
        At most this many items (after filtering).

    Returns
    -------
    list of pystac.Item
        Ordered by datetime. Hrefs are as the provider gives them (unsigned).

    Raises
    ------
    ConfigError
        On a bad AOI, period, source or cloud threshold.
    SourceError
        If the source fails (after retries for transient failures).

    Examples
    --------
    >>> items = search((4.33, 43.97, 4.40, 44.03), "2022",
    ...                source="data_samples/stac", max_cloud=20)  # doctest: +SKIP
    """
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise ConfigError(f"max_cloud={max_cloud} must be between 0 and 100 (percent)")
    if limit is not None and limit < 1:
        raise ConfigError(f"limit={limit} must be at least 1")
    wanted = (collections,) if isinstance(collections, str) else tuple(collections or ())
    profile = get_profile(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else None
    if not wanted and profile is not None:
        wanted = (profile.s2_collection,)
    query = SearchQuery(resolve_aoi(aoi, settings=settings), normalize_date_range(period), wanted, max_cloud, limit)
    found = open_source(source, settings=settings).search(query)
    log.info("%d item(s) found", len(found))
    return found
