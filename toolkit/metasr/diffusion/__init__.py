"""Diffusion formulations for the teacher."""

from metasr.diffusion.resshift import ResShiftSchedule

__all__ = ["ResShiftSchedule"]
