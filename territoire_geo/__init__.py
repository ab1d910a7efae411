"""territoire_geo — geospatial planning and satellite analysis for French local authorities.

Find and fetch Copernicus imagery, load it lazily on a Lambert-93 grid, compute
vegetation and land-change indices, overlay them on PLUi zoning and soil/risk
layers, score land reserves and export offline 3D scenes — every output with
its provenance.

The package is a set of subpackages, from the network up to what people see:
:mod:`~territoire_geo.sources`, :mod:`~territoire_geo.io`,
:mod:`~territoire_geo.imagery`, :mod:`~territoire_geo.analysis`,
:mod:`~territoire_geo.planning`, :mod:`~territoire_geo.present`, then
:mod:`~territoire_geo.workflows` and :mod:`~territoire_geo.recipes`. The few
functions below are the shortcuts a notebook starts with; they are imported on
first use, so that ``import territoire_geo`` stays light.
"""

from __future__ import annotations

import importlib
import logging

from territoire_geo._types import AOI, DateRange, normalize_date_range
from territoire_geo._version import __version__
from territoire_geo.config import Settings
from territoire_geo.errors import TerritoireError, TerritoireWarning

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: Shortcut name -> (module, attribute), imported on first use (odc-stac's pattern for heavy extras).
_SHORTCUTS = {
    "search": ("territoire_geo.sources", "search"),
    "normalize_aoi": ("territoire_geo.sources", "resolve_aoi"),
    "fetch": ("territoire_geo.imagery", "fetch"),
    "load": ("territoire_geo.imagery", "load"),
    "plan_load": ("territoire_geo.imagery", "plan_load"),
    "show_versions": ("territoire_geo._show_versions", "show_versions"),
    "load_recipe": ("territoire_geo.recipes", "load_recipe"),
    "run_recipe": ("territoire_geo.recipes", "run_file"),
}

__all__ = [
    "AOI",
    "DateRange",
    "Settings",
    "TerritoireError",
    "TerritoireWarning",
    "__version__",
    "fetch",
    "load",
    "load_recipe",
    "normalize_aoi",
    "normalize_date_range",
    "plan_load",
    "run_recipe",
    "search",
    "show_versions",
]


def __getattr__(name: str) -> object:
    """Import a shortcut function on first use."""
    if name not in _SHORTCUTS:
        raise AttributeError(f"module 'territoire_geo' has no attribute {name!r}")
    module, attr = _SHORTCUTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SHORTCUTS))
