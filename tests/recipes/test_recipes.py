"""Recipes: validation with line numbers, cached runs, manifest, verify, rerun, secrets."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from territoire_geo_cli.main import app
from typer.testing import CliRunner

from territoire_geo import cancel
from territoire_geo.errors import ExportError, NoDataFoundError, RecipeError
from territoire_geo.present.report._text import format_date
from territoire_geo.provenance import Manifest, verify_run
from territoire_geo.recipes import load_recipe, parse_recipe
from territoire_geo.recipes.tools import rerun, run_file

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
runner = CliRunner()


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates(path: Path) -> None:
    result = runner.invoke(app, ["recipe", "validate", str(path)])
    assert result.exit_code == 0, result.output


BASE = """\
name: test
territory:
  plu: {plu}
imagery:
  source: {stac}
periods:
  before: 2020-01-01/2021-12-31
  after: 2022-01-01/2023-12-31
output: {out}
"""


def _write(tmp_path: Path, text: str, samples: Path, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.format(plu=samples / "plu" / "30014_PLU_20171013", stac=samples / "stac",
                                out=tmp_path / "run"), encoding="utf-8")
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("territory:", "territorry:"), r"r\.yaml:2: territorry: unknown key"),
    (lambda t: t.replace("imagery:\n", "imagery:\n  max_cloud: lots\n"), r"r\.yaml:5: imagery\.max_cloud: Input should"),
    (lambda t: t + "indices: [ndvi]\ncustom_indices:\n  evil: \"__import__('os')\"\n", None),
    (lambda t: t.replace("name: test", "name: [unclosed"), r"r\.yaml:2: not valid YAML"),
    (lambda t: t + "scoring:\n  weights:\n    slope: -1\n", r"r\.yaml:1[0-2]: scoring\.weights: weight of slope"),
    (lambda t: t + "territory2: {{}}\n", r"territory2: unknown key"),
])
def test_broken_recipes_point_at_the_line(tmp_path: Path, samples: Path, edit: object, message: str | None) -> None:
    path = _write(tmp_path, edit(BASE), samples)  # type: ignore[operator]
    if message is None:  # a bad expression is caught by `recipe validate`, with the token
        result = runner.invoke(app, ["recipe", "validate", str(path)])
        assert result.exit_code == 2 and "__import__" in result.output, result.output
        return
    with pytest.raises(RecipeError, match=message):
        load_recipe(path)
    result = runner.invoke(app, ["recipe", "validate", str(path)], terminal_width=300)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("section", ["scoring: {{}}", "greening: {{}}"])
def test_steps_on_plu_zones_refuse_a_territory_without_plu(tmp_path: Path, samples: Path, section: str) -> None:
    text = BASE.replace("plu: {plu}", "aoi: {plu}/Donnees_geographiques/30014_ZONE_URBA_20171013.shp") + section
    with pytest.raises(RecipeError, match=f"{section.split(':')[0]} needs territory.plu"):
        load_recipe(_write(tmp_path, text, samples))


def test_scene_of_a_territory_without_plu_shows_the_area(tmp_path: Path, samples: Path) -> None:
    text = BASE.replace("plu: {plu}", "aoi: {plu}/Donnees_geographiques/30014_ZONE_URBA_20171013.shp")
    result = run_file(_write(tmp_path, text + "scene: {{}}\n", samples))
    html = (result.run_dir / "scene.html").read_text(encoding="utf-8")
    assert "Copernicus Sentinel-2 (12 scènes" in html and "PLU " not in html.split("tg-source")[1][:300]
    assert result.summary["change_patches"] >= 1  # the planted change is still found and drawn


def test_missing_file_and_bad_encoding(tmp_path: Path, samples: Path) -> None:
    path = _write(tmp_path, BASE.replace("plu: {plu}", "plu: nowhere/plu.zip"), samples)
    result = runner.invoke(app, ["recipe", "validate", str(path)], terminal_width=300)
    assert result.exit_code == 2 and "missing file or folder" in result.output
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: réserve\n".encode("latin-1"))
    with pytest.raises(RecipeError, match="not UTF-8"):
        load_recipe(latin)
    huge = tmp_path / "huge.yaml"
    huge.write_text("name: x\n" + "# " + "x" * 2_000_000)
    with pytest.raises(RecipeError, match="too large"):
        load_recipe(huge)


def test_toml_recipe(tmp_path: Path, samples: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text(f'name = "t"\n[territory]\nplu = "{samples / "plu" / "30014_PLU_20171013"}"\n'
                    '[territory.extra]\n', encoding="utf-8")
    with pytest.raises(RecipeError, match=r"territory\.extra: unknown key"):
        load_recipe(path)


@pytest.fixture(scope="session")
def zan_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("zan") / "run"
    return out, run_file(REPO / "recipes" / "zan-suivi.yaml", output=out)


def test_zan_recipe_outputs_by_value(zan_run: tuple[Path, object], samples: Path) -> None:
    out, result = zan_run
    assert {"zonage.gpkg", "changements_classes.tif", "alertes_changement.gpkg", "manifest.json"} <= {
        p.name for p in out.iterdir()}
    planted = gpd.read_file(samples / "truth" / "planted_change.geojson")
    alerts = gpd.read_file(out / "alertes_changement.gpkg")
    artificial = alerts[alerts["class"] == 3]
    assert len(artificial) == 1
    assert artificial.area.sum() == pytest.approx(planted.area.sum(), rel=0.15)
    assert artificial.intersection(planted.union_all()).area.sum() / planted.area.sum() > 0.9
    with rasterio.open(out / "changements_classes.tif") as src:
        assert src.colormap(1)[3][:3] == (178, 24, 43) and src.crs.to_epsg() == 2154
    styles = gpd.read_file(out / "zonage.gpkg", layer="layer_styles", ignore_geometry=True)
    assert "TYPEZONE" in styles.loc[0, "styleQML"]
    assert result.summary["new_artificial_ha"] == pytest.approx(2.54, rel=0.15)


def test_manifest_lists_inputs_items_versions_and_outputs(zan_run: tuple[Path, object]) -> None:
    out, _ = zan_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["software"]["territoire_geo"] and manifest["software"]["GDAL (rasterio)"]
    assert [i["role"] for i in manifest["inputs"]] == ["plu"] and len(manifest["inputs"][0]["sha256"]) == 64
    baselines = {i["id"][11:19]: (i["processing_baseline"], i["offset"]) for i in manifest["items"]}
    assert baselines["20200623"] == ("05.00", pytest.approx(-0.1)) and baselines["20210419"] == ("03.00", 0.0)
    assert {o["path"] for o in manifest["outputs"]} >= {"zonage.gpkg", "changements_classes.tif"}
    assert "name: zan-suivi" in manifest["recipe_text"]


def test_rerun_is_a_cache_hit_and_one_change_reruns_only_downstream(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run_file(REPO / "recipes" / "zan-suivi.yaml", output=out)
    assert "composites" in first.computed_steps
    with pytest.raises(ExportError, match="--overwrite"):
        run_file(REPO / "recipes" / "zan-suivi.yaml", output=out)
    again = run_file(REPO / "recipes" / "zan-suivi.yaml", output=out, overwrite=True)
    assert again.computed_steps == ()
    text = (REPO / "recipes" / "zan-suivi.yaml").read_text().replace("min_area_m2: 1000", "min_area_m2: 5000")
    edited = REPO / "recipes" / "_tmp_edited.yaml"
    edited.write_text(text)
    try:
        changed = run_file(edited, output=out, overwrite=True)
    finally:
        edited.unlink()
    assert changed.computed_steps == ("change", "zan")  # the step and what reads it, nothing upstream


def test_a_cancel_request_stops_the_run_at_the_next_step_and_it_resumes(tmp_path: Path) -> None:
    """An interrupt a library swallowed still stops the run: the flag is checked between steps."""
    out = tmp_path / "run"

    def cancel_after_composites(event: str, **info: object) -> None:
        if event == "step-done" and info["name"] == "composites":
            cancel.request_cancel()  # what the CLI's SIGINT handler does besides raising

    try:
        with pytest.raises(KeyboardInterrupt):
            run_file(REPO / "recipes" / "zan-suivi.yaml", output=out, progress=cancel_after_composites)
    finally:
        cancel.clear()
    assert not (out / "manifest.json").exists()
    steps = sorted(p.name.split("-")[0] for p in (out / ".cache").iterdir() if (p / ".done").exists())
    assert "composites" in steps and "change" not in steps  # stopped right after the step that was running
    resumed = run_file(REPO / "recipes" / "zan-suivi.yaml", output=out)
    assert "composites" in resumed.cached_steps and (out / "manifest.json").exists()


def test_sigint_sets_the_cancel_flag_and_raises() -> None:
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the test runner was given
    try:
        with cancel.sigint_sets_flag():
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            assert cancel.requested()
            with pytest.raises(KeyboardInterrupt):
                cancel.check()
        assert not cancel.requested() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # started in the background: stays deaf to Ctrl-C
        with cancel.sigint_sets_flag():
            signal.raise_signal(signal.SIGINT)
            assert not cancel.requested() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_interrupted_run_resumes_without_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_file(REPO / "recipes" / "zan-suivi.yaml", output=out)
    (out / "manifest.json").unlink()  # as if killed before the end
    (out / "zonage.gpkg").unlink()
    resumed = run_file(REPO / "recipes" / "zan-suivi.yaml", output=out)
    assert resumed.computed_steps == () and (out / "zonage.gpkg").exists() and (out / "manifest.json").exists()


def test_report_shows_the_finish_time_the_manifest_records(zan_run: tuple[Path, object]) -> None:
    out, _ = zan_run
    finished = json.loads((out / "manifest.json").read_text())["finished"]
    shown = format_date(finished, "fr", time=True)
    assert f"Traitement terminé le {shown}" in (out / "rapport.html").read_text(encoding="utf-8")


def test_manifest_write_keeps_a_finish_time_already_set(tmp_path: Path) -> None:
    manifest = Manifest(recipe={"name": "x"})
    manifest.finished = "2024-03-01T10:59:59+00:00"
    manifest.write(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text())["finished"] == "2024-03-01T10:59:59+00:00"
    unset = Manifest(recipe={"name": "x"})
    unset.write(tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text())["finished"] >= unset.started


def test_verify_detects_a_modified_output_and_rerun_is_identical(zan_run: tuple[Path, object],
                                                                 tmp_path: Path) -> None:
    out, _ = zan_run
    assert verify_run(out).intact
    report = rerun(out, output=tmp_path / "again")
    assert report.reproduced, report.different
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with (copy / "changements_par_classe.csv").open("a") as handle:
        handle.write("99,forged,1,1.0\n")
    tampered = verify_run(copy)
    assert not tampered.intact and tampered.modified == ("changements_par_classe.csv",)
    result = runner.invoke(app, ["recipe", "verify", str(copy)])
    assert result.exit_code == 4 and "ALTERED" in result.output


def test_period_with_no_imagery(tmp_path: Path, samples: Path) -> None:
    text = BASE.replace("2020-01-01/2021-12-31", "2010-01-01/2010-12-31").replace(
        "2022-01-01/2023-12-31", "2011-01-01/2011-12-31")
    path = _write(tmp_path, text, samples)
    with pytest.raises(NoDataFoundError, match="no imagery"):
        run_file(path)
    result = runner.invoke(app, ["recipe", "run", str(path), "--overwrite"], terminal_width=300)
    assert result.exit_code == 3 and "no imagery" in result.output


def test_secrets_from_environment_never_reach_outputs(tmp_path: Path, samples: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "S3cr3t-T1tle-9f8e7d"
    monkeypatch.setenv("TERRITOIRE_RECIPE_SECRET", secret)
    text = BASE.replace("name: test", "name: test\ntitle: \"${{TERRITOIRE_RECIPE_SECRET}}\"")
    path = _write(tmp_path, text, samples)
    recipe = load_recipe(path)
    assert recipe.title == secret
    run_file(path)
    for file in (tmp_path / "run").rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["recipe"]["title"] == "${TERRITOIRE_RECIPE_SECRET}"


def test_unset_environment_variable(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="TERRITOIRE_NOT_SET is not set"):
        parse_recipe("name: x\ntitle: ${TERRITOIRE_NOT_SET}\nterritory: {aoi: a.geojson}\n")


def test_dry_run_prints_the_plan(samples: Path) -> None:
    result = runner.invoke(app, ["recipe", "run", str(REPO / "recipes" / "zan-suivi.yaml"), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["steps"][:4] == ["zoning", "imagery", "composites", "change"]
    assert plan["items_found"] == 12 and plan["grid"] == [496, 484]


def test_init_writes_a_template(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    result = runner.invoke(app, ["recipe", "init", "--template", "zan-suivi", "--out", str(target)])
    assert result.exit_code == 0 and "zan-suivi" in target.read_text()
    again = runner.invoke(app, ["recipe", "init", "--template", "zan-suivi", "--out", str(target)])
    assert again.exit_code == 5
    bad = runner.invoke(app, ["recipe", "init", "--template", "nope", "--out", str(tmp_path / "x.yaml")])
    assert bad.exit_code == 2
