"""Measurement machinery of ``python -m benchmarks``: fresh processes, warm-up, medians, peak RSS.

Every measurement (one *variant* of one *case*, e.g. ``ndvi/numpy``) runs in a fresh
``python -m benchmarks --child`` process:

1. the variant's ``setup(params)`` builds its inputs (not timed) and returns a ``run``
   callable;
2. ``run()`` is called once as a warm-up (numba compilation, imports, and the VM's
   first-touch cost of fresh pages: stack.md pitfall 12), then ``repeat`` times;
3. the child prints one JSON line: wall times, CPU times (user + system, all threads),
   RSS after setup, peak RSS (``ru_maxrss`` of the child itself) and whatever ``run``
   returned last (counts, sizes, stage timings).

The parent also samples the RSS of the child's whole process tree with psutil every
20 ms (for variants that start helpers such as Chromium) and keeps the larger peak.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
WORK = BENCH / "_work"
RESULTS = BENCH / "results"
MB = 1024 * 1024

Run = Callable[[], Any]
Setup = Callable[[Mapping[str, Any]], Run]


@dataclass
class Measurement:
    """What one child process measured for one variant."""

    case: str
    variant: str
    params: dict[str, Any]
    times: list[float]
    cpu: list[float]
    setup_rss_mb: float
    peak_rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def median_s(self) -> float:
        """Median wall time of the timed runs (NaN when the variant failed)."""
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def cpu_s(self) -> float:
        """Median CPU time (user + system, all threads) of the timed runs."""
        return statistics.median(self.cpu) if self.cpu else float("nan")

    @property
    def ok(self) -> bool:
        """True when the variant ran to the end."""
        return self.error is None and bool(self.times)


# ---------------------------------------------------------------- child side


def resolve(target: str) -> Setup:
    """``"module:function"`` (module under ``benchmarks``) -> the setup function."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(f"benchmarks.{module}"), name)


def rss_mb() -> float:
    """Current resident set size of this process, in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_main(target: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Set up, warm up and time one variant in this process; return the JSON report."""
    run = resolve(target)(params)
    setup_rss = rss_mb()
    extra = run() if params.get("warmup", True) else None
    times, cpu = [], []
    for _ in range(int(params.get("repeat", 3))):
        wall, used = time.perf_counter(), _cpu()
        extra = run()
        times.append(time.perf_counter() - wall)
        cpu.append(_cpu() - used)
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"times": times, "cpu": cpu, "setup_rss_mb": setup_rss, "peak_rss_mb": peak / 1024,
            "extra": extra if isinstance(extra, dict) else {}}


# ---------------------------------------------------------------- parent side


def _tree_rss(proc: Any) -> int:
    import psutil

    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _sample(pid: int, stop: threading.Event, peak: list[int]) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss(proc))
            stop.wait(0.02)
    except psutil.Error:
        return


def measure(case: str, variant: str, target: str, params: Mapping[str, Any], *,
            timeout: float = 1800) -> Measurement:
    """Run ``target`` (``"module:setup"``) with ``params`` in a fresh process and collect its report."""
    command = [sys.executable, "-m", "benchmarks", "--child", target, "--params", json.dumps(dict(params))]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_sample, args=(proc.pid, stop, peak), daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err = f"timed out after {timeout:.0f} s\n{err}"
    stop.set()
    sampler.join()
    return _parse(case, variant, dict(params), proc.returncode, out, err, peak[0] / MB)


def _parse(case: str, variant: str, params: dict[str, Any], code: int | None, out: str, err: str,
           sampled_mb: float) -> Measurement:
    lines = [line for line in out.strip().splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        tail = " | ".join(err.strip().splitlines()[-3:])[-400:]
        return Measurement(case, variant, params, [], [], float("nan"), sampled_mb, error=tail or f"exit {code}")
    report = json.loads(lines[-1])
    peak = max(report["peak_rss_mb"], sampled_mb)
    return Measurement(case, variant, params, report["times"], report["cpu"], report["setup_rss_mb"], peak,
                       report["extra"])


def say(message: str) -> None:
    """Progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine and formatting


def machine() -> dict[str, Any]:
    """Where the suite ran: CPU, memory, versions, load."""
    import numpy as np
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "numpy": np.__version__, "versions": _versions(),
            "load": [round(x, 2) for x in os.getloadavg()], "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                  time.gmtime())}


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = ("territoire_geo", "dask", "xarray", "odc-stac", "rasterio", "exactextract", "rasterstats", "numba",
             "pydeck")
    found = []
    for name in names:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def fmt(value: float | None, pattern: str = "{:.2f}", missing: str = "—") -> str:
    """Format a number, or ``missing`` for None/NaN."""
    if value is None or value != value:
        return missing
    return pattern.format(value)


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A markdown table; ``align`` is one character per column (``l`` or ``r``)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def variants_table(measurements: list[Measurement], pixels: float | None = None, unit: str = "Mpx/s") -> str:
    """One row per variant: median, runs, CPU, throughput, RSS after setup, peak RSS."""
    rows = []
    for m in measurements:
        rate = fmt(pixels / 1e6 / m.median_s, "{:.0f}") if pixels and m.ok else "—"
        runs = ", ".join(f"{t:.2f}" for t in m.times) or f"failed: {m.error}"
        rows.append([m.variant, fmt(m.median_s, "{:.3f}"), runs, fmt(m.cpu_s, "{:.2f}"), rate,
                     fmt(m.setup_rss_mb, "{:.0f}"), fmt(m.peak_rss_mb, "{:.0f}")])
    return table(["variant", "median (s)", "runs (s)", "CPU (s)", unit, "RSS after setup (MB)", "peak RSS (MB)"],
                 rows)


def write_result(case: str, text: str) -> Path:
    """Write ``benchmarks/results/<case>.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{case}.md"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path
