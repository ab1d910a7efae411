"""File-to-file workflows: one function per CLI command, for notebooks and scripts too."""

from territoire_geo.workflows._analysis import CHANGE_INDICES, compute_indices, detect_change
from territoire_geo.workflows._decision import (
    LAYER_KINDS,
    ScoreRun,
    overlay_from_files,
    parse_assignments,
    score_from_files,
)
from territoire_geo.workflows._zoning import (
    ZoningCheck,
    fetch_zoning,
    fetch_zoning_to,
    validate_zoning,
    write_zoning,
)

__all__ = [
    "CHANGE_INDICES",
    "LAYER_KINDS",
    "ScoreRun",
    "ZoningCheck",
    "compute_indices",
    "detect_change",
    "fetch_zoning",
    "fetch_zoning_to",
    "overlay_from_files",
    "parse_assignments",
    "score_from_files",
    "validate_zoning",
    "write_zoning",
]
