"""DHuS hubs (the software of the retired Open Access Hub and of national mirrors), via sentinelsat.

DHuS is legacy: prefer the Copernicus Data Space Ecosystem (STAC or
:mod:`territoire_geo.sources.cdse`). ``api_url`` is always required, since
sentinelsat's default URL is the retired ApiHub.

Every request sentinelsat makes goes through :class:`HttpClient` (timeouts,
retries with back-off on 429/5xx and connection errors, no header logging);
sentinelsat's own exceptions are translated into ours. Products are
downloaded with :func:`territoire_geo.sources.download.download` (resume with
``Range``, MD5 verification, atomic rename).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pystac
import requests
import shapely.wkt
from pydantic import SecretStr
from shapely.errors import ShapelyError

from territoire_geo.config import Settings
from territoire_geo.errors import (
    AuthenticationError,
    ChecksumError,
    ConfigError,
    SourceError,
    SourceUnavailableError,
    TerritoireError,
)
from territoire_geo.sources._base import SearchQuery, filter_items, sort_items
from territoire_geo.sources._http import HttpClient, redact_url
from territoire_geo.sources._hub import (
    COLLECTION_OF_TYPE,
    Credentials,
    cloud_floor,
    hub_checksum,
    product_item,
    product_type,
    search_wkt,
)
from territoire_geo.sources.download import DownloadResult, Progress, download

try:  # optional extra: pip install 'territoire_geo[sentinelsat]'
    from sentinelsat import SentinelAPI
    from sentinelsat.exceptions import (
        InvalidChecksumError,
        InvalidKeyError,
        LTAError,
        QueryLengthError,
        QuerySyntaxError,
        SentinelAPIError,
        ServerError,
        UnauthorizedError,
    )
except ImportError:  # pragma: no cover - exercised only without the extra
    SentinelAPI = None

__all__ = ["DhusSource"]

log = logging.getLogger(__name__)
_UUID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_STATUS = re.compile(r"HTTP (\d{3})")


class _RetryingSession(requests.Session):
    """A requests session whose calls all go through :class:`HttpClient` (sentinelsat uses it)."""

    def __init__(self, http: HttpClient) -> None:
        super().__init__()
        self.trust_env = False
        self._http = http

    def request(self, method: str | bytes, url: str | bytes, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        if args:
            raise TypeError("pass request options by keyword")
        method = method.decode() if isinstance(method, bytes) else method
        url = url.decode() if isinstance(url, bytes) else url
        return self._http.request(method.upper(), url, **kwargs)


class DhusSource:
    """Sentinel-2 products from a DHuS hub, as STAC items with a ``product`` (zip) asset.

    Parameters
    ----------
    api_url
        Hub root, e.g. ``https://colhub.met.no/`` (required; no default).
        Credentials in the URL (``https://user:pass@host/``) are taken out of
        it and used as credentials.
    settings
        Timeouts, retries and ``dhus_user``/``dhus_password``.
    user, password
        Override the settings; when neither gives both, the ``.netrc`` entry
        for the hub's host is used.
    product_type
        Default hub product type (``S2MSI2A``); ``query.collections`` or
        ``query.extra["product_type"]`` override it.
    page_size
        Rows per search page (DHuS allows at most 100).
    product_metadata
        Also read each product's OData metadata (online state, MD5, exact
        size): one more request per product.

    Examples
    --------
    >>> hub = DhusSource("https://colhub.met.no/")  # doctest: +SKIP
    >>> items = hub.search(query)  # doctest: +SKIP
    >>> hub.download(items[0], "downloads")  # doctest: +SKIP
    """

    def __init__(self, api_url: str, *, settings: Settings | None = None, user: str | None = None,
                 password: str | SecretStr | None = None, product_type: str = "S2MSI2A",
                 page_size: int = 100, product_metadata: bool = True) -> None:
        if SentinelAPI is None:  # pragma: no cover
            raise ConfigError("DHuS hubs need sentinelsat: pip install 'territoire_geo[sentinelsat]'")
        if not api_url or not api_url.startswith(("http://", "https://")):
            raise ConfigError(f"DHuS api_url {api_url!r} must be an http(s) URL, e.g. https://colhub.met.no/")
        self.settings = settings or Settings()
        url, inline = _split_userinfo(api_url)
        self.api_url = url if url.endswith("/") else url + "/"
        self.name = f"DHuS {redact_url(self.api_url)}"
        self.product_type, self.product_metadata = product_type, product_metadata
        given_user = user or (inline[0] if inline else None) or self.settings.dhus_user
        given_password = password or (inline[1] if inline else None) or self.settings.dhus_password
        self._credentials = Credentials.resolve(given_user, given_password, self.api_url)
        self.http = HttpClient(self.settings)
        if self._credentials is not None:
            self.http.session.auth = self._credentials.pair()
        self.api = self._make_api(page_size)

    def __repr__(self) -> str:
        return f"DhusSource({redact_url(self.api_url)!r})"

    def _make_api(self, page_size: int) -> Any:
        user, password = self._credentials.pair() if self._credentials else (None, None)
        api = SentinelAPI(user, password, api_url=self.api_url, show_progressbars=False,
                          timeout=self.settings.http_timeout)
        api.session.close()
        api.session = _RetryingSession(self.http)  # retries, timeouts, our error policy
        api.page_size = min(max(int(page_size), 1), 100)
        return api

    # -- search -----------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Products matching ``query`` (AOI, period, product type, cloud range), by datetime.

        ``query.extra`` may hold ``product_type`` and ``min_cloud``.

        Raises
        ------
        AuthenticationError
            If the hub refuses the credentials (no retry).
        SourceUnavailableError
            If the hub cannot be reached or keeps failing.
        SourceError
            If the hub rejects the query or answers something unusable.
        """
        keywords: dict[str, Any] = {"platformname": "Sentinel-2",
                                    "producttype": product_type(query, self.product_type)}
        cloud = _cloud_range(query)
        if cloud is not None:
            keywords["cloudcoverpercentage"] = cloud
        with self._translated("search"):
            found = self.api.query(area=search_wkt(query.aoi), date=(query.period.start, query.period.end),
                                   order_by="beginposition", limit=query.limit, **keywords)
            items = [self._to_item(uuid, props) for uuid, props in found.items()]
            if self.product_metadata:
                for item in items:
                    self._add_metadata(item, self.product_info(item.properties["dhus:uuid"]))
        kept = sort_items(cloud_floor(filter_items(items, query), query))
        log.info("%s: %d product(s) found, %d kept", self.name, len(found), len(kept))
        return kept[: query.limit] if query.limit else kept

    def _to_item(self, uuid: str, props: Mapping[str, Any]) -> pystac.Item:
        title = str(props.get("title") or props.get("identifier") or uuid)
        try:
            geometry = shapely.wkt.loads(props["footprint"])
            when = props["beginposition"]
        except (KeyError, TypeError, ShapelyError) as exc:
            raise SourceError(f"{self.name} returned product {title} without a usable footprint or "
                              "beginposition; the hub answer is incomplete") from exc
        properties: dict[str, Any] = {"dhus:uuid": _checked_uuid(uuid, self.name)}
        if props.get("cloudcoverpercentage") is not None:
            properties["eo:cloud_cover"] = float(props["cloudcoverpercentage"])
        if props.get("producttype"):
            properties["s2:product_type"] = props["producttype"]
        item = product_item(title, when, geometry, properties, self._value_url(uuid),
                            collection=COLLECTION_OF_TYPE.get(str(props.get("producttype"))))
        _fill_from_search(item, props)
        return item

    # -- product metadata and download --------------------------------------------

    def product_info(self, uuid: str) -> dict[str, Any]:
        """Online state, checksum (multihash) and size of a product, from its OData metadata."""
        url = f"{self.api_url}odata/v1/Products('{_checked_uuid(uuid, self.name)}')?$format=json"
        with self._translated("reading product metadata"):
            body = self.http.get_json(url)
        entry = body.get("d", body) if isinstance(body, dict) else {}
        checksum = entry.get("Checksum") if isinstance(entry.get("Checksum"), dict) else {}
        length = entry.get("ContentLength")
        return {
            "online": entry.get("Online", True) is not False,
            "checksum": hub_checksum(checksum.get("Algorithm"), checksum.get("Value")),
            "size": int(length) if str(length or "").isdigit() else None,
        }

    @staticmethod
    def _add_metadata(item: pystac.Item, info: Mapping[str, Any]) -> None:
        item.properties["dhus:online"] = info["online"]
        asset = item.assets["product"]
        if info["size"] is not None:
            asset.extra_fields["file:size"] = info["size"]
        if info["checksum"]:
            asset.extra_fields["file:checksum"] = info["checksum"]

    def download(self, item: pystac.Item, dest: str | Path, progress: Progress | None = None) -> DownloadResult:
        """Download a product's zip into the folder ``dest`` (``<id>.zip``), resumable and MD5-verified.

        Raises
        ------
        SourceError
            If the product is offline (long-term archive): its retrieval is
            requested and the error says to retry later; never waits.
        ChecksumError
            If the bytes do not match the hub's MD5 (the file is not kept).
        AuthenticationError, SourceUnavailableError
            As for :meth:`search`.
        """
        uuid = str(item.properties.get("dhus:uuid") or _uuid_from_href(item.assets["product"].href))
        info = self.product_info(uuid)
        target = Path(dest) / f"{item.id}.zip"
        if not info["online"] and not target.exists():
            self._request_retrieval(item.id, uuid)
        with self._translated("download"):
            return download(self._value_url(uuid), target, http=self.http, checksum=info["checksum"],
                            progress=progress)

    def _request_retrieval(self, product: str, uuid: str) -> None:
        try:
            with self._translated("requesting a retrieval from the long-term archive"):
                triggered = self.api.trigger_offline_retrieval(uuid)
        except AuthenticationError as exc:
            raise SourceError(f"product {product} is offline (long-term archive) and {self.name} refused "
                              "to retrieve it (quota of offline requests reached, or no rights); retry later"
                              ) from exc
        if triggered is False:
            log.info("%s: product %s came online", self.name, product)
            return
        raise SourceError(f"product {product} is offline (long-term archive); it was requested — retry later")

    def _value_url(self, uuid: str) -> str:
        return f"{self.api_url}odata/v1/Products('{_checked_uuid(uuid, self.name)}')/$value"

    # -- errors -------------------------------------------------------------------

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Turn sentinelsat and requests exceptions into ours, with one-line messages."""
        try:
            yield
        except AuthenticationError as exc:
            raise self._auth_error(action, str(exc)) from exc
        except TerritoireError:
            raise
        except Exception as exc:
            raise self._translate(exc, action) from exc

    def _auth_error(self, action: str, detail: str) -> AuthenticationError:
        status = _STATUS.search(detail)
        host = urlsplit(self.api_url).hostname
        return AuthenticationError(
            f"{self.name} refused the credentials during {action} (HTTP {status.group(1) if status else 401}); "
            f"set TERRITOIRE_DHUS_USER and TERRITOIRE_DHUS_PASSWORD or a ~/.netrc entry for {host}"
        )

    def _translate(self, exc: Exception, action: str) -> Exception:
        detail = _one_line(getattr(exc, "msg", "") or str(exc))
        if isinstance(exc, UnauthorizedError):
            return self._auth_error(action, detail)
        if isinstance(exc, InvalidChecksumError):
            return ChecksumError(f"{self.name}: MD5 mismatch during {action}; the file was discarded, run again")
        if isinstance(exc, (QuerySyntaxError, QueryLengthError)):
            return SourceError(f"{self.name} rejected the query ({detail}); simplify the AOI or the keywords")
        if isinstance(exc, InvalidKeyError):
            return SourceError(f"{self.name} does not know this product ({detail}); search again")
        if isinstance(exc, LTAError):
            return SourceError(f"{self.name} refused a long-term-archive retrieval ({detail}); retry later")
        if isinstance(exc, ServerError):
            return SourceUnavailableError(f"{self.name} answered an invalid response during {action} ({detail}); "
                                          "the hub may be in maintenance, retry later")
        if isinstance(exc, SentinelAPIError):
            return SourceError(f"{self.name} failed during {action} ({detail}); check the URL and the query")
        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return SourceUnavailableError(f"cannot reach {self.name} during {action} ({type(exc).__name__}); "
                                          "check the URL and your network, then retry")
        if isinstance(exc, (KeyError, TypeError, ValueError)):
            return SourceError(f"{self.name} answered something unexpected during {action} "
                               f"({type(exc).__name__}: {detail}); is the URL a DHuS hub?")
        return exc


def _split_userinfo(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without ``user:password@``, and that pair when present."""
    parts = urlsplit(url)
    if not (parts.username and parts.password):
        return url, None
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), (parts.username, parts.password)


def _cloud_range(query: SearchQuery) -> tuple[float, float] | None:
    low = query.extra.get("min_cloud")
    if query.max_cloud is None and low is None:
        return None
    return (float(low or 0), float(query.max_cloud if query.max_cloud is not None else 100))


def _fill_from_search(item: pystac.Item, props: Mapping[str, Any]) -> None:
    """Use the search entry when the product name did not give platform or baseline."""
    serial = str(props.get("platformserialidentifier") or "")
    if "platform" not in item.properties and serial:
        item.properties["platform"] = serial.lower()
    baseline = props.get("processingbaseline")
    if "s2:processing_baseline" not in item.properties and baseline:
        item.properties["s2:processing_baseline"] = str(baseline)
    end = props.get("endposition")
    if isinstance(end, dt.datetime) and item.datetime and end != item.datetime.replace(tzinfo=None):
        item.common_metadata.start_datetime = item.datetime
        item.common_metadata.end_datetime = end.replace(tzinfo=dt.UTC)


def _checked_uuid(uuid: str, where: str) -> str:
    if not _UUID.match(str(uuid)):
        raise SourceError(f"{where} returned a malformed product id {str(uuid)[:40]!r}; is the URL a DHuS hub?")
    return str(uuid)


def _uuid_from_href(href: str) -> str:
    match = re.search(r"Products\('([^']+)'\)", href)
    if not match:
        raise ConfigError(f"item has no dhus:uuid and its href {redact_url(href)} names no product; "
                          "search the hub again")
    return match.group(1)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:200]
