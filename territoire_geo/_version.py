"""The package version (one place: read by hatch, the manifest and ``--version``)."""

__version__ = "0.1.0"
