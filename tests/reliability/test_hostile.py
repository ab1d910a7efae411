"""Hostile data and recipes: markup and formulas in every rendered field, secrets, unsafe archives.

One real run (a subprocess, ``-vv``) of a vector-only land-reserve recipe whose inputs are
hostile: zone labels carrying ``<script>``, ``<img onerror>``, ``</script>`` breakers and
U+2028, spreadsheet formulas (``=HYPERLINK(…)``, ``@SUM(…)``) as zone names and criterion
labels, a recipe and scene title with markup and a ``${TERRITOIRE_CDSE_PASSWORD}``
placeholder, and that password (plus the DHuS one) planted in the environment. Every file
the run writes (cache included) and every log line are searched. Formula injection through
a recipe's ``custom_indices``, secrets in imagery URLs, and zip-slip archives reaching the
pipeline (PLU zip, hub product) are checked too. The browser-level checks of the scene
(payloads never run) are in ``test_scene_browser.py``; string-level escaping of the
report in ``test_report.py``; expression fuzzing in ``test_fuzz.py`` and ``test_expr.py``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import pytest
import yaml
from _servers import free_port
from territoire_geo_cli.main import app
from typer.testing import CliRunner

from territoire_geo.errors import DataError

REPO = Path(__file__).resolve().parents[2]
PLU = REPO / "data_samples" / "plu" / "30014_PLU_20171013"
LAYERS = REPO / "data_samples" / "layers"
CLI = [sys.executable, "-m", "territoire_geo_cli.main"]
SECRET = "Pa55-w0rd-9f3e2d1c"
DHUS_SECRET = "DhU5-s3cret-77aa"

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
BREAKER = "</script><script>alert(3)</script>"
HYPERLINK = '=HYPERLINK("http://x.example/","clic")'
AT_SUM = "@SUM(1+1)*cmd|' /C calc'!A0"
LABEL = "<b onmouseover=alert(4)>Zonage</b>"
FORMULA_LABEL = '=cmd|"/C calc"!A0'
TITLE = "<script>alert('titre')</script> & ${TERRITOIRE_CDSE_PASSWORD}"

pytestmark = pytest.mark.timeout(180)
runner = CliRunner()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERRITOIRE_")}
    return {**env, "TERRITOIRE_CDSE_USER": "bob", "TERRITOIRE_CDSE_PASSWORD": SECRET,
            "TERRITOIRE_DHUS_PASSWORD": DHUS_SECRET, **extra}


def _hostile_inputs(folder: Path) -> Path:
    """The hostile PLU (GeoPackage), criteria set and recipe; returns the recipe path."""
    zones = gpd.read_file(PLU / "Donnees_geographiques" / "30014_ZONE_URBA_20171013.shp", encoding="cp1252")
    first, second = (zones.index[zones["LIBELLE"] == name][0] for name in ("IAU", "IIAU"))
    zones.loc[first, ["LIBELLE", "LIBELONG"]] = [SCRIPT, f"{IMG} \u2028 {BREAKER}"]
    zones.loc[second, ["LIBELLE", "LIBELONG"]] = [HYPERLINK, AT_SUM]
    zones.to_file(folder / "plu.gpkg", layer="zone_urba", engine="pyogrio")
    criteria = yaml.safe_load((REPO / "territoire_geo" / "data" / "criteria_reserve_fonciere.yaml").read_text())
    criteria["criteria"][0]["label_fr"] = LABEL
    criteria["criteria"][1]["label_fr"] = FORMULA_LABEL
    criteria["label_fr"] = "<svg onload=alert(5)>"
    (folder / "criteria.yaml").write_text(yaml.safe_dump(criteria, allow_unicode=True), encoding="utf-8")
    recipe = folder / "hostile.yaml"
    recipe.write_text(f"""\
name: hostile
title: "{TITLE}"
description: "password ${{TERRITOIRE_CDSE_PASSWORD}}"
territory:
  plu: plu.gpkg
layers:
  - {{kind: rga, path: {LAYERS / 'rga_argiles.gpkg'}}}
  - {{kind: distance, name: roads, path: {LAYERS / 'routes.gpkg'}}}
scoring:
  criteria: criteria.yaml
  sensitivity_runs: 20
scene:
  title: "{TITLE}"
report:
  lang: fr
output: run
""", encoding="utf-8")
    return recipe


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The hostile run folder and everything it printed (stdout + stderr, with -vv debug logs)."""
    folder = tmp_path_factory.mktemp("hostile")
    recipe = _hostile_inputs(folder)
    done = subprocess.run([*CLI, "-vv", "recipe", "run", str(recipe)], capture_output=True, text=True,
                          cwd=folder, env=_env(), check=False, timeout=170)
    assert done.returncode == 0, done.stderr[-2000:]
    report = subprocess.run([*CLI, "-vv", "report", str(folder / "run"), "--lang", "en", "--out",
                             str(folder / "report_en.html")], capture_output=True, text=True, env=_env(),
                            check=False, timeout=170)
    assert report.returncode == 0, report.stderr[-2000:]
    yield folder / "run", done.stdout + done.stderr + report.stdout + report.stderr


# ---------------------------------------------------------------- secrets


def test_secrets_never_reach_files_logs_or_manifest(hostile: tuple[Path, str]) -> None:
    run, printed = hostile
    files = [p for p in run.parent.rglob("*") if p.is_file() and p.name not in ("hostile.yaml",)]
    assert len(files) > 20 and any(".cache" in p.parts for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in (SECRET, DHUS_SECRET):
            assert secret.encode() not in data, path
            assert secret.encode("utf-16-le") not in data, path
    assert SECRET not in printed and DHUS_SECRET not in printed
    assert "INFO territoire_geo" in printed  # the logs were on (-vv)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["recipe"]["title"] == TITLE and manifest["recipe"]["scene"]["title"] == TITLE
    assert "${TERRITOIRE_CDSE_PASSWORD}" in manifest["recipe_text"]


def test_secret_in_an_imagery_url_is_redacted_in_errors(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    for source in (f"http://127.0.0.1:{port}/stac?token=${{TERRITOIRE_CDSE_PASSWORD}}",
                   f"http://bob:${{TERRITOIRE_CDSE_PASSWORD}}@127.0.0.1:{port}/stac"):
        recipe = tmp_path / "url.yaml"
        recipe.write_text(f"name: url\nterritory:\n  plu: {PLU}\nimagery:\n  source: \"{source}\"\n"
                          f"periods:\n  before: '2020'\n  after: '2022'\noutput: {tmp_path / 'run'}\n",
                          encoding="utf-8")
        done = subprocess.run([*CLI, "-vv", "recipe", "run", str(recipe), "--overwrite"], capture_output=True,
                              text=True, env=_env(TERRITOIRE_HTTP_RETRIES="1", TERRITOIRE_HTTP_BACKOFF="0.01"),
                              check=False, timeout=170)
        assert done.returncode == 3, done.stderr[-1000:]
        assert SECRET not in done.stdout + done.stderr and "***" in done.stderr
        for path in (tmp_path / "run").rglob("*"):
            assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------- markup in rendered fields


def test_scene_shows_every_hostile_field_as_text(hostile: tuple[Path, str]) -> None:
    run, _ = hostile
    page = (run / "scene.html").read_text(encoding="utf-8")
    for raw in (SCRIPT, IMG, BREAKER, "<script>alert('titre')", "\u2028"):
        assert raw not in page
    head = page.split("<body>")[0]
    assert "<title>&lt;script&gt;alert(&#x27;titre&#x27;)&lt;/script&gt; &amp; ${TERRITOIRE_CDSE_PASSWORD}</title>" \
        in head
    data = page.split('id="tg-scene">')[1].split("</script>")[0]
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in data  # LIBELLE, in the JSON, inert
    assert "\\u003cimg src=x onerror=alert(2)\\u003e" in data  # LIBELONG
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(3)" in data and "\\u2028" in data
    parser = _Tags()
    parser.feed(page)
    assert [t for t, _ in parser.tags].count("img") == 0  # no element made from the data
    assert not [a for _, a in parser.tags if "src" in a or "onerror" in a or "onload" in a or "onmouseover" in a]


class _Tags(HTMLParser):
    """Start tags and their attributes (script contents are not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("name", ["rapport.html", "../report_en.html"])
def test_report_shows_every_hostile_field_as_text(hostile: tuple[Path, str], name: str) -> None:
    run, _ = hostile
    html = (run / name).read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x" not in html and "<svg" not in html
    assert "onmouseover=alert" not in html.replace("&lt;b onmouseover=alert(4)&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the zone label, shown as text
    assert "&lt;script&gt;alert(&#x27;titre&#x27;)&lt;/script&gt;" in html  # the recipe title
    assert SECRET not in html


def test_every_csv_cell_is_formula_safe(hostile: tuple[Path, str]) -> None:
    run, _ = hostile
    tables = sorted(run.glob("*.csv"))
    assert {p.name for p in tables} >= {"scores.csv", "criteres.csv", "sensibilite.csv"}
    for path in tables:
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    if cell[:1] in ("=", "+", "@", "\t", "\r"):
                        raise AssertionError(f"{path.name}: formula cell {cell!r}")
                    if cell.startswith("-"):
                        float(cell)  # a negative number, not a formula
    scores = (run / "scores.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in scores and "'@SUM(1+1)" in scores
    assert "'=cmd|" in (run / "criteres.csv").read_text(encoding="utf-8")
    units = gpd.read_file(run / "unites_scores.gpkg", layer="unites")
    assert HYPERLINK in set(units["LIBELLE"])  # the GeoPackage keeps the true value (not a spreadsheet)


# ---------------------------------------------------------------- formulas through a recipe


EVIL = [
    "__import__('os').system('id')",
    "red.__class__.__mro__[1].__subclasses__()",
    "(lambda: 1)()",
    "9**9**9",
    "red ** 1e9",
    "(" * 60 + "red" + ")" * 60,
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "open('/etc/passwd').read()",
    "globals()['__builtins__']",
    "red if __debug__ else nir",
    "f'{red.__class__}'",
    "breakpoint()",
]


@pytest.mark.parametrize("formula", EVIL)
def test_custom_index_formulas_are_refused_before_any_work(formula: str, tmp_path: Path) -> None:
    recipe = tmp_path / "f.yaml"
    recipe.write_text(f"name: f\nterritory:\n  plu: {PLU}\ncustom_indices:\n  evil: {json.dumps(formula)}\n",
                      encoding="utf-8")
    result = runner.invoke(app, ["recipe", "validate", str(recipe)], terminal_width=1000)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(r"(unsafe|invalid) expression", lines[0]), result.output
    assert not any(tmp_path.glob("run*"))


# ---------------------------------------------------------------- archives reaching the pipeline


def _evil_plu_zip(path: Path, member: str, *, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for item in (PLU / "Donnees_geographiques").iterdir():
            archive.write(item, f"30014_PLU_20171013/Donnees_geographiques/{item.name}")
        info = zipfile.ZipInfo(member)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd" if symlink else "pwned")
    return path


@pytest.mark.parametrize(("member", "symlink"), [
    ("../../escaped.shp", False), ("{absolute}", False), ("30014_PLU_20171013/link.shp", True),
    ("30014_PLU_20171013\\..\\..\\win.shp", False),
])
def test_unsafe_plu_archive_refused_by_cli_and_recipe(tmp_path: Path, member: str, symlink: bool) -> None:
    absolute = tmp_path / "outside" / "absolute.shp"  # an absolute member name, under the test's own folder
    member = member.format(absolute=absolute)
    archive = _evil_plu_zip(tmp_path / "plu.zip", member, symlink=symlink)
    result = runner.invoke(app, ["zoning", "validate", str(archive)], terminal_width=1000)
    assert result.exit_code == 4 and "refusing archive member" in result.output, result.output
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: z\nterritory:\n  plu: {archive}\noutput: {tmp_path / 'run'}\n", encoding="utf-8")
    result = runner.invoke(app, ["recipe", "run", str(recipe)], terminal_width=1000)
    assert result.exit_code == 4 and "refusing archive member" in result.output, result.output
    assert not (tmp_path / "run" / "manifest.json").exists()
    assert not absolute.exists() and not (tmp_path.parent / "escaped.shp").exists()


def test_unsafe_hub_product_is_downloaded_but_never_extracted(tmp_path: Path) -> None:
    from test_cdse import FakeCdse, fast, query

    from territoire_geo.imagery import fetch

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("S2A_MSIL2A_20220404T103021_N0400_R108_T31TFJ_20220404T120000.SAFE/MTD_MSIL2A.xml", "<x/>")
        archive.writestr("S2A_MSIL2A_20220404T103021_N0400_R108_T31TFJ_20220404T120000.SAFE/../../../slip.txt", "x")
    fake = FakeCdse(evil.read_bytes(), expires_in=3600)
    with fake.server:
        source = fake.source(fast())
        items = source.search(query(max_cloud=None))[:1]
        with pytest.raises(DataError, match=r"refused \('\.\.' component") as info:
            fetch(items, ["red"], tmp_path / "cache", source=source)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.rglob("slip.txt")) and not (tmp_path.parent / "slip.txt").exists()
    assert not list((tmp_path / "cache").rglob("*.SAFE"))  # nothing extracted
