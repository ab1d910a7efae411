"""QGIS styles embedded in GeoPackages (the ``layer_styles`` table QGIS reads on open), and colour tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

__all__ = ["CHANGE_COLOURS", "TYPEZONE_COLOURS", "add_style", "categorized_qml", "graduated_qml"]

#: CNIG-like colours of zone types (GPU symbology: U red, AU orange, A yellow, N green).
TYPEZONE_COLOURS: dict[str, str] = {"U": "230,0,0", "AUc": "255,150,0", "AUs": "255,205,120",
                                    "A": "255,255,100", "N": "86,170,2"}

#: Colour table (RGBA) of the change-class rasters, by code of
#: :data:`territoire_geo.analysis.change.CHANGE_CLASSES` (255, insufficient data, transparent).
CHANGE_COLOURS: dict[int, tuple[int, int, int, int]] = {
    0: (235, 235, 235, 255), 1: (214, 96, 77, 255), 2: (77, 172, 38, 255), 3: (178, 24, 43, 255),
    4: (33, 102, 172, 255), 5: (244, 165, 130, 255), 255: (0, 0, 0, 0)}

_TABLE = """CREATE TABLE IF NOT EXISTS layer_styles (
 id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256),
 f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT,
 styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
 update_time DATETIME DEFAULT CURRENT_TIMESTAMP)"""


def categorized_qml(field: str, categories: Mapping[str, str], labels: Mapping[str, str] | None = None,
                    opacity: float = 0.75) -> str:
    """A QGIS QML document: polygons filled by category of ``field`` (colours ``'r,g,b'``)."""
    labels = labels or {}
    cats, symbols = [], []
    for i, (value, colour) in enumerate(categories.items()):
        cats.append(f'<category render="true" symbol="{i}" value={quoteattr(value)} '
                    f'label={quoteattr(labels.get(value, value))}/>')
        symbols.append(
            f'<symbol type="fill" name="{i}" alpha="{opacity}"><layer class="SimpleFill">'
            f'<Option type="Map"><Option name="color" type="QString" value="{colour},255"/>'
            '<Option name="outline_color" type="QString" value="60,60,60,255"/>'
            '<Option name="outline_width" type="QString" value="0.2"/></Option></layer></symbol>')
    return ('<!DOCTYPE qgis PUBLIC \'http://mrcc.com/qgis.dtd\' \'SYSTEM\'>'
            f'<qgis version="3.34" styleCategories="Symbology"><renderer-v2 type="categorizedSymbol" '
            f'attr={quoteattr(field)} enableorderby="0"><categories>{"".join(cats)}</categories>'
            f'<symbols>{"".join(symbols)}</symbols></renderer-v2></qgis>')


def graduated_qml(field: str, breaks: list[tuple[float, float, str]], opacity: float = 0.8) -> str:
    """A QGIS QML document: polygons coloured by class ranges ``(lower, upper, 'r,g,b')``."""
    ranges, symbols = [], []
    for i, (low, high, colour) in enumerate(breaks):
        ranges.append(f'<range render="true" symbol="{i}" lower="{low}" upper="{high}" '
                      f'label="{escape(f"{low:g} – {high:g}")}"/>')
        symbols.append(f'<symbol type="fill" name="{i}" alpha="{opacity}"><layer class="SimpleFill">'
                       f'<Option type="Map"><Option name="color" type="QString" value="{colour},255"/></Option>'
                       '</layer></symbol>')
    return ('<!DOCTYPE qgis PUBLIC \'http://mrcc.com/qgis.dtd\' \'SYSTEM\'>'
            f'<qgis version="3.34" styleCategories="Symbology"><renderer-v2 type="graduatedSymbol" '
            f'attr={quoteattr(field)}><ranges>{"".join(ranges)}</ranges>'
            f'<symbols>{"".join(symbols)}</symbols></renderer-v2></qgis>')


def add_style(gpkg: str | Path, layer: str, qml: str, *, name: str = "territoire_geo",
              description: str = "") -> None:
    """Store ``qml`` as the default QGIS style of ``layer`` in a GeoPackage."""
    with sqlite3.connect(str(gpkg)) as con:
        con.execute(_TABLE)
        con.execute("DELETE FROM layer_styles WHERE f_table_name = ? AND styleName = ?", (layer, name))
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, styleName,"
            " styleQML, styleSLD, useAsDefault, description, owner, ui, update_time)"
            " VALUES ('', '', ?, 'geometry', ?, ?, '', 1, ?, 'territoire_geo', '', ?)",
            (layer, name, qml, description, "2000-01-01T00:00:00Z"),  # fixed: reruns stay byte-identical
        )
