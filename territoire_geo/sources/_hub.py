"""What the Copernicus hubs (DHuS, CDSE OData) share: credentials, query shapes, product items.

Hub products are whole SAFE archives, not per-band COGs: an item made here
carries one ``product`` asset (the zip) and the Sentinel-2 facts that can be
read from the product name (platform, tile, processing baseline). To read
pixels, download the product and describe it with
:func:`territoire_geo.sources.safe.safe_to_item`, whose item :func:`territoire_geo.load` reads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pystac
import requests
import shapely
from pydantic import SecretStr
from shapely.geometry import Polygon, box, mapping
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from territoire_geo._types import AOI
from territoire_geo.checksums import to_multihash
from territoire_geo.errors import ConfigError, DataError
from territoire_geo.sources._base import SearchQuery

__all__ = [
    "COLLECTION_OF_TYPE",
    "Credentials",
    "cloud_floor",
    "hub_checksum",
    "keyring_credentials",
    "name_facts",
    "netrc_credentials",
    "product_item",
    "product_type",
    "search_polygon",
    "search_wkt",
]

#: Hub product type -> STAC collection id.
COLLECTION_OF_TYPE: dict[str, str] = {"S2MSI2A": "sentinel-2-l2a", "S2MSI1C": "sentinel-2-l1c"}
_TYPE_OF_COLLECTION = {v: k for k, v in COLLECTION_OF_TYPE.items()}
_NAME = re.compile(
    r"^(?P<sat>S2[ABCD])_MSI(?P<level>L[12][AC])_(?P<start>\d{8}T\d{6})_N(?P<b1>\d{2})(?P<b2>\d{2})"
    r"_R(?P<orbit>\d{3})_T(?P<tile>\w{5})_"
)
MAX_POINTS = 200


class Credentials:
    """A user name and a password that never prints, logs or serialises."""

    def __init__(self, user: str, password: str | SecretStr) -> None:
        self.user = user
        self.password = password if isinstance(password, SecretStr) else SecretStr(password)

    def pair(self) -> tuple[str, str]:
        """(user, password) in clear, for the HTTP session only."""
        return self.user, self.password.get_secret_value()

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password='**********')"

    @classmethod
    def resolve(cls, user: str | None, password: str | SecretStr | None, url: str) -> Credentials | None:
        """Explicit user/password when both are given, else ``.netrc``, else the system keyring.

        The keyring entry is service ``territoire_geo``, user name = the host of ``url``
        (``keyring set territoire_geo identity.dataspace.copernicus.eu``) holding
        ``login:password``, or a credential with both when the backend supports it.
        """
        if user and password:
            return cls(user, password)
        found = netrc_credentials(url) or keyring_credentials(url, user)
        return cls(*found) if found else None


def netrc_credentials(url: str) -> tuple[str, str] | None:
    """(login, password) of the ``.netrc`` machine named like ``url``'s host (``$NETRC`` honoured)."""
    found = requests.utils.get_netrc_auth(url)
    return (found[0], found[1]) if found and found[0] and found[1] else None


def keyring_credentials(url: str, user: str | None = None) -> tuple[str, str] | None:
    """(login, password) from the system keyring (optional ``keyring`` package), service ``territoire_geo``."""
    try:
        import keyring  # optional extra [keyring]
        from keyring.errors import KeyringError  # optional extra [keyring]
    except ImportError:
        return None
    host = urlsplit(url).hostname or url
    try:
        credential = keyring.get_credential("territoire_geo", user or host)
    except KeyringError:
        return None
    if credential is None or not credential.password:
        return None
    login, sep, password = credential.password.partition(":")
    if user:
        return user, credential.password
    if credential.username and credential.username != host:
        return credential.username, credential.password
    return (login, password) if sep and login and password else None


def search_polygon(aoi: AOI) -> Polygon:
    """A polygon (EPSG:4326) to send to a hub: the AOI, its hull or its envelope if too detailed.

    Hubs put the polygon in the URL, so it is kept under ``MAX_POINTS``
    vertices; the client filters results on the exact AOI afterwards.
    """
    geom: BaseGeometry = aoi.to_crs(4326).geometry
    if not isinstance(geom, Polygon) or len(geom.exterior.coords) > MAX_POINTS or geom.interiors:
        hull = geom.convex_hull
        geom = hull if isinstance(hull, Polygon) and len(hull.exterior.coords) <= MAX_POINTS else geom.envelope
    if not isinstance(geom, Polygon) or geom.area == 0:
        minx, miny, maxx, maxy = geom.bounds
        geom = box(minx - 1e-6, miny - 1e-6, maxx + 1e-6, maxy + 1e-6)
    return orient(geom, 1.0)


def search_wkt(aoi: AOI, *, compact: bool = False) -> str:
    """WKT of :func:`search_polygon` with 6 decimals (``POLYGON((…))`` when ``compact``)."""
    text = shapely.to_wkt(search_polygon(aoi), rounding_precision=6, trim=True)
    return text.replace("POLYGON ((", "POLYGON((") if compact else text


def product_type(query: SearchQuery, default: str) -> str:
    """The hub product type asked by ``query``: ``extra['product_type']``, a collection, or ``default``.

    Raises
    ------
    ConfigError
        If a collection has no hub product type.
    """
    explicit = query.extra.get("product_type")
    if explicit:
        return str(explicit)
    if not query.collections:
        return default
    types = {_TYPE_OF_COLLECTION.get(c) for c in query.collections}
    if None in types or len(types) != 1:
        raise ConfigError(
            f"collections {', '.join(query.collections)} cannot be searched on a Copernicus hub; "
            f"use one of {', '.join(_TYPE_OF_COLLECTION)}"
        )
    return str(types.pop())


def name_facts(name: str) -> dict[str, Any]:
    """Sentinel-2 facts from a product name (``S2A_MSIL2A_…_N0400_R108_T31TFJ_…``); ``{}`` if not S2."""
    match = _NAME.match(name)
    if not match:
        return {}
    return {
        "platform": f"sentinel-2{match['sat'][-1].lower()}",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "s2:processing_baseline": f"{match['b1']}.{match['b2']}",
        "s2:mgrs_tile": match["tile"],
        "sat:relative_orbit": int(match["orbit"]),
        "s2:product_uri": name if name.endswith(".SAFE") else f"{name}.SAFE",
    }


def cloud_floor(items: list[pystac.Item], query: SearchQuery) -> list[pystac.Item]:
    """Drop items under ``query.extra['min_cloud']`` (hubs may ignore it; items without cover are kept)."""
    low = query.extra.get("min_cloud")
    if low is None:
        return items
    floor = float(str(low))
    return [i for i in items if i.properties.get("eo:cloud_cover") is None
            or float(i.properties["eo:cloud_cover"]) >= floor]


def hub_checksum(algorithm: str | None, value: str | None) -> str | None:
    """A ``file:checksum`` multihash from a hub's (algorithm, hex value), ``None`` if unusable."""
    if not algorithm or not value:
        return None
    try:
        return to_multihash(algorithm, value)
    except DataError:
        return None


def product_item(name: str, when: dt.datetime, geometry: BaseGeometry, properties: Mapping[str, Any],
                 href: str, *, size: int | None = None, checksum: str | None = None,
                 collection: str | None = None, extra_asset: Mapping[str, Any] | None = None) -> pystac.Item:
    """A STAC item for one hub product with a ``product`` asset (the SAFE zip)."""
    item_id = name.removesuffix(".SAFE")
    props = {**name_facts(item_id), **properties}
    fields: dict[str, Any] = dict(extra_asset or {})
    if size is not None:
        fields["file:size"] = int(size)
    if checksum:
        fields["file:checksum"] = checksum
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    item = pystac.Item(item_id, mapping(geometry), list(geometry.bounds), when, props, collection=collection)
    item.add_asset("product", pystac.Asset(href, title="SAFE product (zip)", media_type="application/zip",
                                           roles=["data", "archive"], extra_fields=fields))
    item.stac_extensions = ["https://stac-extensions.github.io/file/v2.1.0/schema.json"]
    return item
