"""Inputs of the 3D scene tests: the real PLU zones with a fake score and hostile labels, the sample
DEM, the planted change, the project footprints and an NDVI computed from a sample Sentinel-2 scene."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data_samples"
PLU_SHP = SAMPLES / "plu" / "30014_PLU_20171013" / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp"
S2_ITEM = SAMPLES / "stac" / "sentinel-2-l2a" / "S2A_T31TFJ_20220414T103021_L2A"

#: Markup that must reach the page as text and never run.
XSS_SCRIPT = "</script><script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_TITLE = "Réserves <b>foncières</b> & </title><script>alert(2)</script>"


def zones() -> gpd.GeoDataFrame:
    """PLU zones (cp1252, forced 2D) with score/rank/contrib/exclusion; the hostile labels on the largest zone."""
    frame = gpd.read_file(PLU_SHP, encoding="cp1252")
    frame = frame.set_geometry(frame.geometry.force_2d())
    rng = np.random.default_rng(20171013)
    base = frame["TYPEZONE"].map({"U": 0.7, "AUc": 0.9, "AUs": 0.8, "A": 0.3, "N": 0.1}).fillna(0.3)
    frame["score"] = (base + rng.uniform(-0.1, 0.1, len(frame))).clip(0, 1).round(3)
    frame["rank"] = frame["score"].rank(ascending=False, method="first").astype(int)
    frame["contrib_pente"] = (frame["score"] * 0.4).round(3)
    frame["contrib_reseaux"] = (frame["score"] * 0.6).round(3)
    frame["exclusion"] = np.where(frame["TYPEZONE"] == "N", "Zone naturelle", None)
    target = int(frame.to_crs(2154).area.to_numpy().argmax())
    frame.loc[frame.index[target], "LIBELLE"] = XSS_SCRIPT
    frame.loc[frame.index[target], "LIBELONG"] = XSS_IMG + " \u2028 ligne"
    frame.attrs["source"] = "PLU 30014_PLU_20171013 <v2017>"
    return frame


def hostile_zone(frame: gpd.GeoDataFrame) -> Any:
    """The row carrying the hostile labels."""
    return frame.loc[frame["LIBELLE"] == XSS_SCRIPT].iloc[0]


def ndvi() -> Any:
    """NDVI of the 2022-04-14 sample scene (reflectance = DN × 1e-4 − 0.1), EPSG:32631."""
    import rioxarray

    red, nir = (rioxarray.open_rasterio(S2_ITEM / f"{b}.tif").squeeze(drop=True).astype("float32") * 1e-4 - 0.1
                for b in ("red", "nir"))
    out = ((nir - red) / (nir + red)).rio.write_crs(red.rio.crs)
    out.name = "NDVI"
    out.attrs = {"source": "Sentinel-2 L2A S2A_T31TFJ_20220414T103021_L2A (2022-04-14)"}
    return out


def dem_path() -> Path:
    """``data_samples/stac/cop-dem-glo-30/*/dem.tif``."""
    return next((SAMPLES / "stac" / "cop-dem-glo-30").glob("*/dem.tif"))


def dem() -> Any:
    """The sample Copernicus-DEM-like tile as a DataArray (nodata kept in the metadata)."""
    from territoire_geo.present.scene._files import read_raster

    return read_raster(dem_path())


def synthetic_polygons(n: int, *, vertices: int = 20, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` round ``vertices``-gons of 20–60 m radius scattered over ~10 km (Lambert-93), with a score."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    step = 10_000 / side
    ij = np.stack(np.divmod(np.arange(n), side), axis=1)
    centres = 800_000 + ij * step + rng.uniform(0.2, 0.8, (n, 2)) * step
    angles = np.linspace(0, 2 * np.pi, vertices, endpoint=False)
    radius = rng.uniform(20, 60, (n, 1)) * (1 + 0.15 * np.sin(3 * angles))
    xs = centres[:, :1] + radius * np.cos(angles)
    ys = 6_300_000 + centres[:, 1:] + radius * np.sin(angles)
    rings = np.stack([xs, ys], axis=-1)
    polys = shapely.polygons(np.concatenate([rings, rings[:, :1]], axis=1))
    return gpd.GeoDataFrame({"score": rng.uniform(0, 1, n).round(3),
                             "LIBELLE": [f"P{i}" for i in range(n)]}, geometry=polys, crs=2154)
