"""Spectral indices from the Awesome Spectral Indices catalogue, computed safely.

The catalogue is a pinned copy of Awesome Spectral Indices v0 (Montero et al. 2023,
*Sci. Data* 10:197, MIT licence) as bundled with spyndex, restricted to indices
computable from Sentinel-2 / Landsat 8-9 reflectance bands, with formulas renamed to
canonical band names (``(nir - red) / (nir + red)``); see
``territoire_geo/data/_build_indices.py``. Formulas are evaluated by
:mod:`territoire_geo.analysis.expr` (whitelisted AST walker, never ``eval``).

Input contract: a :class:`xarray.Dataset` whose variables are named by canonical band
(``coastal, blue, green, red, rededge1, rededge2, rededge3, nir, nir08, nir09, swir16,
swir22``), float reflectance with NaN for no data. Outputs are float32, lazy when the
input is dask-backed, NaN (never ``inf``) where an index is undefined.

Output variables are named by the lower-cased catalogue name (``NDVI`` -> ``ndvi``),
except for the two names whose lower case is ambiguous (``BAI``/``BaI``,
``MSR705``/``mSR705``), which keep their catalogue spelling.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import pandas as pd
import xarray as xr

from territoire_geo.analysis.expr import Expression, parse
from territoire_geo.errors import ConfigError, DataError, ExpressionError, MissingBandError

__all__ = [
    "ATTRIBUTION",
    "CATALOG_VERSION",
    "FIRST_CLASS",
    "INDEX_BANDS",
    "IndexFunction",
    "IndexSpec",
    "bsi",
    "catalog",
    "compute",
    "evi",
    "get",
    "gndvi",
    "mndwi",
    "msavi",
    "nbr",
    "ndbi",
    "ndmi",
    "ndre",
    "ndvi",
    "ndwi",
    "savi",
]

_CATALOG_PATH = resources.files("territoire_geo").joinpath("data", "spectral_indices.json")

#: Reviewed indices that have a typed convenience function in this module.
FIRST_CLASS: tuple[str, ...] = (
    "ndvi", "evi", "savi", "msavi", "ndwi", "mndwi", "ndmi", "nbr", "ndbi", "bsi", "ndre", "gndvi",
)


@cache
def _raw() -> dict[str, Any]:
    return json.loads(_CATALOG_PATH.read_text(encoding="utf-8"))


#: Catalogue version recorded in every output's ``catalog_version`` attribute.
CATALOG_VERSION: str = _raw()["catalog"]["version"]
#: Attribution required by the catalogue's MIT licence.
ATTRIBUTION: str = _raw()["catalog"]["attribution"]
#: Band variable names the catalogue formulas use.
INDEX_BANDS: tuple[str, ...] = tuple(_raw()["bands"].values())


@dataclass(frozen=True)
class IndexSpec:
    """One catalogue index.

    Attributes
    ----------
    name
        Catalogue short name, e.g. ``"NDVI"``.
    variable
        Name of the output variable, e.g. ``"ndvi"``.
    long_name, formula, reference, application_domain
        As in the catalogue; ``formula`` uses canonical band names.
    bands
        Canonical bands the formula needs.
    constants
        Named constants and their default values.
    platforms
        Platforms the catalogue lists.
    valid_range
        Nominal range for reflectances in [0, 1], or None when unknown.
    source
        ``"asi"`` (from the catalogue) or ``"added"`` (added by territoire_geo).
    first_class
        True for the reviewed indices of :data:`FIRST_CLASS`.
    note
        Why a default or an entry differs from ASI, if it does.
    """

    name: str
    variable: str
    long_name: str
    formula: str
    bands: tuple[str, ...]
    constants: Mapping[str, float] = field(hash=False)
    reference: str
    application_domain: str
    platforms: tuple[str, ...]
    valid_range: tuple[float, float] | None
    source: str
    first_class: bool
    note: str | None = None

    def expression(self, constants: Mapping[str, float] | None = None) -> Expression:
        """Parsed formula with defaults overridden by ``constants`` (extra keys ignored)."""
        values = {**self.constants, **{k: v for k, v in (constants or {}).items() if k in self.constants}}
        return parse(self.formula, variables=self.bands, constants=values)


class IndexFunction(Protocol):
    """Signature of the convenience functions (:func:`ndvi`, :func:`savi`, ...)."""
    def __call__(self, ds: xr.Dataset, /, **constants: float) -> xr.DataArray: ...


@cache
def _specs() -> dict[str, IndexSpec]:
    entries = _raw()["indices"]
    lowered = [name.lower() for name in entries]
    specs = {}
    for name, entry in entries.items():
        variable = name.lower() if lowered.count(name.lower()) == 1 else name
        low, high = entry["valid_range"] or (None, None)
        specs[name] = IndexSpec(
            name=name,
            variable=variable,
            long_name=entry["long_name"],
            formula=entry["formula"],
            bands=tuple(entry["bands"]),
            constants=MappingProxyType(dict(entry["constants"])),
            reference=entry["reference"],
            application_domain=entry["application_domain"],
            platforms=tuple(entry["platforms"]),
            valid_range=None if low is None else (float(low), float(high)),
            source=entry["source"],
            first_class=entry["first_class"],
            note=entry.get("note"),
        )
    return specs


@cache
def _by_lower_name() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for name in _specs():
        table.setdefault(name.lower(), []).append(name)
    return {key: tuple(value) for key, value in table.items()}


def get(name: str) -> IndexSpec:
    """Look an index up by name (case-insensitive unless ambiguous).

    Raises
    ------
    ExpressionError
        Unknown or ambiguous name; the message suggests close names or says why
        a catalogue index is not available.
    """
    specs = _specs()
    if name in specs:
        return specs[name]
    matches = _by_lower_name().get(str(name).lower(), ())
    if len(matches) == 1:
        return specs[matches[0]]
    if matches:
        raise ExpressionError(f"ambiguous index name {name!r}: the catalogue has {' and '.join(matches)}")
    excluded = {key.lower(): (key, why) for key, why in _raw()["excluded"].items()}
    if str(name).lower() in excluded:
        key, why = excluded[str(name).lower()]
        raise ExpressionError(f"spectral index {key} is not available: {why}")
    close = difflib.get_close_matches(str(name).lower(), list(_by_lower_name()), n=4, cutoff=0.6)
    suggestion = f"did you mean {', '.join(_by_lower_name()[c][0] for c in close)}? " if close else ""
    raise ExpressionError(
        f"unknown spectral index {name!r}; {suggestion}see territoire_geo.analysis.indices.catalog() "
        f"for the {len(specs)} available indices"
    )


def catalog() -> pd.DataFrame:
    """All available indices, one row each.

    Returns
    -------
    pandas.DataFrame
        Columns ``name, long_name, formula, bands, constants, reference, valid_range,
        domain, platforms, source, first_class, variable``, sorted by name.
    """
    rows = [
        {
            "name": spec.name,
            "long_name": spec.long_name,
            "formula": spec.formula,
            "bands": list(spec.bands),
            "constants": dict(spec.constants),
            "reference": spec.reference,
            "valid_range": spec.valid_range,
            "domain": spec.application_domain,
            "platforms": list(spec.platforms),
            "source": spec.source,
            "first_class": spec.first_class,
            "variable": spec.variable,
        }
        for spec in sorted(_specs().values(), key=lambda spec: spec.name.lower())
    ]
    return pd.DataFrame(rows)


def compute(
    ds: xr.Dataset,
    names: str | Sequence[str],
    *,
    constants: Mapping[str, float] | None = None,
    expressions: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Compute catalogue indices and custom expressions.

    Parameters
    ----------
    ds
        Float reflectance bands named canonically (``red``, ``nir``, ``swir16``...),
        NaN for no data; numpy- or dask-backed.
    names
        Catalogue index name(s), case-insensitive (``"NDVI"``, ``["ndvi", "savi"]``).
    constants
        Overrides of constant defaults (e.g. ``{"L": 0.5}``), applied to every
        requested index and expression that uses the constant; every key must be
        used by at least one of them. Call twice for different values per index.
    expressions
        Output name -> formula over band names (see :mod:`territoire_geo.analysis.expr`);
        catalogue constants (``L``, ``g``...) are available with their defaults.

    Returns
    -------
    xarray.Dataset
        One float32 variable per index, lazy if ``ds`` is dask-backed, with attrs
        ``long_name``, ``formula``, ``units``, ``reference``, ``catalog_version``
        (and ``constants`` when the formula has some).

    Raises
    ------
    ExpressionError
        Unknown index name or invalid/unsafe custom expression.
    MissingBandError
        A band an index needs is not in ``ds``.
    DataError
        A band is not floating point (e.g. raw uint16 digital numbers).
    ConfigError
        Nothing to compute, duplicate output names or unused/invalid constants.
    """
    specs = list({spec.name: spec for spec in map(get, [names] if isinstance(names, str) else names)}.values())
    user = _user_constants(constants)
    customs = _parse_expressions(expressions or {}, ds, user)
    _check_outputs(specs, customs)
    _check_constants_used(user, specs, customs)
    for spec in specs:
        _check_bands(ds, spec.name, spec.bands)
    for label, expression in customs.items():
        _check_bands(ds, repr(label), tuple(sorted(expression.names)))
    results: dict[str, xr.DataArray] = {}
    for spec in specs:
        expression = spec.expression(user)
        attrs = {"long_name": spec.long_name, "reference": spec.reference}
        results[spec.variable] = _evaluate(ds, spec.variable, expression, attrs)
    for label, expression in customs.items():
        attrs = {"long_name": label, "reference": "user-defined expression"}
        results[label] = _evaluate(ds, label, expression, attrs)
    return xr.Dataset(results, attrs={"catalog_version": CATALOG_VERSION, "catalog_attribution": ATTRIBUTION})


def _user_constants(constants: Mapping[str, float] | None) -> dict[str, float]:
    checked = {}
    for key, value in (constants or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ConfigError(f"constant {key!r} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"constant {key!r} must be finite, got {value!r}")
        checked[str(key)] = float(value)
    return checked


def _parse_expressions(expressions: Mapping[str, str], ds: xr.Dataset, user: Mapping[str, float]) -> dict[str, Expression]:
    table = {name: float(entry["default"]) for name, entry in _raw()["constants"].items()}
    variables = {str(name) for name in ds.data_vars} | set(INDEX_BANDS)
    parsed = {}
    for label, text in expressions.items():
        if not isinstance(label, str) or not label:
            raise ConfigError(f"expression names must be non-empty strings, got {label!r}")
        try:
            parsed[label] = parse(text, variables=variables, constants={**table, **user})
        except ExpressionError as exc:
            raise ExpressionError(f"expression {label!r}: {exc}") from exc
    return parsed


def _check_outputs(specs: list[IndexSpec], customs: Mapping[str, Expression]) -> None:
    if not specs and not customs:
        raise ConfigError("nothing to compute: give index names and/or expressions")
    clash = sorted({spec.variable for spec in specs} & set(customs))
    if clash:
        raise ConfigError(f"expression name(s) {', '.join(clash)} clash with requested catalogue indices")


def _check_constants_used(user: Mapping[str, float], specs: list[IndexSpec], customs: Mapping[str, Expression]) -> None:
    used = {name for spec in specs for name in spec.constants}
    used |= {name for expression in customs.values() for name in expression.constants}
    unused = sorted(set(user) - used)
    if unused:
        what = ", ".join(sorted(used)) or "none"
        raise ConfigError(f"constant(s) {', '.join(unused)} not used by the requested indices (they use: {what})")


def _check_bands(ds: xr.Dataset, label: str, bands: tuple[str, ...]) -> None:
    missing = [band for band in bands if band not in ds.data_vars]
    if missing:
        present = ", ".join(sorted(str(name) for name in ds.data_vars)) or "none"
        raise MissingBandError(
            f"index {label} needs band(s) {', '.join(missing)}, missing from the dataset (present: {present}); "
            "name the variables with canonical band names (blue, green, red, nir, swir16, ...)"
        )
    for band in bands:
        dtype = ds[band].dtype
        if dtype.kind in "biu":
            raise DataError(
                f"band {band!r} has integer dtype {dtype}: scale it to float32 reflectance first "
                f"(e.g. ds[{band!r}].where(ds[{band!r}] != 0).astype('float32') / 10000, plus any offset); "
                "integer arithmetic wraps around (uint16 500 - 3000 = 63036)"
            )
        if dtype.kind != "f":
            raise DataError(f"band {band!r} has dtype {dtype}; expected float reflectance")


def _evaluate(ds: xr.Dataset, name: str, expression: Expression, attrs: dict[str, str]) -> xr.DataArray:
    result = expression.evaluate({band: ds[band] for band in expression.names})
    result = result.astype(np.float32, copy=False).rename(name)
    result.attrs = {
        "long_name": attrs["long_name"],
        "formula": expression.source,
        "units": "1",
        "reference": attrs["reference"],
        "catalog_version": CATALOG_VERSION,
    }
    if expression.constants:
        result.attrs["constants"] = ", ".join(f"{key}={value:g}" for key, value in sorted(expression.constants.items()))
    return result


def _docstring(spec: IndexSpec) -> str:
    defaults = ", ".join(f"``{key}={value:g}``" for key, value in spec.constants.items())
    constants = f"Override the defaults {defaults}." if defaults else "None: this index has no constants."
    note = f"\n\nNotes\n-----\n{spec.note}" if spec.note else ""
    return (
        f"{spec.long_name} ({spec.name}).\n\n``{spec.formula}``\n\n"
        f"Parameters\n----------\nds\n    Dataset with float reflectance bands {', '.join(spec.bands)}.\n"
        f"**constants\n    {constants}\n\n"
        "Returns\n-------\nxarray.DataArray\n    float32, lazy if ``ds`` is dask-backed, NaN where undefined.\n\n"
        f"References\n----------\n{spec.reference}{note}\n"
    )


def _convenience(name: str) -> IndexFunction:
    spec = get(name)

    def index_function(ds: xr.Dataset, /, **constants: float) -> xr.DataArray:
        return compute(ds, spec.name, constants=constants)[spec.variable]

    index_function.__name__ = index_function.__qualname__ = spec.variable
    index_function.__doc__ = _docstring(spec)
    return index_function


ndvi = _convenience("NDVI")
evi = _convenience("EVI")
savi = _convenience("SAVI")
msavi = _convenience("MSAVI")
ndwi = _convenience("NDWI")
mndwi = _convenience("MNDWI")
ndmi = _convenience("NDMI")
nbr = _convenience("NBR")
ndbi = _convenience("NDBI")
bsi = _convenience("BSI")
ndre = _convenience("NDRE")
gndvi = _convenience("GNDVI")
