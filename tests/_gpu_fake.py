"""A loopback stand-in for API Carto's GPU module, answering the real response shapes.

Bodies come from ``tests/data/real/france/gpu_apicarto/`` (real API answers): their
envelope (``type``, ``totalFeatures``, ``features``, ``crs``, ``bbox``) and their
feature properties are reused; only the feature lists change per scenario.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import shapely
from _servers import Request, Response, RouteServer
from shapely.geometry import box, mapping

__all__ = ["ENDPOINTS", "REAL_GPU", "GpuFake", "empty", "real", "tiled_zones"]

REAL_GPU = Path(__file__).parent / "data" / "real" / "france" / "gpu_apicarto"
ENDPOINTS = (
    "municipality", "document", "zone-urba", "secteur-cc", "prescription-surf", "prescription-lin",
    "prescription-pct", "info-surf", "info-lin", "info-pct",
)  # fmt: skip
_FILES = {
    "municipality": "municipality_93014.geojson",
    "document": "document_point_26321.geojson",
    "zone-urba": "zone_urba_point_query_17345.geojson",
}


def real(endpoint: str) -> dict[str, Any]:
    """The real API answer stored for ``endpoint`` (a fresh copy)."""
    return json.loads((REAL_GPU / _FILES[endpoint]).read_text(encoding="utf-8"))


def empty() -> dict[str, Any]:
    """An empty answer in the real envelope."""
    body = real("zone-urba")
    body.update(features=[], totalFeatures=0)
    body.pop("bbox", None)
    return body


def tiled_zones(count: int, partition: str = "DU_01004", insee: str = "01004") -> list[dict[str, Any]]:
    """``count`` zone-urba features (real property keys) tiling ~80 m squares near 4.36°E 44.0°N."""
    template = real("zone-urba")["features"][0]
    labels = (("Ua", "U"), ("1AUa", "AUc"), ("2AU", "AUs"), ("A", "A"), ("N", "N"))
    features = []
    for i in range(count):
        col, row = divmod(i, 50)
        x, y = 4.33 + col * 0.001, 43.98 + row * 0.001
        square = box(round(x, 6), round(y, 6), round(x + 0.001, 6), round(y + 0.001, 6))
        libelle, typezone = labels[i % len(labels)]
        props = copy.deepcopy(template["properties"])
        props.update(gid=100_000 + i, partition=partition, libelle=libelle, typezone=typezone, insee=insee,
                     destdomi=7 if i % 2 else "07", idurba=f"{insee}_PLU_20200101",
                     lib_idzone=f"{insee}_PLU_20200101_ZO{i}", bbox=list(square.bounds))  # fmt: skip
        geometry = mapping(shapely.MultiPolygon([square]))
        features.append({"type": "Feature", "id": f"zone_urba.{100_000 + i}", "geometry": geometry,
                         "geometry_name": "the_geom", "properties": props})  # fmt: skip
    return features


class GpuFake:
    """Route handlers for ``/api/gpu/<endpoint>`` with paging and per-endpoint overrides.

    ``data[(endpoint, key)]`` holds the features answered for ``partition=key``,
    ``insee=key`` or ``geom`` (key ``"geom"``); ``override[endpoint]`` replaces the
    handler (fault injection).
    """

    prefix = "/api/gpu"

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.override: dict[str, Callable[[Request], Response]] = {}
        self.honour_start = True
        self.server = RouteServer({("GET", f"{self.prefix}/{e}"): self._handler(e) for e in ENDPOINTS})

    @property
    def base_url(self) -> str:
        """``--base-url`` for the client."""
        return self.server.url + self.prefix

    def __enter__(self) -> GpuFake:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def calls(self, endpoint: str) -> list[Request]:
        """Requests received by one endpoint, in order."""
        return [r for r in self.server.requests if r.path == f"{self.prefix}/{endpoint}"]

    def starts(self, endpoint: str) -> list[int]:
        """``_start`` of each request to ``endpoint``."""
        return [int(r.query.get("_start", ["0"])[0]) for r in self.calls(endpoint)]

    def _handler(self, endpoint: str) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            if endpoint in self.override:
                return self.override[endpoint](request)
            return Response(body=self.page(endpoint, request))

        return handle

    def page(self, endpoint: str, request: Request) -> dict[str, Any]:
        """The answer to ``request``: its features, ``_limit`` (≤ 1000) from ``_start``."""
        query = {k: v[0] for k, v in request.query.items()}
        key = query.get("partition") or query.get("insee") or ("geom" if "geom" in query else "")
        features = self.data.get((endpoint, key), [])
        start = int(query.get("_start", 0)) if self.honour_start else 0
        limit = min(int(query.get("_limit", 1000)), 1000)
        body = empty()
        body.update(features=features[start : start + limit], totalFeatures=len(features))
        return body

