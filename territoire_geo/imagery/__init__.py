"""Imagery on one grid: canonical bands and scaling per item, cloud masks, lazy loading, fetching."""

from territoire_geo.imagery import bands, masks
from territoire_geo.imagery._clip import clip_to_cog
from territoire_geo.imagery._fetch import FetchedAsset, fetch, fetch_report
from territoire_geo.imagery._load import LoadPlan, PlannedItem, load, load_plan, plan_load

__all__ = [
    "FetchedAsset",
    "LoadPlan",
    "PlannedItem",
    "bands",
    "clip_to_cog",
    "fetch",
    "fetch_report",
    "load",
    "load_plan",
    "masks",
    "plan_load",
]
