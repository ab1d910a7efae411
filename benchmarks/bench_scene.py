"""Benchmark (not a test): 3D scene HTML size and first render, territoire_geo exporter vs plain pydeck.

1,000 / 20,000 / 100,000 extruded 20-vertex polygons (radius 20–60 m, over ~10 × 10 km in
Lambert-93, a score column), built once with :func:`territoire_geo.present.scene.build`, then written

- by :func:`territoire_geo.present.scene.export` (npm deck.gl bundle; and the pydeck-bundle fallback), and
- by plain ``pydeck.Deck.to_html(offline=True)`` of the **same** pydeck layers.

First render = seconds from navigation to the first frame with every layer loaded, read in
the page (``performance.now()``): our page sets ``document.title`` to ``rendered…`` in deck's
``onAfterRender``; the plain page is polled for ``deckInstance`` having drawn a frame with all
layers loaded. Headless Chromium (SwiftShader software WebGL, stack.md §5 flags), offline
(DNS mapped to nothing: the plain page's CDN scripts and Carto basemap fail fast), 1200×800,
a fresh browser per run, one run per cell. The sample-territory scene (real PLU, DEM relief,
NDVI, change, project, roads) is measured too.

Run: ``python benchmarks/bench_scene.py [--skip-plain-above N]`` (writes ``benchmarks/results/scene.md``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import _scene_data as sd  # noqa: E402  (test helpers, after the path tweak)

from territoire_geo.present import scene  # noqa: E402
from territoire_geo.present.scene import Browser, file_url  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "scene.md"
OURS = "document.title.startsWith('rendered') ? performance.now() : 0"
PLAIN = ("(typeof deckInstance !== 'undefined' && deckInstance.layerManager && deckInstance.metrics"
         " && deckInstance.metrics.framesRedrawn > 0 && deckInstance.layerManager.getLayers().length"
         " && deckInstance.layerManager.getLayers().every(function (l) { return l.isLoaded; }))"
         " ? performance.now() : 0")


def first_render(path: Path, expression: str, timeout: float) -> float | None:
    """Seconds from navigation to the first fully loaded frame (None on timeout)."""
    with Browser(width=1200, height=800) as browser:
        browser.open(file_url(path), timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = browser.evaluate(expression, timeout=timeout)
            except (TimeoutError, RuntimeError):
                value = 0
            if value:
                return float(value) / 1000
            time.sleep(0.05)
    return None


def measure(n: int, work: Path, skip_plain_above: int, timeout: float) -> list[dict[str, Any]]:
    frame = sd.synthetic_polygons(n)
    start = time.perf_counter()
    deck = scene.build(frame)
    build_s = time.perf_counter() - start
    rows = []
    variants: list[tuple[str, str]] = [("ours, npm deck.gl 9.3.11", "npm")]
    if n == 1_000:
        variants.append(("ours, pydeck bundle fallback", "pydeck"))
    for label, bundle in variants:
        start = time.perf_counter()
        path = scene.export(deck, work / f"ours_{bundle}_{n}.html", overwrite=True, bundle=bundle)  # type: ignore[arg-type]
        rows.append({"n": n, "what": label, "size": path.stat().st_size, "build": build_s,
                     "write": time.perf_counter() - start, "render": first_render(path, OURS, timeout)})
    if n > skip_plain_above:
        rows.append({"n": n, "what": "plain pydeck to_html(offline=True)", "size": None, "build": build_s,
                     "write": None, "render": None, "note": f"skipped (> {skip_plain_above:,} polygons)"})
        return rows
    start = time.perf_counter()
    text = deck.to_html(as_string=True, offline=True, notebook_display=False)
    path = work / f"plain_{n}.html"
    path.write_text(text, encoding="utf-8")
    rows.append({"n": n, "what": "plain pydeck to_html(offline=True)", "size": path.stat().st_size,
                 "build": build_s, "write": time.perf_counter() - start, "render": first_render(path, PLAIN, timeout)})
    return rows


def sample_territory(work: Path, timeout: float) -> dict[str, Any]:
    import geopandas as gpd

    start = time.perf_counter()
    deck = scene.build(sd.zones(), dem=sd.dem(), raster=sd.ndvi(),
                       change_patches=gpd.read_file(sd.SAMPLES / "truth" / "planted_change.geojson"),
                       project=gpd.read_file(sd.SAMPLES / "layers" / "projet_batiments.gpkg"),
                       context=[gpd.read_file(sd.SAMPLES / "layers" / "routes.gpkg")])
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    path = scene.export(deck, work / "sample.html", overwrite=True)
    return {"n": 90, "what": "ours, sample territory (PLU + relief + NDVI + change + project + roads)",
            "size": path.stat().st_size, "build": build_s, "write": time.perf_counter() - start,
            "render": first_render(path, OURS, timeout)}


def fmt(value: float | None, pattern: str, missing: str = "—") -> str:
    return missing if value is None else pattern.format(value)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| Polygons | Output | HTML size (MB) | build (s) | write (s) | first render (s) | size vs plain |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    plain = {r["n"]: r["size"] for r in rows if r["what"].startswith("plain") and r["size"]}
    for r in rows:
        ratio = f"{r['size'] / plain[r['n']]:.2f}×" if r["size"] and r["n"] in plain else "—"
        render = fmt(r["render"], "{:.1f}", "timeout" if r["size"] else "—")
        lines.append(f"| {r['n']:,} | {r['what']}{' — ' + r['note'] if r.get('note') else ''} | "
                     f"{fmt(r['size'] and r['size'] / 1e6, '{:.2f}')} | {r['build']:.2f} | "
                     f"{fmt(r['write'], '{:.2f}')} | {render} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,20000,100000")
    parser.add_argument("--skip-plain-above", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    import pydeck

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_scene_") as tmp:
        work = Path(tmp)
        for n in (int(s) for s in args.sizes.split(",")):
            rows.extend(measure(n, work, args.skip_plain_above, args.timeout))
            print(table(rows), "\n", flush=True)
        rows.append(sample_territory(work, args.timeout))
    chromium = os.popen("chromium --version 2>/dev/null").read().strip()
    text = (
        "# 3D scene export benchmark\n\n"
        "Extruded 20-vertex polygons (radius 20–60 m, ~10 × 10 km, Lambert-93, a score column) built once with "
        "`scene.build`, written by `scene.export` and by plain `pydeck.Deck.to_html(offline=True)` of the same "
        "layers. First render: seconds from navigation to the first frame with every layer loaded, read in the "
        "page; headless Chromium with SwiftShader software WebGL (no GPU), offline, 1200×800, fresh browser, one "
        "run per cell. Produced by `benchmarks/bench_scene.py` (not a test).\n\n"
        f"{table(rows)}\n\n"
        "Notes: ours = coordinates as delta-coded integer micro-degrees, palette colours, compact JSON, "
        "simplification at 1/10 000 of the scene (0.5–25 m), deck.gl 9.3.11 + @deck.gl/json `dist.min.js` "
        "(1.66 MB); plain = pydeck 0.9.3 JSON (`indent=2`, full floats) + its 4.27 MB bundle, plus CDN tags "
        "that fail offline. Software WebGL makes render times pessimistic; relative figures matter.\n\n"
        f"Environment: Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"pydeck {pydeck.__version__}; {chromium or 'chromium'}.\n"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
