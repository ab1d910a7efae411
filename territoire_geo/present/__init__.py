"""What people see: offline 3D scenes, HTML reports, charts."""

from territoire_geo.present import charts, report, scene

__all__ = ["charts", "report", "scene"]
