"""Cloud, shadow and snow masks from Sentinel-2 SCL or Landsat QA_PIXEL (pure).

Masks are boolean DataArrays where ``True`` means *discard this pixel*.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

__all__ = [
    "DEFAULT_SCL_MASK",
    "QA_PIXEL_BITS",
    "SCL_CLASSES",
    "apply_mask",
    "qa_pixel_mask",
    "scl_mask",
    "valid_count",
]

#: Sentinel-2 L2A scene classification (ESA).
SCL_CLASSES: dict[int, str] = {
    0: "no_data", 1: "saturated_or_defective", 2: "dark_area_pixels", 3: "cloud_shadows",
    4: "vegetation", 5: "not_vegetated", 6: "water", 7: "unclassified",
    8: "cloud_medium_probability", 9: "cloud_high_probability", 10: "thin_cirrus", 11: "snow",
}  # fmt: skip

#: Classes masked by default (design.md §3): no data, saturated, shadow, clouds, cirrus, snow.
DEFAULT_SCL_MASK: frozenset[int] = frozenset({0, 1, 3, 8, 9, 10, 11})

#: Landsat Collection 2 QA_PIXEL bits masked by default.
QA_PIXEL_BITS: dict[str, int] = {"fill": 0, "dilated_cloud": 1, "cirrus": 2, "cloud": 3, "cloud_shadow": 4,
                                 "snow": 5}


def scl_mask(scl: xr.DataArray, classes: Iterable[int] = DEFAULT_SCL_MASK) -> xr.DataArray:
    """``True`` where the SCL class is one of ``classes`` (lazy on dask).

    Parameters
    ----------
    scl
        Scene classification values (integers; NaN counts as no data).
    classes
        Class codes to discard.

    Examples
    --------
    >>> scl = xr.DataArray(np.array([4, 9, 3, 6], dtype="uint8"))
    >>> scl_mask(scl).values.tolist()
    [False, True, True, False]
    """
    codes = sorted({int(c) for c in classes})
    mask = scl.isin(codes)
    if scl.dtype.kind == "f":
        mask = mask | scl.isnull()
    return mask.rename("mask")


def qa_pixel_mask(qa: xr.DataArray, bits: Iterable[str] = tuple(QA_PIXEL_BITS)) -> xr.DataArray:
    """``True`` where any of the named Landsat QA_PIXEL bits is set."""
    flag = 0
    for name in bits:
        flag |= 1 << QA_PIXEL_BITS[name]
    return ((qa.astype("uint16") & np.uint16(flag)) != 0).rename("mask")


def apply_mask(ds: xr.Dataset, mask: xr.DataArray, *, keep: Iterable[str] = ("scl", "qa_pixel")) -> xr.Dataset:
    """Set masked pixels to NaN in every floating-point variable but ``keep``."""
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if name in set(keep) or var.dtype.kind != "f":
            continue
        out[name] = var.where(~mask)
    return out


def valid_count(data: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Number of valid (non-NaN) observations per pixel along ``dim`` (uint16)."""
    return data.notnull().sum(dim).astype("uint16").rename("valid_count")
