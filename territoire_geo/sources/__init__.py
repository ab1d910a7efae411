"""Imagery and open-data sources: the only place territoire_geo talks to the network.

:func:`search` accepts a STAC API URL, a named profile (``earth-search``,
``planetary-computer``, ``cdse``), a DHuS or OData hub, or a path to a static
catalog, and returns ``pystac.Item`` objects ordered by datetime;
:func:`resolve_aoi` turns any area form, communes named by code included, into an
AOI. Downloads (:mod:`~territoire_geo.sources.download`), SAFE products
(:mod:`~territoire_geo.sources.safe`), PLU from the Géoportail de l'Urbanisme
(:mod:`~territoire_geo.sources.gpu`) and commune contours
(:mod:`~territoire_geo.sources.communes`) have their own modules.
"""

from territoire_geo.sources._base import ImagerySource, SearchQuery, Signer, item_time, sort_items
from territoire_geo.sources._http import HttpClient, RetryPolicy, redact_url
from territoire_geo.sources._search import open_source, resolve_aoi, search
from territoire_geo.sources.profiles import PROFILES
from territoire_geo.sources.stac import StacApiSource, StaticCatalogSource

__all__ = [
    "PROFILES",
    "HttpClient",
    "ImagerySource",
    "RetryPolicy",
    "SearchQuery",
    "Signer",
    "StacApiSource",
    "StaticCatalogSource",
    "item_time",
    "open_source",
    "redact_url",
    "resolve_aoi",
    "search",
    "sort_items",
]
