"""Fetch through a real Range-capable HTTP server with injected faults."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from _servers import Fault, RangeHTTPServer

from territoire_geo.config import Settings
from territoire_geo.errors import AuthenticationError, ChecksumError, ExportError, SourceError
from territoire_geo.imagery import fetch
from territoire_geo.testing import multihash_sha256

FAST = Settings(http_retries=3, http_backoff=0.01)


@pytest.fixture
def served(tmp_path: Path, sample_items: list[pystac.Item]) -> tuple[RangeHTTPServer, pystac.Item, Path]:
    """One sample item's red and nir COGs served from a private folder."""
    root = tmp_path / "www"
    root.mkdir()
    item = sample_items[6].clone()
    for band in ("red", "nir"):
        shutil.copy(item.assets[band].get_absolute_href(), root / f"{band}.tif")
    server = RangeHTTPServer(root)
    for band in ("red", "nir"):
        item.assets[band].href = f"{server.url}/{band}.tif"
    for key in [k for k in item.assets if k not in ("red", "nir")]:
        del item.assets[key]
    item.clear_links()
    with server:
        yield server, item, tmp_path / "cache"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_verifies_and_second_run_downloads_nothing(served: tuple) -> None:
    server, item, dest = served
    local, report = fetch([item], ["red", "nir"], dest, settings=FAST)
    assert [r.verified for r in report] == ["sha256", "sha256"]
    assert all(not r.cached and r.bytes > 100_000 for r in report)
    path = Path(local[0].assets["red"].href)
    assert path.exists() and _sha(path) == _sha(server.root / "red.tif")
    before = len(server.requests)
    _, again = fetch([item], ["red", "nir"], dest, settings=FAST)
    assert all(r.cached and r.bytes == 0 for r in again)
    assert len(server.requests) == before
    assert (dest / "items.json").exists()


def test_resume_after_cut_connection(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", Fault("reset", after=60_000))
    _, report = fetch([item], ["red"], dest, settings=FAST)
    assert report[0].resumed
    ranges = [r for m, p, r, _ in server.requests if p == "/red.tif" and m == "GET"]
    assert ranges[0] is None and ranges[1].startswith("bytes=")
    assert 40_000 <= int(ranges[1][6:-1]) <= 60_000  # resumed from what arrived (16 KiB chunks)
    assert _sha(Path(report[0].path)) == _sha(server.root / "red.tif")


def test_resume_after_truncated_body_and_interrupted_run(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", *[Fault("truncate", after=40_000)] * 6)
    with pytest.raises(SourceError, match="run again to resume"):
        fetch([item], ["red"], dest, settings=Settings(http_retries=1, http_backoff=0.01))
    part = dest / "sentinel-2-l2a" / item.id / "red.tif.part"
    assert part.exists() and not part.with_suffix("").exists()  # partial kept, nothing under the final name
    _, report = fetch([item], ["red"], dest, settings=FAST)  # a later run completes the work
    assert report[0].resumed and _sha(Path(report[0].path)) == _sha(server.root / "red.tif")
    assert not part.exists()


def test_retries_503_and_429_then_succeeds(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", Fault("status", 503), Fault("status", 429, retry_after=0), Fault("status", 502))
    _, report = fetch([item], ["red"], dest, settings=FAST)
    assert server.count("/red.tif") == 4
    assert Path(report[0].path).exists()


def test_no_retry_on_404_and_401(served: tuple) -> None:
    server, item, dest = served
    item.assets["red"].href = server.url + "/missing.tif"
    with pytest.raises(SourceError, match=r"missing\.tif answered HTTP 404"):
        fetch([item], ["red"], dest, settings=FAST)
    assert server.count("/missing.tif") == 1
    server.inject("/nir.tif", Fault("status", 401))
    with pytest.raises(AuthenticationError, match="refused"):
        fetch([item], ["nir"], dest, settings=FAST)
    assert server.count("/nir.tif") == 1


def test_bounded_attempts_on_persistent_503(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", *[Fault("status", 503)] * 10)
    with pytest.raises(SourceError, match=r"red\.tif failed after 4 attempts \(HTTP 503\)"):
        fetch([item], ["red"], dest, settings=FAST)
    assert server.count("/red.tif") == 4
    assert not list(dest.rglob("red.tif*"))


def test_checksum_mismatch_rejected_and_not_kept(served: tuple) -> None:
    _, item, dest = served
    item.assets["red"].extra_fields["file:checksum"] = "1220" + "ab" * 32
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        fetch([item], ["red"], dest, settings=FAST)
    assert not list(dest.rglob("red.tif*"))


def test_html_page_instead_of_file(served: tuple) -> None:
    server, item, dest = served
    server.inject("/red.tif", Fault("html"))
    with pytest.raises(SourceError, match="HTML page instead of the file"):
        fetch([item], ["red"], dest, settings=FAST)
    assert not list(dest.rglob("red.tif*"))


def test_full_disk_gives_export_error_and_no_file(served: tuple, tiny_disk: Path) -> None:
    _, item, _ = served
    with pytest.raises(ExportError, match="disk full"):
        fetch([item], ["red"], tiny_disk / "cache", settings=FAST)
    assert not [p for p in tiny_disk.rglob("*") if p.is_file() and p.name != "items.json"]


def test_clip_to_aoi_over_http(served: tuple) -> None:
    server, item, dest = served
    aoi = (4.355, 43.99, 4.37, 44.0)
    _, report = fetch([item], ["red"], dest, aoi=aoi, settings=FAST)
    path = Path(report[0].path)
    with rasterio.open(path) as clip, rasterio.open(server.root / "red.tif") as full:
        assert clip.crs == full.crs and clip.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        window = rasterio.windows.from_bounds(*clip.bounds, transform=full.transform)
        expected = full.read(1, window=window.round_offsets().round_lengths())
        assert np.array_equal(clip.read(1), expected)
    assert any(r for _, p, r, _ in server.requests if p == "/red.tif")  # read with Range requests


def test_multihash_helper(tmp_path: Path) -> None:
    file = tmp_path / "a.bin"
    file.write_bytes(b"territoire")
    assert multihash_sha256(file) == "1220" + hashlib.sha256(b"territoire").hexdigest()
