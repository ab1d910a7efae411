"""CNIG PLU/PLUi géostandard: field aliases, value normalisers, code lists.

Pure, frame-in/frame-out helpers shared by :mod:`territoire_geo.planning.zoning` and its
validator. Nothing here opens a file except the code lists shipped as package data
(``territoire_geo/data/cnig_*.csv``, see ``CNIG_SOURCES.md`` there).

Three schema generations circulate (2014, 2017, 2022/2024) plus the API Carto
shape (lower-case keys, ``gid``/``partition``); all are mapped onto upper-case CNIG
names, every attribute is kept as a string and codes get their leading zeros back.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from importlib import resources

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from territoire_geo.errors import DataError, SchemaError
from territoire_geo.planning._encoding import map_object

__all__ = [
    "CNIG_FIELDS",
    "CODE_WIDTHS",
    "DATE_FIELDS",
    "TABLE_KINDS",
    "TYPEZONES",
    "clean_geometry",
    "code_list",
    "field_key",
    "guess_version",
    "infer_typezone",
    "is_valid_date",
    "normalize_attributes",
    "normalize_code",
    "normalize_date",
    "normalize_field_name",
    "normalize_typezone",
    "polygonal",
    "resolve_crs",
    "to_target",
    "to_text",
]

#: Canonical CNIG field names, all generations and tables (PLU/PLUi standard).
CNIG_FIELDS: tuple[str, ...] = (
    "LIBELLE", "LIBELONG", "TYPEZONE", "DESTDOMI", "FORMDOMI", "DESTOUI", "DESTCDT", "DESTNON",
    "NOMFIC", "URLFIC", "INSEE", "DATAPPRO", "DATVALID", "IDURBA", "IDZONE", "LIB_IDZONE",
    "SYMBOLE", "TXT", "TYPEPSC", "STYPEPSC", "NATURE", "LIB_IDPSC", "TYPEINF", "STYPEINF",
    "LIB_IDINF", "TYPEDOC", "ETAT", "NOMPROC", "DATEFIN", "SIREN", "INTERCO", "NOMRAPP",
    "URLRAPP", "NOMREG", "URLREG", "NOMPLAN", "URLPLAN", "URLPE", "SITEWEB", "TYPEREF",
    "DATEREF", "DATECOG", "NATTRAC", "COULEUR", "NATECR", "POLICE", "TAILLE", "STYLE", "ANGLE",
)  # fmt: skip

# Extra spellings met in exports (DBF 10-character truncations, spelled-out names).
_ALIASES: dict[str, tuple[str, ...]] = {
    "TYPEZONE": ("TYP_ZONE", "TYPE_ZON", "ZONE_TYPE"),
    "LIBELONG": ("LIBELLE_LONG", "LIBELLE_LO", "LIB_LONG"),
    "TYPEPSC": ("TYPE_PSC", "TYP_PSC"),
    "STYPEPSC": ("SOUS_TYPE_PSC", "STYPE_PSC", "SSTYPEPSC", "SOUSTYPEPS"),
    "TYPEINF": ("TYPE_INF", "TYP_INF"),
    "STYPEINF": ("SOUS_TYPE_INF", "STYPE_INF", "SSTYPEINF", "SOUSTYPEIN"),
    "DATAPPRO": ("DATE_APPRO", "DAT_APPRO"),
    "DATVALID": ("DATE_VALID", "DATEVALIDE"),
    "INSEE": ("CODE_INSEE", "INSEE_COM", "CODEINSEE"),
    "IDURBA": ("ID_URBA",),
    "DESTDOMI": ("DEST_DOMI",),
    "FORMDOMI": ("FORM_DOMI",),
}

#: Code fields and the width their leading zeros are restored to.
CODE_WIDTHS: dict[str, int] = {
    "DESTDOMI": 2, "TYPEPSC": 2, "STYPEPSC": 2, "TYPEINF": 2, "STYPEINF": 2,
    "ETAT": 2, "TYPEREF": 2, "FORMDOMI": 4, "INSEE": 5,
}  # fmt: skip
DATE_FIELDS: tuple[str, ...] = ("DATAPPRO", "DATVALID", "DATEFIN", "DATEREF", "DATECOG")
_DEST_LIST_FIELDS = ("DESTOUI", "DESTCDT", "DESTNON")

#: The five TYPEZONE values of the 2017+ standard.
TYPEZONES: tuple[str, ...] = ("U", "AUc", "AUs", "A", "N")
_TYPEZONE_MAP = {
    "U": "U",
    "AUC": "AUc",
    "AUS": "AUs",
    "A": "A",
    "N": "N",
    "AH": "A",
    "NH": "N",
    "ND": "N",
    "AU": "AUc",
}
_TYPEZONE_RULES = (
    (re.compile(r"^1AU", re.I), "AUc"),
    (re.compile(r"^2AU", re.I), "AUs"),
    (re.compile(r"^[0-9]*AU", re.I), "AUc"),
    (re.compile(r"^U", re.I), "U"),
    (re.compile(r"^A", re.I), "A"),
    (re.compile(r"^N", re.I), "N"),
)

#: Table name → geometry kind ("surf", "lin", "pct", or None for plain tables).
TABLE_KINDS: dict[str, str | None] = {
    "ZONE_URBA": "surf",
    "PRESCRIPTION_SURF": "surf",
    "PRESCRIPTION_LIN": "lin",
    "PRESCRIPTION_PCT": "pct",
    "INFO_SURF": "surf",
    "INFO_LIN": "lin",
    "INFO_PCT": "pct",
    "DOC_URBA": None,
    "DOC_URBA_COM": None,
}
_KIND_TYPES = {"surf": (3, 6), "lin": (1, 5), "pct": (0, 4)}
_KIND_LABEL = {"surf": "polygons", "lin": "lines", "pct": "points"}


# --------------------------------------------------------------------------- names
def field_key(name: str) -> str:
    """Comparison key of a field name: accents stripped, upper case, only A-Z0-9 kept."""
    plain = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Z0-9]", "", plain.upper())


@functools.cache
def _key_table() -> dict[str, str]:
    table = {field_key(name): name for name in CNIG_FIELDS}
    for name, aliases in _ALIASES.items():
        for alias in aliases:
            table.setdefault(field_key(alias), name)
    return table


def normalize_field_name(name: str) -> str:
    """Return the CNIG name for ``name`` (any case/underscores/alias), else ``name`` upper-cased.

    Examples
    --------
    >>> normalize_field_name("type_zone"), normalize_field_name("lib_idzone")
    ('TYPEZONE', 'LIB_IDZONE')
    """
    return _key_table().get(field_key(name), str(name).strip().upper())


# -------------------------------------------------------------------------- values
def to_text(value: object) -> str | None:
    """Convert one attribute value to a stripped string; empty and missing give ``None``.

    Integral floats lose their ``.0`` (``7.0`` → ``"7"``), dates become ``AAAAMMJJ`` and
    lists become JSON.
    """
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, np.datetime64) and np.isnat(value)):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _float_text(float(value))
    if isinstance(value, dt.date | np.datetime64):
        moment = pd.Timestamp(value)
        return f"{moment.year:04d}{moment.month:02d}{moment.day:02d}"  # strftime drops zeros before year 1000
    if isinstance(value, bytes):
        return value.decode("latin-1").strip() or None
    if isinstance(value, list | tuple | np.ndarray | Mapping):
        return json.dumps(np.asarray(value).tolist() if isinstance(value, np.ndarray) else value, default=str)
    return str(value).strip() or None


def _float_text(value: float) -> str | None:
    if math.isnan(value):
        return None
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


_INT_LIKE = re.compile(r"\d+(?:\.0*)?")


def normalize_code(value: object, width: int = 2) -> str | None:
    """Return a CNIG code as a string with its leading zeros (``7``, ``7.0``, ``"7"`` → ``"07"``).

    Non-numeric codes (``"2A004"``) are returned stripped; idempotent.
    """
    text = to_text(value)
    if text is None:
        return None
    if _INT_LIKE.fullmatch(text):
        return text.split(".")[0].zfill(width)
    return text


def normalize_date(value: object) -> str | None:
    """Return a date as ``AAAAMMJJ`` when it is recognisable (ISO or French order), else as text."""
    text = to_text(value)
    if text is None:
        return None
    match = re.fullmatch(r"(\d{4})[-/.](\d{2})[-/.](\d{2})(?:[T ].*)?", text)
    if match:
        return "".join(match.groups())
    match = re.fullmatch(r"(\d{2})[-/.](\d{2})[-/.](\d{4})", text)
    if match:
        day, month, year = match.groups()
        return f"{year}{month}{day}"
    return text


def is_valid_date(text: object, *, allow_zero: bool = False, allow_year_only: bool = False) -> bool:
    """True for a real calendar date ``AAAAMMJJ`` (optionally ``00000000`` or ``AAAA0000``)."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{8}", text):
        return False
    if allow_zero and text == "00000000":
        return True
    if allow_year_only and text.endswith("0000"):
        return True
    try:
        dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return False
    return True


def _normalize_dest_list(value: object) -> str | None:
    text = to_text(value)
    if text is None:
        return None
    parts = [p for p in re.split(r"[-,;\s/]+", text) if p]  # any whitespace separates (idempotent)
    return "-".join(p.zfill(2) if p.isdigit() else p for p in parts) or None  # ";" alone is missing, not ""


def normalize_typezone(value: object) -> str | None:
    """Map a TYPEZONE value onto {U, AUc, AUs, A, N} (2014 Ah→A, Nh/Nd→N, any case).

    Unknown values are returned stripped (the validator reports them).
    """
    text = to_text(value)
    if text is None:
        return None
    return _TYPEZONE_MAP.get(re.sub(r"\s+", "", text).upper(), text)


def infer_typezone(libelle: object) -> str | None:
    """Guess TYPEZONE from a zone label (``1AUh`` → AUc, ``2AU`` → AUs, ``Ub`` → U…)."""
    text = to_text(libelle)
    if text is None:
        return None
    for pattern, typezone in _TYPEZONE_RULES:
        if pattern.match(text):
            return typezone
    return None


# -------------------------------------------------------------------- code lists
@functools.cache
def _code_list(name: str) -> pd.DataFrame:
    path = resources.files("territoire_geo").joinpath("data", f"cnig_{name}.csv")
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def code_list(name: str) -> pd.DataFrame:
    """Return a shipped CNIG code list (``prescriptions``, ``informations``, ``typezone``,
    ``destdomi``, ``formdomi``, ``destinations``) as a string DataFrame (a copy)."""
    return _code_list(name).copy()


# ------------------------------------------------------------------- attributes
def guess_version(columns: Iterable[str], typezones: Iterable[object] = ()) -> str:
    """Guess the schema generation from raw field names (and TYPEZONE values).

    Returns ``"apicarto"``, ``"2022"``, ``"2014"``, ``"2017"`` or ``"unknown"``.
    """
    raw = [str(c) for c in columns]
    names = {normalize_field_name(c) for c in raw}
    if {"GID", "PARTITION"} & names and all(c == c.lower() for c in raw if c != "geometry"):
        return "apicarto"
    if names & {"FORMDOMI", "DESTOUI", "DESTCDT", "DESTNON", "SYMBOLE"}:
        return "2022"
    legacy = {str(v).strip().upper() for v in typezones if isinstance(v, str)} & {"AH", "NH", "ND"}
    if names & {"INSEE", "DATAPPRO", "DESTDOMI"} or legacy:
        return "2014"
    if "IDURBA" in names:
        return "2017"
    return "unknown"


def _rename_fields(frame: pd.DataFrame, label: str, repairs: list[str]) -> pd.DataFrame:
    geometry = getattr(frame, "_geometry_column_name", None)
    mapping = {c: (c if c == geometry else normalize_field_name(c)) for c in frame.columns}
    out = frame.rename(columns=mapping)
    duplicated = sorted(set(out.columns[out.columns.duplicated()]))
    for name in duplicated:
        block = out.loc[:, out.columns == name]
        merged = block.bfill(axis=1).iloc[:, 0]
        out = out.loc[:, out.columns != name]
        out[name] = merged
        repairs.append(f"{label}: {block.shape[1]} fields map to {name}; merged (first non-empty value kept)")
    return out


def _apply(frame: pd.DataFrame, column: str, func, label: str, what: str, repairs: list[str]) -> None:
    before = frame[column]
    after = map_object(before, func)
    changed = sum(1 for a, b in zip(before, after, strict=True) if a is not None and b is not None and a != b)
    if changed:
        repairs.append(f"{label}: {what} in {column} ({changed} values)")
    frame[column] = after


def _normalize_values(out: pd.DataFrame, label: str, repairs: list[str]) -> None:
    geometry = getattr(out, "_geometry_column_name", None)
    text_cols = [c for c in out.columns if c != geometry and c not in ("TYPEZONE_INFERRED",)]
    for column in text_cols:
        out[column] = map_object(out[column], to_text)
    for column, width in CODE_WIDTHS.items():
        if column in out.columns:
            _apply(
                out,
                column,
                lambda v, w=width: normalize_code(v, w),
                label,
                f"restored leading zeros (zfill {width})",
                repairs,
            )
    for column in DATE_FIELDS:
        if column in out.columns:
            _apply(out, column, normalize_date, label, "reformatted dates to AAAAMMJJ", repairs)
    for column in _DEST_LIST_FIELDS:
        if column in out.columns:
            _apply(out, column, _normalize_dest_list, label, "normalised destination lists", repairs)


def _normalize_typezone_column(out: pd.DataFrame, label: str, repairs: list[str]) -> None:
    if "TYPEZONE" not in out.columns:
        out["TYPEZONE"] = None
    if "TYPEZONE_ORIG" not in out.columns:
        out["TYPEZONE_ORIG"] = out["TYPEZONE"]
    previous = out["TYPEZONE_INFERRED"] if "TYPEZONE_INFERRED" in out.columns else False
    normalised = map_object(out["TYPEZONE"], normalize_typezone)
    changed = int(((normalised != out["TYPEZONE"]) & out["TYPEZONE"].notna()).sum())
    if changed:
        repairs.append(
            f"{label}: TYPEZONE mapped onto U/AUc/AUs/A/N ({changed} values; original in TYPEZONE_ORIG)"
        )
    missing = normalised.isna()
    inferred = map_object(out["LIBELLE"], infer_typezone) if "LIBELLE" in out.columns else normalised
    out["TYPEZONE"] = normalised.where(~missing, inferred)
    new = missing & out["TYPEZONE"].notna()
    out["TYPEZONE_INFERRED"] = (pd.Series(previous, index=out.index).astype(bool) | new).astype(bool)
    if new.any():
        repairs.append(
            f"{label}: TYPEZONE inferred from LIBELLE for {int(new.sum())} zones (TYPEZONE_INFERRED)"
        )


def _check_zone_fields(frame: pd.DataFrame, label: str) -> None:
    missing = [name for name in ("LIBELLE",) if name not in frame.columns]
    if "TYPEZONE" not in frame.columns and "LIBELLE" not in frame.columns:
        missing.append("TYPEZONE")
    elif "TYPEZONE" not in frame.columns and map_object(frame["LIBELLE"], infer_typezone).isna().all():
        missing.append("TYPEZONE")
    if missing:
        raise SchemaError(
            f"{label}: mandatory CNIG field(s) {', '.join(missing)} missing "
            f"(fields found: {', '.join(map(str, frame.columns))}). TYPEZONE can only be inferred from LIBELLE "
            "labels such as 'Ua', '1AU', 'N'; rename the fields or fill them in."
        )


def normalize_attributes(
    frame: pd.DataFrame, table: str, label: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Rename fields to CNIG names and normalise every attribute value (pure, idempotent).

    Parameters
    ----------
    frame
        A layer as read (any case, any generation).
    table
        CNIG table name (``ZONE_URBA``, ``PRESCRIPTION_SURF``…).
    label
        Name used in messages (defaults to ``table``).

    Returns
    -------
    (DataFrame, list of str)
        The normalised copy and the human-readable repairs.

    Raises
    ------
    SchemaError
        ZONE_URBA without LIBELLE, or without a TYPEZONE that can be inferred.
    """
    label = label or table
    repairs: list[str] = []
    out = _rename_fields(frame, label, repairs)
    if table == "ZONE_URBA":
        _check_zone_fields(out, label)
    _normalize_values(out, label, repairs)
    if table == "ZONE_URBA":
        _normalize_typezone_column(out, label, repairs)
    return out, repairs


# -------------------------------------------------------------------------- CRS
def _looks_lambert93(frame: gpd.GeoDataFrame) -> bool:
    minx, miny, maxx, maxy = frame.total_bounds
    return 100_000 <= minx and maxx <= 1_300_000 and 6_000_000 <= miny and maxy <= 7_200_000


def resolve_crs(frame: gpd.GeoDataFrame, label: str, source_crs: CRS | None, repairs: list[str]) -> bool:
    """Give ``frame`` a CRS in place when it has none; return True when EPSG:2154 was assumed."""
    if frame.crs is not None:
        return False
    if source_crs is not None:
        frame.set_crs(source_crs, inplace=True)
        repairs.append(f"{label}: no CRS in the file; used source_crs={source_crs.to_string()}")
        return False
    if len(frame) and _looks_lambert93(frame):
        frame.set_crs("EPSG:2154", inplace=True)
        repairs.append(f"{label}: no CRS in the file; coordinates look like Lambert-93, assumed EPSG:2154")
        return True
    raise DataError(
        f"{label} has no CRS (missing .prj?) and its coordinates do not look like Lambert-93; "
        "add the .prj or pass source_crs='EPSG:…' (e.g. 'EPSG:4326' for longitude/latitude)"
    )


def to_target(frame: gpd.GeoDataFrame, target: CRS) -> gpd.GeoDataFrame:
    """Reproject to ``target``; an equivalent CRS (e.g. IGNF LAMB93 vs EPSG:2154) is only relabelled."""
    crs = CRS.from_user_input(frame.crs)
    same = crs.equals(target, ignore_axis_order=True) or (
        target.to_epsg() is not None and crs.to_epsg() == target.to_epsg()
    )
    return frame.set_crs(target, allow_override=True) if same else frame.to_crs(target)


# --------------------------------------------------------------------- geometry
def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of each geometry (vectorised).

    One part gives a Polygon, several a MultiPolygon, none ``None``.
    """
    geoms = np.asarray(geoms, dtype=object)
    result = np.full(len(geoms), None, dtype=object)
    parts, index = shapely.get_parts(geoms, return_index=True)
    parts, sub = shapely.get_parts(parts, return_index=True)  # GeometryCollection members
    index = index[sub]
    keep = shapely.get_type_id(parts) == 3
    parts, index = parts[keep], index[keep]
    if not len(parts):
        return result
    counts = np.bincount(index, minlength=len(geoms))
    single = counts[index] == 1
    result[index[single]] = parts[single]
    if (~single).any():
        rows, compact = np.unique(index[~single], return_inverse=True)
        result[rows] = shapely.multipolygons(parts[~single], indices=compact)
    return result


def _drop(
    frame: gpd.GeoDataFrame, mask: np.ndarray, why: str, label: str, repairs: list[str]
) -> gpd.GeoDataFrame:
    if mask.any():
        repairs.append(f"{label}: dropped {int(mask.sum())} features ({why})")
        return frame.loc[~mask]
    return frame


def _make_valid(
    geoms: np.ndarray, kind: str, label: str, repairs: list[str], stats: dict[str, int]
) -> np.ndarray:
    invalid = ~shapely.is_valid(geoms)
    stats["invalid_geometry"] = int(invalid.sum())
    if invalid.any():
        geoms = geoms.copy()
        with np.errstate(all="ignore"):
            geoms[invalid] = shapely.make_valid(geoms[invalid])
        repairs.append(f"{label}: repaired {int(invalid.sum())} invalid geometries (make_valid)")
    if kind == "surf":
        mixed = ~np.isin(shapely.get_type_id(geoms), _KIND_TYPES["surf"])
        if mixed.any():
            geoms = geoms.copy()
            geoms[mixed] = polygonal(geoms[mixed])
    return geoms


def clean_geometry(
    frame: gpd.GeoDataFrame, table: str, label: str | None = None
) -> tuple[gpd.GeoDataFrame, list[str], dict[str, int]]:
    """Drop empty geometries, force 2D, ``make_valid`` and keep the table's geometry type.

    Parameters
    ----------
    frame
        A spatial layer.
    table
        CNIG table name; its kind (surf/lin/pct) decides the geometry types kept.
    label
        Name used in messages.

    Returns
    -------
    (GeoDataFrame, list of str, dict)
        The repaired copy, the repairs log and counters (``z_coordinates``,
        ``invalid_geometry``, ``dropped_empty``, ``dropped_type``).

    Raises
    ------
    SchemaError
        When no feature has the geometry type the table requires.
    """
    label = label or table
    kind = TABLE_KINDS.get(table) or "surf"
    repairs: list[str] = []
    stats = {"z_coordinates": 0, "invalid_geometry": 0, "dropped_empty": 0, "dropped_type": 0}
    geoms = np.asarray(frame.geometry.array, dtype=object)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    stats["dropped_empty"] = int(empty.sum())
    out = _drop(frame, empty, "empty or missing geometry", label, repairs)
    geoms = geoms[~empty]
    _check_geometry_type(geoms, kind, label)
    has_z = shapely.has_z(geoms)
    if has_z.any():
        stats["z_coordinates"] = int(has_z.sum())
        geoms = shapely.force_2d(geoms)
        repairs.append(f"{label}: removed Z coordinates from {int(has_z.sum())} geometries")
    if kind == "surf":
        geoms = _make_valid(geoms, kind, label, repairs, stats)
    wrong = shapely.is_missing(geoms) | ~np.isin(shapely.get_type_id(geoms), _KIND_TYPES[kind])
    wrong |= shapely.is_empty(geoms)
    stats["dropped_type"] = int(wrong.sum())
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=frame.crs), crs=frame.crs)
    out = _drop(out, wrong, f"not {_KIND_LABEL[kind]} after repair", label, repairs)
    return out, repairs, stats


def _check_geometry_type(geoms: np.ndarray, kind: str, label: str) -> None:
    types = shapely.get_type_id(geoms)
    accepted = _KIND_TYPES[kind] + ((7,) if kind == "surf" else ())
    if len(geoms) and not np.isin(types, accepted).any():
        found = pd.Series(shapely.get_type_id(geoms)).map(_TYPE_NAMES).value_counts()
        summary = ", ".join(f"{name} ×{n}" for name, n in found.items())
        raise SchemaError(f"{label}: expected {_KIND_LABEL[kind]}, found {summary}; is this the right layer?")


_TYPE_NAMES = {
    0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
    5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection",
}  # fmt: skip
