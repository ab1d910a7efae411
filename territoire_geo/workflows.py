"""Ready-made workflows chaining search, load, indices and outputs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from territoire_geo.errors import ExportError

__all__ = ["ndvi_quicklook"]


def ndvi_quicklook(samples: Path, out_dir: Path, *, overwrite: bool = False,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Yearly max-NDVI composites of the sample territory, their difference, COGs and PNG maps."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    from territoire_geo.io import write_raster
    from territoire_geo.load import load
    from territoire_geo.report import quicklook_png
    from territoire_geo.sources import search

    say = progress or (lambda _msg: None)
    if out_dir.exists():
        if not overwrite:
            raise ExportError(f"{out_dir} already exists; pass --overwrite to replace it")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    aoi = next((samples / "plu").glob("*/Donnees_geographiques/*ZONE_URBA*.shp"))
    items = search(aoi, "2021-01-01/2023-12-31", source=samples / "stac", collections="sentinel-2-l2a",
                   max_cloud=60)
    say(f"{len(items)} Sentinel-2 scenes found")
    ds = load(items, bands=["red", "nir"], aoi=aoi, mask=True)
    ndvi = ((ds.nir - ds.red) / (ds.nir + ds.red)).astype("float32")
    yearly = ndvi.groupby("time.year").max("time")
    first, last = int(yearly.year.min()), int(yearly.year.max())
    outputs: dict[str, Any] = {}
    for year in (first, last):
        layer = yearly.sel(year=year).rename(f"ndvi_max_{year}").rio.write_crs("EPSG:2154")
        layer.attrs.update({"long_name": f"max NDVI {year}", "units": "1"})
        outputs[f"ndvi_max_{year}.tif"] = write_raster(layer, out_dir / f"ndvi_max_{year}.tif")
        say(f"NDVI {year} written")
    diff = (yearly.sel(year=last) - yearly.sel(year=first)).rename("ndvi_difference").rio.write_crs("EPSG:2154")
    outputs["ndvi_difference.tif"] = write_raster(diff, out_dir / "ndvi_difference.tif")
    source = "Contient des données Copernicus Sentinel-2 synthétiques · PLU Arpaillargues (GPU, Etalab 2.0)"
    outputs["ndvi_quicklook.png"] = quicklook_png(yearly.sel(year=last), out_dir / "ndvi_quicklook.png",
                                                  title=f"NDVI maximal {last}", source=source)
    outputs["ndvi_difference.png"] = quicklook_png(diff, out_dir / "ndvi_difference.png", cmap="RdBu",
                                                   vmin=-0.6, vmax=0.6, label="ΔNDVI",
                                                   title=f"Évolution du NDVI maximal {first}→{last}",
                                                   source=source)
    (out_dir / "items.json").write_text(json.dumps([i.id for i in items], indent=1))
    return {k: str(v) for k, v in outputs.items()}
