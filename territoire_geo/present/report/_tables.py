"""The tabular sections of the HTML run report: ZAN accounts, PLU validation, provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from territoire_geo.present._style import format_number, typezone_label
from territoire_geo.present.report._context import Ctx, limited, text_of, why
from territoire_geo.present.report._data import FILES, TYPEZONE_ORDER, zan_summary
from territoire_geo.present.report._html import Section, code, esc, note, para, table
from territoire_geo.present.report._text import ISSUE_NAMES, format_date

__all__ = ["plu", "provenance", "zan"]

_SHA = 12


# ---------------------------------------------------------------- ZAN


def zan(ctx: Ctx) -> Section:
    """New artificial surface by commune, zone type and year, with the share in A and N zones."""
    t, d = ctx.t, ctx.data
    section = Section("zan", t["zan"])
    if d.zan is None:
        section.missing = why(ctx, "zan") if "zan" in d.problems else t["why_zan"]
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
    if d.au_zones is not None and not d.au_zones.empty:
        parts.append(_au_table(ctx, d.au_zones))
    section.body = "".join(parts)
    return section


def _au_table(ctx: Ctx, zones: pd.DataFrame) -> str:
    """AU zones: area, surface built since the plan's approval, share and status."""
    t = ctx.t
    rows = []
    for i in range(len(zones)):
        row = zones.iloc[i]
        status = text_of(row.get("status"))
        rows.append([text_of(row.get("LIBELLE")), typezone_label(row.get("TYPEZONE"), ctx.lang),
                     format_date(text_of(row.get("approval_date"))[:10] or None, ctx.lang), ctx.ha(row.get("area_ha")),
                     ctx.ha(row.get("built_since_approval_ha")), ctx.pct(row.get("built_share")),
                     t.get(f"status_{status}", status)])
    rows, more = limited(rows, ctx, FILES["au_zones"])
    heads = [t["col_unit"], t["col_type"], t["col_approval"], t["col_area"], t["col_built"], t["col_built_share"],
             t["col_status"]]
    return (f"<h3>{esc(t['au_table'])}</h3>" + table(heads, rows, numeric=(3, 4, 5)) + more
            + para(t["au_caption"], "small"))


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
    rows = [[_zan_cell(ctx, c, kinds[c], frame[c].iat[i]) for c in columns] for i in range(len(frame))]
    rows, more = limited(rows, ctx, FILES["zan"] if ctx.data.zan_from == "csv" else FILES["alerts"])
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
        return typezone_label(value, ctx.lang) if text_of(value) else ctx.t["outside"]
    if kind == "text":
        return text_of(value)
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


# ---------------------------------------------------------------- PLU validation


def plu(ctx: Ctx) -> Section:
    """Counts by zone type, overlaps, gaps, repairs, checks and encodings of the PLU."""
    t, report = ctx.t, ctx.data.validation
    section = Section("plu", t["plu"])
    if report is None:
        has_plu = bool((ctx.data.recipe.get("territory") or {}).get("plu"))
        section.missing = why(ctx, "validation") if has_plu or "validation" in ctx.data.problems else t["why_plu"]
        return section
    verdict = t["blocking"] if report.get("blocking") else t["not_blocking"]
    summary = t["plu_summary"].format(version=report.get("cnig_version") or "?", verdict=verdict)
    parts = [note(summary) if report.get("blocking") else para(summary)]
    parts += [_counts_table(ctx, report), _topology(ctx, report), _issues_table(ctx, report),
              _encodings_table(ctx, report)]
    section.body = "".join(parts)
    return section


def _counts_table(ctx: Ctx, report: dict[str, Any]) -> str:
    t = ctx.t
    order = {code_: i for i, code_ in enumerate(TYPEZONE_ORDER)}
    counts = sorted(report.get("counts_by_typezone") or [],
                    key=lambda r: (order.get(str(r.get("TYPEZONE")), len(order)), str(r.get("TYPEZONE"))))
    rows = [[typezone_label(r.get("TYPEZONE"), ctx.lang), ctx.num(r.get("n")), ctx.ha(r.get("area_ha"))]
            for r in counts]
    total = [t["total"], ctx.num(sum(float(r.get("n") or 0) for r in counts)),
             ctx.ha(sum(float(r.get("area_ha") or 0) for r in counts))]
    return f"<h3>{esc(t['plu_counts'])}</h3>" + table([t["col_type"], t["col_n"], t["col_area"]], rows,
                                                      numeric=(1, 2), total=total)


def _topology(ctx: Ctx, report: dict[str, Any]) -> str:
    t, lang = ctx.t, ctx.lang
    overlaps, gaps = report.get("overlaps") or {}, report.get("gaps") or {}
    repaired: dict[str, list[int]] = {}
    for issue in report.get("issues") or []:
        if issue.get("severity") == "info" and issue.get("code") in ("z_coordinates", "invalid_geometry",
                                                                     "encoding_repaired"):
            repaired.setdefault(issue["code"], []).append(int(issue.get("count") or 0))
    fixed = sum(int(e.get("mojibake_fixed") or 0) for e in (report.get("encodings") or {}).values())
    if fixed and "encoding_repaired" not in repaired:
        repaired["encoding_repaired"] = [fixed]
    colon = " : " if lang == "fr" else ": "
    repairs = [f"{ISSUE_NAMES[lang].get(code_, code_)}{colon}{ctx.num(sum(counts))} "
               f"({t['in_layers'].format(n=len(counts))})" for code_, counts in repaired.items()]
    rows = [[t["overlaps"], t["pairs"].format(n=ctx.num(overlaps.get("count")),
                                              area=ctx.ha((overlaps.get("area_m2") or 0) / 10_000))],
            [t["gaps"], t["holes"].format(n=ctx.num(gaps.get("count")),
                                          area=format_number(gaps.get("area_m2"), 1, lang, "m²"))],
            [t["repairs"], " · ".join(repairs) or t["none"]]]
    return table(None, rows)


def _issues_table(ctx: Ctx, report: dict[str, Any]) -> str:
    t, names = ctx.t, ISSUE_NAMES[ctx.lang]
    order = {"error": 0, "warning": 1, "info": 2}
    issues = sorted(report.get("issues") or [], key=lambda i: order.get(i.get("severity"), 3))
    rows = [[t.get(f"severity_{i.get('severity')}", text_of(i.get("severity"))), names.get(i.get("code"), i.get("code")),
             text_of(i.get("layer")), ctx.num(i.get("count")),
             format_number(i.get("area_m2"), 0, ctx.lang, "m²") if i.get("area_m2") is not None else "",
             text_of(i.get("message"))] for i in issues]
    rows, more = limited(rows, ctx, FILES["validation"])
    heads = [t["col_severity"], t["col_check"], t["col_layer"], t["col_n"], t["col_area"], t["col_message"]]
    return f"<h3>{esc(t['plu_issues'])}</h3>" + table(heads, rows, numeric=(3, 4)) + more


def _encodings_table(ctx: Ctx, report: dict[str, Any]) -> str:
    t = ctx.t
    encodings = report.get("encodings") or {}
    if not encodings:
        return ""
    rows = [[layer, text_of(e.get("declared")) or "—", text_of(e.get("found")) or "—", ctx.num(e.get("mojibake_fixed"))]
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
    parts = [table(None, rows),
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
    rows = [[text_of(s.get("name")), f"{format_number(s.get('seconds'), 1, ctx.lang, 's')}"
             + (f" {t['cached']}" if s.get("cached") else "")] for s in m.get("steps") or []]
    return f"<h3>{esc(t['prov_steps'])}</h3>" + table([t["col_step"], t["col_seconds"]], rows, numeric=(1,)) \
        if rows else ""


def _inputs_table(ctx: Ctx, m: dict[str, Any]) -> str:
    t = ctx.t
    rows = [[text_of(i.get("role")), code(Path(str(i.get("path"))).name, i.get("path")), _sha_cell(i.get("sha256")),
             _bytes(ctx, i.get("bytes"))] for i in m.get("inputs") or []]
    heads = [t["col_role"], t["col_path"], t["col_sha"], t["col_size"]]
    return f"<h3>{esc(t['prov_inputs'])}</h3>" + table(heads, rows, numeric=(3,)) if rows else ""


def _items_table(ctx: Ctx, m: dict[str, Any]) -> str:
    t = ctx.t
    rows = [[code(text_of(i.get("id"))), format_date(i.get("datetime"), ctx.lang), text_of(i.get("collection")),
             text_of(i.get("processing_baseline")) or "—", format_number(i.get("scale"), 4, ctx.lang),
             format_number(i.get("offset"), 2, ctx.lang)] for i in m.get("items") or []]
    heads = [t["col_id"], t["col_date"], t["col_collection"], t["col_baseline"], t["col_scale"], t["col_offset"]]
    return f"<h3>{esc(t['prov_items'])}</h3>" + table(heads, rows, numeric=(3, 4, 5)) if rows else ""


def _outputs_table(ctx: Ctx, m: dict[str, Any]) -> str:
    t = ctx.t
    rows = [[code(text_of(o.get("path"))), _sha_cell(o.get("sha256")), _bytes(ctx, o.get("bytes"))]
            for o in m.get("outputs") or []]
    heads = [t["col_path"], t["col_sha"], t["col_size"]]
    return f"<h3>{esc(t['prov_outputs'])}</h3>" + table(heads, rows, numeric=(2,)) if rows else ""


def _software(ctx: Ctx, m: dict[str, Any]) -> str:
    items = "".join(f"<div>{esc(name)} <code>{esc(version)}</code></div>"
                    for name, version in (m.get("software") or {}).items())
    return f"<h3>{esc(ctx.t['prov_soft'])}</h3><div class=\"soft\">{items}</div>" if items else ""
