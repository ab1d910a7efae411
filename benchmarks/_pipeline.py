"""Cases 2 and 6: the change pipeline on a synthetic Sentinel-2 L2A tile served over loopback HTTP.

The tile (``benchmarks/_work/tile-<size>-s<seed>/``, generated once, fixed seed) is ``size`` ×
``size`` pixels at 10 m in EPSG:32631 with 10 dates (5 in 2021, 5 in 2023): green, red, nir
(10 m), swir16 and SCL (20 m) as COGs written by :func:`territoire_geo.testing.make_s2_item`
(DEFLATE, 512² blocks, overviews). The land is 16-pixel blocks of vegetation, bare soil,
built-up land and water; about one 8–30 px rectangle per 40,000 px turns from vegetation to
built-up land (or bare soil to vegetation) between the periods; each date has 0–3 round
clouds (SCL 9). A Range-capable server (``tests/_servers.py``, the test suite's own)
serves the folder from a *separate* process, so that it does not compete for the reader's GIL.

Pipeline (one timed run), as ``workflows.detect_change`` does it: ``load`` (mask on, Lambert-93 at 10 m, so reprojected) →
``indices.compute`` (NDVI, NDBI, MNDWI) → two-period median ``composite`` → ``classify``,
computed with both NDVI composites window by window (``io.compute_windows``) →
``patches`` (MMU 1,000 m²) →
``zonal.stats`` (mean, count of the after-NDVI) on 2,000 Voronoi zones.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import WORK, Run

#: The test suite's folder: its loopback servers (``_servers.py``) are not part of the package.
TESTS = Path(__file__).resolve().parents[1] / "tests"
EPSG = 32631
X0, Y0 = 570_000.0, 4_860_000.0
RES = 10.0
BANDS = ("green", "red", "nir", "swir16")
DATES = [dt.datetime(2021, m, 15, 10, 30, tzinfo=dt.UTC) for m in (4, 5, 6, 7, 8)] + \
        [dt.datetime(2023, m, 15, 10, 30, tzinfo=dt.UTC) for m in (4, 5, 6, 7, 8)]
PERIODS = [("before", "2021-01-01", "2021-12-31"), ("after", "2023-01-01", "2023-12-31")]
#: Reflectance of (green, red, nir, swir16) and SCL code per cover: vegetation, bare, built, water.
COVERS = np.array([[0.06, 0.04, 0.35, 0.18], [0.10, 0.14, 0.22, 0.28], [0.12, 0.14, 0.17, 0.22],
                   [0.08, 0.05, 0.03, 0.01]], dtype=np.float32)
SCL = np.array([4, 5, 5, 6], dtype=np.uint8)


# ---------------------------------------------------------------- synthetic tile


def _landscape(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Cover codes before and after: 16-px blocks, plus planted change rectangles."""
    blocks = rng.choice(4, size=(-(-size // 16),) * 2, p=[0.55, 0.2, 0.15, 0.1]).astype(np.uint8)
    before = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)[:size, :size]
    after = before.copy()
    for _ in range(max(4, size * size // 40_000)):
        h, w = rng.integers(8, 31, size=2)
        y, x = rng.integers(0, size - 31, size=2)
        window = (slice(y, y + h), slice(x, x + w))
        after[window] = np.where(before[window] == 0, 2, np.where(before[window] == 1, 0, before[window]))
    return before, after


def _date_bands(cover: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """DN arrays of one date (offset -0.1 as in processing baseline 05.00) with clouds."""
    size = cover.shape[0]
    cloud = np.zeros(cover.shape, dtype=bool)
    yy, xx = np.ogrid[:size, :size]
    for _ in range(int(rng.integers(0, 4))):
        cy, cx, r = rng.integers(0, size), rng.integers(0, size), size // 20 + 1
        cloud |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    bands = {}
    for index, name in enumerate(BANDS):
        refl = COVERS[cover, index] * (1 + 0.05 * rng.standard_normal(cover.shape, dtype=np.float32))
        refl[cloud] = 0.5
        dn = np.clip(np.rint((refl + 0.1) * 10_000), 1, 65_535).astype(np.uint16)
        bands[name] = dn[::2, ::2].copy() if name == "swir16" else dn
    scl = np.where(cloud, np.uint8(9), SCL[cover])
    bands["scl"] = scl[::2, ::2].copy()
    return bands


def tile_dir(size: int, seed: int) -> Path:
    """Folder of the synthetic tile of ``size`` px."""
    return WORK / f"tile-{size}-s{seed}"


def ensure_tile(size: int, seed: int = 0) -> Path:
    """Generate the tile once (COGs + ``items.json``); later calls reuse it."""
    from affine import Affine

    from territoire_geo.testing import make_s2_item

    root = tile_dir(size, seed)
    if (root / "items.json").exists():
        return root
    if size % 2:
        raise ValueError("the tile size must be even (20 m bands)")
    rng = np.random.default_rng(seed)
    before, after = _landscape(size, rng)
    transform = Affine(RES, 0, X0, 0, -RES, Y0)
    items = []
    for when in DATES:
        cover = before if when.year == 2021 else after
        item_id = f"S2B_31TFJ_{when:%Y%m%d}_L2A"
        item = make_s2_item(root / item_id, item_id, when, _date_bands(cover, rng), transform, EPSG,
                            cloud_cover=5.0)
        items.append(item.to_dict(include_self_link=False, transform_hrefs=False))
    (root / "truth.npy").write_bytes(np.stack([before, after]).tobytes())
    (root / "items.json").write_text(json.dumps(items), encoding="utf-8")
    return root


def items_over_http(root: Path, url: str) -> list[Any]:
    """The tile's items with every asset href rewritten to the loopback server."""
    import pystac

    items = []
    for entry in json.loads((root / "items.json").read_text(encoding="utf-8")):
        item = pystac.Item.from_dict(entry)
        for asset in item.assets.values():
            asset.href = url + "/" + Path(asset.href).relative_to(root).as_posix()
        items.append(item)
    return items


def serve(root: Path) -> str:
    """Start a Range HTTP server on ``root`` in another process (stopped at exit); return its URL."""
    code = ("import sys\nsys.path.insert(0, sys.argv[2])\nfrom _servers import RangeHTTPServer\n"
            "server = RangeHTTPServer(sys.argv[1]).__enter__()\nprint(server.url, flush=True)\nsys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(TESTS)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip() if proc.stdout else ""
    atexit.register(_stop, proc)
    if not url.startswith("http://127.0.0.1"):
        raise RuntimeError(f"the test server did not start: {url!r}")
    return url


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def tile_box(size: int, inset: float = 0.0) -> tuple[float, float, float, float]:
    """Bounds of the tile in EPSG:32631, shrunk by ``inset`` (a fraction) on each side."""
    span = size * RES
    pad = span * inset
    return X0 + pad, Y0 - span + pad, X0 + span - pad, Y0 - pad


def aoi(size: int, inset: float = 0.03, crs: int = EPSG) -> Any:
    """The area loaded by the pipeline: the tile shrunk by 3 % (so that Lambert-93 stays inside)."""
    import geopandas as gpd
    from shapely.geometry import box

    return gpd.GeoDataFrame(geometry=[box(*tile_box(size, inset))], crs=EPSG).to_crs(crs)


def zones(size: int, count: int, seed: int = 1) -> Any:
    """``count`` Voronoi zones covering the pipeline's area, in Lambert-93."""
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    minx, miny, maxx, maxy = aoi(size, crs=2154).total_bounds
    rng = np.random.default_rng(seed)
    points = shapely.multipoints(np.column_stack([rng.uniform(minx, maxx, count), rng.uniform(miny, maxy, count)]))
    frame = box(minx, miny, maxx, maxy)
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=frame))
    return gpd.GeoDataFrame({"zone": np.arange(len(cells))}, geometry=shapely.intersection(cells, frame), crs=2154)


# ---------------------------------------------------------------- case 2 / 6: the pipeline


def _run_pipeline(items: list[Any], area: Any, polygons: Any, chunks: int | None, windows: bool) -> dict[str, Any]:
    import dask
    import rioxarray  # noqa: F401  (registers .rio)

    from territoire_geo.analysis import change, indices, zonal
    from territoire_geo.analysis.composites import composite
    from territoire_geo.imagery import load
    from territoire_geo.io import compute_windows

    start = time.perf_counter()
    ds = load(items, bands=list(BANDS), aoi=area, mask=True, chunks={"x": chunks, "y": chunks} if chunks else None)
    idx = indices.compute(ds, ["ndvi", "ndbi", "mndwi"]).assign_coords(spatial_ref=ds.spatial_ref)
    comp = composite(idx, period=PERIODS, method="median")
    before, after = comp.sel(period="before"), comp.sel(period="after")
    classes = change.classify(before, after)
    classes, b_ndvi, a_ndvi = (compute_windows if windows else dask.compute)(classes, before.ndvi, after.ndvi)
    computed = time.perf_counter()
    peak_dask = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    found = change.patches(classes.rio.write_crs(2154), min_area_m2=1000, before=b_ndvi, after=a_ndvi)
    vectorised = time.perf_counter()
    table = zonal.stats(a_ndvi.rio.write_crs(2154), polygons, ["mean", "count"])
    done = time.perf_counter()
    return {"grid": [int(ds.sizes["y"]), int(ds.sizes["x"])], "dates": int(ds.sizes["time"]),
            "pixels": int(ds.sizes["y"] * ds.sizes["x"]), "patches": len(found),
            "new_artificial_patches": int((found["class"] == 3).sum()), "zones": len(table),
            "zones_with_mean": int(table["mean"].notna().sum()), "peak_after_dask_mb": peak_dask,
            "stages": {"load + indices + composites + classify": computed - start,
                       "patches": vectorised - computed, "zonal stats": done - vectorised}}


def prepare(params: Mapping[str, Any]) -> Run:
    """Generate the tile of ``params["size"]`` before anything is measured (not timed)."""
    ensure_tile(int(params["size"]), int(params.get("seed", 0)))
    return lambda: None


def pipeline(params: Mapping[str, Any]) -> Run:
    """Setup of the full pipeline on a ``params["size"]`` tile.

    ``params["chunks"]``: load chunks (default: the library's); ``params["windows"]``: compute the
    classes and NDVI composites with ``_windows.compute_windows`` (default, as ``detect_change`` does)
    or with one ``dask.compute`` (the code before the fix).
    """
    size = int(params["size"])
    root = ensure_tile(size, int(params.get("seed", 0)))
    items = items_over_http(root, serve(root))
    area, polygons = aoi(size), zones(size, int(params.get("zones", 2000)))
    chunks, windows = params.get("chunks"), bool(params.get("windows", True))
    return lambda: _run_pipeline(items, area, polygons, int(chunks) if chunks else None, windows)


# ---------------------------------------------------------------- case 2: read throughput


def read_ours(params: Mapping[str, Any]) -> Run:
    """``load(...).compute()`` of the red band of every date, on the tile's own grid (no warp)."""
    from territoire_geo.imagery import load

    size = int(params["size"])
    root = ensure_tile(size, int(params.get("seed", 0)))
    items = items_over_http(root, serve(root))
    area = aoi(size, inset=0.0)

    def run() -> dict[str, Any]:
        red = load(items, bands=["red"], aoi=area, crs=f"EPSG:{EPSG}", resolution=RES)["red"].compute()
        return {"pixels": int(red.size), "shape": list(red.shape)}

    return run


def _rasterio_read(hrefs: list[str]) -> dict[str, Any]:
    import rasterio

    from territoire_geo.config import gdal_options

    pixels = 0
    with rasterio.Env(**gdal_options()):
        for href in hrefs:
            with rasterio.open(href) as src:
                pixels += src.read(1).size
    return {"pixels": pixels}


def read_rasterio(params: Mapping[str, Any]) -> Run:
    """rasterio ``read(1)`` of the same red COGs, one after the other, over the same HTTP server."""
    size = int(params["size"])
    root = ensure_tile(size, int(params.get("seed", 0)))
    items = items_over_http(root, serve(root))
    hrefs = [item.assets["red"].href for item in items]
    return lambda: _rasterio_read(hrefs)


def read_rasterio_local(params: Mapping[str, Any]) -> Run:
    """rasterio ``read(1)`` of the same red COGs from the local disk (reference only)."""
    size = int(params["size"])
    root = ensure_tile(size, int(params.get("seed", 0)))
    hrefs = [str(path) for path in sorted(root.glob("*/red.tif"))]
    return lambda: _rasterio_read(hrefs)
