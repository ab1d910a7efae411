"""``territoire-geo search`` and ``territoire-geo fetch``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from territoire_geo._types import is_commune_spec, normalize_bbox
from territoire_geo_cli._app import download_progress, out, print_json, run, state

SourceOpt = Annotated[str, typer.Option("--source", "-s", help="STAC API URL, profile (earth-search, "
                                        "planetary-computer, cdse), static catalog path, dhus+https://… "
                                        "(DHuS hub) or cdse-odata.")]
AOI_HELP = ("Vector file (GeoJSON, GPKG, SHP), bbox 'minx,miny,maxx,maxy' (lon/lat unless --aoi-crs), or "
            "communes by code: 'insee:30014', 'insee:30014,30028' or an EPCI by SIREN 'epci:200066918' "
            "(contours from geo.api.gouv.fr, cached).")
AoiOpt = Annotated[str, typer.Option("--aoi", "-a", help=AOI_HELP)]
AoiCrsOpt = Annotated[str, typer.Option("--aoi-crs", help="CRS of a bbox given with --aoi.")]
PeriodOpt = Annotated[str, typer.Option("--period", "-p", help="'2022', '2022-06' or 'YYYY-MM-DD/YYYY-MM-DD'.")]
CollectionOpt = Annotated[list[str] | None, typer.Option("--collection", "-c", help="Collection id (repeatable).")]
CloudOpt = Annotated[float | None, typer.Option("--max-cloud", min=0, max=100, help="Max cloud cover, %.")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many items.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def parse_aoi(text: str, crs: str) -> Any:
    """Communes from 'insee:…'/'epci:…' (kept as text), a bbox from 'a,b,c,d' (in ``crs``), else a path."""
    if is_commune_spec(text):
        return text
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 4:
        try:
            return normalize_bbox([float(p) for p in parts], crs)
        except ValueError:
            pass
    return Path(text)


def _search(source: str, aoi: str, aoi_crs: str, period: str, collection: list[str] | None,
            max_cloud: float | None, limit: int | None) -> list[Any]:
    from territoire_geo import search  # deferred: keeps --help fast

    return search(parse_aoi(aoi, aoi_crs), period, source=source, collections=collection or None,
                  max_cloud=max_cloud, limit=limit)


def describe_item(item: Any) -> dict[str, Any]:
    """An item as JSON-ready data with its canonical bands."""
    from territoire_geo.imagery.bands import band_assets  # deferred: keeps --help fast

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bands = band_assets(item)
    return {
        "id": item.id,
        "collection": item.collection_id,
        "datetime": item.datetime.isoformat() if item.datetime else None,
        "cloud_cover": item.properties.get("eo:cloud_cover"),
        "processing_baseline": item.properties.get("s2:processing_baseline")
        or item.properties.get("processing:version"),
        "bands": {k: {"key": b.key, "href": b.href, "scale": b.scale, "offset": b.offset, "nodata": b.nodata}
                  for k, b in bands.items()},
        "warnings": [str(w.message) for w in caught],
    }


def search_cmd(
    ctx: typer.Context, source: SourceOpt, aoi: AoiOpt, period: PeriodOpt, aoi_crs: AoiCrsOpt = "EPSG:4326",
    collection: CollectionOpt = None, max_cloud: CloudOpt = None, limit: LimitOpt = None, json: JsonOpt = False,
) -> None:
    """Find Sentinel-2 / Landsat / DEM items over an area and a period.

    Example: [bold]territoire-geo search -s data_samples/stac -a 4.33,43.97,4.40,44.03 -p 2022 --max-cloud 20[/]

    By commune (contour from geo.api.gouv.fr, then cached): [bold]territoire-geo search -s data_samples/stac -a insee:30014 -p 2022[/]
    """
    items = run(ctx, lambda: _search(source, aoi, aoi_crs, period, collection, max_cloud, limit))
    rows = [describe_item(i) for i in items]
    if json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} item(s)")
    table.add_column("id", no_wrap=True)
    for col in ("date", "collection", "cloud %", "baseline", "bands"):
        table.add_column(col)
    for row in rows:
        table.add_row(row["id"], (row["datetime"] or "")[:10], row["collection"] or "",
                      "" if row["cloud_cover"] is None else f"{row['cloud_cover']:.1f}",
                      row["processing_baseline"] or "", " ".join(row["bands"]))
    if not state(ctx).quiet:
        out.print(table)


def fetch_cmd(
    ctx: typer.Context, source: SourceOpt, aoi: AoiOpt, period: PeriodOpt,
    bands: Annotated[str, typer.Option("--bands", "-b", help="Comma-separated canonical bands.")] = "red,nir,scl",
    dest: Annotated[Path, typer.Option("--dest", "-d", help="Cache folder.")] = Path("territoire_geo_cache"),
    clip: Annotated[bool, typer.Option("--clip", help="Clip each asset to the AOI (COG) instead of "
                                       "downloading it whole.")] = False,
    aoi_crs: AoiCrsOpt = "EPSG:4326", collection: CollectionOpt = None, max_cloud: CloudOpt = None,
    limit: LimitOpt = None, json: JsonOpt = False,
) -> None:
    """Download the bands of the items found into a cache folder (resumable, verified).

    A second run downloads nothing; an interrupted run resumes where it stopped.

    Example: [bold]territoire-geo fetch -s data_samples/stac -a 4.33,43.97,4.40,44.03 -p 2022 -b red,nir -d cache[/]

    By communes or EPCI: [bold]territoire-geo fetch -s earth-search -a insee:30014,30028 -p 2022 -b red,nir --clip[/]
    """
    from territoire_geo.imagery import fetch, fetch_report  # deferred: keeps --help fast

    band_list = [b.strip() for b in bands.split(",") if b.strip()]

    def work() -> list[dict[str, Any]]:
        from territoire_geo.sources import open_source  # deferred: keeps --help fast

        items = _search(source, aoi, aoi_crs, period, collection, max_cloud, limit)
        area = parse_aoi(aoi, aoi_crs) if clip else None
        with download_progress(state(ctx).quiet or json) as progress:
            _, report = fetch(items, band_list, dest, aoi=area, progress=progress, source=open_source(source))
        return fetch_report(report)

    report = run(ctx, work)
    if json:
        print_json(report)
        return
    fetched = sum(1 for r in report if not r["cached"])
    size = sum(r["bytes"] for r in report)
    if not state(ctx).quiet:
        out.print(f"{len(report)} asset(s): {fetched} fetched ({size / 1e6:.1f} MB), "
                  f"{len(report) - fetched} already in cache; items list: {dest / 'items.json'}")


def register(app: typer.Typer) -> None:
    """Add the imagery commands to ``app``."""
    app.command("search")(search_cmd)
    app.command("fetch")(fetch_cmd)
