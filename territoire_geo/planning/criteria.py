"""Criteria, transforms and exclusion conditions as frozen data, and their YAML form.

No expression is ever evaluated: a condition is ``(column, operator, value)`` with the
operators of :data:`OPERATORS`, combined with :class:`AnyOf` / :class:`AllOf`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from territoire_geo.errors import ConfigError

__all__ = [
    "DIRECTIONS",
    "OPERATORS",
    "TRANSFORMS",
    "AllOf",
    "AnyOf",
    "Condition",
    "CriteriaSet",
    "Criterion",
    "Exclusion",
    "Transform",
    "load_criteria",
]

TRANSFORMS = ("linear", "thresholds", "classes")
DIRECTIONS = ("advantage", "constraint")
OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
DEFAULT_CRITERIA = "criteria_reserve_fonciere.yaml"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def class_key(value: Any) -> str | None:
    """Comparable text of a class value (``3``, ``3.0`` and ``"3"`` → ``"3"``; missing → None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value).strip()


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if math.isnan(number):
        raise ConfigError(f"{what} must be a number, got NaN")
    return number


def _score(value: Any, what: str) -> float:
    number = _number(value, what)
    if not 0.0 <= number <= 1.0:
        raise ConfigError(f"{what} must lie between 0 and 1, got {number}")
    return number


@dataclass(frozen=True)
class Transform:
    """Column value → intensity in [0, 1] (NaN when the value is missing or unknown).

    Build with :meth:`linear`, :meth:`thresholds` or :meth:`classes`.
    """

    kind: str
    lo: float = 0.0
    hi: float = 1.0
    steps: tuple[tuple[float, float], ...] = ()
    mapping: tuple[tuple[str, float], ...] = ()
    default: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in TRANSFORMS:
            raise ConfigError(f"unknown transform {self.kind!r}; choose {', '.join(TRANSFORMS)}")

    @classmethod
    def linear(cls, lo: float, hi: float) -> Transform:
        """0 at ``lo``, 1 at ``hi``, clipped outside (``lo > hi`` reverses it)."""
        lo, hi = _number(lo, "linear lower bound"), _number(hi, "linear upper bound")
        if lo == hi or not (math.isfinite(lo) and math.isfinite(hi)):
            raise ConfigError(f"linear transform needs two different finite bounds, got {lo} and {hi}")
        return cls("linear", lo=lo, hi=hi)

    @classmethod
    def thresholds(cls, steps: Sequence[Sequence[float]]) -> Transform:
        """Steps ``[(bound, score), …]``: the score of the last bound ≤ value (first one below)."""
        if not isinstance(steps, Sequence) or any(not isinstance(p, Sequence) or len(p) != 2 for p in steps):
            raise ConfigError(f"thresholds need a list of [bound, score] pairs, got {steps!r}")
        pairs = [(_number(b, "threshold"), _score(s, "threshold score")) for b, s in steps]
        if not pairs or any(b2 <= b1 for (b1, _), (b2, _) in pairwise(pairs)):
            raise ConfigError("thresholds need at least one (bound, score) pair with increasing bounds")
        return cls("thresholds", steps=tuple(pairs))

    @classmethod
    def classes(cls, mapping: Mapping[Any, float]) -> Transform:
        """Class value → score; key ``"*"`` scores any other non-missing value."""
        scores = {class_key(k): _score(v, f"class {k!r} score") for k, v in mapping.items()}
        default = scores.pop("*", None)
        if not scores:
            raise ConfigError("classes transform needs at least one class")
        return cls("classes", mapping=tuple(scores.items()), default=default)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, spec: Any) -> Transform:
        """From a Transform, ``{"linear": [lo, hi]}``, ``{"thresholds": [...]}``, ``{"classes": {...}}``."""
        if isinstance(spec, Transform):
            return spec
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            spec = {spec[0]: spec[1]}
        if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in TRANSFORMS:
            raise ConfigError(f"a transform is one of {{linear: [lo, hi]}}, {{thresholds: [[v, s], …]}}, "
                              f"{{classes: {{value: s}}}}; got {spec!r}")
        kind, params = next(iter(spec.items()))
        if kind == "linear":
            if not isinstance(params, Sequence) or len(params) != 2:
                raise ConfigError(f"linear needs [lo, hi], got {params!r}")
            return cls.linear(*params)
        if kind == "thresholds":
            return cls.thresholds(params)
        if not isinstance(params, Mapping):
            raise ConfigError(f"classes needs a mapping value → score, got {params!r}")
        return cls.classes(params)

    def apply(self, values: pd.Series) -> np.ndarray:
        """Intensity of each value (float array, NaN = missing or unknown class)."""
        if self.kind == "classes":
            keys = values.map(class_key)
            scores = keys.map(dict(self.mapping)).astype("float64")
            if self.default is not None:
                scores = scores.where(keys.isna() | scores.notna(), self.default)
            return scores.to_numpy(dtype="float64")
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        if self.kind == "linear":
            with np.errstate(invalid="ignore"):
                return np.clip((x - self.lo) / (self.hi - self.lo), 0.0, 1.0)
        bounds = np.array([b for b, _ in self.steps])
        scores = np.array([s for _, s in self.steps])
        index = np.clip(np.searchsorted(bounds, x, side="right") - 1, 0, len(bounds) - 1)
        return np.where(np.isnan(x), np.nan, scores[index])

    def describe(self) -> str:
        """Short text (``linear 0→20``, ``thresholds 0:1, 5:0.5``, ``classes AUc:1, U:0.4``)."""
        if self.kind == "linear":
            return f"linear {self.lo:g}→{self.hi:g}"
        if self.kind == "thresholds":
            return "thresholds " + ", ".join(f"≥{b:g}:{s:g}" for b, s in self.steps)
        extra = [] if self.default is None else [f"*:{self.default:g}"]
        return "classes " + ", ".join([f"{k}:{v:g}" for k, v in self.mapping] + extra)


@dataclass(frozen=True)
class Criterion:
    """One scoring criterion.

    Attributes
    ----------
    name
        Identifier (``[a-z][a-z0-9_]*``), used in ``contrib_<name>``.
    column
        Column of the units it reads.
    transform
        :class:`Transform` (or its mapping form) giving an intensity in [0, 1].
    weight
        Non-negative weight (relative; normalised over the set).
    direction
        ``"advantage"`` (utility = intensity) or ``"constraint"`` (utility = 1 − intensity).
    label_fr, label_en
        Labels for tables and reports.
    """

    name: str
    column: str
    transform: Transform
    weight: float = 1.0
    direction: str = "advantage"
    label_fr: str = ""
    label_en: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(str(self.name)):
            raise ConfigError(f"criterion name {self.name!r} must match [a-z][a-z0-9_]*")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"criterion {self.name}: direction must be advantage or constraint, got {self.direction!r}")
        weight = _number(self.weight, f"criterion {self.name}: weight")
        if weight < 0 or not math.isfinite(weight):
            raise ConfigError(f"criterion {self.name}: weight must be a finite number ≥ 0, got {weight}")
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "transform", Transform.parse(self.transform))

    def utility(self, units: pd.DataFrame) -> np.ndarray:
        """Utility in [0, 1] for each unit (1 = best), NaN where the data are missing."""
        if self.column not in units.columns:
            return np.full(len(units), np.nan)
        intensity = self.transform.apply(units[self.column])
        return intensity if self.direction == "advantage" else 1.0 - intensity


@dataclass(frozen=True)
class Condition:
    """``column op value``; missing values never match."""

    column: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ConfigError(f"condition on {self.column}: operator {self.op!r} not in {', '.join(OPERATORS)}")
        if self.op in ("in", "not in"):
            if isinstance(self.value, str) or not isinstance(self.value, Sequence | set | frozenset):
                raise ConfigError(f"condition on {self.column}: {self.op!r} needs a list of values")
            object.__setattr__(self, "value", tuple(self.value))
        elif self.op not in ("==", "!="):
            object.__setattr__(self, "value", _number(self.value, f"condition on {self.column}: value"))

    def columns(self) -> tuple[str, ...]:
        """Columns the condition reads."""
        return (self.column,)

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean array: True where the condition holds."""
        if self.column not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        series = frame[self.column]
        present = series.notna().to_numpy()
        if self.op in ("<", "<=", ">", ">="):
            x = pd.to_numeric(series, errors="coerce")
            hit = {"<": x < self.value, "<=": x <= self.value, ">": x > self.value, ">=": x >= self.value}[self.op]
            return hit.fillna(False).to_numpy(dtype=bool)
        keys = series.map(class_key)
        wanted = [class_key(v) for v in (self.value if self.op in ("in", "not in") else (self.value,))]
        hit = keys.isin(wanted).to_numpy()
        return present & (hit if self.op in ("==", "in") else ~hit)


@dataclass(frozen=True)
class AnyOf:
    """True where at least one sub-condition holds."""

    conditions: tuple[ConditionLike, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", _sub_conditions(self.conditions, "any"))

    def columns(self) -> tuple[str, ...]:
        return tuple(c for sub in self.conditions for c in sub.columns())

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        return np.logical_or.reduce([c.evaluate(frame) for c in self.conditions])


@dataclass(frozen=True)
class AllOf:
    """True where every sub-condition holds."""

    conditions: tuple[ConditionLike, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", _sub_conditions(self.conditions, "all"))

    def columns(self) -> tuple[str, ...]:
        return tuple(c for sub in self.conditions for c in sub.columns())

    def evaluate(self, frame: pd.DataFrame) -> np.ndarray:
        return np.logical_and.reduce([c.evaluate(frame) for c in self.conditions])


ConditionLike = Condition | AnyOf | AllOf


def _sub_conditions(items: Any, key: str) -> tuple[ConditionLike, ...]:
    if not isinstance(items, Sequence) or isinstance(items, str) or not items:
        raise ConfigError(f"{key}: needs a non-empty list of conditions")
    return tuple(parse_condition(s) for s in items)


def parse_condition(spec: Any) -> ConditionLike:
    """From a condition object or ``{column, op, value}`` / ``{any: [...]}`` / ``{all: [...]}``."""
    if isinstance(spec, Condition | AnyOf | AllOf):
        return spec
    if isinstance(spec, Mapping) and set(spec) in ({"any"}, {"all"}):
        key = next(iter(spec))
        return AnyOf(spec[key]) if key == "any" else AllOf(spec[key])
    if isinstance(spec, Mapping) and set(spec) == {"column", "op", "value"}:
        return Condition(str(spec["column"]), str(spec["op"]), spec["value"])
    raise ConfigError(f"a condition is {{column, op, value}}, {{any: [...]}} or {{all: [...]}}; got {spec!r}")


@dataclass(frozen=True)
class Exclusion:
    """A rule that removes units from the ranking, with the reason shown to users."""

    name: str
    when: ConditionLike
    reason_fr: str = ""
    reason_en: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(str(self.name)):
            raise ConfigError(f"exclusion name {self.name!r} must match [a-z][a-z0-9_]*")
        object.__setattr__(self, "when", parse_condition(self.when))

    def reason(self, lang: str = "fr") -> str:
        """Reason in ``lang`` (falls back to the other language, then the name)."""
        first, second = (self.reason_fr, self.reason_en) if lang == "fr" else (self.reason_en, self.reason_fr)
        return first or second or self.name


@dataclass(frozen=True)
class CriteriaSet:
    """A named set of criteria and exclusions (one YAML file)."""

    name: str
    criteria: tuple[Criterion, ...]
    exclusions: tuple[Exclusion, ...] = ()
    label_fr: str = ""
    label_en: str = ""
    source: str = field(default="<memory>", compare=False)


def _strict(spec: Mapping[str, Any], allowed: set[str], required: set[str], what: str) -> None:
    unknown, missing = sorted(set(spec) - allowed), sorted(required - set(spec))
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if missing:
        raise ConfigError(f"{what}: missing key(s) {', '.join(missing)}")


def _criterion(spec: Any) -> Criterion:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"each criterion is a mapping, got {spec!r}")
    allowed = {"name", "column", "transform", "weight", "direction", "label_fr", "label_en"}
    _strict(spec, allowed, {"name", "column", "transform"}, f"criterion {spec.get('name', '?')}")
    return Criterion(**{k: spec[k] for k in allowed if k in spec})


def _exclusion(spec: Any) -> Exclusion:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"each exclusion is a mapping, got {spec!r}")
    allowed = {"name", "when", "reason_fr", "reason_en"}
    _strict(spec, allowed, {"name", "when"}, f"exclusion {spec.get('name', '?')}")
    return Exclusion(**{k: spec[k] for k in allowed if k in spec})


def _read_yaml(source: str | os.PathLike[str] | None) -> tuple[Any, str]:
    if source is None:
        path = resources.files("territoire_geo").joinpath("data", DEFAULT_CRITERIA)
        with path.open("r", encoding="utf-8") as fh:
            return yaml.safe_load(fh), DEFAULT_CRITERIA
    file = Path(source)
    if not file.is_file():
        raise ConfigError(f"criteria file {file} not found")
    try:
        return yaml.safe_load(file.read_text(encoding="utf-8")), str(file)
    except yaml.YAMLError as exc:
        raise ConfigError(f"criteria file {file} is not valid YAML: {' '.join(str(exc).split())[:200]}") from exc


def load_criteria(source: str | os.PathLike[str] | Mapping[str, Any] | None = None) -> CriteriaSet:
    """Read a criteria set from YAML (default: the réserve foncière set) or a mapping.

    The format (``schema_version: 1``; unknown keys rejected)::

        name: reserve_fonciere
        criteria:
          - {name: zoning, column: TYPEZONE, transform: {classes: {AUc: 1, U: 0.4}}, weight: 4}
          - {name: slope, column: slope_mean, transform: {linear: [0, 20]}, direction: constraint}
        exclusions:
          - {name: zone_n, when: {column: TYPEZONE, op: "==", value: N}, reason_fr: zone naturelle}

    Raises
    ------
    ConfigError
        Missing file, invalid YAML, unknown or missing keys, invalid values.
    """
    spec, label = (source, "<mapping>") if isinstance(source, Mapping) else _read_yaml(source)
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{label}: a criteria file is a mapping with 'criteria' and 'exclusions'")
    allowed = {"schema_version", "name", "label_fr", "label_en", "criteria", "exclusions"}
    _strict(spec, allowed, {"criteria"}, label)
    if spec.get("schema_version", 1) != 1:
        raise ConfigError(f"{label}: schema_version {spec['schema_version']!r} not supported (expected 1)")
    if not isinstance(spec["criteria"], list) or not isinstance(spec.get("exclusions", []), list):
        raise ConfigError(f"{label}: 'criteria' and 'exclusions' must be lists")
    return CriteriaSet(
        name=str(spec.get("name", Path(label).stem)),
        criteria=tuple(_criterion(c) for c in spec["criteria"]),
        exclusions=tuple(_exclusion(e) for e in spec.get("exclusions") or []),
        label_fr=str(spec.get("label_fr", "")),
        label_en=str(spec.get("label_en", "")),
        source=label,
    )
