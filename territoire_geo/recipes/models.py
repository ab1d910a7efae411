"""Recipe models: what a planner writes in YAML or TOML, validated strictly.

Unknown keys are rejected; errors name the file, the line and the key path
and say what is expected. Paths are relative to the recipe file. String
values may use ``${VAR}`` to read an environment variable (for secrets);
the manifest keeps the placeholder, never the value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from territoire_geo.sources.profiles import get_profile

__all__ = [
    "ChangeStep",
    "ImageryStep",
    "LayerSpec",
    "Periods",
    "Recipe",
    "ReportStep",
    "SceneStep",
    "ScoringStep",
    "Territory",
]

Name = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\-]+$")]


class _Strict(BaseModel):
    # allow_inf_nan=False: ``min_area_m2: .inf`` would silently drop every alert, ``.nan`` compare false everywhere
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)


class Territory(_Strict):
    """Where: the area is `aoi`, else the extent of `plu`, else the union of the `insee`/`epci` communes."""

    plu: Path | None = Field(None, description="PLU/PLUi: GPU archive (zip or folder), GeoPackage, shapefile")
    aoi: Path | None = Field(None, description="area of interest file; the PLU extent when omitted")
    insee: list[Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")]] = Field(
        default_factory=list, description="INSEE codes of the communes (5 characters, 2A/2B for Corsica); "
        "without plu and aoi the area is the union of these communes (contours from geo.api.gouv.fr, cached), "
        "with plu or aoi a label only")
    epci: Annotated[str, Field(pattern=r"^\d{9}$")] | None = Field(
        None, description="SIREN of an EPCI (9 digits); without plu and aoi its communes join the area, "
        "with plu or aoi a label only")
    dem: Path | None = Field(None, description="elevation raster (else found with imagery.dem_collection)")
    parcels: Path | None = Field(None, description="parcels (cadastre, RPG): units become parcels cut by zones")
    crs: str = Field("EPSG:2154", description="working CRS (overseas: EPSG:5490, 2972, 2975, 4471…)")
    resolution: float = Field(10.0, gt=0, le=1000, description="pixel size in metres")

    @field_validator("insee", "epci", mode="before")
    @classmethod
    def _codes_as_text(cls, value: Any, info: Any) -> Any:
        """YAML reads ``insee: [30014]`` and ``epci: 200066918`` as numbers: codes are text."""
        width = 5 if info.field_name == "insee" else 9
        if info.field_name == "insee" and isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list):
            return [str(v).zfill(width) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return str(value).zfill(width) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _needs_area(self) -> Territory:
        if self.plu is None and self.aoi is None and not self.insee and self.epci is None:
            raise ValueError("give territory.plu, territory.aoi, territory.insee or territory.epci")
        return self

    @property
    def from_communes(self) -> bool:
        """True when the area is the union of the communes of ``insee``/``epci`` (no plu, no aoi)."""
        return self.plu is None and self.aoi is None


class ImageryStep(_Strict):
    """Which imagery: source, collection, cloud filter."""

    source: str = Field(..., description="STAC API URL, profile name or static catalog path")
    collections: list[str] = Field(default_factory=lambda: ["sentinel-2-l2a"], description="collection ids")
    max_cloud: float | None = Field(None, ge=0, le=100, description="max scene cloud cover, %")
    mask: bool = Field(True, description="mask clouds, shadows, cirrus and snow with SCL")
    dem_collection: str | None = Field(None, description="DEM collection searched in the same source "
                                       "(e.g. cop-dem-glo-30) for slope and relief")
    chunks: int = Field(1024, ge=64, le=16384, description="dask chunk size in pixels (1024: bounded memory)")


class Periods(_Strict):
    """Two periods to compare (ISO dates or years)."""

    before: str = Field(..., description="e.g. 2020-01-01/2021-12-31")
    after: str = Field(..., description="e.g. 2022-01-01/2023-12-31")


class ChangeStep(_Strict):
    """Change detection settings."""

    enabled: bool = Field(True, description="run change detection when imagery is given")
    min_area_m2: float = Field(1000.0, ge=0, description="minimum mapping unit of alert patches")
    composite: Literal["median", "mean", "max", "max_ndvi"] = Field("median", description="period composite")
    rules: dict[str, float] = Field(default_factory=dict, description="threshold overrides (ChangeRules)")

    @field_validator("rules")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if not math.isfinite(number):
                raise ValueError(f"rule {key} must be a finite number")
        return value


class LayerSpec(_Strict):
    """One soil, risk, nature or context layer."""

    kind: Literal["rga", "ppr_covadis", "ppr_cnig", "znieff1", "znieff2", "natura2000", "geology",
                  "distance"]
    path: Path = Field(..., description="vector file (GPKG, SHP, GeoJSON…)")
    layer: str | None = Field(None, description="layer of a multi-layer file")
    name: Name | None = Field(None, description="column prefix; defaults to the kind")


class ScoringStep(_Strict):
    """Land-reserve scoring."""

    enabled: bool = Field(True, description="run scoring")
    criteria: Literal["default", "reserve_fonciere", "implantation_entreprises"] | Path = Field(
        "default", description="criteria YAML, or a shipped set: reserve_fonciere (default), implantation_entreprises")
    weights: dict[str, float] = Field(default_factory=dict, description="weight overrides by criterion name")
    sensitivity_runs: int = Field(200, ge=0, le=100_000, description="weight perturbations for the sensitivity")
    sensitivity_spread: float = Field(0.2, ge=0, le=1, description="relative spread of perturbed weights")
    top_k: int = Field(5, ge=1, le=1000, description="size of the top list whose stability is reported")

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for key, weight in value.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of {key} must be a finite number >= 0, not {weight}")
        return value


class SceneStep(_Strict):
    """3D scene export."""

    enabled: bool = Field(True, description="export the scene")
    title: str = Field("Réserve foncière", max_length=200, description="scene title")
    extrude: str = Field("score", description="column that sets the height of units")
    lang: Literal["fr", "en"] = Field("fr", description="language of tooltips and legend")
    png: bool = Field(False, description="also write a PNG snapshot (needs Chromium)")
    project: Path | None = Field(None, description="footprints of a construction project (with heights)")


class ReportStep(_Strict):
    """HTML report."""

    enabled: bool = Field(True, description="write the report")
    lang: Literal["fr", "en"] = Field("fr", description="language of the report")


class CropsStep(_Strict):
    """NDVI series per agricultural parcel (RPG) with year-over-year anomaly flags."""

    parcels: Path = Field(..., description="parcels file (RPG from API Carto, GeoPackage…)")
    id_column: str = Field("id_parcel", description="parcel identifier column")
    group_column: str = Field("code_cultu", description="crop code or group column")
    inner_buffer_m: float = Field(5.0, ge=0, le=100, description="inward buffer against border pixels")
    anomaly_drop: float = Field(0.2, gt=0, le=2, description="NDVI drop vs the same month a year before "
                                "that flags an anomaly")


class GreeningStep(_Strict):
    """Vegetation cover of urban zones and its change."""

    typezones: list[str] = Field(default_factory=lambda: ["U"], description="zone types assessed")
    vegetation_ndvi: float = Field(0.3, gt=-1, lt=1, description="NDVI from which a pixel counts as vegetated")


class SiteFinderStep(_Strict):
    """Land for businesses: zones whose destinations allow the activities, not yet built."""

    activities: list[Annotated[str, Field(pattern=r"^\d{2}$")]] = Field(
        ..., description="destination codes R151-27/28 wanted (51 industry, 52 warehouse, 53 office…)")
    destinations: Path | None = Field(None, description="CSV LIBELLE;DESTOUI for PLUs without destination "
                                      "fields (CNIG 2017)")
    match: Literal["any", "all"] = Field("any", description="a zone fits when it allows any / all activities")
    typezones: list[str] = Field(default_factory=lambda: ["U", "AUc", "AUs"], description="zone types searched")


class Recipe(_Strict):
    """A whole run: territory, imagery, periods, indices, change, layers, scoring, outputs."""

    schema_version: Literal[1] = Field(1, description="recipe format version")
    name: Name = Field(..., description="short name (letters, digits, . _ -), used in outputs")
    title: str = Field("", max_length=200, description="title shown in the scene and report")
    description: str = Field("", max_length=4000, description="free text kept in the manifest")
    territory: Territory = Field(..., description="where: PLU, AOI, CRS, resolution")
    imagery: ImageryStep | None = Field(None, description="which imagery (omit for vector-only runs)")
    periods: Periods | None = Field(None, description="the two periods to compare")
    indices: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=lambda: ["ndvi"], max_length=50, description="catalogue indices (territoire-geo indices --list)")
    custom_indices: dict[Name, Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, description="name: safe formula over band names, e.g. (nir - red) / (nir + red + 0.5)")
    change: ChangeStep = Field(default_factory=ChangeStep, description="change detection")
    layers: list[LayerSpec] = Field(default_factory=list, max_length=100, description="soil, risk, nature, context layers")
    zan: bool = Field(True, description="account new artificial surface by commune, zone type and year "
                      "(needs territory.plu; without it only the change alerts are made)")
    crops: CropsStep | None = Field(None, description="crop monitoring per parcel (omit to skip)")
    greening: GreeningStep | None = Field(None, description="urban vegetation cover (omit to skip)")
    site_finder: SiteFinderStep | None = Field(None, description="business site finder (omit to skip)")
    scoring: ScoringStep | None = Field(None, description="land-reserve scoring (omit to skip)")
    scene: SceneStep | None = Field(None, description="3D scene (omit to skip)")
    report: ReportStep | None = Field(None, description="HTML report (omit to skip)")
    output: Path = Field(Path("runs/out"), description="run folder")
    scheduler: str | None = Field(None, description="tcp://host:8786 of a dask.distributed scheduler")
    _env: dict[str, str] = PrivateAttr(default_factory=dict)  # value read from ${VAR} -> "${VAR}"

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.periods is not None and self.imagery is None:
            raise ValueError("periods need an imagery section")
        if self.territory.plu is None:  # these read the PLU zones: refuse rather than skip them silently
            for name in ("scoring", "greening", "site_finder"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} needs territory.plu (it works on the PLU zones); add the PLU "
                                     f"or remove the {name} section")
        return self

    def resolved(self, base: Path) -> Recipe:
        """The same recipe with every relative path made absolute against ``base``."""
        data = self.model_dump()
        _resolve_paths(data, base, type(self))
        imagery = data.get("imagery")
        if imagery and _looks_local(imagery["source"]):
            imagery["source"] = str((base / imagery["source"]).resolve())
        resolved = type(self).model_validate(data)
        resolved._env.update(self._env)
        return resolved

    def public_dump(self) -> dict[str, Any]:
        """The recipe as JSON data with every value read from the environment put back as ``${VAR}``."""
        return _redact(self.model_dump(mode="json"), self._env)

    def public_text(self, text: str) -> str:
        """``text`` (a title…) with every value read from the environment put back as ``${VAR}``."""
        return str(_redact(text, self._env))


def _redact(data: Any, secrets: dict[str, str]) -> Any:
    if isinstance(data, dict):
        return {k: _redact(v, secrets) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact(v, secrets) for v in data]
    if isinstance(data, str):
        for value, placeholder in secrets.items():
            if value:
                data = data.replace(value, placeholder)
    return data


def _looks_local(source: str) -> bool:
    return not (source.startswith(("http://", "https://", "dhus+", "/")) or get_profile(source)
                or source == "cdse-odata")


def _resolve_paths(data: Any, base: Path, model: type[BaseModel] | None) -> None:
    if isinstance(data, dict):
        for key, value in list(data.items()):
            if isinstance(value, Path) and not value.is_absolute():
                data[key] = (base / value).resolve()
            elif isinstance(value, (dict, list)):
                _resolve_paths(value, base, None)
    elif isinstance(data, list):
        for value in data:
            _resolve_paths(value, base, None)
