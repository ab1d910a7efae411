"""The house plan, asserted from the code's own imports (``ast``): arrows point down, no circles.

The layers of ``docs/design.md`` §2, from the ground up::

    core (root modules) < sources < io < imagery < analysis < planning < present < workflows | recipes

A module may import modules of its own subpackage and of lower layers, never of a higher
one, and never one of its sibling at the top (``workflows`` and ``recipes`` stand side by
side). Across subpackages, only faces and public modules are imported (no
``territoire_geo.io._cog`` from ``analysis``), and no module imports another module's
``_private`` name. A new arrow back up, a circle or a hidden import fails here.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import territoire_geo

PACKAGE = Path(territoire_geo.__file__).parent
ROOT = PACKAGE.parent
CLI = ROOT / "cli" / "territoire_geo_cli"

#: Layer of each top-level part of the package (root modules are the core, 0).
LAYERS = {"sources": 1, "io": 2, "imagery": 3, "analysis": 4, "planning": 5, "present": 6,
          "workflows": 7, "recipes": 7}
#: Root modules that are not core: they sit above what they help with.
ROOT_ABOVE = {"testing": 3}
#: Optional dependencies a function may import on first use (extras, or used by one rare path).
OPTIONAL = {"sentinelsat", "numba", "keyring", "blake3", "distributed", "geopandas", "rasterio", "pyogrio"}
#: Modules allowed to import optional dependencies inside functions, and which.
LAZY_ALLOWED = {
    "territoire_geo._types": {"geopandas", "pyogrio"},  # reading an AOI file; keeps `import territoire_geo` light
    "territoire_geo.config": {"rasterio", "distributed"},  # GDAL settings and a cluster, only when asked
    "territoire_geo.checksums": {"blake3"},  # extra: BLAKE3 checksums of CDSE downloads
    "territoire_geo.sources.cdse": {"blake3"},
    "territoire_geo.analysis._trend": {"numba"},  # extra: compiled trend kernel
    "territoire_geo.io._windows": {"distributed"},  # only with a cluster
    "territoire_geo.sources._hub": {"keyring"},  # extra: credentials from the system keyring
}

#: The public API of every subpackage (its face's ``__all__``), checked name for name.
PUBLIC = {
    "territoire_geo.sources": [
        "PROFILES", "HttpClient", "ImagerySource", "RetryPolicy", "SearchQuery", "Signer", "StacApiSource",
        "StaticCatalogSource", "item_time", "open_source", "redact_url", "resolve_aoi", "search", "sort_items"],
    "territoire_geo.io": [
        "CHANGE_COLOURS", "DEFAULT_WINDOW", "GPKG_TIMESTAMP", "TYPEZONE_COLOURS", "add_style", "categorized_qml",
        "compute_windows", "csv_safe", "graduated_qml", "grid_windows", "write_cog", "write_cube_zarr",
        "write_cube_zarrs", "write_raster", "write_table_csv", "write_vector"],
    "territoire_geo.imagery": [
        "FetchedAsset", "LoadPlan", "PlannedItem", "bands", "clip_to_cog", "fetch", "fetch_report", "load",
        "load_plan", "masks", "plan_load"],
    "territoire_geo.analysis": ["change", "composites", "expr", "indices", "terrain", "zonal"],
    "territoire_geo.planning": ["criteria", "overlay", "scoring", "soil", "zan", "zoning"],
    "territoire_geo.present": ["charts", "report", "scene"],
    "territoire_geo.present.scene": [
        "CHROMIUM_FLAGS", "DECKGL_VERSION", "INSTALL_COMMAND", "Browser", "DeckBundle", "SceneDeck", "SceneInfo",
        "build", "bundle_dir", "ensure_bundle", "export", "file_url", "find_chromium", "scene_from_files",
        "snapshot"],
    "territoire_geo.present.report": ["FIGURES", "REPORT", "build_report", "render_report"],
    "territoire_geo.workflows": [
        "CHANGE_INDICES", "LAYER_KINDS", "ScoreRun", "ZoningCheck", "compute_indices", "detect_change",
        "fetch_zoning", "fetch_zoning_to", "overlay_from_files", "parse_assignments", "score_from_files",
        "validate_zoning", "write_zoning"],
    "territoire_geo.recipes": [
        "STEPS", "TEMPLATES", "Recipe", "RerunReport", "RunResult", "check_paths", "demo", "dry_run",
        "init_recipe", "input_paths", "load_recipe", "parse_recipe", "plan", "rerun", "run", "run_file",
        "template_path", "validate_recipe"],
}


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` imports ``target`` (a module), maybe one ``name`` of it, at ``line``."""

    source: str
    target: str
    name: str | None
    line: int
    in_function: bool
    text: str


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "cli":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    paths = [*PACKAGE.rglob("*.py"), *CLI.rglob("*.py")]
    return {module_name(p): p for p in paths if "__pycache__" not in p.parts}


MODULES = all_modules()


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _in_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
    return False


def arrows(module: str) -> list[Arrow]:
    """Every import statement of ``module`` (package-internal or not), resolved to module names."""
    path = MODULES[module]
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source)
    parents = _parents(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Arrow(module, alias.name, None, node.lineno, _in_function(node, parents),
                                   lines[node.lineno - 1]))
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}:{node.lineno}: relative import"
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                target, name = (child, None) if child in MODULES else (node.module, alias.name)
                found.append(Arrow(module, target or "", name, node.lineno, _in_function(node, parents),
                                   lines[node.lineno - 1]))
    return found


def internal(module: str) -> list[Arrow]:
    return [a for a in arrows(module) if a.target.split(".")[0] in ("territoire_geo", "territoire_geo_cli")]


def part_of(module: str) -> str:
    """``"io"`` for ``territoire_geo.io._cog``, ``"core"`` for a root module, ``"cli"`` for the CLI."""
    parts = module.split(".")
    if parts[0] == "territoire_geo_cli":
        return "cli"
    if len(parts) == 1:
        return "face"
    if parts[1] in LAYERS:
        return parts[1]
    return parts[1] if parts[1] in ROOT_ABOVE else "core"


def layer_of(module: str) -> int:
    part = part_of(module)
    if part == "core":
        return 0
    return ROOT_ABOVE.get(part, LAYERS.get(part, 99))


def library_modules() -> list[str]:
    return sorted(m for m in MODULES if m.startswith("territoire_geo") and not m.startswith("territoire_geo_cli"))


# ------------------------------------------------------------------ direction


def test_arrows_point_down_only() -> None:
    upward = []
    for module in library_modules():
        if part_of(module) == "face":
            continue
        for arrow in internal(module):
            target_part = part_of(arrow.target)
            if target_part in ("face", "cli") and arrow.name not in (None,) and arrow.target == "territoire_geo":
                upward.append(f"{module}:{arrow.line} imports from the package root ({arrow.name})")
                continue
            same = target_part == part_of(module)
            if not same and layer_of(arrow.target) >= layer_of(module):
                upward.append(f"{module}:{arrow.line} -> {arrow.target} ({part_of(module)} may not import "
                              f"{target_part})")
    assert not upward, "arrows back up or sideways:\n" + "\n".join(upward)


def test_the_library_never_imports_the_cli() -> None:
    wrong = [f"{m}:{a.line}" for m in library_modules() for a in internal(m) if a.target.startswith("territoire_geo_cli")]
    assert not wrong


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        for arrow in internal(module):
            target = arrow.target if arrow.target in MODULES else arrow.target.rsplit(".", 1)[0]
            if target != module and target in MODULES:
                graph[module].add(target)
    circles = _cycles(graph)
    # a package face imports its own modules, which may import the face's other modules through it:
    # such an arrow from a module to its own package's face is not a circle of modules.
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# ------------------------------------------------------------------ private names and faces


def test_no_module_imports_another_modules_private_name() -> None:
    wrong = []
    for module in MODULES:
        for arrow in internal(module):
            if arrow.name and arrow.name.startswith("_") and not arrow.name.startswith("__"):
                wrong.append(f"{module}:{arrow.line} imports {arrow.target}.{arrow.name}")
    assert not wrong, "\n".join(wrong)


def test_other_subpackages_are_entered_through_their_face_or_public_modules() -> None:
    wrong = []
    for module in MODULES:
        for arrow in internal(module):
            target = arrow.target
            parts = target.split(".")
            private = [p for p in parts[2:] if p.startswith("_")]
            if not private or part_of(target) in ("core", "face"):
                continue
            package = ".".join(parts[: parts.index(private[0])])
            if not (module == package or module.startswith(package + ".")):
                wrong.append(f"{module}:{arrow.line} imports the private module {target}")
    assert not wrong, "\n".join(wrong)


def test_faces_only_hand_names_on() -> None:
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module in ("territoire_geo", "territoire_geo_cli"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
        kinds = {type(n).__name__ for n in body}
        assert kinds <= {"ImportFrom", "Import", "Assign"}, (module, kinds)
        assigns = [n for n in body if isinstance(n, ast.Assign)]
        assert [t.id for n in assigns for t in n.targets] == ["__all__"], module


def _isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions and modules (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_public_api_of_each_subpackage_is_sorted_and_as_listed() -> None:
    for package, expected in PUBLIC.items():
        face = __import__(package, fromlist=["__all__"])
        assert list(face.__all__) == sorted(face.__all__, key=_isort_order), f"{package}.__all__ is not sorted"
        assert sorted(face.__all__) == sorted(expected), f"{package}: {sorted(set(face.__all__) ^ set(expected))}"
        for name in face.__all__:
            assert getattr(face, name) is not None, f"{package}.{name}"


def test_every_subpackage_has_its_face_listed() -> None:
    faces = {m for m, p in MODULES.items() if p.name == "__init__.py" and m.count(".") >= 1
             and m.startswith("territoire_geo.")}
    assert faces == set(PUBLIC)


# ------------------------------------------------------------------ imports at the top


def test_library_imports_are_at_module_top() -> None:
    hidden = []
    for module in library_modules():
        for arrow in arrows(module):
            if not arrow.in_function:
                continue
            top = arrow.target.split(".")[0]
            allowed = LAZY_ALLOWED.get(module, set())
            if top not in OPTIONAL or top not in allowed:
                hidden.append(f"{module}:{arrow.line} imports {arrow.target} inside a function")
            elif "#" not in arrow.text:
                hidden.append(f"{module}:{arrow.line} imports {top} lazily without a comment saying why")
    assert not hidden, "\n".join(hidden)


def test_cli_defers_imports_only_to_answer_help_fast_and_says_so() -> None:
    """The CLI imports the library inside each command so that ``--help`` answers at once."""
    wrong = []
    for module in MODULES:
        if not module.startswith("territoire_geo_cli"):
            continue
        for arrow in arrows(module):
            if not arrow.in_function:
                continue
            lines = MODULES[module].read_text(encoding="utf-8").splitlines()
            said = "# deferred" in arrow.text or (arrow.line > 1 and "# deferred" in lines[arrow.line - 2])
            if not said:
                wrong.append(f"{module}:{arrow.line} defers {arrow.target} without saying why")
    assert not wrong, "\n".join(wrong)


# ------------------------------------------------------------------ one way to write a file


_RENAMES = {("os", "replace"), ("os", "rename"), ("os", "renames"), ("shutil", "move")}


def test_only_the_atomic_module_renames_files() -> None:
    wrong = []
    for module in library_modules():
        if module == "territoire_geo._atomic":
            continue
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Name) and (owner.id, node.func.attr) in _RENAMES:
                wrong.append(f"{module}:{node.lineno} calls {owner.id}.{node.func.attr}")
            # Path.replace(target) / Path.rename(target): one positional argument that is not a literal
            # (str.replace takes two, DataArray.rename takes a name or a mapping)
            if node.func.attr in ("replace", "rename") and len(node.args) == 1 and not node.keywords \
                    and not isinstance(node.args[0], (ast.Constant, ast.Dict, ast.JoinedStr)) \
                    and _looks_like_a_path(node.args[0]):
                wrong.append(f"{module}:{node.lineno} renames a file with .{node.func.attr}()")
    assert not wrong, "write through territoire_geo._atomic:\n" + "\n".join(wrong)


def _looks_like_a_path(node: ast.AST) -> bool:
    text = ast.unparse(node)
    return bool(re.search(r"(path|target|final|dest|tmp|part|file|out|done)", text, re.IGNORECASE)) \
        or isinstance(node, ast.BinOp)


def test_the_rename_check_catches_hand_written_renames(tmp_path: Path) -> None:
    sample = ast.parse("import os\nos.replace(a, b)\ntmp.replace(target)\nname.replace('a', 'b')\n"
                       "da.rename('x')\n")
    calls = [n for n in ast.walk(sample) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    flagged = [ast.unparse(c) for c in calls
               if (isinstance(c.func.value, ast.Name) and (c.func.value.id, c.func.attr) in _RENAMES)
               or (c.func.attr in ("replace", "rename") and len(c.args) == 1 and not c.keywords
                   and not isinstance(c.args[0], (ast.Constant, ast.Dict)) and _looks_like_a_path(c.args[0]))]
    assert flagged == ["os.replace(a, b)", "tmp.replace(target)"]


# ------------------------------------------------------------------ the same, watched at run time

_RENAMERS: list[tuple[str, str]] = []
_WATCHING: list[bool] = []


def _audit(event: str, args: tuple) -> None:
    """Record who renames files while a test watches (``os.rename`` is the event of rename and replace)."""
    if event != "os.rename" or not _WATCHING:
        return
    frame = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.endswith(("pathlib.py", "shutil.py"))
                                 or frame.f_globals.get("__name__") == __name__):
        frame = frame.f_back
    name = frame.f_globals.get("__name__", "?") if frame is not None else "?"
    if name.startswith("territoire_geo"):
        _RENAMERS.append((name, str(args[1])))


sys.addaudithook(_audit)


def test_every_rename_of_a_real_run_goes_through_the_atomic_module(samples: Path, tmp_path: Path) -> None:
    """The demo run and a clipped fetch write dozens of files: every rename comes from ``_atomic``."""
    from territoire_geo.imagery import fetch
    from territoire_geo.recipes import demo
    from territoire_geo.sources import search

    _RENAMERS.clear()
    _WATCHING.append(True)
    try:
        demo(samples, tmp_path / "run")
        items = search((4.33, 43.97, 4.40, 44.03), "2022", source=samples / "stac", collections="sentinel-2-l2a")
        fetch(items[:1], ["red"], tmp_path / "cache", aoi=(4.35, 43.99, 4.36, 44.0))
    finally:
        _WATCHING.clear()
    renamers = {module for module, _ in _RENAMERS}
    assert len(_RENAMERS) > 30 and renamers == {"territoire_geo._atomic"}, sorted(renamers)
    renamed = {Path(target).name for _, target in _RENAMERS}
    assert {"manifest.json", "scores.csv", "scene.html", "rapport.html", "items.json", "red.tif"} <= renamed


# ------------------------------------------------------------------ the wheel

#: Packages only the tests have (the ``dev`` extra): nothing shipped may import them.
DEV_ONLY = {"rustac", "pytest", "hypothesis", "pytest_socket", "rasterstats", "psutil", "_servers",
            "_safe_builder", "spyndex"}


def test_shipped_modules_import_no_development_package() -> None:
    wrong = [f"{m}:{a.line} imports {a.target}" for m in MODULES for a in arrows(m)
             if a.target.split(".")[0] in DEV_ONLY]
    assert not wrong, "\n".join(wrong)


def test_test_support_is_not_in_the_package() -> None:
    shipped = {p.name for p in PACKAGE.rglob("*.py")}
    assert not {"_servers.py", "_safe_builder.py", "_safe_testing.py", "build_indices.py", "_build_indices.py"} \
        & shipped
    assert (ROOT / "tests" / "_servers.py").is_file() and (ROOT / "scripts" / "build_indices.py").is_file()
