"""Setups of cases 1, 3, 4 and 5 (each returns the callable the harness times).

Inputs are synthetic, made with fixed seeds; the generators of the colleagues' scripts
are reused where they exist (``bench_ndvi.make_tile`` and its cases, ``bench_zonal``'s
raster and polygons, ``bench_trend.cube``, ``bench_scene.measure``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmarks._harness import WORK, Run

SCALE = np.float32(1e-4)
AWEI_BANDS = ("blue", "green", "nir", "swir16", "swir22")


# ---------------------------------------------------------------- case 1: NDVI and a 5-band index


def ndvi_numpy(params: Mapping[str, Any]) -> Run:
    """Plain numpy ``(n - r) / (n + r)`` on float32 reflectance (``bench_ndvi.numpy_case``)."""
    from benchmarks import bench_ndvi

    return bench_ndvi.numpy_case(*bench_ndvi.make_tile(int(params["size"])))


def ndvi_numba(params: Mapping[str, Any]) -> Run:
    """Fused numba kernel, DN to NDVI into a preallocated array, 2 threads (``bench_ndvi.numba_case``)."""
    from benchmarks import bench_ndvi

    return bench_ndvi.numba_case(*bench_ndvi.make_tile(int(params["size"])))


def _views(dn: np.ndarray, chunk: int) -> Any:
    """A dask array whose tasks slice ``dn`` (a view per chunk, as a per-chunk file read would give).

    ``dask.array.from_array`` would copy every chunk of a numpy input into the graph when the
    graph is built (one more full copy of the inputs per run, in time and memory); naming the
    array skips hashing the closure.
    """
    import uuid

    import dask.array as da

    def block(block_info: dict[Any, Any] | None = None) -> np.ndarray:
        (y0, y1), (x0, x1) = block_info[None]["array-location"]  # type: ignore[index]
        return dn[y0:y1, x0:x1]

    chunks = da.core.normalize_chunks(chunk, dn.shape)
    return da.map_blocks(block, dtype=dn.dtype, chunks=chunks, name=f"dn-{uuid.uuid4().hex}")


def _ours_store(dn: Mapping[str, np.ndarray], index: str, chunk: int = 2048) -> Run:
    """``indices.compute(ds, index)`` on float32 reflectance of lazy views, stored into a preallocated array."""
    import dask.array as da
    import xarray as xr

    from territoire_geo.analysis import indices

    first = next(iter(dn.values()))
    out = np.empty(first.shape, np.float32)

    def run() -> None:
        bands = {name: xr.DataArray(_views(value, chunk), dims=("y", "x")).astype(np.float32) * SCALE
                 for name, value in dn.items()}
        result = indices.compute(xr.Dataset(bands), index)
        da.store(result[indices.get(index).variable].data, out, lock=False)

    return run


def ndvi_ours(params: Mapping[str, Any]) -> Run:
    """``indices.compute(ds, "NDVI")`` on dask chunks of 2048 (threaded, 2 threads) into a preallocated array."""
    from benchmarks import bench_ndvi

    red, nir = bench_ndvi.make_tile(int(params["size"]))
    return _ours_store({"red": red, "nir": nir}, "NDVI")


def ndvi_ours_from_array(params: Mapping[str, Any]) -> Run:
    """``bench_ndvi.ours_store_case``: the same, with the bands wrapped by ``dask.array.from_array``."""
    from benchmarks import bench_ndvi

    return bench_ndvi.ours_store_case(*bench_ndvi.make_tile(int(params["size"])))


def _five_bands(size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {name: rng.integers(200, 4000, size=(size, size), dtype=np.uint16) for name in AWEI_BANDS}


def aweish_numpy(params: Mapping[str, Any]) -> Run:
    """AWEIsh ``blue + 2.5 green - 1.5 (nir + swir16) - 0.25 swir22`` in plain numpy (float32)."""
    dn = _five_bands(int(params["size"]))

    def run() -> np.ndarray:
        b = {name: value.astype(np.float32) * SCALE for name, value in dn.items()}
        return b["blue"] + 2.5 * b["green"] - 1.5 * (b["nir"] + b["swir16"]) - 0.25 * b["swir22"]

    return run


def aweish_numba(params: Mapping[str, Any]) -> Run:
    """AWEIsh as one fused numba loop (parallel over rows) into a preallocated array."""
    import numba

    dn = _five_bands(int(params["size"]))

    @numba.njit(parallel=True, cache=False)
    def kernel(blue: Any, green: Any, nir: Any, swir16: Any, swir22: Any, out: Any) -> None:  # pragma: no cover
        s = np.float32(1e-4)
        for i in numba.prange(blue.shape[0]):
            for j in range(blue.shape[1]):
                out[i, j] = (np.float32(blue[i, j]) * s + np.float32(2.5) * (np.float32(green[i, j]) * s)
                             - np.float32(1.5) * (np.float32(nir[i, j]) * s + np.float32(swir16[i, j]) * s)
                             - np.float32(0.25) * (np.float32(swir22[i, j]) * s))

    out = np.empty(dn["blue"].shape, np.float32)
    return lambda: kernel(*(dn[name] for name in AWEI_BANDS), out)


def aweish_ours(params: Mapping[str, Any]) -> Run:
    """``indices.compute(ds, "AWEIsh")`` on dask chunks of 2048, stored into a preallocated array."""
    return _ours_store(_five_bands(int(params["size"])), "AWEIsh")


# ---------------------------------------------------------------- case 3: zonal statistics


def _zonal_inputs(params: Mapping[str, Any]) -> tuple[Any, Any]:
    from benchmarks import bench_zonal

    raster = WORK / "zonal" / "raster.tif"
    if not raster.exists():
        raster.parent.mkdir(parents=True, exist_ok=True)
        bench_zonal.make_raster(raster)
    return raster, bench_zonal.make_polygons().iloc[: int(params["polygons"])]


def zonal_ours(params: Mapping[str, Any]) -> Run:
    """``territoire_geo.analysis.zonal.stats`` on the raster path (mean, majority, count)."""
    from benchmarks.bench_zonal import STATS
    from territoire_geo.analysis import zonal

    raster, polygons = _zonal_inputs(params)
    return lambda: {"rows": len(zonal.stats(raster, polygons, STATS))}


def zonal_exactextract(params: Mapping[str, Any]) -> Run:
    """``exactextract.exact_extract`` directly on the raster path."""
    from exactextract import exact_extract

    from benchmarks.bench_zonal import STATS

    raster, polygons = _zonal_inputs(params)
    return lambda: {"rows": len(exact_extract(str(raster), polygons, STATS, include_cols=["id"], output="pandas"))}


def zonal_rasterstats(params: Mapping[str, Any]) -> Run:
    """``rasterstats.zonal_stats`` (cell-centre rule) on the raster path."""
    from rasterstats import zonal_stats

    from benchmarks.bench_zonal import NODATA, STATS

    raster, polygons = _zonal_inputs(params)

    def run() -> dict[str, int]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {"rows": len(zonal_stats(polygons, str(raster), stats=STATS, nodata=NODATA))}

    return run


# ---------------------------------------------------------------- case 4: per-pixel trend


def trend_ours(params: Mapping[str, Any]) -> Run:
    """``change.trend`` (engine ``auto`` = numba) on dask chunks of 256 rows, computed."""
    from benchmarks.bench_trend import cube
    from territoire_geo.analysis.change import trend

    data = cube(int(params["size"]), int(params["steps"])).chunk({"y": 256})
    return lambda: {"pixels": int(trend(data).slope.compute().size)}


def naive_trend(cube: np.ndarray, x: np.ndarray, *, min_obs: int = 4, rows: int = 4) -> np.ndarray:
    """Straightforward numpy Theil–Sen + Mann–Kendall, the baseline of case 4.

    What someone writes without a compiled kernel: for each block of ``rows`` image rows,
    every pair ``i < j`` of dates at once by fancy indexing (``np.triu_indices``), slopes
    ``dy / dx`` and their ``np.nanmedian``; ``S`` as the ``nansum`` of the signs; tie
    groups from an all-pairs equality test; ``erfc`` from scipy. Fully vectorised over
    the pixels of a block (no Python loop per pixel); float64 as scipy would use.

    Returns
    -------
    numpy.ndarray
        ``(4, y, x)``: slope, intercept, z, p (NaN below ``min_obs`` observations).
    """
    from scipy.special import erfc

    steps, ny, nx = cube.shape
    first, second = np.triu_indices(steps, 1)
    dx = x[second] - x[first]
    out = np.full((4, ny, nx), np.nan, np.float32)
    for y0 in range(0, ny, rows):
        y = np.moveaxis(cube[:, y0:y0 + rows], 0, -1).astype(np.float64)
        d = y[..., second] - y[..., first]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            slope = np.nanmedian(np.where(dx != 0, d / dx, np.nan), axis=-1)
            valid = ~np.isnan(y)
            n = valid.sum(axis=-1)
            s = np.nansum(np.sign(d), axis=-1)
            ties = (y[..., :, None] == y[..., None, :]).sum(axis=-1)
            var = (n * (n - 1.0) * (2.0 * n + 5.0) - np.where(valid, (ties - 1.0) * (2.0 * ties + 5.0), 0).sum(-1)) / 18
            z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
            intercept = np.nanmedian(y, axis=-1) - slope * np.nanmedian(np.where(valid, x, np.nan), axis=-1)
            block = np.stack([slope, intercept, z, erfc(np.abs(z) / math.sqrt(2.0))])
        block[:, n < min_obs] = np.nan
        out[:, y0:y0 + rows] = block
    return out


def trend_numpy(params: Mapping[str, Any]) -> Run:
    """:func:`naive_trend` on the first ``params["stripe"]`` rows (throughput is per pixel)."""
    from benchmarks.bench_trend import cube
    from territoire_geo.analysis.change import _abscissa

    data = cube(int(params["size"]), int(params["steps"]))
    x = _abscissa(data["time"].values)[0]
    values = np.ascontiguousarray(data.values[:, : int(params["stripe"])])
    return lambda: {"pixels": int(naive_trend(values, x)[0].size)}


def trend_check(size: int = 64, steps: int = 36) -> float:
    """Largest |difference| between :func:`naive_trend` and ``change.trend`` (same definitions)."""
    from benchmarks.bench_trend import cube
    from territoire_geo.analysis.change import _abscissa, trend

    data = cube(size, steps)
    ours = trend(data).compute()
    naive = naive_trend(data.values, _abscissa(data["time"].values)[0])
    names = ("slope", "intercept", "z", "p_value")
    return float(max(np.nanmax(np.abs(ours[n].values - naive[i])) for i, n in enumerate(names)))


# ---------------------------------------------------------------- case 5: scene export


def scene(params: Mapping[str, Any]) -> Run:
    """``bench_scene.measure``: ours and plain pydeck HTML for ``params["polygons"]`` polygons, rendered."""
    from benchmarks import bench_scene

    work = WORK / "scene"
    work.mkdir(parents=True, exist_ok=True)
    n, timeout = int(params["polygons"]), float(params.get("timeout", 600))
    return lambda: {"rows": bench_scene.measure(n, work, int(params.get("skip_plain_above", 100_000)), timeout)}
