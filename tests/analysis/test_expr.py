"""Tests of the safe expression evaluator (territoire_geo.analysis.expr)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from territoire_geo.analysis import expr
from territoire_geo.errors import DataError, ExpressionError

RED = np.array([0.1, 0.2, 0.0, np.nan, 0.3], dtype=np.float32)
NIR = np.array([0.5, 0.2, 0.0, 0.3, -0.3], dtype=np.float32)


def values(**extra: Any) -> dict[str, Any]:
    return {"red": RED, "nir": NIR, **extra}


def as_dask_dataarrays(chunks: int) -> dict[str, xr.DataArray]:
    return {
        name: xr.DataArray(da.from_array(array, chunks=chunks), dims="x", coords={"x": np.arange(array.size)})
        for name, array in values().items()
    }


# ---------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(nir - red) / (nir + red)", [0.6666667, 0.0, np.nan, np.nan, np.nan]),
        ("nir * 2 + red", [1.1, 0.6, 0.0, np.nan, -0.3]),
        ("-red ** 2", [-0.01, -0.04, 0.0, np.nan, -0.09]),
        ("(red + 1) ** 2", [1.21, 1.44, 1.0, np.nan, 1.69]),
        ("+nir - -red", [0.6, 0.4, 0.0, np.nan, 0.0]),
        ("2 ** 3 * red", [0.8, 1.6, 0.0, np.nan, 2.4]),
        ("red ** (1/2)", [0.3162278, 0.4472136, 0.0, np.nan, 0.5477226]),
    ],
)
def test_arithmetic_numpy(text: str, expected: list[float]) -> None:
    result = expr.evaluate(text, values())
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, np.array(expected, dtype=np.float32), rtol=1e-6, atol=1e-7, equal_nan=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abs(nir - red)", [0.4, 0.0, 0.0, np.nan, 0.6]),
        ("sqrt(nir)", [0.7071068, 0.4472136, 0.0, 0.5477226, np.nan]),
        ("clip(nir * 3, 0, 1)", [1.0, 0.6, 0.0, 0.9, 0.0]),
        ("min(red, nir, 0.15)", [0.1, 0.15, 0.0, np.nan, -0.3]),
        ("max(red, nir)", [0.5, 0.2, 0.0, np.nan, 0.3]),
        ("where(red > 0.15, 1, 0)", [0.0, 1.0, 0.0, 0.0, 1.0]),
        ("where((red > 0.05) & (nir >= 0.2), nir, -1)", [0.5, 0.2, -1.0, -1.0, -1.0]),
        ("where((red == 0) | (nir < 0), 9, red)", [0.1, 0.2, 9.0, np.nan, 9.0]),
        ("where(0 < red <= 0.2, 1, 2)", [1.0, 1.0, 2.0, 2.0, 2.0]),
        ("where(red != 0.2, red, 0)", [0.1, 0.0, 0.0, np.nan, 0.3]),
    ],
)
def test_functions(text: str, expected: list[float]) -> None:
    result = expr.evaluate(text, values())
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, np.array(expected, dtype=np.float32), rtol=1e-6, equal_nan=True)


def test_division_by_zero_gives_nan_not_inf() -> None:
    result = expr.evaluate("nir / red", values())
    np.testing.assert_array_equal(np.isnan(result), [False, False, True, True, False])
    assert not np.isinf(result).any()
    assert np.isnan(expr.evaluate("1 / (nir - nir)", values())[:3]).all()


def test_overflow_gives_nan_not_inf() -> None:
    tiny = np.array([1e-30, 2.0], dtype=np.float32)
    result = expr.evaluate("x ** -10 + x ** 10", {"x": tiny})
    assert np.isnan(result[0])
    np.testing.assert_allclose(result[1], 1024 + 2.0**-10, rtol=1e-6)


def test_float32_preserved_with_python_constants() -> None:
    result = expr.evaluate("red * 0.1 + 1.5 - 2", values())
    assert result.dtype == np.float32
    assert expr.evaluate("red * 2", {"red": RED.astype(np.float64)}).dtype == np.float64


def test_integer_inputs_promoted_before_arithmetic() -> None:
    nir = np.array([500], dtype=np.uint16)
    red = np.array([3000], dtype=np.uint16)
    result = expr.evaluate("nir - red", {"nir": nir, "red": red})
    assert result.dtype == np.float32
    assert result[0] == -2500


def test_scalar_inputs() -> None:
    assert expr.evaluate("a / b", {"a": 1.0, "b": 4.0}) == 0.25
    assert np.isnan(expr.evaluate("a / b", {"a": 1.0, "b": 0.0}))


@pytest.mark.parametrize("chunks", [5, 1, 2])
def test_xarray_dask_matches_numpy_and_stays_lazy(chunks: int) -> None:
    text = "where(red > 0.05, (nir - red) / (nir + red), sqrt(abs(nir))) * 1.5"
    expected = expr.evaluate(text, values())
    lazy = expr.evaluate(text, as_dask_dataarrays(chunks))
    assert isinstance(lazy, xr.DataArray)
    assert isinstance(lazy.data, da.Array)
    assert lazy.dtype == np.float32
    assert lazy.data.chunks == ((chunks,) * (5 // chunks) + ((5 % chunks,) if 5 % chunks else ()),)
    computed = lazy.compute()
    assert computed.dtype == np.float32
    np.testing.assert_allclose(computed.values, expected, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(computed["x"].values, np.arange(5))


def test_xarray_numpy_backed() -> None:
    arrays = {name: xr.DataArray(array, dims="x") for name, array in values().items()}
    result = expr.evaluate("nir / red", arrays)
    assert isinstance(result.data, np.ndarray)
    np.testing.assert_allclose(result.values, expr.evaluate("nir / red", values()), equal_nan=True)


def test_bare_dask_array_division_by_zero_is_quiet() -> None:
    red = da.from_array(RED, chunks=2)
    result = expr.evaluate("nir / red - red ** 0.5", {"red": red, "nir": NIR})
    assert isinstance(result, da.Array)
    with dask.config.set(scheduler="threads"):  # warnings are errors: the kernel must silence numpy
        computed = result.compute()
    np.testing.assert_allclose(computed, expr.evaluate("nir / red - red ** 0.5", values()), equal_nan=True)


def test_expression_object() -> None:
    parsed = expr.parse("(1 + L) * (nir - red) / (nir + red + L)", variables=["red", "nir", "blue"], constants={"L": 0.5, "g": 2.5})
    assert parsed.names == frozenset({"nir", "red"})
    assert dict(parsed.constants) == {"L": 0.5}
    assert str(parsed) == "(1 + L) * (nir - red) / (nir + red + L)"
    np.testing.assert_allclose(parsed.evaluate(values())[0], 1.5 * 0.4 / 1.1, rtol=1e-6)
    with pytest.raises(ExpressionError, match="no value for red"):
        parsed.evaluate({"nir": NIR})


def test_errors_are_data_errors() -> None:
    with pytest.raises(DataError):
        expr.parse("foo", variables=["red"])
    with pytest.raises(ValueError, match="must be a number"):
        expr.parse("red * k", variables=["red"], constants={"k": "x"})  # type: ignore[dict-item]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("__import__('os')", ["'__import__'", "column 1"]),
        ("().__class__", ["'.__class__'", "column 3", "attribute access"]),
        ("red.__class__", ["'.__class__'", "column 4", "attribute access"]),
        ("lambda: 1", ["lambda", "column 1"]),
        ("[x for x in red]", ["comprehension", "[x for x in red]"]),
        ("red[0]", ["subscript", "'['", "column 4"]),
        ("open('x')", ["'open'", "column 1"]),
        ("'text'", ["string literal", "'text'"]),
        ("foo", ["unknown name 'foo'", "column 1"]),
        ("rde + 1", ["unknown name 'rde'", "did you mean 'red'"]),
        ("9**9**9", ["'**'", "column 2", "exponent"]),
        ("red**1000", ["'1000'", "column 4", "exponent"]),
        ("red ** -(11)", ["'-(11)'", "exponent"]),
        ("red ** (nir ** 2)", ["'**'", "exponent"]),
        ("clip(red, lo=0, hi=1)", ["keyword argument", "'lo='", "column 11"]),
        ("max(**red)", ["keyword argument", "'**'"]),
        ("where(*red)", ["star argument", "'*'"]),
        ("red // 2", ["'//'", "column 5"]),
        ("red % 2", ["'%'"]),
        ("red and nir", ["'and'"]),
        ("not red", ["'not'"]),
        ("~red", ["'~'"]),
        ("red if nir else 1", ["conditional expression"]),
        ("red > 1", ["comparison '>'", "where()"]),
        ("red & nir", ["'&'", "where()"]),
        ("where(red, 1, 2)", ["condition must be a comparison", "'red'"]),
        ("where(red > 0.1 & nir < 1, 1, 2)", ["'&'"]),
        ("where(red.real > 1, 1, 2)", ["'.real'"]),
        ("os.system('ls')", ["'.system'"]),
        ("(lambda: 1)()", ["lambda"]),
        ("red(1)", ["call to 'red'"]),
        ("getattr(red, 'x')", ["call to 'getattr'"]),
        ("True + red", ["constant 'True'"]),
        ("None", ["constant 'None'"]),
        ("1j * red", ["constant '1j'"]),
        ("1e13 * red", ["number '1e13' too large"]),
        ("10_000_000_000_000", ["too large"]),
        ("f'{red}'", ["string literal"]),
        ("(red := 1)", ["assignment"]),
        ("(red, nir)", ["tuple"]),
        ("min(red)", ["min() takes 2 to 32 arguments"]),
        ("sqrt(red, nir)", ["sqrt() takes 1 arguments"]),
        ("sqrt", ["function 'sqrt'"]),
        ("red +", ["syntax error", "column"]),
        ("", ["empty"]),
        ("réd", ["character 'é'", "column 2"]),
        ("red\x00", ["character '\\x00'"]),
    ],
)
def test_refusals_name_the_token(text: str, tokens: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        expr.parse(text, variables=["red", "nir"])
    message = str(info.value)
    assert "\n" not in message
    for token in tokens:
        assert token in message


def test_deeply_nested_parentheses_fail_fast() -> None:
    text = "(" * 10_000 + "red" + ")" * 10_000
    with pytest.raises(ExpressionError, match=r"nested too deeply .* at column 51"):
        expr.parse(text, variables=["red"])
    with pytest.raises(ExpressionError, match="nested too deeply"):
        expr.parse("(" * 51 + "red" + ")" * 51, variables=["red"])
    expr.parse("(" * 40 + "red" + ")" * 40, variables=["red"])


def test_deep_unary_chain_refused() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        expr.parse("-" * 200 + "red", variables=["red"])


def test_long_input_refused() -> None:
    text = "red + " * 99 + "red+.5"
    assert len(text) == 600
    with pytest.raises(ExpressionError, match=r"too long \(600 characters, at most 500\)"):
        expr.parse(text, variables=["red"])


def test_not_a_string() -> None:
    with pytest.raises(ExpressionError, match="expected a string"):
        expr.parse(42, variables=[])  # type: ignore[arg-type]


def test_module_never_calls_eval_exec_compile() -> None:
    tree = ast.parse(Path(expr.__file__).read_text(encoding="utf-8"))
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}


# ---------------------------------------------------------------- fuzzing

_ARMED: list[bool] = []
_EVENTS: list[tuple[str, Any]] = []
_WATCHED = {"exec", "os.system", "subprocess.Popen", "os.posix_spawn", "os.exec", "os.spawn", "os.fork", "socket.connect"}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _ARMED and event in _WATCHED:
        _EVENTS.append((event, args))


sys.addaudithook(_audit)

_TOKENS = [
    "red", "nir", "(", ")", "+", "-", "*", "/", "**", ".", "__class__", "[", "]", "'", '"', "_", "0", "1",
    "9", "2.5", "1e5", "abs", "sqrt", "where", "min", "max", "clip", ",", "<", ">", "==", "&", "|", "lambda",
    ":", " ", "__import__", "os", "open", "x", "=", "for", "in", "if", "else", "not", "and", "\\", "#", "@",
]
_ALPHABET = "rednirabsqtwhmxclp0123456789_+-*/().,[]{}'\"<>=&|!~%@:#\\ \tλ"


def _fuzz(text: str) -> None:
    try:
        _ARMED.append(True)
        parsed = expr.parse(text, variables=["red", "nir"])
        result = parsed.evaluate({"red": RED, "nir": NIR})
    except ExpressionError as exc:
        assert "\n" not in str(exc)
        return
    finally:
        _ARMED.clear()
    assert not _EVENTS, _EVENTS
    assert np.asarray(result).dtype == (np.float32 if parsed.names else np.float64)
    assert not np.isinf(result).any()


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=80))
def test_fuzz_characters_only_raise_expression_error(text: str) -> None:
    _fuzz(text)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join))
def test_fuzz_tokens_only_raise_expression_error(text: str) -> None:
    _fuzz(text)


@pytest.mark.parametrize("text", [
    "(nir - red) / (nir + red)",
    "2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)",
    "where(nir > red, sqrt(abs(nir - red)), -1) + clip(red, 0.1, 0.3) * max(nir, red, 0.2) ** 2",
    "nir / (red - red)",  # every denominator zero
    "(nir * 1e12) * (nir * 1e12) * (nir * 1e12) * (nir * 1e12) / red",  # overflows float32: inf -> NaN
])
def test_blocks_evaluated_by_strips_equal_the_whole_block(text: str) -> None:
    rng = np.random.default_rng(3)
    size = expr.STRIP * 2 + 12_345  # two full strips and a short one
    bands = {name: rng.uniform(0, 0.6, size).astype(np.float32) for name in ("nir", "red", "blue")}
    bands["red"][::97] = 0.0
    bands["nir"][::89] = np.nan
    bands = {name: value.reshape(1, -1) for name, value in bands.items()}
    parsed = expr.parse(text, variables=bands)
    by_strips = parsed.evaluate(bands)
    assert expr._strippable([bands[n] for n in parsed.names])
    whole = parsed.evaluate({name: np.asfortranarray(np.repeat(value, 2, axis=0))[:1]  # not C-contiguous:
                             for name, value in bands.items()})                       # the whole-block path
    assert by_strips.dtype == np.float32 and not np.isinf(by_strips).any()
    np.testing.assert_array_equal(by_strips, whole)
