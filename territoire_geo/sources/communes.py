"""Commune and EPCI boundaries from geo.api.gouv.fr (API Découpage administratif), cached.

A planner names a territory by INSEE commune codes or by the SIREN of an EPCI;
:func:`commune_boundaries` turns that into the communes' contours (EPSG:4326) and
:func:`communes_area` into one area in any CRS.

Requests (``{base}`` is :attr:`~territoire_geo.config.Settings.geo_api_url`, env
``TERRITOIRE_GEO_API_URL``, default ``https://geo.api.gouv.fr``)::

    GET {base}/communes/{code}?format=geojson&geometry=contour&fields=nom,code,codeDepartement,codeEpci,population
    GET {base}/epcis/{siren}/communes?format=geojson&geometry=contour&fields=…

What the answers look like, confirmed in the API's own source (``datagouv/api-geo``:
``server.js``, ``lib/helpers.js`` ``formatOne``, ``lib/communeHelpers.js``,
``build/communes.js``; contract in its ``definition.yml``):

- ``/communes/{code}`` with ``format=geojson`` answers **one GeoJSON Feature**
  ``{"type": "Feature", "properties": {...}, "geometry": {...}}`` — no ``id``, no
  ``crs`` member (coordinates are longitude/latitude, WGS84); ``geometry=contour``
  selects the contour (a Polygon or MultiPolygon; the default would be the
  ``centre`` Point). ``properties`` holds the requested ``fields`` that the commune
  has, in the order asked: ``codeEpci`` is absent for a commune in no EPCI.
- ``/epcis/{siren}/communes`` answers a **FeatureCollection**
  ``{"type": "FeatureCollection", "features": [...]}`` of the EPCI's current
  communes (type ``commune-actuelle``), each shaped as above.
- An unknown code is **HTTP 404** with the plain-text body ``Not Found``
  (``res.sendStatus(404)``), for a commune and for an EPCI alike.
- ``/communes/{code}`` looks the code up among current communes **and municipal
  arrondissements** (no type filter on that route): ``75101``, ``13201`` or ``69381``
  answer the arrondissement's own contour, ``75056``/``13055``/``69123`` the whole
  city. Old codes of merged communes and codes of communes déléguées are not in
  that collection and give 404.
- Corsican codes are alphanumeric (``2A004``, ``2B033``), ``codeDepartement`` is
  ``"2A"``/``"2B"``: codes are strings throughout, never numbers.
- A commune record may lack a contour (the ``contour`` key is only set when the
  IGN source has one): such a Feature has no ``geometry`` and is refused here.

Each answer is validated, then its bytes are written atomically (``.part`` then
rename) under ``<cache_dir>/geo_api/communes/<code>.geojson`` or
``<cache_dir>/geo_api/epcis/<siren>.geojson``; a later call reads the cache and never
touches the network, so a second run works offline and gives identical files
(``refresh=True`` fetches again). All HTTP goes through
:class:`~territoire_geo.sources._http.HttpClient` (bounded retries with back-off on
429/5xx and connection errors; 404 is the "unknown code" answer).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from shapely.geometry import shape

from territoire_geo._atomic import write_bytes
from territoire_geo._types import AOI, normalize_aoi
from territoire_geo.config import Settings
from territoire_geo.errors import (
    ConfigError,
    DataError,
    ExportError,
    NoDataFoundError,
    SourceError,
    SourceUnavailableError,
)
from territoire_geo.sources._http import HttpClient, redact_url

__all__ = [
    "DEFAULT_BASE_URL",
    "FIELDS",
    "boundary_files",
    "check_insee",
    "check_siren",
    "commune_aoi",
    "commune_boundaries",
    "communes_area",
    "parse_area_spec",
    "read_boundaries",
]

log = logging.getLogger(__name__)

#: geo.api.gouv.fr, API Découpage administratif.
DEFAULT_BASE_URL = "https://geo.api.gouv.fr"
#: Properties asked for each commune.
FIELDS = "nom,code,codeDepartement,codeEpci,population"
#: Columns of :func:`commune_boundaries`.
COLUMNS = ("code", "nom", "departement", "epci", "population")

_INSEE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_SIREN = re.compile(r"^\d{9}$")
_SPEC = re.compile(r"^\s*(insee|epci)\s*:\s*([0-9A-Za-z ,;]+?)\s*$", re.IGNORECASE)
_POLYGONS = ("Polygon", "MultiPolygon")


# ------------------------------------------------------------------ arguments
def check_insee(code: object) -> str:
    """An INSEE commune code as the API spells it (``2a004`` → ``2A004``, ``1004`` → ``01004``).

    Raises
    ------
    ConfigError
        If it is not 5 digits, or 2A/2B and 3 digits.
    """
    text = str(code).strip().upper()
    if text.isdigit() and len(text) < 5:
        text = text.zfill(5)  # a spreadsheet lost the leading zero
    if not _INSEE.match(text):
        raise ConfigError(f"INSEE code {code!r} is not valid; give 5 characters such as 30014, 01004 or 2A004")
    return text


def check_siren(siren: object) -> str:
    """The SIREN of an EPCI (9 digits).

    Raises
    ------
    ConfigError
        If it is not 9 digits.
    """
    text = str(siren).strip()
    if not _SIREN.match(text):
        raise ConfigError(f"EPCI code {siren!r} is not a SIREN; give its 9 digits, e.g. 200066918")
    return text


def parse_area_spec(text: str) -> tuple[list[str], str | None] | None:
    """``"insee:30014,30028"`` → ``(["30014", "30028"], None)``, ``"epci:200066918"`` → ``([], "200066918")``.

    Returns ``None`` when ``text`` is not of that form (a path or a bbox).

    Raises
    ------
    ConfigError
        If the prefix is there but a code is malformed.
    """
    match = _SPEC.match(text)
    if match is None:
        return None
    kind, body = match.group(1).lower(), match.group(2)
    parts = [p for p in re.split(r"[,;\s]+", body) if p]
    if not parts:
        raise ConfigError(f"{text!r} names no code; write insee:30014 or epci:200066918")
    if kind == "insee":
        return [check_insee(p) for p in parts], None
    if len(parts) != 1:
        raise ConfigError(f"{text!r}: give one EPCI (epci:200066918), or list communes with insee:")
    return [], check_siren(parts[0])


def commune_aoi(text: str, *, settings: Settings | None = None) -> AOI:
    """The union of the communes an ``insee:…``/``epci:…`` string names, as an AOI in EPSG:4326.

    Raises
    ------
    ConfigError
        If ``text`` is not of that form or a code is malformed.
    NoDataFoundError
        An unknown code.
    SourceUnavailableError
        The API is unreachable and a contour is not cached.
    """
    spec = parse_area_spec(text)
    if spec is None:
        raise ConfigError(f"{text!r} is not understood; write insee:30014, insee:30014,30028 or epci:200066918")
    codes, epci = spec
    frame = commune_boundaries(codes, epci=epci, settings=settings or Settings.from_env())
    return normalize_aoi(communes_area(frame).geometry.iloc[0])


# ------------------------------------------------------------------ cache and network (I/O)
def boundary_files(
    codes: Iterable[str | int] | str | None = None,
    *,
    epci: str | int | None = None,
    settings: Settings | None = None,
    base_url: str | None = None,
    refresh: bool = False,
) -> list[Path]:
    """The cached geo.api.gouv.fr answers for these communes and/or this EPCI, fetched when missing.

    Parameters
    ----------
    codes
        INSEE codes (a single code may be given as a string).
    epci
        SIREN of an EPCI: one file holds all its communes.
    settings
        Cache folder, HTTP timeout and retries, API address.
    base_url
        API address, overriding ``settings.geo_api_url``.
    refresh
        Fetch again even when cached.

    Returns
    -------
    list of Path
        One GeoJSON file per commune code (in the order given), then the EPCI's.

    Raises
    ------
    ConfigError
        Malformed code, or neither codes nor epci.
    NoDataFoundError
        Unknown code (HTTP 404), or a commune without contour.
    SourceUnavailableError
        The API is unreachable and the answer is not in the cache.
    SourceError
        An answer that is not the expected GeoJSON.
    """
    wanted, siren = _arguments(codes, epci)
    settings = settings or Settings.from_env()
    api = _Api(settings, base_url or settings.geo_api_url)
    try:
        files = [api.cached(f"communes/{code}", f"communes/{code}", f"commune {code}", refresh,
                            _commune_checker(code)) for code in wanted]
        if siren is not None:
            files.append(api.cached(f"epcis/{siren}/communes", f"epcis/{siren}", f"EPCI {siren}", refresh,
                                    _epci_checker(siren)))
    finally:
        api.close()
    return files


def commune_boundaries(
    codes: Iterable[str | int] | str | None = None,
    *,
    epci: str | int | None = None,
    settings: Settings | None = None,
    base_url: str | None = None,
    refresh: bool = False,
) -> gpd.GeoDataFrame:
    """Contours of communes (by INSEE code) and/or of the communes of an EPCI (by SIREN).

    Answers are cached (see the module docstring): the second call works offline.

    Parameters
    ----------
    codes, epci, settings, base_url, refresh
        As for :func:`boundary_files`.

    Returns
    -------
    GeoDataFrame
        One row per commune, columns ``code``, ``nom``, ``departement``, ``epci``
        (SIREN or None), ``population`` (or None), in EPSG:4326.

    Raises
    ------
    ConfigError, NoDataFoundError, SourceUnavailableError, SourceError
        As for :func:`boundary_files`.

    Examples
    --------
    >>> communes = commune_boundaries(["30014", "30028"])  # doctest: +SKIP
    >>> area = communes_area(communes, crs="EPSG:2154")  # doctest: +SKIP
    """
    return read_boundaries(boundary_files(codes, epci=epci, settings=settings, base_url=base_url,
                                          refresh=refresh))


class _Api:
    """geo.api.gouv.fr behind the package's HTTP client, with a file cache keyed by code."""

    def __init__(self, settings: Settings, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.folder = Path(settings.cache_dir) / "geo_api"
        self.settings = settings
        self._http: HttpClient | None = None

    def close(self) -> None:
        if self._http is not None:
            self._http.session.close()

    def cached(self, route: str, name: str, label: str, refresh: bool, check: Any) -> Path:
        """The cache file ``name`` of ``route``'s answer, fetched (and checked with ``check``) when missing."""
        target = self.folder / f"{name}.geojson"
        if target.is_file() and not refresh:
            try:
                check(json.loads(target.read_text(encoding="utf-8")), str(target))
                log.info("%s: boundary read from the cache %s", label, target)
                return target
            except (ValueError, SourceError) as exc:  # a damaged cache file is fetched again
                log.warning("%s: cache file %s is unusable (%s); fetching it again", label, target, exc)
        body = self.fetch(route, label, target)
        check(_parse(body, f"{self.base_url}/{route}"), f"{self.base_url}/{route}")
        _write_atomic(target, body)
        log.info("%s: boundary fetched from %s and cached in %s", label, redact_url(self.base_url), target)
        return target

    def fetch(self, route: str, label: str, target: Path) -> bytes:
        """The answer's bytes as received (JSON is UTF-8)."""
        url = f"{self.base_url}/{route}"
        if self._http is None:
            self._http = HttpClient(self.settings)
        params = {"format": "geojson", "geometry": "contour", "fields": FIELDS}
        try:
            response = self._http.request("GET", url, params=params, accept={404})
        except SourceUnavailableError as exc:
            raise SourceUnavailableError(
                f"{redact_url(self.base_url)} (API Découpage administratif) is unreachable and the boundary of "
                f"{label} is not in the cache ({target}); try again later, or give an AOI file instead"
            ) from exc
        with response:
            if response.status_code == 404:
                raise NoDataFoundError(_unknown(label))
            return response.content


def _unknown(label: str) -> str:
    kind, code = label.split(" ", 1)
    if kind == "EPCI":
        return (f"no EPCI with SIREN {code} on geo.api.gouv.fr; check the code (9 digits, e.g. 200066918: "
                "the SIREN of the intercommunalité, not a commune code)")
    return (f"no commune with INSEE code {code} on geo.api.gouv.fr; check the code (5 characters, e.g. 30014, "
            "2A004 in Corsica) — the old code of a merged or delegated commune is not served, use the new commune's")


def _write_atomic(target: Path, body: bytes) -> None:
    """Cache ``body`` (several processes may fetch the same code at once: each writes its own temporary)."""
    try:
        write_bytes(target, body, private=True)
    except ExportError as exc:
        raise ExportError(f"{exc} (the boundary cache); set TERRITOIRE_CACHE_DIR to a writable folder") from exc


# ------------------------------------------------------------------ answers (pure)
def _arguments(codes: Iterable[str | int] | str | None, epci: str | int | None) -> tuple[list[str], str | None]:
    if isinstance(codes, (str, int)):
        codes = [codes]
    wanted = list(dict.fromkeys(check_insee(c) for c in (codes or [])))
    siren = check_siren(epci) if epci is not None else None
    if not wanted and siren is None:
        raise ConfigError("give INSEE codes of communes (e.g. ['30014']) or the SIREN of an EPCI (epci=)")
    return wanted, siren


def _parse(body: bytes, where: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:  # UnicodeDecodeError included
        kind = "an HTML page" if body.lstrip().startswith(b"<") else "non-JSON text"
        raise SourceError(f"{redact_url(where)} answered {kind} instead of GeoJSON (maintenance page, or "
                          "TERRITOIRE_GEO_API_URL not pointing at geo.api.gouv.fr?); try again later") from exc


def _commune_checker(code: str) -> Any:
    def check(data: Any, where: str) -> None:
        if not isinstance(data, Mapping) or data.get("type") != "Feature":
            raise SourceError(f"{redact_url(where)} answered {_kind(data)} instead of one GeoJSON Feature; "
                              "check TERRITOIRE_GEO_API_URL points at geo.api.gouv.fr")
        _check_feature(data, where, expected=code)

    return check


def _epci_checker(siren: str) -> Any:
    def check(data: Any, where: str) -> None:
        if not isinstance(data, Mapping) or data.get("type") != "FeatureCollection" \
                or not isinstance(data.get("features"), list):
            raise SourceError(f"{redact_url(where)} answered {_kind(data)} instead of a GeoJSON "
                              "FeatureCollection; check TERRITOIRE_GEO_API_URL points at geo.api.gouv.fr")
        if not data["features"]:
            raise NoDataFoundError(f"EPCI {siren} has no commune on geo.api.gouv.fr; check the SIREN")
        for feature in data["features"]:
            _check_feature(feature, where, expected=None)

    return check


def _kind(data: Any) -> str:
    if isinstance(data, Mapping):
        return f"JSON of type {data.get('type')!r}"
    return f"a JSON {type(data).__name__}"


def _check_feature(feature: Any, where: str, expected: str | None) -> None:
    props = feature.get("properties") if isinstance(feature, Mapping) else None
    if not isinstance(props, Mapping) or not props.get("code"):
        raise SourceError(f"{redact_url(where)} answered a feature without properties.code; "
                          "check TERRITOIRE_GEO_API_URL points at geo.api.gouv.fr")
    code = str(props["code"])
    if expected is not None and code != expected:
        raise SourceError(f"{redact_url(where)} answered commune {code} when {expected} was asked; "
                          "check TERRITOIRE_GEO_API_URL")
    geometry = feature.get("geometry")
    if not geometry:
        raise NoDataFoundError(f"commune {code} ({props.get('nom') or '?'}) has no contour on geo.api.gouv.fr; "
                               "give an AOI file instead")
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind not in _POLYGONS:
        raise SourceError(f"{redact_url(where)} answered a {kind} for commune {code} instead of its contour "
                          "(geometry=contour ignored?); check TERRITOIRE_GEO_API_URL")


def read_boundaries(paths: Sequence[str | os.PathLike[str]]) -> gpd.GeoDataFrame:
    """Commune rows of cached geo.api.gouv.fr answers (Features or FeatureCollections), no network.

    Returns
    -------
    GeoDataFrame
        ``code``, ``nom``, ``departement``, ``epci``, ``population`` and the contour,
        in EPSG:4326; a commune met twice is kept once.

    Raises
    ------
    DataError
        A file that is not such an answer.
    """
    rows: list[dict[str, Any]] = []
    geoms = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read the commune boundary file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise DataError(f"{path} is not a GeoJSON Feature or FeatureCollection; delete it and fetch again")
        features = data.get("features") if data.get("type") == "FeatureCollection" else [data]
        for feature in sorted(features or [], key=lambda f: str((f.get("properties") or {}).get("code"))):
            props = feature.get("properties") or {}
            if not feature.get("geometry") or not props.get("code"):
                raise DataError(f"{path} holds a commune without code or contour; delete it and fetch again")
            rows.append(_row(props))
            geoms.append(shape(feature["geometry"]))
    frame = gpd.GeoDataFrame(rows, columns=list(COLUMNS), geometry=geoms, crs="EPSG:4326")
    return frame.drop_duplicates(subset="code").reset_index(drop=True)


def _row(props: Mapping[str, Any]) -> dict[str, Any]:
    population = props.get("population")
    return {"code": str(props["code"]), "nom": props.get("nom"),
            "departement": str(props["codeDepartement"]) if props.get("codeDepartement") else None,
            "epci": str(props["codeEpci"]) if props.get("codeEpci") else None,
            "population": int(population) if isinstance(population, (int, float)) else None}


def communes_area(frame: gpd.GeoDataFrame, crs: str | int | None = None) -> gpd.GeoDataFrame:
    """One row: the union of the communes (shared borders dissolved), reprojected to ``crs``.

    Pure computation on :func:`commune_boundaries` output; invalid contours are repaired.

    Parameters
    ----------
    frame
        Communes with a ``code`` column.
    crs
        Target CRS (``"EPSG:2154"``…); the frame's own when omitted.

    Returns
    -------
    GeoDataFrame
        Columns ``codes`` (comma-separated, in row order) and the geometry.

    Raises
    ------
    DataError
        If there is no commune.
    """
    if frame.empty:
        raise DataError("no commune to make an area of; give at least one INSEE code")
    target = frame if crs is None else frame.to_crs(crs)
    geoms = [g if g.is_valid else shapely.make_valid(g) for g in target.geometry]
    union = shapely.union_all(geoms)
    return gpd.GeoDataFrame({"codes": [",".join(map(str, frame["code"]))]}, geometry=[union], crs=target.crs)
