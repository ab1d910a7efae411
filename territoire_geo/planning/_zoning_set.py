"""The ZoningSet: a PLU/PLUi normalised to the CNIG géostandard, shared by the reader and the validator."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from territoire_geo.planning import _cnig
from territoire_geo.planning._encoding import EncodingReport
from territoire_geo.planning._zoning_validate import ValidationReport, validate

__all__ = ["ATTRS", "TABLES", "ZoningSet"]

#: CNIG tables read, longest names first (so DOC_URBA_COM wins over DOC_URBA).
TABLES: tuple[str, ...] = tuple(sorted(_cnig.TABLE_KINDS, key=len, reverse=True))
#: CNIG table -> ZoningSet attribute.
ATTRS: dict[str, str] = {
    "ZONE_URBA": "zones",
    "PRESCRIPTION_SURF": "prescriptions_surf",
    "PRESCRIPTION_LIN": "prescriptions_lin",
    "PRESCRIPTION_PCT": "prescriptions_pct",
    "INFO_SURF": "info_surf",
    "INFO_LIN": "info_lin",
    "INFO_PCT": "info_pct",
    "DOC_URBA": "doc_urba",
    "DOC_URBA_COM": "doc_urba_com",
}

@dataclass
class ZoningSet:
    """A PLU/PLUi dataset normalised to the CNIG géostandard.

    Attributes
    ----------
    zones
        ZONE_URBA, with ``TYPEZONE`` in {U, AUc, AUs, A, N}, ``TYPEZONE_ORIG`` and the
        boolean ``TYPEZONE_INFERRED``.
    prescriptions_surf, prescriptions_lin, prescriptions_pct, info_surf, info_lin, info_pct
        The PRESCRIPTION_* and INFO_* layers, or ``None`` when absent.
    doc_urba, doc_urba_com
        DOC_URBA and DOC_URBA_COM tables, or ``None``.
    repairs
        Human-readable log of everything repaired or assumed.
    source
        Where the data came from.
    cnig_version
        Schema generation guess: ``"2014"``, ``"2017"``, ``"2022"``, ``"apicarto"``, ``"unknown"``.
    encodings
        Per-table text encoding report (what ``.cpg`` said, what the bytes were).
    fixes
        Per-table repair counters (``z_coordinates``, ``invalid_geometry``…).
    metadata_charset
        Charset declared by the archive's XML metadata, when there is one.
    """

    zones: gpd.GeoDataFrame
    prescriptions_surf: gpd.GeoDataFrame | None = None
    prescriptions_lin: gpd.GeoDataFrame | None = None
    prescriptions_pct: gpd.GeoDataFrame | None = None
    info_surf: gpd.GeoDataFrame | None = None
    info_lin: gpd.GeoDataFrame | None = None
    info_pct: gpd.GeoDataFrame | None = None
    doc_urba: pd.DataFrame | None = None
    doc_urba_com: pd.DataFrame | None = None
    repairs: list[str] = field(default_factory=list)
    source: str = "<memory>"
    cnig_version: str = "unknown"
    encodings: dict[str, EncodingReport] = field(default_factory=dict)
    fixes: dict[str, dict[str, int]] = field(default_factory=dict)
    metadata_charset: str | None = None

    @property
    def CNIG_VERSION(self) -> str:
        """Alias of :attr:`cnig_version`."""
        return self.cnig_version

    def get(self, table: str) -> pd.DataFrame | None:
        """Return a table by CNIG name (``"ZONE_URBA"``, ``"prescription_surf"``…)."""
        return getattr(self, ATTRS[table.upper()])

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Spatial layers present, keyed by lower-case CNIG name (ready for ``to_file``)."""
        return {
            table.lower(): frame
            for table, attr in ATTRS.items()
            if _cnig.TABLE_KINDS[table] and (frame := getattr(self, attr)) is not None
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        """Non-spatial tables present (``doc_urba``, ``doc_urba_com``)."""
        return {t.lower(): f for t in ("DOC_URBA", "DOC_URBA_COM") if (f := self.get(t)) is not None}

    def validate(self) -> ValidationReport:
        """Shortcut for :func:`validate`."""
        return validate(self)
