"""Command-line interface of territoire_geo (``territoire-geo``)."""
