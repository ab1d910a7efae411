"""The recipe's composites step: three Zarr stores written by three computations or by one.

``python benchmarks/bench_composites_step.py old|new SIZE [http]`` runs, on the synthetic
tile of ``benchmarks/_pipeline.py`` (generated once, reused), what
``territoire_geo/recipes/imagery_steps.py::make_composites`` does — ``load`` (SCL mask, Lambert-93) → NDVI/NDBI/MNDWI →
median composites of the two periods, and the NDVI series — and writes the three stores
with three ``write_cube_zarr`` calls (``old``) or one ``write_cube_zarrs`` (``new``). With
``http`` the COGs are served over loopback by a Range server in another process. Prints the
wall time, peak RSS and CPU time; run each variant in its own process, several times.
"""

from __future__ import annotations

import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pystac

from benchmarks import _pipeline as pipeline
from territoire_geo.analysis import indices
from territoire_geo.analysis.composites import composite
from territoire_geo.imagery import load
from territoire_geo.io import write_cube_zarr, write_cube_zarrs


def main(mode: str, size: int, http: bool) -> str:
    """Run one variant and return its result line."""
    root = pipeline.ensure_tile(size, 0)
    items = pipeline.items_over_http(root, pipeline.serve(root)) if http else [
        pystac.Item.from_dict(entry) for entry in json.loads((root / "items.json").read_text(encoding="utf-8"))]
    out = Path(tempfile.mkdtemp(prefix="bench-composites-"))
    try:
        started = time.perf_counter()
        ds = load(items, bands=list(pipeline.BANDS), aoi=pipeline.aoi(size), mask=True,
                  chunks={"x": 1024, "y": 1024})
        idx = indices.compute(ds, ["ndvi", "ndbi", "mndwi"])
        cubes = {}
        for label, start, end in pipeline.PERIODS:
            comp = composite(idx, period=[(label, start, end)], method="median").isel(period=0, drop=True)
            cubes[label] = comp.drop_vars([c for c in ("period_start", "period_end") if c in comp.coords])
        cubes["ndvi_series"] = idx["ndvi"]
        if mode == "old":
            for label, cube in cubes.items():
                write_cube_zarr(cube, out / f"{label}.zarr")
        else:
            write_cube_zarrs({out / f"{label}.zarr": cube for label, cube in cubes.items()})
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(out, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (f"{mode} {size}² {'http' if http else 'local'}: {seconds:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MB, "
            f"CPU {usage.ru_utime + usage.ru_stime:.1f} s")


if __name__ == "__main__":
    print(main(sys.argv[1], int(sys.argv[2]), "http" in sys.argv[3:]))
