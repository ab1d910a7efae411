"""Quality report of a CNIG zoning set: topology, codes, dates, encoding, metadata.

All checks are vectorised: overlapping pairs come from the spatial index
(``sindex.query(predicate="intersects")``) followed by one vectorised
``shapely.intersection``; gaps are the interior rings of the union of the zones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from territoire_geo.planning import _cnig


class ZoningLike(Protocol):
    """What the checks read of a :class:`~territoire_geo.planning.zoning.ZoningSet` (structural: no import, no circle)."""

    zones: gpd.GeoDataFrame
    doc_urba: pd.DataFrame | None
    source: str
    cnig_version: str
    encodings: dict[str, Any]
    fixes: dict[str, dict[str, int]]

    def get(self, table: str) -> pd.DataFrame | None:
        """A table by CNIG name."""

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """The spatial layers present."""

__all__ = ["OVERLAP_MIN_M2", "Issue", "ValidationReport", "find_gaps", "find_overlaps", "validate"]

#: Intersections smaller than this (m²) are numerical noise, not overlaps.
OVERLAP_MIN_M2 = 0.01
_BLOCKING = {"no_zones", "missing_field", "no_crs"}
_EXPECTED = {
    "2014": ("LIBELONG", "DESTDOMI", "NOMFIC", "URLFIC", "INSEE", "DATAPPRO", "DATVALID"),
    "2017": ("LIBELONG", "NOMFIC", "URLFIC", "IDURBA", "DATVALID"),
    "2022": (
        "LIBELONG",
        "FORMDOMI",
        "DESTOUI",
        "DESTCDT",
        "DESTNON",
        "NOMFIC",
        "URLFIC",
        "IDURBA",
        "DATVALID",
        "SYMBOLE",
    ),
}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass
class Issue:
    """One finding of :func:`validate`.

    Attributes
    ----------
    severity
        ``"error"``, ``"warning"`` or ``"info"``.
    code
        Stable identifier (``overlap``, ``gap``, ``invalid_geometry``, ``multipolygon``,
        ``z_coordinates``, ``unknown_code``, ``missing_field``, ``bad_date``,
        ``encoding_repaired``, ``typezone_inferred``, ``duplicate_doc_urba``…).
    message
        Human-readable explanation.
    count
        Number of objects concerned.
    area_m2
        Total area concerned, when meaningful.
    ids
        Row labels (or pairs of labels) concerned, when meaningful.
    layer
        Table the issue belongs to.
    blocking
        True when the set cannot be used as is (no zones, mandatory field, no CRS).
    """

    severity: str
    code: str
    message: str
    count: int = 1
    area_m2: float | None = None
    ids: list[Any] | None = None
    layer: str = "ZONE_URBA"
    blocking: bool = False


@dataclass
class ValidationReport:
    """Result of :func:`validate`."""

    issues: list[Issue]
    counts_by_typezone: pd.DataFrame
    overlaps: gpd.GeoDataFrame
    gaps: gpd.GeoDataFrame
    source: str = "<memory>"
    cnig_version: str = "unknown"
    encodings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """True only when an error makes the file unusable (no zones, mandatory field, no CRS)."""
        return any(issue.blocking for issue in self.issues)

    def by_code(self, code: str) -> list[Issue]:
        """Issues with a given code."""
        return [issue for issue in self.issues if issue.code == code]

    @property
    def codes(self) -> set[str]:
        """Set of issue codes present."""
        return {issue.code for issue in self.issues}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (geometries left out)."""
        counts = self.counts_by_typezone.reset_index().to_dict(orient="records")
        return {
            "source": self.source,
            "cnig_version": self.cnig_version,
            "blocking": self.blocking,
            "issues": [_jsonable(asdict(issue)) for issue in self.issues],
            "counts_by_typezone": _jsonable(counts),
            "overlaps": {"count": len(self.overlaps), "area_m2": _round(self.overlaps["area_m2"].sum())},
            "gaps": {"count": len(self.gaps), "area_m2": _round(self.gaps["area_m2"].sum())},
            "encodings": _jsonable(self.encodings),
        }

    def to_text(self) -> str:
        """A plain-text table for terminals and logs."""
        lines = [f"Validation of {self.source} (CNIG {self.cnig_version})", ""]
        lines.append(f"{'severity':<8}  {'code':<20}  {'layer':<18}  {'count':>6}  {'area m²':>11}  message")
        for issue in sorted(self.issues, key=lambda i: _SEVERITY_ORDER.get(i.severity, 3)):
            area = f"{issue.area_m2:,.1f}" if issue.area_m2 is not None else ""
            lines.append(
                f"{issue.severity:<8}  {issue.code:<20}  {issue.layer:<18}  {issue.count:>6}  {area:>11}  {issue.message}"
            )
        lines += ["", "TYPEZONE      n   area_ha"]
        for typezone, row in self.counts_by_typezone.iterrows():
            lines.append(f"{typezone!s:<8} {int(row['n']):>6} {row['area_ha']:>9.2f}")
        lines.append("")
        lines.append("BLOCKING: the file cannot be used as is" if self.blocking else "Not blocking.")
        return "\n".join(lines)


def _round(value: float) -> float:
    return round(float(value), 3)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


# ------------------------------------------------------------------ topology
def _metric(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if zones.crs is not None and zones.crs.is_geographic:
        return zones.to_crs(zones.estimate_utm_crs())
    return zones


def _valid_geoms(zones: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(zones.geometry.array, dtype=object)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        with np.errstate(all="ignore"):
            geoms[invalid] = _cnig.polygonal(shapely.make_valid(geoms[invalid]))
    return geoms


def find_overlaps(zones: gpd.GeoDataFrame, min_area_m2: float = OVERLAP_MIN_M2) -> gpd.GeoDataFrame:
    """Pairs of zones whose intersection is larger than ``min_area_m2``.

    Returns
    -------
    GeoDataFrame
        Columns ``index_left``, ``index_right`` (row labels), ``LIBELLE_left/right``,
        ``TYPEZONE_left/right``, ``area_m2`` and the polygonal intersection.
    """
    zones = _metric(zones[~(zones.geometry.isna() | zones.geometry.is_empty)])
    geoms = _valid_geoms(zones)
    series = gpd.GeoSeries(geoms, index=zones.index, crs=zones.crs)
    left, right = series.sindex.query(series, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    with np.errstate(all="ignore"):
        inter = shapely.intersection(geoms[left], geoms[right])
    area = shapely.area(inter)
    big = area > min_area_m2
    left, right, inter, area = left[big], right[big], inter[big], area[big]
    data = {"index_left": zones.index.to_numpy()[left], "index_right": zones.index.to_numpy()[right]}
    for column in ("LIBELLE", "TYPEZONE"):
        if column in zones.columns:
            values = zones[column].to_numpy()
            data[f"{column}_left"], data[f"{column}_right"] = values[left], values[right]
    data["area_m2"] = area
    return gpd.GeoDataFrame(data, geometry=_cnig.polygonal(inter), crs=zones.crs)


def find_gaps(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Holes inside the area covered by the zones (interior rings of their union).

    Returns
    -------
    GeoDataFrame
        One polygon per hole with its ``area_m2``.
    """
    zones = _metric(zones[~(zones.geometry.isna() | zones.geometry.is_empty)])
    if zones.empty:
        return gpd.GeoDataFrame({"area_m2": []}, geometry=[], crs=zones.crs)
    with np.errstate(all="ignore"):
        union = shapely.union_all(_valid_geoms(zones))
    polygons = shapely.get_parts(union)
    polygons = polygons[shapely.get_type_id(polygons) == 3]
    rings, owner = shapely.get_rings(polygons, return_index=True)
    first = np.r_[True, owner[1:] != owner[:-1]]  # each polygon's exterior ring comes first
    holes = shapely.polygons(rings[~first])
    return gpd.GeoDataFrame({"area_m2": shapely.area(holes)}, geometry=holes, crs=zones.crs)


# -------------------------------------------------------------------- checks
def _check_basics(zoning: ZoningLike, issues: list[Issue]) -> bool:
    zones = zoning.zones
    if zones is None or len(zones) == 0:
        issues.append(Issue("error", "no_zones", "ZONE_URBA has no features", 0, blocking=True))
        return False
    missing = [f for f in ("LIBELLE", "TYPEZONE") if f not in zones.columns]
    if missing:
        issues.append(
            Issue(
                "error",
                "missing_field",
                f"mandatory field(s) {', '.join(missing)} missing",
                len(missing),
                blocking=True,
            )
        )
    if zones.crs is None:
        issues.append(
            Issue(
                "error", "no_crs", "ZONE_URBA has no CRS; areas and overlays are meaningless", blocking=True
            )
        )
    for name in _EXPECTED.get(zoning.cnig_version, ()):
        if name not in zones.columns:
            issues.append(
                Issue("warning", "missing_field", f"{name} expected in a {zoning.cnig_version} ZONE_URBA")
            )
    return True


def _check_geometry(zones: gpd.GeoDataFrame, zoning: ZoningLike, issues: list[Issue]) -> None:
    geoms = np.asarray(zones.geometry.array, dtype=object)
    ids = zones.index.to_numpy()
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        issues.append(
            Issue(
                "error",
                "invalid_geometry",
                "invalid geometries (run fix())",
                int(invalid.sum()),
                ids=ids[invalid].tolist(),
            )
        )
    multi = shapely.get_type_id(geoms) == 6
    parts = np.where(multi, shapely.get_num_geometries(geoms), 1)
    if (parts > 1).any():
        many = parts > 1
        area = float(shapely.area(geoms[many]).sum())
        message = "multi-part MultiPolygons are forbidden by the CNIG standard (kept)"
        issues.append(Issue("warning", "multipolygon", message, int(many.sum()), area, ids[many].tolist()))
    if (multi & (parts == 1)).any():
        single = multi & (parts == 1)
        message = "single-part MultiPolygons (export artefact, harmless)"
        issues.append(Issue("info", "multipolygon", message, int(single.sum()), ids=ids[single].tolist()))
    has_z = shapely.has_z(geoms)
    if has_z.any():
        issues.append(
            Issue("warning", "z_coordinates", "Z coordinates present (run fix())", int(has_z.sum()))
        )
    for table, stats in zoning.fixes.items():
        for code in ("z_coordinates", "invalid_geometry"):
            if stats.get(code):
                what = (
                    "Z coordinates removed"
                    if code == "z_coordinates"
                    else "invalid geometries repaired (make_valid)"
                )
                issues.append(Issue("info", code, f"{what} when reading", stats[code], layer=table))


def _check_topology(
    zones: gpd.GeoDataFrame, issues: list[Issue]
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    overlaps, gaps = find_overlaps(zones), find_gaps(zones)
    if len(overlaps):
        pairs = list(zip(overlaps["index_left"].tolist(), overlaps["index_right"].tolist(), strict=True))
        total = float(overlaps["area_m2"].sum())
        issues.append(
            Issue(
                "warning",
                "overlap",
                f"{len(overlaps)} overlapping zone pairs ({total / 1e4:.2f} ha)",
                len(overlaps),
                total,
                pairs,
            )
        )
    if len(gaps):
        total = float(gaps["area_m2"].sum())
        small = int((gaps["area_m2"] < 100).sum())
        issues.append(
            Issue(
                "warning",
                "gap",
                f"{len(gaps)} holes inside the zoning ({small} under 100 m²; {total:,.1f} m²)",
                len(gaps),
                total,
            )
        )
    return overlaps, gaps


def _check_typezone(zones: gpd.GeoDataFrame, issues: list[Issue]) -> None:
    if "TYPEZONE" not in zones.columns:
        return
    missing = zones["TYPEZONE"].isna()
    unknown = ~missing & ~zones["TYPEZONE"].isin(_cnig.TYPEZONES)
    if unknown.any():
        values = sorted({str(v) for v in zones.loc[unknown, "TYPEZONE"]})
        message = f"TYPEZONE outside U/AUc/AUs/A/N: {', '.join(values)}"
        issues.append(
            Issue("error", "unknown_code", message, int(unknown.sum()), ids=zones.index[unknown].tolist())
        )
    if missing.any():
        message = "zones without TYPEZONE (not inferable from LIBELLE)"
        issues.append(
            Issue("error", "missing_value", message, int(missing.sum()), ids=zones.index[missing].tolist())
        )
    if "TYPEZONE_INFERRED" in zones.columns and zones["TYPEZONE_INFERRED"].any():
        n = int(zones["TYPEZONE_INFERRED"].sum())
        issues.append(
            Issue(
                "warning",
                "typezone_inferred",
                "TYPEZONE inferred from LIBELLE",
                n,
                ids=zones.index[zones["TYPEZONE_INFERRED"]].tolist(),
            )
        )
    if "TYPEZONE_ORIG" in zones.columns:
        legacy = zones["TYPEZONE_ORIG"].isin(["Ah", "Nh", "Nd", "AH", "NH", "ND", "ah", "nh", "nd"])
        if legacy.any():
            values = zones.loc[legacy, "TYPEZONE_ORIG"].value_counts().to_dict()
            text = ", ".join(f"{k} ×{v}" for k, v in values.items())
            issues.append(
                Issue(
                    "info",
                    "typezone_legacy",
                    f"2014 TYPEZONE values mapped to A/N ({text}); kept in TYPEZONE_ORIG",
                    int(legacy.sum()),
                )
            )
    if "LIBELLE" in zones.columns and zones["LIBELLE"].isna().any():
        issues.append(
            Issue("warning", "missing_value", "zones without LIBELLE", int(zones["LIBELLE"].isna().sum()))
        )


def _check_codes(zoning: ZoningLike, issues: list[Issue]) -> None:
    for table, column, kind in (
        ("PRESCRIPTION_SURF", "TYPEPSC", "prescriptions"), ("PRESCRIPTION_LIN", "TYPEPSC", "prescriptions"),
        ("PRESCRIPTION_PCT", "TYPEPSC", "prescriptions"), ("INFO_SURF", "TYPEINF", "informations"),
        ("INFO_LIN", "TYPEINF", "informations"), ("INFO_PCT", "TYPEINF", "informations"),
    ):  # fmt: skip
        frame = zoning.get(table)
        if frame is None or column not in frame.columns:
            continue
        sub = "S" + column
        stypes = frame[sub].fillna("00") if sub in frame.columns else pd.Series("00", index=frame.index)
        codes = frame[column] + "-" + stypes
        known = set(_cnig.code_list(kind)["code"])
        unknown = ~codes.isin(known)
        if unknown.any():
            values = ", ".join(sorted({str(v) for v in codes[unknown]}))
            issues.append(Issue("warning", "unknown_code", f"{column}-{sub} not in the CNIG list: {values}", int(unknown.sum()),
                                ids=frame.index[unknown].tolist(), layer=table))  # fmt: skip


def _check_dates(zoning: ZoningLike, issues: list[Issue]) -> None:
    for table in ("ZONE_URBA", "PRESCRIPTION_SURF", "PRESCRIPTION_LIN", "PRESCRIPTION_PCT", "INFO_SURF", "INFO_LIN",
                  "INFO_PCT", "DOC_URBA"):  # fmt: skip
        frame = zoning.get(table)
        if frame is None:
            continue
        for column in ("DATAPPRO", "DATVALID", "DATEFIN", "DATEREF"):
            if column not in frame.columns:
                continue
            values = frame[column].dropna()
            ok = values.map(
                lambda v, c=column: _cnig.is_valid_date(
                    v, allow_zero=c == "DATAPPRO", allow_year_only=c == "DATEREF"
                )
            )
            if (~ok).any():
                bad = ", ".join(sorted({str(v) for v in values[~ok]})[:5])
                issues.append(
                    Issue(
                        "warning", "bad_date", f"{column} not AAAAMMJJ: {bad}", int((~ok).sum()), layer=table
                    )
                )
    _check_datvalid(zoning, issues)


def _check_datvalid(zoning: ZoningLike, issues: list[Issue]) -> None:
    zones = zoning.zones
    if "DATVALID" not in zones.columns:
        return
    datappro = zones["DATAPPRO"] if "DATAPPRO" in zones.columns else None
    doc = zoning.doc_urba
    if datappro is None and doc is not None and "DATAPPRO" in doc.columns and doc["DATAPPRO"].nunique() == 1:
        datappro = pd.Series(doc["DATAPPRO"].iloc[0], index=zones.index)
    if datappro is None:
        return
    both = zones["DATVALID"].map(_cnig.is_valid_date) & datappro.map(_cnig.is_valid_date)
    late = both & (zones["DATVALID"].where(both, "") > datappro.where(both, ""))
    if late.any():
        issues.append(
            Issue(
                "warning",
                "bad_date",
                "DATVALID later than DATAPPRO",
                int(late.sum()),
                ids=zones.index[late].tolist(),
            )
        )


def _check_doc_urba(zoning: ZoningLike, issues: list[Issue]) -> None:
    doc = zoning.doc_urba
    if doc is None:
        issues.append(Issue("info", "missing_table", "no DOC_URBA table", 0, layer="DOC_URBA"))
        return
    if "IDURBA" in doc.columns and doc["IDURBA"].duplicated().any():
        dup = sorted(set(doc.loc[doc["IDURBA"].duplicated(), "IDURBA"]))
        issues.append(Issue("warning", "duplicate_doc_urba", f"several DOC_URBA rows for {', '.join(dup)}",
                            int(doc["IDURBA"].duplicated(keep=False).sum()), ids=dup, layer="DOC_URBA"))  # fmt: skip


def _check_idurba(zoning: ZoningLike, issues: list[Issue]) -> None:
    doc = zoning.doc_urba
    if doc is None or "IDURBA" not in doc.columns:
        return
    known = set(doc["IDURBA"].dropna())
    for table, frame in zoning.layers().items():
        if "IDURBA" not in frame.columns:
            continue
        other = frame["IDURBA"].notna() & ~frame["IDURBA"].isin(known)
        if other.any():
            values = ", ".join(sorted(set(frame.loc[other, "IDURBA"])))
            issues.append(Issue("warning", "idurba_mismatch", f"IDURBA not in DOC_URBA: {values}", int(other.sum()),
                                ids=frame.index[other].tolist(), layer=table.upper()))  # fmt: skip
    if {"ETAT", "DATAPPRO", "DATEFIN"} <= set(doc.columns):
        same = (doc["ETAT"] == "03") & (doc["DATEFIN"] == doc["DATAPPRO"])
        if same.any():
            issues.append(Issue("warning", "bad_date", "DATEFIN equals DATAPPRO on an enforceable (ETAT 03) plan",
                                int(same.sum()), layer="DOC_URBA"))  # fmt: skip


def _check_encodings(zoning: ZoningLike, issues: list[Issue]) -> None:
    for table, report in zoning.encodings.items():
        if not report.repaired:
            continue
        said = f".cpg says {report.declared!r}" if report.declared else "no .cpg"
        extra = f"; {report.mojibake_fixed} double-encoded values repaired" if report.mojibake_fixed else ""
        issues.append(
            Issue("info", "encoding_repaired", f"{said}, text is {report.found}{extra}", layer=table)
        )


def counts_by_typezone(zones: gpd.GeoDataFrame) -> pd.DataFrame:
    """Number of zones and area (ha) per TYPEZONE (missing values as ``"(none)"``)."""
    metric = _metric(zones)
    frame = pd.DataFrame(
        {
            "TYPEZONE": metric.get("TYPEZONE", pd.Series(None, index=metric.index)).fillna("(none)"),
            "area": metric.area / 1e4,
        }
    )
    out = frame.groupby("TYPEZONE").agg(n=("area", "size"), area_ha=("area", "sum"))
    return out.sort_values("n", ascending=False)


def validate(zoning: ZoningLike) -> ValidationReport:
    """Check a :class:`~territoire_geo.planning.zoning.ZoningSet` against the CNIG rules.

    Parameters
    ----------
    zoning
        A set from :func:`~territoire_geo.planning.zoning.read` or built by hand.

    Returns
    -------
    ValidationReport
        Issues (errors, warnings, infos), counts per TYPEZONE, overlapping pairs and gaps.
    """
    issues: list[Issue] = []
    empty = gpd.GeoDataFrame({"area_m2": []}, geometry=[], crs=getattr(zoning.zones, "crs", None))
    overlaps, gaps, counts = empty, empty, pd.DataFrame({"n": [], "area_ha": []})
    if _check_basics(zoning, issues):
        zones = zoning.zones
        _check_geometry(zones, zoning, issues)
        overlaps, gaps = _check_topology(zones, issues)
        _check_typezone(zones, issues)
        counts = counts_by_typezone(zones)
    _check_codes(zoning, issues)
    _check_dates(zoning, issues)
    _check_doc_urba(zoning, issues)
    _check_idurba(zoning, issues)
    _check_encodings(zoning, issues)
    encodings = {t: r.to_dict() for t, r in zoning.encodings.items()}
    return ValidationReport(issues, counts, overlaps, gaps, zoning.source, zoning.cnig_version, encodings)
