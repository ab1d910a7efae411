"""Pixel and zone computations: safe formulas, spectral indices, composites, change, zonal statistics, terrain."""

from territoire_geo.analysis import change, composites, expr, indices, terrain, zonal

__all__ = ["change", "composites", "expr", "indices", "terrain", "zonal"]
