"""Fuzzing with hypothesis: the recipe loader, the formula parser (also through recipes), the CNIG normalisers.

Properties: hostile or random input only ever raises the package's own one-line errors
(``RecipeError``, ``ExpressionError``, ``SchemaError``) — never another exception, a hang,
code execution or a non-finite number in an accepted recipe — and the normalisers are
total (any value in, text or ``None`` out) and idempotent.

Budgets: the default profile (``tg-fuzz``) is small, fixed and derandomised so that CI is
deterministic and fast. For a longer, random run (see ``docs/reliability.md``)::

    HYPOTHESIS_PROFILE=long python -m pytest tests/reliability/test_fuzz.py -p no:cacheprovider --timeout=14400

The profiles are registered here (not in ``conftest.py``) and applied per test, so the
other test modules keep their own settings.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from territoire_geo.analysis import expr
from territoire_geo.errors import ExpressionError, RecipeError, SchemaError
from territoire_geo.imagery.bands import CANONICAL_BANDS
from territoire_geo.planning import _cnig
from territoire_geo.planning._encoding import decide_encoding, fix_mojibake
from territoire_geo.recipes import parse_recipe
from territoire_geo.recipes.models import Recipe

REPO = Path(__file__).resolve().parents[2]
SHIPPED = sorted((REPO / "recipes").glob("*.yaml"))

settings.register_profile("tg-fuzz", max_examples=120, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("long", max_examples=20_000, deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "tg-fuzz")
FUZZ = settings(parent=settings.get_profile(PROFILE if PROFILE in ("tg-fuzz", "long") else "tg-fuzz"))
#: Slower properties (a DataFrame or an evaluation per example) get a quarter of the budget.
FUZZ_SLOW = settings(FUZZ, max_examples=max(FUZZ.max_examples // 4, 20))

pytestmark = pytest.mark.timeout(600 if PROFILE != "long" else 14_400)


# ============================================================== audit: nothing may run

_ARMED: list[bool] = []
_EVENTS: list[tuple[str, Any]] = []
_WATCHED = ("exec", "os.system", "subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn",
            "os.fork", "socket.connect", "open", "import")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _ARMED and event.startswith(_WATCHED) and not (event == "open" and _harmless_open(args)):
        _EVENTS.append((event, args))


def _harmless_open(args: tuple[Any, ...]) -> bool:
    """Reads of installed package files (lazy imports of numpy/xarray internals) are not the formula's."""
    path = str(args[0]) if args else ""
    return path.endswith((".py", ".pyc", ".so", ".json", ".pth")) or "site-packages" in path or "/proc/" in path


sys.addaudithook(_audit)


class _Armed:
    """While armed, any watched audit event (exec, process, socket, file open, import) is recorded.

    ``compile`` is not watched: :func:`ast.parse` raises it for every formula (parsing, not running).
    """

    def __enter__(self) -> None:
        _EVENTS.clear()
        _ARMED.append(True)

    def __exit__(self, *exc: object) -> None:
        _ARMED.clear()


def _one_line(exc: BaseException) -> None:
    text = str(exc)
    assert text and "\n" not in text and len(text) < 1000, text


# ============================================================== recipe loader

KEYS = ["schema_version", "name", "title", "description", "territory", "imagery", "periods", "indices",
        "custom_indices", "change", "layers", "zan", "crops", "greening", "site_finder", "scoring", "scene",
        "report", "output", "scheduler", "plu", "aoi", "insee", "crs", "resolution", "source", "collections",
        "max_cloud", "before", "after", "min_area_m2", "rules", "weights", "sensitivity_runs", "kind", "path",
        "lang", "enabled", "extrude", "top_k", "chunks", "mask", "${HOME}", "__class__", "<script>", "é"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0]),
    st.text(max_size=40), st.sampled_from(["EPSG:2154", "2022", "2020-01-01/2021-12-31", "ndvi", "recette",
                                           "../../etc/passwd", "${TERRITOIRE_UNSET_VAR}", "nir - red", "fr", "median"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner,
                                                 max_size=6)), max_leaves=40)
recipe_dicts = st.fixed_dictionaries(
    {"name": st.one_of(st.just("fuzz"), scalars), "territory": st.one_of(
        st.fixed_dictionaries({"aoi": st.just("aoi.geojson")}, optional={
            "resolution": scalars, "crs": scalars, "insee": values, "plu": scalars}), values)},
    optional=dict.fromkeys([k for k in KEYS[:20] if k not in ("name", "territory")], values),
)


def _check_recipe(text: str, *, toml: bool = False) -> Recipe | None:
    """Parse ``text``: a valid recipe has only finite numbers and serialises; anything else is a RecipeError."""
    try:
        recipe = parse_recipe(text, name="fuzz.yaml", toml=toml)
    except RecipeError as exc:
        _one_line(exc)
        return None
    json.dumps(recipe.public_dump(), allow_nan=False)  # no NaN or infinity reached an accepted recipe
    assert 0 < recipe.territory.resolution <= 1000
    return recipe


@FUZZ
@given(st.text(max_size=600))
def test_any_text_is_a_recipe_or_a_recipe_error(text: str) -> None:
    _check_recipe(text)


@FUZZ
@given(st.text(max_size=300))
def test_any_text_as_toml_is_a_recipe_or_a_recipe_error(text: str) -> None:
    _check_recipe(text, toml=True)


@FUZZ
@given(recipe_dicts)
def test_generated_recipe_mappings(data: dict[str, Any]) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError, OverflowError):
        assume(False)
        return
    _check_recipe(text)


@st.composite
def mutated_recipe(draw: st.DrawFn) -> str:
    """A shipped recipe with a few random edits: cuts, insertions, swapped or repeated lines."""
    lines = draw(st.sampled_from(SHIPPED)).read_text(encoding="utf-8").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["cut", "insert", "swap", "repeat", "indent", "value"]))
        if edit == "cut":
            lines[i] = lines[i][: draw(st.integers(0, max(len(lines[i]) - 1, 0)))]
        elif edit == "insert":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.text(max_size=12)) + lines[i][at:]
        elif edit == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "repeat":
            lines.insert(i, lines[i])
        elif edit == "indent":
            lines[i] = " " * draw(st.integers(1, 6)) + lines[i]
        elif ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(st.sampled_from(['.nan', '.inf', '-1', '1e308', '[]', '{}', '~', '&a x']))}"
    return "\n".join(lines) + "\n"


@FUZZ
@given(mutated_recipe())
def test_mutated_shipped_recipes(text: str) -> None:
    _check_recipe(text)


def test_every_float_field_refuses_nan_and_infinity() -> None:
    """The finding of the generated mappings, pinned: ``min_area_m2: .inf`` made every alert vanish."""
    for field, value in (("change:\n  min_area_m2", ".inf"), ("change:\n  min_area_m2", ".nan"),
                         ("change:\n  rules:\n    sparse_ndvi", "-.inf"), ("imagery:\n  source: x\n  max_cloud", ".nan"),
                         ("scoring:\n  weights:\n    zoning", ".inf"), ("territory2", "x")):
        text = f"name: f\nterritory:\n  aoi: a.geojson\n{field}: {value}\n"
        with pytest.raises(RecipeError) as info:
            parse_recipe(text)
        _one_line(info.value)


# ============================================================== formulas

BANDS = ["red", "nir", "green", "swir16"]
SAFE_ATOMS = st.one_of(st.sampled_from(BANDS), st.integers(-5, 1000).map(str),
                       st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: f"{f!r}"),
                       st.sampled_from(["0", "0.5", "1e12", "1e13", "1e308", "0.0001", "10_000"]))
HOSTILE_ATOMS = st.sampled_from([
    "__import__", "__builtins__", "__class__", "__subclasses__", "__globals__", "os", "sys", "open", "eval",
    "exec", "compile", "getattr", "globals", "locals", "vars", "breakpoint", "input", "print", "type", "object",
    "()", "[]", "{}", "''", "'os'", '"rm -rf /"', "b'x'", "...", "None", "True", "1j", "lambda: 0", "lambda x: x",
    "[x for x in ()]", "{1: 2}", "f'{red}'", "red.real", "(red := 1)", "*red", "**red", "__debug__", "_", "__",
])


@st.composite
def formulas(draw: st.DrawFn, depth: int = 0) -> str:
    """Expressions mixing the whitelist with attribute access, calls, subscripts, dunders and deep nesting."""
    if depth > 4 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(SAFE_ATOMS, HOSTILE_ATOMS))
    kind = draw(st.sampled_from(["binary", "unary", "call", "attr", "subscript", "compare", "where", "paren",
                                 "deep", "power_tower", "bool"]))
    sub = formulas(depth + 1)
    if kind == "binary":
        op = draw(st.sampled_from(["+", "-", "*", "/", "**", "//", "%", "@", "<<", ">>", "&", "|", "^"]))
        return f"{draw(sub)} {op} {draw(sub)}"
    if kind == "unary":
        return f"{draw(st.sampled_from(['-', '+', '~', 'not ']))}{draw(sub)}"
    if kind == "call":
        name = draw(st.sampled_from(["abs", "sqrt", "clip", "where", "min", "max", "__import__", "getattr", "open",
                                     "eval", "red", "print", "type"]))
        args = draw(st.lists(sub, max_size=4))
        return f"{name}({', '.join(args)})"
    if kind == "attr":
        return f"({draw(sub)}).{draw(st.sampled_from(['__class__', '__mro__', 'real', 'system', '__dict__', 'T']))}"
    if kind == "subscript":
        return f"({draw(sub)})[{draw(sub)}]"
    if kind == "compare":
        return f"{draw(sub)} {draw(st.sampled_from(['<', '<=', '>', '>=', '==', '!=', 'is', 'in']))} {draw(sub)}"
    if kind == "where":
        cond = f"({draw(sub)} {draw(st.sampled_from(['<', '>']))} {draw(sub)})"
        return f"where({cond} {draw(st.sampled_from(['&', '|']))} ({draw(sub)} > 0), {draw(sub)}, {draw(sub)})"
    if kind == "paren":
        return f"({draw(sub)})"
    if kind == "deep":
        n = draw(st.integers(40, 400))
        return "(" * n + draw(sub) + ")" * n
    if kind == "power_tower":
        return "**".join(draw(st.lists(st.sampled_from(["9", "2", "red", "10", "0.5"]), min_size=2, max_size=5)))
    return f"{draw(sub)} {draw(st.sampled_from(['and', 'or', 'if red else']))} {draw(sub)}"


RED = np.array([0.05, 0.2, 0.0, 1e-30, 0.9], dtype="float32")
NIR = np.array([0.4, 0.2, 0.0, 3e38, 0.1], dtype="float32")
VALUES = {"red": RED, "nir": NIR, "green": RED * 2, "swir16": NIR / 2}


def _warm_up() -> None:
    """Import what parsing and evaluating import lazily, before any audit is armed."""
    from territoire_geo.recipes.imagery_steps import bands_for

    expr.parse("where(red > 0, sqrt(abs(nir)), min(red, nir))", variables=BANDS).evaluate(VALUES)
    bands_for(parse_recipe("name: w\nterritory:\n  aoi: a.geojson\ncustom_indices:\n  w: nir - red\n"))


_warm_up()


def _check_formula(text: str) -> None:
    with _Armed():
        try:
            parsed = expr.parse(text, variables=BANDS)
            result = np.asarray(parsed.evaluate(VALUES))
        except ExpressionError as exc:
            _one_line(exc)
            result = None
    assert not _EVENTS, _EVENTS  # nothing was executed, imported, opened or spawned
    if result is not None:
        assert not np.isinf(result).any()


@FUZZ_SLOW
@given(formulas())
def test_generated_hostile_formulas_are_refused_or_safe(text: str) -> None:
    _check_formula(text)


@FUZZ_SLOW
@given(formulas())
def test_formulas_through_a_recipe(text: str) -> None:
    from territoire_geo.recipes.imagery_steps import bands_for

    recipe_text = f"name: f\nterritory:\n  aoi: a.geojson\ncustom_indices:\n  mine: {json.dumps(text)}\n"
    with _Armed():
        try:
            recipe = parse_recipe(recipe_text)
        except RecipeError as exc:  # longer than 500 characters, or not a string after YAML
            _one_line(exc)
            return
        try:
            bands = bands_for(recipe)
        except ExpressionError as exc:
            _one_line(exc)
            bands = None
    assert not _EVENTS, _EVENTS
    if bands is not None:
        assert set(bands) <= set(CANONICAL_BANDS)


# ============================================================== CNIG normalisers

any_value = st.one_of(
    st.none(), st.just(pd.NA), st.just(pd.NaT), st.just(np.datetime64("NaT")), st.booleans(),
    st.integers(-(10**30), 10**30), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.binary(max_size=20), st.dates(), st.datetimes(min_value=dt.datetime(1, 1, 1)),
    st.integers(-(2**62), 2**62).map(np.int64), st.floats(width=32).map(np.float32),
    st.dates(min_value=dt.date(1700, 1, 1), max_value=dt.date(2200, 1, 1)).map(np.datetime64),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(["07", "7.0", "2A004", " AUc ", "nh", "Nd", "1AUh", "2AU", "13/10/2017", "2017-10-13",
                     "00000000", "20171300", "é", "\x00", "\u2028", "-0", "1e5", "0x10"]),
)


@FUZZ
@given(any_value)
def test_value_normalisers_are_total_and_idempotent(value: Any) -> None:
    text = _cnig.to_text(value)
    assert text is None or (isinstance(text, str) and text == text.strip() and text)
    for func in (_cnig.normalize_code, _cnig.normalize_date, _cnig.normalize_typezone, _cnig._normalize_dest_list):
        once = func(value)
        assert once is None or isinstance(once, str)
        assert func(once) == once, (func.__name__, value, once)
    zone = _cnig.normalize_typezone(value)
    assert zone is None or zone in _cnig.TYPEZONES or zone == text
    assert _cnig.infer_typezone(value) in (None, *_cnig.TYPEZONES)
    assert isinstance(_cnig.is_valid_date(_cnig.normalize_date(value)), bool)
    date = _cnig.normalize_date(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        assert date == f"{value.year:04d}{value.month:02d}{value.day:02d}" and _cnig.is_valid_date(date)


@FUZZ
@given(st.text(max_size=40))
def test_field_names_and_text_repairs_are_total(name: str) -> None:
    field = _cnig.normalize_field_name(name)
    assert isinstance(field, str) and _cnig.normalize_field_name(field) == field
    fixed = fix_mojibake(name)
    assert isinstance(fixed, str) and fix_mojibake(fixed) == fixed
    assert isinstance(decide_encoding([name, fixed]), str)


FIELDS = [*_cnig.CNIG_FIELDS, "libelle", "Type_Zone", "typezone", "destdomi", "lib_idzone", "x", "geometry", ""]


@FUZZ_SLOW
@given(st.dictionaries(st.sampled_from(FIELDS), st.lists(any_value, min_size=3, max_size=3), min_size=1, max_size=6))
def test_attribute_tables_normalise_or_raise_schema_error(columns: dict[str, list[Any]]) -> None:
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})
    try:
        out, repairs = _cnig.normalize_attributes(frame, "ZONE_URBA")
    except SchemaError as exc:
        _one_line(exc)
        return
    assert all(isinstance(r, str) and "\n" not in r for r in repairs)
    again, _ = _cnig.normalize_attributes(out, "ZONE_URBA")
    pd.testing.assert_frame_equal(again, out)  # idempotent
    if "TYPEZONE" in out.columns:
        assert out["TYPEZONE"].map(lambda v: v is None or (isinstance(v, float) and math.isnan(v))
                                   or isinstance(v, str)).all()
