"""Recipe tools behind the CLI: run a file or the demo, plan a run, write a starter recipe, rerun from a manifest."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd

from territoire_geo._atomic import ensure_new, write_text
from territoire_geo._types import normalize_date_range
from territoire_geo.checksums import sha256_file
from territoire_geo.errors import ConfigError, DataError
from territoire_geo.imagery import plan_load
from territoire_geo.planning import zoning
from territoire_geo.provenance import MANIFEST, read_manifest
from territoire_geo.recipes.context import Progress, RunResult
from territoire_geo.recipes.imagery_steps import bands_for
from territoire_geo.recipes.loader import load_recipe, parse_recipe
from territoire_geo.recipes.runner import plan, run
from territoire_geo.recipes.territory import communes_frame
from territoire_geo.sources import search

__all__ = ["TEMPLATES", "RerunReport", "demo", "dry_run", "init_recipe", "rerun", "run_file", "template_path"]

_SHIPPED = Path(__file__).resolve().parents[2] / "recipes"
_PACKAGED = Path(__file__).resolve().parents[1] / "data" / "recipes"


def _template_dir() -> Path:
    return _PACKAGED if _PACKAGED.is_dir() else _SHIPPED


def template_path(template: str) -> Path:
    """The shipped recipe file called ``template`` (``recipes/<template>.yaml``)."""
    if template not in TEMPLATES:
        raise ConfigError(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    return _template_dir() / f"{template}.yaml"


TEMPLATES = ("reserve-fonciere", "zan-suivi", "suivi-cultures", "vegetalisation-urbaine", "implantation-entreprises")


def run_file(path: str | os.PathLike[str], *, overwrite: bool = False, scheduler: str | None = None,
             output: str | os.PathLike[str] | None = None, progress: Progress | None = None) -> RunResult:
    """Load, validate and run a recipe file."""
    recipe = load_recipe(path)
    if output is not None:
        recipe = recipe.model_copy(update={"output": Path(output).resolve()})
    text = Path(path).read_text(encoding="utf-8")
    return run(recipe, recipe_text=text, recipe_file=str(Path(path).resolve()), overwrite=overwrite,
               scheduler=scheduler, progress=progress)


def dry_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The plan of a recipe: steps, scenes found, expected outputs and pixels — nothing written."""
    recipe = load_recipe(path)
    info: dict[str, Any] = {"recipe": recipe.name, "output": str(recipe.output),
                            "steps": [s.name for s in plan(recipe)]}
    if recipe.imagery is not None and recipe.periods is not None:
        info.update(_imagery_plan(recipe))
    return info


def _imagery_plan(recipe: Any) -> dict[str, Any]:
    t = recipe.territory
    if t.from_communes:
        area = communes_frame(t)
    else:
        area = gpd.read_file(t.aoi) if t.aoi else zoning.read(t.plu, crs=t.crs).zones
    first, last = normalize_date_range(recipe.periods.before), normalize_date_range(recipe.periods.after)
    items = search(area, (min(first.start, last.start), max(first.end, last.end)), source=recipe.imagery.source,
                   collections=recipe.imagery.collections, max_cloud=recipe.imagery.max_cloud)
    if not items:
        return {"items_found": 0}
    load_plan = plan_load(items, bands=bands_for(recipe), aoi=area, crs=t.crs, resolution=t.resolution,
                          mask=recipe.imagery.mask)
    summary = load_plan.describe()
    return {"items_found": len(items), "grid": summary["shape"], "bands": summary["bands"],
            "estimated_pixels": summary["pixels"], "items": [i.id for i in items]}


def demo(samples: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, overwrite: bool = False,
         progress: Progress | None = None) -> RunResult:
    """Run the shipped ``reserve-fonciere`` recipe on the sample territory (offline).

    The recipe's paths (``../data_samples/…``) are resolved against ``samples``, so the
    demo works from a clone or from an installed package given the samples folder.

    Returns
    -------
    RunResult
    """
    source = template_path("reserve-fonciere")
    text = source.read_text(encoding="utf-8")
    recipe = parse_recipe(text, name=str(source)).resolved(Path(samples).resolve().parent / "recipes")
    recipe = recipe.model_copy(update={"output": Path(out_dir).resolve()})
    return run(recipe, recipe_text=text, recipe_file=str(source), overwrite=overwrite, progress=progress)


def init_recipe(template: str, target: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write a commented starter recipe from a shipped template.

    Raises
    ------
    ConfigError
        Unknown template.
    ExportError
        ``target`` exists and ``overwrite`` is false.
    """
    source = template_path(template)
    out = ensure_new(target, overwrite=overwrite)
    return write_text(out, source.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class RerunReport:
    """Whether a rerun reproduced every output of a run."""

    original: Path
    rerun: Path
    identical: tuple[str, ...]
    different: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def reproduced(self) -> bool:
        """True when every output came out byte-identical."""
        return not (self.different or self.missing)


def rerun(run_dir: str | os.PathLike[str], *, output: str | os.PathLike[str] | None = None,
          overwrite: bool = False, progress: Progress | None = None) -> RerunReport:
    """Reproduce a run from its manifest and compare the outputs' checksums.

    The recipe text recorded in the manifest is run again (paths relative to the
    original recipe file) into ``output`` (``<run>-rerun`` by default).
    """
    original = Path(run_dir)
    manifest = read_manifest(original)
    text, recipe_file = manifest.get("recipe_text"), manifest.get("recipe_file")
    if not text or not recipe_file:
        raise DataError(f"{original / MANIFEST} does not hold the recipe text; it cannot be rerun")
    base = Path(recipe_file).parent
    recipe = parse_recipe(text, name=recipe_file, toml=recipe_file.endswith(".toml")).resolved(base)
    target = Path(output) if output else original.with_name(original.name + "-rerun")
    if target.exists() and overwrite:
        shutil.rmtree(target)
    result = run(recipe.model_copy(update={"output": target.resolve()}), recipe_text=text,
                 recipe_file=recipe_file, overwrite=overwrite, progress=progress,
                 report_overrides={k: manifest[k] for k in ("started", "finished", "steps") if k in manifest})
    identical, different, missing = [], [], []
    for entry in manifest.get("outputs", []):
        path = result.run_dir / entry["path"]
        if not path.exists():
            missing.append(entry["path"])
        elif sha256_file(path) == entry["sha256"]:
            identical.append(entry["path"])
        else:
            different.append(entry["path"])
    return RerunReport(original, result.run_dir, tuple(identical), tuple(different), tuple(missing))
