"""The HTML run report: self-contained, French/English, escaped, honest about what is missing."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from territoire_geo.errors import ConfigError, DataError, ExportError
from territoire_geo.present.report import REPORT, build_report
from territoire_geo.present.report._data import zan_from_alerts, zan_summary
from territoire_geo.present.report._text import format_ha, format_percent

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert(1)</script>"
HEADINGS_FR = ("Chiffres clés", "Carte des scores des unités foncières",
               "Contributions des critères aux unités les mieux classées", "Alertes de changement",
               "Artificialisation (ZAN)", "Suivi de la végétation (NDVI)", "Validation du PLU",
               "Provenance et reproductibilité")
HEADINGS_EN = ("Key figures", "Land-unit score map", "Criterion contributions of the top-ranked units",
               "Change alerts", "Land take (ZAN)", "Vegetation monitoring (NDVI)", "PLU validation",
               "Provenance and reproducibility")
EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:|//)""", re.IGNORECASE)


# ---------------------------------------------------------------- run folders


@pytest.fixture(scope="session")
def zan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zan-suivi recipe run once on the sample territory (read-only: copy before writing)."""
    from territoire_geo.recipes.tools import run_file

    result = run_file(REPO / "recipes" / "zan-suivi.yaml", output=tmp_path_factory.mktemp("zan") / "run")
    return result.run_dir


def _copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".cache", "figures", REPORT))
    return target


@pytest.fixture
def run_dir(zan_run: Path, tmp_path: Path) -> Path:
    """A private copy of the zan-suivi run folder, without the report the recipe wrote."""
    return _copy_run(zan_run, tmp_path / "run")


def make_synthetic(run_dir: Path, *, hostile: bool = False) -> Path:
    """Add fake scores, sensitivity, ZAN and NDVI deliverables (and a 3D scene) to a run folder.

    With ``hostile``, the IIAU zone is renamed to a script tag in the zoning, the units,
    the CSVs and the recipe title, to check that the report escapes every value.
    """
    rng = np.random.default_rng(20171013)
    zones = gpd.read_file(run_dir / "zonage.gpkg", layer="zone_urba")
    if hostile:
        zones.loc[zones["LIBELLE"] == "IIAU", "LIBELLE"] = HOSTILE
        zones.to_file(run_dir / "zonage.gpkg", layer="zone_urba", driver="GPKG", engine="pyogrio")
        manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        manifest["recipe"]["title"] = f"Suivi {HOSTILE} & co"
        (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    _write_units(run_dir, zones, rng)
    _write_ndvi(run_dir, zones, rng, hostile)
    commune = HOSTILE if hostile else "30014"
    pd.DataFrame({"commune": [commune] * 4, "TYPEZONE": ["U", "AUc", "A", "N"], "year": [2022, 2022, 2023, 2023],
                  "area_ha": [0.8, 2.57, 0.42, 0.1], "share_of_total": [0.2058, 0.6608, 0.108, 0.0257]}
                 ).to_csv(run_dir / "artificialisation.csv", index=False)
    (run_dir / "scene.html").write_text("<!DOCTYPE html><title>scène</title>", encoding="utf-8")
    return run_dir


def _write_units(run_dir: Path, zones: gpd.GeoDataFrame, rng: np.random.Generator) -> None:
    units = zones[["LIBELLE", "TYPEZONE", "geometry"]].copy()
    units["area_ha"] = units.area / 10_000
    criteria = {"surface": 25, "desserte": 20, "reseaux": 15, "equipements": 15, "sols": 10}
    for name, weight in criteria.items():
        units[f"contrib_{name}"] = np.round(rng.uniform(0.2, 1.0, len(units)) * weight, 1)
    units["contrib_risques"] = -np.round(rng.uniform(0, 8, len(units)), 1)
    units.loc[units["TYPEZONE"] == "AUc", [f"contrib_{n}" for n in criteria]] *= 1.15
    contrib = [c for c in units.columns if c.startswith("contrib_")]
    units["score"] = units[contrib].sum(axis=1).clip(0, 100).round(1)
    units["reliability"] = np.round(rng.uniform(0.55, 0.95, len(units)), 2)
    units["exclusion"] = ""
    units.loc[units["TYPEZONE"] == "N", "exclusion"] = "zone naturelle (N) : hors réserve foncière"
    units.loc[units["LIBELLE"] == "Ap", "exclusion"] = "secteur paysager protégé (Ap)"
    kept = units["exclusion"] == ""
    units["rank"] = pd.NA
    units.loc[kept, "rank"] = units.loc[kept, "score"].rank(ascending=False, method="first").astype(int)
    units["rank"] = units["rank"].astype("Int64")
    units.to_file(run_dir / "unites_scores.gpkg", layer="unites", driver="GPKG", engine="pyogrio")
    units.drop(columns="geometry").to_csv(run_dir / "scores.csv", index=False)
    best = units[kept].sort_values("rank").head(12)
    spread = rng.integers(0, 4, len(best))
    pd.DataFrame({"unit": best["LIBELLE"], "rank_min": np.maximum(1, best["rank"] - spread),
                  "rank_median": best["rank"], "rank_max": best["rank"] + spread * 2,
                  "top_k_share": np.round(np.clip(1 - best["rank"].to_numpy() / 10, 0, 1), 2)}
                 ).to_csv(run_dir / "sensibilite.csv", index=False)


def _write_ndvi(run_dir: Path, zones: gpd.GeoDataFrame, rng: np.random.Generator, hostile: bool) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    dates = pd.to_datetime([i["datetime"] for i in manifest["items"]], utc=True)
    base = {"U": 0.25, "AUc": 0.55, "A": 0.5, "N": 0.65}
    rows = []
    for label, kind in zones[["LIBELLE", "TYPEZONE"]].drop_duplicates().itertuples(index=False):
        for date in dates:
            season = 0.15 * np.sin((date.month - 3) / 12 * 2 * np.pi)
            value = base.get(kind, 0.4) + season + rng.normal(0, 0.02)
            if kind == "AUc" and date.year >= 2022:
                value -= 0.3
            rows.append({"date": date.date().isoformat(), "zone": label, "ndvi_mean": round(value, 3)})
    pd.DataFrame(rows).to_csv(run_dir / "ndvi_zones.csv", index=False)
    groups = {"Blé tendre": 0.5, "Maïs grain": 0.45, "Vignes": 0.35}
    if hostile:
        groups = {"<img src=x onerror=alert(2)>": 0.5}
    rows = []
    for g, (group, level) in enumerate(groups.items()):
        for parcel in range(5):
            for date in dates:
                season = 0.25 * np.sin((date.month - 2 - 2 * g) / 12 * 2 * np.pi)
                rows.append({"date": date.date().isoformat(), "parcel_id": f"P{g}{parcel}", "crop_group": group,
                             "ndvi_mean": round(level + season + rng.normal(0, 0.04), 3)})
    pd.DataFrame(rows).to_csv(run_dir / "ndvi_parcelles.csv", index=False)


@pytest.fixture
def synthetic_run(run_dir: Path) -> Path:
    """A run folder with every deliverable the report knows."""
    return make_synthetic(run_dir)


def _section(html: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">(.*?)</section>', html, re.DOTALL)
    assert match, f"no section {key}"
    return match.group(1)


# ---------------------------------------------------------------- the real zan-suivi run


def test_report_of_the_zan_run_is_one_self_contained_file(run_dir: Path) -> None:
    path = build_report(run_dir)
    assert path == run_dir / REPORT
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="fr">' in html
    assert not EXTERNAL.search(html)
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    images = re.findall(r'<img src="([^"]*)"', html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert (run_dir / "figures" / "carte_alertes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run_dir.rglob("*.part"))
    for heading in HEADINGS_FR:
        assert heading in html


def _hectares(cell: str) -> float:
    return float(re.search(r"(\d+,\d+)\u00a0ha", cell).group(1).replace(",", "."))


def test_planted_change_appears_in_the_zan_table(run_dir: Path) -> None:
    html = build_report(run_dir).read_text(encoding="utf-8")
    zan = _section(html, "zan")
    assert "artificialisation.csv" in zan  # the run's own accounts (one column per zone type)
    heads = re.findall(r"<th(?: [^>]*)?>(.*?)</th>", zan)
    first = re.findall(r"<td(?: [^>]*)?>(.*?)</td>", re.findall(r"<tr>(.*?)</tr>", zan)[1])
    row = dict(zip(heads, first, strict=False))
    assert 2.4 <= _hectares(row["dont AUc"]) <= 2.7 and row["Commune"] == "30014" and row["Période"] == "2022"
    assert "0,00\u00a0ha, soit 0,0\u202f% du total" in zan  # nothing in A or N zones
    au = next(r for r in re.findall(r"<tr>(.*?)</tr>", zan) if "IIAU" in r)
    assert "consommée" in au and 2.4 <= _hectares(au.split("</td>")[4]) <= 2.7
    assert "Contient des données Copernicus Sentinel-2" in html and "Géoportail de l&#x27;Urbanisme" in html


def test_zan_table_falls_back_on_alerts_and_zoning(run_dir: Path) -> None:
    (run_dir / "artificialisation.csv").unlink()
    zan = _section(build_report(run_dir).read_text(encoding="utf-8"), "zan")
    assert "Estimation minimale" in zan
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", zan) if "AUc" in r)
    assert 2.4 <= _hectares(row) <= 2.7
    assert "IIAU" in row and "30014" in row and "2022" in row


def test_missing_sections_are_announced_with_the_reason(run_dir: Path) -> None:
    html = build_report(run_dir).read_text(encoding="utf-8")
    scores = _section(html, "scores")
    assert "Section absente" in scores and "unites_scores.gpkg" in scores and "scoring" in scores
    assert "Section absente" in _section(html, "contributions")
    ndvi = _section(html, "ndvi")
    assert "Section absente" in ndvi and "ndvi_zones.csv" in ndvi
    for present in ("changements", "zan", "plu", "provenance"):
        assert "Section absente" not in _section(html, present)
    assert html.count("(absente)") == 3  # flagged in the table of contents
    assert "n&#x27;a pas pu être construite" not in html


def test_plu_validation_and_provenance(run_dir: Path) -> None:
    html = build_report(run_dir).read_text(encoding="utf-8")
    plu = _section(html, "plu")
    assert "AUc — à urbaniser (ouverte)" in plu and "7,31\u00a0ha" in plu
    assert "8 paire(s) de zones, 0,84\u00a0ha" in plu and "25 trou(s)" in plu and "cp1252" in plu
    prov = _section(html, "provenance")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    sha = manifest["inputs"][0]["sha256"]
    assert f"{sha[:12]}…" in prov and f'title="{sha}"' in prov
    assert "S2B_T31TFJ_20200414T103021_L2A" in prov and "05.00" in prov and "−0,10" in prov
    assert "GDAL (rasterio)" in prov and "zan-suivi" in prov


def test_english_report(run_dir: Path) -> None:
    html = build_report(run_dir, lang="en", out=run_dir / "report_en.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html
    for heading in HEADINGS_EN:
        assert heading in html
    assert "Section not available" in html and "Section absente" not in html
    assert "2.57\u00a0ha" in _section(html, "zan")
    assert (run_dir / "figures" / "carte_alertes_en.png").exists()


def test_existing_report_is_not_overwritten(run_dir: Path) -> None:
    path = build_report(run_dir)
    path.write_text("edited", encoding="utf-8")
    with pytest.raises(ExportError, match="--overwrite"):
        build_report(run_dir)
    assert path.read_text(encoding="utf-8") == "edited"
    path.unlink()
    with pytest.raises(ExportError, match=r"carte_alertes\.png"):  # stale figures are not replaced either
        build_report(run_dir)
    assert build_report(run_dir, overwrite=True).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_unfinished_run_and_bad_arguments(tmp_path: Path, run_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="the run did not finish"):
        build_report(empty)
    with pytest.raises(DataError, match="not a run folder"):
        build_report(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="lang"):
        build_report(run_dir, lang="de")
    assert not (run_dir / REPORT).exists()


# ---------------------------------------------------------------- a run with every deliverable


def test_synthetic_run_has_every_section(synthetic_run: Path) -> None:
    html = build_report(synthetic_run).read_text(encoding="utf-8")
    assert "Section absente" not in html and "(absente)" not in html
    assert not EXTERNAL.search(html)
    figures = {p.name for p in (synthetic_run / "figures").iterdir()}
    assert figures == {"carte_scores.png", "contributions.png", "carte_alertes.png", "ndvi_zones.png",
                       "ndvi_parcelles.png"}
    assert html.count("data:image/png;base64,") == 5
    scores = _section(html, "scores")
    assert "Unités les mieux classées" in scores and "Robustesse du classement" in scores
    assert "secteur paysager protégé (Ap)" in scores
    zan = _section(html, "zan")
    assert "artificialisation.csv" in zan and "0,42\u00a0ha" in zan and "66,1\u202f%" in zan
    assert "0,52\u00a0ha, soit 13,4\u202f% du total (3,89\u00a0ha)" in zan
    assert '<a href="scene.html">scene.html</a>' in html


def test_wide_artificialisation_table(run_dir: Path) -> None:
    """The wide layout of ``zonal.artificialisation`` (one column per zone type) is rendered too."""
    pd.DataFrame({"commune": ["30014"], "period": ["2022"], "n_alerts": [2], "area_ha": [3.0], "area_ha_U": [0.5],
                  "area_ha_AUc": [1.5], "area_ha_A": [0.75], "area_ha_N": [0.25], "area_ha_outside": [0.0],
                  "share_a_n": [1 / 3]}).to_csv(run_dir / "artificialisation.csv", index=False)
    zan = _section(build_report(run_dir).read_text(encoding="utf-8"), "zan")
    assert "dont AUc" in zan and "dont hors zonage" in zan and "Part en A et N" in zan
    assert "1,50\u00a0ha" in zan and "33,3\u202f%" in zan
    assert "1,00\u00a0ha, soit 33,3\u202f% du total (3,00\u00a0ha)" in zan


def test_every_value_is_escaped(run_dir: Path) -> None:
    html = build_report(make_synthetic(run_dir, hostile=True)).read_text(encoding="utf-8")
    assert HOSTILE not in html and "<img src=x" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<h1>Suivi {escaped} &amp; co</h1>" in html and f"<title>Suivi {escaped} &amp; co</title>" in html
    assert escaped in _section(html, "changements")  # the alert's zone name from the zoning
    assert escaped in _section(html, "scores")  # units table and sensitivity CSV
    assert escaped in _section(html, "zan")  # commune from the CSV
    assert "<script" not in html


def test_unreadable_deliverables_are_announced(run_dir: Path) -> None:
    (run_dir / "unites_scores.gpkg").write_bytes(b"not a geopackage")
    (run_dir / "ndvi_zones.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert "unites_scores.gpkg est illisible" in _section(html, "scores")
    assert "ndvi_zones.csv n&#x27;a pas les colonnes attendues" in _section(html, "ndvi")


def test_no_alerts_and_units_in_degrees(run_dir: Path) -> None:
    alerts = gpd.read_file(run_dir / "alertes_changement.gpkg")
    alerts.iloc[:0].to_file(run_dir / "alertes_changement.gpkg", layer="alertes", driver="GPKG", engine="pyogrio")
    (run_dir / "artificialisation.csv").unlink()  # recomputed from the (empty) alerts
    (run_dir / "zones_au_consommation.gpkg").unlink()
    zones = gpd.read_file(run_dir / "zonage.gpkg", layer="zone_urba")
    units = zones[["LIBELLE", "TYPEZONE", "geometry"]].to_crs(4326).assign(score=50.0, rank=range(1, len(zones) + 1))
    units.to_file(run_dir / "unites_scores.gpkg", layer="unites", driver="GPKG", engine="pyogrio")
    html = build_report(run_dir, lang="en").read_text(encoding="utf-8")
    assert "No change alert over the period." in _section(html, "changements")
    assert "No new artificial surface detected." in _section(html, "zan")
    assert "carte_scores.png" not in html and (run_dir / "figures" / "carte_scores_en.png").exists()
    assert "could not be built" not in html
    assert "no contrib_&lt;criterion&gt; column" in _section(html, "contributions")


# ---------------------------------------------------------------- pieces


def test_zan_from_alerts_counts_overlapping_zones_once() -> None:
    zones = gpd.GeoDataFrame({"LIBELLE": ["Ua", "A1", "N1"], "TYPEZONE": ["U", "A", "N"],
                              "IDURBA": ["30014_PLU_20171013"] * 3},
                             geometry=[box(0, 0, 100, 100), box(50, 0, 200, 100), box(200, 0, 300, 100)],
                             crs="EPSG:2154")
    alerts = gpd.GeoDataFrame({"class": [3, 1], "first_seen": ["2022-04-14T10:30:21", None]},
                              geometry=[box(0, 0, 400, 100), box(0, 0, 10, 10)], crs="EPSG:2154")
    table = zan_from_alerts(alerts, zones, {"periods": {"after": "2022-01-01/2023-12-31"}})
    assert table["area_ha"].sum() == pytest.approx(4.0)
    by_type = dict(zip(table["TYPEZONE"], table["area_ha"], strict=True))
    assert by_type == pytest.approx({"U": 1.0, "A": 1.0, "N": 1.0, "": 1.0})
    assert set(table["commune"]) == {"30014"} and set(table["year"]) == {"2022"}
    assert zan_summary(table) == pytest.approx((4.0, 2.0))


def test_french_number_formats() -> None:
    assert format_ha(2.5449, "fr") == "2,54\u00a0ha"
    assert format_ha(2398.07, "fr") == "2\u202f398,07\u00a0ha"
    assert format_ha(2398.07, "en") == "2,398.07\u00a0ha"
    assert format_percent(0.125, "fr") == "12,5\u202f%" and format_percent(-0.0001, "fr") == "0,0\u202f%"
    assert format_ha(float("nan"), "fr") == "—"


# ---------------------------------------------------------------- command line


@pytest.fixture
def cli() -> Iterator[object]:
    from territoire_geo_cli.main import app
    from typer.testing import CliRunner

    yield lambda *args: CliRunner().invoke(app, [str(a) for a in args], terminal_width=200)


def test_cli_report(cli, run_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "out" / "report.html"
    result = cli("report", run_dir, "--lang", "en", "--out", target)
    assert result.exit_code == 0, result.output
    assert str(target) in result.stdout.replace("\n", "") and target.exists()
    again = cli("report", run_dir, "--lang", "en", "--out", target)
    assert again.exit_code == 5 and "--overwrite" in again.output
    assert cli("report", run_dir, "--lang", "en", "--out", target, "--overwrite").exit_code == 0
    missing = cli("report", tmp_path / "out")
    assert missing.exit_code == 4 and "did not finish" in missing.output
    assert cli("report", run_dir, "--lang", "de").exit_code == 2
