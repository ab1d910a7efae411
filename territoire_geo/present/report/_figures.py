"""Figures of the HTML run report, as PNG bytes (matplotlib Agg, no pyplot state).

Colours are colour-blind safe (viridis for scores, Okabe & Ito for categories);
zones keep the Géoportail de l'Urbanisme colours, for familiarity, but only as a
pale background. Every figure has a title and a source line. Text that comes from
data (zone names, criteria) is shown literally: ``$`` never starts mathtext.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter

from territoire_geo.present._style import OKABE_ITO, TYPEZONE_COLORS, format_number, typezone_label
from territoire_geo.present.report._text import CHANGE_NAMES, TEXT, format_ha, month_abbr

__all__ = [
    "CHANGE_COLORS",
    "LINE_COLORS",
    "TYPE_LINE_COLORS",
    "change_map",
    "contributions_chart",
    "excluded_mask",
    "ndvi_parcel_chart",
    "ndvi_zone_chart",
    "ranked",
    "score_map",
    "source_line",
    "unit_label",
    "unit_name",
]

#: Colour-blind-safe colours of the change classes (Okabe & Ito).
CHANGE_COLORS = {1: "#cc79a7", 2: "#009e73", 3: "#d55e00", 4: "#0072b2", 5: "#56b4e9", 255: "#999999"}
#: Okabe & Ito without the yellow, too pale for lines on white.
LINE_COLORS = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#000000", "#999999")
#: Line colours of zone types, close to their zoning colours where the palette allows.
TYPE_LINE_COLORS = {"U": "#d55e00", "AUc": "#e69f00", "AUs": "#cc79a7", "A": "#0072b2", "N": "#009e73"}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DPI = 120
_GREY = "#555555"


def _plain(text: Any) -> str:
    """Data text shown literally by matplotlib (no mathtext, no hidden legend labels)."""
    return str(text).replace("$", r"\$").lstrip("_") or "?"


def _figure(width: float, height: float, legend_rows: int = 0) -> tuple[Any, Any, Any]:
    """A figure split into a body and a footer (legend rows and the source line), both laid out."""
    foot = 0.3 + 0.28 * legend_rows
    fig = Figure(figsize=(width, height + foot), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg renderer, no pyplot state
    body, footer = fig.subfigures(2, 1, height_ratios=(height, foot))
    return fig, body, footer


def _legend(footer: Any, handles: list[Any], ncols: int) -> None:
    if handles:
        footer.legend(handles=handles, loc="upper center", ncols=max(1, ncols), fontsize=9.5, frameon=False,
                      handlelength=1.6, columnspacing=1.4, borderaxespad=0.2)


def _finish(fig: Any, footer: Any, title: str, source: str) -> bytes:
    fig.suptitle(_plain(title), x=0.01, ha="left", fontsize=13, fontweight="bold")
    footer.text(0.01, 0.1 * fig.dpi / footer.bbox.height, _plain(source), ha="left", va="bottom", fontsize=7.5,
                color=_GREY)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, facecolor="white", metadata={"Software": "territoire_geo"})
    return buffer.getvalue()


def source_line(manifest: dict[str, Any], lang: str) -> str:
    """« Contient des données Copernicus Sentinel-2 modifiées (2020–2023) ; PLU : Géoportail de l'Urbanisme »."""
    t = TEXT[lang]
    years = sorted({str(i.get("datetime") or "")[:4] for i in manifest.get("items") or [] if i.get("datetime")})
    parts = [t["source_s2"].format(years="–".join(dict.fromkeys([years[0], years[-1]])))] if years else []
    parts += [t["source_plu"], t["source_tool"]]
    return (" ; " if lang == "fr" else "; ").join(parts)


def _scalebar(ax: Any, crs: Any) -> None:
    """A black-and-white scale bar in the lower left corner (only for a projected CRS in metres)."""
    if crs is None or not getattr(crs, "is_projected", False):
        return
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    target = (x1 - x0) / 5
    length = max((v for v in (50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000) if v <= target),
                 default=50)
    x, y, h = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.04, (y1 - y0) * 0.012
    for i, colour in enumerate(("black", "white")):
        ax.add_patch(_rect(x + i * length / 2, y, length / 2, h, colour))
    label = f"{length // 1000} km" if length >= 1000 else f"{length} m"
    ax.text(x + length / 2, y + h * 1.8, label, ha="center", va="bottom", fontsize=8,
            path_effects=_halo())


def _rect(x: float, y: float, w: float, h: float, colour: str) -> Any:
    return Rectangle((x, y), w, h, facecolor=colour, edgecolor="black", linewidth=0.8, zorder=10)


def _halo(width: float = 3) -> list[Any]:
    return [patheffects.withStroke(linewidth=width, foreground="white")]


def _swatch(colour: str, label: str, **style: Any) -> Any:
    return Patch(facecolor=colour, edgecolor=style.pop("edgecolor", "#444444"), label=_plain(label),
                 linewidth=0.6, **style)


def excluded_mask(units: pd.DataFrame) -> pd.Series:
    """True where a unit is flagged ``excluded`` or has an exclusion reason."""
    mask = pd.Series(False, index=units.index)
    if "excluded" in units.columns:
        flags = units["excluded"].astype("string").str.strip().str.lower()
        mask |= flags.isin(["true", "1", "yes", "oui"]).fillna(False).astype(bool)
    if "exclusion" in units.columns:
        text = units["exclusion"].astype("string").fillna("").str.strip()
        mask |= (text.ne("") & text.str.lower().ne("nan")).astype(bool)
    return mask


def unit_name(row: pd.Series) -> str:
    """LIBELLE of a unit, else its ``unit_id``, else empty."""
    for column in ("LIBELLE", "unit_id", "id"):
        value = row.get(column)
        if value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) != "":
            return str(value)
    return ""


def ranked(units: pd.DataFrame) -> pd.DataFrame:
    """Scored (not excluded) units, best first."""
    kept = units[~excluded_mask(units)]
    if "rank" in kept.columns and pd.to_numeric(kept["rank"], errors="coerce").notna().any():
        return kept.assign(_r=pd.to_numeric(kept["rank"], errors="coerce")).sort_values("_r").drop(columns="_r")
    return kept.sort_values("score", ascending=False) if "score" in kept.columns else kept


def unit_label(row: pd.Series, position: int) -> str:
    """``3 · IIAU`` from a unit row (rank, else its position)."""
    rank = pd.to_numeric(pd.Series([row.get("rank")]), errors="coerce").iat[0]
    number = int(rank) if pd.notna(rank) else position
    name = unit_name(row)
    return f"{number} · {name}" if name else str(number)


# ---------------------------------------------------------------- maps


def _context(ax: Any, zoning: Any, crs: Any, *, fill: bool, lang: str) -> list[Any]:
    """Zoning drawn as a pale background (or outlines); legend handles of the zone types."""
    if zoning is None or zoning.empty:
        return []
    zones = zoning.to_crs(crs) if crs is not None and zoning.crs != crs else zoning
    if not fill or "TYPEZONE" not in zones.columns:
        zones.plot(ax=ax, facecolor="none", edgecolor="#9a9a9a", linewidth=0.4, zorder=1)
        return []
    codes = zones["TYPEZONE"].astype("string").fillna("")
    colours = codes.map(lambda c: TYPEZONE_COLORS.get(c, "#dddddd")).tolist()
    zones.plot(ax=ax, color=colours, alpha=0.35, edgecolor="none", zorder=1)
    zones.plot(ax=ax, facecolor="none", edgecolor="#6f6f6f", linewidth=0.4, zorder=2)
    present = [c for c in TYPEZONE_COLORS if c in set(codes)]
    return [_swatch(TYPEZONE_COLORS[c], typezone_label(c, lang), alpha=0.5) for c in present]


def score_map(units: Any, zoning: Any, *, lang: str, source: str, top: int = 5) -> bytes:
    """Units coloured by score (viridis, 0–100), excluded units hatched grey, the ``top`` first numbered."""
    t = TEXT[lang]
    units = _metric(units)
    fig, body, footer = _figure(10, 7.5)
    ax = body.add_subplot()
    ax.set_axis_off()
    _context(ax, zoning, units.crs, fill=False, lang=lang)
    excluded = excluded_mask(units)
    norm = Normalize(0, 100)
    scored = units[~excluded]
    if not scored.empty:
        scored.plot(ax=ax, column=pd.to_numeric(scored["score"], errors="coerce").to_numpy(), cmap="viridis",
                    norm=norm, edgecolor="white", linewidth=0.4, zorder=3,
                    missing_kwds={"color": "#eeeeee", "edgecolor": "#999999"})
    handles = []
    if excluded.any():
        units[excluded].plot(ax=ax, facecolor="#eeeeee", edgecolor="#b5b5b5", hatch="///", linewidth=0.3,
                             zorder=3)
        handles.append(_swatch("#eeeeee", t["excluded"], hatch="///", edgecolor="#8c8c8c"))
    _label_top(ax, ranked(units).head(top))
    body.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=ax, shrink=0.7, label=t["score_label"])
    ax.set_aspect("equal")
    _scalebar(ax, units.crs)
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=9, framealpha=0.9)
    return _finish(fig, footer, t["map_scores_title"], source)


def _metric(frame: Any) -> Any:
    """``frame`` in a projected CRS (its UTM zone if it is in degrees), for true shapes and a scale bar."""
    if frame.crs is not None and frame.crs.is_geographic and not frame.empty:
        return frame.to_crs(frame.estimate_utm_crs())
    return frame


_OFFSETS = ((30, 22), (-30, 22), (30, -22), (-30, -22), (0, 36), (0, -36), (55, 0), (-55, 0),
            (55, 45), (-55, 45), (55, -45), (-55, -45))


def _label_top(ax: Any, best: pd.DataFrame) -> None:
    """Number the best units: a dot on the unit, the label beside it with a leader line, labels not overlapping."""
    fig = ax.get_figure(root=True)
    fig.draw_without_rendering()  # lay the axes out so that label extents are known
    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    for position, (_, row) in enumerate(best.iterrows(), start=1):
        point = row.geometry.representative_point()
        ax.plot(point.x, point.y, "o", color="black", markersize=4, markeredgecolor="white", zorder=6)
        for attempt, offset in enumerate(_OFFSETS):
            label = _annotate(ax, _plain(unit_label(row, position)), (point.x, point.y), offset)
            box = label.get_window_extent(renderer).expanded(1.08, 1.15)
            if not any(box.overlaps(other) for other in placed) or attempt == len(_OFFSETS) - 1:
                placed.append(box)
                break
            label.remove()


def _annotate(ax: Any, text: str, xy: tuple[float, float], offset: tuple[float, float]) -> Any:
    return ax.annotate(text, xy, xytext=offset, textcoords="offset points", fontsize=9, fontweight="bold",
                       ha="center", va="center", zorder=7,
                       bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "#222222",
                             "alpha": 0.92},
                       arrowprops={"arrowstyle": "-", "color": "#222222", "linewidth": 0.9, "shrinkA": 0,
                                   "shrinkB": 2})


def change_map(alerts: Any, zoning: Any, *, lang: str, source: str) -> bytes:
    """Change patches over the zoning: an overview and, when there are alerts, a zoom on them."""
    t = TEXT[lang]
    zoomed = alerts is not None and not alerts.empty
    fig, body, footer = _figure(11 if zoomed else 8, 5.8, legend_rows=2)
    axes = body.subplots(1, 2, width_ratios=(1.1, 1)) if zoomed else [body.add_subplot()]
    crs = alerts.crs if alerts is not None else None
    zone_handles: list[Any] = []
    for ax in axes:
        ax.set_axis_off()
        zone_handles = _context(ax, zoning, crs, fill=True, lang=lang)
    class_handles = _draw_alerts(axes, alerts, lang) if zoomed else []
    if not zoomed:
        axes[0].text(0.5, 1.0, t["no_alerts"], transform=axes[0].transAxes, ha="center", va="bottom", fontsize=11,
                     bbox={"boxstyle": "round,pad=0.4", "facecolor": "white", "edgecolor": "#888888"})
    for ax in axes:
        ax.set_aspect("equal")
        _scalebar(ax, crs if crs is not None else getattr(zoning, "crs", None))
    if zoomed:
        axes[0].set_title(t["overview"], fontsize=11, loc="left")
        axes[1].set_title(t["zoom"], fontsize=11, loc="left")
        _label_zones(axes[1], zoning, crs)
    _grid_legend(footer, [(t["zone_types"], zone_handles), (t["classes"], class_handles)])
    return _finish(fig, footer, t["map_change_title"], source)


def _grid_legend(footer: Any, groups: Sequence[tuple[str, list[Any]]]) -> None:
    """One legend row per group (heading, then its entries) below the axes."""
    groups = [(title, handles) for title, handles in groups if handles]
    if not groups:
        return
    width = max(len(h) for _, h in groups) + 1
    blank = _swatch("none", " ", edgecolor="none")
    rows = [[_swatch("none", title, edgecolor="none"), *handles] + [blank] * (width - 1 - len(handles))
            for title, handles in groups]
    ordered = [rows[r][c] for c in range(width) for r in range(len(rows))]
    _legend(footer, ordered, width)


def _class_codes(alerts: Any) -> np.ndarray:
    if "class" not in alerts.columns:
        return np.full(len(alerts), 3)
    return pd.to_numeric(alerts["class"], errors="coerce").fillna(255).astype(int).to_numpy()


def _draw_alerts(axes: Sequence[Any], alerts: Any, lang: str) -> list[Any]:
    """Patches on both panels, rings on the overview, numbers on the zoom; the zoom extent."""
    codes = _class_codes(alerts)
    colours = [CHANGE_COLORS.get(int(c), "#999999") for c in codes]
    overview, zoom = axes
    centres = alerts.geometry.representative_point()
    for ax in axes:
        alerts.plot(ax=ax, color=colours, edgecolor="black", linewidth=0.8, zorder=4)
    overview.scatter(centres.x, centres.y, s=260, facecolors="none", edgecolors=colours, linewidths=2, zorder=5)
    minx, miny, maxx, maxy = alerts.total_bounds
    pad = max(150.0, 0.3 * max(maxx - minx, maxy - miny))
    side = max(maxx - minx, maxy - miny) / 2 + pad
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    zoom.set_xlim(cx - side, cx + side)
    zoom.set_ylim(cy - side, cy + side)

    overview.add_patch(Rectangle((cx - side, cy - side), 2 * side, 2 * side, facecolor="none",
                                 edgecolor="black", linestyle="--", linewidth=1, zorder=6))
    for number, point in enumerate(centres, start=1):
        zoom.annotate(str(number), (point.x, point.y), xytext=(8, 8), textcoords="offset points", fontsize=10,
                      fontweight="bold", zorder=7, path_effects=_halo())
    names = CHANGE_NAMES[lang]
    return [_swatch(CHANGE_COLORS.get(int(c), "#999999"), names.get(int(c), str(c)), edgecolor="black")
            for c in sorted(set(codes.tolist()))]


def _label_zones(ax: Any, zoning: Any, crs: Any) -> None:
    """LIBELLE of the zones whose label point falls inside the zoom."""
    if zoning is None or "LIBELLE" not in zoning.columns:
        return
    zones = zoning.to_crs(crs) if crs is not None and zoning.crs != crs else zoning
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    clipped = zones.clip((x0, y0, x1, y1))
    for _, row in clipped[~clipped.geometry.is_empty].iterrows():
        point = row.geometry.representative_point()
        ax.text(point.x, point.y, _plain(row["LIBELLE"]), fontsize=9, color="#333333", ha="center",
                va="center", zorder=3, path_effects=_halo(2))


# ---------------------------------------------------------------- charts


def contributions_chart(units: pd.DataFrame, *, lang: str, source: str, top: int = 10,
                        labels: dict[str, str] | None = None) -> bytes | None:
    """Horizontal stacked bars of the ``contrib_*`` columns of the ``top`` best units (None without them).

    ``labels`` maps criterion names to the words shown in the legend (default: the names).
    """
    t = TEXT[lang]
    columns = [c for c in units.columns if str(c).startswith("contrib_")]
    best = ranked(units).head(top)
    if not columns or best.empty:
        return None
    values = best[columns].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    names = [str(c)[len("contrib_"):] for c in columns]
    values.columns = [(labels or {}).get(n) or n.replace("_", " ") for n in names]
    if values.shape[1] > len(OKABE_ITO):
        order = values.abs().sum().sort_values(ascending=False).index
        kept = list(order[: len(OKABE_ITO) - 1])
        values = values[kept].assign(**{t["other_criteria"]: values[order[len(kept):]].sum(axis=1)})
    ncols = min(values.shape[1], 4)
    fig, body, footer = _figure(10, 1.2 + 0.5 * len(best), legend_rows=-(-values.shape[1] // ncols))
    ax = body.add_subplot()
    rows = np.arange(len(best))
    right, left = np.zeros(len(best)), np.zeros(len(best))
    handles: list[Any] = []
    for colour, name in zip(OKABE_ITO, values.columns, strict=False):
        data = values[name].to_numpy()
        start = np.where(data >= 0, right, left)
        handles.append(ax.barh(rows, data, left=start, color=colour, edgecolor="white", linewidth=0.6,
                               label=_plain(name)))
        right, left = np.where(data >= 0, right + data, right), np.where(data < 0, left + data, left)
    scores = pd.to_numeric(best.get("score", pd.Series(np.nan, index=best.index)), errors="coerce")
    for row, end, score in zip(rows, right, scores, strict=True):
        ax.text(end + 0.8, row, format_number(score, 0, lang), va="center", fontsize=9, fontweight="bold")
    labels = [_plain(_bar_label(r, i, lang)) for i, (_, r) in enumerate(best.iterrows(), start=1)]
    ax.set_yticks(rows, labels)
    ax.invert_yaxis()
    ax.set_xlabel(t["contrib_x"])
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(min(0.0, float(left.min()) * 1.1), float(right.max()) * 1.1 + 4)
    _legend(footer, handles, ncols)
    return _finish(fig, footer, t["contrib_title"], source)


def _bar_label(row: pd.Series, position: int, lang: str) -> str:
    extra = [str(row["TYPEZONE"])] if isinstance(row.get("TYPEZONE"), str) else []
    if "area_ha" in row.index:
        extra.append(format_ha(row["area_ha"], lang))
    return unit_label(row, position) + (f" ({', '.join(extra)})" if extra else "")


def _date_axis(ax: Any, lang: str) -> None:
    def label(value: float, _pos: int) -> str:
        day = mdates.num2date(value)
        return f"{month_abbr(day.month, lang)} {day.year}"

    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=9))
    ax.xaxis.set_major_formatter(FuncFormatter(label))


def _periods(ax: Any, periods: dict[str, Any], lang: str) -> None:
    """Grey bands over the compared periods (``before``/``after`` of the recipe)."""
    t = TEXT[lang]
    for key in ("before", "after"):
        text = str(periods.get(key) or "")
        bounds = [pd.to_datetime(p, errors="coerce") for p in text.split("/")]
        if len(bounds) != 2 or any(pd.isna(b) for b in bounds):
            continue
        ax.axvspan(bounds[0], bounds[1], color="#000000", alpha=0.0 if key == "before" else 0.07, zorder=0,
                   linewidth=0)
        ax.axvline(bounds[0], color="#999999", linewidth=0.8, linestyle=":", zorder=0)
        ax.text(bounds[0] + (bounds[1] - bounds[0]) / 2, 0.98, t[key], transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize=9, color=_GREY)


def _line_axes(lang: str, entries: int) -> tuple[Any, Any, Any]:
    fig, body, footer = _figure(10, 4.6, legend_rows=-(-entries // 4))
    ax = body.add_subplot()
    ax.set_ylabel(TEXT[lang]["ndvi_y"])
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax, footer


def ndvi_zone_chart(series: pd.DataFrame, by: str, *, periods: dict[str, Any], lang: str, source: str) -> bytes:
    """One line per zone type (or zone): mean NDVI at each date."""
    t = TEXT[lang]
    fig, ax, footer = _line_axes(lang, series["group"].nunique())
    for i, (group, part) in enumerate(series.groupby("group", sort=False)):
        part = part.sort_values("date")
        label = typezone_label(group, lang) if by == "type" else group
        colour = TYPE_LINE_COLORS.get(str(group), LINE_COLORS[i % 8]) if by == "type" else LINE_COLORS[i % 8]
        ax.plot(part["date"], part["ndvi"], color=colour, marker=_MARKERS[i % 8], markersize=5,
                linewidth=1.8, label=_plain(label))
    _periods(ax, periods, lang)
    _date_axis(ax, lang)
    _legend(footer, ax.get_legend_handles_labels()[0], 4)
    return _finish(fig, footer, t["ndvi_zones_title" if by == "type" else "ndvi_zone_title"], source)


def ndvi_parcel_chart(series: pd.DataFrame, *, periods: dict[str, Any], lang: str, source: str) -> bytes:
    """Mean NDVI of parcels by crop group with the min–max band."""
    fig, ax, footer = _line_axes(lang, series["group"].nunique())
    for i, (group, part) in enumerate(series.groupby("group", sort=False)):
        part = part.sort_values("date")
        colour = LINE_COLORS[i % 8]
        ax.fill_between(part["date"], part["min"], part["max"], color=colour, alpha=0.15, linewidth=0)
        ax.plot(part["date"], part["mean"], color=colour, marker=_MARKERS[i % 8], markersize=5, linewidth=1.8,
                label=_plain(group))
    _periods(ax, periods, lang)
    _date_axis(ax, lang)
    _legend(footer, ax.get_legend_handles_labels()[0], 4)
    return _finish(fig, footer, TEXT[lang]["ndvi_parcels_title"], source)
