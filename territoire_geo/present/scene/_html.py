"""Write a 3D scene as ONE self-contained HTML file (no external script, style, font or tile).

The page is: escaped HTML for title, legend, preset buttons and source line; the scene
(deck.gl JSON from ``Deck.to_json()`` plus tooltips, presets, relief grid) in a
``<script type="application/json">`` block whose ``<``, ``>``, ``&``, U+2028 and U+2029
are ``\\uXXXX``-escaped; the deck.gl bundle; and ``scene_page.js``. A
Content-Security-Policy lists the SHA-256 of each inline script, so injected markup
could not run a script even if some escaping were missed, and forbids every network
origin (except the OpenStreetMap tiles with ``basemap=True``).

Layer data are compacted: coordinates become integer micro-degrees, delta-coded along
each ring or path (``polygon``/``path`` codecs), colours become palette indices.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import logging
import os
from collections.abc import Sequence
from importlib import resources
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

import numpy as np

from territoire_geo._atomic import ensure_new, write_bytes
from territoire_geo._version import __version__
from territoire_geo.errors import DataError, ExportError
from territoire_geo.present.scene._deck_bundle import DeckBundle
from territoire_geo.present.scene._legend import TEXT

__all__ = ["encode_layers", "render_page", "safe_json", "write_page"]

logger = logging.getLogger(__name__)

_WARN_BYTES = 20_000_000
_OSM = "https://tile.openstreetmap.org"
_DROP_KEYS = ("mapProvider", "mapStyle", "mapboxKey", "googleMapsKey", "description", "widgets")
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def safe_json(obj: Any) -> str:
    """Compact JSON safe inside ``<script>``: ``</script>`` or ``<!--`` cannot appear in it."""
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise DataError(f"the scene holds a NaN or infinite number: {exc}") from exc
    for raw, escaped in _ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


# -- data codecs ------------------------------------------------------------------------------
def _quantised(sequences: list[list[list[float]]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(sequences)), dtype=np.float64,
                       count=int(lengths.sum()) * 2)
    return np.rint(flat * 1e6).astype(np.int64).reshape(-1, 2), lengths


def _delta(sequences: list[list[list[float]]]) -> tuple[list[int], list[list[int]]]:
    """Integer micro-degree deltas of each vertex sequence; the first vertex relative to the origin."""
    if not sequences:
        return [0, 0], []
    q, lengths = _quantised(sequences)
    if q.size == 0:
        return [0, 0], [[] for _ in sequences]
    origin = q.min(axis=0)
    q = q - origin
    deltas = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    nonempty = starts[lengths > 0]
    deltas[nonempty] = q[nonempty]
    flat = deltas.ravel().tolist()
    bounds = np.concatenate([[0], np.cumsum(lengths) * 2]).tolist()
    return origin.tolist(), [flat[a:b] for a, b in pairwise(bounds)]


def _encode_rows(rows: list[dict[str, Any]], codecs: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    out = [dict(r) for r in rows]
    spec: dict[str, Any] = {}
    for key, codec in codecs.items():
        if codec == "polygon":
            rings = [ring for r in out for ring in r[key]]
            origin, encoded = _delta(rings)
            it = iter(encoded)
            for r in out:
                r[key] = [next(it) for _ in r[key]]
            spec[key] = ["polygon", origin]
        elif codec == "path":
            origin, encoded = _delta([r[key] for r in out])
            for r, e in zip(out, encoded, strict=True):
                r[key] = e
            spec[key] = ["path", origin]
        elif codec == "palette":
            palette: dict[tuple[Any, ...], int] = {}
            for r in out:
                r[key] = palette.setdefault(tuple(r[key]), len(palette))
            spec[key] = ["palette", [list(c) for c in palette]]
    return out, spec


def encode_layers(deck: Any, codecs: dict[str, dict[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``deck.to_json()`` as a dict with each layer's data compacted, and the codec table.

    The (possibly large) data lists skip pydeck's indented serialisation: they are taken
    out of the layers while ``to_json()`` runs, then encoded and put back in the spec.
    """
    stash = []
    for layer in deck.layers:
        data = getattr(layer, "data", None)
        stash.append(data)
        if isinstance(data, list):
            layer.data = []
    try:
        spec = json.loads(deck.to_json())
    finally:
        for layer, data in zip(deck.layers, stash, strict=True):
            if isinstance(data, list):
                layer.data = data
    table: dict[str, Any] = {}
    for layer_spec, data in zip(spec.get("layers", []), stash, strict=True):
        if not isinstance(data, list):
            continue
        layer_codecs = codecs.get(str(layer_spec.get("id")), {})
        rows, used = _encode_rows(data, layer_codecs) if layer_codecs and data else (data, {})
        layer_spec["data"] = rows
        if used:
            table[str(layer_spec["id"])] = used
    for key in _DROP_KEYS:
        spec.pop(key, None)
    return spec, table


# -- HTML --------------------------------------------------------------------------------------
def _asset(name: str) -> str:
    return resources.files("territoire_geo").joinpath("data", name).read_text(encoding="utf-8")


def _script_safe(js: str) -> str:
    """A bundle made safe to inline: ``</script`` cannot close the element early."""
    if "<!--" in js:
        raise ExportError("the deck.gl bundle contains '<!--' and cannot be inlined safely")
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def _toggles_html(labels: Sequence[str], lang: str) -> str:
    if not labels:
        return ""
    boxes = "".join(f'<label class="tg-item"><input type="checkbox" checked data-toggle="{i}">'
                    f"<span>{html.escape(label)}</span></label>" for i, label in enumerate(labels))
    return f'<details class="tg-toggles"><summary>{html.escape(TEXT[lang]["show"])}</summary>{boxes}</details>'


def _legend_html(entries: Sequence[dict[str, Any]], lang: str) -> str:
    e = html.escape
    items = [f"<h2>{e(TEXT[lang]['legend'])}</h2>"]
    for item in entries:
        label, kind = e(item["label"]), item["kind"]
        if kind == "heading":
            items.append(f"<h3>{label}</h3>")
        elif kind == "swatch":
            items.append(f'<div class="tg-item"><span class="tg-sw" style="background:{item["color"]}"></span>'
                         f"<span>{label}</span></div>")
        elif kind == "line":
            items.append(f'<div class="tg-item"><span class="tg-line" style="border-color:{item["color"]}">'
                         f"</span><span>{label}</span></div>")
        elif kind == "gradient":
            stops = ",".join(item["colors"])
            items.append(f'<h3>{label}</h3><div class="tg-grad" style="background:linear-gradient(to right,'
                         f'{stops})"></div><div class="tg-scale"><span>{e(item.get("min", ""))}</span>'
                         f'<span>{e(item.get("max", ""))}</span></div>')
        else:
            items.append(f'<p class="tg-note">{label}</p>')
    return "".join(items)


def _presets_html(presets: Sequence[dict[str, Any]], lang: str) -> str:
    buttons = "".join(f'<button type="button" data-preset="{i}">{html.escape(str(p["label"]))}</button>'
                      for i, p in enumerate(presets))
    return f'<nav class="tg-panel tg-presets" aria-label="{html.escape(TEXT[lang]["presets"])}">{buttons}</nav>'


def _csp(scripts: Sequence[str], basemap: bool) -> str:
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
                      for s in scripts)
    net = f" {_OSM}" if basemap else ""
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data: blob:{net}; "
            f"connect-src data: blob:{net}; worker-src blob:; base-uri 'none'; form-action 'none'")


def render_page(*, title: str, lang: str, scene: dict[str, Any], bundle: DeckBundle, legend: Sequence[dict[str, Any]],
                presets: Sequence[dict[str, Any]], source_line: str, basemap: bool,
                toggles: Sequence[str] = (), generated: dt.date | None = None) -> str:
    """The complete HTML text of a scene page (``generated``: date shown, today by default)."""
    words, e = TEXT[lang], html.escape
    scripts = [_script_safe(s) for s in bundle.scripts]
    if len(scripts) == 2:  # npm: deck.gl then @deck.gl/json, which also assigns window.deck
        scripts = [scripts[0], "window.__tgCore=window.deck;", scripts[1],
                   "window.__tgJson=window.deck;window.deck=window.__tgCore;"]
    scripts.append(_asset("scene_page.js"))
    date = (generated or dt.date.today()).strftime("%d/%m/%Y" if lang == "fr" else "%Y-%m-%d")
    generated = words["generated"].format(date=date, version=__version__)
    source = " · ".join(p for p in (source_line, words["basemap"] if basemap else "", generated) if p)
    body_scripts = "".join(f"<script>{s}</script>\n" for s in scripts)
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(_csp(scripts, basemap))}">\n'
        f'<meta name="generator" content="territoire_geo {e(__version__)}; deck.gl {e(bundle.version)} '
        f'({e(bundle.kind)})">\n<title>{e(title)}</title>\n<style>{_asset("scene_page.css")}</style>\n</head>\n<body>\n'
        '<div id="tg-map"></div>\n'
        f'<header class="tg-panel tg-head"><h1>{e(title)}</h1><p class="tg-help">{e(words["help"])}</p></header>\n'
        f"{_presets_html(presets, lang)}\n"
        f'<aside class="tg-panel tg-legend">{_legend_html(legend, lang)}{_toggles_html(toggles, lang)}</aside>\n'
        f'<footer class="tg-panel tg-source">{e(words["sources"])} {e(source)}</footer>\n'
        '<div id="tg-tooltip" class="tg-tooltip" role="tooltip" hidden></div>\n'
        f'<noscript><p class="tg-panel tg-noscript">{e(words["noscript"])}</p></noscript>\n'
        f'<script type="application/json" id="tg-scene">{safe_json(scene)}</script>\n'
        f"{body_scripts}</body>\n</html>\n"
    )


def write_page(text: str, path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Write ``text`` atomically (:mod:`territoire_geo._atomic`); warn in the log above 20 MB."""
    target = ensure_new(path, overwrite=overwrite)
    data = text.encode("utf-8")
    write_bytes(target, data)
    if len(data) > _WARN_BYTES:
        logger.warning("%s is %.1f MB: too big for most mailboxes; simplify more or drop layers",
                       target, len(data) / 1e6)
    return target
