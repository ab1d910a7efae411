"""Every shipped recipe runs on data_samples; outputs are checked by value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from territoire_geo.provenance import verify_run
from territoire_geo.recipes.tools import run_file

REPO = Path(__file__).resolve().parents[2]


def _run(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(name) / "run"
    run_file(REPO / "recipes" / f"{name}.yaml", output=out)
    assert verify_run(out).intact
    return out


@pytest.fixture(scope="module")
def reserve(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run("reserve-fonciere", tmp_path_factory)


def test_reserve_fonciere_ranks_au_zones_and_explains_exclusions(reserve: Path) -> None:
    scores = pd.read_csv(reserve / "scores.csv")
    top = scores.sort_values("rank").head(2)
    assert set(top["LIBELLE"]) == {"IAU", "IIAU"} and set(top["TYPEZONE"]) == {"AUc"}
    excluded = scores[scores["exclusion"].notna()]
    assert (excluded["TYPEZONE"].isin(["A", "N"]) | excluded["exclusion"].str.contains("boisé|PPR|Natura")).all()
    natural = scores[scores["TYPEZONE"] == "N"]
    assert natural["exclusion"].notna().all() and natural["exclusion_rules"].str.contains("zone_n").all()
    assert excluded["exclusion"].str.contains("espace boisé classé").sum() >= 1  # EBC units, reason shown
    assert excluded["rank"].isna().all() and scores["rank"].dropna().min() == 1
    assert scores["reliability"].eq(1.0).all()  # every layer present
    contrib = [c for c in scores.columns if c.startswith("contrib_")]
    ranked = scores[scores["rank"].notna()]
    assert (ranked[contrib].sum(axis=1) - ranked["score"]).abs().max() < 1e-6  # score = sum of contributions
    sens = pd.read_csv(reserve / "sensibilite.csv")
    assert {"rank_min", "rank_max", "top_k_share"} <= set(sens.columns)


def test_reserve_fonciere_scene_report_and_manifest(reserve: Path) -> None:
    html = (reserve / "scene.html").read_text(encoding="utf-8")
    external = re.compile(r"""<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.I)
    tags_only = re.sub(r"(<script\b[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S)  # drop inline JS text
    assert not external.search(tags_only) and len(html) < 8_000_000
    report = (reserve / "rapport.html").read_text(encoding="utf-8")
    assert "IIAU" in report and not external.search(report)
    manifest = json.loads((reserve / "manifest.json").read_text())
    outputs = {o["path"] for o in manifest["outputs"]}
    assert {"scene.html", "rapport.html", "unites_scores.gpkg", "scores.csv"} <= outputs
    roles = {i["role"] for i in manifest["inputs"]}
    assert {"plu", "layer:rga", "layer:ppr_covadis", "layer:distance"} <= roles
    styles = gpd.read_file(reserve / "unites_scores.gpkg", layer="layer_styles", ignore_geometry=True)
    assert "graduatedSymbol" in styles.loc[0, "styleQML"]


def test_the_change_command_and_the_recipe_give_the_same_change(reserve: Path, tmp_path: Path) -> None:
    """One pipeline (``analysis.change.detect``): same summary rows and same patches by both paths."""
    from territoire_geo.workflows import detect_change

    plu = REPO / "data_samples" / "plu" / "30014_PLU_20171013" / "Donnees_geographiques" / \
        "30014_ZONE_URBA_20171013.shp"
    by_command = detect_change(REPO / "data_samples" / "stac", plu, "2020-01-01/2021-12-31",
                               "2022-01-01/2023-12-31", tmp_path / "change", min_area_m2=1000,
                               collections="sentinel-2-l2a")
    by_recipe = pd.read_csv(reserve / "changements_par_classe.csv").to_dict("records")
    assert by_recipe == by_command["summary"]  # same keys, same classes, same figures
    planted = next(row for row in by_recipe if row["class_name"] == "new_artificial_surface")
    assert planted["patches"] == 1 and planted["area_ha"] == pytest.approx(2.54, rel=0.15)
    command_patches = gpd.read_parquet(tmp_path / "change" / "change_patches.parquet")
    recipe_patches = gpd.read_file(reserve / "alertes_changement.gpkg")
    assert command_patches["class"].tolist() == recipe_patches["class"].tolist()
    assert command_patches.geometry.iloc[0].equals(recipe_patches.geometry.iloc[0])
    assert command_patches["first_seen"].iloc[0] == pd.Timestamp(recipe_patches["first_seen"].iloc[0])


def test_missing_layer_lowers_reliability(tmp_path: Path) -> None:
    import yaml

    recipe = yaml.safe_load((REPO / "recipes" / "reserve-fonciere.yaml").read_text(encoding="utf-8"))
    base = REPO / "recipes"
    recipe["territory"]["plu"] = str((base / recipe["territory"]["plu"]).resolve())
    recipe["imagery"]["source"] = str((base / recipe["imagery"]["source"]).resolve())
    recipe["layers"] = [{**layer, "path": str((base / layer["path"]).resolve())} for layer in recipe["layers"]
                        if layer["kind"] != "rga"]
    recipe.pop("scene")
    recipe.pop("report")
    recipe["output"] = str(tmp_path / "run")
    path = tmp_path / "no-rga.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    run_file(path)
    scores = pd.read_csv(tmp_path / "run" / "scores.csv")
    assert (scores["reliability"] < 1).all()
    assert scores["reliability"].round(3).nunique() == 1
    top = scores.sort_values("rank").head(2)
    assert set(top["LIBELLE"]) == {"IAU", "IIAU"}  # still on top, but reported as less reliable


def test_zan_suivi_accounts_the_planted_change(tmp_path_factory: pytest.TempPathFactory) -> None:
    out = _run("zan-suivi", tmp_path_factory)
    table = pd.read_csv(out / "artificialisation.csv", dtype={"commune": str, "period": str})
    row = table.set_index("period").loc["2022"]
    assert row["commune"] == "30014" and row["area_ha"] == pytest.approx(2.54, rel=0.15)
    assert row["area_ha_AUc"] == pytest.approx(row["area_ha"]) and row["share_a_n"] == 0
    au = gpd.read_file(out / "zones_au_consommation.gpkg")
    assert au.set_index("LIBELLE").loc["IIAU", "status"] in ("partly_consumed", "consumed")
    assert au.set_index("LIBELLE").loc["IAU", "status"] == "reserve"


def test_suivi_cultures_flags_the_failed_maize_parcel(tmp_path_factory: pytest.TempPathFactory) -> None:
    out = _run("suivi-cultures", tmp_path_factory)
    series = pd.read_csv(out / "ndvi_parcelles.csv", dtype={"parcel": str})
    assert series["parcel"].nunique() == 9 and series["date"].nunique() == 14
    anomalies = pd.read_csv(out / "anomalies_parcelles.csv", dtype={"parcel": str})
    flagged = anomalies[anomalies["anomaly"]]
    assert set(flagged["parcel"]) == {"2932818"}
    assert set(flagged["date"]) <= {"2022-07-16", "2022-08-20", "2022-09-24"} and len(flagged) >= 2
    assert {p.name for p in (out / "figures").glob("ndvi_*.png")} >= {"ndvi_MIE.png", "ndvi_PPH.png"}


def test_vegetalisation_urbaine_sees_the_field_built(tmp_path_factory: pytest.TempPathFactory) -> None:
    out = _run("vegetalisation-urbaine", tmp_path_factory)
    zones = pd.read_csv(out / "vegetalisation_zones.csv").set_index("LIBELLE")
    assert zones.loc["IIAU", "vegetation_change_pts"] < -40
    urban = zones[zones["TYPEZONE"] == "U"]
    assert urban["vegetation_share_after"].between(0.1, 0.6).all()
    assert urban["vegetation_change_pts"].abs().max() < 5
    assert pd.read_csv(out / "ndvi_zones.csv")["zone"].nunique() == 4


def test_implantation_entreprises_keeps_zones_whose_destinations_allow_activity(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    out = _run("implantation-entreprises", tmp_path_factory)
    scores = pd.read_csv(out / "scores.csv", dtype={"dest_codes": str}).set_index("LIBELLE")
    assert scores.loc["IIAU", "dest_allowed"] and scores.loc["IIAU", "rank"] > 0
    assert not scores.loc["Ubp", "dest_allowed"] and "destinations" in scores.loc["Ubp", "exclusion"]
    ranked = scores[scores["rank"].notna()]
    assert ranked["dest_allowed"].all() and (ranked["available_ha"] >= 0.2).all()
    assert (out / "scene.html").exists()
