"""Change classes and their thresholds: the vocabulary shared by classification and patches."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType

from territoire_geo.errors import ConfigError

__all__ = ["ALERT_NOTE", "CHANGE_CLASSES", "PRIORITY", "ChangeRules"]

#: Change classes (codes of :func:`classify`).
CHANGE_CLASSES: Mapping[int, str] = MappingProxyType({
    0: "stable", 1: "vegetation_loss", 2: "vegetation_gain", 3: "new_artificial_surface",
    4: "water_gain", 5: "water_loss", 255: "insufficient_data",
})  # fmt: skip
#: Order in which rules are tested; the first that matches wins (255 before all).
PRIORITY: tuple[int, ...] = (255, 3, 4, 5, 1, 2, 0)
#: Recorded on every output.
ALERT_NOTE = ("Alerts to review (zones à vérifier), not a legal measure of artificialisation: "
              "a 10 m pixel is 100 m², above the 50 m² OCS GE building threshold; "
              "confirm each patch against OCS GE, the cadastre or an orthophoto.")


@dataclass(frozen=True)
class ChangeRules:
    """Thresholds of :func:`classify` (NDVI, NDBI/BSI and MNDWI of period composites).

    Attributes
    ----------
    vegetated_ndvi
        NDVI at or above which a pixel is vegetated *before* (0.4).
    sparse_ndvi
        NDVI at or below which a pixel is not vegetated *after* (0.3). Together with
        ``vegetated_ndvi``: the "locally calibrated 0.3–0.4" vegetation threshold of
        urban-greening indicators (domain notes §4.5); a new artificial surface must
        cross the whole band, which leaves seasonal and rotation swings out.
    built_index
        ``"ndbi"``, ``"bsi"`` or ``"auto"`` (NDBI if present, else BSI).
    built_after
        Built-up index *after* must exceed this (−0.05). NDBI > 0 marks built-up land
        (Zha, Gao & Ni 2003, *Int. J. Remote Sens.* 24:583); the 0.05 margin keeps new
        10 m pixels that mix roofs, asphalt and leftover vegetation.
    built_delta
        Minimum rise of the built-up index (0.15): bare fields and rotations move the
        two-year medians of stable covers by less than that on the sample territory.
    ndvi_loss, ndvi_gain
        ΔNDVI at or below / at or above which vegetation is lost / gained (∓0.25: about
        the distance between sparse (0.3) and dense (0.55+) canopy). A fixed value rather
        than the mean ± k·σ of the difference image (Singh 1989, *Int. J. Remote Sens.*
        10:989), so that results do not depend on how much of the AOI changed.
    water_mndwi
        MNDWI at or above which a pixel is open water (0; Xu 2006, *Int. J. Remote Sens.*
        27:3025).
    water_delta
        Minimum |ΔMNDWI| of a water gain or loss (0.3), against mixed shore pixels.
    min_valid
        Minimum valid observations in *each* period composite (2); fewer gives class
        255 (insufficient data).

    Notes
    -----
    Priority (first match wins): insufficient data, new artificial surface, water gain,
    water loss, vegetation loss, vegetation gain, stable. Artificial surface comes
    before vegetation loss because a new building also loses vegetation; water before
    vegetation because a flooded field also loses NDVI. Values are physical magnitudes,
    not fitted to the sample; calibrate them locally (e.g. against OCS GE) before
    reporting figures.
    """

    vegetated_ndvi: float = 0.4
    sparse_ndvi: float = 0.3
    built_index: str = "auto"
    built_after: float = -0.05
    built_delta: float = 0.15
    ndvi_loss: float = -0.25
    ndvi_gain: float = 0.25
    water_mndwi: float = 0.0
    water_delta: float = 0.3
    min_valid: int = 2

    def __post_init__(self) -> None:
        if self.built_index not in ("auto", "ndbi", "bsi"):
            raise ConfigError(f"built_index={self.built_index!r}; use 'auto', 'ndbi' or 'bsi'")
        if not self.sparse_ndvi < self.vegetated_ndvi:
            raise ConfigError("sparse_ndvi must be below vegetated_ndvi")
        if not (self.ndvi_loss < 0 < self.ndvi_gain and self.built_delta > 0 and self.water_delta > 0):
            raise ConfigError("ndvi_loss must be negative; ndvi_gain, built_delta and water_delta positive")
        if int(self.min_valid) < 1:
            raise ConfigError("min_valid must be at least 1")

    def to_json(self) -> str:
        """The rules as a JSON string (recorded in output attributes)."""
        return json.dumps(asdict(self), sort_keys=True)
