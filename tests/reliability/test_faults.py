"""Fault injection through every network path: search, fetch (whole and clipped), GPU zoning, hubs.

Each test injects one kind of misbehaviour on a loopback server and checks that the
client retries what is transient (bounded: request counts are asserted), fails with a
one-line error otherwise, never leaves a partial or corrupt file under a final name,
and that a later run completes the work. Every injected fault is counted by kind and
place; the table is printed at the end of the module (and copied into
``docs/reliability.md``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pystac
import pytest
from _gpu_fake import GpuFake, tiled_zones
from _servers import Fault, RangeHTTPServer, Request, Response, RouteServer
from territoire_geo_cli.main import app
from typer.testing import CliRunner

from territoire_geo import search
from territoire_geo.config import Settings
from territoire_geo.errors import AuthenticationError, ChecksumError, SourceError, SourceUnavailableError
from territoire_geo.imagery import fetch
from territoire_geo.sources import StacApiSource
from territoire_geo.workflows import fetch_zoning

pytestmark = pytest.mark.timeout(120)

FAST = Settings(http_retries=3, http_backoff=0.01, http_timeout=5)
SHORT = Settings(http_retries=2, http_backoff=0.01, http_timeout=0.3)  # for delays and trickles
BBOX = (4.33, 43.97, 4.40, 44.03)

#: (kind, where, outcome) -> number of faults the servers actually served, for the summary table.
INJECTED: Counter[tuple[str, str, str]] = Counter()
LABELS = {"delay": "delay under the timeout", "reset": "reset mid-body", "truncate": "truncated body",
          "length": "Content-Length too long"}


def count(kind: str, where: str, n: int, outcome: str) -> None:
    """Record ``n`` served faults of ``kind`` at ``where`` and what came of them.

    Parameters
    ----------
    kind
        Fault kind (``503``, ``reset``, ``trickle``…).
    where
        Code path (``fetch``, ``search``, ``gpu``, ``cdse``, ``dhus``…).
    n
        How many faults were injected.
    outcome
        What the client did (``retried → ok``, ``SourceError, 1 request``…).
    """
    INJECTED[(kind, where, outcome)] += n


@pytest.fixture(scope="module", autouse=True)
def _fault_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the table of injected faults after the module's tests."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not INJECTED:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(f"faults injected by tests/reliability/test_faults.py: {sum(INJECTED.values())}")
        reporter.write_line(f"| {'kind':<26} | {'where':<22} | {'count':>5} | outcome |")
        for (kind, where, outcome), n in sorted(INJECTED.items()):
            reporter.write_line(f"| {kind:<26} | {where:<22} | {n:>5} | {outcome} |")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _error_line(output: str) -> str:
    """The one ``error:`` line of a CLI output (and no traceback of ours)."""
    errors = [line for line in output.splitlines() if line.startswith(("error:", "unexpected error:"))]
    assert len(errors) == 1 and errors[0].startswith("error:"), output
    assert "Traceback" not in output, output
    return errors[0]


def _finals(dest: Path) -> list[Path]:
    """Files under ``dest`` with a final name (not ``.part`` or its metadata, not the items list)."""
    return [p for p in dest.rglob("*") if p.is_file() and ".part" not in p.name and p.name != "items.json"]


# ======================================================================= fetch (whole files)


def _serve_item(tmp_path: Path, item: pystac.Item, *, signed: bool = False) -> tuple[RangeHTTPServer, pystac.Item]:
    root = tmp_path / "www"
    root.mkdir()
    clone = item.clone()
    for band in ("red", "nir"):
        shutil.copy(clone.assets[band].get_absolute_href(), root / f"{band}.tif")
    server = RangeHTTPServer(root, signed=signed)
    for band in ("red", "nir"):
        clone.assets[band].href = f"{server.url}/{band}.tif"
    for key in [k for k in clone.assets if k not in ("red", "nir")]:
        del clone.assets[key]
    clone.clear_links()
    return server, clone


@pytest.fixture
def served(tmp_path: Path, sample_items: list[pystac.Item]) -> Iterator[tuple[RangeHTTPServer, pystac.Item, Path]]:
    """One sample item's red and nir COGs (with checksum and size) on a Range server."""
    server, item = _serve_item(tmp_path, sample_items[6])
    with server:
        yield server, item, tmp_path / "cache"


@pytest.fixture
def signed(tmp_path: Path, sample_items: list[pystac.Item]) -> Iterator[tuple[RangeHTTPServer, pystac.Item, Path]]:
    """The same, on a server that wants the newest ``?sig=N`` (an expiring signed URL)."""
    server, item = _serve_item(tmp_path, sample_items[6], signed=True)
    with server:
        yield server, item, tmp_path / "cache"


def _red_size(server: RangeHTTPServer) -> int:
    return (server.root / "red.tif").stat().st_size


TRANSIENT_FETCH = [
    # (label, faults, GETs expected, resumed)
    ("delay under the timeout", [Fault("delay", seconds=0.2)], 1, False),
    ("reset mid-body", [Fault("reset", after=50_000)], 2, True),
    ("429 Retry-After", [Fault("status", 429, retry_after=0)], 2, False),
    ("500/502/503", [Fault("status", 500), Fault("status", 502), Fault("status", 503)], 4, False),
    ("truncated body x2", [Fault("truncate", after=30_000), Fault("truncate", after=90_000)], 3, True),
    ("Content-Length too long", [Fault("length", after=400_000)], 2, True),
]


@pytest.mark.parametrize(("label", "faults", "gets", "resumed"), TRANSIENT_FETCH, ids=[t[0] for t in TRANSIENT_FETCH])
def test_fetch_retries_transient_faults_and_verifies(served: tuple, label: str, faults: list[Fault], gets: int,
                                                     resumed: bool) -> None:
    server, item, dest = served
    server.inject("/red.tif", *faults)
    _, report = fetch([item], ["red"], dest, settings=FAST)
    assert server.count("/red.tif") == gets
    assert report[0].resumed is resumed and report[0].verified == "sha256"
    assert _sha(Path(report[0].path)) == _sha(server.root / "red.tif")
    kinds = Counter(f.kind if f.kind != "status" else str(f.status) for f in faults)
    for kind, n in kinds.items():
        count(LABELS.get(kind, kind), "fetch", n, "retried/resumed → verified file")


def test_fetch_slow_trickle_times_out_then_resumes(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", Fault("trickle", after=40, seconds=1.0))  # 1 byte/s, timeout 0.3 s
    _, report = fetch([item], ["red"], dest, settings=SHORT)
    assert server.count("/red.tif") == 2
    assert _sha(Path(report[0].path)) == _sha(server.root / "red.tif")
    count("trickle (1 B/s)", "fetch", 1, "read timeout → resumed → verified file")


def test_fetch_delay_over_the_timeout_is_retried(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", Fault("delay", seconds=1.0))
    _, report = fetch([item], ["red"], dest, settings=SHORT)
    assert server.count("/red.tif") == 2 and Path(report[0].path).exists()
    count("delay over the timeout", "fetch", 1, "timeout → retried → verified file")


def test_fetch_short_content_length_is_caught_and_a_later_run_completes(served: tuple) -> None:
    server, item, dest = served
    size = _red_size(server)
    server.inject("/red.tif", Fault("length", after=size - 1000))
    with pytest.raises(ChecksumError, match=r"bytes received but the catalogue announces \d+") as info:
        fetch([item], ["red"], dest, settings=FAST)
    assert "\n" not in str(info.value)
    assert not list(dest.rglob("red.tif*"))  # nothing kept, not even the part
    _, report = fetch([item], ["red"], dest, settings=FAST)
    assert _sha(Path(report[0].path)) == _sha(server.root / "red.tif")
    count("Content-Length too short", "fetch", 1, "ChecksumError (size), nothing kept; rerun ok")


def test_short_content_length_without_size_is_caught_by_the_checksum(served: tuple) -> None:
    server, item, dest = served
    del item.assets["red"].extra_fields["file:size"]
    server.inject("/red.tif", Fault("length", after=_red_size(server) - 1000))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        fetch([item], ["red"], dest, settings=FAST)
    assert not list(dest.rglob("red.tif*"))
    count("Content-Length too short", "fetch (no file:size)", 1, "ChecksumError (sha256), nothing kept")


def _without_checksum_or_size(item: pystac.Item, band: str) -> None:
    """Drop ``file:checksum`` and ``file:size`` (as on Earth Search and Planetary Computer items)."""
    for key in ("file:size", "file:checksum"):
        del item.assets[band].extra_fields[key]


def test_short_content_length_without_checksum_or_size_is_caught_by_the_tiff_structure(served: tuple) -> None:
    server, item, dest = served
    _without_checksum_or_size(item, "red")
    size = _red_size(server)
    server.inject("/red.tif", Fault("length", after=size - 1000))
    _, report = fetch([item], ["red"], dest, settings=FAST)
    ranges = [r[2] for r in server.requests if r[1] == "/red.tif"]
    assert ranges == [None, f"bytes={size - 1001}-"]  # the cut TIFF resumed (re-reading its last byte)
    assert report[0].resumed and report[0].verified is None
    assert _sha(Path(report[0].path)) == _sha(server.root / "red.tif")
    count("Content-Length too short", "fetch (no checksum)", 1, "TIFF structure cut → resumed → exact file")


def test_short_content_length_every_time_keeps_only_the_part_and_a_later_run_completes(
        tmp_path: Path, sample_items: list[pystac.Item]) -> None:
    """A server that ignores ``Range`` and always announces 1000 bytes too few: bounded, nothing final."""
    item = sample_items[6].clone()
    body = Path(item.assets["red"].get_absolute_href()).read_bytes()
    answer = {"response": Response(200, body, "image/tiff", content_length=len(body) - 1000)}
    with RouteServer({("GET", "/red.tif"): lambda _request: answer["response"]}) as server:
        item.assets["red"].href = f"{server.url}/red.tif"
        _without_checksum_or_size(item, "red")
        dest = tmp_path / "cache"
        with pytest.raises(SourceUnavailableError, match=r"truncated TIFF: \d+ bytes, tile data of IFD 0 ends at "
                           r"byte \d+\); run again to resume") as info:
            fetch([item], ["red"], dest, settings=FAST)
        assert "\n" not in str(info.value) and len(server.requests) == 6  # 1 + max_resumes (retries + 2)
        assert not _finals(dest) and list(dest.rglob("red.tif.part"))
        answer["response"] = Response(200, body, "image/tiff")  # the server recovered: a later run completes
        _, report = fetch([item], ["red"], dest, settings=FAST)
        assert Path(report[0].path).read_bytes() == body and not list(dest.rglob("*.part"))
    count("Content-Length too short", "fetch (no checksum)", 6,
          "persistent: 6 attempts, SourceUnavailableError, .part kept; rerun ok")


def test_asset_truncated_on_the_server_is_discarded_after_one_range_probe(served: tuple) -> None:
    server, item, dest = served
    _without_checksum_or_size(item, "red")
    original = (server.root / "red.tif").read_bytes()
    (server.root / "red.tif").write_bytes(original[:-1000])
    with pytest.raises(ChecksumError, match=r"the server's file itself is a truncated TIFF: .*report the corrupt "
                       "asset") as info:
        fetch([item], ["red"], dest, settings=FAST)
    assert "\n" not in str(info.value) and server.count("/red.tif") == 2
    assert not list(dest.rglob("red.tif*"))  # a resume could not help: nothing kept
    (server.root / "red.tif").write_bytes(original)  # the provider fixes the asset: a later run completes
    _, report = fetch([item], ["red"], dest, settings=FAST)
    assert Path(report[0].path).read_bytes() == original
    count("truncated asset on server", "fetch (no checksum)", 1,
          "ChecksumError after 1 Range probe, nothing kept")


def test_fetch_persistent_faults_are_bounded_and_leave_no_final_file(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", *[Fault("status", 503)] * 10)
    with pytest.raises(SourceUnavailableError, match=r"failed after 4 attempts \(HTTP 503\)"):
        fetch([item], ["red"], dest, settings=FAST)
    assert server.count("/red.tif") == 4
    server.inject("/nir.tif", *[Fault("reset", after=20_000)] * 20)
    with pytest.raises(SourceUnavailableError, match="run again to resume") as info:
        fetch([item], ["nir"], dest, settings=FAST)
    assert "\n" not in str(info.value)
    assert server.count("/nir.tif") == 6  # max_resumes = retries + 2, plus the first attempt
    assert not _finals(dest) and (dest / "sentinel-2-l2a" / item.id / "nir.tif.part").exists()
    server._server.faults.clear()  # the server recovered: a later run resumes and completes
    _, report = fetch([item], ["red", "nir"], dest, settings=FAST)
    assert [r.resumed for r in report] == [False, True]
    assert _sha(Path(report[1].path)) == _sha(server.root / "nir.tif")
    count("503", "fetch", 4, "persistent: 4 attempts, SourceUnavailableError")
    count("reset mid-body", "fetch", 6, "persistent: 6 attempts, .part kept; rerun resumes")


def test_fetch_html_page_instead_of_the_file(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", Fault("html"))
    with pytest.raises(SourceError, match="HTML page instead of the file"):
        fetch([item], ["red"], dest, settings=FAST)
    assert server.count("/red.tif") == 1 and not list(dest.rglob("red.tif*"))
    count("HTML instead of data", "fetch", 1, "SourceError, 1 request, nothing kept")


# ----------------------------------------------------------------------- expired signed URLs


def test_expired_signature_is_renewed_once(signed: tuple) -> None:
    server, item, dest = signed
    server.inject("/red.tif", Fault("expire"))
    _, report = fetch([item], ["red", "nir"], dest, settings=FAST, sign=server.sign)
    assert server.count("/red.tif") == 2 and server.count("/nir.tif") == 1
    assert _sha(Path(report[0].path)) == _sha(server.root / "red.tif")
    assert "sig" not in report[0].href  # the report keeps the unsigned href
    count("403 expired signature", "fetch", 1, "re-signed once → verified file")


def test_signature_refused_twice_is_an_authentication_error_without_loop(signed: tuple) -> None:
    server, item, dest = signed

    def stale(href: str) -> str:
        url = server.sign(href)
        server.expire_signatures()  # every URL it hands out is already stale
        return url

    with pytest.raises(AuthenticationError, match="refused even after signing the URL again") as info:
        fetch([item], ["red"], dest, settings=FAST, sign=stale)
    assert "\n" not in str(info.value) and "sig=" not in str(info.value)
    assert server.count("/red.tif") == 2 and not list(dest.rglob("red.tif*"))
    _, report = fetch([item], ["red"], dest, settings=FAST, sign=server.sign)  # a working signer: done
    assert Path(report[0].path).exists()
    count("403 expired signature", "fetch (stale signer)", 2, "AuthenticationError after 1 re-sign; rerun ok")


def test_unsigned_request_to_a_signed_server_is_refused_once(signed: tuple) -> None:
    server, item, dest = signed
    with pytest.raises(AuthenticationError, match="was refused"):
        fetch([item], ["red"], dest, settings=FAST)
    assert server.count("/red.tif") == 1


def test_expired_signature_on_a_clipped_read(signed: tuple) -> None:
    server, item, dest = signed
    server.inject("/red.tif", Fault("expire"))
    aoi = (4.355, 43.99, 4.37, 44.0)
    _, report = fetch([item], ["red"], dest, aoi=aoi, settings=FAST, sign=server.sign)
    assert report[0].clipped and Path(report[0].path).exists()
    refused = [r for r in server.requests if r[1] == "/red.tif"]
    assert len(refused) >= 2
    count("403 expired signature", "fetch --clip (GDAL)", 1, "AuthenticationError → re-signed → COG")


def test_clip_errors_never_show_the_signature(signed: tuple) -> None:
    server, item, dest = signed
    item.assets["red"].href += "?token=SECRET-TOKEN-1234"

    def stale(href: str) -> str:
        url = server.sign(href)
        server.expire_signatures()
        return url

    with pytest.raises(AuthenticationError) as info:
        fetch([item], ["red"], dest, aoi=(4.355, 43.99, 4.37, 44.0), settings=FAST, sign=stale)
    assert "SECRET-TOKEN" not in str(info.value) and "sig=1" not in str(info.value)
    assert "token=***" in str(info.value)


def test_fetch_cli_one_line_error_and_exit_3(served: tuple, tmp_path: Path) -> None:
    server, item, dest = served
    catalog = tmp_path / "items.json"
    catalog.write_text(json.dumps(pystac.ItemCollection([item]).to_dict(transform_hrefs=False)))
    server.inject("/red.tif", *[Fault("status", 502)] * 3)
    result = CliRunner().invoke(app, ["-q", "fetch", "-s", str(catalog), "-a", ",".join(map(str, BBOX)), "-p", "2021",
                                      "-b", "red", "-d", str(dest)], terminal_width=400,
                                env={"TERRITOIRE_HTTP_RETRIES": "2", "TERRITOIRE_HTTP_BACKOFF": "0.01"})
    assert result.exit_code == 3, result.output
    assert "failed after 3 attempts (HTTP 502)" in _error_line(result.output)
    assert not _finals(dest)
    count("502", "fetch (CLI)", 3, "exit 3, one line")


# ======================================================================= search (STAC API)


def _feature(i: int) -> dict[str, Any]:
    return {"type": "Feature", "stac_version": "1.0.0", "id": f"item-{i}", "collection": "s2", "links": [],
            "geometry": {"type": "Point", "coordinates": [4.36, 44.0]}, "bbox": [4.36, 44.0, 4.36, 44.0],
            "properties": {"datetime": f"2022-0{i}-01T10:00:00Z", "eo:cloud_cover": 5.0}, "assets": {}}


class FaultyStac:
    """A hand-written STAC API (landing page + POST /search) whose next answers can be faults."""

    def __init__(self) -> None:
        self.queued: dict[str, list[Callable[[Response], Response]]] = {"/": [], "/search": []}
        self.server = RouteServer({("GET", "/"): self._landing, ("POST", "/search"): self._search})

    def _next(self, path: str, normal: Response) -> Response:
        return self.queued[path].pop(0)(normal) if self.queued[path] else normal

    def _landing(self, _request: Request) -> Response:
        url = self.server.url
        return self._next("/", Response(body={
            "type": "Catalog", "id": "api", "description": "x", "stac_version": "1.0.0",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
            "links": [{"rel": "self", "href": url + "/"},
                      {"rel": "search", "href": url + "/search", "method": "POST"}]}))

    def _search(self, _request: Request) -> Response:
        body = {"type": "FeatureCollection", "features": [_feature(i) for i in (1, 2, 3)], "links": []}
        return self._next("/search", Response(body=body))

    def calls(self, path: str) -> int:
        return sum(1 for r in self.server.requests if r.path == path)


@pytest.fixture
def stac() -> Iterator[FaultyStac]:
    api = FaultyStac()
    with api.server:
        yield api


def _status(code: int, retry_after: str | None = None) -> Callable[[Response], Response]:
    return lambda _n: Response(code, {"code": code}, headers={"Retry-After": retry_after} if retry_after else None)


def _cut(_normal: Response) -> Response:
    return Response(_normal.status, _normal.body, cut_after=40)


def _long(normal: Response) -> Response:
    return Response(normal.status, normal.body, content_length=len(normal.encoded()) + 100)


def _slow(seconds: float) -> Callable[[Response], Response]:
    def answer(normal: Response) -> Response:
        import time

        time.sleep(seconds)
        return normal

    return answer


def _trickle(normal: Response) -> Response:
    return Response(normal.status, normal.body, trickle=1.0)


SEARCH_TRANSIENT = [
    # (label, path, faults, kind of each fault)
    ("503 x2 on the landing page", "/", [_status(503), _status(503)], ["503", "503"]),
    ("429 Retry-After", "/search", [_status(429, "0")], ["429"]),
    ("500/502/503", "/search", [_status(500), _status(502), _status(503)], ["500", "502", "503"]),
    ("reset mid-body", "/search", [_cut], ["reset mid-body"]),
    ("Content-Length too long", "/search", [_long], ["Content-Length too long"]),
    ("delay over the timeout", "/search", [_slow(1.0)], ["delay over the timeout"]),
    ("trickle", "/search", [_trickle], ["trickle (1 B/s)"]),
]


@pytest.mark.parametrize(("label", "path", "faults", "kinds"), SEARCH_TRANSIENT, ids=[t[0] for t in SEARCH_TRANSIENT])
def test_search_retries_transient_faults(stac: FaultyStac, label: str, path: str, faults: list,
                                         kinds: list[str]) -> None:
    stac.queued[path].extend(faults)
    slow = any(k.startswith(("trickle", "delay")) for k in kinds)
    items = search(BBOX, "2022", source=StacApiSource(stac.server.url, settings=SHORT if slow else FAST))
    assert [i.id for i in items] == ["item-1", "item-2", "item-3"]
    assert stac.calls(path) == len(faults) + 1
    for kind in kinds:
        count(kind, "search", 1, "retried → items")


def test_search_persistent_faults_are_bounded_one_line_errors(stac: FaultyStac) -> None:
    stac.queued["/search"].extend([_trickle] * 5)
    with pytest.raises(SourceUnavailableError, match=r"failed after 3 attempts .*timed out") as info:
        search(BBOX, "2022", source=StacApiSource(stac.server.url, settings=SHORT))
    assert "\n" not in str(info.value) and stac.calls("/search") == 3
    stac.queued["/search"].clear()
    stac.queued["/search"].extend([_cut] * 5)
    with pytest.raises(SourceUnavailableError, match=r"failed after 4 attempts \(ChunkedEncodingError\)"):
        search(BBOX, "2022", source=StacApiSource(stac.server.url, settings=FAST))
    stac.queued["/search"].clear()
    assert len(search(BBOX, "2022", source=StacApiSource(stac.server.url, settings=FAST))) == 3  # later run
    count("trickle (1 B/s)", "search", 3, "persistent: 3 attempts, SourceUnavailableError")
    count("reset mid-body", "search", 4, "persistent: 4 attempts, SourceUnavailableError")


@pytest.mark.parametrize(("fault", "match", "kind"), [
    (lambda n: Response(200, "<html><body>Maintenance</body></html>", "text/html"), "answered HTML instead of JSON",
     "HTML instead of data"),
    (lambda n: Response(n.status, n.body, content_length=len(n.encoded()) - 10), "not JSON",
     "Content-Length too short"),
    (lambda n: Response(404, {"detail": "no such search"}), "answered HTTP 404", "404"),
])
def test_search_non_transient_answers_fail_at_once(stac: FaultyStac, fault: Callable, match: str, kind: str) -> None:
    stac.queued["/search"].append(fault)
    with pytest.raises(SourceError, match=match) as info:
        search(BBOX, "2022", source=StacApiSource(stac.server.url, settings=FAST))
    assert not isinstance(info.value, SourceUnavailableError) and "\n" not in str(info.value)
    assert stac.calls("/search") == 1
    count(kind, "search", 1, "SourceError, 1 request")


def test_search_cli_exit_3_one_line(stac: FaultyStac) -> None:
    stac.queued["/"].extend([_status(503)] * 5)
    result = CliRunner().invoke(app, ["-q", "search", "-s", stac.server.url, "-a", ",".join(map(str, BBOX)), "-p", "2022"],
                                env={"TERRITOIRE_HTTP_RETRIES": "1", "TERRITOIRE_HTTP_BACKOFF": "0.01"},
                                terminal_width=400)
    assert result.exit_code == 3 and "failed after 2 attempts (HTTP 503)" in _error_line(result.output)
    assert stac.calls("/") == 2
    count("503", "search (CLI)", 2, "exit 3, one line")


def test_search_through_rustac_survives_a_slow_client_side_timeout(stac_api: Any) -> None:
    """The rustac API (no faults of its own) answers within a short timeout: the fast path stays fast."""
    items = search(BBOX, "2021", source=StacApiSource(stac_api.url, settings=SHORT), collections="sentinel-2-l2a")
    assert len(items) == 3


# ======================================================================= GPU (API Carto)


@pytest.fixture
def gpu_fake() -> Iterator[GpuFake]:
    with GpuFake() as fake:
        fake.data[("zone-urba", "DU_01004")] = tiled_zones(5)
        yield fake


def _gpu_faults(fake: GpuFake, answers: list[Callable[[Response], Response]]) -> None:
    queue = list(answers)

    def handle(request: Request) -> Response:
        normal = Response(body=fake.page("zone-urba", request))
        return queue.pop(0)(normal) if queue else normal

    fake.override["zone-urba"] = handle


GPU_TRANSIENT = [
    ("429 Retry-After", [_status(429, "0")], ["429"], FAST),
    ("500/502", [_status(500), _status(502)], ["500", "502"], FAST),
    ("reset mid-body", [_cut], ["reset mid-body"], FAST),
    ("Content-Length too long", [_long], ["Content-Length too long"], FAST),
    ("trickle", [_trickle], ["trickle (1 B/s)"], SHORT),
    ("delay over the timeout", [_slow(1.0)], ["delay over the timeout"], SHORT),
]


@pytest.mark.parametrize(("label", "faults", "kinds", "settings"), GPU_TRANSIENT, ids=[t[0] for t in GPU_TRANSIENT])
def test_gpu_retries_transient_faults(gpu_fake: GpuFake, label: str, faults: list, kinds: list[str],
                                      settings: Settings) -> None:
    _gpu_faults(gpu_fake, faults)
    plu = fetch_zoning(partition="DU_01004", layers=("zone-urba",), base_url=gpu_fake.base_url, settings=settings)
    assert len(plu.zones) == 5 and len(gpu_fake.calls("zone-urba")) == len(faults) + 1
    for kind in kinds:
        count(kind, "gpu zoning", 1, "retried → 5 zones")


def test_gpu_persistent_502_and_truncated_json(gpu_fake: GpuFake, tmp_path: Path) -> None:
    _gpu_faults(gpu_fake, [_status(502)] * 5)
    with pytest.raises(SourceUnavailableError, match="Géoportail de l'Urbanisme API is unreachable") as info:
        fetch_zoning(partition="DU_01004", layers=("zone-urba",), base_url=gpu_fake.base_url, settings=FAST)
    assert len(gpu_fake.calls("zone-urba")) == 4 and "\n" not in str(info.value)
    count("502", "gpu zoning", 4, "persistent: 4 attempts, SourceUnavailableError")
    _gpu_faults(gpu_fake, [lambda n: Response(n.status, n.body, content_length=len(n.encoded()) - 5)])
    with pytest.raises(SourceError, match="non-JSON text instead of GeoJSON"):
        fetch_zoning(partition="DU_01004", layers=("zone-urba",), base_url=gpu_fake.base_url, settings=FAST)
    count("Content-Length too short", "gpu zoning", 1, "SourceError, 1 request")
    out = tmp_path / "plu.gpkg"
    _gpu_faults(gpu_fake, [_status(503)] * 5)
    result = CliRunner().invoke(app, ["-q", "zoning", "fetch", "--partition", "DU_01004",
                                      "--base-url", gpu_fake.base_url, "--out", str(out)], terminal_width=400,
                                env={"TERRITOIRE_HTTP_RETRIES": "1", "TERRITOIRE_HTTP_BACKOFF": "0.01"})
    assert result.exit_code == 3 and "unreachable" in _error_line(result.output)
    assert not list(tmp_path.glob("plu*"))  # no partial GeoPackage
    count("503", "gpu zoning (CLI)", 2, "exit 3, one line, no file")
    _gpu_faults(gpu_fake, [])
    result = CliRunner().invoke(app, ["-q", "zoning", "fetch", "--partition", "DU_01004",
                                      "--base-url", gpu_fake.base_url, "--out", str(out)], terminal_width=400)
    assert result.exit_code == 0, result.output  # a later run completes
    assert out.exists()


# ======================================================================= hubs (CDSE OData, DHuS)


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory, sample_items: list[pystac.Item], real_dir: Path) -> bytes:
    """A real small SAFE zip (red, scl as JP2) of the 2022-04-14 sample item."""
    from _safe_builder import make_s2_safe, zip_safe

    item = next(i for i in sample_items if i.id == "S2A_T31TFJ_20220414T103021_L2A")
    template = real_dir / "metadata" / "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_MTD_MSIL2A.xml"
    return zip_safe(make_s2_safe(tmp_path_factory.mktemp("safe"), item, template, bands=("red", "scl"))).read_bytes()


@pytest.fixture
def cdse(product: bytes) -> Iterator[Any]:
    from test_cdse import FakeCdse

    fake = FakeCdse(product, expires_in=3600)
    with fake.server:
        yield fake


def _cdse_query() -> Any:
    from test_cdse import query

    return query(max_cloud=None)


def test_cdse_search_token_and_download_through_faults(cdse: Any, tmp_path: Path) -> None:
    from test_cdse import fast

    source = cdse.source(fast())
    cdse.faults["/odata/v1/Products"].extend([Response(503, {"detail": "busy"}),
                                              Response(200, {"value": []}, cut_after=5)])
    items = source.search(_cdse_query())
    assert len(items) == 3
    cdse.faults["/token"].append(Response(502, "bad gateway", "text/plain"))
    path = cdse.value_path(0)
    body = cdse.body
    cdse.faults[path].extend([Response(429, {"detail": "slow down"}, headers={"Retry-After": "0"}),
                              Response(200, body, "application/zip", {"Accept-Ranges": "bytes", "ETag": '"v1"'},
                                       content_length=len(body) + 500)])
    dest = tmp_path / "dl"
    # 429 (retried), then a too-long Content-Length: the body ends early, the download resumes
    local, report = fetch(items[:1], ["red"], dest, settings=fast(), source=source)
    assert Path(report[0].path).read_bytes() == body
    assert len(cdse.downloads(0)) == 3 and local[0].assets
    assert cdse.grants.count("password") == 2  # the 502 on the token endpoint was retried
    count("503", "cdse search", 1, "retried → items")
    count("reset mid-body", "cdse search", 1, "retried → items")
    count("502", "cdse token", 1, "retried → token")
    count("429", "cdse download", 1, "retried → verified zip")
    count("Content-Length too long", "cdse download", 1, "resumed → verified zip")


def test_cdse_persistent_cut_download_keeps_part_and_resumes_later(cdse: Any, tmp_path: Path) -> None:
    from test_cdse import fast

    source = cdse.source(fast())
    item = source.search(_cdse_query())[0]
    path = cdse.value_path(0)
    cdse.cuts[path].extend([20_000] * 20)  # 16 KiB kept per attempt
    dest = tmp_path / "dl"
    with pytest.raises(SourceUnavailableError, match="run again to resume"):
        source.download(item, dest)
    assert not list(dest.glob("*.zip")) and list(dest.glob("*.zip.part"))
    attempts = len(cdse.downloads(0))
    assert attempts == 6
    cdse.cuts[path].clear()
    result = source.download(item, dest)
    assert result.resumed and result.path.read_bytes() == cdse.body
    count("reset mid-body", "cdse download", attempts, "persistent: 6 attempts, .part kept; rerun resumes")


def test_cdse_trickled_token_and_slow_download_time_out_then_succeed(cdse: Any, tmp_path: Path) -> None:
    import time

    from test_cdse import fast

    source = cdse.source(fast(http_timeout=0.3))
    item = source.search(_cdse_query())[0]
    cdse.faults["/token"].append(Response(200, {"access_token": "never-finished"}, trickle=1.0))
    path = cdse.value_path(0)
    normal = cdse.server.routes[("*", path)]
    slow = [True]

    def delayed(request: Request) -> Response:
        if slow and request.method == "GET":
            slow.clear()
            time.sleep(1.0)  # over the 0.3 s timeout: the client gives up and retries
        return normal(request)

    cdse.server.routes[("*", path)] = delayed
    result = source.download(item, tmp_path / "dl")
    assert result.path.read_bytes() == cdse.body
    assert cdse.grants.count("password") == 2 and len(cdse.downloads(0)) == 2
    count("trickle (1 B/s)", "cdse token", 1, "read timeout → retried → token")
    count("delay over the timeout", "cdse download", 1, "timeout → retried → verified zip")


@pytest.fixture
def dhus(product: bytes) -> Iterator[Any]:
    from test_dhus import TITLES, FakeDhus, Product

    fake = FakeDhus([Product(f"0000000{i}-aaaa-bbbb-cccc-00000000000{i}", t, f"2022-04-{4 + 5 * i:02d}T10:30:21.024Z",
                             10.0 * i, product) for i, t in enumerate(TITLES)])
    with fake.server:
        yield fake


def test_dhus_search_and_download_through_faults(dhus: Any, tmp_path: Path) -> None:
    from test_dhus import fast, query

    from territoire_geo.sources.dhus import DhusSource

    hub = DhusSource(dhus.url, settings=fast(), product_metadata=False)
    dhus.faults["/search"].extend([Response(503, "busy", "text/plain"), Response(500, "oops", "text/plain")])
    items = hub.search(query())
    assert len(items) == 3 and dhus.count("/search") == 3
    product = dhus.products[0]
    value = f"/odata/v1/Products('{product.uuid}')/$value"
    dhus.faults[value].append(Response(200, "<html><body>Please log in</body></html>", "text/html"))
    with pytest.raises(SourceError, match="HTML page instead of the file"):
        hub.download(items[0], tmp_path / "dl")
    assert not list((tmp_path / "dl").glob("*.zip"))
    dhus.cuts[value].append(len(product.body) // 2)
    result = hub.download(items[0], tmp_path / "dl")  # a later run: cut once, resumed, MD5-verified
    assert result.resumed and result.verified == "md5" and result.path.read_bytes() == product.body
    count("503", "dhus search", 1, "retried → items")
    count("500", "dhus search", 1, "retried → items")
    count("HTML instead of data", "dhus download", 1, "SourceError, nothing kept")
    count("reset mid-body", "dhus download", 1, "resumed → MD5-verified zip")
