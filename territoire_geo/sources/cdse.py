"""Copernicus Data Space Ecosystem (CDSE) OData catalogue: search, OAuth2 tokens, SAFE downloads.

Search needs no account. Downloads need a CDSE account: an access token is
obtained with the password grant (client ``cdse-public``), kept in memory
only, refreshed before it expires and sent as ``Authorization: Bearer`` to
the download host only. A refused token triggers one new authentication,
never a loop. Downloads resume with ``Range`` and are verified against the
product's BLAKE3 (when the ``blake3`` package is installed) or MD5 checksum.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pystac
import requests
import shapely.wkt
from pydantic import SecretStr
from shapely.errors import ShapelyError
from shapely.geometry import shape

from territoire_geo.config import Settings
from territoire_geo.errors import AuthenticationError, ConfigError, SourceError
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

__all__ = ["CATALOGUE_URL", "DOWNLOAD_URL", "TOKEN_URL", "CdseODataSource", "OAuthToken", "odata_filter", "pick_checksum"]

log = logging.getLogger(__name__)

CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
DOWNLOAD_URL = "https://zipper.dataspace.copernicus.eu/odata/v1"
CLIENT_ID = "cdse-public"
MAX_PAGES = 1000
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_SAFE = "$'(),/:"


class _TokenRefused(AuthenticationError):
    """The identity server refused the credentials (re-authenticating would not help)."""


class OAuthToken:
    """A CDSE access token, in memory only, renewed before it expires.

    Parameters
    ----------
    token_url
        The OpenID Connect token endpoint.
    credentials
        Account user name and password.
    http
        Client used for the token endpoint (retries on 429/5xx).
    margin
        Seconds before expiry at which the token is renewed (at most a quarter
        of its lifetime).
    clock
        Monotonic clock, replaceable in tests.
    """

    def __init__(self, token_url: str, credentials: Credentials, *, http: HttpClient,
                 client_id: str = CLIENT_ID, margin: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url, self.client_id, self.margin, self.clock = token_url, client_id, margin, clock
        self._credentials, self._http = credentials, http
        self._access: SecretStr | None = None
        self._refresh: SecretStr | None = None
        self._expires = self._refresh_expires = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OAuthToken({redact_url(self.token_url)!r}, user={self._credentials.user!r})"

    def bearer(self) -> str:
        """A valid access token (renewed with the refresh token, or the password, when needed).

        Raises
        ------
        AuthenticationError
            If the identity server refuses the user name or password.
        """
        with self._lock:
            now = self.clock()
            if self._access is None or now >= self._expires:
                refreshed = self._refresh is not None and now < self._refresh_expires and self._use_refresh()
                if not refreshed:
                    self._password_grant()
            return self._access.get_secret_value() if self._access else ""

    def invalidate(self) -> None:
        """Forget the tokens: the next :meth:`bearer` authenticates with the password again."""
        with self._lock:
            self._access = self._refresh = None
            self._expires = self._refresh_expires = 0.0

    def _use_refresh(self) -> bool:
        refresh = self._refresh.get_secret_value() if self._refresh else ""
        try:
            self._store(self._post({"grant_type": "refresh_token", "client_id": self.client_id,
                                    "refresh_token": refresh}))
        except SourceError as exc:
            log.info("token refresh at %s refused (%s); authenticating again",
                     redact_url(self.token_url), type(exc).__name__)
            return False
        log.debug("access token refreshed")
        return True

    def _password_grant(self) -> None:
        user, password = self._credentials.pair()
        try:
            body = self._post({"grant_type": "password", "client_id": self.client_id,
                               "username": user, "password": password})
        except (AuthenticationError, SourceError) as exc:
            if not isinstance(exc, AuthenticationError) and "HTTP 400" not in str(exc):
                raise
            host = urlsplit(self.token_url).hostname
            raise _TokenRefused(
                f"{redact_url(self.token_url)} refused the CDSE user name or password; check "
                f"TERRITOIRE_CDSE_USER and TERRITOIRE_CDSE_PASSWORD or the ~/.netrc entry for {host}"
            ) from exc
        self._store(body)
        log.debug("access token obtained for %s", user)

    def _post(self, form: Mapping[str, str]) -> dict[str, Any]:
        body = self._http.get_json(self.token_url, method="POST", data=dict(form))
        if not isinstance(body, dict) or not body.get("access_token"):
            raise SourceError(f"{redact_url(self.token_url)} answered without an access token; "
                              "check the token URL")
        return body

    def _store(self, body: Mapping[str, Any]) -> None:
        now = self.clock()
        life = float(body.get("expires_in") or 300)
        self._access = SecretStr(str(body["access_token"]))
        self._expires = now + life - min(self.margin, life / 4)
        if body.get("refresh_token"):
            refresh_life = float(body.get("refresh_expires_in") or life)
            self._refresh = SecretStr(str(body["refresh_token"]))
            self._refresh_expires = now + refresh_life - min(self.margin, refresh_life / 4)
        else:
            self._refresh, self._refresh_expires = None, 0.0


class _BearerAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer`` with a fresh token to each request (stripped on cross-host redirects)."""

    def __init__(self, token: OAuthToken) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token.bearer()}"
        return request


class CdseODataSource:
    """Sentinel-2 products from the CDSE OData catalogue, as items with a ``product`` (zip) asset.

    Parameters
    ----------
    url
        OData catalogue root (search).
    token_url
        OpenID Connect token endpoint.
    download_url
        OData root that serves ``Products(<Id>)/$value`` (the zipper host).
    settings
        Timeouts, retries and ``cdse_user``/``cdse_password``; without them,
        the ``.netrc`` entry for the token host is used.
    user, password
        Override the settings.
    page_size
        ``$top`` per page (CDSE allows up to 1000).
    """

    def __init__(self, url: str = CATALOGUE_URL, token_url: str = TOKEN_URL, download_url: str = DOWNLOAD_URL,
                 settings: Settings | None = None, *, user: str | None = None,
                 password: str | SecretStr | None = None, page_size: int = 100) -> None:
        self.settings = settings or Settings()
        self.url, self.download_url = url.rstrip("/"), download_url.rstrip("/")
        self.token_url = token_url
        self.page_size = min(max(int(page_size), 1), 1000)
        self.name = f"CDSE OData {redact_url(self.url)}"
        self.http = HttpClient(self.settings)
        credentials = Credentials.resolve(user or self.settings.cdse_user,
                                          password or self.settings.cdse_password, token_url)
        self.token = OAuthToken(token_url, credentials, http=HttpClient(self.settings)) if credentials else None
        self.download_http = HttpClient(self.settings)
        if self.token is not None:
            self.download_http.session.auth = _BearerAuth(self.token)

    def __repr__(self) -> str:
        return f"CdseODataSource({redact_url(self.url)!r})"

    # -- search -----------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[pystac.Item]:
        """Products matching ``query``, following ``@odata.nextLink`` pages, by datetime.

        Raises
        ------
        SourceUnavailableError
            If the catalogue cannot be reached or keeps failing (429/5xx retried).
        SourceError
            If it rejects the query or answers something that is not OData.
        """
        params = {"$filter": odata_filter(query, product_type(query, "S2MSI2A")), "$expand": "Attributes",
                  "$top": str(self.page_size), "$orderby": "ContentDate/Start asc"}
        # spaces as %20 (not +) and OData punctuation kept readable, as the CDSE examples write them
        products = self._pages(f"{self.url}/Products?{urlencode(params, quote_via=quote, safe=_SAFE)}", query.limit)
        items = [self._to_item(p) for p in products]
        kept = sort_items(cloud_floor(filter_items(items, query), query))
        log.info("%s: %d product(s) found, %d kept", self.name, len(items), len(kept))
        return kept[: query.limit] if query.limit else kept

    def _pages(self, url: str, limit: int | None) -> list[dict[str, Any]]:
        page = self.http.get_json(url)
        products: list[dict[str, Any]] = []
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if not isinstance(page, dict) or not isinstance(page.get("value"), list):
                raise SourceError(f"{self.name} answered something that is not an OData product list; "
                                  "check the URL")
            products.extend(p for p in page["value"] if isinstance(p, dict))
            link = page.get("@odata.nextLink")
            if not link or link in seen or (limit and len(products) >= limit):
                break
            seen.add(link)
            page = self.http.get_json(link)
        return products

    def _to_item(self, product: Mapping[str, Any]) -> pystac.Item:
        name = str(product.get("Name") or "")
        try:
            pid = _checked_id(str(product["Id"]), self.name)
            when = dt.datetime.fromisoformat(str(product["ContentDate"]["Start"]))
            geometry = _footprint(product)
        except (KeyError, TypeError, ValueError, ShapelyError) as exc:
            raise SourceError(f"{self.name} returned product {name or '?'} without a usable Id, ContentDate "
                              "or footprint; the catalogue answer is incomplete") from exc
        attrs = {a.get("Name"): a.get("Value") for a in product.get("Attributes") or [] if isinstance(a, dict)}
        ptype = attrs.get("productType")
        properties: dict[str, Any] = {"cdse:id": pid, "cdse:online": product.get("Online", True) is not False}
        if attrs.get("cloudCover") is not None:
            properties["eo:cloud_cover"] = float(attrs["cloudCover"])
        if ptype:
            properties["s2:product_type"] = ptype
        if attrs.get("processingBaseline") not in (None, ""):
            properties["s2:processing_baseline"] = _baseline(attrs["processingBaseline"])
        checksums = _checksums(product.get("Checksum"))
        return product_item(name or pid, when, geometry, properties, self._value_url(pid),
                            size=_int(product.get("ContentLength")), checksum=pick_checksum(checksums),
                            collection=COLLECTION_OF_TYPE.get(str(ptype)),
                            extra_asset={"cdse:checksums": checksums} if checksums else None)

    # -- download -----------------------------------------------------------------

    def download(self, item: pystac.Item, dest: str | Path, progress: Progress | None = None) -> DownloadResult:
        """Download a product's zip into the folder ``dest`` (``<id>.zip``): resumable, verified, atomic.

        Raises
        ------
        ConfigError
            If no CDSE credentials are configured.
        AuthenticationError
            If the credentials are refused, or the token is refused again
            after one new authentication.
        ChecksumError
            If the bytes do not match the product's checksum (file not kept).
        SourceError
            If the product is offline, or on other failures.
        """
        if self.token is None:
            raise ConfigError("CDSE downloads need an account: set TERRITOIRE_CDSE_USER and "
                              "TERRITOIRE_CDSE_PASSWORD, or add a ~/.netrc entry for "
                              f"{urlsplit(self.token_url).hostname}")
        if item.properties.get("cdse:online") is False:
            raise SourceError(f"product {item.id} is offline on CDSE (long-term archive); "
                              "order it on the CDSE portal and retry later")
        url = self._value_url(_checked_id(str(item.properties.get("cdse:id") or _id_from_href(item)), self.name))
        asset = item.assets["product"]
        checksum = pick_checksum(asset.extra_fields.get("cdse:checksums") or []) or \
            asset.extra_fields.get("file:checksum")
        target = Path(dest) / f"{item.id}.zip"
        self.token.bearer()  # refused credentials fail here, before any download request
        try:
            return download(url, target, http=self.download_http, checksum=checksum, progress=progress)
        except _TokenRefused:
            raise
        except AuthenticationError:
            log.info("%s refused the access token; authenticating again (once)", redact_url(url))
        self.token.invalidate()
        try:
            return download(url, target, http=self.download_http, checksum=checksum, progress=progress)
        except _TokenRefused:
            raise
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"{redact_url(url)} refused a fresh CDSE access token; check that your account may "
                "download this product (quota, licence) and retry later"
            ) from exc

    def _value_url(self, pid: str) -> str:
        return f"{self.download_url}/Products({pid})/$value"


def odata_filter(query: SearchQuery, ptype: str = "S2MSI2A", collection: str = "SENTINEL-2") -> str:
    """The OData ``$filter`` for ``query``: collection, AOI, closed period, product type, cloud range."""
    clauses = [
        f"Collection/Name eq {_quote(collection)}",
        f"OData.CSC.Intersects(area=geography'SRID=4326;{search_wkt(query.aoi, compact=True)}')",
        f"ContentDate/Start ge {_odata_time(query.period.start)}",
        f"ContentDate/Start le {_odata_time(query.period.end)}",
        "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
        f"att/OData.CSC.StringAttribute/Value eq {_quote(ptype)})",
    ]
    low = query.extra.get("min_cloud")
    for op, value in (("le", query.max_cloud), ("ge", None if low is None else float(str(low)))):
        if value is not None:
            clauses.append("Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
                           f"att/OData.CSC.DoubleAttribute/Value {op} {value:.2f})")
    return " and ".join(clauses)


def pick_checksum(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """The multihash to verify with: BLAKE3 when ``blake3`` is installed, else MD5, else any known one."""
    order = ["MD5", "SHA3-256", "SHA256", "BLAKE3"]
    if _has_blake3():
        order.insert(0, order.pop())
    by_name = {str(e.get("algorithm", "")).upper(): e.get("value") for e in entries}
    for name in order:
        found = hub_checksum(name, by_name.get(name))
        if found:
            return found
    return None


def _has_blake3() -> bool:
    try:
        import blake3  # noqa: F401  (optional: BLAKE3 checksums of CDSE products)
    except ImportError:
        return False
    return True


def _checksums(raw: Any) -> list[dict[str, str]]:
    entries = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    return [{"algorithm": str(e["Algorithm"]), "value": str(e["Value"])}
            for e in entries if isinstance(e, dict) and e.get("Algorithm") and e.get("Value")]


def _footprint(product: Mapping[str, Any]) -> Any:
    if isinstance(product.get("GeoFootprint"), dict):
        return shape(product["GeoFootprint"])
    text = str(product["Footprint"])
    return shapely.wkt.loads(text.split(";", 1)[-1].rstrip("'"))


def _baseline(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number / 100 if number >= 100 else number:05.2f}"


def _odata_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _checked_id(pid: str, where: str) -> str:
    if not _ID.match(pid):
        raise SourceError(f"{where}: malformed product id {pid[:40]!r}; search again")
    return pid


def _id_from_href(item: pystac.Item) -> str:
    match = re.search(r"Products\(([^)]+)\)", item.assets["product"].href)
    if not match:
        raise ConfigError(f"item {item.id} has no cdse:id; search the CDSE catalogue again")
    return match.group(1).strip("'")
