"""Recipes: YAML/TOML files that run the whole pipeline with one command.

A recipe is loaded and validated (:mod:`~territoire_geo.recipes.loader`,
:mod:`~territoire_geo.recipes.models`), its steps are taken from the registry in
order (:mod:`~territoire_geo.recipes.registry`) and run with a cache
(:mod:`~territoire_geo.recipes.runner`); the run folder's files are written by
:mod:`~territoire_geo.recipes.deliverables`, the manifest last.

>>> from territoire_geo.recipes import load_recipe, run  # doctest: +SKIP
>>> result = run(load_recipe("recipes/reserve-fonciere.yaml"))  # doctest: +SKIP
"""

from territoire_geo.recipes.checks import check_paths, input_paths, validate_recipe
from territoire_geo.recipes.context import RunResult
from territoire_geo.recipes.loader import load_recipe, parse_recipe
from territoire_geo.recipes.models import Recipe
from territoire_geo.recipes.registry import STEPS
from territoire_geo.recipes.runner import plan, run
from territoire_geo.recipes.tools import (
    TEMPLATES,
    RerunReport,
    demo,
    dry_run,
    init_recipe,
    rerun,
    run_file,
    template_path,
)

__all__ = [
    "STEPS",
    "TEMPLATES",
    "Recipe",
    "RerunReport",
    "RunResult",
    "check_paths",
    "demo",
    "dry_run",
    "init_recipe",
    "input_paths",
    "load_recipe",
    "parse_recipe",
    "plan",
    "rerun",
    "run",
    "run_file",
    "template_path",
    "validate_recipe",
]
