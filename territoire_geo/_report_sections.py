"""The sections of the HTML run report, each built from whatever the run folder holds.

A section builder returns a :class:`~territoire_geo._report_html.Section` whose
``missing`` says, in plain words, why it is absent; figures it draws are returned
with it so the caller can also write them as PNG files.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from territoire_geo import _report_figures as figs
from territoire_geo._report_data import FILES, RunData, alert_zones, find_column, zan_summary
from territoire_geo._report_html import Safe, Section, absent, code, esc, figure, note, para, table
from territoire_geo._report_text import (
    CHANGE_NAMES,
    ISSUE_NAMES,
    TEXT,
    format_date,
    format_ha,
    format_number,
    format_percent,
)
from territoire_geo._scene_style import typezone_label

__all__ = ["SECTIONS", "Ctx", "footer", "header", "key_figures"]

_MAX_ROWS = 40
_SHA = 12


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


def _why(ctx: Ctx, role: str, *, recipe_key: str | None = None, recipe_has: str | None = None) -> str:
    """Why the file of ``role`` is not used: unreadable, not asked for by the recipe, or simply absent."""
    t, file = ctx.t, FILES[role]
    if role in ctx.data.problems:
        return t["why_unreadable"].format(file=file, error=ctx.data.problems[role])
    if recipe_key and recipe_has and not ctx.data.recipe.get(recipe_has):
        return t[recipe_key].format(name=ctx.data.recipe.get("name", "?"), file=file)
    return t["why_file"].format(file=file)


def _limited(rows: list[list[Any]], ctx: Ctx, file: str) -> tuple[list[list[Any]], str]:
    if len(rows) <= _MAX_ROWS:
        return rows, ""
    return rows[:_MAX_ROWS], para(ctx.t["more_rows"].format(n=len(rows) - _MAX_ROWS, file=file), "small")


def _text(value: Any) -> str:
    """Data as text; empty for None / NaN."""
    if value is None:
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


# ---------------------------------------------------------------- header, key figures, footer


def header(ctx: Ctx) -> tuple[str, Safe]:
    """The report title and the header block (territory, periods, run date, link to the 3D scene)."""
    t, recipe = ctx.t, ctx.data.recipe
    title = str(recipe.get("title") or t["default_title"].format(name=recipe.get("name", ctx.data.run_dir.name)))
    territory = recipe.get("territory") or {}
    where = [t["insee"].format(codes=", ".join(map(str, territory["insee"])))] if territory.get("insee") else []
    if territory.get("plu"):
        where.append(f"PLU {Path(str(territory['plu'])).name}")
    if territory.get("crs"):
        where.append(f"{territory['crs']}, {ctx.num(territory.get('resolution'), 0)} m")
    colon = " : " if ctx.lang == "fr" else ": "
    lines = [para(t["territory"] + colon + (" · ".join(where) or "—"), "meta")]
    periods = recipe.get("periods") or {}
    if periods.get("before") and periods.get("after"):
        lines.append(para(t["periods"].format(before=_period(periods["before"]), after=_period(periods["after"])),
                          "meta"))
    finished = format_date(ctx.data.manifest.get("finished"), ctx.lang, time=True)
    lines.append(para(t["run_done"].format(date=finished), "meta"))
    if ctx.data.scene:
        lines.append(Safe(f'<p class="meta link">{esc(t["scene_link"])} <a href="scene.html">scene.html</a></p>'))
    block = f'<header><p class="kicker">{esc(t["kicker"])}</p><h1>{esc(title)}</h1>{"".join(lines)}</header>'
    return title, Safe(block)


def _period(text: str) -> str:
    years = list(dict.fromkeys(part[:4] for part in str(text).split("/") if part))
    return "–".join(years) if years else str(text)


def key_figures(ctx: Ctx) -> Safe:
    """Cards with the headline numbers the run supports."""
    t, d = ctx.t, ctx.data
    cards: list[tuple[str, str]] = []
    if d.zan is not None:
        summary = zan_summary(d.zan)
        if summary is not None:
            total, protected = summary
            cards.append((ctx.ha(total), t["key_new"]))
            share = f" ({ctx.pct(protected / total)})" if total > 0 else ""
            cards.append((ctx.ha(protected) + share, t["key_an"]))
    if d.alerts is not None:
        cards.append((ctx.num(len(d.alerts)), t["key_alerts"]))
    if d.units is not None:
        excluded = figs.excluded_mask(d.units)
        cards.append((ctx.num(int((~excluded).sum())), t["key_units"]))
        if excluded.any():
            cards.append((ctx.num(int(excluded.sum())), t["key_excluded"]))
    if d.validation is not None:
        zones = sum(int(r.get("n", 0)) for r in d.validation.get("counts_by_typezone") or [])
        cards.append((ctx.num(zones), t["key_zones"]))
    if not cards:
        return Safe("")
    items = "".join(f'<div class="card"><div class="v">{esc(v)}</div><div class="l">{esc(label)}</div></div>'
                    for v, label in cards)
    return Safe(f'<section id="chiffres" class="key"><h2>{esc(t["key"])}</h2><div class="cards">{items}</div>'
                '</section>')


def footer(ctx: Ctx, now: dt.datetime) -> Safe:
    """Sources, generation date and software version."""
    from territoire_geo import __version__

    generated = ctx.t["generated"].format(date=format_date(now.isoformat(), ctx.lang, time=True),
                                          version=__version__)
    return Safe(para(ctx.source) + para(generated))


# ---------------------------------------------------------------- scores and contributions


def _why_units(ctx: Ctx) -> str:
    role = "units" if "units" in ctx.data.problems or "scores" not in ctx.data.problems else "scores"
    return _why(ctx, role, recipe_key="why_scores_recipe", recipe_has="scoring")


def scores(ctx: Ctx) -> Section:
    """Score map, top-ranked units, excluded units and ranking robustness."""
    t, d = ctx.t, ctx.data
    section = Section("scores", t["scores"])
    if d.units is None and d.sensitivity is None:
        section.missing = _why_units(ctx)
        return section
    parts: list[str] = []
    if d.units_from == "gpkg":
        png = figs.score_map(d.units, d.zoning, lang=ctx.lang, source=ctx.source)
        section.figures["carte_scores.png"] = png
        parts.append(figure(png, t["map_scores_title"], t["scores_caption"]))
    else:
        parts.append(absent(t["map_scores_title"], t["why_no_geometry"] if d.units is not None else _why_units(ctx)))
    if d.units is not None:
        parts += [_top_table(ctx, d.units), _excluded_table(ctx, d.units)]
    if d.sensitivity is not None:
        parts.append(_sensitivity_table(ctx, d.sensitivity))
    section.body = "".join(parts)
    return section


def _unit_cells(ctx: Ctx, row: pd.Series) -> list[Any]:
    area = row.get("area_ha")
    if area is None and row.get("geometry") is not None:
        area = row["geometry"].area / 10_000
    return [figs.unit_name(row), typezone_label(row.get("TYPEZONE"), ctx.lang), ctx.ha(area)]


def _top_table(ctx: Ctx, units: pd.DataFrame) -> str:
    t = ctx.t
    rows = []
    for position, (_, row) in enumerate(figs._ranked(units).head(10).iterrows(), start=1):
        rank = pd.to_numeric(pd.Series([row.get("rank")]), errors="coerce").iat[0]
        reliability = row.get("reliability")
        rows.append([ctx.num(rank if pd.notna(rank) else position), *_unit_cells(ctx, row),
                     ctx.num(row.get("score"), 1), ctx.pct(reliability)])
    heads = [t["col_rank"], t["col_unit"], t["col_type"], t["col_area"], t["col_score"], t["col_rel"]]
    return f"<h3>{esc(t['top_table'])}</h3>" + table(heads, rows, numeric=(0, 3, 4, 5))


def _excluded_table(ctx: Ctx, units: pd.DataFrame) -> str:
    t = ctx.t
    excluded = units[figs.excluded_mask(units)]
    if excluded.empty:
        return ""
    rows = [[*_unit_cells(ctx, row), _text(row.get("exclusion"))] for _, row in excluded.iterrows()]
    rows, more = _limited(rows, ctx, FILES["units"])
    heads = [t["col_unit"], t["col_type"], t["col_area"], t["col_reason"]]
    return f"<h3>{esc(t['excl_table'])}</h3>" + table(heads, rows, numeric=(2,)) + more


def _sensitivity_table(ctx: Ctx, frame: pd.DataFrame) -> str:
    t = ctx.t
    cols = {k: find_column(frame, (k,)) for k in ("rank_min", "rank_median", "rank_max", "top_k_share")}
    names = _sensitivity_names(frame, ctx.data.units)
    if names is None or cols["rank_median"] is None:
        return absent(t["sens_table"], t["why_columns"].format(file=FILES["sensitivity"],
                                                               columns="unit, rank_median"))
    ordered = frame.assign(_m=pd.to_numeric(frame[cols["rank_median"]], errors="coerce"), _name=names)
    rows = []
    for _, row in ordered.dropna(subset="_m").sort_values("_m").head(10).iterrows():
        ranks = " – ".join(_rank_text(ctx, row.get(cols[k])) for k in ("rank_min", "rank_median", "rank_max")
                           if cols[k])
        share = row.get(cols["top_k_share"]) if cols["top_k_share"] else None
        rows.append([_text(row["_name"]), ranks, ctx.pct(share)])
    heads = [t["col_unit"], t["col_ranks"], t["col_topk"]]
    return (f"<h3>{esc(t['sens_table'])}</h3>" + table(heads, rows, numeric=(1, 2))
            + para(t["sens_caption"], "small"))


def _sensitivity_names(frame: pd.DataFrame, units: pd.DataFrame | None) -> pd.Series | None:
    """Unit names of the sensitivity rows: a ``unit`` column, else ``unit_id`` / ``rank`` looked up in the units."""
    column = find_column(frame, ("unit", "LIBELLE", "unite", "name"))
    if column is not None:
        return frame[column].astype("string")
    for key in ("unit_id", "rank"):
        if key in frame.columns and units is not None and key in units.columns:
            lookup = {str(k): figs.unit_name(row) for k, (_, row) in zip(units[key], units.iterrows(), strict=True)
                      if pd.notna(k)}
            return frame[key].map(lambda v: lookup.get(str(v), _text(v)))
        if key == "unit_id" and key in frame.columns:
            return frame[key].astype("string")
    return None


def _rank_text(ctx: Ctx, value: Any) -> str:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iat[0]
    return ctx.num(number, 0 if pd.isna(number) or float(number).is_integer() else 1)


def contributions(ctx: Ctx) -> Section:
    """Stacked bars of the criteria's contributions to the best units' scores."""
    t, d = ctx.t, ctx.data
    section = Section("contributions", t["contrib"])
    if d.units is None:
        section.missing = _why_units(ctx)
        return section
    png = figs.contributions_chart(d.units, lang=ctx.lang, source=ctx.source)
    if png is None:
        section.missing = t["why_no_contrib"]
        return section
    section.figures["contributions.png"] = png
    section.body = figure(png, t["contrib_title"], t["contrib_caption"])
    return section


# ---------------------------------------------------------------- change alerts and ZAN


def change(ctx: Ctx) -> Section:
    """Map and table of the change alerts over the zoning."""
    t, d = ctx.t, ctx.data
    section = Section("changements", t["change"])
    if d.alerts is None:
        section.missing = _why(ctx, "alerts", recipe_key="why_change_recipe", recipe_has="imagery")
        return section
    png = figs.change_map(d.alerts, d.zoning, lang=ctx.lang, source=ctx.source)
    section.figures["carte_alertes.png"] = png
    parts = [figure(png, t["map_change_title"], t["change_caption"]), note(t["alert_note"])]
    if not d.alerts.empty:
        parts.append(_alerts_table(ctx))
    if d.classes is not None:
        parts.append(_classes_table(ctx, d.classes))
    section.body = "".join(parts)
    return section


def _alerts_table(ctx: Ctx) -> str:
    t, alerts = ctx.t, ctx.data.alerts
    zones = alert_zones(alerts, ctx.data.zoning) if ctx.data.zoning is not None else [[] for _ in range(len(alerts))]
    names = CHANGE_NAMES[ctx.lang]
    rows = []
    for number, ((_, row), touched) in enumerate(zip(alerts.iterrows(), zones, strict=True), start=1):
        kind = pd.to_numeric(pd.Series([row.get("class")]), errors="coerce").iat[0]
        label = names.get(int(kind), _text(row.get("class_name"))) if pd.notna(kind) else _text(row.get("class_name"))
        area = row.get("area_ha", row.geometry.area / 10_000)
        where = ", ".join(f"{name} ({kind_})" for name, kind_ in touched) or t["outside"]
        ndvi = f"{ctx.num(row.get('mean_before'), 2)} → {ctx.num(row.get('mean_after'), 2)}"
        first = row.get("first_seen")
        rows.append([ctx.num(number), label, ctx.ha(area), where,
                     format_date(first, ctx.lang) if pd.notna(first) else "—", ndvi])
    rows, more = _limited(rows, ctx, FILES["alerts"])
    heads = [t["col_no"], t["col_class"], t["col_area"], t["col_zone"], t["col_first"], t["col_ndvi"]]
    return f"<h3>{esc(t['alerts_table'])}</h3>" + table(heads, rows, numeric=(0, 2, 5)) + more


def _classes_table(ctx: Ctx, frame: pd.DataFrame) -> str:
    t, names = ctx.t, CHANGE_NAMES[ctx.lang]
    rows = []
    for _, row in frame.iterrows():
        kind = pd.to_numeric(pd.Series([row.get("class")]), errors="coerce").iat[0]
        label = names.get(int(kind), _text(row.get("name"))) if pd.notna(kind) else _text(row.get("name"))
        rows.append([label, ctx.ha(row.get("area_ha")), ctx.num(row.get("pixels"))])
    heads = [t["col_class"], t["col_area"], t["col_pixels"]]
    return f"<h3>{esc(t['class_table'])}</h3>" + table(heads, rows, numeric=(1, 2))


def zan(ctx: Ctx) -> Section:
    """New artificial surface by commune, zone type and year, with the share in A and N zones."""
    t, d = ctx.t, ctx.data
    section = Section("zan", t["zan"])
    if d.zan is None:
        section.missing = (_why(ctx, "zan") if "zan" in d.problems else t["why_zan"])
        return section
    parts: list[str] = [para(t["zan_caption_csv" if d.zan_from == "csv" else "zan_caption_alerts"], "small")]
    if d.zan.empty:
        parts.append(para(t["zan_none"]))
    else:
        parts.append(_zan_table(ctx, d.zan))
        summary = zan_summary(d.zan)
        if summary is not None and summary[0] > 0:
            total, protected = summary
            parts.append(para(t["zan_an"].format(ha=ctx.ha(protected), share=ctx.pct(protected / total),
                                                 total=ctx.ha(total))))
    section.body = "".join(parts)
    return section


_ZAN_TEXT = {"commune": "col_commune", "typezone": "col_type", "year": "col_year", "annee": "col_year",
             "period": "col_period", "zones": "col_zone"}
_ZAN_NUMBERS = {"area_ha": "col_area", "n_alerts": "col_alerts", "share": "col_share",
                "share_of_total": "col_share", "share_a_n": "col_share_an"}


def _zan_table(ctx: Ctx, frame: pd.DataFrame) -> str:
    """The ZAN table, long (one row per TYPEZONE) or wide (``area_ha_<TYPEZONE>`` columns), with a total row."""
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    kinds = {c: _zan_kind(c, frame[c]) for c in columns}
    heads = [_zan_head(ctx, c) for c in columns]
    rows = [[_zan_cell(ctx, c, kinds[c], row[c]) for c in columns] for _, row in frame.iterrows()]
    rows, more = _limited(rows, ctx, FILES["zan"] if ctx.data.zan_from == "csv" else FILES["alerts"])
    numeric = [i for i, c in enumerate(columns) if kinds[c] != "text"]
    return table(heads, rows, numeric=numeric, total=_zan_total(ctx, frame, kinds)) + more


def _zan_kind(column: str, values: pd.Series) -> str:
    name = column.lower()
    if name in _ZAN_TEXT or not pd.api.types.is_numeric_dtype(values):
        return "text"
    if name.endswith("_ha") or name.startswith("area_ha"):
        return "area"
    if "share" in name or "part" in name or name.endswith("_pct"):
        return "fraction" if pd.to_numeric(values, errors="coerce").abs().max() <= 1 else "percent"
    return "count" if name.startswith("n_") else "number"


def _zan_head(ctx: Ctx, column: str) -> str:
    t, name = ctx.t, column.lower()
    if name in _ZAN_TEXT:
        return t[_ZAN_TEXT[name]]
    if name in _ZAN_NUMBERS:
        return t[_ZAN_NUMBERS[name]]
    if name.startswith("area_ha_"):
        code_ = column[len("area_ha_"):]
        return t["of_which"].format(what=t["outside"] if code_ == "outside" else code_)
    return column


def _zan_cell(ctx: Ctx, column: str, kind: str, value: Any) -> str:
    if column.lower() == "typezone":
        return typezone_label(value, ctx.lang) if _text(value) else ctx.t["outside"]
    if kind == "text":
        return _text(value)
    if kind == "area":
        return ctx.ha(value)
    if kind == "fraction":
        return ctx.pct(value)
    if kind == "percent":
        return f"{ctx.num(value, 1)}\u202f%" if ctx.lang == "fr" else f"{ctx.num(value, 1)}%"
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iat[0]
    return ctx.num(number, 0 if kind == "count" or (pd.notna(number) and float(number).is_integer()) else 2)


def _zan_total(ctx: Ctx, frame: pd.DataFrame, kinds: dict[str, str]) -> list[str] | None:
    summary = zan_summary(frame)
    if summary is None:
        return None
    total, protected = summary
    cells = []
    for column, kind in kinds.items():
        values = pd.to_numeric(frame[column], errors="coerce")
        if kind == "area":
            cells.append(ctx.ha(values.sum()))
        elif kind == "count":
            cells.append(ctx.num(values.sum()))
        elif column.lower() == "share_a_n" and total > 0:
            cells.append(ctx.pct(protected / total))
        elif kind in ("fraction", "percent") and column.lower() in ("share", "share_of_total"):
            cells.append(ctx.pct(1.0))
        else:
            cells.append("")
    cells[0] = ctx.t["total"]
    return cells


# ---------------------------------------------------------------- NDVI


def ndvi(ctx: Ctx) -> Section:
    """NDVI time series by zone type and by RPG crop group."""
    from territoire_geo._report_data import ndvi_parcel_series, ndvi_zone_series

    t, d = ctx.t, ctx.data
    section = Section("ndvi", t["ndvi"])
    if d.ndvi_zones is None and d.ndvi_parcels is None:
        problems = [r for r in ("ndvi_zones", "ndvi_parcels") if r in d.problems]
        section.missing = _why(ctx, problems[0]) if problems else t["why_ndvi"]
        return section
    periods, parts = d.recipe.get("periods") or {}, []
    if d.ndvi_zones is not None:
        found = ndvi_zone_series(d.ndvi_zones, d.zoning)
        if found is None:
            parts.append(absent(t["ndvi_zones_title"], t["why_columns"].format(
                file=FILES["ndvi_zones"], columns="date, zone, ndvi_mean")))
        else:
            png = figs.ndvi_zone_chart(found[0], found[1], periods=periods, lang=ctx.lang, source=ctx.source)
            section.figures["ndvi_zones.png"] = png
            parts.append(figure(png, t["ndvi_zones_title"], t["ndvi_caption"]))
    if d.ndvi_parcels is not None:
        series = ndvi_parcel_series(d.ndvi_parcels)
        if series is None:
            parts.append(absent(t["ndvi_parcels_title"], t["why_columns"].format(
                file=FILES["ndvi_parcels"], columns="date, ndvi_mean")))
        else:
            png = figs.ndvi_parcel_chart(series, periods=periods, lang=ctx.lang, source=ctx.source)
            section.figures["ndvi_parcelles.png"] = png
            parts.append(figure(png, t["ndvi_parcels_title"], f"{t['ndvi_caption']} {t['ndvi_parcels_caption']}"))
    section.body = "".join(parts)
    return section


# ---------------------------------------------------------------- PLU validation


def plu(ctx: Ctx) -> Section:
    """Counts by zone type, overlaps, gaps, repairs, checks and encodings of the PLU."""
    t, report = ctx.t, ctx.data.validation
    section = Section("plu", t["plu"])
    if report is None:
        has_plu = bool((ctx.data.recipe.get("territory") or {}).get("plu"))
        section.missing = _why(ctx, "validation") if has_plu or "validation" in ctx.data.problems else t["why_plu"]
        return section
    verdict = t["blocking"] if report.get("blocking") else t["not_blocking"]
    parts = [para(t["plu_summary"].format(version=report.get("cnig_version") or "?", verdict=verdict))]
    if report.get("blocking"):
        parts[0] = note(t["plu_summary"].format(version=report.get("cnig_version") or "?", verdict=verdict))
    parts += [_counts_table(ctx, report), _topology(ctx, report), _issues_table(ctx, report),
              _encodings_table(ctx, report)]
    section.body = "".join(parts)
    return section


def _counts_table(ctx: Ctx, report: dict[str, Any]) -> str:
    t = ctx.t
    counts = report.get("counts_by_typezone") or []
    rows = [[typezone_label(r.get("TYPEZONE"), ctx.lang), ctx.num(r.get("n")), ctx.ha(r.get("area_ha"))]
            for r in counts]
    total = [t["total"], ctx.num(sum(float(r.get("n") or 0) for r in counts)),
             ctx.ha(sum(float(r.get("area_ha") or 0) for r in counts))]
    return f"<h3>{esc(t['plu_counts'])}</h3>" + table([t["col_type"], t["col_n"], t["col_area"]], rows,
                                                      numeric=(1, 2), total=total)


def _topology(ctx: Ctx, report: dict[str, Any]) -> str:
    t, lang = ctx.t, ctx.lang
    overlaps, gaps = report.get("overlaps") or {}, report.get("gaps") or {}
    repairs = [f"{ISSUE_NAMES[lang].get(i['code'], i['code'])} ({i.get('layer', '')}) : {ctx.num(i.get('count'))}"
               if lang == "fr" else
               f"{ISSUE_NAMES[lang].get(i['code'], i['code'])} ({i.get('layer', '')}): {ctx.num(i.get('count'))}"
               for i in report.get("issues") or [] if i.get("severity") == "info"
               and i.get("code") in ("z_coordinates", "invalid_geometry", "encoding_repaired")]
    fixed = sum(int(e.get("mojibake_fixed") or 0) for e in (report.get("encodings") or {}).values())
    if fixed:
        repairs.append(f"{ISSUE_NAMES[lang]['encoding_repaired']} : {ctx.num(fixed)}")
    rows = [[t["overlaps"], t["pairs"].format(n=ctx.num(overlaps.get("count")),
                                              area=ctx.ha((overlaps.get("area_m2") or 0) / 10_000))],
            [t["gaps"], t["holes"].format(n=ctx.num(gaps.get("count")),
                                          area=format_number(gaps.get("area_m2"), 1, lang, "m²"))],
            [t["repairs"], " · ".join(repairs) or t["none"]]]
    return table(["", ""], rows).replace("<thead><tr><th></th><th></th></tr></thead>", "")


def _issues_table(ctx: Ctx, report: dict[str, Any]) -> str:
    t, names = ctx.t, ISSUE_NAMES[ctx.lang]
    order = {"error": 0, "warning": 1, "info": 2}
    issues = sorted(report.get("issues") or [], key=lambda i: order.get(i.get("severity"), 3))
    rows = [[t.get(f"severity_{i.get('severity')}", _text(i.get("severity"))), names.get(i.get("code"), i.get("code")),
             _text(i.get("layer")), ctx.num(i.get("count")),
             format_number(i.get("area_m2"), 0, ctx.lang, "m²") if i.get("area_m2") is not None else "",
             _text(i.get("message"))] for i in issues]
    rows, more = _limited(rows, ctx, FILES["validation"])
    heads = [t["col_severity"], t["col_check"], t["col_layer"], t["col_n"], t["col_area"], t["col_message"]]
    return f"<h3>{esc(t['plu_issues'])}</h3>" + table(heads, rows, numeric=(3, 4)) + more


def _encodings_table(ctx: Ctx, report: dict[str, Any]) -> str:
    t = ctx.t
    encodings = report.get("encodings") or {}
    if not encodings:
        return ""
    rows = [[layer, _text(e.get("declared")) or "—", _text(e.get("found")) or "—", ctx.num(e.get("mojibake_fixed"))]
            for layer, e in encodings.items()]
    heads = [t["col_layer"], t["col_declared"], t["col_found"], t["col_fixed"]]
    return f"<h3>{esc(t['plu_enc'])}</h3>" + table(heads, rows, numeric=(3,))


# ---------------------------------------------------------------- provenance


def provenance(ctx: Ctx) -> Section:
    """Recipe, dates, steps, inputs with checksums, imagery items, outputs, software, warnings."""
    t, m = ctx.t, ctx.data.manifest
    recipe = ctx.data.recipe
    section = Section("provenance", t["prov"])
    sha = m.get("recipe_sha256")
    recipe_cells = [f"{recipe.get('name', '?')} — {recipe.get('title') or ''}".rstrip(" —"),
                    Path(str(m.get("recipe_file") or "")).name or "—"]
    times = f"{format_date(m.get('started'), ctx.lang, time=True)} → {format_date(m.get('finished'), ctx.lang, time=True)}"
    rows = [[t["prov_recipe"], " · ".join(recipe_cells)], [t["prov_times"], times]]
    if sha:
        rows.append(["SHA-256", code(str(sha)[:_SHA] + "…", sha)])
    parts = [table(["", ""], rows).replace("<thead><tr><th></th><th></th></tr></thead>", ""),
             _steps_table(ctx, m), _inputs_table(ctx, m), _items_table(ctx, m), _outputs_table(ctx, m),
             _software(ctx, m)]
    if m.get("warnings"):
        items = "".join(f"<li>{esc(w)}</li>" for w in m["warnings"])
        parts.append(f"<h3>{esc(t['prov_warnings'])}</h3><ul>{items}</ul>")
    parts.append(para(t["prov_caption"], "small"))
    section.body = "".join(parts)
    return section


def _sha_cell(value: Any) -> Any:
    return code(str(value)[:_SHA] + "…", value) if value else "—"


def _bytes(ctx: Ctx, size: Any) -> str:
    units = ("o", "ko", "Mo", "Go") if ctx.lang == "fr" else ("B", "kB", "MB", "GB")
    number, unit = float(size or 0), 0
    while number >= 1000 and unit < len(units) - 1:
        number, unit = number / 1000, unit + 1
    return format_number(number, 0 if unit == 0 else 1, ctx.lang, units[unit])


def _steps_table(ctx: Ctx, m: dict[str, Any]) -> str:
    t = ctx.t
    rows = [[_text(s.get("name")), f"{format_number(s.get('seconds'), 1, ctx.lang, 's')}"
             + (f" {t['cached']}" if s.get("cached") else "")] for s in m.get("steps") or []]
    return f"<h3>{esc(t['prov_steps'])}</h3>" + table([t["col_step"], t["col_seconds"]], rows, numeric=(1,)) \
        if rows else ""


def _inputs_table(ctx: Ctx, m: dict[str, Any]) -> str:
    t = ctx.t
    rows = [[_text(i.get("role")), code(Path(str(i.get("path"))).name, i.get("path")), _sha_cell(i.get("sha256")),
             _bytes(ctx, i.get("bytes"))] for i in m.get("inputs") or []]
    heads = [t["col_role"], t["col_path"], t["col_sha"], t["col_size"]]
    return f"<h3>{esc(t['prov_inputs'])}</h3>" + table(heads, rows, numeric=(3,)) if rows else ""


def _items_table(ctx: Ctx, m: dict[str, Any]) -> str:
    t = ctx.t
    rows = [[code(_text(i.get("id"))), format_date(i.get("datetime"), ctx.lang), _text(i.get("collection")),
             _text(i.get("processing_baseline")) or "—", format_number(i.get("scale"), 4, ctx.lang),
             format_number(i.get("offset"), 2, ctx.lang)] for i in m.get("items") or []]
    heads = [t["col_id"], t["col_date"], t["col_collection"], t["col_baseline"], t["col_scale"], t["col_offset"]]
    return f"<h3>{esc(t['prov_items'])}</h3>" + table(heads, rows, numeric=(3, 4, 5)) if rows else ""


def _outputs_table(ctx: Ctx, m: dict[str, Any]) -> str:
    t = ctx.t
    rows = [[code(_text(o.get("path"))), _sha_cell(o.get("sha256")), _bytes(ctx, o.get("bytes"))]
            for o in m.get("outputs") or []]
    heads = [t["col_path"], t["col_sha"], t["col_size"]]
    return f"<h3>{esc(t['prov_outputs'])}</h3>" + table(heads, rows, numeric=(2,)) if rows else ""


def _software(ctx: Ctx, m: dict[str, Any]) -> str:
    items = "".join(f"<div>{esc(name)} <code>{esc(version)}</code></div>"
                    for name, version in (m.get("software") or {}).items())
    return f"<h3>{esc(ctx.t['prov_soft'])}</h3><div class=\"soft\">{items}</div>" if items else ""


#: Section builders in report order, with the TEXT key of their title.
SECTIONS: tuple[tuple[str, Callable[[Ctx], Section]], ...] = (
    ("scores", scores), ("contrib", contributions), ("change", change), ("zan", zan), ("ndvi", ndvi),
    ("plu", plu), ("prov", provenance),
)
