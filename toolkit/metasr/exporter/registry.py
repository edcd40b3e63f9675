"""The export targets: each is a package under ``metasr.exporter`` that owns everything specific to it (options,
quantizer, lowering, host runtime, cost-model row, results key); the rest of the toolkit asks this registry."""

from __future__ import annotations

import difflib
import importlib

from metasr.errors import MetaSRError
from metasr.exporter.stages import TargetModule

TARGETS: dict[str, str] = {
    "coreml": "metasr.exporter.coreml",
    "executorch-xnnpack": "metasr.exporter.executorch_xnnpack",
    "executorch-vulkan": "metasr.exporter.executorch_vulkan",
    "onnx": "metasr.exporter.onnx",
    "onnx-qnn": "metasr.exporter.onnx_qnn",
}


def target_module(name: str) -> TargetModule:
    """The package implementing target ``name``; unknown names raise with the nearest valid one."""
    if name not in TARGETS:
        near = difflib.get_close_matches(name, list(TARGETS), n=1)
        hint = f"did you mean '{near[0]}'?" if near else "choose one of " + ", ".join(TARGETS)
        raise MetaSRError(f"unknown target '{name}'; {hint}")
    return importlib.import_module(TARGETS[name])  # type: ignore[return-value]


def targets_writing(suffix: str) -> list[TargetModule]:
    """The targets whose artifacts are files (or packages) ending in ``suffix``."""
    modules = [target_module(name) for name in TARGETS]
    return [module for module in modules if suffix in module.SUFFIXES]


def host_suffixes() -> list[str]:
    """The artifact suffixes this host has a runtime for."""
    modules = [target_module(name) for name in TARGETS]
    return sorted({suffix for module in modules if module.HOST_RUNTIME for suffix in module.SUFFIXES})
