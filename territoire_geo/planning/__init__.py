"""Planning layers and decisions: PLU/PLUi zoning (CNIG), soil and risk layers, overlay, ZAN accounts, scoring."""

from territoire_geo.planning import criteria, overlay, scoring, soil, zan, zoning

__all__ = ["criteria", "overlay", "scoring", "soil", "zan", "zoning"]
