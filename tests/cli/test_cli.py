"""The command-line tool: help with examples, JSON output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from territoire_geo_cli.main import app
from typer.testing import CliRunner

runner = CliRunner()
BBOX = "4.33,43.97,4.40,44.03"


def _commands() -> list[list[str]]:
    import typer.main

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            names.extend([[name, sub] for sub in cmd.commands])
        else:
            names.append([name])
    return names


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "territoire-geo" in result.output


def test_show_versions_lists_gdal() -> None:
    result = runner.invoke(app, ["show-versions"])
    assert result.exit_code == 0
    assert "GDAL (rasterio)" in result.output and "territoire_geo" in result.output


def test_search_json_lists_sample_items_with_canonical_bands(samples: Path) -> None:
    result = runner.invoke(app, ["search", "-s", str(samples / "stac"), "-a", BBOX, "-p", "2020/2023",
                                 "-c", "sentinel-2-l2a", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 12
    assert set(rows[0]["bands"]) == {"blue", "green", "red", "rededge1", "nir", "nir08", "swir16", "swir22", "scl"}
    offsets = {r["id"][11:19]: r["bands"]["red"]["offset"] for r in rows}
    assert offsets["20200414"] == 0.0 and offsets["20200623"] == pytest.approx(-0.1)


def test_search_table(samples: Path) -> None:
    result = runner.invoke(app, ["search", "-s", str(samples / "stac"), "-a", BBOX, "-p", "2022",
                                 "--max-cloud", "10"], terminal_width=200)
    assert result.exit_code == 0 and "S2A_T31TFJ_20220414T103021_L2A" in result.output


def test_fetch_then_cached(samples: Path, tmp_path: Path) -> None:
    args = ["fetch", "-s", str(samples / "stac"), "-a", BBOX, "-p", "2023-04", "-b", "red,scl",
            "-d", str(tmp_path / "cache"), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert len(report) == 2 and not any(r["cached"] for r in report)
    second = json.loads(runner.invoke(app, args).stdout)
    assert all(r["cached"] for r in second)


@pytest.mark.parametrize(("args", "code", "message"), [
    (["search", "-s", "no/such/catalog", "-a", BBOX, "-p", "2022"], 2, "not a URL, a profile"),
    (["search", "-s", "http://127.0.0.1:9", "-a", BBOX, "-p", "2022"], 3, "failed after"),
    (["search", "-s", "data_samples/stac", "-a", "missing.geojson", "-p", "2022"], 4, "does not exist"),
    (["search", "-s", "data_samples/stac", "-a", BBOX, "-p", "2023/2021"], 2, "starts after it ends"),
    (["fetch", "-s", "data_samples/stac", "-a", BBOX, "-p", "2022", "-b", "thermal"], 4, "unknown band"),
])
def test_user_errors_are_one_line_with_exit_code(args: list[str], code: int, message: str,
                                                 monkeypatch: pytest.MonkeyPatch, samples: Path) -> None:
    monkeypatch.chdir(samples.parent)
    monkeypatch.setenv("TERRITOIRE_HTTP_RETRIES", "0")
    result = runner.invoke(app, args, terminal_width=300)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_demo_runs_the_main_job_and_refuses_to_overwrite(samples: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["demo", "--data", str(samples), "--out", str(out)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "scene.html" in result.output and "rapport.html" in result.output
    assert "IAU" in result.output  # the best land is named
    import pandas as pd

    scores = pd.read_csv(out / "scores.csv")
    assert scores.sort_values("rank").iloc[0]["TYPEZONE"] == "AUc"
    again = runner.invoke(app, ["demo", "--data", str(samples), "--out", str(out)])
    assert again.exit_code == 5 and "--overwrite" in again.output


def test_console_script_runs_in_a_subprocess() -> None:
    done = subprocess.run([sys.executable, "-m", "territoire_geo_cli.main", "--version"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("territoire-geo ")
