"""Options every command shares: help flags, ``--version``, the shipped scales."""

from __future__ import annotations

import click

from metasr import __version__

CONTEXT = {"help_option_names": ["-h", "--help"]}
SHIPPED_SCALES = ("2", "4")  # the scales a default model ships for
SCALE = click.Choice(SHIPPED_SCALES)

version_option = click.version_option(__version__, "--version", prog_name="metasr-edge", message="%(prog)s %(version)s")
