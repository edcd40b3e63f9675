"""Metadata sources: one module per source, found by name through the registry in ``base``."""

from metasr.metadata import content, damage, degradation, edges, local_model, luminance, motion  # noqa: F401  (registration)
from metasr.metadata.base import CELL, MetadataSource, available_sources, cell_grid, cell_pool, source_class

DEVICE_SOURCES = ("edges", "degradation", "luminance")  # the default set inside every exported graph


def create_source(name: str, **options) -> MetadataSource:
    """An instance of the registered source ``name`` (options such as ``path=`` for local-model sources)."""
    return source_class(name)(**options)


__all__ = [
    "CELL",
    "DEVICE_SOURCES",
    "MetadataSource",
    "available_sources",
    "cell_grid",
    "cell_pool",
    "create_source",
    "source_class",
]
