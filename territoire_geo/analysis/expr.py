"""Safe arithmetic expressions over raster bands.

A formula is data, never code: the text is parsed with :func:`ast.parse` and the
tree is checked against a whitelist before anything runs. Nothing is passed to
``eval``, ``exec`` or ``compile``. Allowed:

- numbers (int/float literals), known variable names (bands) and named constants;
- ``+ - * / **`` and unary ``+ -``;
- calls to ``abs(x)``, ``sqrt(x)``, ``clip(x, lo, hi)``, ``where(cond, a, b)``,
  ``min(a, b, ...)``, ``max(a, b, ...)`` (element-wise, positional arguments only);
- comparisons ``< <= > >= == !=`` combined with ``&`` / ``|``, only inside the
  first argument of ``where``.

Limits: :data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels of nesting (brackets
are counted by a scan *before* parsing), literals up to :data:`MAX_CONSTANT`, constant
exponents up to :data:`MAX_EXPONENT` and no power inside an exponent (``9**9**9``).

Evaluation works on numpy arrays, xarray DataArrays (numpy- or dask-backed, kept lazy)
and dask arrays, as one element-wise kernel. Division by zero and any other non-finite
result give NaN, never ``inf``, without numpy warnings. Float32 in gives float32 out
(constants take the data dtype); integers are promoted to at least float32 first.
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import operator
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np
from dask.array.core import elemwise

from territoire_geo.errors import ExpressionError

__all__ = [
    "FUNCTIONS", "MAX_CONSTANT", "MAX_DEPTH", "MAX_EXPONENT", "MAX_LENGTH", "STRIP", "Expression", "evaluate",
    "parse",
]  # fmt: skip

MAX_LENGTH = 500
MAX_DEPTH = 50
MAX_EXPONENT = 10.0
MAX_CONSTANT = 1e12

#: Whitelisted functions and their (min, max) number of positional arguments.
FUNCTIONS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"abs": (1, 1), "sqrt": (1, 1), "clip": (3, 3), "where": (3, 3), "min": (2, 32), "max": (2, 32)}
)

_HINT = "use band names, numbers, + - * / ** and abs/sqrt/clip/where/min/max"
_ARITH: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**",
}
_LOGIC: dict[type[ast.operator], str] = {ast.BitAnd: "&", ast.BitOr: "|"}
_OTHER_OPS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitXor: "^", ast.Not: "not", ast.Invert: "~", ast.And: "and", ast.Or: "or",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
}
_COMPARE: dict[type[ast.cmpop], tuple[str, Callable[..., Any]]] = {
    ast.Lt: ("<", np.less), ast.LtE: ("<=", np.less_equal), ast.Gt: (">", np.greater),
    ast.GtE: (">=", np.greater_equal), ast.Eq: ("==", np.equal), ast.NotEq: ("!=", np.not_equal),
}
_FOLD: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_DESCRIPTIONS: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
    ast.DictComp: "comprehension", ast.GeneratorExp: "comprehension", ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment", ast.Tuple: "tuple", ast.List: "list", ast.Set: "set", ast.Dict: "dict",
    ast.Starred: "star argument", ast.JoinedStr: "string literal", ast.Slice: "slice",
}


def _unsafe(what: str, token: str, column: int) -> NoReturn:
    raise ExpressionError(f"unsafe expression: {what} {token!r} at column {column}; {_HINT}")


def _invalid(what: str, column: int | None = None) -> NoReturn:
    where = f" at column {column}" if column is not None else ""
    raise ExpressionError(f"invalid expression: {what}{where}; {_HINT}")


def _shorten(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _precheck(text: object) -> str:
    """Refuse non-strings, deep brackets, long input and odd characters; return normalised text."""
    if not isinstance(text, str):
        raise ExpressionError(f"invalid expression: expected a string, got {type(text).__name__}")
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                _invalid(f"brackets nested too deeply ('{char}' is level {depth}, at most {MAX_DEPTH})", index + 1)
        elif char in ")]}":
            depth -= 1
    if len(text) > MAX_LENGTH:
        _invalid(f"too long ({len(text)} characters, at most {MAX_LENGTH})")
    text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    for index, char in enumerate(text):
        if not " " <= char <= "~":
            _invalid(f"character {char!r} not allowed", index + 1)
    if not text.strip():
        _invalid("empty expression")
    return text


def _parse_tree(text: str) -> ast.Expression:
    try:
        with warnings.catch_warnings():  # e.g. invalid escapes in strings, refused anyway
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        _invalid(f"syntax error ({exc.msg})", exc.offset)
    except (ValueError, RecursionError, MemoryError) as exc:
        _invalid(f"cannot parse ({type(exc).__name__})")


class _Validator:
    """Walk a parsed tree and refuse anything outside the whitelist."""

    def __init__(self, source: str, variables: frozenset[str], constants: Mapping[str, float]) -> None:
        self.source, self.variables, self.constants = source, variables, constants
        self.used_variables: set[str] = set()
        self.used_constants: set[str] = set()

    def check(self, node: ast.AST, depth: int, boolean: bool = False) -> None:
        if depth > MAX_DEPTH:
            _invalid(f"nested too deeply (more than {MAX_DEPTH} levels)", node.col_offset + 1)
        if isinstance(node, ast.BinOp):
            self._binop(node, depth, boolean)
        elif isinstance(node, ast.Compare):
            self._compare(node, depth, boolean)
        elif boolean:
            self.check(node, depth)
            _invalid(f"where() condition must be a comparison, got {self._segment(node)!r}", node.col_offset + 1)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
            self.check(node.operand, depth + 1)
        elif isinstance(node, ast.Constant):
            self._constant(node)
        elif isinstance(node, ast.Name):
            self._name(node)
        elif isinstance(node, ast.Call):
            self._call(node, depth)
        else:
            self._refuse(node)

    def _segment(self, node: ast.AST) -> str:
        return _shorten(self.source[node.col_offset : node.end_col_offset])

    def _op_column(self, node: ast.BinOp, symbol: str) -> int:
        index = self.source.find(symbol, node.left.end_col_offset, node.right.col_offset)
        return index + 1 if index >= 0 else node.col_offset + 1

    def _refuse(self, node: ast.AST) -> NoReturn:
        column = node.col_offset + 1
        if isinstance(node, ast.Attribute):
            dot = self.source.rfind(".", node.value.end_col_offset, node.end_col_offset)
            _unsafe("attribute access", "." + node.attr, dot + 1 if dot >= 0 else column)
        if isinstance(node, ast.Subscript):
            bracket = self.source.find("[", node.value.end_col_offset)
            _unsafe("subscript", "[", bracket + 1 if bracket >= 0 else column)
        if isinstance(node, ast.UnaryOp | ast.BoolOp):
            _unsafe("operator", _OTHER_OPS.get(type(node.op), type(node.op).__name__), column)
        what = _DESCRIPTIONS.get(type(node), type(node).__name__)
        _unsafe(what, self._segment(node), column)

    def _binop(self, node: ast.BinOp, depth: int, boolean: bool) -> None:
        op = type(node.op)
        if op in _LOGIC:
            if not boolean:
                _invalid(
                    f"operator {_LOGIC[op]!r} outside the condition of where() (bracket each comparison:"
                    " where((a > 0) & (b < 1), x, y))",
                    self._op_column(node, _LOGIC[op]),
                )
            self.check(node.left, depth + 1, True)
            self.check(node.right, depth + 1, True)
            return
        if op not in _ARITH:
            symbol = _OTHER_OPS.get(op, op.__name__)
            _unsafe("operator", symbol, self._op_column(node, symbol))
        if boolean:
            _invalid(f"where() condition must be a comparison, got {self._segment(node)!r}", node.col_offset + 1)
        if op is ast.Pow:
            self._exponent(node)
        self.check(node.left, depth + 1)
        self.check(node.right, depth + 1)

    def _exponent(self, node: ast.BinOp) -> None:
        column = self._op_column(node, "**")
        if any(isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Pow) for sub in ast.walk(node.right)):
            _unsafe("power inside an exponent", "**", column)
        value = self._fold(node.right)
        if value is not None and not abs(value) <= MAX_EXPONENT:
            _unsafe(f"exponent larger than {MAX_EXPONENT:g} in magnitude", self._segment(node.right), column)

    def _fold(self, node: ast.AST) -> float | None:
        """Value of a numbers-and-constants-only subtree, or None if it involves data."""
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in self.constants and node.id not in self.variables:
            return float(self.constants[node.id])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
            inner = self._fold(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.BinOp) and type(node.op) in _FOLD:
            left, right = self._fold(node.left), self._fold(node.right)
            if left is None or right is None or (isinstance(node.op, ast.Div) and right == 0):
                return None
            return _FOLD[type(node.op)](left, right)
        return None

    def _compare(self, node: ast.Compare, depth: int, boolean: bool) -> None:
        for op in node.ops:
            if type(op) not in _COMPARE:
                _unsafe("operator", _OTHER_OPS.get(type(op), type(op).__name__), node.col_offset + 1)
        if not boolean:
            symbol = _COMPARE[type(node.ops[0])][0]
            index = self.source.find(symbol, node.left.end_col_offset)
            _invalid(f"comparison {symbol!r} outside the condition of where()", index + 1)
        for operand in (node.left, *node.comparators):
            self.check(operand, depth + 1)

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str | bytes):
            _unsafe("string literal", self._segment(node), node.col_offset + 1)
        if isinstance(value, bool) or not isinstance(value, int | float):
            _unsafe("constant", self._segment(node), node.col_offset + 1)
        if not abs(value) <= MAX_CONSTANT:
            _invalid(f"number {self._segment(node)!r} too large (at most {MAX_CONSTANT:g})", node.col_offset + 1)

    def _name(self, node: ast.Name) -> None:
        name, column = node.id, node.col_offset + 1
        if name.startswith("__"):
            _unsafe("dunder name", name, column)
        if name in self.variables:
            self.used_variables.add(name)
        elif name in self.constants:
            self.used_constants.add(name)
        elif name in FUNCTIONS:
            _invalid(f"function {name!r} used without calling it", column)
        else:
            known = sorted(self.variables | set(self.constants))
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            listing = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
            raise ExpressionError(
                f"invalid expression: unknown name {name!r} at column {column}; {hint}known names: {listing or 'none'}"
            )

    def _call(self, node: ast.Call, depth: int) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute | ast.Subscript | ast.Lambda):
                self._refuse(func)
            _unsafe("call to", self._segment(func), func.col_offset + 1)
        name, column = func.id, func.col_offset + 1
        if name not in FUNCTIONS or name in self.variables:
            _unsafe("call to", name, column)
        if node.keywords:
            keyword = node.keywords[0]
            token = f"{keyword.arg}=" if keyword.arg else "**"
            _unsafe("keyword argument", token, keyword.col_offset + 1)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                _unsafe("star argument", "*", arg.col_offset + 1)
        low, high = FUNCTIONS[name]
        if not low <= len(node.args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            _invalid(f"{name}() takes {expected} arguments, got {len(node.args)}", column)
        for position, arg in enumerate(node.args):
            self.check(arg, depth + 1, boolean=(name == "where" and position == 0))


def _check_constants(constants: Mapping[str, float] | None) -> dict[str, float]:
    checked: dict[str, float] = {}
    for name, value in (constants or {}).items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ExpressionError(f"constant {name!r} must be a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ExpressionError(f"constant {name!r} must be finite, got {value!r}")
        checked[str(name)] = float(value)
    return checked


@dataclass(frozen=True)
class Expression:
    """A validated formula, ready to evaluate.

    Attributes
    ----------
    source
        The text as given.
    tree
        The validated :class:`ast.Expression`.
    names
        Variable (band) names the formula uses.
    constants
        Named constants the formula uses, with the values bound at parse time.
    """

    source: str
    tree: ast.Expression = field(repr=False, compare=False)
    names: frozenset[str]
    constants: Mapping[str, float] = field(hash=False)

    def __str__(self) -> str:
        return self.source

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        """Evaluate on arrays.

        Parameters
        ----------
        values
            Variable name -> numpy array, xarray DataArray (numpy or dask backed),
            dask array or number. Extra keys are ignored.

        Returns
        -------
        Any
            Same kind as the inputs: DataArray (lazy if dask-backed), dask array,
            numpy array or numpy scalar. Non-finite results are NaN.
        """
        missing = sorted(self.names - set(values))
        if missing:
            raise ExpressionError(f"no value for {', '.join(missing)} in expression {self.source!r}")
        names = tuple(sorted(self.names))
        args = [values[name] for name in names]
        dtype = _working_dtype(args)
        kernel = functools.partial(_kernel, self.tree.body, names, dict(self.constants), dtype)
        return _dispatch(kernel, args, dtype)


def parse(
    text: str, *, variables: Iterable[str], constants: Mapping[str, float] | None = None
) -> Expression:
    """Parse and validate a formula.

    Parameters
    ----------
    text
        The formula, e.g. ``"(nir - red) / (nir + red)"``.
    variables
        Names that will be given as arrays at evaluation (bands).
    constants
        Named constants and their values (variables shadow constants of the same name).

    Returns
    -------
    Expression

    Raises
    ------
    ExpressionError
        For anything outside the whitelist, with the offending token and column.
    """
    source = _precheck(text)
    known = _check_constants(constants)
    tree = _parse_tree(source)
    validator = _Validator(source, frozenset(variables), known)
    validator.check(tree.body, 1)
    used = {name: known[name] for name in sorted(validator.used_constants)}
    return Expression(text, tree, frozenset(validator.used_variables), MappingProxyType(used))


def evaluate(text: str, values: Mapping[str, Any], constants: Mapping[str, float] | None = None) -> Any:
    """Parse ``text`` with ``values`` as variables and evaluate it (see :meth:`Expression.evaluate`)."""
    return parse(text, variables=values.keys(), constants=constants).evaluate(values)


def _working_dtype(args: list[Any]) -> np.dtype[Any]:
    """Float dtype of the computation: that of the data, at least float32; Python numbers are weak."""
    dtypes = [arg.dtype if hasattr(arg, "dtype") else np.asarray(arg).dtype for arg in args
              if not isinstance(arg, int | float)]
    dtype = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    if dtype.kind not in "biuf":
        raise ExpressionError(f"cannot evaluate on values of dtype {dtype}; expected real numbers")
    return np.promote_types(dtype, np.float32)


def _dispatch(kernel: Callable[..., np.ndarray], args: list[Any], dtype: np.dtype[Any]) -> Any:
    xr = sys.modules.get("xarray")
    if xr is not None and any(isinstance(arg, xr.DataArray | xr.Variable) for arg in args):
        return xr.apply_ufunc(kernel, *args, dask="parallelized", output_dtypes=[dtype], keep_attrs=False)
    dask_array = sys.modules.get("dask.array")
    if dask_array is not None and any(isinstance(arg, dask_array.Array) for arg in args):

        return elemwise(kernel, *args, dtype=dtype)
    result = kernel(*args)
    return result[()] if result.ndim == 0 else result


#: Elements per strip when a block is evaluated strip by strip (512 KiB of float32): the
#: temporaries of each operator then stay in the CPU cache instead of costing a pass
#: through memory (and fresh pages) each.
STRIP = 1 << 17


def _kernel(
    body: ast.expr, names: tuple[str, ...], constants: dict[str, float], dtype: np.dtype[Any], *arrays: Any
) -> np.ndarray:
    """Evaluate on numpy blocks; runs inside dask tasks, so it silences numpy warnings itself."""
    with np.errstate(all="ignore"):
        env = {name: np.asarray(array, dtype=dtype) for name, array in zip(names, arrays, strict=True)}
        fixed = {name: dtype.type(value) for name, value in constants.items() if name not in env}
        if _strippable(list(env.values())):
            return _kernel_strips(body, env, fixed, dtype)
        env.update(fixed)
        result = np.asarray(_eval(body, env, dtype), dtype=dtype)
        if result.ndim == 0 or not result.flags.writeable or any(
                np.may_share_memory(result, value) for value in env.values()):
            return np.where(np.isinf(result), dtype.type(np.nan), result)
        np.copyto(result, dtype.type(np.nan), where=np.isinf(result))  # in place: one array less per block
        return result


def _strippable(values: list[np.ndarray]) -> bool:
    """Large, C-contiguous arrays of one shape: flat views of them can be cut into strips."""
    if not values or values[0].size < 2 * STRIP:
        return False
    shape = values[0].shape
    return all(v.shape == shape and v.flags.c_contiguous for v in values)


def _kernel_strips(body: ast.expr, env: dict[str, np.ndarray], fixed: dict[str, Any],
                   dtype: np.dtype[Any]) -> np.ndarray:
    """The same element-wise evaluation, :data:`STRIP` elements at a time, into one output array.

    Every operator is element-wise, so the values are those of the whole-block evaluation.
    """
    shape = next(iter(env.values())).shape
    flat = {name: value.reshape(-1) for name, value in env.items()}  # views: the arrays are contiguous
    out = np.empty(flat[next(iter(flat))].size, dtype=dtype)
    for start in range(0, out.size, STRIP):
        part = {name: value[start:start + STRIP] for name, value in flat.items()}
        part.update(fixed)
        strip = out[start:start + STRIP]
        strip[...] = _eval(body, part, dtype)
        np.copyto(strip, dtype.type(np.nan), where=np.isinf(strip))
    return out.reshape(shape)


def _safe_divide(numerator: Any, denominator: Any, out: np.ndarray | None = None) -> np.ndarray:
    """``numerator / denominator`` with NaN where the denominator is 0 (one pass when there is no 0)."""
    zero = np.equal(denominator, 0)  # before dividing: ``out`` may be the denominator
    result = np.divide(numerator, denominator, out=out)
    return np.where(zero, np.nan, result).astype(result.dtype, copy=False) if np.any(zero) else result


def _binary(op: type[ast.operator], left: Any, right: Any, env: dict[str, Any]) -> Any:
    """Apply ``op``, writing into an operand that is a temporary of this evaluation when one fits.

    Saves one block-sized allocation per arithmetic operator (a fresh allocation costs
    a page fault per 4 KiB on first touch). Inputs (``env`` values) are never written.
    """
    func = _BINARY[op]
    if op not in _IN_PLACE:
        return func(left, right)
    for scratch in (left, right):
        if (isinstance(scratch, np.ndarray) and scratch.flags.writeable and scratch.flags.owndata
                and not any(scratch is value for value in env.values())
                and scratch.shape == np.broadcast_shapes(np.shape(left), np.shape(right))
                and scratch.dtype == np.result_type(left, right)):
            return func(left, right, out=scratch)
    return func(left, right)


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: _safe_divide,
    ast.Pow: np.power, ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or,
}
_IN_PLACE = frozenset({ast.Add, ast.Sub, ast.Mult, ast.Div})
_CALLS: dict[str, Callable[..., Any]] = {
    "abs": np.abs, "sqrt": np.sqrt, "clip": np.clip, "where": np.where,
    "min": lambda *args: functools.reduce(np.minimum, args),
    "max": lambda *args: functools.reduce(np.maximum, args),
}


def _eval(node: ast.expr, env: dict[str, Any], dtype: np.dtype[Any]) -> Any:
    """Interpret a validated node on numpy values."""
    if isinstance(node, ast.Constant):
        return dtype.type(node.value)
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env, dtype)
        return np.negative(operand) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _binary(type(node.op), _eval(node.left, env, dtype), _eval(node.right, env, dtype), env)
    if isinstance(node, ast.Compare):
        operands = [_eval(item, env, dtype) for item in (node.left, *node.comparators)]
        tests = [_COMPARE[type(op)][1](a, b) for op, a, b in zip(node.ops, operands, operands[1:], strict=False)]
        return functools.reduce(np.logical_and, tests)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _CALLS[node.func.id](*(_eval(arg, env, dtype) for arg in node.args))
    raise ExpressionError(f"internal error: unvalidated node {type(node).__name__}")  # pragma: no cover
