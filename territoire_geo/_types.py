"""Loose input types accepted at the API boundary, and their normalisers.

The rest of the package only sees the canonical values returned here:
an :class:`AOI` (a shapely geometry with its CRS) and a :class:`DateRange`
(two timezone-aware UTC datetimes, end inclusive).
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import shapely
from pyproj import CRS, Transformer
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from territoire_geo.errors import ConfigError, DataError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "AOI",
    "AOILike",
    "BBoxLike",
    "DateRange",
    "DateRangeLike",
    "is_commune_spec",
    "normalize_aoi",
    "normalize_bbox",
    "normalize_date_range",
]

BBoxLike = Sequence[float] | tuple[float, float, float, float]
AOILike = Union[BBoxLike, BaseGeometry, Mapping[str, Any], str, os.PathLike, "gpd.GeoDataFrame", "AOI"]
DateLike = str | dt.date | dt.datetime
DateRangeLike = Union[str, Sequence[DateLike], "DateRange"]

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class AOI:
    """An area of interest: a geometry and the CRS its coordinates are in."""

    geometry: BaseGeometry
    crs: CRS

    def to_crs(self, crs: str | int | CRS) -> AOI:
        """Return the same area in another CRS (densified edges, exact for polygons)."""
        target = CRS.from_user_input(crs)
        if target == self.crs:
            return self
        transformer = Transformer.from_crs(self.crs, target, always_xy=True)
        densified = shapely.segmentize(self.geometry, _segment_length(self.geometry))
        return AOI(shapely.transform(densified, _xy(transformer)), target)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Bounds ``(minx, miny, maxx, maxy)`` in the AOI's own CRS."""
        minx, miny, maxx, maxy = self.geometry.bounds
        return (float(minx), float(miny), float(maxx), float(maxy))

    @property
    def bbox_wgs84(self) -> tuple[float, float, float, float]:
        """Bounds in longitude/latitude (EPSG:4326), as STAC searches expect."""
        return self.to_crs(WGS84).bounds

    def to_geojson(self) -> dict[str, Any]:
        """The geometry as a GeoJSON mapping in EPSG:4326."""
        return dict(mapping(self.to_crs(WGS84).geometry))


def _segment_length(geom: BaseGeometry) -> float:
    minx, miny, maxx, maxy = geom.bounds
    span = max(maxx - minx, maxy - miny)
    return span / 50 if span > 0 else 1.0


def _xy(transformer: Transformer) -> Any:
    def apply(coords: Any) -> Any:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        coords = coords.copy()
        coords[:, 0], coords[:, 1] = x, y
        return coords

    return apply


@dataclass(frozen=True)
class DateRange:
    """A closed period ``[start, end]`` in UTC."""

    start: dt.datetime
    end: dt.datetime

    def to_stac(self) -> str:
        """The period as a STAC ``datetime`` interval string."""
        return f"{_iso(self.start)}/{_iso(self.end)}"

    def __contains__(self, moment: dt.datetime) -> bool:
        return self.start <= moment <= self.end


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_bbox(bbox: BBoxLike, crs: str | int | CRS = 4326) -> AOI:
    """Turn ``(minx, miny, maxx, maxy)`` into an :class:`AOI`.

    Parameters
    ----------
    bbox
        Four numbers, minimum first.
    crs
        CRS of the numbers; longitude/latitude by default.

    Raises
    ------
    ConfigError
        If it is not four finite numbers with min < max, or if the numbers
        cannot be longitude/latitude while ``crs`` says they are.
    """
    try:
        values = [float(v) for v in bbox]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bbox {bbox!r} is not four numbers; give minx, miny, maxx, maxy") from exc
    if len(values) != 4 or not all(map(_finite, values)):
        raise ConfigError(f"bbox {bbox!r} must be four finite numbers: minx, miny, maxx, maxy")
    minx, miny, maxx, maxy = values
    if minx >= maxx or miny >= maxy:
        raise ConfigError(f"bbox {bbox!r} has min >= max; give minx, miny, maxx, maxy")
    crs_obj = CRS.from_user_input(crs)
    if crs_obj.is_geographic and (min(minx, maxx) < -180 or max(minx, maxx) > 180 or miny < -90 or maxy > 90):
        raise ConfigError(
            f"bbox {bbox!r} is not in longitude/latitude; pass its CRS (e.g. crs='EPSG:2154')"
        )
    return AOI(box(minx, miny, maxx, maxy), crs_obj)


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


def normalize_aoi(aoi: AOILike, crs: str | int | CRS | None = None) -> AOI:
    """Turn any accepted AOI form into an :class:`AOI`.

    Parameters
    ----------
    aoi
        A bbox (four numbers), a shapely geometry, a GeoJSON mapping
        (geometry, Feature or FeatureCollection), a path to a vector file
        (GeoJSON, GeoPackage, Shapefile…), a GeoDataFrame or an AOI. Communes
        named by code (``"insee:30014"``, ``"epci:200066918"``) need their
        contours from the network: :func:`territoire_geo.sources.resolve_aoi`
        turns them into an AOI, and accepts every form above too.
    crs
        CRS of a bbox, geometry or mapping; EPSG:4326 when omitted. Files and
        GeoDataFrames carry their own CRS.

    Raises
    ------
    ConfigError
        If the input is of no accepted form.
    DataError
        If a file cannot be read, is empty, or has no CRS.
    """
    if isinstance(aoi, AOI):
        return aoi
    given = CRS.from_user_input(crs) if crs is not None else WGS84
    if isinstance(aoi, BaseGeometry):
        return _checked(AOI(aoi, given))
    if isinstance(aoi, Mapping):
        return _checked(AOI(_geometry_from_mapping(aoi), given))
    if isinstance(aoi, str) and is_commune_spec(aoi):
        raise ConfigError(f"{aoi!r} names communes: resolve it with territoire_geo.sources.resolve_aoi "
                          "(search, load and fetch accept it directly)")
    if isinstance(aoi, (str, os.PathLike)):
        return _aoi_from_path(Path(aoi))
    if hasattr(aoi, "geometry") and hasattr(aoi, "crs"):
        return _aoi_from_frame(aoi)
    if isinstance(aoi, Sequence):
        return normalize_bbox(aoi, given)
    raise ConfigError(f"cannot use {type(aoi).__name__} as an area of interest; give a bbox, geometry or file")


def _checked(aoi: AOI) -> AOI:
    if aoi.geometry.is_empty:
        raise DataError("the area of interest is empty; give a geometry with an area")
    if not aoi.geometry.is_valid:
        aoi = AOI(shapely.make_valid(aoi.geometry), aoi.crs)
    return aoi


def _geometry_from_mapping(obj: Mapping[str, Any]) -> BaseGeometry:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        geoms = [shape(f["geometry"]) for f in obj.get("features", []) if f.get("geometry")]
        if not geoms:
            raise DataError("the GeoJSON FeatureCollection has no geometry; give at least one feature")
        return shapely.union_all(_valid(geoms, "the GeoJSON FeatureCollection"))
    if kind == "Feature":
        return shape(obj["geometry"])
    try:
        return shape(obj)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"the mapping is not GeoJSON (type={kind!r}); give a geometry or a feature") from exc


_COMMUNES = re.compile(r"^\s*(?:insee|epci)\s*:", re.IGNORECASE)


def is_commune_spec(text: str) -> bool:
    """True for ``"insee:…"`` / ``"epci:…"`` AOI strings (communes named by code)."""
    return bool(_COMMUNES.match(text)) and not Path(text).exists()


def _aoi_from_path(path: Path) -> AOI:
    if not path.exists():
        raise DataError(f"AOI file {path} does not exist; check the path")
    import geopandas as gpd  # on first AOI file: keeps `import territoire_geo` (and the CLI) light
    import pyogrio.errors  # same reason

    try:
        frame = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise DataError(f"cannot read AOI file {path}: {str(exc).splitlines()[0]}") from exc
    return _aoi_from_frame(frame, str(path))


def _aoi_from_frame(frame: Any, label: str = "GeoDataFrame") -> AOI:
    if frame.crs is None:
        raise DataError(f"{label} has no CRS; set one (e.g. frame.set_crs('EPSG:2154'))")
    geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
    if not geoms:
        raise DataError(f"{label} has no geometry; give at least one feature")
    return _checked(AOI(shapely.union_all(_valid(geoms, label)), CRS.from_user_input(frame.crs)))


def _valid(geoms: list[BaseGeometry], label: str) -> list[BaseGeometry]:
    """The geometries, invalid ones (self-intersections, zero area) repaired so that their union works."""
    bad = sum(1 for g in geoms if not g.is_valid)
    if not bad:
        return geoms
    log.warning("%s: %d invalid geometr%s in the area of interest repaired (make_valid)", label, bad,
                "y" if bad == 1 else "ies")
    return [g if g.is_valid else shapely.make_valid(g) for g in geoms]


_YEAR = re.compile(r"^\d{4}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def normalize_date_range(period: DateRangeLike) -> DateRange:
    """Turn a period into a :class:`DateRange` in UTC, end inclusive.

    Parameters
    ----------
    period
        ``"2021"``, ``"2021-06"``, ``"2021-01-01/2021-12-31"``, a pair of
        dates/datetimes/strings, or a DateRange. A bare date as an end means
        the whole of that day.

    Raises
    ------
    ConfigError
        If a date cannot be parsed or the start is after the end.
    """
    if isinstance(period, DateRange):
        return period
    if isinstance(period, str):
        text = period.strip()
        if "/" in text:
            start_text, end_text = text.split("/", 1)
            return _ordered(_parse(start_text, end=False), _parse(end_text, end=True), period)
        return _ordered(_parse(text, end=False), _parse(text, end=True), period)
    if isinstance(period, Sequence) and len(period) == 2:
        return _ordered(_parse(period[0], end=False), _parse(period[1], end=True), period)
    raise ConfigError(f"period {period!r} is not understood; give 'YYYY-MM-DD/YYYY-MM-DD'")


def _ordered(start: dt.datetime, end: dt.datetime, original: object) -> DateRange:
    if start > end:
        raise ConfigError(f"period {original!r} starts after it ends; swap the dates")
    return DateRange(start, end)


def _parse(value: DateLike, *, end: bool) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return _day_edge(value, end)
    text = str(value).strip()
    if text in {"", ".."}:
        bound = dt.datetime.max if end else dt.datetime.min
        return bound.replace(tzinfo=dt.UTC)
    if _YEAR.match(text):
        year = int(text)
        return _day_edge(dt.date(year, 12, 31) if end else dt.date(year, 1, 1), end)
    month = _MONTH.match(text)
    if month:
        year, mon = int(month.group(1)), int(month.group(2))
        if not 1 <= mon <= 12:
            raise ConfigError(f"date {text!r} has no month {mon}; use YYYY-MM")
        last = calendar.monthrange(year, mon)[1]
        return _day_edge(dt.date(year, mon, last if end else 1), end)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"date {text!r} is not ISO 8601; use YYYY-MM-DD") from exc
    if len(text) == 10:
        return _day_edge(parsed.date(), end)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _day_edge(day: dt.date, end: bool) -> dt.datetime:
    moment = dt.time(23, 59, 59, 999999) if end else dt.time(0, 0)
    return dt.datetime.combine(day, moment, tzinfo=dt.UTC)
