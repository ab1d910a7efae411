"""Read what a run folder holds for the HTML report, and derive its small tables.

Every deliverable is optional: a missing file leaves its field ``None``; an
unreadable one also records why in :attr:`RunData.problems`, so the report can
say plainly which sections are absent and for what reason.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from territoire_geo.provenance import read_manifest

__all__ = [
    "FILES",
    "TYPEZONE_ORDER",
    "RunData",
    "alert_zones",
    "criterion_labels",
    "find_column",
    "load_run",
    "ndvi_parcel_series",
    "ndvi_zone_series",
    "zan_from_alerts",
    "zan_summary",
]

log = logging.getLogger(__name__)

#: The deliverables the report reads, by role.
FILES = {
    "zoning": "zonage.gpkg", "validation": "validation_plu.json", "alerts": "alertes_changement.gpkg",
    "classes": "changements_par_classe.csv", "units": "unites_scores.gpkg", "scores": "scores.csv",
    "sensitivity": "sensibilite.csv", "zan": "artificialisation.csv", "ndvi_zones": "ndvi_zones.csv",
    "ndvi_parcels": "ndvi_parcelles.csv", "scene": "scene.html", "criteria": "criteres.csv",
    "au_zones": "zones_au_consommation.gpkg",
}
#: Identifier-like CSV columns read as text (INSEE codes keep their leading zero, years stay "2022").
_TEXT_COLUMNS = ("commune", "insee", "code_insee", "period", "year", "zone", "LIBELLE", "TYPEZONE", "unit",
                 "unit_id", "parcel", "parcel_id", "group", "crop_group", "name", "label", "exclusion")
TYPEZONE_ORDER = ("U", "AUc", "AUs", "A", "N")
NEW_ARTIFICIAL = 3
_INSEE_PREFIX = re.compile(r"^(\d[0-9AB]\d{3})_")
_MAX_SERIES = 8


@dataclass
class RunData:
    """The readable deliverables of one run folder (``None`` when absent)."""

    run_dir: Path
    manifest: dict[str, Any]
    zoning: Any = None
    validation: dict[str, Any] | None = None
    alerts: Any = None
    classes: pd.DataFrame | None = None
    units: Any = None
    units_from: str | None = None
    sensitivity: pd.DataFrame | None = None
    zan: pd.DataFrame | None = None
    zan_from: str | None = None
    ndvi_zones: pd.DataFrame | None = None
    ndvi_parcels: pd.DataFrame | None = None
    criteria: pd.DataFrame | None = None
    au_zones: Any = None
    scene: bool = False
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def recipe(self) -> dict[str, Any]:
        """The recipe recorded in the manifest (empty dict if none)."""
        return dict(self.manifest.get("recipe") or {})

    def exists(self, role: str) -> bool:
        """Whether the run folder holds the file of ``role``."""
        return (self.run_dir / FILES[role]).exists()


def load_run(run_dir: str | Path, manifest: dict[str, Any] | None = None) -> RunData:
    """Read a finished run folder (``manifest``: use this one instead of ``manifest.json``).

    Raises
    ------
    DataError
        If the folder has no manifest (the run did not finish) and none is given.
    """
    root = Path(run_dir)
    data = RunData(root, dict(manifest) if manifest is not None else read_manifest(root))
    data.zoning = _attempt(data, "zoning", lambda p: _read_vector(p, "zone_urba"))
    data.validation = _attempt(data, "validation", _read_json)
    data.alerts = _attempt(data, "alerts", lambda p: _read_vector(p, "alertes"))
    data.classes = _attempt(data, "classes", _read_csv)
    data.units = _attempt(data, "units", lambda p: _read_vector(p, "unites"))
    data.units_from = "gpkg" if data.units is not None else None
    if data.units is None:
        data.units = _attempt(data, "scores", _read_csv)
        data.units_from = "csv" if data.units is not None else None
    data.sensitivity = _attempt(data, "sensitivity", _read_csv)
    data.criteria = _attempt(data, "criteria", _read_csv)
    data.zan = _attempt(data, "zan", _read_csv)
    data.au_zones = _attempt(data, "au_zones", lambda p: _read_vector(p, "zones_au_consommation"))
    data.zan_from = "csv" if data.zan is not None else None
    if data.zan is None and data.alerts is not None and data.zoning is not None:
        data.zan = zan_from_alerts(data.alerts, data.zoning, data.recipe)
        data.zan_from = "alerts"
    data.ndvi_zones = _attempt(data, "ndvi_zones", _read_csv)
    data.ndvi_parcels = _attempt(data, "ndvi_parcels", _read_csv)
    data.scene = data.exists("scene")
    return data


def _attempt(data: RunData, role: str, reader: Callable[[Path], Any]) -> Any:
    path = data.run_dir / FILES[role]
    if not path.exists():
        return None
    try:
        return reader(path)
    except Exception as exc:  # an unreadable deliverable must not stop the report
        log.warning("report: cannot read %s: %s", path, exc)
        data.problems[role] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        return None


def _read_vector(path: Path, layer: str) -> Any:
    layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    return gpd.read_file(path, layer=layer if layer in layers else layers[0], engine="pyogrio")


def _read_csv(path: Path) -> pd.DataFrame:
    """A deliverable CSV, identifier-like columns as text."""
    header = pd.read_csv(path, nrows=0).columns
    wanted = {c.lower() for c in _TEXT_COLUMNS}
    return pd.read_csv(path, dtype={c: "string" for c in header if str(c).lower() in wanted})


def criterion_labels(criteria: pd.DataFrame | None) -> dict[str, str]:
    """Short criterion labels (``criteres.csv``: the label up to its first parenthesis), by criterion name."""
    if criteria is None or not {"name", "label"} <= set(criteria.columns):
        return {}
    out = {}
    for name, label in zip(criteria["name"], criteria["label"], strict=True):
        if isinstance(name, str) and isinstance(label, str) and label.strip():
            short = label.split(" (")[0].strip()
            out[name] = short if len(short) <= 40 else short[:39] + "…"
    return out


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def find_column(frame: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    """The first column of ``frame`` named like one of ``candidates`` (case-insensitive)."""
    by_lower = {str(c).lower(): str(c) for c in frame.columns}
    return next((by_lower[c.lower()] for c in candidates if c.lower() in by_lower), None)


# ---------------------------------------------------------------- zoning × alerts


def _communes(zoning: Any, recipe: dict[str, Any]) -> pd.Series:
    """INSEE code of every zone: an INSEE column, else the IDURBA prefix, else the recipe's single commune."""
    column = find_column(zoning, ("INSEE", "INSEE_COM", "CODE_INSEE", "commune"))
    if column is not None:
        return zoning[column].astype("string").fillna("—")
    codes = list((recipe.get("territory") or {}).get("insee") or [])
    fallback = codes[0] if len(codes) == 1 else "—"
    if "IDURBA" in zoning.columns:
        return zoning["IDURBA"].astype("string").fillna("").map(
            lambda v: m.group(1) if (m := _INSEE_PREFIX.match(v)) else fallback)
    return pd.Series(fallback, index=zoning.index, dtype="string")


def _zone_keys(zoning: Any, recipe: dict[str, Any]) -> Any:
    """Zones with ``commune``, ``TYPEZONE`` and ``LIBELLE`` columns (text), in the alerts' CRS."""
    zones = zoning[["geometry"]].copy()
    zones["commune"] = _communes(zoning, recipe).to_numpy()
    for column in ("TYPEZONE", "LIBELLE"):
        values = zoning[column] if column in zoning.columns else pd.Series("—", index=zoning.index)
        zones[column] = values.astype("string").fillna("—").to_numpy()
    return zones


def _type_rank(code: str) -> int:
    return TYPEZONE_ORDER.index(code) if code in TYPEZONE_ORDER else len(TYPEZONE_ORDER)


def alert_zones(alerts: Any, zoning: Any) -> list[list[tuple[str, str]]]:
    """For every alert, the ``(LIBELLE, TYPEZONE)`` of the zones it touches (largest overlap first)."""
    zones = zoning.to_crs(alerts.crs) if zoning.crs != alerts.crs else zoning
    labels = zones["LIBELLE"].astype("string").fillna("—") if "LIBELLE" in zones else None
    types = zones["TYPEZONE"].astype("string").fillna("—") if "TYPEZONE" in zones else None
    tree = shapely.STRtree(zones.geometry.to_numpy())
    out: list[list[tuple[str, str]]] = []
    for geom in alerts.geometry.to_numpy():
        hits = tree.query(geom, predicate="intersects")
        areas = shapely.area(shapely.intersection(zones.geometry.to_numpy()[hits], geom))
        seen: dict[tuple[str, str], float] = {}
        for idx, area in zip(hits, areas, strict=True):
            key = (str(labels.iloc[idx]) if labels is not None else "—",
                   str(types.iloc[idx]) if types is not None else "—")
            seen[key] = seen.get(key, 0.0) + float(area)
        out.append([k for k, a in sorted(seen.items(), key=lambda kv: -kv[1]) if a > 0])
    return out


def zan_from_alerts(alerts: Any, zoning: Any, recipe: dict[str, Any]) -> pd.DataFrame:
    """New artificial surface (class-3 alerts) by commune, TYPEZONE and year of first detection.

    Each patch is cut by the zones in TYPEZONE order (U, AUc, AUs, A, N, others) so that
    overlapping zones never count the same square metre twice; what falls outside the
    zoning is reported with an empty TYPEZONE.

    Returns
    -------
    pandas.DataFrame
        ``commune, TYPEZONE, zones, year, area_ha, share`` (``zones``: the LIBELLE values).
    """
    columns = ["commune", "TYPEZONE", "zones", "year", "area_ha", "share"]
    if "class" in alerts.columns:
        alerts = alerts[pd.to_numeric(alerts["class"], errors="coerce") == NEW_ARTIFICIAL]
    if alerts.empty:
        return pd.DataFrame(columns=columns)
    zones = _zone_keys(zoning.to_crs(alerts.crs) if zoning.crs != alerts.crs else zoning, recipe)
    years = _alert_years(alerts, recipe)
    rows: list[dict[str, Any]] = []
    groups = sorted(zones.groupby(["commune", "TYPEZONE"]), key=lambda g: (_type_rank(g[0][1]), g[0]))
    for geom, year in zip(alerts.geometry.to_numpy(), years, strict=True):
        remaining = geom
        for (commune, typezone), part in groups:
            piece = shapely.intersection(remaining, part.geometry.union_all())
            if piece.is_empty or piece.area < 1.0:
                continue
            touched = shapely.area(shapely.intersection(part.geometry.to_numpy(), piece)) >= 1.0
            labels = part.loc[touched, "LIBELLE"]
            rows.append({"commune": commune, "TYPEZONE": typezone, "year": year, "area_m2": piece.area,
                         "zones": sorted(set(labels))})
            remaining = shapely.difference(remaining, piece)
        if remaining.area >= 1.0:
            rows.append({"commune": zones["commune"].mode().iat[0], "TYPEZONE": "", "year": year,
                         "area_m2": remaining.area, "zones": []})
    return _zan_table(pd.DataFrame(rows), columns)


def _alert_years(alerts: Any, recipe: dict[str, Any]) -> list[str]:
    after = str((recipe.get("periods") or {}).get("after") or "")
    default = "–".join(dict.fromkeys(p[:4] for p in after.split("/") if p)) or "—"
    if "first_seen" not in alerts.columns:
        return [default] * len(alerts)
    seen = pd.to_datetime(alerts["first_seen"], errors="coerce", utc=True)
    return [default if pd.isna(d) else str(d.year) for d in seen]


def _zan_table(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    table = rows.groupby(["commune", "TYPEZONE", "year"], sort=False).agg(
        area_m2=("area_m2", "sum"), zones=("zones", lambda z: sorted({x for group in z for x in group})))
    table = table.reset_index()
    table["area_ha"] = table["area_m2"] / 10_000
    total = table["area_ha"].sum()
    table["share"] = table["area_ha"] / total if total > 0 else np.nan
    table["zones"] = table["zones"].map(", ".join)
    order = table["TYPEZONE"].map(lambda t: _type_rank(t) if t else len(TYPEZONE_ORDER) + 1)
    table = table.assign(_order=order).sort_values(["commune", "year", "_order"])
    return table[columns].reset_index(drop=True)


def zan_summary(table: pd.DataFrame) -> tuple[float, float] | None:
    """``(total ha, ha in A and N zones)`` of a ZAN table, or None if it cannot tell.

    Long tables have ``TYPEZONE`` and ``area_ha`` columns; wide ones (as written by
    :func:`territoire_geo.planning.zan.artificialisation`) have ``area_ha_<TYPEZONE>`` columns.
    """
    area = find_column(table, ("area_ha", "surface_ha"))
    kind = find_column(table, ("TYPEZONE", "type_zone"))
    if area is not None and kind is not None:
        values = pd.to_numeric(table[area], errors="coerce").fillna(0.0)
        return float(values.sum()), float(values[_protected(table[kind])].sum())
    wide = [c for c in table.columns if str(c).startswith("area_ha_")]
    if not wide:
        return None
    values = table[wide].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    total = pd.to_numeric(table[area], errors="coerce").fillna(0.0).sum() if area else values.to_numpy().sum()
    codes = pd.Series([str(c)[len("area_ha_"):] for c in wide])
    protected = values.loc[:, _protected(codes).to_numpy()].to_numpy().sum()
    return float(total), float(protected)


def _protected(codes: pd.Series) -> pd.Series:
    """True for agricultural (A…) and natural (N…) zone codes, not AU."""
    text = codes.astype("string").fillna("").str.strip()
    return text.str.match(r"^(N|A(?!U))").fillna(False).astype(bool)


# ---------------------------------------------------------------- NDVI tables


def _dated(frame: pd.DataFrame) -> pd.DataFrame | None:
    date = find_column(frame, ("date", "time", "datetime"))
    value = find_column(frame, ("ndvi_mean", "ndvi", "mean"))
    if date is None or value is None:
        return None
    out = frame.rename(columns={date: "date", value: "ndvi"})
    out["date"] = pd.to_datetime(out["date"], errors="coerce", utc=True).dt.tz_localize(None)
    out["ndvi"] = pd.to_numeric(out["ndvi"], errors="coerce")
    return out.dropna(subset=["date", "ndvi"])


def ndvi_zone_series(frame: pd.DataFrame, zoning: Any) -> tuple[pd.DataFrame, str] | None:
    """Mean NDVI by date and zone type (or by zone when types are unknown).

    Returns ``(table with date, group, ndvi, by)`` where ``by`` is ``"type"`` or
    ``"zone"``; None if the date / value / zone columns are missing.
    """
    table = _dated(frame)
    zone = find_column(frame, ("zone", "LIBELLE", "zone_id", "id"))
    if table is None or zone is None:
        return None
    kind = find_column(frame, ("TYPEZONE",))
    if kind is None and zoning is not None and {"LIBELLE", "TYPEZONE"} <= set(zoning.columns):
        pairs = zoning[["LIBELLE", "TYPEZONE"]].astype("string").drop_duplicates()
        mapping = pairs.groupby("LIBELLE")["TYPEZONE"].agg(lambda s: s.iat[0] if len(s) == 1 else None)
        types = table[zone].astype("string").map(mapping)
        if types.notna().all():
            table = table.assign(TYPEZONE=types)
            kind = "TYPEZONE"
    by = "type" if kind is not None else "zone"
    table = table.assign(group=table[kind if kind else zone].astype("string"))
    series = table.groupby(["group", "date"], as_index=False)["ndvi"].mean()
    keep = _main_groups(series["group"], prefer=TYPEZONE_ORDER if by == "type" else ())
    return _in_order(series, keep), by


def ndvi_parcel_series(frame: pd.DataFrame) -> pd.DataFrame | None:
    """Mean, min and max NDVI of parcels by date and crop group (at most eight groups)."""
    table = _dated(frame)
    group = find_column(frame, ("crop_group", "group", "groupe", "CODE_GROUP", "culture", "crop"))
    if table is None:
        return None
    table = table.assign(group=table[group].astype("string").fillna("—") if group else "—")
    series = table.groupby(["group", "date"], as_index=False)["ndvi"].agg(["mean", "min", "max", "count"])
    parcel = find_column(frame, ("parcel_id", "parcel", "id_parcel", "parcelle", "id"))
    counts = table.groupby("group")[parcel].nunique() if parcel else table.groupby("group").size()
    keep = list(counts.sort_values(ascending=False).index[:_MAX_SERIES])
    return _in_order(series, keep)


def _in_order(series: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """Rows of ``groups`` only, the groups in the given order, dates ascending."""
    order = {g: i for i, g in enumerate(groups)}
    kept = series[series["group"].isin(order)]
    return kept.assign(_o=kept["group"].map(order)).sort_values(["_o", "date"]).drop(columns="_o").reset_index(
        drop=True)


def _main_groups(groups: pd.Series, prefer: Sequence[str]) -> list[str]:
    counts = groups.value_counts()
    names = sorted(counts.index, key=lambda g: (_type_rank(g) if prefer else 0, -counts[g], g))
    return names[:_MAX_SERIES]
