"""Figures for planners: quick-look maps and charts (matplotlib, headless)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["quicklook_png"]


def quicklook_png(data: Any, path: str | os.PathLike[str], *, title: str, cmap: str = "RdYlGn",
                  vmin: float = -0.2, vmax: float = 0.9, label: str = "NDVI", source: str = "") -> Path:
    """Save a 2-D DataArray as a PNG map with a colour bar, title and source line (atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(data.values, dtype="float32")
    fig, ax = plt.subplots(figsize=(7, 6.5), dpi=110)
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
    target = Path(path)
    tmp = target.with_name(target.name + ".part.png")
    fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, target)
    return target
