"""AOI and period normalisers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from territoire_geo._types import normalize_aoi, normalize_bbox, normalize_date_range
from territoire_geo.errors import ConfigError, DataError

UTC = dt.UTC


def test_bbox_in_lonlat_and_lambert93() -> None:
    aoi = normalize_bbox((4.33, 43.97, 4.40, 44.03))
    assert aoi.crs.to_epsg() == 4326
    l93 = aoi.to_crs(2154)
    minx, miny, maxx, _ = l93.bounds
    assert 806_000 < minx < 808_000 and 6_319_000 < miny < 6_321_000
    assert maxx - minx == pytest.approx(5600, rel=0.05)


@pytest.mark.parametrize("bad", [(1, 2, 3), (4.4, 44, 4.3, 45), ("a", 1, 2, 3), (0, 0, float("nan"), 1)])
def test_bad_bbox_is_a_config_error(bad: tuple) -> None:
    with pytest.raises(ConfigError, match="bbox"):
        normalize_bbox(bad)


def test_projected_bbox_without_crs_is_refused() -> None:
    with pytest.raises(ConfigError, match="crs="):
        normalize_bbox((807000, 6320000, 812000, 6326000))


def test_geometry_mapping_file_and_frame(tmp_path: Path, plu_shp: Path) -> None:
    geom = box(4.35, 43.99, 4.37, 44.0)
    assert normalize_aoi(geom).bounds == pytest.approx(geom.bounds)
    mapping = {"type": "Feature", "geometry": geom.__geo_interface__, "properties": {}}
    assert normalize_aoi(mapping).bounds == pytest.approx(geom.bounds)
    from_file = normalize_aoi(plu_shp)
    assert from_file.crs.to_epsg() == 2154
    frame = gpd.read_file(plu_shp).to_crs(32631)
    assert normalize_aoi(frame).crs.to_epsg() == 32631
    assert normalize_aoi(frame).to_crs(2154).bounds == pytest.approx(from_file.bounds, abs=0.5)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        normalize_aoi(tmp_path / "missing.geojson")
    broken = tmp_path / "broken.geojson"
    broken.write_text("{not json")
    with pytest.raises(DataError, match="cannot read AOI"):
        normalize_aoi(broken)
    no_crs = gpd.GeoDataFrame(geometry=[Point(0, 0).buffer(1)])
    with pytest.raises(DataError, match="no CRS"):
        normalize_aoi(no_crs)


@pytest.mark.parametrize(("text", "start", "end"), [
    ("2021", dt.datetime(2021, 1, 1, tzinfo=UTC), dt.datetime(2021, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("2022-02", dt.datetime(2022, 2, 1, tzinfo=UTC), dt.datetime(2022, 2, 28, 23, 59, 59, 999999, tzinfo=UTC)),
    ("2020-01-01/2020-06-30", dt.datetime(2020, 1, 1, tzinfo=UTC),
     dt.datetime(2020, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)),
])
def test_periods(text: str, start: dt.datetime, end: dt.datetime) -> None:
    period = normalize_date_range(text)
    assert (period.start, period.end) == (start, end)
    assert period.to_stac().startswith(start.strftime("%Y-%m-%dT"))


def test_open_ended_and_bad_periods() -> None:
    assert normalize_date_range("2020-01-01/..").end.year == 9999
    with pytest.raises(ConfigError, match="starts after"):
        normalize_date_range("2022/2021")
    with pytest.raises(ConfigError, match="ISO 8601"):
        normalize_date_range("last summer")
    with pytest.raises(ConfigError, match="month"):
        normalize_date_range("2021-13")


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2100, 1, 1)),
       st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2100, 1, 1)))
def test_period_parser_properties(a: dt.date, b: dt.date) -> None:
    first, last = min(a, b), max(a, b)
    period = normalize_date_range(f"{first.isoformat()}/{last.isoformat()}")
    assert period.start.date() == first and period.end.date() == last
    assert period.start <= period.end
    assert normalize_date_range((first, last)) == period


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_period_parser_never_crashes(text: str) -> None:
    try:
        normalize_date_range(text)
    except ConfigError:
        pass
