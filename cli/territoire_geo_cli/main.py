"""Entry point placeholder; replaced below."""


def main() -> None:
    """Run the CLI."""
