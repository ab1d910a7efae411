"""Recipes: YAML/TOML files that run the whole pipeline with one command.

>>> from territoire_geo.recipes import load_recipe, run  # doctest: +SKIP
>>> result = run(load_recipe("recipes/reserve-fonciere.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

from territoire_geo.recipes.loader import load_recipe, parse_recipe
from territoire_geo.recipes.models import Recipe
from territoire_geo.recipes.runner import RunResult, plan, run
from territoire_geo.recipes.tools import TEMPLATES, init_recipe, rerun, run_file

__all__ = ["TEMPLATES", "Recipe", "RunResult", "init_recipe", "load_recipe", "parse_recipe", "plan", "rerun",
           "run", "run_file"]
