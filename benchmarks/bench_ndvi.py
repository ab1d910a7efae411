"""NDVI on one full Sentinel-2 tile (10980 x 10980 px, uint16 DN -> float32 reflectance).

Cases, each run in its own process (so that peak RSS is per case):

- ``numpy``: ``(n - r) / (n + r)`` on float32 reflectance (the plain baseline);
- ``numba``: one fused, parallel kernel from DN to NDVI into a preallocated array;
- ``ours_mean``: ``territoire_geo.analysis.indices.compute`` on dask chunks of 2048, reduced with ``.mean()``;
- ``ours_store``: the same graph materialised into a preallocated array with ``dask.array.store``.

Each case: one warm-up run (numba compiles there), then the median of ``--repeat`` runs.
Peak RSS is the child's ``ru_maxrss``; "inputs" is the RSS once the two uint16 bands exist.

Run from the repository root::

    python benchmarks/bench_ndvi.py            # writes benchmarks/results/ndvi.md
    python benchmarks/bench_ndvi.py --size 2048 --repeat 1   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CASES = ("numpy", "numba", "ours_mean", "ours_store")
SCALE = np.float32(1e-4)
RESULTS = Path(__file__).resolve().parent / "results" / "ndvi.md"


def make_tile(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Red and NIR digital numbers of a vegetated-looking tile (never zero)."""
    rng = np.random.default_rng(0)
    red = rng.integers(200, 3000, size=(size, size), dtype=np.uint16)
    nir = rng.integers(1000, 6000, size=(size, size), dtype=np.uint16)
    return red, nir


def numpy_case(red: np.ndarray, nir: np.ndarray) -> Callable[[], Any]:
    def run() -> np.ndarray:
        r = red.astype(np.float32) * SCALE
        n = nir.astype(np.float32) * SCALE
        return (n - r) / (n + r)

    return run


def numba_case(red: np.ndarray, nir: np.ndarray) -> Callable[[], Any]:
    import numba

    @numba.njit(parallel=True, fastmath=False, cache=False)
    def kernel(red: np.ndarray, nir: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
        for i in numba.prange(red.shape[0]):
            for j in range(red.shape[1]):
                r = np.float32(red[i, j]) * np.float32(1e-4)
                n = np.float32(nir[i, j]) * np.float32(1e-4)
                out[i, j] = (n - r) / (n + r)

    out = np.empty(red.shape, np.float32)
    return lambda: kernel(red, nir, out)


def _ours_graph(red: np.ndarray, nir: np.ndarray) -> Any:
    import dask.array as da
    import xarray as xr

    from territoire_geo.analysis import indices

    bands = {name: xr.DataArray(da.from_array(dn, chunks=2048), dims=("y", "x")).astype(np.float32) * SCALE
             for name, dn in (("red", red), ("nir", nir))}
    return indices.compute(xr.Dataset(bands), "ndvi")["ndvi"]


def ours_mean_case(red: np.ndarray, nir: np.ndarray) -> Callable[[], Any]:
    return lambda: float(_ours_graph(red, nir).mean().compute())


def ours_store_case(red: np.ndarray, nir: np.ndarray) -> Callable[[], Any]:
    import dask.array as da

    out = np.empty(red.shape, np.float32)
    return lambda: da.store(_ours_graph(red, nir).data, out, lock=False)


def child(case: str, size: int, repeat: int) -> dict[str, Any]:
    """Run one case in this process and report its timings and memory."""
    red, nir = make_tile(size)
    inputs_kb = _rss_kb()
    run = {"numpy": numpy_case, "numba": numba_case, "ours_mean": ours_mean_case,
           "ours_store": ours_store_case}[case](red, nir)
    run()  # warm-up (and numba compilation)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"case": case, "times": times, "median_s": statistics.median(times), "inputs_mb": inputs_kb / 1024,
            "peak_rss_mb": peak_kb / 1024}


def _rss_kb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return float("nan")


def table(rows: list[dict[str, Any]], size: int, repeat: int) -> str:
    """Results as a markdown table."""
    base = next(r["median_s"] for r in rows if r["case"] == "numpy")
    pixels = size * size / 1e6
    lines = [f"# NDVI on a {size} x {size} tile (uint16 -> float32)", "",
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU, Python "
             f"{platform.python_version()}, numpy {np.__version__}; median of {repeat} runs after a warm-up; "
             f"load average {os.getloadavg()[0]:.1f} at the end (shared machine: compare rows, not runs).", "",
             "| case | time (s) | Mpixel/s | time / numpy | peak RSS (MB) | inputs RSS (MB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['median_s']:.3f} | {pixels / r['median_s']:.0f} | "
                     f"{r['median_s'] / base:.2f} | {r['peak_rss_mb']:.0f} | {r['inputs_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run every case in a subprocess, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(child(args.case, args.size, args.repeat)))
        return
    rows = []
    for case in CASES:
        done = subprocess.run([sys.executable, __file__, "--case", case, "--size", str(args.size), "--repeat",
                               str(args.repeat)], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    text = table(rows, args.size, args.repeat)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
