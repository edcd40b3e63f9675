"""Model architectures."""

from metasr.models.student import MetaSRStudent, StudentConfig

__all__ = ["MetaSRStudent", "StudentConfig"]
