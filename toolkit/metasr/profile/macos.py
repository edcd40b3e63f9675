"""Core ML timing per compute-unit setting and per-op placement from Core ML's compute plan (macOS only)."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metasr.errors import MetaSRError
from metasr.profile.timing import LatencyStats
from metasr.runtime import default_strength, input_names

COMPUTE_UNITS = ("ALL", "CPU_AND_NE", "CPU_ONLY")


@dataclass(frozen=True)
class CoreMLProfile:
    latency: dict[str, LatencyStats]  # compute-unit setting -> timings
    placement: dict[str, int]  # preferred device -> op count (from MLComputePlan)


def require_macos() -> None:
    """Core ML prediction and compute plans exist only on macOS."""
    if platform.system() != "Darwin":
        raise MetaSRError(
            f"--device macos needs macOS (Core ML runs only there; this is {platform.system()}); "
            "run metasr-profile on a Mac, or use --device estimate:iphone-15-pro here"
        )


def profile_coreml(
    package: Path, manifest: dict[str, Any], input_size: tuple[int, int], runs: int, warmup: int = 3
) -> CoreMLProfile:
    """Time the .mlpackage under each compute-unit setting and read per-op device placement."""
    require_macos()
    import coremltools as ct
    from PIL import Image

    h, w = input_size
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    latency = {}
    for units in COMPUTE_UNITS:
        model = ct.models.MLModel(str(package), compute_units=getattr(ct.ComputeUnit, units))
        feeds = {"image": image}
        if "strength" in input_names(manifest):
            feeds["strength"] = default_strength(manifest).numpy()
        for _ in range(warmup):
            model.predict(feeds)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            model.predict(feeds)
            times.append((time.perf_counter() - start) * 1000.0)
        latency[units] = LatencyStats.of(times)
    return CoreMLProfile(latency, _placement(package))


def _placement(package: Path) -> dict[str, int]:
    import coremltools as ct

    compiled = ct.models.MLModel(str(package)).get_compiled_model_path()
    plan = ct.models.compute_plan.MLComputePlan.load_from_path(compiled, compute_units=ct.ComputeUnit.CPU_AND_NE)
    counts: dict[str, int] = {}
    program = plan.model_structure.program
    for function in program.functions.values():
        for op in function.block.operations:
            usage = plan.get_compute_device_usage_for_mlprogram_operation(op)
            if usage is None:
                continue
            name = type(usage.preferred_compute_device).__name__.replace("ML", "").replace("ComputeDevice", "")
            counts[name] = counts.get(name, 0) + 1
    return counts
