"""Figures and reports for planners: quick-look maps and the HTML report of a run (matplotlib, headless).

:func:`build_report` turns a finished run folder into **one self-contained HTML
file** (``rapport.html``) that an elected official can open by double-click,
offline: figures are embedded PNGs, the CSS is inline, there is no script and
no external font. It uses whatever the run produced — scores, change alerts,
ZAN table, NDVI series, PLU validation, provenance — and says plainly which
sections are absent and why. The same figures are written as PNG files to
``figures/`` beside the report.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from territoire_geo._atomic import ensure_new, write_bytes
from territoire_geo.errors import DataError
from territoire_geo.present._style import check_lang
from territoire_geo.present.report import _sections as sections
from territoire_geo.present.report import _tables as tables
from territoire_geo.present.report._context import Ctx
from territoire_geo.present.report._data import load_run
from territoire_geo.present.report._figures import source_line
from territoire_geo.present.report._html import Section, page
from territoire_geo.present.report._text import TEXT

__all__ = ["FIGURES", "REPORT", "build_report", "render_report"]

log = logging.getLogger(__name__)

#: File name of the report in the run folder.
REPORT = "rapport.html"
#: Folder of the report's PNG figures, beside it.
FIGURES = "figures"


def build_report(run_dir: str | os.PathLike[str], *, lang: str = "fr", out: str | os.PathLike[str] | None = None,
                 overwrite: bool = False) -> Path:
    """Write the self-contained HTML report of a finished run.

    Sections: key figures; score map (excluded units hatched, top five numbered)
    with the top-ranked, excluded and sensitivity tables; criterion contributions
    of the best units; change alerts over the zoning; the ZAN table (from
    ``artificialisation.csv``, else estimated from the class-3 alerts × zoning);
    NDVI series by zone type and RPG crop group; PLU validation; provenance
    (inputs with checksums, imagery items with baselines and offsets, software,
    recipe, start/end). A section whose files are missing is announced with the
    reason. Every value taken from the data is HTML-escaped.

    Parameters
    ----------
    run_dir
        A run folder written by ``territoire-geo recipe run`` (with ``manifest.json``).
    lang
        ``"fr"`` (default) or ``"en"``.
    out
        Report file (default ``<run_dir>/rapport.html``). The PNG figures go to
        ``figures/`` beside it (suffixed ``_en`` in English).
    overwrite
        Replace an existing report and figures.

    Returns
    -------
    pathlib.Path
        The report written.

    Raises
    ------
    ConfigError
        Unknown ``lang``.
    DataError
        ``run_dir`` is not a folder, or has no manifest (the run did not finish).
    ExportError
        The report or a figure exists and ``overwrite`` is false, or it cannot be written.
    """
    check_lang(lang)
    root = Path(run_dir)
    if not root.is_dir():
        raise DataError(f"{root} is not a run folder; give the folder written by 'territoire-geo recipe run'")
    html, figures = render_report(root, lang=lang)
    target = Path(out) if out is not None else root / REPORT
    suffix = "" if lang == "fr" else f"_{lang}"
    pngs = {target.parent / FIGURES / f"{Path(name).stem}{suffix}.png": png for name, png in figures.items()}
    for path in (target, *pngs):
        ensure_new(path, overwrite=overwrite)
    for path, png in pngs.items():
        write_bytes(path, png)
    write_bytes(target, html.encode("utf-8"))
    log.info("report written to %s (%d figures)", target, len(pngs))
    return target


def render_report(run_dir: str | os.PathLike[str], *, lang: str = "fr",
                  now: dt.datetime | None = None,
                  manifest: dict[str, Any] | None = None) -> tuple[str, dict[str, bytes]]:
    """The report HTML and its figures (name → PNG bytes), nothing written.

    ``now`` is the generation date printed; ``manifest`` replaces ``manifest.json``
    (``recipe rerun`` passes the original run's times so the report is reproduced).

    ``manifest`` (the recipe runner's, still in memory) is used instead of the
    folder's ``manifest.json``, so that the manifest is written only once the
    report is there too.

    Raises
    ------
    DataError
        If the folder has no manifest (the run did not finish) and none is given.
    """
    data = load_run(Path(run_dir), manifest)
    ctx = Ctx(data, check_lang(lang), source_line(data.manifest, lang))
    built = [_build(key, builder, ctx) for key, builder in _sections()]
    title, head = sections.header(ctx)
    moment = now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    html = page(lang=lang, title=title, header=head, key_figures=sections.key_figures(ctx), sections=built,
                footer=sections.footer(ctx, moment), lang_text=TEXT[lang])
    return html, _figures(built)


def _sections() -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Section builders in report order, with the TEXT key of their title."""
    return (("scores", sections.scores), ("contrib", sections.contributions), ("change", sections.change),
            ("zan", tables.zan), ("ndvi", sections.ndvi), ("plu", tables.plu), ("prov", tables.provenance))


def _build(key: str, builder: Callable[[Any], Any], ctx: Any) -> Any:
    """One section; a failure becomes an announced absent section, not a failed report."""
    try:
        return builder(ctx)
    except Exception as exc:  # a broken deliverable must not cost the official the whole report
        log.warning("report section %s failed", key, exc_info=True)
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        return Section(key, ctx.t[key], missing=ctx.t["why_failed"].format(error=error))


def _figures(sections: list[Any]) -> dict[str, bytes]:
    return {name: png for section in sections for name, png in section.figures.items()}



