"""Settings, GDAL options and dask scheduler choice.

:class:`Settings` is a value object built at the edge (CLI callback, recipe
runner, or a user) and passed down; it reads ``TERRITOIRE_*`` environment
variables when built with :meth:`Settings.from_env`. Secrets are
``SecretStr``: they never print, log or serialise in clear.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pyproj import CRS
from pyproj.exceptions import CRSError

from territoire_geo.errors import ConfigError

__all__ = ["Settings", "dask_client", "default_cache_dir", "gdal_env", "gdal_options"]


def default_cache_dir() -> Path:
    """The download cache: ``$XDG_CACHE_HOME/territoire_geo`` or ``~/.cache/territoire_geo``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "territoire_geo"


class Settings(BaseSettings):
    """Run-wide settings.

    Every field can be set from an environment variable named
    ``TERRITOIRE_<FIELD>`` (for example ``TERRITOIRE_WORKING_CRS=EPSG:2975``).
    """

    model_config = SettingsConfigDict(env_prefix="TERRITOIRE_", extra="forbid", frozen=True)

    working_crs: str = Field("EPSG:2154", description="CRS of every output grid and layer")
    resolution: float = Field(10.0, gt=0, description="pixel size in units of working_crs")
    cache_dir: Path = Field(default_factory=default_cache_dir, description="download cache folder")
    dask_scheduler: str | None = Field(None, description="tcp://host:port of a dask.distributed scheduler")
    http_timeout: float = Field(60.0, gt=0, description="seconds before a request is given up")
    http_retries: int = Field(4, ge=0, le=20, description="extra attempts on transient failures")
    http_backoff: float = Field(0.5, ge=0, description="first back-off delay in seconds (doubles)")
    geo_api_url: str = Field("https://geo.api.gouv.fr", description="API Découpage administratif (commune "
                             "and EPCI boundaries), e.g. a mirror or a test server")
    cdse_user: str | None = None
    cdse_password: SecretStr | None = None
    dhus_user: str | None = None
    dhus_password: SecretStr | None = None

    @field_validator("working_crs")
    @classmethod
    def _valid_crs(cls, value: str) -> str:
        try:
            CRS.from_user_input(value)
        except CRSError as exc:
            raise ValueError(f"unknown CRS {value!r}; use e.g. EPSG:2154") from exc
        return value

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from ``TERRITOIRE_*`` variables, then ``overrides``.

        Raises
        ------
        ConfigError
            If a value is invalid.
        """
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValueError as exc:
            first = str(exc).splitlines()
            raise ConfigError(f"invalid setting: {' '.join(first[:3])}") from exc


def gdal_options(settings: Settings | None = None) -> dict[str, Any]:
    """GDAL configuration options used for every read.

    Readdir off (no directory listing on open), bounded HTTP retries and a
    timeout, VSI cache on. ``PROJ_DATA``/``GDAL_DATA`` are never touched.
    """
    timeout = int(settings.http_timeout) if settings else 60
    retries = settings.http_retries if settings else 4
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MAX_RETRY": str(retries),
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "GDAL_HTTP_TIMEOUT": str(timeout),
        "GDAL_HTTP_MULTIRANGE": "YES",
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.jp2,.vrt",
        "VSI_CACHE": "TRUE",
    }


@contextlib.contextmanager
def gdal_env(settings: Settings | None = None) -> Iterator[None]:
    """Context in which rasterio reads and writes use :func:`gdal_options`."""
    import rasterio  # on first use: keeps `import territoire_geo` (and the CLI) light

    with rasterio.Env(**gdal_options(settings)):
        yield


def dask_client(address: str | None) -> Any:
    """Connect to a dask.distributed scheduler, or return ``None`` for threads.

    Raises
    ------
    ConfigError
        If the address is malformed or the scheduler cannot be reached.
    """
    if not address:
        return None
    if not address.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
        raise ConfigError(f"scheduler {address!r} is not an address; use tcp://host:8786")
    try:
        from distributed import Client  # only when a cluster is asked for; importing it costs ~0.5 s
    except ImportError as exc:  # pragma: no cover - distributed is a core dependency
        raise ConfigError("dask.distributed is not installed; pip install 'territoire_geo[distributed]'") from exc
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach dask scheduler {address}; check it is running") from exc
