"""Docs are part of the product: generated references are current, every guide exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from territoire_geo_cli.gendocs import cli_reference, recipe_reference

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(("name", "make"), [("cli.md", cli_reference), ("recipes.md", recipe_reference)])
def test_generated_reference_is_current(name: str, make: object) -> None:
    assert (DOCS / name).read_text(encoding="utf-8") == make(), (  # type: ignore[operator]
        f"docs/{name} is stale: run python -m territoire_geo_cli.gendocs")


@pytest.mark.parametrize("name", ["guide-planners.md", "guide-analysts.md", "guide-officials.md",
                                  "performance.md", "reliability.md", "design.md"])
def test_guides_exist_and_are_not_empty(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    assert len(text) > 1500 and text.startswith("# ")


def _python_blocks(text: str) -> list[str]:
    blocks, inside, lines = [], False, []
    for line in text.splitlines():
        if line.strip().startswith("```python"):
            inside, lines = True, []
        elif line.strip().startswith("```") and inside:
            inside = False
            blocks.append("\n".join(lines))
        elif inside:
            lines.append(line)
    return blocks


@pytest.mark.parametrize("name", [*sorted(p.name for p in DOCS.glob("*.md")), "../README.md"])
def test_every_import_shown_in_the_docs_exists(name: str) -> None:
    """Code in the guides imports only what the package has (the layout changes once; the docs follow)."""
    import ast
    import importlib
    import importlib.util

    for block in _python_blocks((DOCS / name).read_text(encoding="utf-8")):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("territoire_geo"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), \
                        f"{name}: from {node.module} import {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("territoire_geo"):
                        importlib.import_module(alias.name)
