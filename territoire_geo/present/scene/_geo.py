"""Vector preparation for 3D scenes: CRS, simplification, quantisation, rings and paths.

Everything deck.gl receives is in EPSG:4326, 2D, simplified in metres *before*
reprojection (preserving topology) and rounded to :data:`DECIMALS` decimals
(1e-6° ≈ 0.1 m), with ring closing vertices dropped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from territoire_geo.errors import DataError

__all__ = [
    "DECIMALS",
    "WGS84",
    "auto_tolerance",
    "bounds_diag_m",
    "explode",
    "line_paths",
    "metric_area_ha",
    "polygon_rings",
    "scene_bounds",
    "to_wgs84",
]

WGS84 = CRS.from_epsg(4326)
#: Decimal places of the coordinates written (1e-6° ≈ 0.11 m at the equator).
DECIMALS = 6
_POLYGONAL = ("Polygon", "MultiPolygon")


def _metric(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` in a metric CRS: its own if projected, else the local UTM zone."""
    if frame.crs.is_projected:
        return frame
    return frame.to_crs(frame.estimate_utm_crs())


def _checked(frame: Any, label: str) -> gpd.GeoDataFrame:
    if not isinstance(frame, gpd.GeoDataFrame):
        raise DataError(f"{label} must be a GeoDataFrame, not {type(frame).__name__}")
    if frame.crs is None:
        raise DataError(f"{label} has no CRS; set it with .set_crs(...) before building a scene")
    geoms = shapely.force_2d(np.asarray(frame.geometry.values, dtype=object))
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = frame.loc[keep].copy()
    out = out.set_geometry(gpd.GeoSeries(geoms[keep], index=out.index, crs=frame.crs))
    if out.empty:
        raise DataError(f"{label} has no geometry to draw")
    return out


def metric_area_ha(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Area of each row in hectares, measured in a metric CRS."""
    return np.asarray(_metric(frame).geometry.area, dtype=float) / 1e4


def to_wgs84(frame: gpd.GeoDataFrame, *, tolerance: float, label: str) -> gpd.GeoDataFrame:
    """Drop empties, force 2D, simplify by ``tolerance`` metres, reproject to EPSG:4326.

    Raises
    ------
    DataError
        No CRS, not a GeoDataFrame, or nothing left to draw.
    """
    frame = _checked(frame, label)
    if tolerance > 0:
        metric = _metric(frame)
        simplified = shapely.simplify(np.asarray(metric.geometry.values, dtype=object), tolerance,
                                      preserve_topology=True)
        frame = metric.set_geometry(gpd.GeoSeries(simplified, index=metric.index, crs=metric.crs))
    frame = frame.to_crs(WGS84)
    valid = ~shapely.is_empty(np.asarray(frame.geometry.values, dtype=object))
    return frame.loc[valid]


def explode(frame: gpd.GeoDataFrame, kinds: Sequence[str]) -> gpd.GeoDataFrame:
    """Single-part geometries of the given kinds (``"Polygon"``, ``"LineString"``, ``"Point"``)."""
    parts = frame.explode(index_parts=False)
    return parts.loc[parts.geom_type.isin(kinds).to_numpy()]


def _round_coords(coords: np.ndarray) -> list[list[float]]:
    return np.round(coords[:, :2], DECIMALS).tolist()


def polygon_rings(geoms: Iterable[Any]) -> list[list[list[list[float]]]]:
    """Rings of each Polygon as nested ``[[lon, lat], ...]`` lists (rounded, not closed)."""
    polys = np.asarray(list(geoms), dtype=object)
    if polys.size == 0:
        return []
    _, coords, (ring_off, poly_off) = shapely.to_ragged_array(polys)
    flat = _round_coords(coords)
    rings = [flat[a:b - 1] for a, b in itertools.pairwise(ring_off)]
    return [rings[a:b] for a, b in itertools.pairwise(poly_off)]


def line_paths(geoms: Iterable[Any]) -> list[list[list[float]]]:
    """Vertices of each LineString (polygons: their rings) as ``[[lon, lat], ...]`` lists."""
    lines = np.asarray(list(geoms), dtype=object)
    if lines.size == 0:
        return []
    boundaries = np.asarray([g.boundary if g.geom_type in _POLYGONAL else g for g in lines], dtype=object)
    flat_lines = shapely.get_parts(boundaries)
    flat_lines = flat_lines[shapely.get_type_id(flat_lines) == 1]
    if flat_lines.size == 0:
        return []
    _, coords, (offsets,) = shapely.to_ragged_array(flat_lines)
    flat = _round_coords(coords)
    return [flat[a:b] for a, b in itertools.pairwise(offsets)]


def scene_bounds(frames: Iterable[gpd.GeoDataFrame | None]) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) in EPSG:4326 of all non-empty frames, or None (DataError if a CRS is missing)."""
    present = [f for f in frames if f is not None and len(f)]
    for frame in present:
        if getattr(frame, "crs", None) is None:
            raise DataError("a layer has no CRS; set it with .set_crs(...) before building a scene")
    boxes = [f.to_crs(WGS84).total_bounds for f in present]
    boxes = [b for b in boxes if np.all(np.isfinite(b))]
    if not boxes:
        return None
    arr = np.asarray(boxes)
    return (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max()))


def bounds_diag_m(bounds: Sequence[float]) -> float:
    """Approximate diagonal, in metres, of a lon/lat box."""
    west, south, east, north = bounds
    lat = math.radians((south + north) / 2)
    dx = (east - west) * 111_320 * math.cos(lat)
    dy = (north - south) * 110_540
    return max(math.hypot(dx, dy), 1.0)


def auto_tolerance(diag_m: float) -> float:
    """Simplification tolerance (m) the screen needs: 1/10 000 of the scene, 0.5–25 m."""
    return float(min(max(diag_m / 10_000, 0.5), 25.0))
