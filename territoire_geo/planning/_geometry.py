"""Geometry chores shared by the overlay and the ZAN accounts: one CRS, polygons only, clean cuts."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from territoire_geo.errors import CRSMismatchError

__all__ = ["cut", "in_crs", "polygons"]

log = logging.getLogger(__name__)


def in_crs(frame: gpd.GeoDataFrame | gpd.GeoSeries, crs: Any, label: str) -> Any:
    """``frame`` in ``crs``, reprojected once and visibly (a log line); CRSMismatchError without a CRS."""
    if frame.crs is None:
        raise CRSMismatchError(f"{label} has no CRS; set the CRS (gdf.set_crs(...)) before combining layers")
    if frame.crs == crs:
        return frame
    log.info("reprojecting %s from %s to %s", label, frame.crs.to_string(), crs.to_string())
    return frame.to_crs(crs)


def polygons(frame: gpd.GeoDataFrame, label: str) -> gpd.GeoDataFrame:
    """The polygonal, non-empty features of ``frame``, made valid (what is dropped is logged)."""
    geoms = frame.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6)) & ~shapely.is_empty(geoms)
    if not polygonal.all():
        log.info("%s: %d non-polygon or empty features ignored for area shares", label, int((~polygonal).sum()))
    frame = frame.loc[polygonal]
    invalid = ~shapely.is_valid(frame.geometry.to_numpy())
    if invalid.any():
        fixed = frame.geometry.to_numpy().copy()
        fixed[invalid] = shapely.make_valid(fixed[invalid])
        frame = frame.set_geometry(gpd.GeoSeries(fixed, index=frame.index, crs=frame.crs))
    return frame


def cut(left: gpd.GeoDataFrame, right: gpd.GeoDataFrame, how: str) -> gpd.GeoDataFrame:
    """``geopandas.overlay`` keeping polygons only; dropped lines/points are logged, not warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        result = gpd.overlay(left, right, how=how, keep_geom_type=True)
    for warning in caught:
        log.info("overlay: %s", warning.message)
    return result
