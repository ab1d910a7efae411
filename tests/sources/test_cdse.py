"""CDSE OData source against a loopback OData catalogue + OpenID token endpoint + zipper."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, urlencode

import numpy as np
import pystac
import pytest
from _safe_builder import make_s2_safe, zip_safe
from _servers import Request, Response, RouteServer

from territoire_geo._types import normalize_aoi, normalize_date_range
from territoire_geo.config import Settings
from territoire_geo.errors import AuthenticationError, ChecksumError, ConfigError, SourceError
from territoire_geo.imagery import load
from territoire_geo.sources import SearchQuery, open_source
from territoire_geo.sources.cdse import CATALOGUE_URL, DOWNLOAD_URL, TOKEN_URL, CdseODataSource
from territoire_geo.sources.safe import safe_to_item

USER, PASSWORD = "bob@example.org", "S3cr3t-P4ss!"
AOI = (4.34, 43.98, 4.40, 44.02)
RING = [[4.33, 43.97], [4.41, 43.97], [4.41, 44.03], [4.33, 44.03], [4.33, 43.97]]
IDS = ["11111111-2222-3333-4444-000000000001", "11111111-2222-3333-4444-000000000002",
       "11111111-2222-3333-4444-000000000003"]


def fast(**kw: Any) -> Settings:
    return Settings(http_retries=3, http_backoff=0.01, cdse_user=USER, cdse_password=PASSWORD, **kw)


def _bytes_response(request: Request, body: bytes, etag: str) -> Response:
    headers = {"Accept-Ranges": "bytes", "ETag": etag}
    rng = request.headers.get("Range")
    if rng and request.headers.get("If-Range", etag) == etag:
        first, _, last = rng.removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last) if last else len(body) - 1, len(body) - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
        return Response(206, body[start:end + 1], "application/zip", headers)
    return Response(200, body, "application/zip", headers)


class FakeCdse:
    """Token endpoint (password + refresh grants), OData Products search with paging, zipper downloads."""

    def __init__(self, body: bytes, *, expires_in: int = 2) -> None:
        self.body, self.expires_in = body, expires_in
        self.products = [self._product(pid, day, cloud) for pid, day, cloud in
                         zip(IDS, ("04", "14", "19"), (5.0, 12.5, 18.0), strict=True)]
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.grants: list[str] = []
        self.filters: list[dict[str, list[str]]] = []
        self.faults: dict[str, deque[Response]] = defaultdict(deque)
        self.cuts: dict[str, deque[int]] = defaultdict(deque)
        self.refuse_downloads = False
        self.server = RouteServer({("POST", "/token"): self.token, ("GET", "/odata/v1/Products"): self.search})
        for pid in IDS:
            self.server.routes[("*", f"/zipper/odata/v1/Products({pid})/$value")] = self.value

    def _product(self, pid: str, day: str, cloud: float) -> dict[str, Any]:
        name = f"S2A_MSIL2A_202204{day}T103021_N0400_R108_T31TFJ_202204{day}T120000.SAFE"
        return {
            "@odata.mediaContentType": "application/octet-stream", "Id": pid, "Name": name,
            "ContentType": "application/octet-stream", "ContentLength": len(self.body),
            "OriginDate": f"2022-04-{day}T12:40:00.000Z", "Online": True, "EvictionDate": "",
            "S3Path": f"/eodata/Sentinel-2/MSI/L2A/2022/04/{day}/{name}",
            "Checksum": [{"Value": hashlib.md5(self.body).hexdigest(), "Algorithm": "MD5",
                          "ChecksumDate": "2022-04-14T12:41:00.000000Z"},
                         {"Value": _blake3(self.body), "Algorithm": "BLAKE3",
                          "ChecksumDate": "2022-04-14T12:41:00.000000Z"}],
            "ContentDate": {"Start": f"2022-04-{day}T10:30:21.024Z", "End": f"2022-04-{day}T10:30:21.024Z"},
            "Footprint": "geography'SRID=4326;POLYGON ((" + ", ".join(f"{x} {y}" for x, y in RING) + "))'",
            "GeoFootprint": {"type": "Polygon", "coordinates": [RING]},
            "Attributes": [
                {"@odata.type": "#OData.CSC.StringAttribute", "Name": "productType", "Value": "S2MSI2A",
                 "ValueType": "String"},
                {"@odata.type": "#OData.CSC.DoubleAttribute", "Name": "cloudCover", "Value": cloud,
                 "ValueType": "Double"},
                {"@odata.type": "#OData.CSC.StringAttribute", "Name": "processingBaseline", "Value": "04.00",
                 "ValueType": "String"},
            ],
        }

    @property
    def url(self) -> str:
        return self.server.url

    def source(self, settings: Settings | None = None, **kw: Any) -> CdseODataSource:
        return CdseODataSource(f"{self.url}/odata/v1", f"{self.url}/token", f"{self.url}/zipper/odata/v1",
                               settings if settings is not None else fast(), **kw)

    def value_path(self, index: int) -> str:
        return f"/zipper/odata/v1/Products({IDS[index]})/$value"

    def downloads(self, index: int) -> list[Request]:
        return [r for r in self.server.requests if r.path == self.value_path(index) and r.method == "GET"]

    def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        self.grants.append(form.get("grant_type", "?"))
        if self.faults["/token"]:
            return self.faults["/token"].popleft()
        if form.get("client_id") != "cdse-public":
            return Response(401, {"error": "invalid_client"})
        if form.get("grant_type") == "password":
            if (form.get("username"), form.get("password")) != (USER, PASSWORD):
                return Response(401, {"error": "invalid_grant", "error_description": "Invalid user credentials"})
        elif form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self.refresh:
            return Response(400, {"error": "invalid_grant", "error_description": "Token is not active"})
        n = len(self.grants)
        self.access.add(f"tok-{n}")
        self.refresh.add(f"ref-{n}")
        return Response(200, {"access_token": f"tok-{n}", "expires_in": self.expires_in,
                              "refresh_token": f"ref-{n}", "refresh_expires_in": 3600, "token_type": "Bearer"})

    def search(self, request: Request) -> Response:
        if self.faults["/odata/v1/Products"]:
            return self.faults["/odata/v1/Products"].popleft()
        self.filters.append(request.query)
        top, skip = int(request.query["$top"][0]), int(request.query.get("$skip", ["0"])[0])
        page: dict[str, Any] = {"@odata.context": "$metadata#Products(Attributes())",
                                "value": self.products[skip:skip + top]}
        if skip + top < len(self.products):
            params = {k: v[0] for k, v in request.query.items()} | {"$skip": str(skip + top)}
            page["@odata.nextLink"] = f"{self.url}/odata/v1/Products?{urlencode(params, quote_via=quote)}"
        return Response(200, page)

    def value(self, request: Request) -> Response:
        if self.faults[request.path]:
            return self.faults[request.path].popleft()
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.refuse_downloads or bearer not in self.access:
            return Response(401, {"detail": "Expired signature!"})
        response = _bytes_response(request, self.body, '"v1"')
        if self.cuts[request.path]:
            response.cut_after = self.cuts[request.path].popleft()
        return response


def _blake3(data: bytes) -> str:
    try:
        import blake3
    except ImportError:
        return "00" * 32
    return str(blake3.blake3(data).hexdigest())


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory, sample_items: list[pystac.Item], real_dir: Path) -> bytes:
    """A real small SAFE zip (red, nir, scl as JP2) of the 2022-04-14 sample item."""
    item = next(i for i in sample_items if i.id == "S2A_T31TFJ_20220414T103021_L2A")
    template = real_dir / "metadata" / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_MTD_MSIL2A.xml"
    return zip_safe(make_s2_safe(tmp_path_factory.mktemp("safe"), item, template)).read_bytes()


@pytest.fixture
def cdse(product: bytes) -> Iterator[FakeCdse]:
    fake = FakeCdse(product)
    with fake.server:
        yield fake


def query(max_cloud: float | None = 20.0) -> SearchQuery:
    return SearchQuery(normalize_aoi(AOI), normalize_date_range("2022-04"), max_cloud=max_cloud)


# -- search ------------------------------------------------------------------------------------


def test_search_filter_and_next_link_pages(cdse: FakeCdse) -> None:
    items = cdse.source(Settings(), page_size=2).search(query())
    assert len(cdse.filters) == 2 and cdse.filters[1]["$skip"] == ["2"]
    params = cdse.filters[0]
    text = params["$filter"][0]
    assert "Collection/Name eq 'SENTINEL-2'" in text
    assert "OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((4.4 43.98, 4.4 44.02, 4.34 44.02" in text
    assert "ContentDate/Start ge 2022-04-01T00:00:00.000Z" in text and "ContentDate/Start le 2022-04-30T23:59:59.999Z" in text
    assert ("Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
            "att/OData.CSC.StringAttribute/Value eq 'S2MSI2A')") in text
    assert ("Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover' and "
            "att/OData.CSC.DoubleAttribute/Value le 20.00)") in text
    assert params["$expand"] == ["Attributes"] and params["$orderby"] == ["ContentDate/Start asc"]
    assert [i.id for i in items] == [p["Name"].removesuffix(".SAFE") for p in cdse.products]
    item = items[1]
    assert item.datetime.isoformat() == "2022-04-14T10:30:21.024000+00:00"
    assert item.properties["eo:cloud_cover"] == 12.5 and item.properties["s2:processing_baseline"] == "04.00"
    assert item.properties["cdse:online"] is True and item.properties["platform"] == "sentinel-2a"
    asset = item.assets["product"]
    assert asset.href == f"{cdse.url}/zipper/odata/v1/Products({IDS[1]})/$value"
    assert asset.extra_fields["file:size"] == len(cdse.body)
    assert asset.extra_fields["file:checksum"][:4] in {"1e20", "d501"}  # BLAKE3 if installed, else MD5
    assert cdse.grants == []  # search needs no account


def test_search_429_retried(cdse: FakeCdse) -> None:
    cdse.faults["/odata/v1/Products"].extend([Response(429, {"detail": "Too Many Requests"})] * 2)
    assert len(cdse.source().search(query())) == 3
    assert sum(r.path == "/odata/v1/Products" for r in cdse.server.requests) == 3


def test_registered_in_open_source() -> None:
    source = open_source("cdse-odata")
    assert isinstance(source, CdseODataSource)
    assert (source.url, source.token_url, source.download_url) == (CATALOGUE_URL, TOKEN_URL, DOWNLOAD_URL)


# -- download ------------------------------------------------------------------------------------


def test_download_sends_bearer_and_verifies_blake3(cdse: FakeCdse, tmp_path: Path) -> None:
    pytest.importorskip("blake3")
    source = cdse.source()
    item = source.search(query())[0]
    result = source.download(item, tmp_path)
    assert result.verified == "blake3" and result.path.read_bytes() == cdse.body
    assert cdse.grants == ["password"]
    assert cdse.downloads(0)[0].headers["Authorization"] == "Bearer tok-1"


def test_md5_used_when_it_is_the_only_checksum(cdse: FakeCdse, tmp_path: Path) -> None:
    source = cdse.source()
    item = source.search(query())[0]
    item.assets["product"].extra_fields["cdse:checksums"] = [c for c in item.assets["product"].extra_fields[
        "cdse:checksums"] if c["algorithm"] == "MD5"]
    assert source.download(item, tmp_path).verified == "md5"


@pytest.mark.parametrize("algorithm", ["MD5", "BLAKE3"])
def test_wrong_checksum_rejected_and_not_kept(cdse: FakeCdse, tmp_path: Path, algorithm: str) -> None:
    if algorithm == "BLAKE3":
        pytest.importorskip("blake3")
    source = cdse.source()
    item = source.search(query())[0]
    item.assets["product"].extra_fields["cdse:checksums"] = [{"algorithm": algorithm, "value": "ab" * (
        16 if algorithm == "MD5" else 32)}]
    with pytest.raises(ChecksumError, match=f"{algorithm.lower()} checksum mismatch"):
        source.download(item, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_resume_after_cut(cdse: FakeCdse, tmp_path: Path) -> None:
    source = cdse.source()
    item = source.search(query())[0]
    cdse.cuts[cdse.value_path(0)].append(30_000)
    result = source.download(item, tmp_path)
    assert result.resumed and result.path.read_bytes() == cdse.body
    ranges = [r.headers.get("Range") for r in cdse.downloads(0)]
    assert ranges[0] is None and ranges[1].startswith("bytes=")


def test_download_429_retried(cdse: FakeCdse, tmp_path: Path) -> None:
    source = cdse.source()
    item = source.search(query())[0]
    cdse.faults[cdse.value_path(0)].extend([Response(429, {"detail": "slow down"})] * 2)
    assert source.download(item, tmp_path).path.exists()
    assert len(cdse.downloads(0)) == 3


def test_token_refreshed_after_expiry_then_password_again(cdse: FakeCdse, tmp_path: Path) -> None:
    source = cdse.source()
    clock = Clock()
    source.token.clock = clock
    items = source.search(query())
    source.download(items[0], tmp_path)
    source.download(items[1], tmp_path)  # same token, still valid
    assert cdse.grants == ["password"]
    clock.now += 3  # expires_in=2
    source.download(items[2], tmp_path)
    assert cdse.grants == ["password", "refresh_token"]
    assert cdse.downloads(2)[0].headers["Authorization"] == "Bearer tok-2"
    cdse.refresh.clear()  # refresh token revoked: the password grant is used again
    clock.now += 3
    assert source.token.bearer() == "tok-4" and cdse.grants[-2:] == ["refresh_token", "password"]


def test_revoked_token_reauthenticates_once(cdse: FakeCdse, tmp_path: Path) -> None:
    source = cdse.source()
    item = source.search(query())[0]
    source.token.bearer()
    cdse.access.clear()  # the server forgets the token
    assert source.download(item, tmp_path).path.exists()
    assert [r.headers["Authorization"] for r in cdse.downloads(0)] == ["Bearer tok-1", "Bearer tok-2"]
    assert cdse.grants == ["password", "password"]


def test_refused_twice_is_authentication_error_without_loop(cdse: FakeCdse, tmp_path: Path) -> None:
    source = cdse.source()
    item = source.search(query())[0]
    cdse.refuse_downloads = True
    with pytest.raises(AuthenticationError, match="refused a fresh CDSE access token"):
        source.download(item, tmp_path)
    assert len(cdse.downloads(0)) == 2 and cdse.grants == ["password", "password"]


def test_wrong_password_fails_at_token_endpoint(cdse: FakeCdse, tmp_path: Path) -> None:
    source = cdse.source(fast(), password="wrong")
    item = source.search(query())[0]
    with pytest.raises(AuthenticationError, match="refused the CDSE user name or password") as err:
        source.download(item, tmp_path)
    assert "TERRITOIRE_CDSE_PASSWORD" in str(err.value)
    assert cdse.grants == ["password"] and cdse.downloads(0) == []


def test_no_credentials_or_offline_product_fail_before_any_request(cdse: FakeCdse, tmp_path: Path) -> None:
    anonymous = cdse.source(Settings())
    item = anonymous.search(query())[0]
    with pytest.raises(ConfigError, match="CDSE downloads need an account"):
        anonymous.download(item, tmp_path)
    item.properties["cdse:online"] = False
    with pytest.raises(SourceError, match="is offline on CDSE"):
        cdse.source().download(item, tmp_path)
    assert cdse.grants == [] and cdse.downloads(0) == []


def test_credentials_from_netrc(cdse: FakeCdse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1\n  login {USER}\n  password {PASSWORD}\n")
    monkeypatch.setenv("NETRC", str(netrc))
    source = cdse.source(Settings(http_retries=0))
    assert source.download(source.search(query())[0], tmp_path / "dl").path.exists()


def test_downloaded_product_loads_like_the_stac_item(cdse: FakeCdse, tmp_path: Path,
                                                     sample_items: list[pystac.Item]) -> None:
    source = cdse.source()
    item = source.search(query())[1]
    zipped = source.download(item, tmp_path).path
    safe_item = safe_to_item(zipped)
    stac_item = next(i for i in sample_items if i.id == "S2A_T31TFJ_20220414T103021_L2A")
    kw: dict[str, Any] = {"bands": ["red", "nir"], "aoi": AOI, "crs": "EPSG:32631", "resolution": 10}
    from_safe, from_stac = load([safe_item], **kw).compute(), load([stac_item], **kw).compute()
    for band in ("red", "nir"):
        np.testing.assert_allclose(from_safe[band].values, from_stac[band].values, equal_nan=True)


# -- secrets ----------------------------------------------------------------------------------------


def test_password_and_tokens_never_logged_raised_stored_or_written(cdse: FakeCdse, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = cdse.source()
    clock = Clock()
    source.token.clock = clock
    items = source.search(query())
    source.download(items[0], tmp_path / "dl")
    clock.now += 3
    source.download(items[1], tmp_path / "dl")  # refresh grant
    messages = []
    cdse.refuse_downloads = True
    for attempt in (source, cdse.source(fast(), password=PASSWORD + "x")):
        with pytest.raises(AuthenticationError) as err:
            attempt.download(items[2], tmp_path / "dl")
        messages.append(str(err.value))
    secrets = [PASSWORD, *sorted(cdse.access), *sorted(cdse.refresh)]
    assert caplog.records
    for secret in secrets:
        assert secret not in caplog.text
        assert not any(secret in m for m in messages)
        assert secret not in json.dumps([i.to_dict() for i in items])
        assert secret not in repr(source) + repr(source.token)
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes()


def test_credentials_from_the_system_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backend import KeyringBackend
    from keyring.credentials import SimpleCredential

    from territoire_geo.sources._hub import Credentials

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]
        store: ClassVar[dict[tuple[str, str], str]] = {("territoire_geo", "identity.example.test"): "alice:S3cr3t-K3yr1ng"}

        def get_password(self, service: str, username: str) -> str | None:
            return self.store.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.store[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.store.pop((service, username), None)

        def get_credential(self, service: str, username: str | None) -> SimpleCredential | None:
            password = self.get_password(service, username or "")
            return SimpleCredential(username, password) if password else None

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.setenv("NETRC", "/nonexistent/.netrc")
    try:
        found = Credentials.resolve(None, None, "https://identity.example.test/auth/token")
    finally:
        keyring.set_keyring(previous)
    assert found is not None and found.pair() == ("alice", "S3cr3t-K3yr1ng")
    assert "S3cr3t" not in repr(found)
