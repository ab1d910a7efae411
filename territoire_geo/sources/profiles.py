"""Named STAC providers and what differs between them.

A profile gives the API URL, the default Sentinel-2 L2A collection, the DEM
collection, and whether hrefs need signing before they can be read. Band
keys and scale/offset rules are handled per item in :mod:`territoire_geo.imagery.bands`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Profile", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """One STAC provider."""

    name: str
    url: str
    s2_collection: str
    dem_collection: str | None
    needs_signing: bool = False
    note: str = ""


PROFILES: dict[str, Profile] = {
    "earth-search": Profile(
        "earth-search", "https://earth-search.aws.element84.com/v1", "sentinel-2-l2a", "cop-dem-glo-30",
        note="Element84 Earth Search v1; public COGs on AWS; offset flagged by earthsearch:boa_offset_applied",
    ),
    "planetary-computer": Profile(
        "planetary-computer", "https://planetarycomputer.microsoft.com/api/stac/v1", "sentinel-2-l2a",
        "cop-dem-glo-30", needs_signing=True,
        note="Microsoft Planetary Computer; hrefs need a SAS token (sign=planetary_computer_signer())",
    ),
    "cdse": Profile(
        "cdse", "https://stac.dataspace.copernicus.eu/v1", "sentinel-2-l2a", "cop-dem-glo-30-dged-cog",
        needs_signing=True,
        note="Copernicus Data Space Ecosystem; assets on s3://eodata with an authenticated HTTPS alternate",
    ),
}


def get_profile(name: str) -> Profile | None:
    """The profile called ``name`` (case-insensitive), or ``None``."""
    return PROFILES.get(name.lower().replace("_", "-"))
