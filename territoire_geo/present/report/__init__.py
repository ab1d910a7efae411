"""The HTML report of a run folder: maps, charts, tables and provenance in one self-contained file."""

from territoire_geo.present.report._build import FIGURES, REPORT, build_report, render_report

__all__ = ["FIGURES", "REPORT", "build_report", "render_report"]
