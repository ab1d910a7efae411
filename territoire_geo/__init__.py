"""territoire_geo — geospatial planning and satellite analysis for French local authorities.

Find and fetch Copernicus imagery, load it lazily on a Lambert-93 grid, compute
vegetation and land-change indices, overlay them on PLUi zoning and soil/risk
layers, score land reserves and export offline 3D scenes — every output with
its provenance.
"""

from __future__ import annotations

import logging

from territoire_geo._types import AOI, DateRange, normalize_aoi, normalize_date_range
from territoire_geo.config import Settings
from territoire_geo.errors import TerritoireError, TerritoireWarning

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "search": ("territoire_geo.sources", "search"),
    "fetch": ("territoire_geo.fetch", "fetch"),
    "load": ("territoire_geo.load", "load"),
    "plan_load": ("territoire_geo.load", "plan_load"),
    "show_versions": ("territoire_geo._show_versions", "show_versions"),
    "load_recipe": ("territoire_geo.recipes.loader", "load_recipe"),
    "run_recipe": ("territoire_geo.recipes.tools", "run_file"),
}
# ``load`` and ``fetch`` are both submodules and the functions users call: importing a
# submodule rebinds the package attribute to the module, so ``_bind_functions`` below
# makes the attribute resolve to the function whatever was imported before.

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
    """Import heavy workflow functions on first use."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'territoire_geo' has no attribute {name!r}")


def _bind_functions() -> None:
    """Make ``territoire_geo.load``/``fetch`` the functions even after their modules are imported."""
    import sys
    import types

    class _Package(types.ModuleType):
        def __getattribute__(self, name: str) -> object:
            value = super().__getattribute__(name)
            if name in ("load", "fetch") and isinstance(value, types.ModuleType):
                return getattr(value, name)
            return value

    sys.modules[__name__].__class__ = _Package


_bind_functions()
