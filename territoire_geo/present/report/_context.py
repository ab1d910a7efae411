"""What every section of the report is built from: the run's data, the language, and a few helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from territoire_geo.present._style import format_number
from territoire_geo.present.report._data import FILES, RunData
from territoire_geo.present.report._html import para
from territoire_geo.present.report._text import TEXT, format_ha, format_percent

__all__ = ["MAX_ROWS", "Ctx", "limited", "text_of", "why"]

#: Rows shown in a report table; the file named under it holds the rest.
MAX_ROWS = 40


@dataclass(frozen=True)
class Ctx:
    """What every section builder needs: the run data, the language and the figures' source line."""

    data: RunData
    lang: str
    source: str

    @property
    def t(self) -> dict[str, str]:
        """The words of the report language."""
        return TEXT[self.lang]

    def ha(self, value: Any) -> str:
        """``2,57 ha``."""
        return format_ha(value, self.lang)

    def num(self, value: Any, decimals: int = 0) -> str:
        """A formatted number."""
        return format_number(value, decimals, self.lang)

    def pct(self, value: Any) -> str:
        """A 0–1 share as a percentage."""
        return format_percent(value, self.lang)


def why(ctx: Ctx, role: str, *, recipe_key: str | None = None, recipe_has: str | None = None) -> str:
    """Why the file of ``role`` is not used: unreadable, not asked for by the recipe, or simply absent."""
    t, file = ctx.t, FILES[role]
    if role in ctx.data.problems:
        return t["why_unreadable"].format(file=file, error=ctx.data.problems[role])
    if recipe_key and recipe_has and not ctx.data.recipe.get(recipe_has):
        return t[recipe_key].format(name=ctx.data.recipe.get("name", "?"), file=file)
    return t["why_file"].format(file=file)


def limited(rows: list[list[Any]], ctx: Ctx, file: str) -> tuple[list[list[Any]], str]:
    """At most 40 rows, and a note naming the file that holds the rest."""
    if len(rows) <= MAX_ROWS:
        return rows, ""
    return rows[:MAX_ROWS], para(ctx.t["more_rows"].format(n=len(rows) - MAX_ROWS, file=file), "small")


def text_of(value: Any) -> str:
    """Data as text; empty for None / NaN."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)
