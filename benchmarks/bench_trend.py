"""Theil–Sen + Mann–Kendall per pixel: 512 x 512 px x 36 dates (20 % NaN), both engines.

analysis-viz.md §3 measured 8.2 s (≈ 31 µs/px) for this size with a per-series loop.

Run from the repository root::

    python benchmarks/bench_trend.py     # writes benchmarks/results/trend.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from territoire_geo.analysis.change import trend

RESULTS = Path(__file__).resolve().parent / "results" / "trend.md"


def cube(size: int, steps: int) -> xr.DataArray:
    """A noisy NDVI-like series with 20 % missing observations."""
    rng = np.random.default_rng(0)
    values = rng.normal(0.5, 0.1, (steps, size, size)).astype(np.float32)
    values[rng.uniform(size=values.shape) < 0.2] = np.nan
    times = pd.date_range("2018-01-01", periods=steps, freq="30D")
    return xr.DataArray(values, dims=("time", "y", "x"), coords={"time": times})


def measure(data: xr.DataArray, engine: str, repeat: int) -> float:
    """Median wall time of ``trend(...).compute()`` after a warm-up."""
    trend(data.isel(y=slice(0, 4)), engine=engine).compute()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        trend(data, engine=engine).compute()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time both engines on numpy and on dask chunks; print and save a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=36)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = cube(args.size, args.steps)
    pixels = args.size * args.size
    lines = [f"# Trend on {args.size} x {args.size} px x {args.steps} dates", "",
             f"Median of {args.repeat} runs after a warm-up.", "",
             "| engine | input | time (s) | µs / pixel |", "|---|---|---:|---:|"]
    for engine in ("numba", "numpy"):
        for label, chunked in (("numpy", data), ("dask 128 x 512", data.chunk({"y": 128, "x": 512}))):
            seconds = measure(chunked, engine, args.repeat)
            lines.append(f"| {engine} | {label} | {seconds:.2f} | {seconds / pixels * 1e6:.1f} |")
    lines.append(f"\nLoad average {os.getloadavg()[0]:.1f} at the end of the run.")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
