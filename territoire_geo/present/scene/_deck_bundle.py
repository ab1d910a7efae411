"""Find the deck.gl JavaScript that exported scenes inline (never vendored in this repo).

Two sources, best first:

``npm``
    ``deck.gl`` + ``@deck.gl/json`` :data:`DECKGL_VERSION` ``dist.min.js`` (1.65 MB + 14 KB),
    fetched once with :data:`INSTALL_COMMAND` into ``~/.cache/territoire_geo/deckgl``
    (``npm pack`` tarballs, read in place) or any folder holding an
    ``npm install`` tree, named by ``TERRITOIRE_GEO_DECKGL_DIR``. Their SHA-256 is
    pinned: a different file is refused. Includes ``_TerrainExtension`` (relief).
``pydeck``
    The jupyter-widget bundle inside the installed pydeck wheel
    (``pydeck/nbextension/static/index.js``, 4.27 MB, deck.gl 9.3 + JSON converter,
    no layer extensions: layers are not draped on the relief).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pydeck

from territoire_geo.config import default_cache_dir
from territoire_geo.errors import ConfigError, ExportError

__all__ = ["DECKGL_VERSION", "INSTALL_COMMAND", "DeckBundle", "bundle_dir", "ensure_bundle"]

logger = logging.getLogger(__name__)

#: deck.gl release inlined in scenes: same minor as the bundle of pydeck 0.9.3 (9.3.x).
DECKGL_VERSION = "9.3.11"
#: SHA-256 of ``package/dist.min.js`` in each npm tarball.
_SHA256 = {
    "deck.gl": "91cebf7d9595c50fac694c4ec622d651a1ac07601390ac1315a5e486fc90ec41",
    "@deck.gl/json": "3823e94b094a3257d2c91bee0dd83a163d7adc9875bc15760d5b9d510b0427ea",
}
_TARBALLS = {"deck.gl": f"deck.gl-{DECKGL_VERSION}.tgz", "@deck.gl/json": f"deck.gl-json-{DECKGL_VERSION}.tgz"}
#: One command that installs the npm bundle where :func:`ensure_bundle` looks.
INSTALL_COMMAND = ("mkdir -p ~/.cache/territoire_geo/deckgl && npm pack --silent --pack-destination "
                   f"~/.cache/territoire_geo/deckgl deck.gl@{DECKGL_VERSION} @deck.gl/json@{DECKGL_VERSION}")

BundleKind = Literal["auto", "npm", "pydeck"]


@dataclass(frozen=True)
class DeckBundle:
    """JavaScript to inline, in order, and where it came from.

    Attributes
    ----------
    kind
        ``"npm"`` or ``"pydeck"``.
    version
        deck.gl version of the bundle.
    scripts
        Script texts, in loading order.
    terrain
        Whether ``_TerrainExtension`` is available (layers draped on the relief).
    """

    kind: str
    version: str
    scripts: tuple[str, ...]
    terrain: bool

    @property
    def size(self) -> int:
        """Total bytes of script text."""
        return sum(len(s.encode()) for s in self.scripts)


def bundle_dir() -> Path:
    """Folder searched for the npm bundle: ``$TERRITOIRE_GEO_DECKGL_DIR`` or the cache."""
    env = os.environ.get("TERRITOIRE_GEO_DECKGL_DIR")
    return Path(env).expanduser() if env else default_cache_dir() / "deckgl"


def _checked(name: str, text: bytes, origin: Path) -> str:
    digest = hashlib.sha256(text).hexdigest()
    if digest != _SHA256[name]:
        raise ExportError(f"{origin} is not the pinned {name} {DECKGL_VERSION} (sha256 {digest[:12]}…); "
                          f"reinstall with: {INSTALL_COMMAND}")
    return text.decode("utf-8")


def _from_tarball(path: Path, name: str) -> str:
    try:
        with tarfile.open(path, "r:gz") as archive:
            member = archive.extractfile("package/dist.min.js")
            if member is None:
                raise KeyError("package/dist.min.js")
            return _checked(name, member.read(), path)
    except (OSError, tarfile.TarError, KeyError) as exc:
        raise ExportError(f"cannot read {path}: {exc}; reinstall with: {INSTALL_COMMAND}") from exc


def _find_npm(folder: Path) -> tuple[str, str] | None:
    texts = []
    for name in ("deck.gl", "@deck.gl/json"):
        tarball = folder / _TARBALLS[name]
        installed = folder / "node_modules" / name / "dist.min.js"
        if tarball.is_file():
            texts.append(_from_tarball(tarball, name))
        elif installed.is_file():
            texts.append(_checked(name, installed.read_bytes(), installed))
        else:
            return None
    return texts[0], texts[1]


def _pydeck_bundle() -> DeckBundle:
    path = Path(pydeck.__file__).parent / "nbextension" / "static" / "index.js"
    if not path.is_file():
        raise ExportError(f"no deck.gl bundle found; install it with: {INSTALL_COMMAND}")
    text = path.read_text(encoding="utf-8")
    return DeckBundle("pydeck", "9.3 (pydeck " + pydeck.__version__ + ")", (text,), terrain=False)


@functools.lru_cache(maxsize=4)
def _load(kind: str, folder: Path, stamp: float) -> DeckBundle:
    if kind == "pydeck":
        return _pydeck_bundle()
    found = _find_npm(folder)
    if found is not None:
        return DeckBundle("npm", DECKGL_VERSION, found, terrain=True)
    if kind == "npm":
        raise ExportError(f"deck.gl {DECKGL_VERSION} bundle not found in {folder}; install it with: "
                          f"{INSTALL_COMMAND}")
    logger.warning("deck.gl %s npm bundle not found in %s: using pydeck's 4.3 MB bundle (no relief draping); "
                   "install the smaller one with: %s", DECKGL_VERSION, folder, INSTALL_COMMAND)
    return _pydeck_bundle()


def ensure_bundle(kind: BundleKind = "auto") -> DeckBundle:
    """Return the deck.gl JavaScript to inline in a scene.

    Parameters
    ----------
    kind
        ``"npm"`` (pinned deck.gl + @deck.gl/json, required), ``"pydeck"`` (the wheel's
        bundle) or ``"auto"`` (npm if installed, else pydeck with a logged warning).

    Returns
    -------
    DeckBundle

    Raises
    ------
    ExportError
        ``kind="npm"`` and the bundle is missing or altered; the message gives
        :data:`INSTALL_COMMAND`.
    ConfigError
        Unknown ``kind``.
    """
    if kind not in ("auto", "npm", "pydeck"):
        raise ConfigError(f"bundle must be 'auto', 'npm' or 'pydeck', not {kind!r}")
    folder = bundle_dir()
    stamps = [p.stat().st_mtime for p in folder.glob("*.tgz")] if folder.is_dir() else []
    return _load(kind, folder, max(stamps, default=0.0))
