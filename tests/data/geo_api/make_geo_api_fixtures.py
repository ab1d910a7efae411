"""Build the geo.api.gouv.fr answers served by the loopback fake in ``tests/sources/test_communes.py``.

Run from the repository root: ``python tests/data/geo_api/make_geo_api_fixtures.py``
(deterministic; see ``README.md`` beside this file for what is real and what is not).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import box, mapping
from shapely.geometry.polygon import orient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
ZONES = ROOT / "data_samples" / "plu" / "30014_PLU_20171013" / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp"
EPCI = "200066918"  # placeholder SIREN (see README.md)


def _round(geom: Any) -> Any:
    return shapely.transform(geom, lambda xy: np.round(xy, 6))


def _oriented(geom: Any) -> Any:
    """Exterior rings counter-clockwise (RFC 7946)."""
    if geom.geom_type == "Polygon":
        return orient(geom, 1.0)
    return shapely.MultiPolygon([orient(g, 1.0) for g in geom.geoms])


def _feature(props: dict[str, Any], geom: Any) -> dict[str, Any]:
    """A Feature as the API builds it: ``type``, ``properties`` (in the ``fields`` order), ``geometry``."""
    return {"type": "Feature", "properties": props, "geometry": mapping(_oriented(geom))}


def arpaillargues() -> Any:
    """Contour stand-in of commune 30014: the union of its real PLU zones, in EPSG:4326."""
    zones = gpd.read_file(ZONES)
    union = shapely.union_all([g if g.is_valid else shapely.make_valid(g) for g in zones.geometry])
    union = shapely.Polygon(union.exterior, [r for r in union.interiors if shapely.Polygon(r).area > 1.0])
    lonlat = gpd.GeoSeries([union], crs=zones.crs).to_crs(4326).iloc[0]
    return _round(lonlat)


def neighbour(commune: Any) -> Any:
    """A synthetic commune sharing the eastern border of 30014 (the commune cut out of a box)."""
    _, miny, maxx, maxy = commune.bounds
    area = box(maxx - 0.012, miny + 0.004, maxx + 0.03, maxy - 0.004).difference(commune)
    parts = [p for p in getattr(area, "geoms", [area]) if p.area > 1e-7]
    return _round(max(parts, key=lambda p: p.area))


def main() -> None:
    commune = arpaillargues()
    other = neighbour(commune)
    first = _feature({"nom": "Arpaillargues-et-Aureilhac", "code": "30014", "codeDepartement": "30",
                      "codeEpci": EPCI, "population": 1000}, commune)
    second = _feature({"nom": "Voisine-Synthétique", "code": "30028", "codeDepartement": "30",
                       "codeEpci": EPCI, "population": 500}, other)
    outputs = {
        "commune_30014.geojson": first,
        "commune_30028.geojson": second,
        f"epci_{EPCI}_communes.geojson": {"type": "FeatureCollection", "features": [first, second]},
    }
    for name, body in outputs.items():
        (HERE / name).write_text(json.dumps(body, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        print(name, (HERE / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
