"""Checks of a recipe before it runs: its inputs exist, the output never touches them, its formulas parse.

``territoire-geo recipe validate`` runs :func:`validate_recipe`; ``recipe run``
runs :func:`check_paths` before it writes anything.
"""

from __future__ import annotations

import os
from pathlib import Path

from territoire_geo.errors import RecipeError, TerritoireError
from territoire_geo.recipes.imagery_steps import bands_for
from territoire_geo.recipes.models import Recipe

__all__ = ["check_paths", "input_paths", "validate_recipe"]


def input_paths(recipe: Recipe) -> list[Path]:
    """Every file or folder a recipe reads (territory, layers, criteria, project, parcels, local imagery)."""
    t = recipe.territory
    paths = [t.plu, t.aoi, t.dem, t.parcels, *(s.path for s in recipe.layers)]
    if recipe.scoring is not None and isinstance(recipe.scoring.criteria, Path):
        paths.append(recipe.scoring.criteria)
    paths += [recipe.scene.project if recipe.scene else None, recipe.crops.parcels if recipe.crops else None,
              recipe.site_finder.destinations if recipe.site_finder else None]
    if recipe.imagery is not None and Path(recipe.imagery.source).exists():
        paths.append(Path(recipe.imagery.source))
    return [p for p in paths if p is not None]


def check_paths(recipe: Recipe) -> None:
    """Refuse an output folder that is, contains or lies inside an input (it would be read, or deleted).

    Raises
    ------
    RecipeError
        Naming the output and the input.
    """
    out = _real(recipe.output)
    for path in input_paths(recipe):
        real = _real(path)
        relation = ("is" if out == real else "is inside" if out.is_relative_to(real)
                    else "contains" if real.is_relative_to(out) else None)
        if relation:
            raise RecipeError(f"output {recipe.output} {relation} the input {path}; choose an output folder "
                              "outside the inputs (a rerun with --overwrite would delete them)")


def validate_recipe(recipe: Recipe) -> Recipe:
    """Everything that can be checked without running: input paths, output placement, index formulas.

    Raises
    ------
    RecipeError
        A missing input (the first one), an output among the inputs, an unknown
        index or an invalid custom formula.
    """
    missing = [str(p) for p in input_paths(recipe) if not Path(p).exists()]
    if missing:
        raise RecipeError(f"missing file or folder: {missing[0]}; fix the path (relative to the recipe file)")
    check_paths(recipe)
    try:
        bands_for(recipe)
    except TerritoireError as exc:
        raise RecipeError(f"indices: {exc}") from exc
    return recipe


def _real(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):  # a symbolic-link loop: compare as written
        return Path(os.path.abspath(path))
