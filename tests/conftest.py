"""Shared fixtures: sample data, loopback servers (rustac STAC API, Range HTTP server)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pystac
import pytest
from _servers import RangeHTTPServer, StacApiServer

from territoire_geo.testing import write_items_ndjson

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples"
REAL = Path(__file__).resolve().parent / "data" / "real"
PLU_SHP = SAMPLES / "plu" / "30014_PLU_20171013" / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TERRITOIRE_* setting from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("TERRITOIRE_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def samples() -> Path:
    """The committed sample territory (read-only: copy before writing)."""
    return SAMPLES


@pytest.fixture(scope="session")
def plu_shp() -> Path:
    """ZONE_URBA of the real Arpaillargues PLU (an AOI for the sample imagery)."""
    return PLU_SHP


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """Real third-party files copied into tests/data/real (see PROVENANCE.md)."""
    return REAL


@pytest.fixture(scope="session")
def sample_items() -> list[pystac.Item]:
    """Every Sentinel-2 item of the static sample catalog, by date."""
    from territoire_geo.sources import StaticCatalogSource, sort_items

    items = StaticCatalogSource(SAMPLES / "stac").items()
    return sort_items(i for i in items if i.collection_id == "sentinel-2-l2a")


@pytest.fixture(scope="session")
def cog_server() -> Iterator[RangeHTTPServer]:
    """The sample catalog folder served over HTTP with Range support."""
    with RangeHTTPServer(SAMPLES / "stac") as server:
        yield server


def http_items(items: list[pystac.Item], base_url: str) -> list[pystac.Item]:
    """Copies of sample items whose asset hrefs point at the Range server."""
    root = (SAMPLES / "stac").resolve()
    out = []
    for item in items:
        clone = item.clone()
        for asset in clone.assets.values():
            local = Path(asset.get_absolute_href() or asset.href).resolve()
            asset.href = f"{base_url}/{local.relative_to(root).as_posix()}"
        clone.clear_links()
        out.append(clone)
    return out


@pytest.fixture(scope="session")
def stac_api(tmp_path_factory: pytest.TempPathFactory, sample_items: list[pystac.Item],
             cog_server: RangeHTTPServer) -> Iterator[StacApiServer]:
    """``rustac serve`` on 127.0.0.1 with the sample items (hrefs on the Range server)."""
    if shutil.which("rustac") is None:
        pytest.skip("rustac is not installed (pip install rustac)")
    folder = tmp_path_factory.mktemp("stac_api")
    collection = json.loads((SAMPLES / "stac" / "sentinel-2-l2a" / "collection.json").read_text())
    collection["links"] = []
    (folder / "collection.json").write_text(json.dumps(collection))
    dem = pystac.read_file(str(next((SAMPLES / "stac" / "cop-dem-glo-30").glob("*/*.json"))))
    dem_collection = json.loads((SAMPLES / "stac" / "cop-dem-glo-30" / "collection.json").read_text())
    dem_collection["links"] = []
    (folder / "dem_collection.json").write_text(json.dumps(dem_collection))
    write_items_ndjson(http_items(sample_items, cog_server.url), folder / "items.ndjson")
    write_items_ndjson(http_items([dem], cog_server.url), folder / "dem_items.ndjson")
    with StacApiServer(folder / "collection.json", folder / "items.ndjson",
                       folder / "dem_collection.json", folder / "dem_items.ndjson") as server:
        yield server


def chromium_path() -> str | None:
    """The Chromium executable, if installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs, to test full-disk handling for real (needs root; skipped otherwise)."""
    mount = tmp_path / "tiny_disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()[:100]}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
