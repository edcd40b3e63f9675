"""Options every command shares: help flags, ``--version``, the shipped scales."""

from __future__ import annotations

import click

from metasr import __version__
from metasr.quiet import set_verbose, silence_by_default

CONTEXT = {"help_option_names": ["-h", "--help"]}
SHIPPED_SCALES = ("2", "4")  # the scales a default model ships for
SCALE = click.Choice(SHIPPED_SCALES)

version_option = click.version_option(__version__, "--version", prog_name="metasr-edge", message="%(prog)s %(version)s")


silence_by_default()  # before the commands import torch, coremltools, torchao and the exporters


def _verbosity(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        set_verbose()


verbose_option = click.option(
    "--verbose",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_verbosity,
    help="Show third-party logs and warnings (hidden by default).",
)
