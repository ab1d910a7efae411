"""Search against a real STAC API on loopback (rustac), a static catalog and hand-written servers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pystac
import pytest
from _servers import Request, Response, RouteServer, StacApiServer

from territoire_geo import search
from territoire_geo.errors import ConfigError, SourceError, SourceUnavailableError
from territoire_geo.sources import StacApiSource

BBOX = (4.33, 43.97, 4.40, 44.03)


def test_static_catalog_search(samples: Path) -> None:
    items = search(BBOX, "2020/2023", source=samples / "stac", collections="sentinel-2-l2a")
    assert len(items) == 12
    dates = [i.datetime for i in items]
    assert dates == sorted(dates)
    assert search(BBOX, "2022-06", source=samples / "stac", collections="sentinel-2-l2a")[0].id == \
        "S2B_T31TFJ_20220623T103021_L2A"


def test_static_catalog_cloud_and_limit(samples: Path) -> None:
    clear = search(BBOX, "2020/2023", source=samples / "stac", collections="sentinel-2-l2a", max_cloud=10)
    assert {i.id[11:19] for i in clear}.isdisjoint({"20200911", "20220623", "20210618"})
    assert all(i.properties["eo:cloud_cover"] <= 10 for i in clear)
    assert len(search(BBOX, "2020/2023", source=samples / "stac", limit=3)) == 3


def test_aoi_outside_every_item_finds_nothing(samples: Path) -> None:
    assert search((2.0, 48.8, 2.1, 48.9), "2020/2023", source=samples / "stac") == []


def test_dem_found_by_the_same_search(samples: Path, stac_api: StacApiServer) -> None:
    for source in (samples / "stac", stac_api.url):
        dem = search(BBOX, "2021", source=source, collections="cop-dem-glo-30")
        assert [i.collection_id for i in dem] == ["cop-dem-glo-30"]


def test_api_search_bbox_datetime_and_paging(stac_api: StacApiServer, caplog: pytest.LogCaptureFixture) -> None:
    source = StacApiSource(stac_api.url, page_size=2)
    with caplog.at_level(logging.INFO, logger="territoire_geo"):
        items = search(BBOX, "2021-01-01/2022-12-31", source=source, collections="sentinel-2-l2a")
    assert [i.datetime.year for i in items] == [2021] * 3 + [2022] * 3
    assert items[0].assets["red"].href.startswith("http://127.0.0.1:")
    assert search((2.0, 48.8, 2.1, 48.9), "2021", source=stac_api.url, collections="sentinel-2-l2a") == []


def test_api_cloud_filter_on_client_when_server_lacks_filter(stac_api: StacApiServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="territoire_geo"):
        items = search(BBOX, "2020/2023", source=stac_api.url, collections="sentinel-2-l2a", max_cloud=10)
    assert len(items) == 9 and all(i.properties["eo:cloud_cover"] <= 10 for i in items)
    assert "filtered on the client" in caplog.text


def _feature(i: int, cloud: float) -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": f"item-{i}", "collection": "s2", "links": [],
            "geometry": {"type": "Point", "coordinates": [4.36, 44.0]}, "bbox": [4.36, 44.0, 4.36, 44.0],
            "properties": {"datetime": f"2022-0{i}-01T10:00:00Z", "eo:cloud_cover": cloud}, "assets": {}}


def _api(conforms: list[str]) -> RouteServer:
    server = RouteServer()

    def landing(_req: Request) -> Response:
        return Response(body={"type": "Catalog", "id": "api", "description": "x", "stac_version": "1.0.0",
                              "conformsTo": conforms, "links": [
                                  {"rel": "self", "href": server.url + "/"},
                                  {"rel": "search", "href": server.url + "/search", "method": "POST"}]})

    def do_search(req: Request) -> Response:
        body = req.json() or {}
        feats = [_feature(3, 50.0), _feature(1, 5.0), _feature(2, 80.0)]
        if "filter" in body:
            feats = [f for f in feats if f["properties"]["eo:cloud_cover"] <= body["filter"]["args"][1]]
        return Response(body={"type": "FeatureCollection", "features": feats, "links": []})

    server.routes.update({("GET", "/"): landing, ("POST", "/search"): do_search})
    return server


CORE = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"]


def test_cloud_filter_sent_to_server_that_advertises_cql2() -> None:
    conforms = [*CORE, "https://api.stacspec.org/v1.0.0/item-search#filter",
                "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json"]
    with _api(conforms) as server:
        items = search(BBOX, "2022", source=server.url, max_cloud=60)
        sent = [r.json() for r in server.requests if r.path == "/search"]
    assert sent and sent[0]["filter"]["args"] == [{"property": "eo:cloud_cover"}, 60]
    assert [i.id for i in items] == ["item-1", "item-3"]  # server-filtered, then sorted by datetime


def test_query_extension_used_when_advertised() -> None:
    with _api([*CORE, "https://api.stacspec.org/v1.0.0/item-search#query"]) as server:
        items = search(BBOX, "2022", source=server.url, max_cloud=60)
        sent = [r.json() for r in server.requests if r.path == "/search"]
    assert sent[0]["query"] == {"eo:cloud_cover": {"lte": 60}}
    assert [i.id for i in items] == ["item-1", "item-3"]  # this server ignores `query`: client filter kept


def test_unreachable_server_is_a_one_line_source_error() -> None:
    from territoire_geo.config import Settings

    with pytest.raises(SourceUnavailableError, match=r"127\.0\.0\.1:9 failed after 2 attempts.*connection refused"):
        search(BBOX, "2022", source=StacApiSource("http://127.0.0.1:9/", settings=Settings(http_retries=1,
                                                                                          http_backoff=0.01)))


def test_html_instead_of_json() -> None:
    server = RouteServer({("GET", "/"): lambda r: Response(body="<html>login</html>", content_type="text/html")})
    with server, pytest.raises(SourceError, match="answered HTML instead of JSON"):
        search(BBOX, "2022", source=server.url)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="max_cloud"):
        search(BBOX, "2022", source="earth-search", max_cloud=120)
    with pytest.raises(ConfigError, match="not a URL, a profile"):
        search(BBOX, "2022", source="no/such/catalog")


def test_static_item_collection_file(tmp_path: Path, sample_items: list[pystac.Item]) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(pystac.ItemCollection(sample_items[:2]).to_dict()))
    assert len(search(BBOX, "2020", source=path)) == 2
