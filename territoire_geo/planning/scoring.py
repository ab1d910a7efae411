"""Multi-criteria scoring of candidate land units: score, rank, reliability (pure).

The design follows Mutafriches (domain notes §3.6): each unit gets a **score** (0–100)
and a **reliability** (share of the criteria weight backed by data), so that a unit
with missing data is never ranked high quietly — a missing criterion contributes
nothing and lowers the reliability.

Criteria and exclusions are data (:class:`Criterion`, :class:`Exclusion`, read from
YAML by :func:`load_criteria`; the default set for a réserve foncière is
``territoire_geo/data/criteria_reserve_fonciere.yaml``, documented in
``docs/scoring.md``). Exclusion rules are structured conditions (column, operator,
value, combined with ``any``/``all``) — never evaluated code.

Each criterion turns a column into an *intensity* in [0, 1] with a transform
(``linear`` between two bounds, step ``thresholds`` or ``classes``); ``direction``
says whether that intensity is an advantage (kept) or a constraint (``1 - x``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from territoire_geo.errors import ConfigError
from territoire_geo.planning.criteria import (
    AllOf,
    AnyOf,
    Condition,
    CriteriaSet,
    Criterion,
    Exclusion,
    Transform,
    load_criteria,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "CriteriaSet",
    "Criterion",
    "Exclusion",
    "Transform",
    "explain",
    "load_criteria",
    "score",
    "sensitivity",
    "utilities",
]

log = logging.getLogger(__name__)
_DECIMALS = 9  # scores are rounded before ranking so that float noise does not break ties


def _weights(criteria: Sequence[Criterion]) -> np.ndarray:
    if not criteria:
        raise ConfigError("no criterion given; pass at least one Criterion (or load_criteria())")
    names = [c.name for c in criteria]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"criterion names must be unique; repeated: {', '.join(duplicated)}")
    weights = np.array([c.weight for c in criteria], dtype="float64")
    bad = [c.name for c, w in zip(criteria, weights, strict=True) if not math.isfinite(w) or w < 0]
    if bad:
        raise ConfigError(f"criteria weights must be finite numbers ≥ 0; check {', '.join(bad)}")
    if weights.sum() <= 0:
        raise ConfigError("criteria weights sum to 0; give at least one criterion a positive weight")
    return weights


def utilities(units: pd.DataFrame, criteria: Sequence[Criterion]) -> np.ndarray:
    """Utility of each criterion for each unit (units × criteria), 1 = best, NaN = no data."""
    columns = []
    for criterion in criteria:
        if criterion.column not in units.columns:
            log.warning("criterion %r: column %r absent from the units; counted as missing data",
                        criterion.name, criterion.column)
        columns.append(criterion.utility(units))
    return np.column_stack(columns) if columns else np.empty((len(units), 0))


def _exclusions(units: pd.DataFrame, exclusions: Sequence[Exclusion]) -> np.ndarray:
    names = [e.name for e in exclusions]
    if len(set(names)) != len(names):
        raise ConfigError(f"exclusion names must be unique, got {', '.join(names)}")
    for exclusion in exclusions:
        missing = sorted(set(exclusion.when.columns()) - set(units.columns))
        if missing:
            log.warning("exclusion %r not checked: column(s) %s absent from the units",
                        exclusion.name, ", ".join(missing))
    hits = [e.when.evaluate(units) for e in exclusions]
    return np.column_stack(hits) if hits else np.zeros((len(units), 0), dtype=bool)


def _rank(scores: np.ndarray, eligible: np.ndarray) -> pd.Series:
    """Competition ranks (1 = best, ties share the best rank) among eligible units."""
    values = pd.Series(np.where(eligible, np.round(scores, _DECIMALS), np.nan))
    return values.rank(ascending=False, method="min").astype("Int64")


def _reasons(hits: np.ndarray, exclusions: Sequence[Exclusion], lang: str) -> tuple[list[Any], list[str]]:
    if not exclusions:
        return [None] * len(hits), [""] * len(hits)
    texts = np.array([e.reason(lang) for e in exclusions] + [None], dtype=object)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), len(exclusions))
    names = np.array([e.name for e in exclusions], dtype=object)
    rules = [";".join(names[row]) for row in hits]
    return list(texts[first]), rules


def score(
    units: gpd.GeoDataFrame | pd.DataFrame,
    criteria: Sequence[Criterion] | CriteriaSet,
    exclusions: Sequence[Exclusion] | None = None,
    *,
    lang: str = "fr",
) -> gpd.GeoDataFrame | pd.DataFrame:
    """Score, rank and explain candidate land units.

    Parameters
    ----------
    units
        One row per unit (e.g. :func:`territoire_geo.planning.overlay.overlay` output).
    criteria
        Criteria, or a :class:`CriteriaSet` (then its exclusions are used unless
        ``exclusions`` is given).
    exclusions
        Exclusion rules; the first rule that hits gives the reason shown.
    lang
        ``"fr"`` or ``"en"`` for the exclusion reasons.

    Returns
    -------
    GeoDataFrame or DataFrame
        A copy of ``units`` (same order) plus ``score`` (0–100), ``rank`` (1 = best;
        excluded units are not ranked), ``reliability`` (0–1, share of the weight with
        data), ``score_max_possible`` (the score if every missing criterion were at its
        best), ``excluded``, ``exclusion`` (reason of the first rule that hit),
        ``exclusion_rules`` (``;``-joined names of every rule that hit) and one
        ``contrib_<criterion>`` column per criterion (points; they add up to ``score``).

    Raises
    ------
    ConfigError
        No criteria, duplicated names, NaN/negative weights or weights summing to 0.
    """
    if isinstance(criteria, CriteriaSet):
        exclusions = criteria.exclusions if exclusions is None else exclusions
        criteria = criteria.criteria
    criteria, exclusions = tuple(criteria), tuple(exclusions or ())
    if lang not in ("fr", "en"):
        raise ConfigError(f"lang must be 'fr' or 'en', got {lang!r}")
    weights = _weights(criteria)
    share = weights / weights.sum()
    utility = utilities(units, criteria)
    known = ~np.isnan(utility)
    contrib = 100.0 * np.where(known, utility, 0.0) * share
    hits = _exclusions(units, exclusions)
    excluded = hits.any(axis=1)
    reasons, rules = _reasons(hits, exclusions, lang)
    total = np.clip(contrib.sum(axis=1), 0.0, 100.0)
    reliability = np.clip((known * share).sum(axis=1), 0.0, 1.0)
    out = units.copy()
    out["score"] = total
    out["rank"] = _rank(total, ~excluded).array
    out["reliability"] = reliability
    out["score_max_possible"] = np.clip(total + 100.0 * (1.0 - reliability), 0.0, 100.0)
    out["excluded"] = excluded
    out["exclusion"] = reasons
    out["exclusion_rules"] = rules
    for j, criterion in enumerate(criteria):
        out[f"contrib_{criterion.name}"] = contrib[:, j]
    return out


def _competition_ranks(scores: np.ndarray) -> np.ndarray:
    """Rank (1 = best, ties share the best rank) of each row, column by column, vectorised."""
    rows, runs = scores.shape
    order = np.argsort(-scores, axis=0, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=0)
    position = np.arange(rows)[:, None].repeat(runs, axis=1)
    new_group = np.vstack([np.ones((1, runs), dtype=bool), np.diff(ordered, axis=0) != 0])
    first = np.maximum.accumulate(np.where(new_group, position, 0), axis=0)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, first + 1, axis=0)
    return ranks


def _perturbed(weights: np.ndarray, n: int, spread: float, seed: int) -> np.ndarray:
    """``n`` weight vectors (rows, normalised); row 0 is the given weights."""
    rng = np.random.default_rng(seed)
    bound = math.log1p(spread)
    factors = np.exp(rng.uniform(-bound, bound, size=(n, len(weights))))
    runs = weights * factors
    runs[0] = weights
    return runs / runs.sum(axis=1, keepdims=True)


def sensitivity(
    units: pd.DataFrame,
    criteria: Sequence[Criterion] | CriteriaSet,
    exclusions: Sequence[Exclusion] | None = None,
    *,
    n: int = 500,
    spread: float = 0.2,
    top_k: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """How stable the ranking is when the weights move (one matrix product, no loop per unit).

    Each weight is multiplied by a log-uniform factor in ``[1/(1+spread), 1+spread]``
    (independently, then renormalised); run 0 keeps the given weights, so the base rank
    always lies within ``[rank_min, rank_max]``. Exclusions do not depend on weights.

    Parameters
    ----------
    units, criteria, exclusions
        As for :func:`score`.
    n
        Number of weight draws (≥ 1).
    spread
        Relative half-width of the perturbation (0.2 → factors in [0.83, 1.2]).
    top_k
        Size of the "top" whose membership frequency is reported.
    seed
        Random seed (results are reproducible).

    Returns
    -------
    DataFrame
        Indexed like ``units``: ``rank`` (base weights), ``rank_min``, ``rank_median``,
        ``rank_max``, ``top_k_share`` (share of runs in the top ``top_k``), ``score_p05``,
        ``score_p95``; NaN ranks and 0 share for excluded units.
    """
    if isinstance(criteria, CriteriaSet):
        exclusions = criteria.exclusions if exclusions is None else exclusions
        criteria = criteria.criteria
    if n < 1 or not 0 <= spread < 10 or top_k < 1:
        raise ConfigError(f"need n ≥ 1, 0 ≤ spread < 10 and top_k ≥ 1 (got n={n}, spread={spread}, top_k={top_k})")
    weights = _weights(tuple(criteria))
    utility = np.nan_to_num(utilities(units, tuple(criteria)), nan=0.0)
    eligible = ~_exclusions(units, tuple(exclusions or ())).any(axis=1)
    scores = np.round(100.0 * utility @ _perturbed(weights, n, spread, seed).T, _DECIMALS)
    out = pd.DataFrame(index=units.index)
    if "unit_id" in units.columns:
        out["unit_id"] = units["unit_id"].to_numpy()
    ranks = np.full(scores.shape, np.nan)
    if eligible.any():
        ranks[eligible] = _competition_ranks(scores[eligible])
    out["rank"] = pd.array(ranks[:, 0], dtype="Int64")  # NaN (excluded) becomes <NA>
    out["rank_min"] = ranks.min(axis=1)  # NaN rows stay NaN: every run of a unit is ranked or none is
    out["rank_median"] = np.median(ranks, axis=1)
    out["rank_max"] = ranks.max(axis=1)
    out["top_k_share"] = (ranks <= top_k).mean(axis=1)
    out["score_p05"] = np.percentile(scores, 5, axis=1)
    out["score_p95"] = np.percentile(scores, 95, axis=1)
    return out


def explain(criteria: Iterable[Criterion], lang: str = "fr") -> pd.DataFrame:
    """Table of the criteria (name, label, column, transform, weight %, direction)."""
    rows = list(criteria)
    weights = _weights(tuple(rows))
    return pd.DataFrame({
        "name": [c.name for c in rows],
        "label": [c.label_fr if lang == "fr" else c.label_en for c in rows],
        "column": [c.column for c in rows],
        "transform": [c.transform.describe() for c in rows],
        "direction": [c.direction for c in rows],
        "weight": weights,
        "weight_pct": 100.0 * weights / weights.sum(),
    })
