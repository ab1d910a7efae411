"""3D scenes in a real browser: headless Chromium driven over the DevTools pipe, offline.

The page is opened from a ``file://`` URL (nothing is served) with DNS mapped to nothing; the
tests check the picture is not blank, the console is clean, no request leaves the page, hovering
a zone shows its (escaped) tooltip and the XSS payloads in the PLU labels never run.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _scene_data as sd
import geopandas as gpd
import numpy as np
import pytest

from territoire_geo.present import scene
from territoire_geo.present.scene import Browser
from territoire_geo.present.scene._browser import file_url
from territoire_geo.present.scene._presets import ground

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None,
                       reason="headless Chromium not installed (CI installs it: apt-get install chromium)"),
]
RENDERED = "document.title.startsWith('rendered')"


def content_fraction(png: bytes) -> float:
    """Share of the central half of a screenshot that is not the pale, grey page background."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)
    h, w, _ = image.shape
    centre = image[h // 4: 3 * h // 4, w // 4: 3 * w // 4]
    high, low = centre.max(axis=2), centre.min(axis=2)
    saturation = (high - low) / np.maximum(high, 1)
    return float(((saturation > 0.12) | (high < 200)).mean())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, gpd.GeoDataFrame, scene.SceneDeck]:
    zones = sd.zones()
    deck = scene.build(zones, dem=sd.dem(), raster=sd.ndvi(),
                       change_patches=gpd.read_file(sd.SAMPLES / "truth" / "planted_change.geojson"),
                       project=gpd.read_file(sd.SAMPLES / "layers" / "projet_batiments.gpkg"),
                       context=[gpd.read_file(sd.SAMPLES / "layers" / "routes.gpkg")], title=sd.XSS_TITLE)
    path = scene.export(deck, tmp_path_factory.mktemp("browser") / "scene.html")
    return path, zones, deck


@pytest.fixture(scope="module")
def page(built: tuple[Path, gpd.GeoDataFrame, scene.SceneDeck]) -> Iterator[Browser]:
    with Browser(width=1200, height=800) as browser:
        browser.open(file_url(built[0]))
        browser.wait_for(RENDERED, timeout=180)
        yield browser


def test_snapshot_is_not_blank(built: tuple[Path, Any, Any], tmp_path: Path) -> None:
    png = scene.snapshot(built[0], tmp_path / "scene.png", timeout=180)
    share = content_fraction(png.read_bytes())
    assert share > 0.25, f"only {share:.0%} of the centre is drawn"


def test_console_clean_and_nothing_leaves_the_page(page: Browser) -> None:
    assert page.console_errors() == []
    urls = page.requested_urls()
    assert urls and all(u.startswith(("file:", "data:", "blob:")) for u in urls), urls
    assert not any(e.get("method") == "Page.javascriptDialogOpening" for e in page.events)
    assert page.evaluate("window.__xss === undefined")
    assert page.evaluate("document.querySelector('h1').textContent") == sd.XSS_TITLE
    assert page.evaluate("document.title") == f"rendered · {sd.XSS_TITLE}"
    assert page.evaluate("document.querySelectorAll('body img, body iframe').length") == 0


def _screen_points(page: Browser, built: tuple[Path, gpd.GeoDataFrame, scene.SceneDeck]) -> list[list[float]]:
    """Screen positions of points inside the hostile zone, at the top of its block."""
    _, zones, deck = built
    row = sd.hostile_zone(zones)
    polygon = gpd.GeoSeries([row.geometry], crs=zones.crs).to_crs(4326).iloc[0]
    west, south, east, north = polygon.bounds
    candidates = [polygon.representative_point()]
    grid = np.stack(np.meshgrid(np.linspace(west, east, 9), np.linspace(south, north, 9)), -1).reshape(-1, 2)
    candidates += [p for p in gpd.points_from_xy(grid[:, 0], grid[:, 1]) if polygon.buffer(-2e-4).contains(p)]
    units = next(layer for layer in deck.layers if layer.id == "units")
    block = next(r["e"] for r in units.data if r["t"][0] == sd.XSS_SCRIPT)
    lifted = [[p.x, p.y, ground(deck.scene_info.terrain, p.x, p.y) + block] for p in candidates]
    return page.evaluate(f"(function (pts) {{ var vp = territoireScene.deck.getViewports()[0];"
                         f" return pts.map(function (p) {{ return vp.project(p); }}); }})({json.dumps(lifted)})")


def test_hover_shows_the_escaped_tooltip(page: Browser, built: tuple[Path, gpd.GeoDataFrame, Any]) -> None:
    page.evaluate("territoireScene.fly(1, 0)")  # top view
    time.sleep(3)
    tip: dict[str, Any] = {}
    for x, y, *_ in _screen_points(page, built):
        if not (0 < x < 1200 and 0 < y < 800):
            continue
        page.mouse_move(x, y)
        time.sleep(0.6)
        tip = page.evaluate("(function () { var t = document.getElementById('tg-tooltip');"
                            " return {hidden: t.hidden, text: t.textContent, html: t.innerHTML,"
                            " elements: t.querySelectorAll('img, script, iframe').length}; })()")
        if sd.XSS_SCRIPT in tip.get("text", ""):
            break
    assert not tip.get("hidden", True) and sd.XSS_SCRIPT in tip["text"], tip
    assert "Zone" in tip["text"] and "Surface" in tip["text"] and "ha" in tip["text"]
    assert sd.XSS_IMG in tip["text"] and tip["elements"] == 0
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in tip["html"]
    assert page.evaluate("window.__xss === undefined")
    assert not any(e.get("method") == "Page.javascriptDialogOpening" for e in page.events)
    assert page.console_errors() == []


def test_preset_buttons_move_the_camera(page: Browser) -> None:
    before = page.evaluate("territoireScene.deck.viewState || territoireScene.deck.props.viewState")
    page.evaluate("document.querySelector('button[data-preset=\"2\"]').click()")  # Projet
    time.sleep(3)
    after = page.evaluate("JSON.parse(JSON.stringify(territoireScene.deck.props.viewState,"
                          " ['longitude', 'latitude', 'zoom', 'pitch']))")
    assert after["zoom"] > before["zoom"] + 2 and after["pitch"] == 55
    assert page.evaluate("document.querySelector('button[data-preset=\"2\"]').getAttribute('aria-pressed')") == "true"
    visible = page.evaluate("JSON.stringify(territoireScene.deck.props.layers.map(function (l) {"
                            " return [l.id, l.props.visible]; }))")
    assert ["units", False] in json.loads(visible) and ["project", True] in json.loads(visible)
    assert page.console_errors() == []


def test_layer_toggles(page: Browser) -> None:
    page.evaluate("territoireScene.fly(0, 0)")  # the overview shows every layer
    page.evaluate("document.querySelector('.tg-toggles').open = true")
    labels = page.evaluate("Array.prototype.map.call(document.querySelectorAll('.tg-toggles span'),"
                           " function (s) { return s.textContent; })")
    ndvi = page.evaluate(f"document.querySelector('.tg-toggles input[data-toggle=\"{labels.index('NDVI')}\"]')"
                         ".click() || true")
    assert ndvi
    time.sleep(2)
    state = page.evaluate("(function () { var t = territoireScene.deck.props.layers.filter(function (l) {"
                          " return l.id === 'terrain'; })[0]; return {visible: t.props.visible,"
                          " plain: t.props[Symbol.for('asyncPropOriginal')].texture === JSON.parse(document.getElementById('tg-scene').textContent)"
                          ".terrain.plain}; })()")
    assert state == {"visible": True, "plain": True}
    page.evaluate("document.querySelector('.tg-toggles input[data-toggle=\"0\"]').click()")  # blocks off
    time.sleep(2)
    visible = json.loads(page.evaluate("JSON.stringify(territoireScene.deck.props.layers.map(function (l) {"
                                       " return [l.id, l.props.visible]; }))"))
    assert ["units", False] in visible and ["units-ground", True] in visible
    assert page.console_errors() == []


def test_pydeck_bundle_fallback_renders(tmp_path: Path) -> None:
    deck = scene.build(sd.zones(), dem=sd.dem(), title="Repli pydeck")
    path = scene.export(deck, tmp_path / "pydeck.html", bundle="pydeck")
    with Browser(width=1000, height=700) as browser:
        browser.open(file_url(path))
        browser.wait_for(RENDERED, timeout=180)
        assert browser.console_errors() == []
        assert all(u.startswith(("file:", "data:", "blob:")) for u in browser.requested_urls())
        assert content_fraction(browser.screenshot()) > 0.2
