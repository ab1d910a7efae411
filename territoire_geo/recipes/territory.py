"""A recipe territory named by communes (``insee``) or an EPCI (``epci``), without PLU or AOI file.

The contours come from geo.api.gouv.fr through :mod:`territoire_geo.sources.communes`
and are cached per code in the user cache folder; each cached answer is a recipe
input: its SHA-256 enters the zoning step's cache key and the run's manifest, so a
rerun reads the same bytes and gives the same outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from territoire_geo.recipes.models import Territory

__all__ = ["commune_inputs", "communes_frame", "communes_key"]


def commune_inputs(territory: Territory) -> list[tuple[str, Path]]:
    """``(role, cached file)`` of every commune and EPCI named, fetching what is not cached.

    Roles are ``commune:<INSEE>`` and ``epci:<SIREN>``.

    Raises
    ------
    NoDataFoundError
        An unknown code.
    SourceUnavailableError
        The API is unreachable and a contour is not cached.
    """
    from territoire_geo.config import Settings
    from territoire_geo.sources.communes import boundary_files

    codes = list(dict.fromkeys(territory.insee))
    files = boundary_files(codes, epci=territory.epci, settings=Settings.from_env()) \
        if codes or territory.epci else []
    roles = [f"commune:{code}" for code in codes] + ([f"epci:{territory.epci}"] if territory.epci else [])
    return list(zip(roles, files, strict=True))


def communes_key(territory: Territory) -> list[dict[str, str]]:
    """The part of the zoning step's cache key that names the contour files by checksum."""
    from territoire_geo.provenance import path_digest

    return [{"role": role, "sha256": path_digest(path)} for role, path in commune_inputs(territory)]


def communes_frame(territory: Territory) -> Any:
    """The union of the communes, one row, in the territory's CRS."""
    from territoire_geo.sources.communes import communes_area, read_boundaries

    frame = read_boundaries([path for _, path in commune_inputs(territory)])
    return communes_area(frame, crs=territory.crs)
