"""MetaSR Edge: content-adaptive super-resolution distilled, quantized and lowered for phone apps."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("metasr-edge")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
