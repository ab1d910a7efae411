"""HTML building blocks of the run report: escaping, tables, figures, notes and the page.

Everything that is not a literal of this module goes through :func:`esc` (or is a
:class:`Safe` fragment built here from escaped parts). The page is one file: CSS
inline, figures as ``data:image/png;base64`` URIs, no script, no external font.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CSS", "Safe", "Section", "absent", "code", "esc", "figure", "note", "page", "para", "table"]


class Safe(str):
    """An HTML fragment already built from escaped parts (inserted as is)."""

    __slots__ = ()


@dataclass
class Section:
    """One numbered section of the report; ``missing`` says why it is absent (plain text)."""

    key: str
    title: str
    body: str = ""
    missing: str | None = None
    figures: dict[str, bytes] = field(default_factory=dict)


def esc(value: Any) -> str:
    """``value`` as escaped HTML text (``&<>"'`` replaced)."""
    return value if isinstance(value, Safe) else html.escape("" if value is None else str(value), quote=True)


def para(text: Any, cls: str = "") -> Safe:
    """A paragraph of plain text."""
    attr = f' class="{esc(cls)}"' if cls else ""
    return Safe(f"<p{attr}>{esc(text)}</p>")


def note(text: Any) -> Safe:
    """A highlighted caveat."""
    return Safe(f'<div class="note">{esc(text)}</div>')


def absent(label: str, reason: Any) -> Safe:
    """The box of an absent section or figure: ``label — reason``."""
    return Safe(f'<div class="absent"><strong>{esc(label)}</strong> — {esc(reason)}</div>')


def table(headers: Sequence[Any] | None, rows: Iterable[Sequence[Any]], *, numeric: Iterable[int] = (),
          caption: Any = None, total: Sequence[Any] | None = None) -> Safe:
    """An HTML table; columns whose index is in ``numeric`` are right-aligned.

    Without ``headers`` it is a two-column key/value table (class ``kv``).
    """
    right = set(numeric)

    def cells(values: Sequence[Any], tag: str) -> str:
        num = ' class="num"'
        return "".join(f"<{tag}{num if i in right else ''}>{esc(v)}</{tag}>" for i, v in enumerate(values))

    parts = ['<div class="scroll"><table>' if headers else '<div class="scroll"><table class="kv">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    parts.append(f"<thead><tr>{cells(headers, 'th')}</tr></thead><tbody>" if headers else "<tbody>")
    parts += [f"<tr>{cells(row, 'td')}</tr>" for row in rows]
    if total is not None:
        parts.append(f'<tr class="total">{cells(total, "td")}</tr>')
    parts.append("</tbody></table></div>")
    return Safe("".join(parts))


def figure(png: bytes, alt: Any, caption: Any = "") -> Safe:
    """A PNG embedded as a data URI, with alternative text and caption."""
    data = base64.b64encode(png).decode("ascii")
    text = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return Safe(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">{text}</figure>')


def code(value: Any, title: Any = None) -> Safe:
    """Monospace text (a checksum, a path), the full value in a tooltip."""
    attr = f' title="{esc(title)}"' if title else ""
    return Safe(f'<code{attr}>{esc(value)}</code>')


CSS = """
:root{--ink:#1f2328;--muted:#57606a;--line:#d0d7de;--soft:#f6f8fa;--accent:#0b5394}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--ink);line-height:1.5;font-size:16px;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 36px 56px}
header{border-bottom:3px solid var(--accent);padding-bottom:14px}
.kicker{margin:0;color:var(--accent);font-weight:600;font-size:13px;letter-spacing:.06em;text-transform:uppercase}
h1{font-size:30px;line-height:1.2;margin:6px 0 10px}
h2{font-size:23px;margin:0 0 10px;color:var(--accent)}
h3{font-size:17px;margin:22px 0 6px}
.meta{margin:2px 0;color:var(--muted)}
.link{margin-top:8px}
nav{margin:20px 0 0;padding:12px 18px;background:var(--soft);border:1px solid var(--line);border-radius:8px}
nav h2{font-size:16px;color:var(--ink);margin:0 0 4px}
nav ol{margin:0;padding-left:22px;columns:2;column-gap:36px}
nav a{color:var(--accent);text-decoration:none}
.tag{color:var(--muted);font-size:13px;font-style:italic}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:12px;margin:12px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 16px;background:var(--soft)}
.card .v{font-size:25px;font-weight:700;white-space:nowrap}
.card .l{color:var(--muted);font-size:14px}
section{margin-top:38px;padding-top:14px;border-top:1px solid var(--line)}
section.key{margin-top:18px;padding-top:0;border-top:none}
figure{margin:14px 0 18px}
figure img{display:block;max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px}
figcaption{color:var(--muted);font-size:14px;margin-top:6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14.5px;margin:6px 0 16px}
caption{text-align:left;font-weight:600;padding:4px 0;caption-side:top}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:700;border-top:2px solid var(--ink)}
table.kv td:first-child{width:28%;color:var(--muted)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.absent{border-left:4px solid #8c8c8c;background:#f2f2f2;padding:10px 14px;margin:10px 0}
.note{border-left:4px solid #e69f00;background:#fff7e6;padding:10px 14px;margin:10px 0}
.small{font-size:14px;color:var(--muted)}
.soft{columns:3;column-gap:28px;font-size:13.5px;margin:4px 0}
.soft div{break-inside:avoid}
footer{margin-top:44px;padding-top:12px;border-top:1px solid var(--line);color:var(--muted);font-size:13.5px}
@media (max-width:760px){main{padding:16px}nav ol,.soft{columns:1}}
@media print{main{max-width:none;padding:0}figure,table,.card{break-inside:avoid}nav{display:none}}
"""


def _toc(sections: Sequence[Section], lang_text: dict[str, str]) -> str:
    items = []
    for section in sections:
        tag = f' <span class="tag">({esc(lang_text["absent_tag"])})</span>' if section.missing else ""
        items.append(f'<li><a href="#{esc(section.key)}">{esc(section.title)}</a>{tag}</li>')
    return f'<nav><h2>{esc(lang_text["contents"])}</h2><ol>{"".join(items)}</ol></nav>'


def _section(number: int, section: Section, lang_text: dict[str, str]) -> str:
    body = section.body
    if section.missing:
        body = absent(lang_text["absent"], section.missing) + body
    return f'<section id="{esc(section.key)}"><h2>{number}. {esc(section.title)}</h2>{body}</section>'


def page(*, lang: str, title: str, header: str, key_figures: str, sections: Sequence[Section], footer: str,
         lang_text: dict[str, str]) -> str:
    """The whole HTML document."""
    body = "".join(_section(i, s, lang_text) for i, s in enumerate(sections, start=1))
    return (f'<!DOCTYPE html>\n<html lang="{esc(lang)}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="territoire_geo">\n<title>{esc(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n{header}{key_figures}"
            f"{_toc(sections, lang_text)}{body}<footer>{footer}</footer>\n</main>\n</body>\n</html>\n")
