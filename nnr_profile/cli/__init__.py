"""Command line: one module per command group; parses, calls the library, prints."""

from nnr_profile.cli.main import main

__all__ = ["main"]
