"""Géoportail de l'Urbanisme (GPU) through IGN's API Carto: PLU/PLUi zoning by commune, partition or area.

:func:`fetch_tables` finds the planning document of a commune (``municipality?insee=``,
then ``document?partition=`` or ``document?geom=``) and downloads every requested layer
page by page (``_start``/``_limit=1000``, the page size the server enforces), as the API
spells it, one frame per CNIG table. :func:`territoire_geo.workflows.fetch_zoning` hands
them to :func:`territoire_geo.planning.zoning.read`, so that a PLU fetched from the GPU
is a :class:`~territoire_geo.planning.zoning.ZoningSet` with upper-case CNIG fields,
string codes and Lambert-93 geometries, exactly like a GPU archive read from disk.

API Carto answers lower-case GeoJSON in EPSG:4326 whose keys drift between versions:
properties are parsed by name and missing or extra keys are tolerated. All HTTP goes
through :class:`~territoire_geo.sources._http.HttpClient` (bounded retries with
back-off on 429/5xx and connection errors, none on other 4xx).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import mapping, shape

from territoire_geo._types import AOILike, normalize_aoi
from territoire_geo.config import Settings
from territoire_geo.errors import ConfigError, NoDataFoundError, SourceError, SourceUnavailableError
from territoire_geo.sources._http import HttpClient, redact_url

__all__ = ["DEFAULT_BASE_URL", "LAYERS", "PAGE_SIZE", "GpuTables", "fetch_features", "fetch_tables", "find_partition"]

log = logging.getLogger(__name__)

#: API Carto GPU module (IGN).
DEFAULT_BASE_URL = "https://apicarto.ign.fr/api/gpu"
#: Features per page; API Carto forces ``_limit=1000`` on the GPU endpoints.
PAGE_SIZE = 1000
#: Endpoints fetched by default (``zone-urba`` is mandatory).
LAYERS: tuple[str, ...] = (
    "zone-urba", "prescription-surf", "prescription-lin", "prescription-pct",
    "info-surf", "info-lin", "info-pct", "document",
)  # fmt: skip
_TABLES = {
    "zone-urba": "ZONE_URBA",
    "prescription-surf": "PRESCRIPTION_SURF",
    "prescription-lin": "PRESCRIPTION_LIN",
    "prescription-pct": "PRESCRIPTION_PCT",
    "info-surf": "INFO_SURF",
    "info-lin": "INFO_LIN",
    "info-pct": "INFO_PCT",
    "document": "DOC_URBA",
}
_MAX_FEATURES = 500_000
_MAX_GEOM_CHARS = 4000
_ARCHIVE = "https://www.geoportail-urbanisme.gouv.fr/api/document/download-by-partition/"
_UNREACHABLE = "the Géoportail de l'Urbanisme API is unreachable; try again later or use the GPU archive"
_INSEE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
_PARTITION = re.compile(r"^(?:DU|PSMV)_[0-9A-Z]+$")

Progress = Callable[[str], None]


@dataclass
class _Api:
    """Pages through API Carto GPU endpoints with the package's HTTP client."""

    base_url: str
    http: HttpClient
    progress: Progress | None = None
    crs: CRS = field(default_factory=lambda: CRS.from_epsg(4326))

    def __enter__(self) -> _Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.session.close()

    def say(self, message: str) -> None:
        log.info(message)
        if self.progress is not None:
            self.progress(message)

    def page(self, endpoint: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One answer of ``endpoint``, checked to be a GeoJSON FeatureCollection."""
        url = f"{self.base_url}/{endpoint}"
        try:
            response = self.http.request("GET", url, params=dict(params))
        except SourceUnavailableError as exc:
            raise SourceUnavailableError(f"{_UNREACHABLE} ({_archive_hint(params)}). Detail: {exc}") from exc
        with response:
            return _feature_collection(response.text, response.headers.get("Content-Type", ""), url)

    def collect(self, endpoint: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every feature of ``endpoint`` for ``params``, following ``_start``/``_limit`` pages."""
        features: list[dict[str, Any]] = []
        seen: set[str] = set()
        start = 0
        while True:
            page = self.page(endpoint, {**params, "_start": start, "_limit": PAGE_SIZE})
            if start == 0:
                self.crs = _collection_crs(page) or self.crs
            batch = [f for f in page["features"] if isinstance(f, Mapping)]
            fresh = _new_features(batch, seen, endpoint, start)
            features += fresh
            total = _as_int(page.get("totalFeatures"))
            self.say(f"{endpoint}: {len(features)}{f'/{total}' if total else ''} features")
            if not batch or _last_page(len(batch), len(features), total):
                return features
            start += len(batch)
            if start >= _MAX_FEATURES:
                raise SourceError(
                    f"{endpoint}: more than {_MAX_FEATURES:,} features; use the GPU archive or WFS"
                )


def _feature_collection(text: str, ctype: str, url: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        kind = "an HTML page" if "html" in ctype.lower() or text.lstrip().startswith("<") else "non-JSON text"
        raise SourceError(
            f"{redact_url(url)} answered {kind} instead of GeoJSON (maintenance page or wrong --base-url?); "
            "check the address and try again later"
        ) from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("features"), list):
        raise SourceError(
            f"{redact_url(url)} answered JSON that is not a GeoJSON FeatureCollection "
            f"(keys: {', '.join(map(str, data)) if isinstance(data, Mapping) else type(data).__name__}); "
            "check --base-url points at the API Carto GPU module (…/api/gpu)"
        )
    return dict(data)


def _collection_crs(page: Mapping[str, Any]) -> CRS | None:
    crs = page.get("crs")
    props = crs.get("properties") if isinstance(crs, Mapping) else None
    if not isinstance(props, Mapping):
        return None
    code = props.get("code") or props.get("name")
    if code is None:
        return None
    text = str(code)
    try:
        return CRS.from_user_input(f"EPSG:{text}" if text.isdigit() else text)
    except Exception:  # an unreadable CRS block: GeoJSON defaults to WGS84
        log.warning("unreadable CRS %r in the API answer; EPSG:4326 assumed", code)
        return None


def _feature_key(feature: Mapping[str, Any]) -> str:
    props = feature.get("properties") or {}
    key = feature.get("id") or (props.get("gid") if isinstance(props, Mapping) else None)
    if key is not None:
        return str(key)
    return json.dumps([props, feature.get("geometry")], sort_keys=True, default=str)


def _new_features(
    batch: list[dict[str, Any]], seen: set[str], endpoint: str, start: int
) -> list[dict[str, Any]]:
    """Features of a page not seen yet; a full page of repeats means ``_start`` was ignored."""
    fresh = []
    for feature in batch:
        key = _feature_key(feature)
        if key not in seen:
            seen.add(key)
            fresh.append(feature)
    if batch and not fresh:
        raise SourceError(
            f"{endpoint}: the page at _start={start} repeats features already received, so the server "
            f"ignores paging and the layer has more than {start} features; download the GPU archive "
            f"({_ARCHIVE}<partition>) or use the WFS (data.geopf.fr, wfs_du:*) instead"
        )
    return fresh


def _last_page(count: int, collected: int, total: int | None) -> bool:
    """True when no page is left (a short page, or ``totalFeatures`` reached)."""
    if total is not None and total > collected:
        return False
    if count < PAGE_SIZE:
        return True
    return total is not None and collected > count


def _as_int(value: object) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "t", "1", "yes", "oui"}
    return bool(value) if value is not None else False


def _archive_hint(params: Mapping[str, Any]) -> str:
    partition = params.get("partition")
    return f"{_ARCHIVE}{partition}" if partition else "https://www.geoportail-urbanisme.gouv.fr"


# ----------------------------------------------------------------- arguments
def _check_insee(insee: object) -> str:
    text = str(insee).strip().upper()
    if text.isdigit() and len(text) < 5:
        text = text.zfill(5)
    if not _INSEE.match(text):
        raise ConfigError(
            f"INSEE code {insee!r} is not valid; give 5 characters such as 30014, 01004 or 2A004"
        )
    return text


def _check_partition(partition: object) -> str:
    text = str(partition).strip().upper()
    if not _PARTITION.match(text):
        raise ConfigError(
            f"partition {partition!r} is not a GPU partition; give DU_<INSEE> for a PLU (DU_30014), "
            "DU_<SIREN> for a PLUi or PSMV_<code>"
        )
    return text


def _check_layers(layers: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(str(layer).strip().lower().replace("_", "-") for layer in layers))
    unknown = [layer for layer in wanted if layer not in _TABLES]
    if unknown:
        raise ConfigError(f"unknown GPU layer(s) {', '.join(unknown)}; choose among {', '.join(_TABLES)}")
    if "zone-urba" not in wanted:
        raise ConfigError("layers must include 'zone-urba': ZONE_URBA is mandatory in a ZoningSet")
    return wanted


def _check_choice(insee: object, partition: object, aoi: object) -> None:
    given = [
        name
        for name, value in (("insee", insee), ("partition", partition), ("aoi", aoi))
        if value is not None
    ]
    if len(given) != 1:
        raise ConfigError(
            "give exactly one of insee=, partition= or aoi= "
            f"({'none given' if not given else ', '.join(given) + ' given'})"
        )


# ------------------------------------------------------------------ discovery
def _discover(api: _Api, insee: str, notes: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """Partition and DOC_URBA features of the document covering commune ``insee``."""
    towns = api.collect("municipality", {"insee": insee})
    if not towns:
        raise NoDataFoundError(f"no commune with INSEE code {insee} on the GPU; check the code (e.g. 30014)")
    town = towns[0].get("properties") or {}
    name = f"{insee} ({town.get('name') or '?'})"
    if _truthy(town.get("is_rnu")):
        raise NoDataFoundError(
            f"commune under RNU: no PLU — {name} follows the règlement national d'urbanisme, "
            "so there is no zoning to fetch"
        )
    documents = api.collect("document", {"partition": f"DU_{insee}"})
    if documents:
        return f"DU_{insee}", documents
    return _discover_by_point(api, towns[0], name, _truthy(town.get("is_deleted")), notes)


def _discover_by_point(
    api: _Api, town: Mapping[str, Any], name: str, deleted: bool, notes: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    """Document found at a point inside the commune (PLUi partitions are DU_<SIREN>)."""
    hint = "; the commune was merged, use the INSEE code of the new commune" if deleted else ""
    geometry = town.get("geometry")
    if not geometry:
        raise NoDataFoundError(
            f"no document with partition DU_{name.split()[0]} and no commune outline{hint}"
        )
    point = shapely.point_on_surface(shape(geometry))
    documents = api.collect("document", {"geom": _geojson(point)})
    partitions = sorted({str(p) for d in documents if (p := (d.get("properties") or {}).get("partition"))})
    if not partitions:
        raise NoDataFoundError(
            f"no planning document of commune {name} is published on the GPU{hint}; it may be "
            "under a carte communale not yet uploaded, or not digitised: ask the commune or its EPCI"
        )
    partition = partitions[0]
    if len(partitions) > 1:
        notes.append(f"several documents cover commune {name} ({', '.join(partitions)}); used {partition}")
    notes.append(f"commune {name} is covered by partition {partition}; the whole document was fetched")
    return partition, [d for d in documents if (d.get("properties") or {}).get("partition") == partition]


def find_partition(
    insee: str | int, *, base_url: str = DEFAULT_BASE_URL, settings: Settings | None = None
) -> str:
    """GPU partition of the planning document covering a commune.

    Parameters
    ----------
    insee
        INSEE code of the commune (a lost leading zero is restored: ``1004`` → ``01004``).
    base_url
        API Carto GPU module.
    settings
        HTTP timeout and retry settings.

    Returns
    -------
    str
        ``DU_<INSEE>`` for a communal PLU, ``DU_<SIREN>`` for a PLUi.

    Raises
    ------
    NoDataFoundError
        Unknown commune, commune under RNU, or no published document.
    SourceUnavailableError
        When the API stays unreachable after the retries.
    """
    with _Api(base_url.rstrip("/"), HttpClient(settings)) as api:
        return _discover(api, _check_insee(insee), [])[0]


# ----------------------------------------------------------------- geometry
def _geojson(geom: shapely.Geometry) -> str:
    """Compact GeoJSON of a lon/lat geometry, coordinates rounded to 1e-6° (~10 cm)."""
    rounded = shapely.transform(geom, lambda xy: np.round(xy, 6))
    return json.dumps(mapping(rounded), separators=(",", ":"))


def _aoi_geojson(aoi: AOILike, notes: list[str]) -> str:
    """The AOI as a GeoJSON query string, its outline loosened until the URL stays short."""
    geom = normalize_aoi(aoi).to_crs(4326).geometry
    text, tolerance = _geojson(geom), 1e-4
    while len(text) > _MAX_GEOM_CHARS and tolerance < 1.0:
        geom = shapely.simplify(geom.buffer(tolerance), tolerance)
        text, tolerance = _geojson(geom), tolerance * 2
    if len(text) > _MAX_GEOM_CHARS:
        geom = shapely.box(*geom.bounds)
        text = _geojson(geom)
    if tolerance > 1e-4:
        notes.append(
            f"AOI outline loosened by {tolerance / 2:g}° to fit the query string; "
            "features just outside the AOI may be included"
        )
    return text


# ------------------------------------------------------------------- frames
def _frame(features: Sequence[Mapping[str, Any]], crs: CRS) -> gpd.GeoDataFrame:
    """GeoDataFrame of API features (any keys; the per-feature ``bbox`` is dropped)."""
    rows = []
    for feature in features:
        props = feature.get("properties")
        row = {
            k: v
            for k, v in (props.items() if isinstance(props, Mapping) else ())
            if k not in {"bbox", "geometry"}
        }
        rows.append(row)
    geoms = [shape(f["geometry"]) if f.get("geometry") else None for f in features]
    return gpd.GeoDataFrame(pd.DataFrame(rows, index=range(len(rows))), geometry=geoms, crs=crs)


def _doc_frame(features: Sequence[Mapping[str, Any]], crs: CRS) -> pd.DataFrame:
    """DOC_URBA from ``document`` features: ``name`` → IDURBA, ``du_type`` → TYPEDOC, DATAPPRO."""
    frame = pd.DataFrame(_frame(features, crs).drop(columns="geometry"))
    names = {str(c).lower(): c for c in frame.columns}
    if "idurba" not in names and "name" in names:
        frame["IDURBA"] = frame[names["name"]]
        dates = frame["IDURBA"].astype("string").str.extract(r"_(\d{8})(?:_|$)")[0]
        if "datappro" not in names:
            frame["DATAPPRO"] = dates.astype(object).where(dates.notna(), None)
    if "typedoc" not in names and "du_type" in names:
        frame["TYPEDOC"] = frame[names["du_type"]]
    return frame


# ---------------------------------------------------------------------- main
def fetch_features(
    endpoint: str,
    *,
    partition: str | None = None,
    aoi: AOILike | None = None,
    base_url: str = DEFAULT_BASE_URL,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> gpd.GeoDataFrame:
    """Every feature of one API Carto GPU endpoint, as the API spells it (lower case, EPSG:4326).

    Parameters
    ----------
    endpoint
        ``zone-urba``, ``prescription-surf``, ``document``, ``secteur-cc``…
    partition, aoi
        Exactly one: a GPU partition (``DU_30014``) or an area (anything
        :func:`~territoire_geo.normalize_aoi` accepts).
    base_url, settings, progress
        As for :func:`fetch_tables`.

    Returns
    -------
    GeoDataFrame
        Raw attributes (no normalisation), possibly empty.
    """
    _check_choice(None, partition, aoi)
    params = (
        {"partition": _check_partition(partition)}
        if partition is not None
        else {"geom": _aoi_geojson(aoi, [])}
    )
    with _Api(base_url.rstrip("/"), HttpClient(settings), progress) as api:
        features = api.collect(endpoint.strip("/"), params)
    return _frame(features, api.crs)


@dataclass(frozen=True)
class GpuTables:
    """What :func:`fetch_tables` brought back: one frame per CNIG table, and where from."""

    #: ``{"ZONE_URBA": GeoDataFrame, …, "DOC_URBA": DataFrame}`` as the API spells them (EPSG:4326).
    tables: dict[str, pd.DataFrame]
    #: ``API Carto GPU DU_30014 (https://apicarto.ign.fr/api/gpu)``.
    source: str
    #: One line per request made (partition found, features per endpoint).
    notes: list[str]


def fetch_tables(
    *,
    insee: str | int | None = None,
    partition: str | None = None,
    aoi: AOILike | None = None,
    layers: Sequence[str] = LAYERS,
    base_url: str = DEFAULT_BASE_URL,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> GpuTables:
    """Fetch the layers of a PLU/PLUi from the Géoportail de l'Urbanisme (API Carto).

    Parameters
    ----------
    insee
        INSEE code of a commune: its partition is found with ``municipality?insee=``
        then ``document?partition=DU_<insee>``, or, for a commune inside a PLUi,
        ``document?geom=<point in the commune>`` (the whole PLUi is then fetched).
    partition
        GPU partition (``DU_30014``, ``DU_<SIREN>`` for a PLUi, ``PSMV_…``).
    aoi
        Area of interest (bbox, geometry, GeoJSON, vector file, GeoDataFrame): every
        feature intersecting it, whatever its document. Give exactly one of
        ``insee``, ``partition``, ``aoi``.
    layers
        Endpoints to fetch; ``zone-urba`` is mandatory, ``document`` gives DOC_URBA.
    base_url
        API Carto GPU module (a loopback server in tests).
    settings
        HTTP timeout and retries (:class:`~territoire_geo.config.Settings`).
    progress
        Called with one short message per page received.

    Returns
    -------
    GpuTables
        Raw frames per CNIG table (empty layers left out), the source label and
        what was fetched; :func:`territoire_geo.workflows.fetch_zoning` normalises
        them into a ZoningSet.

    Raises
    ------
    ConfigError
        Not exactly one of insee/partition/aoi, a malformed code, an unknown layer.
    NoDataFoundError
        Unknown commune, commune under RNU, no published document, no zone.
    SourceUnavailableError
        When the API stays unreachable after the bounded retries.
    SourceError
        An HTML page or malformed answer, a refused request (4xx).

    Examples
    --------
    >>> fetched = fetch_tables(insee="30014")  # doctest: +SKIP
    >>> fetched.tables["ZONE_URBA"].shape  # doctest: +SKIP
    """
    _check_choice(insee, partition, aoi)
    wanted = _check_layers(layers)
    if insee is not None:
        insee = _check_insee(insee)
    elif partition is not None:
        partition = _check_partition(partition)
    notes: list[str] = []
    geom = _aoi_geojson(aoi, notes) if aoi is not None else None
    with _Api(base_url.rstrip("/"), HttpClient(settings), progress) as api:
        raw, label = _fetch_raw(api, wanted, insee, partition, geom, notes)
    if "ZONE_URBA" not in raw:
        raise NoDataFoundError(_no_zone_message(label, raw))
    return _tables(raw, api, notes, label)


def _fetch_raw(
    api: _Api, wanted: list[str], insee: str | None, partition: str | None, geom: str | None, notes: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Features per CNIG table (empty layers left out) and a label of what was asked."""
    documents: list[dict[str, Any]] | None = None
    if geom is not None:
        params, label = {"geom": geom}, "AOI"
    else:
        if insee is not None:
            partition, documents = _discover(api, insee, notes)
        params, label = {"partition": partition}, str(partition)
    raw = {}
    for endpoint in wanted:
        if endpoint == "document" and documents is not None:
            found = documents
        else:
            found = api.collect(endpoint, params)
        notes.append(f"API Carto {endpoint}: {len(found)} features")
        if found:
            raw[_TABLES[endpoint]] = found
    return raw, label


def _no_zone_message(label: str, raw: Mapping[str, Any]) -> str:
    docs = raw.get("DOC_URBA") or []
    kinds = {str((d.get("properties") or {}).get("du_type") or "").upper() for d in docs}
    if "CC" in kinds:
        return (
            f"no ZONE_URBA for {label}: the document is a carte communale, whose sectors are in 'secteur-cc'"
        )
    return (
        f"no ZONE_URBA feature on the GPU for {label}; check the code (DU_<INSEE> for a PLU, "
        "DU_<SIREN> for a PLUi) or the area, or use the GPU archive if the document is not published"
    )


def _tables(raw: Mapping[str, list[dict[str, Any]]], api: _Api, notes: list[str], label: str) -> GpuTables:
    """The fetched features as frames per CNIG table (DOC_URBA without geometry)."""
    frames = {
        table: _doc_frame(features, api.crs) if table == "DOC_URBA" else _frame(features, api.crs)
        for table, features in raw.items()
    }
    return GpuTables(frames, f"API Carto GPU {label} ({api.base_url})", notes)
