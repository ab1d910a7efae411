"""Generate ``docs/cli.md`` and ``docs/recipes.md`` from the code (checked current by a test).

Run: ``python -m territoire_geo_cli.gendocs`` (``--check`` exits 1 when a file is stale).
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

import typer.main
from pydantic import BaseModel

from territoire_geo_cli.main import app

DOCS = Path(__file__).resolve().parents[2] / "docs"


def cli_reference() -> str:
    """Markdown reference of every command, from the Typer app."""
    group = typer.main.get_command(app)
    lines = ["# CLI reference", "", "Generated from the code by `python -m territoire_geo_cli.gendocs`; "
             "a test fails when this file is stale.", "",
             "Exit codes: 0 success · 1 unexpected error · 2 usage/config/recipe · 3 source/network · "
             "4 data · 5 export · 130 interrupted.", ""]
    lines += _command_doc(group, ["territoire-geo"], level=2)
    return "\n".join(lines).rstrip() + "\n"


def _command_doc(cmd: Any, path: list[str], level: int) -> list[str]:
    ctx = type(cmd).context_class(cmd, info_name=" ".join(path))
    lines = [f"{'#' * level} `{' '.join(path)}`", ""]
    help_text = (cmd.help or "").replace("[bold]", "`").replace("[/]", "`").strip()
    if help_text:
        lines += [help_text, ""]
    params = [p for p in cmd.get_params(ctx) if p.name not in ("help",)]
    if params and not _is_group(cmd):
        lines += ["| option | help |", "|---|---|"]
        for param in params:
            record = param.get_help_record(ctx) if getattr(param, "param_type_name", "") == "option" else (
                f"{(param.name or '').upper()} (argument)", getattr(param, "help", "") or "")
            if record:
                name, text = record
                lines.append(f"| `{name}` | {' '.join(text.split()).replace('|', '/')} |")
        lines.append("")
    if _is_group(cmd):
        for name in sorted(cmd.commands):  # type: ignore[attr-defined]
            lines += _command_doc(cmd.commands[name], [*path, name], level + 1)
    return lines


def _is_group(cmd: Any) -> bool:
    return hasattr(cmd, "commands")


def recipe_reference() -> str:
    """Markdown reference of every recipe key, from the pydantic models."""
    from territoire_geo.recipes.models import Recipe  # deferred: keeps --help fast

    lines = ["# Recipe reference", "", "Generated from `territoire_geo/recipes/models.py` by "
             "`python -m territoire_geo_cli.gendocs`. Unknown keys are refused; paths are relative to the "
             "recipe file; `${VAR}` reads an environment variable (kept as `${VAR}` in the manifest).", ""]
    lines += _model_doc(Recipe, "", set())
    return "\n".join(lines).rstrip() + "\n"


def _model_doc(model: Any, prefix: str, seen: set[str]) -> list[str]:
    lines = [f"## `{prefix or 'top level'}`", "", (model.__doc__ or "").strip(), "",
             "| key | type | default | description |", "|---|---|---|---|"]
    nested = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        kind = _type_name(annotation)
        default = "required" if field.is_required() else repr(field.get_default(call_default_factory=True))
        lines.append(f"| `{prefix + name}` | {kind} | {default.replace('|', '/')} | {field.description or ''} |")
        for sub in _submodels(annotation):
            if issubclass(sub, BaseModel) and sub.__name__ not in seen:
                seen.add(sub.__name__)
                nested.append((sub, f"{prefix}{name}{'[]' if 'list' in kind else ''}."))
    lines.append("")
    for sub, sub_prefix in nested:
        lines += _model_doc(sub, sub_prefix, seen)
    return lines


def _submodels(annotation: Any) -> list[type]:
    args = typing.get_args(annotation)
    if not args:
        return [annotation] if isinstance(annotation, type) else []
    return [a for arg in args for a in _submodels(arg)]


def _type_name(annotation: Any) -> str:
    return f"`{_plain_type(annotation)}`"


def _plain_type(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _plain_type(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_plain_type(a) for a in args).replace("NoneType", "null")
    if origin is typing.Literal:
        return " / ".join(repr(a) for a in args)
    if origin is not None:
        inner = ", ".join(_plain_type(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(annotation, "__name__", str(annotation))


def main() -> None:
    """Write (or with --check, compare) the generated reference pages."""
    check = "--check" in sys.argv
    stale = []
    for name, text in (("cli.md", cli_reference()), ("recipes.md", recipe_reference())):
        path = DOCS / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run python -m territoire_geo_cli.gendocs")
        sys.exit(1)


if __name__ == "__main__":
    main()
