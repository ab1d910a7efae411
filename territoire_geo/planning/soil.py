"""Soil, geology, hazard and nature layers → building suitability.

Each supported layer kind maps its attributes onto three columns through a CSV table
shipped in ``territoire_geo/data/soil_<kind>.csv`` (overridable with ``table=``):

* ``SUITABILITY`` — float in [0, 1], 1 = good ground for building;
* ``CONSTRAINT`` — ``"exclusion"``, ``"penalty"`` or ``"none"``;
* ``CLASSE`` — French label of the class.

Vector kinds: ``rga`` (clay shrink-swell exposure), ``ppr_covadis`` and ``ppr_cnig``
(risk-prevention plan regulatory zones), ``znieff1``, ``znieff2``, ``natura2000`` and
``geology`` (BD Charm-50 ``S_FGEOL``). SoilGrids is a raster: use
:func:`classify_raster_values` on its pixel values.

Tables have a ``value`` column: ``|``-separated alternatives matched exactly (after
lower-casing, accent stripping and code padding) for most kinds, regular expressions
searched in the lithology text for ``geology`` (first matching row wins), and ``*`` as
the default row.
"""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS

from territoire_geo.errors import ConfigError, DataError, SchemaError, SchemaWarning
from territoire_geo.planning import _cnig
from territoire_geo.planning._encoding import map_object, recode_frame

__all__ = [
    "CONSTRAINTS",
    "KINDS",
    "RASTER_PROPERTIES",
    "RasterClassification",
    "classify",
    "classify_raster_values",
    "load_table",
    "read",
]

CONSTRAINTS = ("exclusion", "penalty", "none")
#: SoilGrids properties handled by :func:`classify_raster_values` and their scale to physical units.
RASTER_PROPERTIES: dict[str, float] = {"clay": 10.0, "sand": 10.0, "soc": 10.0, "phh2o": 10.0}
_UNCLASSIFIED = "non classé"


def _plain(text: object) -> str | None:
    """Lower-case, accent-free, single-spaced text (``None`` for missing)."""
    value = _cnig.to_text(text)
    if value is None:
        return None
    value = value.replace("œ", "oe").replace("Œ", "oe")
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"\s+", " ", value.lower()).strip()


def _code_key(width: int) -> Callable[[object], str | None]:
    def key(value: object) -> str | None:
        plain = _plain(value)
        return _cnig.normalize_code(plain, width) if plain is not None else None

    return key


@dataclass(frozen=True)
class _Kind:
    """How one layer kind is read and classified."""

    fields: tuple[str, ...]
    match: str  # "exact", "regex" or "constant"
    key: Callable[[object], str | None] = _plain
    keep: tuple[tuple[str, tuple[str, ...]], ...] = ()
    layer_pattern: str | None = None
    fallback_fields: tuple[str, ...] = ()


KINDS: dict[str, _Kind] = {
    "rga": _Kind(
        ("NIVEAU", "codeExposition", "code_expo", "CODE_EXPOSITION", "EXPOSITION", "ALEA", "NIV_ALEA"), "exact", _code_key(1)
    ),
    "ppr_covadis": _Kind(
        ("typereg", "TYPE_REG", "TYPEREGLEMENT"), "exact", _code_key(2),
        keep=(("CODEZONE", ("codezone", "CODE_ZONE")), ("SOUMISALEA", ("soumisalea",))), layer_pattern=r"zone_reg",
    ),
    "ppr_cnig": _Kind(
        ("typereglement", "TYPE_REGLEMENT", "typereg"), "exact", _code_key(2),
        keep=(("CODEZONEREGLEMENT", ("codezonereglement",)), ("LIBELLEZONEREGLEMENT", ("libellezonereglement",))),
        layer_pattern=r"zonereglementaireurba_s$",
    ),
    "znieff1": _Kind(("id_mnhn", "ID_MNHN", "NM_SFFZN", "ID_ZNIEFF", "id"), "constant", keep=(("NOM", ("nom", "NM_REGZN", "LB_ZN")),)),
    "znieff2": _Kind(("id_mnhn", "ID_MNHN", "NM_SFFZN", "ID_ZNIEFF", "id"), "constant", keep=(("NOM", ("nom", "NM_REGZN", "LB_ZN")),)),
    "natura2000": _Kind(("sitecode", "SITE_CODE", "CODE_SITE"), "constant", keep=(("SITENAME", ("sitename", "SITE_NAME", "NOM")),)),
    "geology": _Kind(
        ("LITHOLOGIE", "LITHOLOGY", "LITHO"), "regex",
        keep=(("NOTATION", ("notation",)), ("DESCR", ("descr", "DESCRIPTION"))), fallback_fields=("DESCR", "DESCRIPTION", "LEGENDE"),
    ),
}  # fmt: skip
_RASTER_KIND = "soilgrids"


def _check_kind(kind: str) -> _Kind:
    if kind == _RASTER_KIND:
        raise ConfigError(
            "'soilgrids' is a raster: use soil.classify_raster_values(values, property) on its pixels"
        )
    if kind not in KINDS:
        raise ConfigError(
            f"unknown soil layer kind {kind!r}; choose one of {', '.join([*KINDS, _RASTER_KIND])}"
        )
    return KINDS[kind]


# ------------------------------------------------------------------- tables
def load_table(kind: str, table: str | os.PathLike | pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the classification table of ``kind`` (shipped CSV, a CSV path or a DataFrame).

    Raises
    ------
    ConfigError
        Unknown kind, or a table without the required columns or with values out of range.
    """
    if kind != _RASTER_KIND:
        _check_kind(kind)
    if table is None:
        path = resources.files("territoire_geo").joinpath("data", f"soil_{kind}.csv")
        with path.open("r", encoding="utf-8") as fh:
            frame = pd.read_csv(fh, dtype=str, keep_default_na=False)
    elif isinstance(table, pd.DataFrame):
        frame = table.astype(str).copy()
    else:
        frame = pd.read_csv(Path(table), dtype=str, keep_default_na=False, encoding="utf-8")
    return _check_table(frame, kind)


def _check_table(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    needed = ["CLASSE", "SUITABILITY", "CONSTRAINT"] + (
        ["property", "min", "max"] if kind == _RASTER_KIND else ["value"]
    )
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ConfigError(f"{kind} table lacks column(s) {', '.join(missing)}; needs {', '.join(needed)}")
    frame = frame.copy()
    frame["SUITABILITY"] = pd.to_numeric(frame["SUITABILITY"], errors="coerce")
    if frame["SUITABILITY"].isna().any() or not frame["SUITABILITY"].between(0, 1).all():
        raise ConfigError(f"{kind} table: SUITABILITY must be numbers between 0 and 1")
    bad = sorted(set(frame["CONSTRAINT"]) - set(CONSTRAINTS))
    if bad:
        raise ConfigError(f"{kind} table: CONSTRAINT {', '.join(bad)} not in {', '.join(CONSTRAINTS)}")
    return frame


# --------------------------------------------------------------- classifying
def _find_field(frame: pd.DataFrame, aliases: tuple[str, ...]) -> str | None:
    keys = {_cnig.field_key(c): c for c in frame.columns}
    return next((keys[_cnig.field_key(a)] for a in aliases if _cnig.field_key(a) in keys), None)


def _lookup_exact(keys: pd.Series, table: pd.DataFrame, key: Callable[[object], str | None]) -> pd.Series:
    index: dict[str, int] = {}
    for row, cell in enumerate(table["value"]):
        for alternative in str(cell).split("|"):
            normalised = "*" if alternative.strip() == "*" else key(alternative)
            if normalised is not None:
                index.setdefault(normalised, row)
    default = index.get("*", -1)
    return pd.Series([index.get(k, default) if k is not None else default for k in keys], index=keys.index)


def _lookup_regex(texts: pd.Series, table: pd.DataFrame) -> pd.Series:
    rules = [(row, re.compile(str(v))) for row, v in enumerate(table["value"]) if str(v).strip() != "*"]
    default = next((row for row, v in enumerate(table["value"]) if str(v).strip() == "*"), -1)
    return pd.Series(
        [next((row for row, rx in rules if t and rx.search(t)), default) for t in texts], index=texts.index
    )


def _missing_field(frame: pd.DataFrame, spec: _Kind, kind: str) -> SchemaError:
    tried = ", ".join(spec.fields + spec.fallback_fields)
    return SchemaError(
        f"{kind} layer: expected field {spec.fields[0]!r} not found (aliases tried: {tried}; "
        f"fields present: {', '.join(map(str, frame.columns))})"
    )


def _keys(frame: pd.DataFrame, spec: _Kind, kind: str) -> pd.Series:
    column = _find_field(frame, spec.fields)
    fallback = _find_field(frame, spec.fallback_fields) if spec.fallback_fields else None
    if column is None and fallback is None:
        raise _missing_field(frame, spec, kind)
    if spec.match == "regex":
        parts = [map_object(frame[c], _plain) for c in (column, fallback) if c is not None]
        return pd.Series(
            [" | ".join(p for p in row if p) or None for row in zip(*parts, strict=True)], index=frame.index
        )
    return map_object(frame[column], spec.key)


def classify(
    frame: gpd.GeoDataFrame | pd.DataFrame, kind: str, table: str | os.PathLike | pd.DataFrame | None = None
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Add ``SOIL_KIND``, ``SOIL_KEY``, ``CLASSE``, ``SUITABILITY`` and ``CONSTRAINT`` columns (pure).

    Parameters
    ----------
    frame
        A layer with the attributes of ``kind`` (field names matched case-insensitively).
    kind
        One of :data:`KINDS`.
    table
        Classification table overriding the shipped one (CSV path or DataFrame).

    Returns
    -------
    GeoDataFrame or DataFrame
        A copy with the added columns; unmatched values get ``SUITABILITY`` NaN,
        ``CONSTRAINT`` ``"none"`` and ``CLASSE`` ``"non classé"`` (with a
        :class:`~territoire_geo.errors.SchemaWarning`).

    Raises
    ------
    ConfigError
        Unknown kind or invalid table.
    SchemaError
        The field the kind needs is missing.
    """
    spec = _check_kind(kind)
    rules = load_table(kind, table)
    if spec.match == "constant":
        if _find_field(frame, spec.fields) is None:
            raise _missing_field(frame, spec, kind)
        keys = pd.Series(None, index=frame.index, dtype=object)
    else:
        keys = _keys(frame, spec, kind)
    rows = _lookup_regex(keys, rules) if spec.match == "regex" else _lookup_exact(keys, rules, spec.key)
    out = frame.copy()
    for name, aliases in spec.keep:
        column = _find_field(frame, aliases)
        if column is not None and name not in out.columns:
            out[name] = map_object(frame[column], _cnig.to_text)
    out["SOIL_KIND"] = kind
    out["SOIL_KEY"] = keys
    _assign(out, rows, rules)
    _warn_unmatched(keys, rows, kind)
    return out


def _assign(out: pd.DataFrame, rows: pd.Series, rules: pd.DataFrame) -> None:
    matched = rows.to_numpy() >= 0
    position = np.where(matched, rows.to_numpy(), 0)
    out["CLASSE"] = np.where(matched, rules["CLASSE"].to_numpy()[position], _UNCLASSIFIED).astype(object)
    out["SUITABILITY"] = np.where(matched, rules["SUITABILITY"].to_numpy(dtype=float)[position], np.nan)
    out["CONSTRAINT"] = np.where(matched, rules["CONSTRAINT"].to_numpy()[position], "none").astype(object)


def _warn_unmatched(keys: pd.Series, rows: pd.Series, kind: str) -> None:
    unmatched = rows < 0
    if unmatched.any():
        values = sorted({str(v) for v in keys[unmatched]})[:10]
        warnings.warn(
            f"{kind}: {int(unmatched.sum())} features not classified (values: {', '.join(values)}); "
            "add rows to the table or pass table=",
            SchemaWarning,
            stacklevel=3,
        )


# ---------------------------------------------------------------------- read
def _pick_layer(path: Path, spec: _Kind, layer: str | None) -> str | None:
    if layer is not None or spec.layer_pattern is None:
        return layer
    names = [str(row[0]) for row in pyogrio.list_layers(path)]
    matching = [n for n in names if re.search(spec.layer_pattern, n, re.I)]
    return matching[0] if matching else None


def _read_file(path: Path, spec: _Kind, layer: str | None) -> gpd.GeoDataFrame:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    dbf_based = path.suffix.lower() in {".shp", ".dbf", ".tab", ".mif"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        frame = pyogrio.read_dataframe(
            path, layer=_pick_layer(path, spec, layer), encoding="latin1" if dbf_based else None
        )
    if dbf_based:
        frame, _ = recode_frame(frame)
    return frame


def read(
    path_or_gdf: str | os.PathLike | gpd.GeoDataFrame,
    kind: str,
    *,
    table: str | os.PathLike | pd.DataFrame | None = None,
    crs: str | int | CRS = "EPSG:2154",
    layer: str | None = None,
    source_crs: str | int | CRS | None = None,
) -> gpd.GeoDataFrame:
    """Read a soil/risk/nature layer, repair its geometry and classify it.

    Parameters
    ----------
    path_or_gdf
        A vector file (Shapefile, GeoPackage, GeoJSON…) or a GeoDataFrame.
    kind
        One of :data:`KINDS` (``rga``, ``ppr_covadis``, ``ppr_cnig``, ``znieff1``,
        ``znieff2``, ``natura2000``, ``geology``).
    table
        Classification table overriding the shipped one.
    crs
        Output CRS.
    layer
        Layer of a multi-layer file (default: ``*_zonereglementaireurba_s`` for
        ``ppr_cnig``, ``*ZONE_REG*`` for ``ppr_covadis``, else the first layer).
    source_crs
        CRS to assume when the file has none (Lambert-93-looking coordinates are
        otherwise assumed to be EPSG:2154, with a warning).

    Returns
    -------
    GeoDataFrame
        Polygons in ``crs`` with the columns added by :func:`classify`; the repairs
        made (Z dropped, ``make_valid``, CRS assumed) are listed in ``.attrs["repairs"]``.
    """
    spec = _check_kind(kind)
    label = f"{kind} layer"
    frame = (
        path_or_gdf.copy()
        if isinstance(path_or_gdf, gpd.GeoDataFrame)
        else _read_file(Path(path_or_gdf), spec, layer)
    )
    if len(frame) == 0:
        raise DataError(f"{label} has no features")
    repairs: list[str] = []
    if _cnig.resolve_crs(frame, label, CRS.from_user_input(source_crs) if source_crs else None, repairs):
        warnings.warn(
            f"{label}: no CRS; coordinates look like Lambert-93 so EPSG:2154 was assumed",
            SchemaWarning,
            stacklevel=2,
        )
    frame, more, _ = _cnig.clean_geometry(frame, "INFO_SURF", label)
    out = classify(_cnig.to_target(frame, CRS.from_user_input(crs)).reset_index(drop=True), kind, table)
    out.attrs["repairs"] = repairs + more
    return out


# -------------------------------------------------------------------- raster
@dataclass(frozen=True)
class RasterClassification:
    """Per-pixel classes of a SoilGrids property.

    Attributes
    ----------
    suitability
        Float32 array, NaN where there is no data or no class.
    class_index
        Int16 array of row positions in ``table`` (-1 = no data / no class).
    table
        The rows of the classification table for this property.
    """

    suitability: np.ndarray
    class_index: np.ndarray
    table: pd.DataFrame

    @property
    def classe(self) -> np.ndarray:
        """French class labels (``"non classé"`` where ``class_index`` is -1)."""
        labels = np.append(self.table["CLASSE"].to_numpy(dtype=object), _UNCLASSIFIED)
        return labels[np.where(self.class_index >= 0, self.class_index, len(labels) - 1)]

    @property
    def constraint(self) -> np.ndarray:
        """``exclusion``/``penalty``/``none`` per pixel."""
        labels = np.append(self.table["CONSTRAINT"].to_numpy(dtype=object), "none")
        return labels[np.where(self.class_index >= 0, self.class_index, len(labels) - 1)]


def classify_raster_values(
    values: np.ndarray,
    property: str,
    *,
    scaled: bool = True,
    nodata: float | None = -32768,
    table: str | os.PathLike | pd.DataFrame | None = None,
) -> RasterClassification:
    """Classify SoilGrids pixel values of ``clay``, ``sand``, ``soc`` or ``phh2o``.

    Parameters
    ----------
    values
        Pixel array (any shape).
    property
        SoilGrids property name.
    scaled
        True for SoilGrids mapped integers (g/kg for clay/sand, dg/kg for soc, pH×10),
        divided by 10 before applying the thresholds (%, g/kg, pH).
    nodata
        Value marking missing pixels (NaN is always missing).
    table
        Threshold table overriding ``soil_soilgrids.csv`` (columns ``property, min, max,
        CLASSE, SUITABILITY, CONSTRAINT``; intervals are ``[min, max)``).

    Returns
    -------
    RasterClassification
    """
    if property not in RASTER_PROPERTIES:
        raise ConfigError(
            f"unknown SoilGrids property {property!r}; choose one of {', '.join(RASTER_PROPERTIES)}"
        )
    rules = load_table(_RASTER_KIND, table)
    rules = rules[rules["property"] == property].reset_index(drop=True)
    data = np.asarray(values, dtype="float64")
    missing = np.isnan(data) | ((data == nodata) if nodata is not None else False)
    physical = data / RASTER_PROPERTIES[property] if scaled else data
    index = np.full(data.shape, -1, dtype="int16")
    low, high = rules["min"].astype(float).to_numpy(), rules["max"].astype(float).to_numpy()
    for row in range(len(rules)):  # a handful of classes, each vectorised over all pixels
        index[(index < 0) & ~missing & (physical >= low[row]) & (physical < high[row])] = row
    suitability = np.where(
        index >= 0, rules["SUITABILITY"].to_numpy(dtype=float)[np.maximum(index, 0)], np.nan
    )
    return RasterClassification(suitability.astype("float32"), index, rules)
