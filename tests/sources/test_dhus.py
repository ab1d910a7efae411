"""DHuS through sentinelsat, against a DHuS-like loopback server (OpenSearch + OData + $value)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import requests
from _safe_builder import make_s2_safe, zip_safe
from _servers import Request, Response, RouteServer, free_port
from sentinelsat.exceptions import InvalidChecksumError, SentinelAPIError, ServerError, UnauthorizedError

import territoire_geo
from territoire_geo._types import normalize_aoi, normalize_date_range
from territoire_geo.config import Settings
from territoire_geo.errors import (
    AuthenticationError,
    ChecksumError,
    ConfigError,
    SourceError,
    SourceUnavailableError,
)
from territoire_geo.sources import SearchQuery, open_source
from territoire_geo.sources.dhus import DhusSource

USER, PASSWORD = "alice", "S3cr3t-P4ss!"
AOI = (4.34, 43.98, 4.40, 44.02)
FOOTPRINT = [(4.33, 43.97), (4.41, 43.97), (4.41, 44.03), (4.33, 44.03), (4.33, 43.97)]


def fast(**kw: Any) -> Settings:
    return Settings(http_retries=3, http_backoff=0.01, dhus_user=USER, dhus_password=PASSWORD, **kw)


@dataclass
class Product:
    uuid: str
    title: str
    begin: str
    cloud: float
    body: bytes
    online: bool = True
    md5: str | None = None

    @property
    def checksum(self) -> str:
        return self.md5 or hashlib.md5(self.body).hexdigest().upper()


def _gml(ring: list[tuple[float, float]]) -> str:
    coords = " ".join(f"{lat},{lon}" for lon, lat in ring)
    return ('<gml:Polygon srsName="http://www.opengis.net/gml/srs/epsg.xml#4326" '
            'xmlns:gml="http://www.opengis.net/gml"><gml:outerBoundaryIs><gml:LinearRing>'
            f"<gml:coordinates>{coords}</gml:coordinates></gml:LinearRing></gml:outerBoundaryIs></gml:Polygon>")


def _bytes_response(request: Request, body: bytes, etag: str) -> Response:
    """200 with the whole body, or 206 for ``Range: bytes=a-[b]`` (If-Range honoured)."""
    headers = {"Accept-Ranges": "bytes", "ETag": etag,
               "Content-Disposition": 'attachment; filename="product.zip"'}
    rng = request.headers.get("Range")
    if rng and request.headers.get("If-Range", etag) == etag:
        first, _, last = rng.removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last) if last else len(body) - 1, len(body) - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
        return Response(206, body[start:end + 1], "application/octet-stream", headers)
    return Response(200, body, "application/octet-stream", headers)


class FakeDhus:
    """OpenSearch ``search``, OData product metadata and ``$value`` downloads, with faults."""

    def __init__(self, products: list[Product]) -> None:
        self.products = products
        self.faults: dict[str, deque[Response]] = defaultdict(deque)
        self.cuts: dict[str, deque[int]] = defaultdict(deque)
        self.server = RouteServer({("GET", "/search"): self.search})
        for p in products:
            base = f"/odata/v1/Products('{p.uuid}')"
            self.server.routes[("GET", base)] = lambda r, p=p: self.metadata(r, p)
            self.server.routes[("*", base + "/$value")] = lambda r, p=p: self.value(r, p)

    @property
    def url(self) -> str:
        return self.server.url + "/"

    def count(self, path: str, method: str = "GET") -> int:
        return sum(1 for r in self.server.requests if r.path == path and r.method == method)

    def _refused(self, request: Request) -> Response | None:
        if self.faults[request.path]:
            return self.faults[request.path].popleft()
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return Response(401, "<html><body>Unauthorized</body></html>", "text/html")
        return None

    def search(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused:
            return refused
        rows, start = int(request.query["rows"][0]), int(request.query["start"][0])
        page = [self._entry(p) for p in self.products[start:start + rows]]
        feed: dict[str, Any] = {"opensearch:totalResults": str(len(self.products)),
                                "opensearch:startIndex": str(start), "opensearch:itemsPerPage": str(rows)}
        if page:
            feed["entry"] = page[0] if len(page) == 1 else page  # DHuS sends a bare object for one entry
        return Response(200, {"feed": feed})

    def _entry(self, p: Product) -> dict[str, Any]:
        strings = {"footprint": "POLYGON ((" + ",".join(f"{x} {y}" for x, y in FOOTPRINT) + "))",
                   "gmlfootprint": _gml(FOOTPRINT), "uuid": p.uuid, "identifier": p.title,
                   "filename": f"{p.title}.SAFE", "platformname": "Sentinel-2",
                   "platformserialidentifier": "Sentinel-2A", "producttype": "S2MSI2A",
                   "processingbaseline": "04.00", "format": "SAFE", "size": "1.07 MB"}
        value = f"{self.server.url}/odata/v1/Products('{p.uuid}')/$value"
        return {
            "id": p.uuid, "title": p.title, "summary": f"Date: {p.begin}, Instrument: MSI",
            "link": [{"href": value}, {"rel": "alternative", "href": value.removesuffix("$value")}],
            "date": [{"name": "ingestiondate", "content": p.begin}, {"name": "beginposition", "content": p.begin},
                     {"name": "endposition", "content": p.begin}],
            "double": {"name": "cloudcoverpercentage", "content": p.cloud},
            "int": [{"name": "orbitnumber", "content": 35000}, {"name": "relativeorbitnumber", "content": 108}],
            "str": [{"name": k, "content": v} for k, v in strings.items()],
        }

    def metadata(self, request: Request, p: Product) -> Response:
        refused = self._refused(request)
        if refused:
            return refused
        stamp = "/Date(1649932221024)/"
        return Response(200, {"d": {
            "__metadata": {"media_src": f"{self.server.url}/odata/v1/Products('{p.uuid}')/$value",
                           "type": "DHuS.Product"},
            "Id": p.uuid, "Name": p.title, "ContentType": "application/octet-stream",
            "ContentLength": str(len(p.body)), "CreationDate": stamp, "IngestionDate": stamp,
            "EvictionDate": None, "Online": p.online, "OnDemand": False,
            "ContentDate": {"Start": stamp, "End": stamp}, "ContentGeometry": _gml(FOOTPRINT),
            "Checksum": {"__metadata": {"type": "DHuS.Checksum"}, "Algorithm": "MD5", "Value": p.checksum},
            "Attributes": {"__deferred": {"uri": "..."}},
        }})

    def value(self, request: Request, p: Product) -> Response:
        refused = self._refused(request)
        if refused:
            return refused
        if not p.online:
            return Response(202, b"", "text/plain")  # accepted for retrieval from the long-term archive
        response = _bytes_response(request, p.body, f'"{p.checksum}"')
        if self.cuts[request.path]:
            response.cut_after = self.cuts[request.path].popleft()
        return response


@pytest.fixture(scope="module")
def product_zip(tmp_path_factory: pytest.TempPathFactory, sample_items: list[pystac.Item], real_dir: Path) -> bytes:
    """A real small SAFE zip (JP2 bands) built from the 2022-04-14 sample item."""
    item = next(i for i in sample_items if i.id == "S2A_T31TFJ_20220414T103021_L2A")
    template = real_dir / "metadata" / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_MTD_MSIL2A.xml"
    safe = make_s2_safe(tmp_path_factory.mktemp("safe"), item, template, bands=("red", "scl"))
    return zip_safe(safe).read_bytes()


TITLES = ["S2A_MSIL2A_20220404T103021_N0400_R108_T31TFJ_20220404T120000",
          "S2A_MSIL2A_20220414T103021_N0400_R108_T31TFJ_20220414T120000",
          "S2B_MSIL2A_20220419T103019_N0400_R108_T31TFJ_20220419T120000"]


@pytest.fixture
def hub(product_zip: bytes) -> Iterator[FakeDhus]:
    products = [Product(f"0000000{i}-aaaa-bbbb-cccc-00000000000{i}", t, f"2022-04-{4 + 5 * i:02d}T10:30:21.024Z",
                        10.0 * i, product_zip) for i, t in enumerate(TITLES)]
    fake = FakeDhus(products)
    with fake.server:
        yield fake


def query(**extra: Any) -> SearchQuery:
    return SearchQuery(normalize_aoi(AOI), normalize_date_range("2022-04"), extra=extra)


# -- search ------------------------------------------------------------------------------


def test_search_pages_and_maps_products(hub: FakeDhus) -> None:
    source = DhusSource(hub.url, settings=fast(), page_size=2)
    assert source.api.api_url == hub.url  # never sentinelsat's retired default
    items = source.search(query())
    searches = [r for r in hub.server.requests if r.path == "/search"]
    assert [(r.query["rows"][0], r.query["start"][0]) for r in searches] == [("2", "0"), ("2", "2")]
    q = searches[0].query["q"][0]
    assert 'platformname:"Sentinel-2"' in q and 'producttype:"S2MSI2A"' in q
    assert 'footprint:"Intersects(POLYGON ((4.4 43.98, 4.4 44.02, 4.34 44.02, 4.34 43.98, 4.4 43.98)))"' in q
    assert 'beginPosition:["2022-04-01T00:00:00Z" TO "2022-04-30T23:59:59Z"]' in q
    assert [i.id for i in items] == TITLES
    first = items[1]
    assert first.datetime.isoformat() == "2022-04-09T10:30:21.024000+00:00"
    assert first.properties["eo:cloud_cover"] == 10.0
    assert first.properties["s2:processing_baseline"] == "04.00" and first.properties["platform"] == "sentinel-2a"
    assert first.properties["dhus:online"] is True and first.collection_id == "sentinel-2-l2a"
    asset = first.assets["product"]
    assert asset.href == f"{hub.server.url}/odata/v1/Products('{hub.products[1].uuid}')/$value"
    assert asset.extra_fields["file:checksum"] == "d50110" + hub.products[1].checksum.lower()
    assert asset.extra_fields["file:size"] == len(hub.products[1].body)
    assert first.geometry["type"] == "Polygon"


def test_cloud_range_sent_to_hub_and_applied(hub: FakeDhus) -> None:
    items = DhusSource(hub.url, settings=fast()).search(
        SearchQuery(normalize_aoi(AOI), normalize_date_range("2022-04"), max_cloud=15.0, extra={"min_cloud": 5}))
    assert 'cloudcoverpercentage:["5.0" TO "15.0"]' in hub.server.requests[0].query["q"][0]
    assert [i.properties["eo:cloud_cover"] for i in items] == [10.0]  # the fake ignores q: client filter too


def test_search_through_open_source_and_top_level_search(hub: FakeDhus) -> None:
    assert isinstance(open_source(f"dhus+{hub.url}", settings=fast()), DhusSource)
    items = territoire_geo.search(AOI, "2022-04", source=f"dhus+{hub.url}", settings=fast(), limit=2)
    assert [i.id for i in items] == TITLES[:2]


def test_api_url_is_required() -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        DhusSource("")


def test_wrong_password_is_authentication_error_without_retry(hub: FakeDhus) -> None:
    source = DhusSource(hub.url, settings=fast(), password="wrong")
    with pytest.raises(AuthenticationError, match=r"refused the credentials during search \(HTTP 401\)") as err:
        source.search(query())
    assert hub.count("/search") == 1
    assert "TERRITOIRE_DHUS_PASSWORD" in str(err.value) and "wrong" not in str(err.value)


def test_429_retried_with_backoff_then_success(hub: FakeDhus) -> None:
    hub.faults["/search"].extend([Response(429, "slow down", "text/plain")] * 2)
    items = DhusSource(hub.url, settings=fast()).search(query())
    assert len(items) == 3 and hub.count("/search") == 3


def test_persistent_503_and_closed_port_are_unavailable(hub: FakeDhus) -> None:
    hub.faults["/search"].extend([Response(503, "maintenance", "text/plain")] * 4)
    with pytest.raises(SourceUnavailableError, match=r"failed after 4 attempts \(HTTP 503\)"):
        DhusSource(hub.url, settings=fast()).search(query())
    with pytest.raises(SourceUnavailableError, match="connection refused"):
        DhusSource(f"http://127.0.0.1:{free_port()}/", settings=fast(http_timeout=2)).search(query())


def test_invalid_json_is_translated_from_sentinelsat(hub: FakeDhus) -> None:
    hub.faults["/search"].append(Response(200, "<html>maintenance</html>", "text/html"))
    with pytest.raises(SourceUnavailableError, match="answered an invalid response during search"):
        DhusSource(hub.url, settings=fast()).search(query())


def test_query_syntax_error_in_the_feed(hub: FakeDhus) -> None:
    hub.faults["/search"].append(Response(200, {"feed": {"error": {
        "message": "org.apache.solr.search.SyntaxError: Cannot parse 'footprint:...'"}}}))
    with pytest.raises(SourceError, match=r"rejected the query \(Cannot parse"):
        DhusSource(hub.url, settings=fast()).search(query())


@pytest.mark.parametrize(("raised", "expected", "text"), [
    (lambda: UnauthorizedError("Invalid user name or password"), AuthenticationError, "refused the credentials"),
    (lambda: InvalidChecksumError("File corrupt"), ChecksumError, "MD5 mismatch"),
    (lambda: ServerError("Invalid API response"), SourceUnavailableError, "in maintenance"),
    (lambda: SentinelAPIError("odd"), SourceError, "failed during search"),
    (lambda: requests.ConnectionError("refused"), SourceUnavailableError, "cannot reach"),
])
def test_sentinelsat_exceptions_translated(raised: Any, expected: type, text: str) -> None:
    source = DhusSource("http://127.0.0.1:9/", settings=fast())
    with pytest.raises(expected, match=text) as err, source._translated("search"):
        raise raised()
    assert "\n" not in str(err.value) and "127.0.0.1:9" in str(err.value)


def test_credentials_from_netrc_and_from_the_url(hub: FakeDhus, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert len(DhusSource(hub.url, settings=Settings(http_retries=0)).search(query())) == 3
    monkeypatch.delenv("NETRC")
    inline = hub.url.replace("http://", f"http://{USER}:{PASSWORD}@")
    source = DhusSource(inline, settings=Settings(http_retries=0))
    assert PASSWORD not in source.api_url + source.name + repr(source)
    assert len(source.search(query())) == 3


# -- download ----------------------------------------------------------------------------


def test_download_verifies_md5(hub: FakeDhus, tmp_path: Path) -> None:
    source = DhusSource(hub.url, settings=fast())
    item = source.search(query())[1]
    result = source.download(item, tmp_path)
    assert result.path == tmp_path / f"{item.id}.zip" and result.verified == "md5"
    assert result.path.read_bytes() == hub.products[1].body
    again = source.download(item, tmp_path)
    assert again.cached and again.bytes_transferred == 0


def test_download_resumes_after_a_cut(hub: FakeDhus, tmp_path: Path) -> None:
    source = DhusSource(hub.url, settings=fast())
    item = source.search(query())[0]
    path = f"/odata/v1/Products('{hub.products[0].uuid}')/$value"
    hub.cuts[path].append(40_000)
    result = source.download(item, tmp_path)
    assert result.resumed and result.path.read_bytes() == hub.products[0].body
    ranges = [r.headers.get("Range") for r in hub.server.requests if r.path == path and r.method == "GET"]
    assert ranges[0] is None and 16_000 <= int(ranges[1][6:-1]) <= 40_000


def test_wrong_checksum_rejected_and_not_kept(hub: FakeDhus, tmp_path: Path) -> None:
    hub.products[2].md5 = hashlib.md5(b"something else").hexdigest().upper()
    source = DhusSource(hub.url, settings=fast())
    item = source.search(query())[2]
    with pytest.raises(ChecksumError, match="md5 checksum mismatch"):
        source.download(item, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_429_retried(hub: FakeDhus, tmp_path: Path) -> None:
    source = DhusSource(hub.url, settings=fast())
    item = source.search(query())[0]
    path = f"/odata/v1/Products('{hub.products[0].uuid}')/$value"
    hub.faults[path].extend([Response(429, "busy", "text/plain", {"Retry-After": "0"})] * 2)
    assert source.download(item, tmp_path).verified == "md5"
    assert hub.count(path) == 3


def test_offline_product_requested_from_lta_and_reported_quickly(hub: FakeDhus, tmp_path: Path) -> None:
    hub.products[1].online = False
    source = DhusSource(hub.url, settings=fast())
    item = source.search(query())[1]
    assert item.properties["dhus:online"] is False
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"is offline \(long-term archive\); it was requested — retry later"):
        source.download(item, tmp_path)
    assert time.monotonic() - started < 5
    path = f"/odata/v1/Products('{hub.products[1].uuid}')/$value"
    assert [r.headers.get("Range") for r in hub.server.requests if r.path == path] == ["bytes=0-1"]
    assert list(tmp_path.iterdir()) == []


def test_download_401_is_not_retried(hub: FakeDhus, tmp_path: Path) -> None:
    item = DhusSource(hub.url, settings=fast()).search(query())[0]
    path = f"/odata/v1/Products('{hub.products[0].uuid}')/$value"
    hub.faults[path].append(Response(401, "expired", "text/plain"))
    with pytest.raises(AuthenticationError, match="during download"):
        DhusSource(hub.url, settings=fast()).download(item, tmp_path)
    assert hub.count(path) == 1


# -- secrets ---------------------------------------------------------------------------------


def test_password_never_logged_raised_stored_or_written(hub: FakeDhus, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = DhusSource(hub.url, settings=fast())
    items = source.search(query())
    source.download(items[0], tmp_path / "dl")
    messages = []
    for bad in (DhusSource(hub.url, settings=fast(), password=PASSWORD + "x"),):
        with pytest.raises(AuthenticationError) as err:
            bad.search(query())
        messages.append(str(err.value))
    hub.products[1].online = False
    with pytest.raises(SourceError) as err:
        source.download(items[1], tmp_path / "dl")
    messages.append(str(err.value))
    assert caplog.records and PASSWORD not in caplog.text
    assert not any(PASSWORD in m for m in messages)
    assert PASSWORD not in json.dumps([i.to_dict() for i in items])
    assert PASSWORD not in repr(source) + repr(source._credentials)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes()


def test_fetch_then_load_a_hub_product_like_a_stac_item(hub: FakeDhus, tmp_path: Path,
                                                       sample_items: list[pystac.Item]) -> None:
    from territoire_geo.imagery import fetch, load

    source = DhusSource(hub.url, settings=fast())
    item = source.search(query())[1]
    local, report = fetch([item], ["red", "nir"], tmp_path / "cache", source=source)
    assert report[0].band == "product" and report[0].verified == "md5"
    assert local[0].assets["B04_10m"].href.endswith(".jp2")
    reference = next(i for i in sample_items if i.id == "S2A_T31TFJ_20220414T103021_L2A")
    box = (4.355, 43.99, 4.37, 44.0)
    from_hub = load(local, bands=["red"], aoi=box).red.compute()
    from_stac = load([reference], bands=["red"], aoi=box).red.compute()
    np.testing.assert_allclose(from_hub.values, from_stac.values, atol=1e-6)
    again = fetch([item], ["red"], tmp_path / "cache", source=source)[1]
    assert again[0].cached
