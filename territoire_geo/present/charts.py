"""Small standalone charts and maps as PNG files (matplotlib Agg, no pyplot state, atomic writes).

The figures of the HTML report live in :mod:`territoire_geo.present.report`; these are
the files a recipe step or a notebook writes on its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from territoire_geo._atomic import atomic_path

__all__ = ["crop_series_chart", "quicklook_png"]


def _new_figure(width: float, height: float) -> tuple[Figure, Any]:
    """A figure drawn by the Agg renderer, never registered with pyplot (no global backend change)."""
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    with atomic_path(target, keep_suffix=True) as tmp:  # the .png suffix tells matplotlib the format
        fig.savefig(tmp, bbox_inches="tight")
    return target


def crop_series_chart(frame: Any, path: str | os.PathLike[str], *, group: str, anomalies: Any = None) -> Path:
    """NDVI over time of every parcel of one crop group, anomalies circled in red.

    Raises
    ------
    ExportError
        The PNG cannot be written.
    """
    fig, ax = _new_figure(8, 3.6)
    for parcel, rows in frame.groupby("parcel"):
        ax.plot(pd.to_datetime(rows["date"]), rows["ndvi_mean"], marker="o", markersize=3, linewidth=1.2,
                label=str(parcel))
    if anomalies is not None:
        hits = anomalies[(anomalies["group"] == group) & anomalies["anomaly"]]
        ax.scatter(pd.to_datetime(hits["date"]), hits["ndvi_mean"], s=90, facecolors="none", edgecolors="#c0392b",
                   linewidths=1.8, label="anomalie", zorder=5)
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
    return _save(fig, path)


def quicklook_png(data: Any, path: str | os.PathLike[str], *, title: str, cmap: str = "RdYlGn",
                  vmin: float = -0.2, vmax: float = 0.9, label: str = "NDVI", source: str = "") -> Path:
    """Save a 2-D DataArray as a PNG map with a colour bar, title and source line (atomic).

    Raises
    ------
    ExportError
        The PNG cannot be written.
    """
    values = np.asarray(data.values, dtype="float32")
    fig, ax = _new_figure(7, 6.5)
    x, y = data["x"].values, data["y"].values
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax,
                      extent=(x.min(), x.max(), y.min(), y.max()), interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("x (m, Lambert-93)")
    ax.set_ylabel("y (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    if source:
        fig.text(0.01, 0.01, source, fontsize=7, color="#444")
    return _save(fig, path)
