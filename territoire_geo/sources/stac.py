"""STAC API source (pystac-client) and static catalog source (pystac)."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pystac
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.exceptions import APIError
from pystac_client.stac_api_io import StacApiIO

from territoire_geo.config import Settings
from territoire_geo.errors import DataError, SourceError
from territoire_geo.sources._base import SearchQuery, filter_items, sort_items
from territoire_geo.sources._http import HttpClient, parse_json, redact_url

__all__ = ["StacApiSource", "StaticCatalogSource"]

log = logging.getLogger(__name__)
PAGE_SIZE = 100


class _RetryingStacIO(StacApiIO):
    """pystac-client IO that goes through :class:`HttpClient` (retries, no header logging)."""

    def __init__(self, http: HttpClient) -> None:
        super().__init__(timeout=http.settings.http_timeout)
        self.http = http

    def request(self, href: str, method: str | None = None, headers: dict[str, str] | None = None,
                parameters: dict[str, Any] | None = None) -> str:
        method = (method or "GET").upper()
        body = {"json": parameters} if method in {"POST", "PUT", "PATCH"} else {"params": parameters}
        response = self.http.request(method, href, headers=headers, **body)
        parse_json(response, href)
        return response.text


class StacApiSource:
    """Items from a STAC API (``/search``), with paging and cloud filtering.

    Cloud cover is filtered by the server only when its conformance classes
    advertise ``filter`` (CQL2) or ``query``; otherwise on the client, which
    a log line says. The client-side filter always runs too, since some
    servers ignore what they advertise.
    """

    def __init__(self, url: str, *, settings: Settings | None = None, name: str | None = None,
                 page_size: int = PAGE_SIZE) -> None:
        self.url = url.rstrip("/")
        self.page_size = page_size
        self.name = name or redact_url(self.url)
        self.http = HttpClient(settings)

    def _open(self) -> Client:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Client.open(self.url, stac_io=_RetryingStacIO(self.http))
        except APIError as exc:
            raise SourceError(f"STAC API {self.name} failed: {str(exc)[:200]}; check the URL") from exc
        except pystac.STACTypeError as exc:
            raise SourceError(f"{self.name} is not a STAC API landing page; check the URL") from exc

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Search the API; see :func:`territoire_geo.sources.search`."""
        client = self._open()
        params: dict[str, Any] = {
            "bbox": list(query.aoi.bbox_wgs84),
            "datetime": query.period.to_stac(),
            "collections": list(query.collections) or None,
            "limit": self.page_size,
        }
        server_side = self._cloud_params(client, query.max_cloud)
        params.update(server_side)
        if query.limit and (server_side or query.max_cloud is None):
            params["max_items"] = query.limit
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                items = list(client.search(**params).items())
        except APIError as exc:
            raise SourceError(f"search on {self.name} failed: {str(exc)[:200]}") from exc
        kept = sort_items(filter_items(items, query, temporal=False))
        return kept[: query.limit] if query.limit else kept

    def _cloud_params(self, client: Client, max_cloud: float | None) -> dict[str, Any]:
        if max_cloud is None:
            return {}
        if client.conforms_to(ConformanceClasses.FILTER):
            log.info("%s supports CQL2 filter: cloud cover filtered by the server", self.name)
            expr = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, max_cloud]}
            return {"filter": expr, "filter_lang": "cql2-json"}
        if client.conforms_to(ConformanceClasses.QUERY):
            log.info("%s supports query: cloud cover filtered by the server", self.name)
            return {"query": {"eo:cloud_cover": {"lte": max_cloud}}}
        log.info("%s supports neither filter nor query: cloud cover filtered on the client", self.name)
        return {}


class StaticCatalogSource:
    """Items from a static catalog, a collection, an item collection or a folder of items.

    Everything is filtered on the client (footprint, period, collection,
    cloud cover).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)

    def _root(self) -> Path:
        if self.path.is_dir():
            for name in ("catalog.json", "collection.json", "items.json", "items.geojson"):
                if (self.path / name).exists():
                    return self.path / name
            raise DataError(f"{self.path} holds no catalog.json, collection.json or items.json; "
                            "give a static STAC catalog")
        if not self.path.exists():
            raise DataError(f"catalog {self.path} does not exist; check the path")
        return self.path

    def items(self) -> list[pystac.Item]:
        """Every item reachable from the root, unfiltered."""
        root = self._root()
        try:
            if _is_feature_collection(root):
                return list(pystac.ItemCollection.from_file(str(root)))
            obj = pystac.read_file(str(root))
        except (pystac.STACError, ValueError, KeyError, OSError) as exc:
            raise DataError(f"cannot read STAC file {root}: {str(exc).splitlines()[0][:200]}") from exc
        if isinstance(obj, pystac.Item):
            return [obj]
        if isinstance(obj, pystac.ItemCollection):
            return list(obj)
        if isinstance(obj, pystac.Catalog):
            return list(obj.get_items(recursive=True))
        raise DataError(f"{root} is a {type(obj).__name__}, not a catalog, collection or item")

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Filter the catalog's items; see :func:`territoire_geo.sources.search`."""
        kept = sort_items(filter_items(self.items(), query))
        return kept[: query.limit] if query.limit else kept


def _is_feature_collection(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4096)
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("type") == "FeatureCollection"
    except ValueError as exc:
        raise DataError(f"{path} is not JSON ({head[:40]!r}…); give a STAC catalog or item file") from exc
