"""Rasters for 3D scenes: draped images (PNG data URLs) and the relief grid.

A raster (NDVI, change classes…) becomes an RGBA PNG in EPSG:4326, embedded as a
``data:`` URL for a BitmapLayer. A DEM becomes (a) a coarse elevation grid the page
turns into a triangle mesh and (b) a hillshaded, lightly tinted texture for it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
from matplotlib import colormaps
from matplotlib.colors import LightSource, LinearSegmentedColormap
from PIL import Image
from rasterio.enums import Resampling

from territoire_geo.errors import ConfigError, DataError
from territoire_geo.present._style import OKABE_ITO, format_number, rgba
from territoire_geo.present.scene._legend import gradient_entry

__all__ = ["DrapedImage", "Terrain", "auto_exaggeration", "drape", "terrain"]

_MAX_CLASSES = 20
_RELIEF_TINT = ("#dfe9cc", "#efe6c4", "#e3cfae", "#cdb89a")


@dataclass(frozen=True)
class DrapedImage:
    """An RGBA PNG (``data:`` URL) covering ``bounds`` (west, south, east, north)."""

    url: str
    bounds: tuple[float, float, float, float]
    legend: list[dict[str, Any]]


@dataclass(frozen=True)
class Terrain:
    """Relief: ``grid`` for the page's mesh builder, its ``texture`` (with the overlay raster if any),
    the ``plain`` hillshade without it and the overlay's ``legend``."""

    grid: dict[str, Any]
    texture: str
    bounds: tuple[float, float, float, float]
    plain: str | None = None
    legend: list[dict[str, Any]] = field(default_factory=list)


def _png_url(rgba_array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba_array, dtype=np.uint8), "RGBA").save(buffer, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _prepared(data: Any, label: str, bounds: Sequence[float] | None, max_px: int, *,
              categorical: bool = False) -> Any:
    """2-D float DataArray in EPSG:4326 (NaN = nodata), clipped to ``bounds``, ≤ ``max_px`` a side."""
    if not hasattr(data, "dims") or not hasattr(data, "rio"):
        raise DataError(f"{label} must be an xarray DataArray with a CRS (rioxarray)")
    if data.ndim == 3 and data.shape[0] == 1:
        data = data.squeeze(data.dims[0], drop=True)
    if data.ndim != 2:
        raise DataError(f"{label} must be 2-D (y, x), not {data.ndim}-D {tuple(data.dims)}")
    if data.rio.crs is None:
        raise DataError(f"{label} has no CRS; set it with .rio.write_crs(...)")
    nodata = data.rio.nodata if data.rio.nodata is not None else data.rio.encoded_nodata
    values = data.astype("float32")
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        values = values.where(data != nodata)
    values = values.rio.write_nodata(np.nan, encoded=False)
    if bounds is not None:
        try:
            values = values.rio.clip_box(*bounds, crs="EPSG:4326")
        except Exception as exc:  # rioxarray raises several types (NoDataInBounds, OneDimensionalRaster)
            raise DataError(f"{label} does not cover the scene: {exc}") from exc
    resampling = Resampling.nearest if categorical else Resampling.bilinear
    if values.rio.crs.to_epsg() != 4326:
        values = values.rio.reproject("EPSG:4326", resampling=resampling, nodata=np.nan)
    height, width = values.shape
    if max(height, width) > max_px:
        factor = max(height, width) / max_px
        shape = (max(2, round(height / factor)), max(2, round(width / factor)))
        values = values.rio.reproject("EPSG:4326", shape=shape,
                                      resampling=Resampling.mode if categorical else Resampling.average,
                                      nodata=np.nan)
    return values


def _bounds(data: Any) -> tuple[float, float, float, float]:
    west, south, east, north = data.rio.bounds()
    return (round(west, 7), round(south, 7), round(east, 7), round(north, 7))


def _classes(raw: Any) -> dict[float, str] | None:
    """Class values → labels if the raster holds classes (CF flags, ``classes`` attr or few ints)."""
    attrs = raw.attrs
    if isinstance(attrs.get("classes"), dict):
        return {float(k): str(v) for k, v in attrs["classes"].items()}
    if "flag_values" in attrs and "flag_meanings" in attrs:
        values = np.atleast_1d(attrs["flag_values"])
        return {float(v): str(m) for v, m in zip(values, str(attrs["flag_meanings"]).split(), strict=False)}
    if np.issubdtype(raw.dtype, np.integer):
        nodata = raw.rio.nodata if raw.rio.nodata is not None else raw.rio.encoded_nodata
        found = np.unique(np.asarray(raw.values))
        found = found[found != nodata] if nodata is not None else found
        if found.size <= _MAX_CLASSES:
            return {float(v): str(int(v)) for v in found}
    return None


def _title(data: Any, fallback: str) -> str:
    return str(data.attrs.get("long_name") or data.name or fallback)


def _colour(data: Any, array: np.ndarray, classes: dict[float, str] | None, colormap: str | None, lang: str,
            vrange: tuple[float, float] | None) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """RGBA (nodata transparent) of ``array`` holding the values of ``data``, and its legend."""
    out = np.zeros((*array.shape, 4), dtype=np.uint8)
    title = _title(data, "raster")
    if classes is not None:
        legend: list[dict[str, Any]] = [{"kind": "heading", "label": title}]
        for i, (value, name) in enumerate(sorted(classes.items())):
            color = OKABE_ITO[i % len(OKABE_ITO)]
            out[array == value] = rgba(color, 230)
            legend.append({"kind": "swatch", "color": color, "label": name})
        return out, legend
    name = colormap or ("RdYlGn" if "ndvi" in title.lower() else "viridis")
    if name not in colormaps:
        raise ConfigError(f"unknown colormap {name!r}; use a matplotlib name such as 'viridis'")
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        raise DataError("the raster has no valid pixel over the scene")
    low, high = vrange or (float(np.percentile(finite, 2)), float(np.percentile(finite, 98)))
    scaled = np.clip((array - low) / ((high - low) or 1.0), 0, 1)
    out[:] = (colormaps[name](np.nan_to_num(scaled)) * 255).astype(np.uint8)
    out[..., 3] = np.where(np.isfinite(array), 220, 0)
    return out, [gradient_entry(name, title, format_number(low, 2, lang, missing=""), format_number(high, 2, lang, missing=""))]


def drape(data: Any, *, bounds: Sequence[float] | None, colormap: str | None, lang: str,
          vrange: tuple[float, float] | None = None, max_px: int = 1024) -> DrapedImage:
    """Colour a 2-D raster (classes or continuous values) into a transparent-nodata PNG."""
    classes = _classes(data)
    values = _prepared(data, "raster", bounds, max_px, categorical=classes is not None)
    out, legend = _colour(data, np.asarray(values.values, dtype="float64"), classes, colormap, lang, vrange)
    return DrapedImage(_png_url(out), _bounds(values), legend)


def _hillshade(values: np.ndarray, bounds: Sequence[float], exaggeration: float) -> np.ndarray:
    """RGB floats (0–1): lightly tinted, soft hillshade."""
    west, south, east, north = bounds
    height, width = values.shape
    lat = math.radians((south + north) / 2)
    dx = (east - west) / width * 111_320 * math.cos(lat)
    dy = (north - south) / height * 110_540
    filled = np.where(np.isfinite(values), values, np.nanmin(values))
    tint = LinearSegmentedColormap.from_list("relief", _RELIEF_TINT)
    shaded = LightSource(azdeg=315, altdeg=35).shade(filled, cmap=tint, blend_mode="soft", fraction=1.3,
                                                     vert_exag=exaggeration, dx=dx, dy=dy)
    return np.clip(shaded[..., :3], 0, 1)


def _overlay(fine: Any, shade: np.ndarray, overlay: Any, colormap: str | None,
             lang: str) -> tuple[str, list[dict[str, Any]]]:
    """The hillshade with ``overlay`` (resampled onto the relief texture grid) blended over it."""
    classes = _classes(overlay)
    values = _prepared(overlay, "raster", _bounds(fine), 4096, categorical=classes is not None)
    matched = values.rio.reproject_match(fine, resampling=Resampling.nearest if classes else Resampling.bilinear,
                                         nodata=np.nan)
    colours, legend = _colour(overlay, np.asarray(matched.values, dtype="float64"), classes, colormap, lang, None)
    alpha = colours[..., 3:4] / 255.0
    mixed = shade * (1 - alpha) + colours[..., :3] / 255.0 * alpha
    return _rgb_url(mixed), legend


def _rgb_url(rgb: np.ndarray) -> str:
    out = np.full((*rgb.shape[:2], 4), 255, dtype=np.uint8)
    out[..., :3] = np.rint(np.clip(rgb, 0, 1) * 255)
    return _png_url(out)


def auto_exaggeration(relief_m: float, diag_m: float) -> float:
    """Vertical exaggeration making the relief about 8 % of the scene diagonal: 1–5, by halves."""
    if relief_m <= 0:
        return 1.0
    return float(min(max(round(0.08 * diag_m / relief_m * 2) / 2, 1.0), 5.0))


def terrain(dem: Any, *, bounds: Sequence[float] | None, exaggeration: float | None, diag_m: float,
            overlay: Any = None, overlay_colormap: str | None = None, lang: str = "fr", max_cells: int = 200,
            texture_px: int = 1024) -> Terrain:
    """Relief grid (decimetres above the lowest point) and its hillshade texture.

    ``exaggeration=None`` picks :func:`auto_exaggeration` for a scene of diagonal ``diag_m``.
    An ``overlay`` raster (NDVI, classes) is blended into the texture; the plain hillshade is
    kept in ``Terrain.plain`` so the page can switch the overlay off.

    Raises
    ------
    DataError
        Not a 2-D DataArray with a CRS, no valid elevation, or no overlap with the scene.
    """
    if exaggeration is not None and not exaggeration > 0:
        raise ConfigError(f"exaggeration must be positive, not {exaggeration!r}")
    fine = _prepared(dem, "dem", bounds, texture_px)
    fine_values = np.asarray(fine.values, dtype="float64")
    if not np.isfinite(fine_values).any():
        raise DataError("the DEM has no valid elevation over the scene")
    box = _bounds(fine)
    coarse = _prepared(fine, "dem", None, max_cells)
    z = np.asarray(coarse.values, dtype="float64")
    zmin, zmax = float(np.nanmin(fine_values)), float(np.nanmax(fine_values))
    if exaggeration is None:
        exaggeration = auto_exaggeration(zmax - zmin, diag_m)
    z = np.where(np.isfinite(z), z, zmin)
    xs, ys = np.asarray(coarse["x"].values), np.asarray(coarse["y"].values)
    grid = {
        "w": int(z.shape[1]), "h": int(z.shape[0]),
        "x0": round(float(xs[0]), 7), "dx": round(float(xs[1] - xs[0]), 9),
        "y0": round(float(ys[0]), 7), "dy": round(float(ys[1] - ys[0]), 9),
        "bounds": list(box), "z": np.rint((z - zmin) * 10).astype(int).ravel().tolist(), "scale": 0.1,
        "exag": float(exaggeration), "zmin": round(zmin, 1), "zmax": round(zmax, 1),
    }
    plain = _rgb_url(_hillshade(fine_values, box, exaggeration))
    if overlay is None:
        return Terrain(grid, plain, box)
    fine = _finer(fine, overlay, texture_px)  # e.g. a 10 m NDVI on a 30 m DEM
    shade = _hillshade(np.asarray(fine.values, dtype="float64"), box, exaggeration)
    texture, legend = _overlay(fine, shade, overlay, overlay_colormap, lang)
    return Terrain(grid, texture, box, plain=plain, legend=legend)


def _finer(fine: Any, overlay: Any, max_px: int) -> Any:
    """``fine`` resampled (bilinear) to the overlay's resolution, at most 4× finer and ``max_px`` a side."""
    height, width = fine.shape
    west, south, east, north = fine.rio.bounds()
    own = (east - west) / width * 111_320 * math.cos(math.radians((south + north) / 2))  # metres
    try:
        other = abs(overlay.rio.resolution()[0]) * (1.0 if overlay.rio.crs.is_projected else 111_320)
    except Exception:  # no usable transform: keep the DEM grid
        return fine
    factor = min(max(round(own / other), 1), 4, max_px // max(height, width)) if other > 0 else 1
    if factor <= 1:
        return fine
    return fine.rio.reproject("EPSG:4326", shape=(height * factor, width * factor), resampling=Resampling.bilinear,
                              nodata=np.nan)
