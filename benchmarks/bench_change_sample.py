"""Wall time and peak RSS of NDVI composites and change detection on the sample territory.

Each case runs in its own process: one warm-up run, then the median of ``--repeat`` runs
of the library workflow (search, masked load, indices, composites, classes, patches,
COG/GPKG/GeoParquet writes) into a temporary folder.

Run from the repository root::

    python benchmarks/bench_change_sample.py     # writes benchmarks/results/change_sample.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
AOI = SAMPLES / "plu" / "30014_PLU_20171013" / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp"
RESULTS = Path(__file__).resolve().parent / "results" / "change_sample.md"
CASES = ("ndvi_median_2022", "change_2020-21_vs_2022-23")


def run_case(case: str, out: Path) -> dict[str, Any]:
    """One run of the workflow behind ``case``."""
    from territoire_geo.workflows import compute_indices, detect_change

    if case == "ndvi_median_2022":
        return compute_indices(SAMPLES / "stac", AOI, "2022", out, names=["ndvi"], collections="sentinel-2-l2a")
    return detect_change(SAMPLES / "stac", AOI, "2020-01-01/2021-12-31", "2022-01-01/2023-12-31", out,
                         collections="sentinel-2-l2a")


def child(case: str, repeat: int) -> dict[str, Any]:
    """Warm-up, then timed runs, in this process."""
    with tempfile.TemporaryDirectory() as folder:
        run_case(case, Path(folder) / "warm-up")
        times = []
        for i in range(repeat):
            start = time.perf_counter()
            run_case(case, Path(folder) / f"run{i}")
            times.append(time.perf_counter() - start)
    return {"case": case, "median_s": statistics.median(times), "times": times,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    """Run every case in a subprocess, print and save a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(child(args.case, args.repeat)))
        return
    lines = ["# Sample territory (Arpaillargues, 12 dates 2020-2023, 496 x 484 px at 10 m)", "",
             f"Median of {args.repeat} runs after a warm-up, each case in its own process.", "",
             "| workflow | wall time (s) | peak RSS (MB) |", "|---|---:|---:|"]
    for case in CASES:
        done = subprocess.run([sys.executable, __file__, "--case", case, "--repeat", str(args.repeat)],
                              capture_output=True, text=True, check=True, cwd=ROOT)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(f"| {row['case']} | {row['median_s']:.2f} | {row['peak_rss_mb']:.0f} |")
    lines.append(f"\nLoad average {os.getloadavg()[0]:.1f} at the end of the run.")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
