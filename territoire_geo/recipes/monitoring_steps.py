"""Recipe steps for monitoring: ZAN accounting, crop series per parcel, urban greening.

Each writes tables (and figures) into its cache folder; labels starting with ``out:``
are copied to the run folder as deliverables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)

from territoire_geo.analysis import zonal
from territoire_geo.io import write_table_csv, write_vector
from territoire_geo.planning import zan, zoning
from territoire_geo.present.charts import crop_series_chart
from territoire_geo.provenance import path_digest
from territoire_geo.recipes.context import RunContext, open_zarr

__all__ = ["crops_key", "greening_key", "make_crops", "make_greening", "make_zan", "zan_key"]


def _csv(frame: Any, path: Path) -> Path:
    return write_table_csv(frame, path, overwrite=True)


# ---------------------------------------------------------------- ZAN accounting


def zan_key(ctx: RunContext) -> Any:
    return {"periods": None}


def make_zan(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """New artificial surface by commune / zone type / year, share in A and N, AU consumption."""
    r = ctx.recipe
    assert r.territory.plu is not None
    zset = zoning.read(r.territory.plu, crs=r.territory.crs)
    alerts = gpd.read_parquet(ctx.artefacts["change"]["patches"])
    table, au_zones = zan.artificialisation(alerts, zset)
    out = {"out:artificialisation.csv": _csv(table, folder / "artificialisation.csv"),
           "out:zones_au_consommation.gpkg": write_vector(au_zones, folder / "zones_au_consommation.gpkg",
                                                           layer="zones_au", overwrite=True)}
    total = float(table["area_ha"].sum()) if "area_ha" in table else 0.0
    share = float((table.get("share_a_n", 0) * table["area_ha"]).sum() / total) if total else 0.0
    out["summary"] = {"zan_new_artificial_ha": round(total, 2), "zan_share_a_n": round(share, 3),
                      "au_zones_consumed": int((au_zones["status"] != "reserve").sum())}
    return out


# ---------------------------------------------------------------- crops


def crops_key(ctx: RunContext) -> Any:
    c = ctx.recipe.crops
    assert c is not None
    return {"parcels": path_digest(c.parcels), **c.model_dump(mode="json", exclude={"parcels"})}


def make_crops(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """Mean NDVI per parcel and date, anomalies vs the same month a year before, a chart per crop."""
    c = ctx.recipe.crops
    assert c is not None
    crs = ctx.recipe.territory.crs
    parcels = gpd.read_file(c.parcels).to_crs(crs)
    parcels = parcels[[c.id_column, c.group_column, "geometry"]].copy()
    parcels[c.id_column] = parcels[c.id_column].astype(str)
    inner = parcels.buffer(-c.inner_buffer_m)
    parcels["geometry"] = inner.where(~inner.is_empty & (inner.area > 0), parcels.geometry)  # tiny parcels kept whole
    series = open_zarr(ctx.artefacts["composites"]["ndvi_series"], crs)["ndvi"]
    table = zonal.stats(series, parcels, ["mean", "coverage"], long=True, id_column=c.id_column, prefix="ndvi")
    table = _tidy_series(table, parcels, c.id_column, c.group_column)
    anomalies = flag_anomalies(table, c.anomaly_drop)
    out = {"out:ndvi_parcelles.csv": _csv(table, folder / "ndvi_parcelles.csv"),
           "out:anomalies_parcelles.csv": _csv(anomalies, folder / "anomalies_parcelles.csv")}
    for group, frame in table.groupby("group"):
        out[f"out:figures/ndvi_{group}.png"] = crop_series_chart(frame, folder / f"ndvi_{group}.png",
                                                                  group=str(group), anomalies=anomalies)
    flagged = anomalies[anomalies["anomaly"]]
    out["summary"] = {"parcels": int(parcels.shape[0]), "anomalies": int(flagged.shape[0]),
                      "parcels_with_anomaly": sorted(flagged["parcel"].unique().tolist())}
    return out


def _tidy_series(table: Any, parcels: Any, id_column: str, group_column: str) -> Any:
    frame = pd.DataFrame(table.drop(columns="geometry", errors="ignore"))
    time_col = next(c for c in frame.columns if c not in (id_column, "ndvi_mean", "ndvi_coverage"))
    groups = parcels.set_index(id_column)[group_column]
    tidy = pd.DataFrame({"date": pd.to_datetime(frame[time_col]).dt.strftime("%Y-%m-%d"),
                         "parcel": frame[id_column].astype(str), "group": frame[id_column].map(groups),
                         "ndvi_mean": frame["ndvi_mean"].round(4), "coverage": frame["ndvi_coverage"].round(3)})
    return tidy.sort_values(["parcel", "date"]).reset_index(drop=True)


def flag_anomalies(table: Any, drop: float) -> Any:
    """Each parcel-date compared with the same parcel in the same month one year earlier (pure).

    ``anomaly`` is true where NDVI fell by more than ``drop``; months without a value a
    year earlier get no flag (``previous`` is NaN).
    """
    dates = pd.to_datetime(table["date"])
    keyed = table.assign(year=dates.dt.year, month=dates.dt.month)
    previous = keyed.assign(year=keyed["year"] + 1)[["parcel", "year", "month", "ndvi_mean"]]
    merged = keyed.merge(previous.rename(columns={"ndvi_mean": "previous"}), on=["parcel", "year", "month"],
                         how="left")
    merged["change"] = (merged["ndvi_mean"] - merged["previous"]).round(4)
    merged["anomaly"] = merged["change"] < -drop
    return merged[["parcel", "group", "date", "ndvi_mean", "previous", "change", "anomaly"]]


# ---------------------------------------------------------------- greening


def greening_key(ctx: RunContext) -> Any:
    g = ctx.recipe.greening
    assert g is not None
    return g.model_dump(mode="json")


def make_greening(ctx: RunContext, folder: Path) -> dict[str, Any]:
    """Share of vegetated pixels per zone, before and after, and the NDVI series per zone type."""
    g = ctx.recipe.greening
    assert g is not None
    crs = ctx.recipe.territory.crs
    zones = gpd.read_parquet(ctx.artefacts["zoning"]["zone_urba"])
    zones = zones[zones["TYPEZONE"].isin(g.typezones)].reset_index(drop=True)
    art = ctx.artefacts["composites"]
    for label in ("before", "after"):
        ndvi = open_zarr(art[label], crs)["ndvi"]
        vegetated = (ndvi >= g.vegetation_ndvi).astype("float32").where(ndvi.notnull())
        zones = zonal.stats(vegetated.rio.write_crs(crs), zones, ["mean"], prefix=f"veg_{label}")
        zones = zones.rename(columns={f"veg_{label}_mean": f"vegetation_share_{label}"})
        zones[f"vegetation_share_{label}"] = zones[f"vegetation_share_{label}"].round(4)
    zones["vegetation_change_pts"] = ((zones["vegetation_share_after"] - zones["vegetation_share_before"])
                                      * 100).round(1)
    zones["area_ha"] = (zones.area / 10_000).round(3)
    keep = ["LIBELLE", "TYPEZONE", "area_ha", "vegetation_share_before", "vegetation_share_after",
            "vegetation_change_pts", "geometry"]
    zones = zones[[c for c in keep if c in zones.columns]]
    series = _zone_type_series(ctx, crs)
    out = {"out:vegetalisation_zones.gpkg": write_vector(zones, folder / "vegetalisation_zones.gpkg",
                                                         layer="zones", overwrite=True),
           "out:vegetalisation_zones.csv": _csv(zones, folder / "vegetalisation_zones.csv"),
           "out:ndvi_zones.csv": _csv(series, folder / "ndvi_zones.csv")}
    area = zones["area_ha"].sum()
    out["summary"] = {"urban_vegetation_before": round(float((zones["vegetation_share_before"] * zones["area_ha"])
                                                             .sum() / area), 3) if area else None,
                      "urban_vegetation_after": round(float((zones["vegetation_share_after"] * zones["area_ha"])
                                                            .sum() / area), 3) if area else None}
    return out


def _zone_type_series(ctx: RunContext, crs: str) -> Any:
    zones = gpd.read_parquet(ctx.artefacts["zoning"]["zone_urba"])
    types = zones.dissolve(by="TYPEZONE").reset_index()[["TYPEZONE", "geometry"]]
    series = open_zarr(ctx.artefacts["composites"]["ndvi_series"], crs)["ndvi"]
    table = pd.DataFrame(zonal.stats(series, types, ["mean"], long=True, id_column="TYPEZONE", prefix="ndvi")
                         .drop(columns="geometry", errors="ignore"))
    time_col = next(c for c in table.columns if c not in ("TYPEZONE", "ndvi_mean"))
    return pd.DataFrame({"date": pd.to_datetime(table[time_col]).dt.strftime("%Y-%m-%d"),
                         "zone": table["TYPEZONE"], "ndvi_mean": table["ndvi_mean"].round(4)})
