"""3D scenes: build from the sample territory, offline single-file export, escaping, size, CLI."""

from __future__ import annotations

import json
import logging
import re
import tarfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import _scene_data as sd
import geopandas as gpd
import numpy as np
import pytest
from typer.testing import CliRunner

from territoire_geo.errors import ConfigError, DataError, ExportError
from territoire_geo.present import scene
from territoire_geo.present.scene import INSTALL_COMMAND, ensure_bundle
from territoire_geo.present.scene._deck_bundle import _load
from territoire_geo.present.scene._html import encode_layers, safe_json

HAS_NPM = ensure_bundle("auto").kind == "npm"


def _scene_json(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="tg-scene">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))


def _points(flat: list[int], origin: list[int]) -> list[list[float]]:
    """Python mirror of the page's delta decoder."""
    x, y, out = origin[0], origin[1], []
    for i in range(0, len(flat), 2):
        x, y = x + flat[i], y + flat[i + 1]
        out.append([x / 1e6, y / 1e6])
    return out


@pytest.fixture(scope="module")
def zones() -> gpd.GeoDataFrame:
    return sd.zones()


@pytest.fixture(scope="module")
def full_deck(zones: gpd.GeoDataFrame) -> scene.SceneDeck:
    return scene.build(zones, dem=sd.dem(), raster=sd.ndvi(),
                       change_patches=gpd.read_file(sd.SAMPLES / "truth" / "planted_change.geojson"),
                       project=gpd.read_file(sd.SAMPLES / "layers" / "projet_batiments.gpkg"),
                       context=[gpd.read_file(sd.SAMPLES / "layers" / "routes.gpkg")], title=sd.XSS_TITLE)


@pytest.fixture(scope="module")
def page(full_deck: scene.SceneDeck, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = scene.export(full_deck, tmp_path_factory.mktemp("scene") / "scene.html")
    return path.read_text(encoding="utf-8")


# -- the exported file ---------------------------------------------------------------------------
class _Elements(HTMLParser):
    """Every element with its attributes, and the text of <style> blocks (script text is not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def test_page_loads_nothing_external(page: str) -> None:
    parser = _Elements()
    parser.feed(page)
    names = [tag for tag, _ in parser.tags]
    assert "link" not in names and "iframe" not in names and "img" not in names
    assert names.count("script") == (6 if HAS_NPM else 3)  # scene JSON, bundle(s) + stash/restore, page
    for tag, attrs in parser.tags:
        assert "src" not in attrs and "href" not in attrs, (tag, attrs)
        assert "http" not in str(attrs.get("style", "")), (tag, attrs)
    css = "".join(parser.styles)
    assert "url(" not in css and "@import" not in css and "@font-face" not in css
    csp = next(str(a["content"]) for t, a in parser.tags if a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "http" not in csp
    assert "script-src 'sha256-" in csp and "unsafe" not in csp.split("style-src")[0]  # scripts only by hash


def test_hostile_strings_are_escaped(page: str) -> None:
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>foncières</b>" not in page
    assert "</title><script>" not in page
    assert "\u2028" not in page
    head = page.split("<body>")[0]
    assert "Réserves &lt;b&gt;foncières&lt;/b&gt; &amp; &lt;/title&gt;" in head
    body_json = page.split('id="tg-scene">')[1].split("</script>")[0]
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in body_json
    assert "\\u003cimg src=x onerror=" in body_json
    assert "\\u2028" in body_json
    assert "PLU 30014_PLU_20171013 &lt;v2017&gt;" in page  # source line (HTML-escaped)


def test_scene_json_round_trips(page: str, zones: gpd.GeoDataFrame) -> None:
    cfg = _scene_json(page)
    assert cfg["title"] == sd.XSS_TITLE
    layers = {layer["id"]: layer for layer in cfg["deck"]["layers"]}
    assert set(layers) == {"terrain", "context-0", "units-ground", "units", "change", "project"}
    units = layers["units"]
    codec = cfg["codecs"]["units"]
    assert codec["p"][0] == "polygon" and codec["c"][0] == "palette"
    hostile = next(r for r in units["data"] if r["t"][0] == sd.XSS_SCRIPT)
    ring = _points(hostile["p"][0], codec["p"][1])
    expected = sd.hostile_zone(zones).geometry
    expected = gpd.GeoSeries([expected], crs=zones.crs).to_crs(4326).iloc[0]
    assert expected.buffer(1e-5).contains(gpd.points_from_xy(*np.array(ring).T)).all()
    assert cfg["codecs"]["units"]["c"][1][hostile["c"]][:3] == [236, 212, 72]  # A zone: yellow
    assert layers["units-ground"]["data"] == "tg:units"
    assert layers["terrain"]["mesh"] == "@@#TERRAIN_MESH"
    # with a DEM the NDVI is blended into the relief texture; the plain hillshade is kept for the toggle
    assert layers["terrain"]["texture"].startswith("data:image/png;base64,")
    assert cfg["terrain"]["plain"].startswith("data:image/png;base64,")
    assert layers["units-ground"]["filled"] is False  # outlines only: the NDVI stays visible
    assert len(cfg["terrain"]["z"]) == cfg["terrain"]["w"] * cfg["terrain"]["h"]


def test_tooltips_french(page: str) -> None:
    cfg = _scene_json(page)
    tip = cfg["tooltips"]["units"]
    assert tip["fields"][:4] == ["Zone", "Libellé", "Type", "Surface"]
    assert {"Score", "Rang", "Contribution : pente", "Contribution : reseaux", "Exclusion"} <= set(tip["fields"])
    rows = [r["t"] for r in next(x for x in cfg["deck"]["layers"] if x["id"] == "units")["data"]]
    area = tip["fields"].index("Surface")
    assert all(re.fullmatch(r"[\d\u202f]+,\d\d\u00a0ha", r[area]) for r in rows)
    types = {r[tip["fields"].index("Type")] for r in rows}
    assert "N — naturelle" in types
    assert cfg["tooltips"]["change"]["title"] == "Changement détecté"


def test_tooltips_english(zones: gpd.GeoDataFrame, tmp_path: Path) -> None:
    deck = scene.build(zones, lang="en")
    cfg = _scene_json(scene.export(deck, tmp_path / "en.html").read_text(encoding="utf-8"))
    assert cfg["tooltips"]["units"]["fields"][:4] == ["Zone", "Label", "Type", "Area"]
    assert cfg["presets"][0]["label"] == "Overview"
    assert any(re.fullmatch(r"[\d,]+\.\d\d\u00a0ha", r["t"][3]) for r in cfg["deck"]["layers"][0]["data"])


def test_legend_title_presets_source(page: str) -> None:
    assert "<h1>Réserves &lt;b&gt;foncières&lt;/b&gt;" in page
    for label in ("U — zone urbaine", "A — agricole", "N — naturelle", "Changement détecté",
                  "Projet (hauteur réelle des bâtiments)", "NDVI", "ce n&#x27;est pas une hauteur de bâti"):
        assert label in page
    assert re.search(r"Relief : [^<]*exagéré ×\d", page)
    buttons = re.findall(r'<button type="button" data-preset="(\d+)">([^<]+)</button>', page)
    labels = [b[1] for b in buttons]
    assert labels[:3] == ["Vue d&#x27;ensemble", "Vue de dessus", "Projet"]
    assert labels[3].startswith("N°1 — ") and len(labels) == 6
    assert "Sources : PLU 30014" in page and "Sentinel-2 L2A S2A_T31TFJ_20220414T103021_L2A" in page
    toggles = re.findall(r'<input type="checkbox" checked data-toggle="(\d+)"><span>([^<]+)</span>', page)
    assert [t[1] for t in toggles] == ["Blocs (score)", "Zones au sol", "Changement détecté", "Projet", "NDVI",
                                       "Relief", "Contexte 1"]
    assert _scene_json(page)["toggles"][4] == ["raster"]


def test_hostile_preset_label_is_escaped(zones: gpd.GeoDataFrame) -> None:
    deck = scene.build(zones, ranked=90)
    labels = [p["label"] for p in deck.scene_info.presets]
    assert f"N°{int(sd.hostile_zone(zones)['rank'])} — {sd.XSS_SCRIPT}" in labels


def test_flat_scene_without_relief(zones: gpd.GeoDataFrame, tmp_path: Path) -> None:
    deck = scene.build(zones, extrude=None, color_by="score", colormap="magma")
    cfg = _scene_json(scene.export(deck, tmp_path / "flat.html").read_text(encoding="utf-8"))
    units = cfg["deck"]["layers"][0]
    assert units["extruded"] is False and "extensions" not in units and cfg["terrain"] is None
    assert len(cfg["codecs"]["units"]["c"][1]) > 5  # a numeric ramp


def test_categorical_raster_gets_class_legend(zones: gpd.GeoDataFrame) -> None:
    import rioxarray

    classes = rioxarray.open_rasterio(sd.SAMPLES / "truth" / "land_cover.tif").squeeze(drop=True)
    classes.attrs.update(long_name="Occupation du sol")
    deck = scene.build(zones, raster=classes)
    assert [layer.id for layer in deck.layers] == ["raster", "units"]  # no relief: a BitmapLayer
    legend = deck.scene_info.legend
    heading = next(i for i, e in enumerate(legend) if e["label"] == "Occupation du sol")
    assert legend[heading]["kind"] == "heading" and legend[heading + 1]["kind"] == "swatch"


def test_errors(zones: gpd.GeoDataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no CRS"):
        scene.build(zones.set_crs(None, allow_override=True))
    with pytest.raises(DataError, match="extrude column 'missing'"):
        scene.build(zones, extrude="missing")
    with pytest.raises(ConfigError, match="lang"):
        scene.build(zones, lang="de")
    with pytest.raises(ConfigError, match="camera"):
        scene.build(zones, camera="nowhere")
    with pytest.raises(DataError, match="nothing to draw"):
        scene.build()
    deck = scene.build(zones, camera="rank-1")
    assert deck.scene_info.presets[deck.scene_info.initial]["id"] == "rank-1"
    target = scene.export(deck, tmp_path / "s.html")
    with pytest.raises(ExportError, match="--overwrite"):
        scene.export(deck, target)
    assert scene.export(deck, target, overwrite=True) == target
    with pytest.raises(ConfigError, match="colour"):
        scene.export(deck, target, overwrite=True, legend=[("x", "red; background:url(http://x)")])


def test_export_overrides(zones: gpd.GeoDataFrame, tmp_path: Path) -> None:
    deck = scene.build(zones)
    page = scene.export(deck, tmp_path / "o.html", title="T", source_line="S <1>", legend=[("Lots", "#112233")],
                        presets=[{"label": "Ici", "bounds": [4.33, 43.97, 4.40, 44.03], "pitch": 30}],
                        basemap=True).read_text(encoding="utf-8")
    assert "<h1>T</h1>" in page and "S &lt;1&gt;" in page and "background:#112233" in page
    assert "https://tile.openstreetmap.org" in page.split("<body>")[0]  # CSP opens the tile host only
    assert "contributeurs OpenStreetMap" in page
    assert _scene_json(page)["presets"] == [{"label": "Ici", "bounds": [4.33, 43.97, 4.4, 44.03],
                                             "pitch": 30.0, "bearing": 0.0}]


def test_export_of_a_plain_pydeck_deck(tmp_path: Path) -> None:
    import pydeck as pdk

    layer = pdk.Layer("ScatterplotLayer", data=[{"position": [4.36, 44.0], "name": "<b>x</b>"}],
                      get_position="position", get_radius=50)
    deck = pdk.Deck(layers=[layer], initial_view_state=pdk.ViewState(longitude=4.36, latitude=44.0, zoom=12))
    page = scene.export(deck, tmp_path / "plain.html", title="Plain").read_text(encoding="utf-8")
    cfg = _scene_json(page)
    assert cfg["deck"]["layers"][0]["data"][0]["name"] == "<b>x</b>" and "<b>x</b>" not in page
    assert cfg["presets"] == [] and "mapProvider" not in cfg["deck"]


# -- pieces --------------------------------------------------------------------------------------
def test_safe_json_escapes_script_breakers() -> None:
    text = safe_json({"a": "</script><!--&\u2028\u2029>"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!--&\u2028\u2029>"}
    with pytest.raises(DataError):
        safe_json({"a": float("nan")})


def test_codecs_round_trip() -> None:
    deck = scene.build(sd.synthetic_polygons(50), simplify=0)
    original = [r["p"] for r in deck.layers[0].data]
    spec, codecs = encode_layers(deck, deck.scene_info.codecs)
    assert deck.layers[0].data[0]["p"] == original[0]  # the deck's own data are untouched
    origin = codecs["units"]["p"][1]
    decoded = [[_points(ring, origin) for ring in row["p"]] for row in spec["layers"][0]["data"]]
    assert np.allclose(np.concatenate([np.ravel(p) for p in decoded]),
                       np.concatenate([np.ravel(p) for p in original]), atol=1e-9)


def test_ensure_bundle_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TERRITOIRE_GEO_DECKGL_DIR", str(tmp_path))
    _load.cache_clear()
    with pytest.raises(ExportError) as info:
        ensure_bundle("npm")
    assert INSTALL_COMMAND in str(info.value) and "\n" not in str(info.value)
    with caplog.at_level(logging.WARNING, logger="territoire_geo.present.scene"):
        fallback = ensure_bundle("auto")
    assert fallback.kind == "pydeck" and not fallback.terrain and "npm pack" in caplog.text
    assert ensure_bundle("pydeck").size > 4_000_000
    fake = tmp_path / "deck.gl-9.3.11.tgz"
    src = tmp_path / "dist.min.js"
    src.write_text("window.deck = {};")
    with tarfile.open(fake, "w:gz") as archive:
        archive.add(src, arcname="package/dist.min.js")
    (tmp_path / "deck.gl-json-9.3.11.tgz").write_bytes(fake.read_bytes())
    _load.cache_clear()
    with pytest.raises(ExportError, match=r"not the pinned deck\.gl"):
        ensure_bundle("npm")
    with pytest.raises(ConfigError):
        ensure_bundle("cdn")  # type: ignore[arg-type]
    _load.cache_clear()


@pytest.mark.skipif(not HAS_NPM, reason=f"npm deck.gl bundle not installed; run: {INSTALL_COMMAND}")
def test_npm_bundle_is_smaller_than_pydeck() -> None:
    npm, pydeck = ensure_bundle("npm"), ensure_bundle("pydeck")
    assert npm.terrain and npm.size < 0.45 * pydeck.size


def test_snapshot_without_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "s.html").write_text("<html></html>")
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(ExportError, match=r"install chromium \(apt-get install chromium\) or drop --png"):
        scene.snapshot(tmp_path / "s.html", tmp_path / "s.png")


# -- size ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1_000, 20_000])
def test_size_against_plain_pydeck(n: int, tmp_path: Path, record_property: Any) -> None:
    deck = scene.build(sd.synthetic_polygons(n))
    ours = scene.export(deck, tmp_path / "ours.html").stat().st_size
    plain = len(deck.to_html(as_string=True, offline=True, notebook_display=False).encode())
    record_property("sizes", {"n": n, "ours": ours, "plain": plain})
    print(f"\n{n} polygons: ours {ours / 1e6:.2f} MB, plain pydeck offline {plain / 1e6:.2f} MB")
    assert ours < plain
    if n == 20_000:
        assert ours < 10_000_000  # emailable


# -- files and CLI ------------------------------------------------------------------------------
def test_scene_from_files_and_cli(tmp_path: Path) -> None:
    from territoire_geo_cli.main import app

    args = ["scene", "--units", str(sd.PLU_SHP), "--dem", str(sd.dem_path()),
            "--project", str(sd.SAMPLES / "layers" / "projet_batiments.gpkg"),
            "--change", str(sd.SAMPLES / "truth" / "planted_change.geojson"),
            "--context", str(sd.SAMPLES / "layers" / "routes.gpkg"), "--title", "Démo", "--lang", "en",
            "--out", str(tmp_path / "cli.html")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "cli.html").read_text(encoding="utf-8")
    assert "<h1>Démo</h1>" in page and "Copernicus DEM GLO-30" in page and "PLU 30014_PLU_20171013" in page
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 5 and "--overwrite" in again.output
    html_path, png_path = scene.scene_from_files(tmp_path / "lib.html", units=sd.PLU_SHP, extrude=None)
    assert html_path.is_file() and png_path is None
