"""PLU/PLUi zoning in the CNIG géostandard: read, repair, validate, decode.

:func:`read` accepts what planners actually have — a GPU archive (zip or folder,
prefixed or bare names, any extension case), loose shapefiles, a GeoPackage, an API
Carto GeoJSON, GML, MapInfo TAB, GeoParquet or an in-memory GeoDataFrame — and
returns a :class:`ZoningSet` whose layers use upper-case CNIG field names, string
codes with their leading zeros, 2D valid geometries in the working CRS, and a log of
every repair. :func:`validate` (see :mod:`territoire_geo.planning`) reports
what is still wrong; :func:`fix` re-applies the repairs to a hand-built set;
:func:`decode_prescriptions` turns PRESCRIPTION/INFO codes into labels and
land-reserve flags.

The frame-level work (normalisation, geometry repair) lives in pure functions in
:mod:`territoire_geo.planning`; this module only finds and reads files.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS

from territoire_geo.errors import DataError, SchemaError, SchemaWarning
from territoire_geo.planning import _cnig
from territoire_geo.planning._encoding import EncodingReport, map_object, recode_frame, repair_mojibake_frame
from territoire_geo.planning._zoning_set import ATTRS, TABLES, ZoningSet
from territoire_geo.planning._zoning_validate import Issue, ValidationReport, validate

__all__ = [
    "TABLES",
    "Issue",
    "ValidationReport",
    "ZoningSet",
    "decode_prescriptions",
    "find_tables",
    "fix",
    "read",
    "table_of",
    "validate",
]

_DBF_BASED = {".shp", ".dbf", ".tab", ".mif"}
_VECTOR = _DBF_BASED | {".geojson", ".json", ".gml", ".gpkg"}
_PARQUET = {".parquet", ".geoparquet"}


# ----------------------------------------------------------------- file finding
@dataclass(frozen=True)
class _Source:
    """One vector file or layer to read as a CNIG table."""

    table: str
    gdal_path: str
    label: str
    layer: str | None = None
    cpg: str | None = None
    dbf_based: bool = False
    parquet: bool = False


def table_of(name: str) -> str | None:
    """CNIG table named by a file or layer name (``30014_ZONE_URBA_20171013.shp``, ``wfs_du:zone_urba``)."""
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", PurePosixPath(str(name)).name).upper()
    for table in TABLES:
        if re.search(rf"(?:^|[^A-Z]){table}(?:$|[^A-Z])", stem):
            return table
    return None


def _check_member(info: zipfile.ZipInfo, archive: str) -> None:
    name = info.filename
    parts = re.split(r"[\\/]", name)
    is_link = stat.S_ISLNK(info.external_attr >> 16)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts or is_link:
        kind = "a symbolic link" if is_link else "a path escaping the archive"
        raise DataError(f"{archive}: refusing archive member {name!r} ({kind}); the archive may be malicious")


def _zip_members(path: Path) -> dict[str, zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise DataError(f"{path}: not a readable zip archive ({exc})") from exc
    for info in infos:
        _check_member(info, str(path))
    return {i.filename: i for i in infos if not i.is_dir()}


def _zip_text(path: Path, member: str | None) -> str | None:
    if member is None:
        return None
    with zipfile.ZipFile(path) as archive:
        return archive.read(member).decode("ascii", "replace").strip() or None


def _pick_vectors(names: Sequence[str]) -> list[str]:
    """Vector files among ``names`` (a .dbf only when no .shp shares its stem)."""
    lower = {n.lower() for n in names}
    picked = []
    for name in sorted(names):
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in _VECTOR:
            continue
        if suffix == ".dbf" and name[: -len(suffix)].lower() + ".shp" in lower:
            continue
        picked.append(name)
    return picked


def _sibling(names: Sequence[str], name: str, suffix: str) -> str | None:
    wanted = (name[: -len(PurePosixPath(name).suffix)] + suffix).lower()
    return next((n for n in names if n.lower() == wanted), None)


def _metadata_charset(texts: Sequence[str]) -> str | None:
    for text in texts:
        match = re.search(r"MD_CharacterSetCode[^>]*codeListValue=\"([^\"]+)\"", text)
        if match:
            return match.group(1)
    return None


def _sources_from_names(
    names: Sequence[str], gdal_prefix: str, cpg_reader: Callable[[str | None], str | None]
) -> list[_Source]:
    """Sources for the CNIG tables among ``names`` (paths relative to ``gdal_prefix``)."""
    sources = []
    for name in _pick_vectors(names):
        table = table_of(name)
        if table is None:
            continue
        suffix = PurePosixPath(name).suffix.lower()
        cpg = cpg_reader(_sibling(names, name, ".cpg")) if suffix in {".shp", ".dbf"} else None
        sources.append(
            _Source(
                table,
                gdal_prefix + name,
                PurePosixPath(name).name,
                cpg=cpg,
                dbf_based=suffix in _DBF_BASED,
            )
        )
    return sources


def _from_zip(path: Path) -> tuple[list[_Source], str | None]:
    members = list(_zip_members(path))
    sources = _sources_from_names(members, f"/vsizip/{path.resolve()}/", lambda m: _zip_text(path, m))
    xml = [
        m for m in members if m.lower().endswith(".xml") and PurePosixPath(m).name.lower().startswith("fr-")
    ]
    with zipfile.ZipFile(path) as archive:
        charset = _metadata_charset([archive.read(m).decode("utf-8", "replace") for m in xml[:3]])
    return sources, charset


def _from_folder(path: Path) -> tuple[list[_Source], str | None]:
    files = [p.relative_to(path).as_posix() for p in sorted(path.rglob("*")) if p.is_file()]

    def cpg_reader(rel: str | None) -> str | None:
        if rel is None:
            return None
        return (path / rel).read_bytes().decode("ascii", "replace").strip() or None

    sources = _sources_from_names(files, f"{path}/", cpg_reader)
    xml = [
        path / f
        for f in files
        if f.lower().endswith(".xml") and PurePosixPath(f).name.lower().startswith("fr-")
    ]
    return sources, _metadata_charset([p.read_text("utf-8", "replace") for p in xml[:3]])


def _from_multilayer(path: Path, layer: str | None) -> list[_Source]:
    names = [str(row[0]) for row in pyogrio.list_layers(path)]
    if layer is not None and layer not in names:
        raise DataError(f"{path}: no layer {layer!r}; layers are {', '.join(names)}")
    sources = []
    for name in names:
        table = "ZONE_URBA" if name == layer else table_of(name)
        if table is None or (table == "ZONE_URBA" and layer is not None and name != layer):
            continue
        sources.append(
            _Source(
                table,
                str(path),
                f"{path.name}:{name}",
                layer=name,
                dbf_based=path.suffix.lower() in _DBF_BASED,
            )
        )
    if not any(s.table == "ZONE_URBA" for s in sources) and len(names) == 1:
        sources.append(
            _Source(
                "ZONE_URBA", str(path), path.name, layer=names[0], dbf_based=path.suffix.lower() in _DBF_BASED
            )
        )
    return sources


def _from_file(path: Path, layer: str | None) -> list[_Source]:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return [_Source("ZONE_URBA", str(path), path.name, parquet=True)]
    if suffix in {".gpkg", ".gml", ".xml", ".sqlite"} or layer is not None:
        return _from_multilayer(path, layer)
    if suffix not in _VECTOR:
        raise DataError(
            f"{path}: unsupported file type {suffix!r}; give a zip, folder, .shp, .gpkg, .geojson, .gml, .tab or .parquet"
        )
    cpg = None
    if suffix in {".shp", ".dbf"}:
        sibling = _sibling([p.name for p in path.parent.iterdir()], path.name, ".cpg")
        cpg = (path.parent / sibling).read_bytes().decode("ascii", "replace").strip() if sibling else None
    table = table_of(path.name) or "ZONE_URBA"
    return [_Source(table, str(path), path.name, cpg=cpg, dbf_based=suffix in _DBF_BASED)]


def find_tables(path: str | os.PathLike) -> dict[str, list[str]]:
    """List the CNIG tables found in an archive, folder or file, without reading them.

    Returns
    -------
    dict
        Table name → GDAL paths of the candidate files (several when a folder holds
        several documents).
    """
    sources, _ = _discover(Path(path), None)
    found: dict[str, list[str]] = {}
    for source in sources:
        found.setdefault(source.table, []).append(
            source.gdal_path + (f"|{source.layer}" if source.layer else "")
        )
    return found


def _discover(path: Path, layer: str | None) -> tuple[list[_Source], str | None]:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return _from_folder(path)
    if path.suffix.lower() == ".zip":
        return _from_zip(path)
    return _from_file(path, layer), None


# ------------------------------------------------------------------- reading
def _read_source(source: _Source) -> tuple[pd.DataFrame, EncodingReport, list[str]]:
    spatial = bool(_cnig.TABLE_KINDS[source.table])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if source.parquet:
            frame = gpd.read_parquet(source.gdal_path)
        else:
            options = {"WRITE_GFS": "NO"} if source.gdal_path.lower().endswith(".gml") else {}
            frame = pyogrio.read_dataframe(
                source.gdal_path,
                layer=source.layer,
                read_geometry=spatial,
                encoding="latin1" if source.dbf_based else None,
                **options,
            )
    notes = [f"{source.label}: reader note: {w.message}" for w in caught]
    if source.dbf_based:
        frame, report = recode_frame(frame, declared=source.cpg)
    else:
        frame, fixed = repair_mojibake_frame(frame)
        report = EncodingReport(declared="UTF-8", found="utf-8", mojibake_fixed=fixed)
    return frame, report, notes


@dataclass
class _Log:
    """What reading collected: repairs, layers whose CRS was assumed, repair counters."""

    repairs: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)
    fixes: dict[str, dict[str, int]] = field(default_factory=dict)


def _normalise_table(
    frame: pd.DataFrame, table: str, label: str, target: CRS, source_crs: CRS | None, log: _Log
) -> pd.DataFrame | None:
    if len(frame) == 0:
        if table == "ZONE_URBA":
            raise DataError(f"{label} has no features")
        log.repairs.append(f"{label}: empty layer, ignored")
        return None
    frame, repairs = _cnig.normalize_attributes(frame, table, label)
    log.repairs += repairs
    if not _cnig.TABLE_KINDS[table]:
        return pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.isna().all():
        raise SchemaError(f"{label}: {table} must have geometries, found none")
    if _cnig.resolve_crs(frame, label, source_crs, log.repairs):
        log.assumed.append(label)
    frame, repairs, stats = _cnig.clean_geometry(frame, table, label)
    log.repairs += repairs
    log.fixes[table] = stats
    if len(frame) == 0:
        raise DataError(f"{label} has no features left after dropping empty or invalid geometries")
    return _cnig.to_target(frame, target).reset_index(drop=True)


def _document_of(source: _Source) -> str:
    """Folder of the document a file belongs to (``Donnees_geographiques/`` collapsed)."""
    parts = [p for p in re.split(r"[\\/]", source.gdal_path)[:-1] if p.lower() != "donnees_geographiques"]
    return "/".join(parts)


def _one_document(sources: list[_Source], log: _Log) -> list[_Source]:
    """Keep the files of a single document when an archive or folder holds several."""
    documents = sorted({_document_of(s) for s in sources if s.table == "ZONE_URBA"})
    if len(documents) <= 1:
        return sources
    log.repairs.append(
        f"{len(documents)} documents found; read {documents[0]!r}, ignored {', '.join(documents[1:])}"
    )
    return [s for s in sources if _document_of(s) == documents[0]]


def _choose(sources: list[_Source], log: _Log) -> dict[str, _Source]:
    sources = _one_document(sources, log)
    chosen: dict[str, _Source] = {}
    for source in sources:
        if source.table in chosen:
            log.repairs.append(
                f"{source.table}: several candidates, used {chosen[source.table].label}, ignored {source.label}"
            )
            continue
        chosen[source.table] = source
    if "ZONE_URBA" not in chosen:
        found = ", ".join(sorted(chosen)) or "none"
        raise DataError(f"no ZONE_URBA layer found (CNIG tables found: {found}); ZONE_URBA is mandatory")
    return chosen


def _assemble(
    raw: dict[str, tuple[pd.DataFrame, str]], target: CRS, source_crs: CRS | None, **extra
) -> ZoningSet:
    log = _Log(repairs=list(extra.pop("repairs", [])))
    zones_raw = raw["ZONE_URBA"][0]
    version = _cnig.guess_version(zones_raw.columns, _typezone_values(zones_raw))
    tables = {}
    for table, (frame, label) in raw.items():
        tables[ATTRS[table]] = _normalise_table(frame, table, label, target, source_crs, log)
    zoning = ZoningSet(**tables, repairs=log.repairs, cnig_version=version, fixes=log.fixes, **extra)
    _warn(log.assumed, int(zoning.zones["TYPEZONE_INFERRED"].sum()))
    return zoning


def _typezone_values(frame: pd.DataFrame) -> list[object]:
    column = next((c for c in frame.columns if _cnig.normalize_field_name(c) == "TYPEZONE"), None)
    return list(frame[column].dropna().unique()) if column is not None else []


def _warn(assumed: list[str], inferred: int) -> None:
    if assumed:
        warnings.warn(
            f"no CRS in {', '.join(assumed)}; coordinates look like Lambert-93 so EPSG:2154 was assumed",
            SchemaWarning,
            stacklevel=4,
        )
    if inferred:
        warnings.warn(
            f"TYPEZONE inferred from LIBELLE for {inferred} zones (see TYPEZONE_INFERRED)",
            SchemaWarning,
            stacklevel=4,
        )


def read(
    path_or_obj: str
    | os.PathLike
    | gpd.GeoDataFrame
    | Mapping[str, pd.DataFrame]
    | Sequence[str | os.PathLike],
    *,
    layer: str | None = None,
    crs: str | int | CRS = "EPSG:2154",
    source_crs: str | int | CRS | None = None,
) -> ZoningSet:
    """Read a PLU/PLUi dataset in any CNIG generation and normalise it.

    Parameters
    ----------
    path_or_obj
        A GPU archive (``.zip`` or folder), a vector file (``.shp``, ``.dbf``, ``.gpkg``,
        ``.geojson``, ``.gml``, ``.tab``, ``.parquet``), a list of files, a GeoDataFrame
        (taken as ZONE_URBA) or a mapping ``{table name: frame}``.
    layer
        Layer of a multi-layer file to read as ZONE_URBA (default: found by name).
    crs
        Working CRS every layer is reprojected to.
    source_crs
        CRS to assume for files that carry none. Without it, a file without CRS whose
        coordinates look like Lambert-93 is taken as EPSG:2154 (with a
        :class:`~territoire_geo.errors.SchemaWarning`); anything else raises.

    Returns
    -------
    ZoningSet

    Raises
    ------
    DataError
        Missing file, unsafe archive member, no ZONE_URBA, empty ZONE_URBA, unknown CRS.
    SchemaError
        Mandatory fields missing, or ZONE_URBA holding lines or points.
    """
    target = CRS.from_user_input(crs)
    src_crs = CRS.from_user_input(source_crs) if source_crs is not None else None
    if isinstance(path_or_obj, gpd.GeoDataFrame | Mapping):
        return _read_memory(path_or_obj, target, src_crs)
    if isinstance(path_or_obj, Sequence) and not isinstance(path_or_obj, str | bytes):
        sources, charset, label = _discover_many(path_or_obj), None, ", ".join(map(str, path_or_obj))
    else:
        sources, charset = _discover(Path(path_or_obj), layer)
        label = str(path_or_obj)
    log = _Log()
    raw, encodings = {}, {}
    for table, source in _choose(sources, log).items():
        frame, report, notes = _read_source(source)
        raw[table] = (frame, source.label)
        encodings[table] = report
        log.repairs += notes
    return _assemble(
        raw, target, src_crs, repairs=log.repairs, source=label, encodings=encodings, metadata_charset=charset
    )


def _discover_many(paths: Sequence[str | os.PathLike]) -> list[_Source]:
    sources = []
    for item in paths:
        found, _ = _discover(Path(item), None)
        sources += found
    return sources


def _read_memory(
    obj: gpd.GeoDataFrame | Mapping[str, pd.DataFrame], target: CRS, src_crs: CRS | None
) -> ZoningSet:
    items = (
        {"ZONE_URBA": obj}
        if isinstance(obj, gpd.GeoDataFrame)
        else {(table_of(k) or k.upper()): v for k, v in obj.items()}
    )
    unknown = sorted(set(items) - set(ATTRS))
    if unknown:
        raise DataError(f"unknown CNIG table name(s) {', '.join(unknown)}; expected {', '.join(ATTRS)}")
    if "ZONE_URBA" not in items:
        raise DataError("no ZONE_URBA frame given; ZONE_URBA is mandatory")
    raw, encodings = {}, {}
    for table, frame in items.items():
        fixed, count = repair_mojibake_frame(frame)
        raw[table] = (fixed, table)
        encodings[table] = EncodingReport(declared="UTF-8", found="utf-8", mojibake_fixed=count)
    return _assemble(raw, target, src_crs, source="<memory>", encodings=encodings)


# ----------------------------------------------------------------------- fix
def fix(zoning: ZoningSet, *, crs: str | int | CRS | None = None) -> ZoningSet:
    """Re-apply every repair (names, codes, TYPEZONE, 2D, ``make_valid``, CRS) to a set.

    Useful for a :class:`ZoningSet` assembled by hand or edited after reading;
    idempotent on a set returned by :func:`read`. MultiPolygons are kept (and
    reported by :func:`validate`).

    Parameters
    ----------
    zoning
        The set to repair (not modified).
    crs
        Working CRS (default: the CRS of the zones, else EPSG:2154).

    Returns
    -------
    ZoningSet
        A repaired copy; ``repairs`` and ``fixes`` extended with what was done.
    """
    target = CRS.from_user_input(crs or zoning.zones.crs or "EPSG:2154")
    log = _Log(repairs=list(zoning.repairs))
    tables = {}
    for table, attr in ATTRS.items():
        frame = getattr(zoning, attr)
        tables[attr] = None if frame is None else _normalise_table(frame, table, table, target, None, log)
    fixes = {
        **zoning.fixes,
        **{t: s for t, s in log.fixes.items() if any(s.values()) or t not in zoning.fixes},
    }
    _warn(log.assumed, 0)
    return replace(zoning, **tables, repairs=log.repairs, fixes=fixes)


# ------------------------------------------------------------------- decoding
_FLAG_COLUMNS = {
    "ebc": "IS_EBC",
    "emplacement_reserve": "IS_ER",
    "stecal": "IS_STECAL",
    "oap": "IS_OAP",
    "oap_renaturation": "IS_OAP_RENATURATION",
    "dpu": "IS_DPU",
    "zad": "IS_ZAD",
    "ens": "IS_ENS",
    "paen": "IS_PAEN",
    "no_build": "IS_NO_BUILD",
    "heritage": "IS_HERITAGE",
    "ecological_continuity": "IS_ECOLOGICAL_CONTINUITY",
    "soil_richness": "IS_SOIL_RICHNESS",
    "coastline_retreat": "IS_COASTLINE_RETREAT",
    "renewable": "IS_RENEWABLE",
    "density": "IS_DENSITY",
}


def _codes(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    if "TYPEPSC" in frame.columns:
        kind, type_col, stype_col = "prescriptions", "TYPEPSC", "STYPEPSC"
    elif "TYPEINF" in frame.columns:
        kind, type_col, stype_col = "informations", "TYPEINF", "STYPEINF"
    else:
        raise SchemaError(f"no TYPEPSC or TYPEINF field (fields: {', '.join(map(str, frame.columns))})")
    types = map_object(frame[type_col], lambda v: _cnig.normalize_code(v, 2))
    stypes = (
        map_object(frame[stype_col], lambda v: _cnig.normalize_code(v, 2))
        if stype_col in frame.columns
        else pd.Series(None, index=frame.index, dtype=object)
    )
    codes = [
        f"{t}-{s if isinstance(s, str) else '00'}" if isinstance(t, str) else None
        for t, s in zip(types, stypes, strict=True)
    ]
    return pd.Series(codes, index=frame.index, dtype=object), kind


def decode_prescriptions(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``CODE`` (``05-01``), ``LIBELLE_CODE``, ``CONSTRAINT`` and ``IS_*`` flags.

    Works on PRESCRIPTION_* (TYPEPSC/STYPEPSC) and INFO_* (TYPEINF/STYPEINF) frames,
    any generation: a 2014 TYPEPSC without sub-type gives the generic ``XX-00`` code.
    Codes absent from the shipped CNIG lists get ``LIBELLE_CODE`` = ``None``.

    Parameters
    ----------
    frame
        A prescription or information layer (normalised or not).

    Returns
    -------
    DataFrame or GeoDataFrame
        A copy with the added columns.
    """
    out, _ = _cnig.normalize_attributes(frame, "PRESCRIPTION_SURF")
    codes, kind = _codes(out)
    table = _cnig.code_list(kind).set_index("code")
    labels, constraints, flags_of = (
        table[c].to_dict() for c in ("libelle", "constraint", "land_reserve_flag")
    )
    out["CODE"] = codes
    out["LIBELLE_CODE"] = map_object(codes, labels.get)
    out["CONSTRAINT"] = map_object(codes, lambda c: constraints.get(c, "none"))
    flags = map_object(codes, lambda c: flags_of.get(c, ""))
    for flag, column in _FLAG_COLUMNS.items():
        out[column] = (flags == flag) | ((flag == "oap") & (flags == "oap_renaturation"))
    return out
