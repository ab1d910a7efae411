"""Every step a recipe can run, in the order they run: read this list to follow a run.

Each entry names its step function and cache-key function in the module of its theme:

* :mod:`~territoire_geo.recipes.territory` — the PLU and the area; soil, risk and distance layers;
* :mod:`~territoire_geo.recipes.imagery_steps` — scenes, index composites, change detection;
* :mod:`~territoire_geo.recipes.monitoring_steps` — ZAN accounts, crop series, urban greening;
* :mod:`~territoire_geo.recipes.decision_steps` — relief, candidate units, scores, 3D scene.

The runner (:mod:`~territoire_geo.recipes.runner`) runs the enabled ones in this order,
each cached by its key and the keys of the steps it ``needs``.
"""

from __future__ import annotations

from territoire_geo.recipes import decision_steps, imagery_steps, monitoring_steps, territory
from territoire_geo.recipes.context import Step
from territoire_geo.recipes.models import Recipe

__all__ = ["STEPS", "has_dem", "has_imagery", "steps_for"]


def has_imagery(r: Recipe) -> bool:
    """The recipe searches imagery over two periods."""
    return r.imagery is not None and r.periods is not None


def has_dem(r: Recipe) -> bool:
    """The recipe has a relief: a DEM file, or a DEM collection in its imagery source."""
    return r.territory.dem is not None or (r.imagery is not None and r.imagery.dem_collection is not None)


def _always(r: Recipe) -> bool:
    return True


def _has_change(r: Recipe) -> bool:
    return has_imagery(r) and r.change.enabled


def _has_zan(r: Recipe) -> bool:
    return r.zan and _has_change(r) and r.territory.plu is not None


def _has_crops(r: Recipe) -> bool:
    return r.crops is not None and has_imagery(r)


def _has_greening(r: Recipe) -> bool:
    return r.greening is not None and has_imagery(r) and r.territory.plu is not None


def _has_layers(r: Recipe) -> bool:
    return bool(r.layers)


def _has_units(r: Recipe) -> bool:
    return r.scoring is not None and r.territory.plu is not None


def _has_scores(r: Recipe) -> bool:
    return r.scoring is not None and r.scoring.enabled


def _has_scene(r: Recipe) -> bool:
    return r.scene is not None and r.scene.enabled


STEPS: tuple[Step, ...] = (
    Step("zoning", (), territory.make_zoning, territory.zoning_key, _always, "Lecture du PLU / zonage"),
    Step("imagery", ("zoning",), imagery_steps.find_imagery, imagery_steps.imagery_key, has_imagery,
         "Recherche des images Sentinel-2"),
    Step("composites", ("imagery",), imagery_steps.make_composites, imagery_steps.composites_key, has_imagery,
         "Indices et composites"),
    Step("change", ("composites",), imagery_steps.make_change, imagery_steps.change_key, _has_change,
         "Détection des changements"),
    Step("zan", ("zoning", "change"), monitoring_steps.make_zan, monitoring_steps.zan_key, _has_zan,
         "Comptes ZAN par commune, zone et année"),
    Step("crops", ("composites",), monitoring_steps.make_crops, monitoring_steps.crops_key, _has_crops,
         "Séries NDVI par parcelle"),
    Step("greening", ("zoning", "composites"), monitoring_steps.make_greening, monitoring_steps.greening_key,
         _has_greening, "Végétation des zones urbaines"),
    Step("layers", (), territory.make_layers, territory.layers_key, _has_layers, "Couches sols et risques"),
    Step("dem", ("zoning",), decision_steps.make_dem, decision_steps.dem_key, has_dem, "Relief (MNT)"),
    Step("units", ("zoning", "composites", "change", "layers", "dem"), decision_steps.make_units,
         decision_steps.units_key, _has_units, "Unités candidates et croisements"),
    Step("scores", ("units",), decision_steps.score_units, decision_steps.score_key, _has_scores,
         "Scores, rangs et sensibilité"),
    Step("scene", ("zoning", "change", "dem", "scores"), decision_steps.make_scene, decision_steps.scene_key,
         _has_scene, "Scène 3D hors ligne"),
)


def steps_for(recipe: Recipe) -> list[Step]:
    """The steps ``recipe`` enables, in run order."""
    return [step for step in STEPS if step.enabled(recipe)]
