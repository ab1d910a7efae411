"""3D scenes for elected officials: one offline, escaped HTML file (and a PNG snapshot)."""

from territoire_geo.present.scene._browser import CHROMIUM_FLAGS, Browser, file_url, find_chromium
from territoire_geo.present.scene._build import (
    SceneDeck,
    SceneInfo,
    build,
    export,
    scene_from_files,
    snapshot,
)
from territoire_geo.present.scene._deck_bundle import (
    DECKGL_VERSION,
    INSTALL_COMMAND,
    DeckBundle,
    bundle_dir,
    ensure_bundle,
)

__all__ = [
    "CHROMIUM_FLAGS",
    "DECKGL_VERSION",
    "INSTALL_COMMAND",
    "Browser",
    "DeckBundle",
    "SceneDeck",
    "SceneInfo",
    "build",
    "bundle_dir",
    "ensure_bundle",
    "export",
    "file_url",
    "find_chromium",
    "scene_from_files",
    "snapshot",
]
