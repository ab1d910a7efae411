"""``territoire-geo scene``: one offline 3D HTML scene (and optionally a PNG) from files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from territoire_geo_cli._app import out, run, state


def scene_cmd(
    ctx: typer.Context,
    units: Annotated[Path | None, typer.Option("--units", "-u", exists=True, readable=True,
                                               help="Zones or parcels (GPKG, SHP, GeoJSON…).")] = None,
    layer: Annotated[str | None, typer.Option("--layer", help="Layer of a multi-layer --units file.")] = None,
    extrude: Annotated[str, typer.Option("--extrude", help="Column giving block heights; flat units if the "
                                         "column is missing; 'none' for flat.")] = "score",
    color_by: Annotated[str | None, typer.Option("--color-by", help="Column colouring the units "
                                                 "(default TYPEZONE, else --extrude).")] = None,
    raster: Annotated[Path | None, typer.Option("--raster", exists=True, dir_okay=False,
                                                help="Raster draped as an image (NDVI, change classes).")] = None,
    dem: Annotated[Path | None, typer.Option("--dem", exists=True, dir_okay=False,
                                             help="Elevation raster: relief.")] = None,
    project: Annotated[Path | None, typer.Option("--project", exists=True, dir_okay=False,
                                                 help="Project footprints with a height column (m).")] = None,
    change: Annotated[Path | None, typer.Option("--change", exists=True, dir_okay=False,
                                                help="Change patches (polygons), drawn in red.")] = None,
    context: Annotated[list[Path] | None, typer.Option("--context", exists=True, dir_okay=False,
                                                       help="Context layer: roads, boundaries (repeatable).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title shown on the page.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Page language: fr or en.")] = "fr",
    output: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path("scene.html"),
    png: Annotated[Path | None, typer.Option("--png", help="Also save a PNG snapshot (needs chromium).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs.")] = False,
    basemap: Annotated[bool, typer.Option("--basemap", help="Add OpenStreetMap tiles (the page then needs "
                                          "the internet).")] = False,
) -> None:
    """Write a 3D scene for elected officials as ONE offline HTML file (no CDN, no tiles).

    Units are extruded by a score and coloured by zone type over the relief, with change patches, the project and context layers; French tooltips and legend; camera presets for the overview, the project and the top-ranked units.

    Example: [bold]territoire-geo scene --units data_samples/plu/30014_PLU_20171013/Donnees_geographiques/30014_ZONE_URBA_20171013.shp --dem data_samples/stac/cop-dem-glo-30/Copernicus_DSM_COG_10_N43_00_E004_00_DEM/dem.tif --project data_samples/layers/projet_batiments.gpkg --change data_samples/truth/planted_change.geojson --context data_samples/layers/routes.gpkg --out scene.html --png scene.png[/]
    """
    from territoire_geo.present.scene import scene_from_files  # deferred: keeps --help fast

    html_path, png_path = run(ctx, lambda: scene_from_files(
        output, units=units, layer=layer, extrude=None if extrude.lower() == "none" else extrude,
        color_by=color_by, raster=raster, dem=dem, project=project, change=change, context=context or [],
        title=title, lang=lang, png=png, overwrite=overwrite, basemap=basemap))
    if not state(ctx).quiet:
        size = html_path.stat().st_size / 1e6
        extra = f"; snapshot {png_path}" if png_path else ""
        out.print(f"scene written: {html_path} ({size:.1f} MB, opens offline by double-click){extra}")


def register(app: typer.Typer) -> None:
    """Add the ``scene`` command to ``app``."""
    app.command("scene")(scene_cmd)
