"""Small matplotlib charts written by recipe steps (headless, atomic)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["crop_series_chart"]


def crop_series_chart(frame: Any, path: str | os.PathLike[str], *, group: str, anomalies: Any = None) -> Path:
    """NDVI over time of every parcel of one crop group, anomalies circled in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    for parcel, rows in frame.groupby("parcel"):
        ax.plot(pd.to_datetime(rows["date"]), rows["ndvi_mean"], marker="o", markersize=3, linewidth=1.2,
                label=str(parcel))
    if anomalies is not None:
        hits = anomalies[(anomalies["group"] == group) & anomalies["anomaly"]]
        ax.scatter(pd.to_datetime(hits["date"]), hits["ndvi_mean"], s=90, facecolors="none", edgecolors="#c0392b",
                   linewidths=1.8, label="anomalie", zorder=5)
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(f"NDVI moyen par parcelle — culture {group}", fontsize=11)
    ax.set_ylabel("NDVI")
    ax.set_ylim(-0.1, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="lower left")
    fig.text(0.01, 0.01, "Contient des données Copernicus Sentinel-2 · RPG : IGN/ASP (Licence Ouverte 2.0)",
             fontsize=6.5, color="#555")
    target = Path(path)
    tmp = target.with_name(target.name + ".part.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, target)
    return target
