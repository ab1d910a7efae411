"""Commune and EPCI boundaries from geo.api.gouv.fr: client, cache, AOI forms, CLI and recipes.

A loopback server answers the real response shapes (``tests/data/geo_api/README.md``):
one Feature per commune, a FeatureCollection per EPCI, ``404 Not Found`` for an
unknown code; the geometry is the contour only when ``geometry=contour`` is asked.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from _servers import Request, Response, RouteServer, free_port
from shapely.geometry import box, mapping, shape
from territoire_geo_cli.main import app
from typer.testing import CliRunner

from territoire_geo._types import AOI
from territoire_geo.config import Settings
from territoire_geo.errors import (
    ConfigError,
    ExportError,
    NoDataFoundError,
    RecipeError,
    SourceError,
    SourceUnavailableError,
)
from territoire_geo.recipes import parse_recipe
from territoire_geo.recipes.tools import run_file
from territoire_geo.sources import communes, resolve_aoi

DATA = Path(__file__).parents[1] / "data" / "geo_api"
EPCI = "200066918"
runner = CliRunner()


def _answer(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _corsica() -> dict[str, Any]:
    """Shape-only answer for a Corsican code (alphanumeric code and département)."""
    return {"type": "Feature", "properties": {"nom": "Ajaccio", "code": "2A004", "codeDepartement": "2A",
                                              "population": 70000},
            "geometry": mapping(box(8.60, 41.90, 8.78, 41.99))}


class GeoApiFake:
    """``/communes/{code}`` and ``/epcis/{siren}/communes`` as geo.api.gouv.fr answers them."""

    def __init__(self) -> None:
        self.bodies: dict[str, dict[str, Any]] = {
            "/communes/30014": _answer("commune_30014.geojson"),
            "/communes/30028": _answer("commune_30028.geojson"),
            "/communes/2A004": _corsica(),
            f"/epcis/{EPCI}/communes": _answer(f"epci_{EPCI}_communes.geojson"),
        }
        self.server = RouteServer()
        for path in [*self.bodies, "/communes/99999", "/epcis/999999999/communes"]:
            self.server.routes[("GET", path)] = self.handle

    def handle(self, request: Request) -> Response:
        body = self.bodies.get(request.path)
        if body is None:  # Express: res.sendStatus(404)
            return Response(404, "Not Found", "text/plain; charset=utf-8")
        body = copy.deepcopy(body)
        if request.query.get("geometry") != ["contour"]:  # the API's default geometry is the centre
            for feature in body.get("features", [body]):
                feature["geometry"] = mapping(shape(feature["geometry"]).representative_point())
        return Response(200, json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                        "application/json; charset=utf-8")

    def calls(self, path: str) -> list[Request]:
        return [r for r in self.server.requests if r.path == path]

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> GeoApiFake:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)


@pytest.fixture
def api() -> Iterator[GeoApiFake]:
    with GeoApiFake() as fake:
        yield fake


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _settings(url: str, cache: Path) -> Settings:
    return Settings(cache_dir=cache, geo_api_url=url, http_retries=1, http_backoff=0.01)


def _down() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def _env(monkeypatch: pytest.MonkeyPatch, url: str, cache: Path) -> None:
    for key, value in {"GEO_API_URL": url, "CACHE_DIR": str(cache), "HTTP_RETRIES": "1",
                       "HTTP_BACKOFF": "0.01"}.items():
        monkeypatch.setenv(f"TERRITOIRE_{key}", value)


# ------------------------------------------------------------------ library
def test_one_commune_is_fetched_with_the_documented_query_and_cached_byte_for_byte(
        api: GeoApiFake, cache: Path) -> None:
    frame = communes.commune_boundaries("30014", settings=_settings(api.url, cache))
    assert list(frame.columns) == ["code", "nom", "departement", "epci", "population", "geometry"]
    row = frame.iloc[0]
    assert (row["code"], row["nom"], row["departement"], row["epci"]) == (
        "30014", "Arpaillargues-et-Aureilhac", "30", EPCI)
    assert frame.crs.to_epsg() == 4326 and row.geometry.geom_type == "Polygon"
    assert frame.to_crs(2154).area.iloc[0] / 1e4 == pytest.approx(1368.4, rel=1e-3)
    (request,) = api.calls("/communes/30014")
    assert request.query == {"format": ["geojson"], "geometry": ["contour"],
                             "fields": ["nom,code,codeDepartement,codeEpci,population"]}
    cached = cache / "geo_api" / "communes" / "30014.geojson"
    served = api.handle(request).encoded()
    assert cached.read_bytes() == served and not list(cached.parent.glob("*.part"))


def test_several_communes_dissolve_into_one_area(api: GeoApiFake, cache: Path) -> None:
    settings = _settings(api.url, cache)
    frame = communes.commune_boundaries(["30028", 30014, "30014"], settings=settings)
    assert list(frame["code"]) == ["30028", "30014"] and len(api.calls("/communes/30014")) == 1
    area = communes.communes_area(frame, crs="EPSG:2154")
    assert len(area) == 1 and area.crs.to_epsg() == 2154 and area["codes"].iloc[0] == "30028,30014"
    assert area.geometry.iloc[0].geom_type == "Polygon"  # the shared border is dissolved
    assert area.area.iloc[0] == pytest.approx(frame.to_crs(2154).area.sum(), rel=1e-4)


def test_an_epci_gives_its_communes_in_one_request(api: GeoApiFake, cache: Path) -> None:
    frame = communes.commune_boundaries(epci=EPCI, settings=_settings(api.url, cache))
    assert list(frame["code"]) == ["30014", "30028"] and set(frame["epci"]) == {EPCI}
    assert len(api.server.requests) == 1
    assert (cache / "geo_api" / "epcis" / f"{EPCI}.geojson").is_file()
    both = communes.commune_boundaries(["30014"], epci=EPCI, settings=_settings(api.url, cache))
    assert list(both["code"]) == ["30014", "30028"]  # a commune met twice is kept once


def test_corsican_codes_are_text(api: GeoApiFake, cache: Path) -> None:
    frame = communes.commune_boundaries("2a004", settings=_settings(api.url, cache))
    assert api.calls("/communes/2A004") and frame.iloc[0]["departement"] == "2A"
    assert communes.check_insee(1004) == "01004"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"codes": "99999"}, "no commune with INSEE code 99999 on geo.api.gouv.fr; check the code"),
    ({"epci": "999999999"}, "no EPCI with SIREN 999999999 on geo.api.gouv.fr; check the code"),
])
def test_an_unknown_code_is_one_line_without_retry(api: GeoApiFake, cache: Path, kwargs: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(NoDataFoundError, match=message) as caught:
        communes.commune_boundaries(settings=_settings(api.url, cache), **kwargs)
    assert "\n" not in str(caught.value) and len(api.server.requests) == 1
    assert not cache.exists() or not list(cache.rglob("*.geojson"))


@pytest.mark.parametrize(("codes", "epci", "match"), [
    ("300145", None, "INSEE code '300145' is not valid"), ("2C004", None, "not valid"),
    (None, "12345", "not a SIREN"), (None, None, "give INSEE codes"),
])
def test_malformed_codes_are_config_errors(codes: Any, epci: Any, match: str, cache: Path) -> None:
    with pytest.raises(ConfigError, match=match):
        communes.commune_boundaries(codes, epci=epci, settings=_settings(_down(), cache))


def test_server_down_without_cache_says_retry_or_give_an_aoi(cache: Path) -> None:
    with pytest.raises(SourceUnavailableError) as caught:
        communes.commune_boundaries(["30014"], settings=_settings(_down(), cache))
    text = str(caught.value)
    assert "is unreachable and the boundary of commune 30014 is not in the cache" in text
    assert "try again later, or give an AOI file instead" in text and "\n" not in text


def test_the_cache_answers_offline_identically(cache: Path) -> None:
    with GeoApiFake() as fake:
        first = communes.commune_boundaries(["30014", "30028"], epci=EPCI, settings=_settings(fake.url, cache))
        files = sorted(cache.rglob("*.geojson"))
        digests = [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    again = communes.commune_boundaries(["30014", "30028"], epci=EPCI, settings=_settings(fake.url, cache))
    assert again.to_wkb().equals(first.to_wkb()) and len(files) == 3
    assert [hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(cache.rglob("*.geojson"))] == digests


def test_a_damaged_cache_file_is_fetched_again(api: GeoApiFake, cache: Path) -> None:
    settings = _settings(api.url, cache)
    communes.commune_boundaries("30014", settings=settings)
    target = cache / "geo_api" / "communes" / "30014.geojson"
    target.write_text('{"type": "Feat')
    communes.commune_boundaries("30014", settings=settings)
    assert len(api.calls("/communes/30014")) == 2 and json.loads(target.read_text())["type"] == "Feature"


def test_an_unwritable_cache_is_an_export_error(api: GeoApiFake, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="set TERRITOIRE_CACHE_DIR to a writable folder"):
        communes.commune_boundaries("30014", settings=_settings(api.url, blocker))


def test_transient_errors_are_retried(api: GeoApiFake, cache: Path) -> None:
    failures = iter([Response(503, "busy"), Response(502, "bad gateway")])
    api.server.routes[("GET", "/communes/30014")] = lambda r: next(failures, None) or api.handle(r)
    settings = Settings(cache_dir=cache, geo_api_url=api.url, http_retries=2, http_backoff=0.01)
    assert communes.commune_boundaries("30014", settings=settings).iloc[0]["code"] == "30014"
    assert len(api.calls("/communes/30014")) == 3


@pytest.mark.parametrize(("answer", "error", "match"), [
    (Response(200, "<html><h1>Maintenance</h1></html>", "text/html"), SourceError, "answered an HTML page"),
    (Response(200, {"type": "FeatureCollection", "features": []}), SourceError, "instead of one GeoJSON Feature"),
    (Response(200, {"type": "Feature", "properties": {"code": "30014", "nom": "A"},
                    "geometry": {"type": "Point", "coordinates": [4.36, 44.0]}}), SourceError, "a Point for commune"),
    (Response(200, {"type": "Feature", "properties": {"code": "30014", "nom": "A"}}), NoDataFoundError,
     r"commune 30014 \(A\) has no contour"),
    (Response(200, {"type": "Feature", "properties": {"code": "30028"}, "geometry": None}), SourceError,
     "answered commune 30028 when 30014 was asked"),
])
def test_unexpected_answers_are_refused_and_never_cached(api: GeoApiFake, cache: Path, answer: Response,
                                                         error: type[Exception], match: str) -> None:
    api.server.routes[("GET", "/communes/30014")] = lambda r: answer
    with pytest.raises(error, match=match):
        communes.commune_boundaries("30014", settings=_settings(api.url, cache))
    assert not list(cache.rglob("*.geojson"))


# ------------------------------------------------------------------ AOI forms
@pytest.mark.parametrize(("text", "codes", "epci"), [
    ("insee:30014", ["30014"], None), ("INSEE: 30014", ["30014"], None),
    ("insee:30014,30028", ["30014", "30028"], None), ("epci:200066918", [], EPCI),
])
def test_the_aoi_normaliser_accepts_communes_by_code(api: GeoApiFake, cache: Path, text: str, codes: list[str],
                                                     epci: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, api.url, cache)
    aoi = resolve_aoi(text)
    assert isinstance(aoi, AOI) and aoi.crs.to_epsg() == 4326
    frame = communes.commune_boundaries(codes, epci=epci, settings=_settings(api.url, cache))
    assert shapely.equals_exact(aoi.geometry, communes.communes_area(frame).geometry.iloc[0], tolerance=1e-9)
    assert len(api.server.requests) == max(len(codes), 1)  # the second call was served by the cache


@pytest.mark.parametrize("text", ["insee:300145", "insee:", "epci:200066918,200066919", "insee:30014/x"])
def test_malformed_commune_aois_are_config_errors(text: str, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, _down(), cache)
    with pytest.raises(ConfigError):
        resolve_aoi(text)


# ------------------------------------------------------------------ CLI
def test_cli_search_by_commune_finds_the_sample_imagery(api: GeoApiFake, cache: Path, samples: Path,
                                                        plu_shp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, api.url, cache)
    by_code = runner.invoke(app, ["search", "-s", str(samples / "stac"), "-a", "insee:30014", "-p", "2020/2023",
                                  "-c", "sentinel-2-l2a", "--json"])
    assert by_code.exit_code == 0, by_code.output
    by_file = runner.invoke(app, ["search", "-s", str(samples / "stac"), "-a", str(plu_shp), "-p", "2020/2023",
                                  "-c", "sentinel-2-l2a", "--json"])
    assert [r["id"] for r in json.loads(by_code.stdout)] == [r["id"] for r in json.loads(by_file.stdout)]
    assert len(json.loads(by_code.stdout)) == 12
    helped = runner.invoke(app, ["search", "--help"], terminal_width=300)
    assert "insee:30014" in helped.output and "epci:200066918" in helped.output


@pytest.mark.parametrize(("aoi", "up", "text"), [
    ("insee:99999", True, "no commune with INSEE code 99999"),
    ("epci:999999999", True, "no EPCI with SIREN 999999999"),
    ("insee:30014", False, "is not in the cache"),
])
def test_cli_errors_are_one_line_with_exit_3(api: GeoApiFake, cache: Path, samples: Path, aoi: str, up: bool,
                                             text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, api.url if up else _down(), cache)
    result = runner.invoke(app, ["search", "-s", str(samples / "stac"), "-a", aoi, "-p", "2022"],
                           terminal_width=400)
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0]


def test_cli_malformed_code_is_exit_2(cache: Path, samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, _down(), cache)
    result = runner.invoke(app, ["fetch", "-s", str(samples / "stac"), "-a", "insee:300145", "-p", "2022"],
                           terminal_width=400)
    assert result.exit_code == 2 and "INSEE code '300145' is not valid" in result.output


# ------------------------------------------------------------------ recipes
RECIPE = """\
name: par-commune
territory:
  insee: [30014]
imagery:
  source: {stac}
  max_cloud: 60
periods:
  before: 2020-01-01/2021-12-31
  after: 2022-01-01/2023-12-31
indices: [ndvi]
output: {out}
"""


def test_territory_needs_an_area_and_insee_alone_is_one() -> None:
    with pytest.raises(RecipeError, match=r"give territory\.plu, territory\.aoi, territory\.insee or territory\.epci"):
        parse_recipe("name: x\nterritory:\n  crs: EPSG:2154\n")
    assert parse_recipe("name: x\nterritory:\n  insee: [30014]\n").territory.from_communes
    assert parse_recipe("name: x\nterritory:\n  epci: 200066918\n").territory.epci == EPCI
    labelled = parse_recipe("name: x\nterritory:\n  aoi: a.gpkg\n  insee: ['30014']\n").territory
    assert labelled.insee == ["30014"] and not labelled.from_communes
    with pytest.raises(RecipeError, match=r"territory\.epci"):
        parse_recipe("name: x\nterritory:\n  epci: '1234'\n")


def test_recipe_with_only_insee_runs_records_the_boundary_and_reruns_offline(
        tmp_path: Path, samples: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = tmp_path / "r.yaml"
    out = tmp_path / "run"
    recipe.write_text(RECIPE.format(stac=samples / "stac", out=out), encoding="utf-8")
    validated = runner.invoke(app, ["recipe", "validate", str(recipe)])  # no network needed to validate
    assert validated.exit_code == 0, validated.output
    with GeoApiFake() as fake:
        _env(monkeypatch, fake.url, cache)
        first = run_file(recipe)
        assert len(fake.server.requests) == 1
    assert first.computed_steps[:4] == ("zoning", "imagery", "composites", "change")
    assert first.summary["new_artificial_ha"] == pytest.approx(2.54, rel=0.15)  # the planted change
    manifest = json.loads((out / "manifest.json").read_text())
    boundary = cache / "geo_api" / "communes" / "30014.geojson"
    (entry,) = manifest["inputs"]
    assert entry["role"] == "commune:30014" and entry["path"] == str(boundary)
    assert entry["sha256"] == hashlib.sha256(boundary.read_bytes()).hexdigest()
    aoi = gpd.read_parquet(next((out / ".cache").glob("zoning-*")) / "aoi.parquet")
    assert aoi.crs.to_epsg() == 2154 and aoi.area.iloc[0] / 1e4 == pytest.approx(1368.4, rel=1e-3)

    _env(monkeypatch, _down(), cache)  # the API is gone: the cached contour is enough
    again = run_file(recipe, overwrite=True)
    assert again.computed_steps == ()
    rerun = json.loads((out / "manifest.json").read_text())
    assert rerun["inputs"] == manifest["inputs"]
    assert [s["key"] for s in rerun["steps"]] == [s["key"] for s in manifest["steps"]]
    assert {o["path"]: o["sha256"] for o in rerun["outputs"]} == {o["path"]: o["sha256"] for o in manifest["outputs"]}

    boundary.unlink()  # no cache and no API: one clear error before anything is computed
    with pytest.raises(SourceUnavailableError, match="give an AOI file instead"):
        run_file(recipe, overwrite=True)
