"""Local reads and writes: COG clips, rasters, vectors — always atomic.

Every writer puts its bytes in ``<name>.part`` and renames, so a crash never
leaves a half-written file under the final name.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from territoire_geo._cog import write_cog
from territoire_geo._types import AOI
from territoire_geo.config import Settings, gdal_env
from territoire_geo.errors import ConfigError, DataError, ExportError

__all__ = ["clip_to_cog", "write_cog", "write_cube_zarr", "write_cube_zarrs", "write_raster", "write_vector"]

_URL = re.compile(r"https?://[^\s'\"]+")


def clip_to_cog(href: str, target: str | os.PathLike[str], aoi: AOI, *, settings: Settings | None = None) -> int:
    """Read the AOI window of a (remote) raster and write it as a COG.

    Returns the size of the written file in bytes.

    Raises
    ------
    DataError
        If the raster cannot be read or the AOI misses it.
    ExportError
        If the disk is full.
    """
    import rasterio
    from rasterio.windows import Window, from_bounds

    from territoire_geo.sources._http import redact_url

    path = f"/vsicurl/{href}" if href.startswith(("http://", "https://")) else href
    shown = redact_url(href) if href.startswith(("http://", "https://")) else href  # signed URLs hold secrets
    try:
        with gdal_env(settings), rasterio.open(path) as src:
            minx, miny, maxx, maxy = aoi.to_crs(src.crs).bounds
            window = from_bounds(minx, miny, maxx, maxy, src.transform).round_offsets().round_lengths()
            window = window.intersection(Window(0, 0, src.width, src.height))
            data = src.read(window=window)
            transform = src.window_transform(window)
            crs, nodata = src.crs, src.nodata
    except rasterio.errors.WindowError as exc:
        raise DataError(f"the AOI does not overlap {shown}; check the AOI") from exc
    except rasterio.errors.RasterioIOError as exc:
        detail = _URL.sub(lambda m: redact_url(m.group(0)), str(exc).splitlines()[0])[:160]
        if re.search(r"HTTP response code: 40[13]\b", detail):
            from territoire_geo.errors import AuthenticationError

            raise AuthenticationError(f"{shown} was refused ({detail}); check your credentials or that the "
                                      "URL is signed and not expired") from exc
        raise DataError(f"cannot read {shown}: {detail}") from exc
    try:
        out = write_cog(target, np.ascontiguousarray(data), transform, crs, nodata=nodata)
    except OSError as exc:
        raise _export_error(target, exc) from exc
    return out.stat().st_size


def _export_error(target: Any, exc: OSError) -> ExportError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ExportError(f"disk full while writing {target}; free space and run again")
    return ExportError(f"cannot write {target}: {exc.strerror or exc}")


def ensure_new(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """Refuse to replace an existing output unless ``overwrite`` is true."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists; pass --overwrite to replace it")
    return target


def write_raster(data: Any, path: str | os.PathLike[str], *, overwrite: bool = False,
                 tags: dict[str, str] | None = None,
                 colormap: dict[int, tuple[int, int, int, int]] | None = None) -> Path:
    """Write a 2-D or (band, y, x) DataArray with a CRS as a COG, atomically.

    The array is computed here (the caller has reduced it to one or a few
    layers); float data keep NaN as nodata.

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    DataError
        If the array has no CRS.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    target = ensure_new(path, overwrite=overwrite)
    crs = data.rio.crs
    if crs is None:
        raise DataError(f"{getattr(data, 'name', 'array')} has no CRS; write_raster needs one")
    values = np.asarray(data.values)
    nodata = float("nan") if values.dtype.kind == "f" else data.rio.nodata
    names = [str(data.name)] if values.ndim == 2 else [str(v) for v in data[data.dims[0]].values]
    all_tags = {k: str(v) for k, v in data.attrs.items() if isinstance(v, (str, int, float))}
    all_tags.update(tags or {})
    try:
        return write_cog(target, values, data.rio.transform(), crs, nodata=nodata, descriptions=names,
                         tags=all_tags, colormap=colormap,
                         resampling="nearest" if values.dtype.kind in "iu" else "average")
    except OSError as exc:
        raise _export_error(target, exc) from exc


def write_cube_zarr(ds: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a (lazy) Dataset or DataArray to a Zarr store, chunk by chunk, atomically.

    The store is written to ``<name>.part`` beside ``path`` (dask computes and writes
    one chunk at a time, so memory stays bounded) and renamed when complete; an
    existing store is replaced only with ``overwrite``. Irregular dask chunks are
    made regular first (Zarr needs equal chunks but the last). Metadata are not
    consolidated (not part of the Zarr 3 specification).

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    """
    return write_cube_zarrs({path: ds}, overwrite=overwrite)[0]


def write_cube_zarrs(stores: Mapping[str | os.PathLike[str], Any], *, overwrite: bool = False,
                     window: int | None = None) -> list[Path]:
    """Write several lazy cubes to Zarr stores in **one** dask computation.

    Cubes computed from the same lazy imagery (the composites of two periods and
    the index series, say) share tasks (reads, masks): computed together, these
    run once. On a grid larger than a few chunks, the stores are written one
    window of whole chunks at a time (all stores per window): dask's local
    scheduler would otherwise start reading many chunks before finishing any,
    and the peak memory would grow with the area (measured on the composites
    step: 1.97 GB on 4096² in one go, 0.96 GB by windows, same time). With a
    dask.distributed client the graph goes to the cluster in one go. Each store
    is written to ``<name>.part`` and renamed only when all are complete.

    Parameters
    ----------
    stores
        ``{path: Dataset or DataArray}`` on one ``y``/``x`` grid.
    overwrite
        Replace existing stores.
    window
        Window side in pixels (whole chunks); default
        :data:`territoire_geo._windows.DEFAULT_WINDOW`.

    Returns
    -------
    list of Path
        The written stores, in the order given.

    Raises
    ------
    ExportError
        If a store exists and ``overwrite`` is false, or the disk is full.
    """
    import dask

    from territoire_geo._windows import DEFAULT_WINDOW, grid_windows

    targets = [ensure_new(path, overwrite=overwrite) for path in stores]
    parts = [target.with_name(target.name + ".part") for target in targets]
    try:
        ready = [_zarr_ready(data) for data in stores.values()]
        pending = []
        for part, data in zip(parts, ready, strict=True):
            part.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(part, ignore_errors=True)
            pending.append(data.to_zarr(part, mode="w-", compute=False, consolidated=False))
        windows = grid_windows(*(next(iter(d.data_vars.values())) for d in ready),
                               window=window or DEFAULT_WINDOW)
        if windows is None:
            dask.compute(*pending)
        else:  # metadata and coordinates are written; the data go window by window (bounded memory)
            for (y0, y1), (x0, x1) in windows:
                region = {"y": slice(y0, y1), "x": slice(x0, x1)}
                dask.compute(*(_region(data, region).to_zarr(part, region=region, compute=False, consolidated=False)
                               for part, data in zip(parts, ready, strict=True)))
        for part, target in zip(parts, targets, strict=True):
            _swap(part, target)
    except OSError as exc:
        raise _export_error(targets[0] if len(targets) == 1 else ", ".join(map(str, targets)), exc) from exc
    finally:
        for part in parts:
            shutil.rmtree(part, ignore_errors=True)
    return targets


def _region(ds: Any, region: Mapping[str, slice]) -> Any:
    """The part of ``ds`` in ``region``, without the variables that do not lie on its dims (written already)."""
    part = ds.isel(region)
    return part.drop_vars([name for name, var in part.variables.items() if not set(var.dims) & set(region)])


def _zarr_ready(data: Any) -> Any:
    import xarray as xr

    ds = data.to_dataset(name=data.name or "data") if isinstance(data, xr.DataArray) else data.copy()
    for name in list(ds.variables):
        ds[name].encoding = {}
    regular = {}
    for dim, sizes in (ds.chunksizes or {}).items():
        if len(sizes) > 1 and (len(set(sizes[:-1])) > 1 or sizes[-1] > sizes[0]):
            regular[dim] = max(sizes)
    return ds.chunk(regular) if regular else ds


def _swap(tmp: Path, target: Path) -> None:
    """Replace ``target`` (file or folder) by ``tmp`` with renames only."""
    old = target.with_name(f"{target.name}.old.{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists():
        old.unlink()


def write_vector(frame: Any, path: str | os.PathLike[str], *, layer: str | None = None,
                 overwrite: bool = False, styles: Mapping[str, str] | None = None) -> Path:
    """Write a GeoDataFrame (or ``{layer: GeoDataFrame}``) to GeoPackage or GeoParquet, atomically.

    The format follows the extension: ``.gpkg`` (pyogrio; several layers allowed) or
    ``.parquet`` (GeoParquet, one layer). Everything is written to
    ``<name>.part.<ext>`` and renamed, so readers never see a half-written file.

    Parameters
    ----------
    frame
        A GeoDataFrame, or a mapping of layer name to GeoDataFrame (GPKG only).
    path
        Output file.
    layer
        Layer name of a single frame (default: the file stem).
    overwrite
        Replace an existing file.

    Raises
    ------
    ConfigError
        Unknown extension, or several layers for GeoParquet.
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    """
    target = ensure_new(path, overwrite=overwrite)
    suffix = target.suffix.lower()
    layers = dict(frame) if isinstance(frame, Mapping) else {layer or target.stem: frame}
    if suffix not in (".gpkg", ".parquet"):
        raise ConfigError(f"cannot write vectors to {target.name}: use a .gpkg or .parquet file")
    if suffix == ".parquet" and len(layers) != 1:
        raise ConfigError(f"GeoParquet holds one layer; got {len(layers)} for {target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.stem}.part{target.suffix}")
    tmp.unlink(missing_ok=True)
    try:
        with _reproducible_gpkg():
            for name, data in layers.items():
                if suffix == ".parquet":
                    data.to_parquet(tmp)
                else:
                    data.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        if suffix == ".gpkg" and styles:
            from territoire_geo._qgis import add_style

            for name, qml in styles.items():
                add_style(tmp, name, qml)
        os.replace(tmp, target)
    except OSError as exc:
        raise _export_error(target, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return target



#: Timestamp GDAL writes into GeoPackage metadata, fixed so that reruns are byte-identical.
GPKG_TIMESTAMP = "2000-01-01T00:00:00.000Z"


class _reproducible_gpkg:
    """Fix the GeoPackage ``last_change`` timestamps (GDAL's OGR_CURRENT_DATE) while writing."""

    def __enter__(self) -> None:
        import pyogrio

        self._old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})

    def __exit__(self, *exc: object) -> None:
        import pyogrio

        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": self._old})


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """Neutralise a text cell that a spreadsheet would run as a formula (prefix ``'``)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_table_csv(frame: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a (Geo)DataFrame as UTF-8 CSV (geometry dropped), atomically, formula-safe.

    Text cells starting with ``= + - @`` (or tab / carriage return) are prefixed with
    ``'`` so that spreadsheets show them as text instead of running them.

    Raises
    ------
    ExportError
        If ``path`` exists and ``overwrite`` is false, or the disk is full.
    """
    target = ensure_new(path, overwrite=overwrite)
    table = frame.drop(columns=[c for c in ("geometry",) if c in frame.columns])
    table = table.apply(lambda col: col.map(csv_safe) if col.dtype.kind == "O" else col)  # object and str
    tmp = target.with_name(target.name + ".part")
    try:
        table.to_csv(tmp, index=False, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _export_error(target, exc) from exc
    return target
