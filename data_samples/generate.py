"""Build the offline sample territory of territoire_geo, deterministically.

Run from the repository root::

    python data_samples/generate.py            # writes data_samples/
    python data_samples/generate.py --check    # regenerate in a temp dir and compare checksums

What is real and what is synthetic is told in ``data_samples/README.md``.
Real inputs are copied unchanged from ``../shared/data/real`` when that folder
exists; otherwise the copies already in ``data_samples/`` are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import LineString, Point, Polygon, box

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "data" / "real" / "france"
SEED = 20171013
EPSG_UTM = 32631
X0, Y1 = 607000.0, 4875360.0  # upper-left corner of the 10 m grid (UTM 31N)
WIDTH, HEIGHT = 544, 556  # 10 m pixels (5.44 x 5.56 km)
TRANSFORM = Affine(10.0, 0.0, X0, 0.0, -10.0, Y1)
PLU_ID = "30014_PLU_20171013"

# Land-cover codes of the synthetic truth raster
URBAN, GARDEN, FOREST, GARRIGUE, WATER, CROP, VINE, GRASS, PLANTED = 1, 2, 3, 4, 5, 6, 7, 8, 9

# Reflectance spectra (blue, green, red, rededge1, rededge2, rededge3, nir, nir08, swir16, swir22)
BANDS = ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22")
SPECTRA = {
    "veg": np.array([0.030, 0.070, 0.040, 0.120, 0.300, 0.370, 0.420, 0.430, 0.210, 0.100]),
    "soil": np.array([0.080, 0.110, 0.140, 0.170, 0.200, 0.220, 0.240, 0.250, 0.320, 0.260]),
    "forest": np.array([0.025, 0.055, 0.030, 0.090, 0.240, 0.290, 0.320, 0.330, 0.160, 0.075]),
    "roof": np.array([0.090, 0.120, 0.170, 0.200, 0.220, 0.230, 0.240, 0.245, 0.330, 0.290]),
    "asphalt": np.array([0.080, 0.090, 0.100, 0.110, 0.120, 0.125, 0.130, 0.130, 0.170, 0.160]),
    "water": np.array([0.050, 0.060, 0.040, 0.030, 0.020, 0.018, 0.015, 0.012, 0.005, 0.003]),
    "cloud": np.array([0.480, 0.470, 0.470, 0.480, 0.490, 0.490, 0.500, 0.500, 0.350, 0.250]),
}
TWENTY_M = ("rededge1", "nir08", "swir16", "swir22", "scl")


@dataclass(frozen=True)
class Acquisition:
    """One synthetic Sentinel-2 overpass."""

    when: dt.datetime
    baseline: str
    platform: str
    clouds: float = 0.0  # share of the scene under thick cloud
    cirrus: bool = False
    nodata_east: bool = False  # swath edge: eastern third without data


def _at(y: int, m: int, d: int) -> dt.datetime:
    return dt.datetime(y, m, d, 10, 30, 21, tzinfo=dt.UTC)


ACQUISITIONS = (
    Acquisition(_at(2020, 4, 14), "02.14", "sentinel-2b"),
    Acquisition(_at(2020, 6, 23), "05.00", "sentinel-2a"),  # Collection-1 reprocessing: offset
    Acquisition(_at(2020, 9, 11), "02.14", "sentinel-2b", clouds=0.22),
    Acquisition(_at(2021, 4, 19), "03.00", "sentinel-2a"),
    Acquisition(_at(2021, 6, 18), "03.00", "sentinel-2b", cirrus=True),
    Acquisition(_at(2021, 9, 16), "03.01", "sentinel-2a"),
    Acquisition(_at(2022, 4, 14), "04.00", "sentinel-2a"),
    Acquisition(_at(2022, 6, 23), "04.00", "sentinel-2b", clouds=0.18),
    Acquisition(_at(2022, 9, 11), "04.00", "sentinel-2a", nodata_east=True),
    Acquisition(_at(2023, 4, 19), "05.09", "sentinel-2b"),
    Acquisition(_at(2023, 6, 18), "05.09", "sentinel-2a"),
    Acquisition(_at(2023, 9, 16), "05.09", "sentinel-2b"),
)
#: The planted change happens between these two dates.
CHANGE_AFTER, CHANGE_BEFORE = _at(2021, 9, 16), _at(2022, 4, 14)

# Green fraction by crop and season (April, June, September)
PHENOLOGY = {
    "winter_cereal": (0.92, 0.35, 0.08),
    "summer_crop": (0.10, 0.80, 0.45),
    "vine": (0.15, 0.45, 0.40),
    "grass": (0.70, 0.45, 0.50),
}


def season_index(when: dt.datetime) -> int:
    """0 for spring, 1 for early summer, 2 for late summer."""
    return 0 if when.month <= 5 else (1 if when.month <= 7 else 2)


# ---------------------------------------------------------------- copies of real data


def copy_real(target: Path) -> None:
    """Copy the real PLU (GPU archive layout) and the Penmarch RPG files."""
    src_plu = SHARED / "cnig_plu_30014_arpaillargues_2017"
    if not src_plu.exists():
        print("shared data not found; keeping existing copies", file=sys.stderr)
        return
    plu = target / "plu" / PLU_ID
    (plu / "Donnees_geographiques").mkdir(parents=True, exist_ok=True)
    for file in sorted(src_plu.iterdir()):
        dest = plu if "DOC_URBA" in file.name else plu / "Donnees_geographiques"
        shutil.copy2(file, dest / file.name)
    rpg = target / "rpg_penmarch"
    rpg.mkdir(parents=True, exist_ok=True)
    for file in sorted((SHARED / "penmarch_29158_rpg").iterdir()):
        shutil.copy2(file, rpg / file.name)


def read_zones(target: Path) -> gpd.GeoDataFrame:
    """The real PLU zones, 2D, in the UTM grid CRS."""
    path = target / "plu" / PLU_ID / "Donnees_geographiques" / f"{PLU_ID.split('_PLU_')[0]}_ZONE_URBA_20171013.shp"
    zones = gpd.read_file(path, encoding="cp1252")
    zones["geometry"] = shapely.force_2d(shapely.make_valid(zones.geometry.values))
    return zones.to_crs(EPSG_UTM)


# ---------------------------------------------------------------- land cover truth


def _burn(shapes: list[tuple[object, int]], fill: int = 0) -> np.ndarray:
    return rasterio.features.rasterize(shapes, out_shape=(HEIGHT, WIDTH), transform=TRANSFORM,
                                       fill=fill, dtype="uint8")


def planted_polygon(zones: gpd.GeoDataFrame) -> Polygon:
    """A few hectares of the IIAU zone that get built between 2021 and 2022."""
    au = zones[zones["LIBELLE"] == "IIAU"].geometry.iloc[0]
    core = au.buffer(-22.0)
    cx, cy = core.centroid.x, core.centroid.y
    window = box(cx - 150, cy - 110, cx + 150, cy + 110)
    geom = core.intersection(window)
    return max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)


def pond_polygon(zones: gpd.GeoDataFrame) -> Polygon:
    """A synthetic 1.1 ha pond inside the largest N zone."""
    natural = zones[zones["TYPEZONE"] == "N"].geometry
    biggest = natural.iloc[int(np.argmax(natural.area.values))]
    point = biggest.buffer(-80).representative_point()
    return point.buffer(60, quad_segs=16)


def land_cover(zones: gpd.GeoDataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Land-cover codes and field ids (for crop rotation) on the 10 m grid."""
    kinds = {"U": URBAN, "AUc": GRASS, "AUs": GRASS, "A": CROP, "N": FOREST}
    cover = _burn([(g, kinds.get(t, CROP)) for g, t in zip(zones.geometry, zones["TYPEZONE"], strict=True)],
                  fill=CROP)
    fields = _voronoi_fields(rng, 220)
    cover = _refine(cover, fields, rng)
    au_field = _burn([(zones[zones["LIBELLE"] == "IIAU"].geometry.iloc[0], 1)])
    cover[au_field == 1] = CROP
    cover[_burn([(pond_polygon(zones), 1)]) == 1] = WATER
    cover[_burn([(planted_polygon(zones), 1)]) == 1] = PLANTED
    return cover, fields


def _voronoi_fields(rng: np.random.Generator, count: int) -> np.ndarray:
    seeds = rng.uniform([0, 0], [HEIGHT, WIDTH], size=(count, 2))
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    best = np.full((HEIGHT, WIDTH), np.inf, dtype="float32")
    ids = np.zeros((HEIGHT, WIDTH), dtype="int32")
    for i, (sy, sx) in enumerate(seeds):
        dist = (rows - sy) ** 2 * 1.7 + (cols - sx) ** 2  # elongated fields
        closer = dist < best
        best[closer], ids[closer] = dist[closer], i
    return ids


def _refine(cover: np.ndarray, fields: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    field_kind = rng.choice([CROP, VINE, GRASS], size=fields.max() + 1, p=[0.5, 0.3, 0.2])
    natural_kind = rng.choice([FOREST, GARRIGUE], size=fields.max() + 1, p=[0.6, 0.4])
    out = cover.copy()
    agri = cover == CROP
    out[agri] = field_kind[fields[agri]]
    nat = cover == FOREST
    out[nat] = natural_kind[fields[nat]]
    urban = cover == URBAN
    gardens = rng.random(cover.shape) < 0.3
    out[urban & gardens] = GARDEN
    return out


# ---------------------------------------------------------------- reflectance


def reflectance(cover: np.ndarray, fields: np.ndarray, acq: Acquisition,
                rng: np.random.Generator) -> np.ndarray:
    """Surface reflectance (10 bands, y, x) for one date, before clouds."""
    season = season_index(acq.when)
    green = _green_fraction(cover, fields, acq, season)
    veg, soil = SPECTRA["veg"][:, None, None], SPECTRA["soil"][:, None, None]
    refl = green * veg + (1 - green) * soil
    urban_mix = np.where(fields % 3 == 0, 0.6, 0.35)
    built = SPECTRA["roof"][:, None, None] * urban_mix + SPECTRA["asphalt"][:, None, None] * (1 - urban_mix)
    is_built = (cover == URBAN) | ((cover == PLANTED) & (acq.when >= CHANGE_BEFORE))
    refl = np.where(is_built, built, refl)
    forest = SPECTRA["forest"][:, None, None] * (0.9 + 0.1 * np.cos(season))
    refl = np.where(cover == FOREST, forest, refl)
    refl = np.where(cover == WATER, SPECTRA["water"][:, None, None], refl)
    field_gain = 0.94 + 0.12 * ((fields * 7919) % 101 / 100.0)
    refl = refl * field_gain * (1 + TEXTURE) + rng.normal(0.0, 0.0003, size=refl.shape)
    return np.clip(refl, 0.001, 0.95)


def _texture(rng: np.random.Generator) -> np.ndarray:
    """Smooth within-field texture (+-4 %), cheap to compress like real fields."""
    coarse = rng.normal(0.0, 0.02, size=(HEIGHT // 8 + 2, WIDTH // 8 + 2))
    rows, cols = np.arange(HEIGHT) / 8.0, np.arange(WIDTH) / 8.0
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


TEXTURE = _texture(np.random.default_rng(SEED + 1))


def _green_fraction(cover: np.ndarray, fields: np.ndarray, acq: Acquisition, season: int) -> np.ndarray:
    year = acq.when.year
    rotation = (fields + year) % 2 == 0
    cereal, summer = PHENOLOGY["winter_cereal"][season], PHENOLOGY["summer_crop"][season]
    green = np.where(rotation, cereal, summer).astype("float64")
    green = np.where(cover == VINE, PHENOLOGY["vine"][season], green)
    green = np.where(cover == GRASS, PHENOLOGY["grass"][season], green)
    green = np.where(cover == GARDEN, 0.6, green)
    green = np.where(cover == GARRIGUE, 0.55 - 0.1 * (season == 2), green)
    planted_field = PHENOLOGY["winter_cereal"][season] if year % 2 else PHENOLOGY["grass"][season]
    green = np.where(cover == PLANTED, max(planted_field, 0.6), green)
    return green[None]


def clouds(acq: Acquisition, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thick-cloud and shadow masks (shadow offset to the north-west)."""
    empty = np.zeros((HEIGHT, WIDTH), dtype=bool)
    if acq.clouds <= 0:
        return empty, empty
    field = np.zeros((HEIGHT, WIDTH))
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    for _ in range(6):
        cy, cx, radius = rng.uniform(0, HEIGHT), rng.uniform(0, WIDTH), rng.uniform(40, 110)
        field += np.exp(-(((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * radius**2)))
    threshold = np.quantile(field, 1 - acq.clouds)
    cloud = field >= threshold
    shadow = np.roll(np.roll(cloud, -25, axis=0), -35, axis=1) & ~cloud
    return cloud, shadow


def scene_classes(cover: np.ndarray, refl: np.ndarray, cloud: np.ndarray, shadow: np.ndarray,
                  acq: Acquisition) -> np.ndarray:
    """SCL codes at 10 m (vegetation 4, not vegetated 5, water 6, clouds 8/9, shadow 3, cirrus 10)."""
    red, nir = refl[BANDS.index("red")], refl[BANDS.index("nir")]
    ndvi = (nir - red) / (nir + red)
    scl = np.where(ndvi > 0.4, 4, 5).astype("uint8")
    scl[cover == WATER] = 6
    scl[shadow] = 3
    scl[cloud] = 9
    edge = cloud ^ shapely_free_erode(cloud)
    scl[edge] = 8
    if acq.cirrus:
        scl[(np.arange(WIDTH)[None, :] + np.arange(HEIGHT)[:, None]) % 180 < 25] = 10
    return scl


def shapely_free_erode(mask: np.ndarray) -> np.ndarray:
    """Binary erosion by one pixel (4-neighbourhood) without scipy."""
    out = mask.copy()
    out[1:, :] &= mask[:-1, :]
    out[:-1, :] &= mask[1:, :]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def to_dn(refl: np.ndarray, baseline: str) -> np.ndarray:
    """Reflectance -> L2A digital numbers (with +1000 from baseline 04.00)."""
    offset = 1000 if float(baseline) >= 4.0 else 0
    return np.clip(np.round(refl * 10000 + offset), 1, 65534).astype("uint16")


def downsample(array: np.ndarray, nearest: bool = False) -> np.ndarray:
    """10 m -> 20 m (mean of 2x2 blocks, or the upper-left pixel for classes)."""
    if nearest:
        return array[::2, ::2]
    blocks = array.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).astype("float64")
    return np.round(blocks.mean(axis=(1, 3))).astype(array.dtype)


# ---------------------------------------------------------------- STAC


def item_id(acq: Acquisition) -> str:
    """Earth Search v1-style id, e.g. ``S2B_T31TFJ_20200414T103021_L2A``."""
    return f"S2{acq.platform[-1].upper()}_T31TFJ_{acq.when:%Y%m%dT%H%M%S}_L2A"


def build_scene(target: Path, acq: Acquisition, cover: np.ndarray, fields: np.ndarray,
                rng: np.random.Generator) -> pystac.Item:
    """Write one acquisition's COGs and return its item."""
    from territoire_geo.testing import make_s2_item

    refl = reflectance(cover, fields, acq, rng)
    cloud, shadow = clouds(acq, rng)
    refl = np.where(cloud[None], SPECTRA["cloud"][:, None, None], refl)
    refl = np.where(shadow[None], refl * 0.35, refl)
    scl = scene_classes(cover, refl, cloud, shadow, acq)
    dn = {name: to_dn(refl[i], acq.baseline) for i, name in enumerate(BANDS)}
    dn["scl"] = scl
    if acq.nodata_east:
        for array in dn.values():
            array[:, WIDTH * 2 // 3:] = 0
    keep = ("blue", "green", "red", "rededge1", "nir", "nir08", "swir16", "swir22", "scl")
    bands = {k: downsample(dn[k], nearest=k == "scl") if k in TWENTY_M else dn[k] for k in keep}
    valid = scl[scl > 0]
    cloud_cover = 100.0 * np.isin(valid, [3, 8, 9, 10]).mean()
    folder = target / "stac" / "sentinel-2-l2a" / item_id(acq)
    return make_s2_item(folder, item_id(acq), acq.when, bands, TRANSFORM, EPSG_UTM,
                        baseline=acq.baseline, cloud_cover=cloud_cover, platform=acq.platform)


def dem_item(target: Path, rng: np.random.Generator) -> pystac.Item:
    """A synthetic Copernicus-DEM-like tile (EPSG:4326, float32, ~1 arc-second)."""
    from territoire_geo.io import write_cog
    from territoire_geo.testing import multihash_sha256

    step = 1 / 3600
    west, north, cols, rows = 4.325, 44.030, 320, 230
    transform = Affine(step, 0, west, 0, -step, north)
    yy, xx = np.mgrid[0:rows, 0:cols] / 40.0
    relief = 95 + 35 * np.sin(xx * 0.9) * np.cos(yy * 0.7) + 25 * np.sin(yy * 1.6 + 1) + 12 * xx
    relief += rng.normal(0, 0.8, size=relief.shape)
    folder = target / "stac" / "cop-dem-glo-30" / "Copernicus_DSM_COG_10_N43_00_E004_00_DEM"
    href = write_cog(folder / "dem.tif", relief.astype("float32"), transform, "EPSG:4326", nodata=-32767.0)
    bounds = (west, north - rows * step, west + cols * step, north)
    item = pystac.Item("Copernicus_DSM_COG_10_N43_00_E004_00_DEM", shapely.geometry.mapping(box(*bounds)),
                       list(bounds), _at(2021, 4, 22), {"gsd": 30, "proj:epsg": 4326, "platform": "TanDEM-X"},
                       collection="cop-dem-glo-30")
    item.add_asset("data", pystac.Asset(str(href), media_type=pystac.MediaType.COG, roles=["data"],
                                        extra_fields={"raster:bands": [{"nodata": -32767, "data_type": "float32",
                                                                        "unit": "metre"}],
                                                      "file:checksum": multihash_sha256(href)}))
    return item


def write_catalog(target: Path, items: list[pystac.Item], dem: pystac.Item) -> None:
    """Static catalog: catalog.json, two collections, items beside their COGs."""
    root = target / "stac"
    catalog = pystac.Catalog("territoire-geo-sample", "Sample territory of territoire_geo: "
                             "Arpaillargues-et-Aureilhac (30014), synthetic Sentinel-2 L2A and DEM")
    s2 = _collection("sentinel-2-l2a", "Synthetic Sentinel-2 L2A over Arpaillargues (per-band COGs)", items)
    s2.summaries.add("gsd", [10, 20])
    s2.extra_fields["item_assets"] = {k: {"roles": ["data"], "title": k} for k in items[0].assets}
    cop = _collection("cop-dem-glo-30", "Synthetic Copernicus-DEM-like terrain (float32, EPSG:4326)", [dem])
    for collection, group in ((s2, items), (cop, [dem])):
        for item in group:
            collection.add_item(item)
        catalog.add_child(collection)
    catalog.normalize_hrefs(str(root), strategy=_Layout())
    for item in [*items, dem]:
        for asset in item.assets.values():
            asset.href = "./" + Path(asset.href).name
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)


class _Layout(pystac.layout.CustomLayoutStrategy):
    def __init__(self) -> None:
        super().__init__(item_func=lambda item, parent: f"{parent}/{item.id}/{item.id}.json")


def _collection(cid: str, title: str, items: list[pystac.Item]) -> pystac.Collection:
    times = sorted(i.datetime for i in items if i.datetime)
    bounds = np.array([i.bbox for i in items])
    extent = pystac.Extent(
        pystac.SpatialExtent([[float(v) for v in (*bounds[:, :2].min(axis=0), *bounds[:, 2:].max(axis=0))]]),
        pystac.TemporalExtent([[times[0], times[-1]]]),
    )
    return pystac.Collection(cid, title, extent, license="other",
                             extra_fields={"attribution": "Synthetic data generated by territoire_geo"})


# ---------------------------------------------------------------- vector layers


def write_layers(target: Path, zones: gpd.GeoDataFrame, rng: np.random.Generator) -> None:
    """Soil, hazard, nature, context and project layers (synthetic, real schemas), EPSG:2154."""
    zones93 = zones.to_crs(2154)
    extent = box(*zones93.total_bounds)
    x0, y0, x1, y1 = extent.bounds
    out = target / "layers"
    out.mkdir(parents=True, exist_ok=True)
    au = zones93[zones93["LIBELLE"] == "IIAU"].geometry.iloc[0]
    iau = zones93[zones93["LIBELLE"] == "IAU"].geometry.iloc[0]
    stream = LineString([(x0, y0 + 1400), (x0 + 1800, y0 + 1900), (x0 + 3000, y0 + 1500), (x1, y0 + 2100)])
    _save(out / "geologie_bdcharm50.gpkg", "S_FGEOL", _geology(extent, stream))
    _save(out / "rga_argiles.gpkg", "rga", _rga(extent, stream, au))
    _save(out / "ppr_inondation.gpkg", "N_ZONE_REG_PPRN_30_S", _ppr(stream, iau))
    _save(out / "znieff1.gpkg", "znieff1", gpd.GeoDataFrame(
        {"id_mnhn": ["910030616"], "nom": ["Garrigues de Sanilhac et de Collias (synthétique)"],
         "url": ["https://inpn.mnhn.fr/zone/znieff/910030616"]},
        geometry=[box(x0 + 200, y1 - 1600, x0 + 1500, y1 - 300)], crs=2154))
    _save(out / "natura2000.gpkg", "natura2000", gpd.GeoDataFrame(
        {"sitecode": ["FR9101395"], "sitename": ["Le Gardon et ses gorges (synthétique)"],
         "url": ["https://inpn.mnhn.fr/site/natura2000/FR9101395"]},
        geometry=[stream.buffer(120)], crs=2154))
    _save(out / "routes.gpkg", "troncon_de_route", _roads(zones93, x0, y0, x1, y1))
    _save(out / "services.gpkg", "services", _services(zones93, rng))
    _save(out / "projet_batiments.gpkg", "projet", _project(au))


def _save(path: Path, layer: str, frame: gpd.GeoDataFrame) -> None:
    path.unlink(missing_ok=True)
    frame.to_file(path, layer=layer, driver="GPKG")


def _geology(extent: Polygon, stream: LineString) -> gpd.GeoDataFrame:
    alluvium = stream.buffer(260).intersection(extent)
    x0, y0, x1, y1 = extent.bounds
    marls = box(x0, y0, x1, y0 + (y1 - y0) * 0.45).difference(alluvium)
    limestone = extent.difference(alluvium).difference(marls)
    return gpd.GeoDataFrame({
        "CODE": ["12", "164", "221"], "NOTATION": ["Fz", "n4", "n3"],
        "DESCR": ["Alluvions récentes (synthétique)", "Marnes et calcaires marneux de l'Hauterivien",
                  "Calcaires à silex du Valanginien"],
        "TYPE_GEOL": ["Formation superficielle", "Formation sédimentaire", "Formation sédimentaire"],
        "AP_LOCALE": ["", "", ""], "TYPE_AP": ["", "", ""], "GEOL_NAT": ["", "", ""],
        "ISOPIQUE": ["", "", ""], "AGE_DEB": ["Holocène", "Hauterivien", "Valanginien"],
        "ERA_DEB": ["Cénozoïque", "Mésozoïque", "Mésozoïque"],
        "SYS_DEB": ["Quaternaire", "Crétacé", "Crétacé"],
        "LITHOLOGIE": ["alluvions, limons, sables, graviers", "marnes, calcaires argileux", "calcaires"],
        "DURETE": ["meuble", "tendre", "dure"], "ENVIRONMT": ["fluviatile", "marin", "marin"],
        "GEOCHIMIE": ["", "carbonatée", "carbonatée"], "LITHO_COM": ["", "", ""],
    }, geometry=[alluvium, marls, limestone], crs=2154)


def _rga(extent: Polygon, stream: LineString, au: Polygon) -> gpd.GeoDataFrame:
    strong = stream.buffer(260).intersection(extent)
    x0, y0, x1, y1 = extent.bounds
    medium = box(x0, y0, x1, y0 + (y1 - y0) * 0.45).difference(strong)
    weak = extent.difference(strong).difference(medium)
    au_strong = au.buffer(-5).intersection(box(*au.bounds[:2], au.centroid.x, au.bounds[3]))
    medium, weak = medium.difference(au_strong), weak.difference(au_strong)
    strong = strong.union(au_strong)
    return gpd.GeoDataFrame({"NIVEAU": [3, 2, 1], "ALEA": ["Fort", "Moyen", "Faible"]},
                            geometry=[strong, medium, weak], crs=2154)


def _ppr(stream: LineString, iau: Polygon) -> gpd.GeoDataFrame:
    red = stream.buffer(90)
    blue = stream.buffer(200).difference(red)
    blue = blue.union(iau.buffer(-3).intersection(box(*iau.bounds[:2], iau.bounds[2], iau.centroid.y)))
    return gpd.GeoDataFrame({
        "codezone": ["R", "B"], "typereg": ["03", "02"], "soumisalea": ["Inondation", "Inondation"],
        "libelle": ["Zone rouge : interdiction (synthétique)", "Zone bleue : prescriptions (synthétique)"],
    }, geometry=[red, blue.difference(red)], crs=2154)


def _roads(zones: gpd.GeoDataFrame, x0: float, y0: float, x1: float, y1: float) -> gpd.GeoDataFrame:
    urban = zones[zones["TYPEZONE"] == "U"].geometry.union_all().centroid
    lines = [LineString([(x0, urban.y - 300), (urban.x, urban.y), (x1, urban.y + 600)]),
             LineString([(urban.x - 200, y0), (urban.x, urban.y), (urban.x + 400, y1)])]
    return gpd.GeoDataFrame({"nature": ["Route à 2 chaussées", "Route à 1 chaussée"],
                             "importance": ["2", "3"], "nom": ["D981 (synthétique)", "D3 (synthétique)"]},
                            geometry=lines, crs=2154)


def _services(zones: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    urban = zones[zones["TYPEZONE"] == "U"].geometry
    points = [Point(g.representative_point()) for g in urban.iloc[:4]]
    kinds = ["arret_bus", "ecole", "mairie", "commerce"]
    return gpd.GeoDataFrame({"type": kinds, "nom": [f"{k} (synthétique)" for k in kinds]},
                            geometry=points, crs=2154)


def _project(au: Polygon) -> gpd.GeoDataFrame:
    c = au.centroid
    footprints = [box(c.x - 60 + 35 * i, c.y - 20, c.x - 40 + 35 * i, c.y + 12) for i in range(4)]
    return gpd.GeoDataFrame({"nom": [f"Lot {i + 1}" for i in range(4)], "hauteur_m": [7.0, 7.0, 10.0, 12.5],
                             "usage": ["logement", "logement", "logement", "commerce"]},
                            geometry=footprints, crs=2154)


# ---------------------------------------------------------------- Penmarch crop monitoring tile

PENMARCH_EPSG = 32630
PENMARCH_DATES = tuple(_at(y, m, d) for y in (2021, 2022) for m, d in
                       ((3, 28), (5, 12), (6, 21), (7, 16), (8, 20), (9, 24), (10, 29)))
#: Green fraction by RPG crop code and month (grassland PPH/PTR, silage maize MIE, not farmed SNE).
CROP_GREEN = {
    "PPH": {3: 0.75, 5: 0.85, 6: 0.75, 7: 0.6, 8: 0.55, 9: 0.65, 10: 0.7},
    "PTR": {3: 0.7, 5: 0.9, 6: 0.6, 7: 0.7, 8: 0.5, 9: 0.7, 10: 0.75},
    "MIE": {3: 0.05, 5: 0.1, 6: 0.35, 7: 0.8, 8: 0.9, 9: 0.55, 10: 0.1},
    "SNE": {3: 0.45, 5: 0.5, 6: 0.5, 7: 0.45, 8: 0.4, 9: 0.45, 10: 0.45},
}
#: The planted crop anomaly: this parcel's maize fails in summer 2022.
ANOMALY_PARCEL, ANOMALY_YEAR = "2932818", 2022  # id_parcel of a silage maize (MIE) parcel


def penmarch_scenes(target: Path, rng: np.random.Generator) -> list[pystac.Item]:
    """A small Sentinel-2-like series over the Penmarch RPG parcels (UTM 30N), 2021–2022."""
    from territoire_geo.testing import make_s2_item

    parcels = gpd.read_file(target / "rpg_penmarch" / "rpg_v2_2021_penmarch_aoi.geojson").to_crs(PENMARCH_EPSG)
    x0, y0, x1, y1 = parcels.total_bounds
    x0, y1 = np.floor((x0 - 200) / 20) * 20, np.ceil((y1 + 200) / 20) * 20
    width, height = int(np.ceil((x1 + 200 - x0) / 20)) * 2, int(np.ceil((y1 - y0 + 200) / 20)) * 2
    transform = Affine(10.0, 0.0, x0, 0.0, -10.0, y1)
    ids = rasterio.features.rasterize(
        [(g, i + 1) for i, g in enumerate(parcels.geometry)], out_shape=(height, width), transform=transform,
        fill=0, dtype="uint8")
    codes = ["BG", *parcels["code_cultu"].tolist()]
    names = ["", *parcels["id_parcel"].astype(str).tolist()]
    items = []
    for when in PENMARCH_DATES:
        refl = _crop_reflectance(ids, codes, names, when, rng)
        dn = {name: to_dn(refl[BANDS.index(name)], "04.00" if when.year >= 2022 else "03.01")
              for name in ("blue", "green", "red", "nir", "swir16")}
        ndvi = (refl[BANDS.index("nir")] - refl[BANDS.index("red")]) / (refl[BANDS.index("nir")] +
                                                                        refl[BANDS.index("red")])
        dn["scl"] = np.where(ndvi > 0.4, 4, 5).astype("uint8")
        bands = {k: (v[::2, ::2] if k in ("swir16", "scl") else v) for k, v in dn.items()}
        bands["swir16"] = _block_mean(dn["swir16"])
        item_id = f"S2B_T30UUT_{when:%Y%m%dT%H%M%S}_L2A"
        folder = target / "stac" / "sentinel-2-l2a" / item_id
        items.append(make_s2_item(folder, item_id, when, bands, transform, PENMARCH_EPSG,
                                  baseline="04.00" if when.year >= 2022 else "03.01", tile="30UUT",
                                  platform="sentinel-2b"))
    return items


def _block_mean(array: np.ndarray) -> np.ndarray:
    h, w = array.shape
    return np.round(array.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))).astype(array.dtype)


def _crop_reflectance(ids: np.ndarray, codes: list[str], names: list[str], when: dt.datetime,
                      rng: np.random.Generator) -> np.ndarray:
    green = np.full(ids.shape, 0.6)
    for index, (code, name) in enumerate(zip(codes, names, strict=True)):
        if index == 0:
            continue
        value = CROP_GREEN.get(code, CROP_GREEN["SNE"])[when.month]
        if name == ANOMALY_PARCEL and when.year == ANOMALY_YEAR and when.month in (7, 8, 9):
            value = 0.25
        green[ids == index] = value
    veg, soil = SPECTRA["veg"][:, None, None], SPECTRA["soil"][:, None, None]
    refl = green[None] * veg + (1 - green[None]) * soil
    return np.clip(refl + rng.normal(0.0, 0.0003, size=refl.shape), 0.001, 0.95)


# ---------------------------------------------------------------- truth and main


def write_truth(target: Path, zones: gpd.GeoDataFrame, cover: np.ndarray) -> None:
    """The planted change (EPSG:2154) and the land-cover truth raster."""
    from territoire_geo.io import write_cog

    out = target / "truth"
    out.mkdir(exist_ok=True)
    planted = gpd.GeoDataFrame({"change": ["new_artificial_surface"],
                                "after": [CHANGE_AFTER.date().isoformat()],
                                "before": [CHANGE_BEFORE.date().isoformat()]},
                               geometry=[planted_polygon(zones)], crs=EPSG_UTM).to_crs(2154)
    planted["area_m2"] = planted.area.round(1)
    path = out / "planted_change.geojson"
    path.unlink(missing_ok=True)
    planted.to_file(path, driver="GeoJSON")
    write_cog(out / "land_cover.tif", cover, TRANSFORM, f"EPSG:{EPSG_UTM}", nodata=0, resampling="nearest",
              tags={"classes": "1 urban,2 garden,3 forest,4 garrigue,5 water,6 crop,7 vine,8 grass,9 planted"})


def generate(target: Path) -> None:
    """Write the whole sample territory into ``target``."""
    rng = np.random.default_rng(SEED)
    copy_real(target)
    zones = read_zones(target)
    cover, fields = land_cover(zones, rng)
    shutil.rmtree(target / "stac", ignore_errors=True)
    items = [build_scene(target, acq, cover, fields, rng) for acq in ACQUISITIONS]
    items += penmarch_scenes(target, np.random.default_rng(SEED + 2))
    write_catalog(target, items, dem_item(target, rng))
    write_layers(target, zones, rng)
    write_truth(target, zones, cover)


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every generated file (for --check)."""
    skip = {"generate.py", "README.md"}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args()
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2000-01-01T00:00:00.000Z"})  # reproducible GPKG
    generate(args.out)
    print(json.dumps({"files": len(checksums(args.out)),
                      "bytes": sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())}))


if __name__ == "__main__":
    main()
