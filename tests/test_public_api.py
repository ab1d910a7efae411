"""The public surface: small, explicit, importable; the library never imports the CLI."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import territoire_geo

PACKAGE = Path(territoire_geo.__file__).parent


def test_top_level_names_resolve() -> None:
    for name in territoire_geo.__all__:
        assert getattr(territoire_geo, name) is not None, name
    assert callable(territoire_geo.load) and callable(territoire_geo.fetch)
    for module in ("territoire_geo.imagery", "territoire_geo.imagery._load", "territoire_geo.imagery._fetch"):
        importlib.import_module(module)  # importing the implementation must not shadow the functions

    assert callable(territoire_geo.load) and callable(territoire_geo.fetch)
    assert territoire_geo.load is territoire_geo.imagery.load and territoire_geo.fetch is territoire_geo.imagery.fetch


def test_every_module_imports_and_declares_all() -> None:
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="territoire_geo."):
        module = importlib.import_module(info.name)
        public = not any(part.startswith("_") for part in info.name.split(".")[1:])
        if public and not info.ispkg:
            assert hasattr(module, "__all__"), info.name
            for name in module.__all__:
                assert hasattr(module, name), f"{info.name}.{name}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_library_never_imports_the_cli_typer_or_rich() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert not {"territoire_geo_cli", "typer", "rich"} & _imports(path), path


def test_pure_modules_do_no_network_io() -> None:
    pure = ["imagery/masks", "analysis/indices", "analysis/expr", "analysis/change", "analysis/composites",
            "planning/zoning", "planning/soil", "planning/scoring", "imagery/bands"]
    for name in pure:
        assert not {"requests", "pystac_client", "sentinelsat", "urllib3"} & _imports(PACKAGE / f"{name}.py"), name


def test_no_eval_or_exec_in_the_library() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert not {"eval", "exec"} & calls, path
