"""The context, header and figure sections of the HTML run report (scores, contributions, changes, NDVI).

A section builder takes a :class:`Ctx` and returns a
:class:`~territoire_geo.present.report._html.Section` whose ``missing`` says, in plain
words, why it is absent; the figures it draws come with it so that the caller can
also write them as PNG files. The tabular sections are in
:mod:`territoire_geo.present.report`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from territoire_geo._version import __version__
from territoire_geo.present._style import typezone_label
from territoire_geo.present.report import _figures as figs
from territoire_geo.present.report._context import Ctx, limited, text_of, why
from territoire_geo.present.report._data import (
    FILES,
    alert_zones,
    criterion_labels,
    find_column,
    ndvi_parcel_series,
    ndvi_zone_series,
    zan_summary,
)
from territoire_geo.present.report._html import Safe, Section, absent, esc, figure, note, para, table
from territoire_geo.present.report._text import (
    CHANGE_NAMES,
    format_date,
    format_percent,
)

__all__ = ["change", "contributions", "footer", "header", "key_figures", "ndvi", "scores"]

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
            cards.append((ctx.ha(protected), t["key_an"] + share))
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
    generated = ctx.t["generated"].format(date=format_date(now.isoformat(), ctx.lang, time=True),
                                          version=__version__)
    return Safe(para(ctx.source) + para(generated))


# ---------------------------------------------------------------- scores and contributions


def _why_units(ctx: Ctx) -> str:
    role = "units" if "units" in ctx.data.problems or "scores" not in ctx.data.problems else "scores"
    return why(ctx, role, recipe_key="why_scores_recipe", recipe_has="scoring")


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
    for position, (_, row) in enumerate(figs.ranked(units).head(10).iterrows(), start=1):
        rank = pd.to_numeric(pd.Series([row.get("rank")]), errors="coerce").iat[0]
        reliability = row.get("reliability")
        rows.append([ctx.num(rank if pd.notna(rank) else position), *_unit_cells(ctx, row),
                     ctx.num(row.get("score"), 1), format_percent(reliability, ctx.lang, 0)])
    heads = [t["col_rank"], t["col_unit"], t["col_type"], t["col_area"], t["col_score"], t["col_rel"]]
    return f"<h3>{esc(t['top_table'])}</h3>" + table(heads, rows, numeric=(0, 3, 4, 5))


def _excluded_table(ctx: Ctx, units: pd.DataFrame) -> str:
    """Excluded units summarised by reason: how many, how many hectares."""
    t = ctx.t
    excluded = units[figs.excluded_mask(units)]
    if excluded.empty:
        return ""
    reasons = excluded["exclusion"].map(text_of) if "exclusion" in excluded.columns else \
        pd.Series("", index=excluded.index)
    if "area_ha" in excluded.columns:
        areas = pd.to_numeric(excluded["area_ha"], errors="coerce")
    else:
        areas = pd.Series(excluded.geometry.area / 10_000 if "geometry" in excluded.columns else np.nan,
                          index=excluded.index)
    groups = pd.DataFrame({"reason": reasons.replace("", "—"), "area": areas}).groupby("reason")
    summary = groups.agg(n=("area", "size"), area=("area", "sum")).sort_values("area", ascending=False)
    rows = [[reason, ctx.num(row["n"]), ctx.ha(row["area"])] for reason, row in summary.iterrows()]
    total = [t["total"], ctx.num(summary["n"].sum()), ctx.ha(summary["area"].sum())]
    heads = [t["col_reason"], t["col_units"], t["col_area"]]
    return f"<h3>{esc(t['excl_table'])}</h3>" + table(heads, rows, numeric=(1, 2), total=total)


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
        rows.append([text_of(row["_name"]), ranks, format_percent(share, ctx.lang, 0)])
    heads = [t["col_unit"], t["col_ranks"], t["col_topk"]]
    return (f"<h3>{esc(t['sens_table'])}</h3>" + table(heads, rows, numeric=(1, 2))
            + para(t["sens_caption"], "small"))


def _sensitivity_names(frame: pd.DataFrame, units: pd.DataFrame | None) -> pd.Series | None:
    """Unit names of the sensitivity rows: a ``unit`` column, else ``unit_id`` / ``rank`` looked up in the units."""
    column = find_column(frame, ("unit", "LIBELLE", "unite", "name"))
    if column is not None:
        return frame[column].astype("string")
    key = next((k for k in ("unit_id", "rank") if k in frame.columns), None)
    if key is None:
        return None
    if units is None or key not in units.columns:
        return frame[key].astype("string") if key == "unit_id" else None
    lookup = {str(k): figs.unit_name(row) for k, (_, row) in zip(units[key], units.iterrows(), strict=True)
              if pd.notna(k)}
    return frame[key].map(lambda v: lookup.get(str(v), text_of(v)))


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
    png = figs.contributions_chart(d.units, lang=ctx.lang, source=ctx.source, labels=criterion_labels(d.criteria))
    if png is None:
        section.missing = t["why_no_contrib"]
        return section
    section.figures["contributions.png"] = png
    section.body = figure(png, t["contrib_title"], t["contrib_caption"])
    return section


# ---------------------------------------------------------------- change alerts


def change(ctx: Ctx) -> Section:
    """Map and table of the change alerts over the zoning."""
    t, d = ctx.t, ctx.data
    section = Section("changements", t["change"])
    if d.alerts is None:
        section.missing = why(ctx, "alerts", recipe_key="why_change_recipe", recipe_has="imagery")
        return section
    png = figs.change_map(d.alerts, d.zoning, lang=ctx.lang, source=ctx.source)
    section.figures["carte_alertes.png"] = png
    parts = [figure(png, t["map_change_title"], t["change_caption"]), note(t["alert_note"])]
    parts.append(para(t["no_alerts"]) if d.alerts.empty else _alerts_table(ctx))
    if d.classes is not None:
        parts.append(_classes_table(ctx, d.classes))
    section.body = "".join(parts)
    return section


def _alerts_table(ctx: Ctx) -> str:
    t, alerts = ctx.t, ctx.data.alerts
    zoning = ctx.data.zoning
    zones = alert_zones(alerts, zoning) if zoning is not None else [[] for _ in range(len(alerts))]
    names = CHANGE_NAMES[ctx.lang]
    rows = []
    for number, ((_, row), touched) in enumerate(zip(alerts.iterrows(), zones, strict=True), start=1):
        label = _class_label(row, names, "class_name")
        area = row.get("area_ha", row.geometry.area / 10_000)
        where = ", ".join(f"{name} ({kind_})" for name, kind_ in touched) or t["outside"]
        ndvi = f"{ctx.num(row.get('mean_before'), 2)} → {ctx.num(row.get('mean_after'), 2)}"
        first = row.get("first_seen")
        rows.append([ctx.num(number), label, ctx.ha(area), where,
                     format_date(first, ctx.lang) if pd.notna(first) else "—", ndvi])
    rows, more = limited(rows, ctx, FILES["alerts"])
    heads = [t["col_no"], t["col_class"], t["col_area"], t["col_zone"], t["col_first"], t["col_ndvi"]]
    return f"<h3>{esc(t['alerts_table'])}</h3>" + table(heads, rows, numeric=(0, 2, 5)) + more


def _class_label(row: pd.Series, names: dict[int, str], name_column: str) -> str:
    """The translated name of a change class (the file's own name for unknown codes)."""
    kind = pd.to_numeric(pd.Series([row.get("class")]), errors="coerce").iat[0]
    fallback = text_of(row.get(name_column))
    return names.get(int(kind), fallback) if pd.notna(kind) else fallback


def _classes_table(ctx: Ctx, frame: pd.DataFrame) -> str:
    t, names = ctx.t, CHANGE_NAMES[ctx.lang]
    rows = []
    name_column = "class_name" if "class_name" in frame.columns else "name"  # runs before the one summary
    present = pd.to_numeric(frame.get("pixels"), errors="coerce").fillna(1) > 0 if "pixels" in frame else None
    for _, row in (frame[present] if present is not None else frame).iterrows():
        label = _class_label(row, names, name_column)
        rows.append([label, ctx.ha(row.get("area_ha")), ctx.num(row.get("pixels"))])
    heads = [t["col_class"], t["col_area"], t["col_pixels"]]
    return f"<h3>{esc(t['class_table'])}</h3>" + table(heads, rows, numeric=(1, 2))


# ---------------------------------------------------------------- NDVI


def ndvi(ctx: Ctx) -> Section:
    """NDVI time series by zone type and by RPG crop group."""
    t, d = ctx.t, ctx.data
    section = Section("ndvi", t["ndvi"])
    if d.ndvi_zones is None and d.ndvi_parcels is None:
        problems = [r for r in ("ndvi_zones", "ndvi_parcels") if r in d.problems]
        section.missing = why(ctx, problems[0]) if problems else t["why_ndvi"]
        return section
    periods = d.recipe.get("periods") or {}
    parts = [absent(t[f"{role}_title"], why(ctx, role)) for role in ("ndvi_zones", "ndvi_parcels")
             if role in d.problems]
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


