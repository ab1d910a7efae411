"""Run manifests: where every output came from, and whether a run folder is intact.

A manifest (``manifest.json``, written last and atomically) lists the recipe,
the software versions, every input with its checksum (files) or STAC identity
(item id, href, datetime, processing baseline, scale/offset used), the
parameters, every output with its SHA-256, start/end times and warnings.
Secrets never enter it: environment placeholders (``${CDSE_PASSWORD}``) are
kept as written, and URLs are redacted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from territoire_geo._atomic import write_text
from territoire_geo._show_versions import versions
from territoire_geo.checksums import sha256_file
from territoire_geo.errors import DataError

__all__ = ["MANIFEST", "Manifest", "VerifyReport", "hash_inputs", "now", "path_digest", "verify_run"]

MANIFEST = "manifest.json"
SKIP_DIRS = {".cache", "__pycache__"}


def path_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, or of a folder (sorted relative names and file digests)."""
    target = Path(path)
    if target.is_file():
        return sha256_file(target)
    if not target.is_dir():
        raise DataError(f"{target} does not exist; check the path")
    digest = hashlib.sha256()
    for file in sorted(p for p in target.rglob("*") if p.is_file()):
        digest.update(file.relative_to(target).as_posix().encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def hash_inputs(*parts: Any) -> str:
    """A stable short hash of JSON-serialisable parts (a cache key)."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class Manifest:
    """What a run used and produced; written by :meth:`write` at the very end."""

    recipe: Mapping[str, Any]
    recipe_text: str = ""
    recipe_file: str | None = None
    started: str = field(default_factory=lambda: now())
    finished: str | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_input(self, role: str, path: str | os.PathLike[str]) -> None:
        """Record an input file or folder with its checksum."""
        target = Path(path)
        size = target.stat().st_size if target.is_file() else sum(
            p.stat().st_size for p in target.rglob("*") if p.is_file())
        self.inputs.append({"role": role, "path": str(target), "sha256": path_digest(target), "bytes": size})

    def add_outputs(self, run_dir: Path, paths: Iterable[Path]) -> None:
        """Record outputs (relative to the run folder) with their checksums."""
        for path in sorted(set(paths)):
            self.outputs.append({"path": path.relative_to(run_dir).as_posix(), "sha256": sha256_file(path),
                                 "bytes": path.stat().st_size})

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data (with software versions)."""
        return {
            "manifest_version": 1,
            "software": versions(),
            "recipe_file": self.recipe_file,
            "recipe_sha256": hashlib.sha256(self.recipe_text.encode()).hexdigest() if self.recipe_text else None,
            "recipe_text": self.recipe_text,
            "recipe": self.recipe,
            "started": self.started,
            "finished": self.finished,
            "inputs": self.inputs,
            "items": self.items,
            "parameters": self.parameters,
            "steps": self.steps,
            "outputs": self.outputs,
            "warnings": self.warnings,
        }

    def write(self, run_dir: Path) -> Path:
        """Write ``manifest.json`` atomically (the run is complete once it exists).

        ``finished`` is stamped now unless the caller already set it (the runner
        sets it before rendering the report, so that report and manifest agree).
        """
        self.finished = self.finished or now()
        return write_text(run_dir / MANIFEST, json.dumps(self.to_dict(), indent=1, default=str, ensure_ascii=False))


def now() -> str:
    """The current UTC time as the manifest writes it (ISO 8601, seconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`verify_run`."""

    run_dir: Path
    checked: int
    modified: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    @property
    def intact(self) -> bool:
        """True when every recorded output is present and unchanged."""
        return not (self.modified or self.missing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"run_dir": str(self.run_dir), "intact": self.intact, "checked": self.checked,
                "modified": list(self.modified), "missing": list(self.missing),
                "unexpected": list(self.unexpected)}


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a run folder.

    Raises
    ------
    DataError
        If the folder has no manifest (the run did not finish) or it is unreadable.
    """
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        raise DataError(f"{run_dir} has no {MANIFEST}: the run did not finish; rerun the recipe")
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise DataError(f"{path} is not valid JSON; the run folder was altered") from exc


def verify_run(run_dir: str | os.PathLike[str]) -> VerifyReport:
    """Re-check every output checksum recorded in a run's manifest."""
    root = Path(run_dir)
    manifest = read_manifest(root)
    modified, missing = [], []
    recorded = set()
    for entry in manifest.get("outputs", []):
        path = root / entry["path"]
        recorded.add(entry["path"])
        if not path.exists():
            missing.append(entry["path"])
        elif sha256_file(path) != entry["sha256"]:
            modified.append(entry["path"])
    present = {p.relative_to(root).as_posix() for p in root.rglob("*")
               if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts)}
    unexpected = sorted(present - recorded - {MANIFEST})
    return VerifyReport(root, len(recorded), tuple(modified), tuple(missing), tuple(unexpected))
