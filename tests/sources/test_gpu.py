"""API Carto GPU client against a loopback server answering the real response shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from _gpu_fake import GpuFake, empty, real, tiled_zones
from _servers import Request, Response, free_port
from shapely.geometry import shape

from territoire_geo.config import Settings
from territoire_geo.errors import ConfigError, NoDataFoundError, SourceError, SourceUnavailableError
from territoire_geo.sources import gpu
from territoire_geo.workflows import fetch_zoning

FAST = Settings(http_retries=2, http_backoff=0.01)


@pytest.fixture
def fake() -> Iterator[GpuFake]:
    """A fresh loopback API Carto GPU module."""
    with GpuFake() as server:
        yield server


def _town(insee: str, name: str, *, is_rnu: bool = False) -> list[dict[str, Any]]:
    features = real("municipality")["features"]
    features[0]["properties"].update(insee=insee, name=name, is_rnu=is_rnu)
    return features


def _document(insee: str, du_type: str = "PLU") -> list[dict[str, Any]]:
    features = real("document")["features"]
    features[0]["properties"].update(grid_name=insee, name=f"{insee}_{du_type}_20200101",
                                     partition=f"DU_{insee}", du_type=du_type)  # fmt: skip
    return features


def _fetch(fake: GpuFake, **kwargs: Any) -> Any:
    return fetch_zoning(base_url=fake.base_url, settings=FAST, **kwargs)


# --------------------------------------------------------------- discovery
def test_insee_inside_a_plui_finds_the_partition_by_point_with_real_answers(fake: GpuFake) -> None:
    fake.data[("municipality", "93014")] = real("municipality")["features"]
    fake.data[("document", "geom")] = real("document")["features"]
    fake.data[("zone-urba", "DU_26321")] = real("zone-urba")["features"]
    plu = _fetch(fake, insee="93014")
    point = shape(json.loads(fake.calls("document")[1].query["geom"][0]))
    assert point.geom_type == "Point"
    assert shape(real("municipality")["features"][0]["geometry"]).contains(point)
    assert [r.query.get("partition") for r in fake.calls("document")] == [["DU_93014"], None]
    for endpoint in ("zone-urba", "prescription-surf", "info-pct"):
        assert fake.calls(endpoint)[0].query["partition"] == ["DU_26321"]
    zones = plu.zones
    assert zones.crs.to_epsg() == 2154 and plu.cnig_version == "apicarto"
    assert {"LIBELLE", "LIBELONG", "TYPEZONE", "IDURBA", "LIB_IDZONE", "GID", "PARTITION"} <= set(zones.columns)
    row = zones.iloc[0]
    assert (row["TYPEZONE"], row["DATVALID"], row["IDURBA"]) == ("N", "20210421", "17345_PLU_20220209")
    assert row["NOMFIC"] == "17345_reglement_20220209.pdf#page=24" and row["INSEE"] is None
    assert 400_000 < zones.total_bounds[0] < 450_000  # Lambert-93 eastings of Charente-Maritime
    doc = plu.doc_urba.iloc[0]
    assert (doc["IDURBA"], doc["TYPEDOC"], doc["DATAPPRO"]) == ("26321_PLU_20210218", "PLU", "20210218")
    assert any("DU_26321" in line for line in plu.repairs)
    assert plu.prescriptions_surf is None and "DU_26321" in plu.source


def test_insee_with_its_own_plu_follows_pages_and_normalises(fake: GpuFake) -> None:
    fake.data[("municipality", "01004")] = _town("01004", "AMBERIEU-EN-BUGEY")
    fake.data[("document", "DU_01004")] = _document("01004")
    fake.data[("zone-urba", "DU_01004")] = tiled_zones(2350)
    messages: list[str] = []
    plu = _fetch(fake, insee=1004, progress=messages.append)  # a spreadsheet lost the leading zero
    assert fake.calls("municipality")[0].query["insee"] == ["01004"]
    assert fake.starts("zone-urba") == [0, 1000, 2000]
    assert all(r.query["_limit"] == ["1000"] for r in fake.calls("zone-urba"))
    assert len(fake.calls("document")) == 1  # the discovery answer is reused for DOC_URBA
    zones = plu.zones
    assert len(zones) == 2350 and zones["GID"].is_unique
    assert zones.crs.to_epsg() == 2154
    assert set(zones["INSEE"]) == {"01004"} and set(zones["DESTDOMI"]) == {"07"}
    assert zones["TYPEZONE"].value_counts().to_dict() == {"U": 470, "AUc": 470, "AUs": 470, "A": 470, "N": 470}
    assert not any(c.islower() for c in zones.columns if c != "geometry")
    assert plu.doc_urba["IDURBA"].tolist() == ["01004_PLU_20200101"]
    assert "zone-urba: 2350/2350 features" in messages
    assert not plu.validate().blocking


def test_partition_is_fetched_directly(fake: GpuFake) -> None:
    fake.data[("zone-urba", "DU_01004")] = tiled_zones(3)
    plu = _fetch(fake, partition="du_01004", layers=("zone-urba",))
    assert len(plu.zones) == 3 and not fake.calls("municipality")
    assert fake.calls("zone-urba")[0].query["partition"] == ["DU_01004"]


def test_aoi_sends_a_lon_lat_geometry(fake: GpuFake) -> None:
    fake.data[("zone-urba", "geom")] = tiled_zones(12)
    plu = _fetch(fake, aoi=(4.33, 43.98, 4.34, 43.99), layers=("zone-urba", "document"))
    sent = shape(json.loads(fake.calls("zone-urba")[0].query["geom"][0]))
    assert sent.equals(shapely.box(4.33, 43.98, 4.34, 43.99))
    assert "geom" in fake.calls("document")[0].query and not fake.calls("municipality")
    assert len(plu.zones) == 12 and plu.doc_urba is None


def test_fetch_features_returns_raw_api_columns(fake: GpuFake) -> None:
    fake.data[("zone-urba", "DU_17345")] = real("zone-urba")["features"]
    frame = gpu.fetch_features("zone-urba", partition="DU_17345", base_url=fake.base_url, settings=FAST)
    assert frame.crs.to_epsg() == 4326 and frame.loc[0, "libelle"] == "N" and "bbox" not in frame.columns


def test_missing_and_extra_keys_are_tolerated(fake: GpuFake) -> None:
    features = tiled_zones(2)
    del features[0]["properties"]["libelong"], features[0]["properties"]["idzone"]
    features[1]["properties"]["gpu_status"] = "document.production"
    del features[1]["id"]
    fake.data[("zone-urba", "DU_01004")] = features
    plu = _fetch(fake, partition="DU_01004", layers=("zone-urba",))
    assert plu.zones["LIBELONG"].isna().tolist() == [True, False]
    assert plu.zones["GPU_STATUS"].tolist() == [None, "document.production"]


# ------------------------------------------------------------------ errors
def test_a_503_then_success_is_retried(fake: GpuFake) -> None:
    fake.data[("zone-urba", "DU_01004")] = tiled_zones(5)
    answers = iter([Response(503, {"message": "busy"})])
    fake.override["zone-urba"] = lambda r: next(answers, None) or Response(body=fake.page("zone-urba", r))
    plu = _fetch(fake, partition="DU_01004", layers=("zone-urba",))
    assert len(plu.zones) == 5 and len(fake.calls("zone-urba")) == 2


def test_a_permanent_503_ends_unavailable_after_bounded_attempts(fake: GpuFake) -> None:
    fake.override["municipality"] = lambda r: Response(503, {"message": "maintenance"})
    with pytest.raises(SourceUnavailableError, match="Géoportail de l'Urbanisme API is unreachable"):
        _fetch(fake, insee="30014")
    assert len(fake.calls("municipality")) == 3  # 1 + http_retries


def test_a_closed_port_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/gpu"
    with pytest.raises(SourceUnavailableError, match="try again later or use the GPU archive"):
        fetch_zoning(partition="DU_30014", base_url=url, settings=FAST)


def test_html_is_a_source_error_without_retry(fake: GpuFake) -> None:
    page = "<html><body><h1>Maintenance</h1></body></html>"
    fake.override["zone-urba"] = lambda r: Response(200, page, "text/html")
    with pytest.raises(SourceError, match="HTML page instead of GeoJSON") as info:
        _fetch(fake, partition="DU_30014")
    assert not isinstance(info.value, SourceUnavailableError)
    assert len(fake.calls("zone-urba")) == 1


def test_json_that_is_not_geojson_is_a_source_error(fake: GpuFake) -> None:
    fake.override["zone-urba"] = lambda r: Response(body={"code": 200, "message": "ok"})
    with pytest.raises(SourceError, match="not a GeoJSON FeatureCollection"):
        _fetch(fake, partition="DU_30014")


def test_a_400_is_not_retried(fake: GpuFake) -> None:
    fake.override["zone-urba"] = lambda r: Response(400, {"message": "bad geom"})
    with pytest.raises(SourceError, match="HTTP 400"):
        _fetch(fake, partition="DU_30014")
    assert len(fake.calls("zone-urba")) == 1


def test_rnu_commune_has_no_plu(fake: GpuFake) -> None:
    fake.data[("municipality", "93014")] = _town("93014", "CLICHY-SOUS-BOIS", is_rnu=True)
    with pytest.raises(NoDataFoundError, match="commune under RNU: no PLU"):
        _fetch(fake, insee="93014")
    assert not fake.calls("zone-urba")


def test_unknown_commune_and_empty_zoning_are_no_data(fake: GpuFake) -> None:
    with pytest.raises(NoDataFoundError, match="no commune with INSEE code 99999"):
        _fetch(fake, insee="99999")
    with pytest.raises(NoDataFoundError, match=r"no ZONE_URBA feature on the GPU for DU_30014.*DU_<SIREN>"):
        _fetch(fake, partition="DU_30014")
    fake.data[("document", "DU_30014")] = _document("30014", "CC")
    with pytest.raises(NoDataFoundError, match="carte communale"):
        _fetch(fake, partition="DU_30014")


def test_commune_without_any_document_is_no_data(fake: GpuFake) -> None:
    fake.data[("municipality", "93014")] = real("municipality")["features"]
    with pytest.raises(NoDataFoundError, match=r"no planning document of commune 93014 \(CLICHY-SOUS-BOIS\)"):
        _fetch(fake, insee="93014")


def test_a_server_ignoring_start_is_detected(fake: GpuFake) -> None:
    fake.data[("zone-urba", "DU_01004")] = tiled_zones(1500)
    fake.honour_start = False
    with pytest.raises(SourceError, match="ignores paging"):
        _fetch(fake, partition="DU_01004")
    assert fake.starts("zone-urba") == [0, 1000]


def test_short_pages_are_followed_while_total_features_says_more(fake: GpuFake) -> None:
    features = tiled_zones(1200)

    def capped(request: Request) -> Response:
        start = int(request.query["_start"][0])
        body = empty()
        body.update(features=features[start : start + 500], totalFeatures=len(features))
        return Response(body=body)

    fake.override["zone-urba"] = capped
    plu = _fetch(fake, partition="DU_01004", layers=("zone-urba",))
    assert len(plu.zones) == 1200 and fake.starts("zone-urba") == [0, 500, 1000]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "none given"),
        ({"insee": "30014", "partition": "DU_30014"}, "insee, partition given"),
        ({"partition": "30014"}, "DU_30014"),
        ({"insee": "3001A"}, "not valid"),
        ({"partition": "DU_30014", "layers": ("document",)}, "zone-urba"),
        ({"partition": "DU_30014", "layers": ("zone-urba", "zones")}, "unknown GPU layer"),
    ],
)
def test_bad_arguments_are_config_errors_before_any_request(fake: GpuFake, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _fetch(fake, **kwargs)
    assert not fake.server.requests
