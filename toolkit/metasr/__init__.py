"""MetaSR Edge: content-adaptive super-resolution distilled, quantized and lowered for phone apps.

The Python API (see :mod:`metasr.api`): ``export``, ``get_model``, ``list_models``, ``list_targets``,
``model_card``, ``open_artifact`` and ``upscale``. They load on first use, so ``import metasr`` stays light.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("metasr-edge")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = [
    "__version__",
    "export",
    "get_model",
    "list_models",
    "list_targets",
    "model_card",
    "open_artifact",
    "upscale",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("metasr.api"), name)
    raise AttributeError(f"module 'metasr' has no attribute '{name}'")
