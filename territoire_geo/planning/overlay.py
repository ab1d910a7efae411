"""Candidate land units crossed with constraint layers, without slivers (pure, vectorised).

A unit is a zone of the PLU (or a cadastral parcel cut by the zones). For each layer,
the unit keeps its geometry and gains columns computed from the exact intersection
of the unit with the layer's features (spatial index + vectorised shapely 2):

* ``<layer>_<class>_share`` — share of the unit's area under the union of the features
  of that class (overlapping features are not counted twice);
* ``<layer>_<attr>`` — area-weighted mean of a numeric attribute, maximum class, or
  the attribute of the feature covering most of the unit.

Layers read by :func:`territoire_geo.planning.soil.read` and prescriptions decoded by
:func:`territoire_geo.planning.zoning.decode_prescriptions` are recognised by their columns
(:func:`layer_from`); anything else is wrapped in a :class:`Layer` by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from territoire_geo.errors import ConfigError, CRSMismatchError, DataError
from territoire_geo.planning._geometry import cut, in_crs, polygons
from territoire_geo.planning.zoning import decode_prescriptions

__all__ = ["Layer", "distance_to", "layer_from", "overlay"]

log = logging.getLogger(__name__)
_POLYGONAL = ("Polygon", "MultiPolygon")
_SOIL_PREFIX = {"ppr_covadis": "ppr", "ppr_cnig": "ppr"}


@dataclass(frozen=True)
class Layer:
    """A layer to cross with the units, and what to compute from it.

    Attributes
    ----------
    name
        Column prefix (``"rga"`` → ``rga_strong_share``); empty for PLU flags (``ebc_share``).
    frame
        The features (polygons are used for shares and attributes).
    shares
        Output suffix → ``(column, values)`` selecting the features of a class, or
        ``None`` for all features (``{"": None}`` gives ``<name>_share``).
    means
        Output suffix → numeric column averaged over the covered area (NaN if uncovered).
    maxima
        Output suffix → numeric column, maximum over the intersecting features.
    max_fill
        Value of the maxima where no feature intersects (e.g. 0 for RGA: no exposure).
    keep
        Output suffix → column copied from the feature covering most of the unit.
    codes
        Column whose distinct values are listed (``;``-joined) per unit, as ``<name>_codes``.
    """

    name: str
    frame: gpd.GeoDataFrame
    shares: Mapping[str, tuple[str, tuple[Any, ...]] | None] = field(default_factory=lambda: {"": None})
    means: Mapping[str, str] = field(default_factory=dict)
    maxima: Mapping[str, str] = field(default_factory=dict)
    max_fill: float = np.nan
    keep: Mapping[str, str] = field(default_factory=dict)
    codes: str | None = None

    def column(self, suffix: str, kind: str = "") -> str:
        """Output column name for ``suffix`` (``kind`` = ``"share"`` or ``""``)."""
        parts = [p for p in (self.name, suffix, kind) if p]
        return "_".join(parts).lower()


# ----------------------------------------------------------------- layer specs
def _soil_layer(frame: gpd.GeoDataFrame) -> Layer:
    kind = str(frame["SOIL_KIND"].iloc[0])
    name = _SOIL_PREFIX.get(kind, kind)
    keep = {"classe": "CLASSE"} if kind in ("rga", "ppr_covadis", "ppr_cnig", "geology") else {}
    for column in ("CODEZONE", "CODEZONEREGLEMENT", "NOM", "SITENAME", "NOTATION"):
        if column in frame.columns:
            keep[column.lower()] = column
    if kind == "rga":
        frame = frame.assign(_LEVEL=pd.to_numeric(frame["SOIL_KEY"], errors="coerce"))
        shares = {"": None, "weak": ("SOIL_KEY", ("1",)), "medium": ("SOIL_KEY", ("2",)),
                  "strong": ("SOIL_KEY", ("3",))}
        return Layer(name, frame, shares, maxima={"max": "_LEVEL"}, max_fill=0.0, keep=keep)
    if name == "ppr":
        shares = {"": None, "red": ("CONSTRAINT", ("exclusion",)), "blue": ("CONSTRAINT", ("penalty",))}
        return Layer(name, frame, shares, keep=keep)
    means = {"suitability": "SUITABILITY"} if kind == "geology" else {}
    return Layer(name, frame, {"": None}, means=means, keep=keep)


def _flag_layer(frame: gpd.GeoDataFrame) -> Layer:
    flags = [c for c in frame.columns if c.startswith("IS_")]
    frame = frame.assign(**{c: frame[c].fillna(False).astype(bool) for c in flags})
    shares = {c.removeprefix("IS_").lower(): (c, (True,)) for c in flags}
    return Layer("", frame, shares, codes="CODE" if "CODE" in frame.columns else None)


def layer_from(frame: gpd.GeoDataFrame | Layer, name: str | None = None) -> Layer:
    """Recognise a layer from its columns and return its :class:`Layer` spec.

    * ``SOIL_KIND`` (from :func:`territoire_geo.planning.soil.read`): ``rga`` → ``rga_share``,
      ``rga_weak/medium/strong_share``, ``rga_max`` (0–3, 0 = no exposure), ``rga_classe``;
      ``ppr_covadis``/``ppr_cnig`` → ``ppr_share``, ``ppr_red_share`` (prohibition),
      ``ppr_blue_share`` (prescriptions); ``znieff1``, ``znieff2``, ``natura2000`` →
      ``<kind>_share``; ``geology`` → ``geology_share``, ``geology_suitability``
      (area-weighted), ``geology_classe``.
    * ``IS_*`` flags (from :func:`territoire_geo.planning.zoning.decode_prescriptions`):
      ``ebc_share``, ``er_share``, ``stecal_share``, ``oap_share``, ``dpu_share``,
      ``paen_share``… and ``codes`` (the CNIG codes present).
    * ``class_name`` (change patches): ``<name>_share`` of new artificial surfaces only.
    * anything else: ``<name>_share`` (``name`` required).
    """
    if isinstance(frame, Layer):
        return frame if name is None else replace(frame, name=name)
    if not isinstance(frame, gpd.GeoDataFrame):
        raise DataError(f"a layer must be a GeoDataFrame or a Layer, not {type(frame).__name__}")
    if len(frame) and "SOIL_KIND" in frame.columns:
        spec = _soil_layer(frame)
    elif any(c.startswith("IS_") for c in frame.columns):
        spec = _flag_layer(frame)
    elif name is None:
        raise ConfigError("give a name to a layer that is neither a soil layer nor decoded prescriptions")
    elif "class_name" in frame.columns:
        spec = Layer(name, frame, {"": ("class_name", ("new_artificial_surface",))})
    else:
        spec = Layer(name, frame)
    return spec if name is None else replace(spec, name=name)


# ----------------------------------------------------------------- geometry
def _pairs(units: gpd.GeoDataFrame, frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Unit/feature pairs that overlap, with the area of their intersection."""
    unit_idx, feat_idx = frame.sindex.query(units.geometry.to_numpy(), predicate="intersects")
    pieces = shapely.intersection(units.geometry.to_numpy()[unit_idx], frame.geometry.to_numpy()[feat_idx])
    pairs = pd.DataFrame({"unit": unit_idx, "feature": feat_idx, "area": shapely.area(pieces)})
    pairs["piece"] = pieces
    return pairs[pairs["area"] > 0.0].reset_index(drop=True)


def _union_area(pairs: pd.DataFrame, n_units: int) -> np.ndarray:
    """Area of the union of the pieces of each unit (overlaps counted once)."""
    area = np.zeros(n_units)
    if pairs.empty:
        return area
    counts = pairs["unit"].value_counts()
    single = pairs["unit"].map(counts).to_numpy() == 1
    np.add.at(area, pairs.loc[single, "unit"].to_numpy(), pairs.loc[single, "area"].to_numpy())
    multi = pairs.loc[~single]
    if len(multi):
        merged = gpd.GeoDataFrame({"unit": multi["unit"].to_numpy()}, geometry=multi["piece"].to_numpy())
        dissolved = merged.dissolve("unit")
        area[dissolved.index.to_numpy()] = shapely.area(dissolved.geometry.to_numpy())
    return area


def _selected(frame: gpd.GeoDataFrame, rule: tuple[str, tuple[Any, ...]] | None) -> np.ndarray:
    if rule is None:
        return np.ones(len(frame), dtype=bool)
    column, values = rule
    if column not in frame.columns:
        raise DataError(f"layer has no column {column!r} to select features by")
    return frame[column].isin(values).to_numpy()


# ------------------------------------------------------------------- columns
def _layer_columns(units: gpd.GeoDataFrame, spec: Layer, areas: np.ndarray) -> pd.DataFrame:
    frame = polygons(in_crs(spec.frame, units.crs, f"layer {spec.name or 'plu'}"), f"layer {spec.name or 'plu'}")
    frame = frame.reset_index(drop=True)
    pairs = _pairs(units, frame)
    out = pd.DataFrame(index=units.index)
    with np.errstate(invalid="ignore", divide="ignore"):
        for suffix, rule in spec.shares.items():
            chosen = pairs[_selected(frame, rule)[pairs["feature"].to_numpy()]]
            out[spec.column(suffix, "share")] = np.clip(_union_area(chosen, len(units)) / areas, 0.0, 1.0)
        for suffix, column in spec.means.items():
            values = pd.to_numeric(frame[column], errors="coerce").to_numpy()[pairs["feature"].to_numpy()]
            ok = ~np.isnan(values)
            num = np.bincount(pairs["unit"][ok], weights=pairs["area"][ok] * values[ok], minlength=len(units))
            den = np.bincount(pairs["unit"][ok], weights=pairs["area"][ok], minlength=len(units))
            out[spec.column(suffix)] = np.where(den > 0, num / den, np.nan)
    for suffix, column in spec.maxima.items():
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy()[pairs["feature"].to_numpy()]
        best = pd.Series(values).groupby(pairs["unit"].to_numpy()).max()
        out[spec.column(suffix)] = best.reindex(np.arange(len(units))).fillna(spec.max_fill).to_numpy()
    out = _dominant(out, pairs, frame, spec)
    return out


def _dominant(out: pd.DataFrame, pairs: pd.DataFrame, frame: gpd.GeoDataFrame, spec: Layer) -> pd.DataFrame:
    n = len(out)
    if spec.keep:
        top = pairs.sort_values("area", kind="stable").drop_duplicates("unit", keep="last")
        for suffix, column in spec.keep.items():
            if column not in frame.columns:
                raise DataError(f"layer {spec.name!r} has no column {column!r} to keep")
            values = pd.Series(frame[column].to_numpy()[top["feature"].to_numpy()], index=top["unit"].to_numpy())
            out[spec.column(suffix)] = values.reindex(np.arange(n)).to_numpy()
    if spec.codes:
        codes = pd.Series(frame[spec.codes].astype(str).to_numpy()[pairs["feature"].to_numpy()],
                          index=pairs["unit"].to_numpy())
        joined = codes.groupby(level=0).agg(lambda s: ";".join(sorted(set(s))))
        out[f"{spec.name or 'plu'}_codes"] = joined.reindex(np.arange(n)).fillna("").to_numpy()
    return out


# --------------------------------------------------------------------- units
def _zones_of(zoning: Any) -> tuple[gpd.GeoDataFrame, list[Layer]]:
    if isinstance(zoning, gpd.GeoDataFrame):
        return zoning, []
    zones = getattr(zoning, "zones", None)
    if not isinstance(zones, gpd.GeoDataFrame):
        raise DataError("zoning must be a ZoningSet (territoire_geo.planning.zoning.read) or a GeoDataFrame of zones")

    flagged = [decode_prescriptions(f) for f in (zoning.prescriptions_surf, zoning.info_surf) if f is not None]
    return zones, flagged


def _units(zones: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame | None, min_area_m2: float) -> gpd.GeoDataFrame:
    if parcels is None:
        units = zones.reset_index(drop=True)
    else:
        parcels = in_crs(parcels, zones.crs, "parcels")
        parcels = parcels.rename(columns={c: f"parcel_{c}".lower() for c in parcels.columns
                                          if c != parcels.geometry.name})
        units = cut(polygons(parcels, "parcels"), zones, "intersection")
        area = shapely.area(units.geometry.to_numpy())
        if (area < min_area_m2).any():
            log.info("dropped %d parcel/zone slivers under %g m²", int((area < min_area_m2).sum()), min_area_m2)
        units = units.loc[area >= min_area_m2].reset_index(drop=True)
    if units.empty:
        raise DataError("no land unit left (no zone, or parcels outside the zones)")
    area = shapely.area(units.geometry.to_numpy())
    units.insert(0, "unit_id", np.arange(1, len(units) + 1))
    return units.assign(area_m2=area, area_ha=area / 10_000.0)


def distance_to(units: gpd.GeoDataFrame | gpd.GeoSeries, layer: gpd.GeoDataFrame | gpd.GeoSeries, *,
                max_distance: float | None = None) -> pd.Series:
    """Distance from each unit to the nearest feature of ``layer`` (0 when they touch).

    Vectorised with ``sindex.nearest``; ``layer`` is reprojected to the units' CRS
    (logged). Units farther than ``max_distance`` (or all units when the layer is
    empty) get NaN.

    Raises
    ------
    CRSMismatchError
        Either input has no CRS.
    """
    if units.crs is None:
        raise CRSMismatchError("the units have no CRS; set the CRS before computing distances")
    layer = in_crs(layer, units.crs, "distance layer")
    targets = gpd.GeoSeries(layer.geometry.to_numpy(), crs=units.crs)
    targets = targets[~(targets.isna() | targets.is_empty)].reset_index(drop=True)
    out = pd.Series(np.nan, index=units.index, dtype="float64", name="distance_m")
    if targets.empty:
        return out
    (src, _), dist = targets.sindex.nearest(units.geometry.to_numpy(), return_distance=True, return_all=False,
                                            max_distance=max_distance)
    out.iloc[src] = dist
    return out


def _merge_flags(layers: Iterable[Any]) -> list[Any]:
    """Concatenate the decoded PLU prescription/information layers into one."""
    items = list(layers)
    flagged = [i for i in items if isinstance(i, gpd.GeoDataFrame) and any(c.startswith("IS_") for c in i.columns)]
    if len(flagged) < 2:
        return items
    crs = flagged[0].crs
    merged = pd.concat([in_crs(f, crs, "prescriptions") for f in flagged], ignore_index=True)
    return [i for i in items if not any(i is f for f in flagged)] + [gpd.GeoDataFrame(merged, crs=crs)]


def overlay(
    zoning: Any,
    *layers: gpd.GeoDataFrame | Layer | tuple[str, gpd.GeoDataFrame],
    parcels: gpd.GeoDataFrame | None = None,
    keep: Mapping[str, Sequence[str]] | None = None,
    distances: Mapping[str, gpd.GeoDataFrame] | None = None,
    min_area_m2: float = 1.0,
) -> gpd.GeoDataFrame:
    """Candidate land units with the share of their area under each layer.

    Parameters
    ----------
    zoning
        A :class:`~territoire_geo.planning.zoning.ZoningSet` (its PRESCRIPTION_SURF and INFO_SURF
        are decoded and crossed too: ``ebc_share``, ``er_share``, ``dpu_share``…) or a
        GeoDataFrame of zones.
    *layers
        Soil/risk layers from :func:`territoire_geo.planning.soil.read`, decoded prescriptions,
        :class:`Layer` specs or ``(name, GeoDataFrame)`` pairs (see :func:`layer_from`).
    parcels
        Cadastral parcels: units become parcels cut by the zones (pieces under
        ``min_area_m2`` dropped), parcel columns prefixed ``parcel_``.
    keep
        Per layer name, columns of the dominant feature to copy (``{"geology":
        ["NOTATION", "LITHOLOGIE"]}`` → ``geology_notation``…); key ``"zones"`` selects
        the zone columns kept (default all).
    distances
        Name → points/lines/polygons: adds ``dist_<name>_m`` (nearest feature, metres).
    min_area_m2
        Smallest parcel/zone piece kept.

    Returns
    -------
    GeoDataFrame
        One row per unit in the zoning CRS: ``unit_id``, zone (and parcel) attributes,
        ``area_m2``, ``area_ha``, the layer columns, ``dist_urban_m`` (distance to the
        nearest U zone, 0 inside) and the ``dist_<name>_m`` columns.

    Raises
    ------
    CRSMismatchError
        The zoning, the parcels or a layer has no CRS (layers in another CRS are
        reprojected once to the zoning CRS, with a log line).
    """
    zones, flagged = _zones_of(zoning)
    zones = in_crs(zones, zones.crs, "zoning")
    if keep and "zones" in keep:
        zones = zones[[*keep["zones"], zones.geometry.name]]
    units = _units(zones, parcels, min_area_m2)
    areas = units["area_m2"].to_numpy()
    columns = []
    for item in _merge_flags([*flagged, *layers]):
        spec = layer_from(item[1], item[0]) if isinstance(item, tuple) else layer_from(item)
        if keep and spec.name in keep:
            spec = replace(spec, keep={c.lower(): c for c in keep[spec.name]})
        columns.append(_layer_columns(units, spec, areas))
    if "TYPEZONE" in zones.columns:
        columns.append(distance_to(units, zones[zones["TYPEZONE"] == "U"]).rename("dist_urban_m").to_frame())
    for name, layer in (distances or {}).items():
        columns.append(distance_to(units, layer).rename(f"dist_{name}_m").to_frame())
    return _assemble(units, columns)


def _assemble(units: gpd.GeoDataFrame, columns: list[pd.DataFrame]) -> gpd.GeoDataFrame:
    extra = pd.concat(columns, axis=1) if columns else pd.DataFrame(index=units.index)
    duplicated = extra.columns[extra.columns.duplicated()].unique().tolist()
    if duplicated:
        raise ConfigError(f"two layers produce the same column(s) {', '.join(duplicated)}; rename a layer")
    geometry = units.geometry.name
    body = pd.concat([units.drop(columns=geometry), extra], axis=1)
    return gpd.GeoDataFrame(body, geometry=units.geometry, crs=units.crs)
