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
