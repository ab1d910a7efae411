"""Artificialisation alerts accounted per commune, zone type and period; AU zones consumed.

Alerts are the new-artificial-surface patches of :func:`territoire_geo.analysis.change.patches`
(or any polygons with a ``first_seen`` date or a ``period`` label). They are an
**alert layer, not the legal measure** (domain notes §3.2, §4.2): the accounts say
where to look, OCS GE and the land files say what counts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from territoire_geo.errors import DataError
from territoire_geo.planning._geometry import cut, in_crs, polygons

__all__ = ["artificialisation"]

log = logging.getLogger(__name__)
ZONE_TYPES = ("U", "AUc", "AUs", "A", "N")
_INSEE_COLUMNS = ("INSEE", "insee", "code_insee", "CODE_INSEE", "insee_com", "INSEE_COM", "code")
_NEW_ARTIFICIAL = "new_artificial_surface"


def _alerts(patches: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
    patches = polygons(in_crs(patches, crs, "change patches"), "change patches")
    for column in ("class_name", "change"):
        if column in patches.columns:
            patches = patches[patches[column] == _NEW_ARTIFICIAL]
            break
    return patches.reset_index(drop=True)


def _parse_period(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    start, _, end = str(text).partition("/")
    first = pd.Timestamp(start)
    last = pd.Timestamp(end) if end else pd.Timestamp(f"{first.year}-12-31") if len(start) == 4 else first
    return first, last


def _dates(patches: gpd.GeoDataFrame, periods: Sequence[str] | None) -> tuple[pd.Series, pd.Series]:
    """Period label and reference date (first seen, or period end) of each alert."""
    if "first_seen" in patches.columns:
        dates = pd.to_datetime(patches["first_seen"], errors="coerce")
        if periods is None:
            labels = dates.dt.year.astype("Int64").astype(str).replace("<NA>", "undated")
            return labels, dates
        labels = pd.Series(np.where(dates.isna(), "undated", "other"), index=patches.index, dtype=object)
        for period in periods:
            first, last = _parse_period(period)
            labels[(dates >= first) & (dates <= last + pd.Timedelta(days=1) - pd.Timedelta("1ns"))] = period
        return labels, dates
    if "period" in patches.columns:
        labels = patches["period"].astype(str)
        ends = {p: _parse_period(p)[1] if re.match(r"^\d{4}", p) else pd.NaT for p in labels.unique()}
        return labels, pd.to_datetime(labels.map(ends))
    log.info("change patches carry neither first_seen nor period: accounted as 'all', undated")
    return pd.Series("all", index=patches.index), pd.Series(pd.NaT, index=patches.index, dtype="datetime64[ns]")


def _commune_codes(zones: gpd.GeoDataFrame) -> pd.Series:
    for column in _INSEE_COLUMNS:
        if column in zones.columns:
            return zones[column].astype(str)
    if "IDURBA" in zones.columns:
        code = zones["IDURBA"].astype(str).str.extract(r"^(\d[\dAB]\d{3})", expand=False)
        return code.fillna("unknown")
    return pd.Series("unknown", index=zones.index)


def _approval_dates(zoning: Any, zones: gpd.GeoDataFrame) -> pd.Series:
    """PLU approval date per zone: DATAPPRO (zone or DOC_URBA), else DATVALID."""
    approval = pd.Series(pd.NaT, index=zones.index, dtype="datetime64[ns]")
    if "DATAPPRO" in zones.columns:
        approval = pd.to_datetime(zones["DATAPPRO"], format="%Y%m%d", errors="coerce")
    doc = getattr(zoning, "doc_urba", None)
    if doc is not None and {"IDURBA", "DATAPPRO"} <= set(doc.columns) and "IDURBA" in zones.columns:
        by_doc = pd.to_datetime(doc["DATAPPRO"], format="%Y%m%d", errors="coerce").groupby(doc["IDURBA"]).max()
        approval = approval.fillna(zones["IDURBA"].map(by_doc))
    if "DATVALID" in zones.columns:
        approval = approval.fillna(pd.to_datetime(zones["DATVALID"], format="%Y%m%d", errors="coerce"))
    return approval


def _pieces(alerts: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, communes: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    zone_part = zones[["TYPEZONE", zones.geometry.name]].assign(_zone=np.arange(len(zones)), _commune=_commune_codes(zones))
    pieces = cut(alerts, zone_part, "identity")
    pieces["TYPEZONE"] = pieces["TYPEZONE"].fillna("outside")
    if communes is not None:
        communes = in_crs(communes, zones.crs, "communes")
        column = next((c for c in _INSEE_COLUMNS if c in communes.columns), None)
        if column is None:
            raise DataError(f"communes need an INSEE code column ({', '.join(_INSEE_COLUMNS)})")
        part = communes[[column, communes.geometry.name]].rename(columns={column: "_insee"})
        pieces = cut(pieces, part, "identity")
        pieces["_commune"] = pieces["_insee"].astype(object).where(pieces["_insee"].notna(), pieces["_commune"])
    pieces["_commune"] = pieces["_commune"].fillna("unknown").astype(str)
    pieces["area_m2"] = shapely.area(pieces.geometry.to_numpy())
    return pieces


def _table(pieces: gpd.GeoDataFrame) -> pd.DataFrame:
    keys = ["_commune", "_period"]
    wide = pieces.pivot_table(index=keys, columns="TYPEZONE", values="area_m2", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(columns=[*ZONE_TYPES, "outside"], fill_value=0.0) / 10_000.0
    wide.columns = [f"area_ha_{c}" for c in wide.columns]
    total = wide.sum(axis=1)
    wide.insert(0, "area_ha", total)
    wide.insert(0, "n_alerts", pieces.groupby(keys)["_alert"].nunique())
    with np.errstate(invalid="ignore", divide="ignore"):
        wide["share_a_n"] = ((wide["area_ha_A"] + wide["area_ha_N"]) / total).where(total > 0)
    wide.index.names = ["commune", "period"]
    return wide.reset_index()


def _au_zones(pieces: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, approval: pd.Series, consumed: float,
              partial: float) -> gpd.GeoDataFrame:
    au = np.flatnonzero(zones["TYPEZONE"].isin(["AUc", "AUs"]).to_numpy())
    out = zones.iloc[au].copy()
    out["approval_date"] = approval.iloc[au].to_numpy()
    area = shapely.area(out.geometry.to_numpy())
    inside = pieces[pieces["_zone"].isin(au)]
    reference = inside["_zone"].map(pd.Series(approval.to_numpy(), index=np.arange(len(zones))))
    after = inside["_date"].notna() & ((inside["_date"] >= reference) | reference.isna())
    built = _union_by_zone(inside[after.to_numpy()], au)
    undated = inside[inside["_date"].isna()].groupby("_zone")["area_m2"].sum().reindex(au, fill_value=0.0).to_numpy()
    out["area_ha"] = area / 10_000.0
    out["built_since_approval_ha"] = built / 10_000.0
    out["undated_alerts_ha"] = undated / 10_000.0
    out["built_share"] = np.where(area > 0, built / area, np.nan)
    out["status"] = np.select([out["built_share"] >= consumed, out["built_share"] > partial],
                              ["consumed", "partly_consumed"], "reserve")
    return out


def _union_by_zone(pieces: gpd.GeoDataFrame, zones_idx: np.ndarray) -> np.ndarray:
    if pieces.empty:
        return np.zeros(len(zones_idx))
    dissolved = pieces[["_zone", pieces.geometry.name]].dissolve("_zone")
    return pd.Series(shapely.area(dissolved.geometry.to_numpy()), index=dissolved.index).reindex(
        zones_idx, fill_value=0.0).to_numpy()


def artificialisation(
    change_patches: gpd.GeoDataFrame,
    zoning: Any,
    communes: gpd.GeoDataFrame | None = None,
    periods: Sequence[str] | None = None,
    *,
    consumed: float = 0.5,
    partial: float = 0.05,
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Account new-artificial-surface alerts by commune, zone type and period; AU consumption.

    Parameters
    ----------
    change_patches
        Alert polygons with a CRS: output of :func:`territoire_geo.analysis.change.patches`
        (only ``class_name == "new_artificial_surface"`` kept) or any polygons with a
        ``first_seen`` date or a ``period`` label (``"2021-09-16/2022-04-14"``, ``"2022"``).
    zoning
        A :class:`~territoire_geo.planning.zoning.ZoningSet` or a zones GeoDataFrame with ``TYPEZONE``.
    communes
        Commune polygons with an INSEE column (default: the INSEE code of each zone, from
        ``INSEE`` or the ``IDURBA`` prefix).
    periods
        ``"start/end"`` intervals grouping ``first_seen`` dates (default: calendar years);
        dated alerts outside them are labelled ``other``, alerts without a date ``undated``.
    consumed, partial
        Built shares from which an AU zone is ``consumed`` / ``partly_consumed``.

    Returns
    -------
    table : DataFrame
        One row per commune and period: ``n_alerts``, ``area_ha``, ``area_ha_<TYPEZONE>``
        (U, AUc, AUs, A, N, outside) and ``share_a_n`` (share of the alert area in A and
        N zones, the land ZAN protects).
    au_zones : GeoDataFrame
        AU zones with ``approval_date`` (DATAPPRO, else DATVALID), ``area_ha``,
        ``built_since_approval_ha`` (alerts dated on or after approval),
        ``undated_alerts_ha``, ``built_share`` and ``status`` (``reserve``,
        ``partly_consumed``, ``consumed``).
    """
    zones = getattr(zoning, "zones", zoning)
    if not isinstance(zones, gpd.GeoDataFrame) or "TYPEZONE" not in zones.columns:
        raise DataError("zoning must be a ZoningSet or a zones GeoDataFrame with a TYPEZONE column")
    zones = in_crs(zones, zones.crs, "zoning").reset_index(drop=True)
    alerts = _alerts(change_patches, zones.crs)
    labels, dates = _dates(alerts, periods)
    alerts = gpd.GeoDataFrame({"_alert": np.arange(len(alerts)), "_period": labels.to_numpy(),
                               "_date": dates.to_numpy()}, geometry=alerts.geometry.to_numpy(), crs=zones.crs)
    pieces = _pieces(alerts, zones, communes)
    return _table(pieces), _au_zones(pieces, zones, _approval_dates(zoning, zones), consumed, partial)
