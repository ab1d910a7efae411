"""Reading recipe files (YAML or TOML) into validated :class:`Recipe` objects.

Errors are :class:`~territoire_geo.errors.RecipeError` with one line:
``recipe.yaml:12: scoring.weights.slope: weight of slope must be … — expected …``.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from territoire_geo.errors import RecipeError
from territoire_geo.recipes.models import Recipe

__all__ = ["MAX_RECIPE_BYTES", "MAX_RECIPE_VALUES", "load_recipe", "parse_recipe"]

MAX_RECIPE_BYTES = 1_000_000
MAX_RECIPE_VALUES = 100_000
_ENV = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read, validate and resolve a recipe file.

    Raises
    ------
    RecipeError
        If the file is missing, too large, not UTF-8, not YAML/TOML, or invalid.
    """
    file = Path(path)
    if not file.is_file():
        raise RecipeError(f"{file}: no such recipe file; check the path")
    if file.stat().st_size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{file}: {file.stat().st_size} bytes is too large for a recipe (max 1 MB)")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{file}: not UTF-8 text (byte {exc.start}); save the recipe as UTF-8") from exc
    recipe = parse_recipe(text, name=str(file), toml=file.suffix.lower() == ".toml")
    try:
        return recipe.resolved(file.parent.resolve())
    except (RuntimeError, OSError) as exc:  # Path.resolve on a symbolic-link loop
        raise RecipeError(f"{file}: a path cannot be resolved ({exc}); check for a symbolic-link loop") from exc


def parse_recipe(text: str, *, name: str = "<recipe>", toml: bool = False) -> Recipe:
    """Validate recipe text (paths stay as written)."""
    data, lines = _parse_toml(text, name) if toml else _parse_yaml(text, name)
    if not isinstance(data, dict):
        raise RecipeError(f"{name}: a recipe is a mapping of keys (name:, territory:, …), not {type(data).__name__}")
    secrets: dict[str, str] = {}
    expanded = _expand_env(data, name, secrets)
    try:
        recipe = Recipe.model_validate(expanded)
    except ValidationError as exc:
        raise _recipe_error(exc, name, lines, text) from None  # built from locations, never input values
    recipe._env.update(secrets)
    return recipe



def _parse_yaml(text: str, name: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_expansion(node, name)  # before anything walks the expanded tree (YAML "billion laughs")
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{name}{where}: not valid YAML ({problem}); check indentation and colons") from exc
    except RecursionError as exc:
        raise RecipeError(f"{name}: nesting is too deep for a recipe") from exc
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _check_expansion(node: yaml.Node | None, name: str) -> None:
    """Refuse a document whose anchors/aliases expand to more than :data:`MAX_RECIPE_VALUES` values."""
    stack, seen = [node] if node is not None else [], 0
    while stack:
        current = stack.pop()
        seen += 1
        if seen > MAX_RECIPE_VALUES:
            raise RecipeError(f"{name}: the recipe expands to more than {MAX_RECIPE_VALUES:,} values (YAML anchors "
                              "and aliases?); write the values out")
        if isinstance(current, yaml.MappingNode):
            stack.extend(part for pair in current.value for part in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _index_lines(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines) if not isinstance(value, yaml.ScalarNode) else None
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _index_lines(value, (*path, i), lines)


def _parse_toml(text: str, name: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{name}: not valid TOML ({exc})") from exc
    return data, {}


def _expand_env(value: Any, name: str, secrets: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, name, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, name, secrets) for v in value]
    if isinstance(value, str):
        def repl(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise RecipeError(f"{name}: environment variable {var} is not set; export it before the run")
            secrets[os.environ[var]] = match.group(0)
            return os.environ[var]

        return _ENV.sub(repl, value)
    return value


def _recipe_error(exc: ValidationError, name: str, lines: dict[tuple[Any, ...], int], text: str) -> RecipeError:
    errors = sorted(exc.errors(), key=lambda e: (e["type"] != "extra_forbidden", e["type"] == "missing"))
    first = errors[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
    key_path = _printable(".".join(str(p) for p in loc)) or "(top level)"
    line = _line_for(loc, lines, text)
    where = f"{name}:{line}" if line else name
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key; check the spelling (see docs/recipes.md for every key)"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return RecipeError(f"{where}: {key_path}: {message}{more}")


def _printable(text: str, width: int = 120) -> str:
    """A key path as written, control characters escaped (one line) and cut to ``width``."""
    text = re.sub(r"[\x00-\x1f\x7f\x85\u2028\u2029]", lambda m: repr(m.group(0))[1:-1], text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int], text: str) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines and end:
            return lines[loc[:end]]
    if loc and isinstance(loc[-1], str):
        for number, line in enumerate(text.splitlines(), start=1):
            if re.match(rf"\s*\[?{re.escape(loc[-1])}\]?\s*[=:\]]", line):
                return number
    return None
