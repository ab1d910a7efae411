"""dask.distributed: a recipe on two worker processes gives the same files as the threaded run.

The cluster is a real ``LocalCluster`` with ``processes=True`` on 127.0.0.1: tasks and
their data are pickled to other processes, and the GDAL options must travel with the
graph (odc-loader captures them when the graph is built; ``configure_rio(client=…)`` is a
no-op in odc-stac 0.5). No timing is asserted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pystac
import pytest
import rasterio
from _servers import RangeHTTPServer, free_port
from territoire_geo_cli.main import app
from typer.testing import CliRunner

from territoire_geo.recipes.tools import run_file

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "zan-suivi.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """Two single-threaded worker processes and a scheduler on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


def _manifest_outputs(run_dir: Path) -> dict[str, str]:
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return {entry["path"]: entry["sha256"] for entry in manifest["outputs"]}


def _without_stamps(path: Path) -> str:
    """The report without its dates and step durations (they differ between any two runs)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\d{1,2} \w+ \d{4} à \d{2}:\d{2} UTC", "<date>", text)
    return re.sub(r">\d+(,\d+)?\s*s</td>", "><seconds></td>", text)


def _same_raster(a: Path, b: Path) -> None:
    with rasterio.open(a) as left, rasterio.open(b) as right:
        assert left.profile == right.profile
        np.testing.assert_array_equal(left.read(), right.read())
        assert left.tags() == right.tags()


def _same_vector(a: Path, b: Path) -> None:
    layers = [name for name, _ in pyogrio.list_layers(a)]
    assert layers == [name for name, _ in pyogrio.list_layers(b)]
    for layer in layers:
        left, right = gpd.read_file(a, layer=layer), gpd.read_file(b, layer=layer)
        assert left.columns.tolist() == right.columns.tolist()
        assert left.drop(columns="geometry", errors="ignore").equals(right.drop(columns="geometry", errors="ignore"))
        if "geometry" in left:
            assert left.geometry.geom_equals_exact(right.geometry, tolerance=0).all()


def test_recipe_on_a_process_cluster_matches_the_threaded_run(cluster: object, tmp_path: Path) -> None:
    threads = run_file(RECIPE, output=tmp_path / "threads")
    spread = run_file(RECIPE, output=tmp_path / "cluster", scheduler=cluster.scheduler_address)  # type: ignore[attr-defined]
    assert spread.computed_steps == threads.computed_steps and "composites" in spread.computed_steps
    assert cluster.scheduler.task_prefixes, "no task reached the cluster"  # type: ignore[attr-defined]
    assert spread.summary == threads.summary
    expected, found = _manifest_outputs(threads.run_dir), _manifest_outputs(spread.run_dir)
    assert set(found) == set(expected) and "changements_classes.tif" in expected
    for name in expected:
        left, right = threads.run_dir / name, spread.run_dir / name
        if left.suffix == ".tif":
            _same_raster(left, right)
        elif left.suffix == ".gpkg":
            _same_vector(left, right)
        elif left.suffix == ".html":
            assert _without_stamps(left) == _without_stamps(right), name
            continue  # dated: never byte-identical, even between two threaded runs
        assert found[name] == expected[name], f"{name} is not byte-identical"


def _over_http(item: pystac.Item, root: Path, url: str) -> pystac.Item:
    clone = item.clone()
    for asset in clone.assets.values():
        local = Path(asset.get_absolute_href() or asset.href).resolve()
        asset.href = f"{url}/{local.relative_to(root.resolve()).as_posix()}"
    clone.clear_links()
    return clone


def test_http_reads_on_workers_use_the_gdal_options(cluster: object, sample_items: list[pystac.Item], plu_shp: Path) -> None:
    """Workers read COGs over HTTP with our GDAL options: no sidecar or directory probes reach the server."""
    from distributed import Client

    from territoire_geo.imagery import load

    root = REPO / "data_samples" / "stac"
    with RangeHTTPServer(root) as server:
        items = [_over_http(item, root, server.url) for item in sample_items[:2]]
        local = load(items, bands=["red"], aoi=plu_shp, mask=True)["red"].compute(scheduler="threads")
        seen = len(server.requests)
        with Client(cluster.scheduler_address, timeout="10s") as client:  # type: ignore[attr-defined]
            remote = client.compute(load(items, bands=["red"], aoi=plu_shp, mask=True)["red"]).result()
        paths = {path for _, path, _, _ in server.requests[seen:]}
    np.testing.assert_array_equal(local.values, remote.values)
    assert paths and all(path.endswith(".tif") for path in paths), sorted(paths)


def test_unreachable_scheduler_is_a_config_error(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["recipe", "run", str(RECIPE), "--out", str(tmp_path / "run"),
                                      "--scheduler", address], terminal_width=300)
    assert result.exit_code == 2, result.output
    assert "cannot reach dask scheduler" in result.output and address in result.output


def test_compute_windows_gives_the_values_of_one_dask_compute() -> None:
    """Window-by-window computing (bounded memory on the threaded scheduler) changes no value."""
    import dask
    import xarray as xr

    from territoire_geo.io import compute_windows
    from territoire_geo.io._windows import _edges

    rng = np.random.default_rng(0)
    cube = xr.DataArray(rng.normal(size=(3, 50, 70)).astype("float32"), dims=("time", "y", "x"),
                        coords={"y": np.arange(50), "x": np.arange(70)}, attrs={"units": "1"}).chunk(
        {"time": 1, "y": 8, "x": 8})
    mean, count = cube.median("time"), (cube > 0).sum("time").astype("uint8").transpose("x", "y")
    expected = dask.compute(mean, count)
    found = compute_windows(mean, count, window=16)
    assert _edges((8,) * 6 + (2,), 16) == [(0, 16), (16, 32), (32, 48), (48, 50)]
    for want, got in zip(expected, found, strict=True):
        assert got.chunks is None and got.dims == want.dims and got.attrs == want.attrs
        xr.testing.assert_identical(got, want)


def test_compute_windows_leaves_a_cluster_to_its_scheduler(cluster: object) -> None:
    import xarray as xr
    from distributed import Client

    from territoire_geo.io import compute_windows

    data = xr.DataArray(np.arange(64 * 64, dtype="float32").reshape(64, 64), dims=("y", "x")).chunk(8)
    with Client(cluster.scheduler_address, timeout="10s"):  # type: ignore[attr-defined]
        (out,) = compute_windows(data * 2, window=8)
    np.testing.assert_array_equal(out.values, data.values * 2)
