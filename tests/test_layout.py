"""The package's layout rules: target-specific code lives in its target's package, and imports flow one way
(data, then metadata sources, then architectures, export and validation above them, runtimes, profiling and
commands on top)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from metasr.exporter.registry import TARGETS

PACKAGE = Path(__file__).resolve().parents[1] / "toolkit" / "metasr"
TARGET_DIRS = {PACKAGE / Path(*module.split(".")[1:]) for module in TARGETS.values()}
REGISTRY = PACKAGE / "exporter" / "registry.py"

# layer -> the parts of the package it must not import
ABOVE_MODELS = {"models", "checkpoint", "assembly", "model_zoo"}
NOT_IMPORTED_BY = {
    "data": {"metadata", *ABOVE_MODELS, "exporter", "validate", "profile", "upscaling", "runtime", "distill", "cli"},
    "metadata": {*ABOVE_MODELS, "exporter", "validate", "profile", "upscaling", "runtime", "distill", "cli", "api"},
    "models": {"exporter", "validate", "profile", "upscaling", "runtime", "distill", "train", "cli", "api"},
    "validate": {"exporter", "profile", "upscaling", "runtime", "cli", "api"},
    "exporter": {"profile", "upscaling", "runtime", "cli", "api"},
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """The second component of every ``metasr.*`` module ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("metasr.")}
    return found


def test_no_module_outside_a_target_package_branches_on_a_target_name() -> None:
    offenders = []
    for path in _modules():
        if path == REGISTRY or any(d in path.parents for d in TARGET_DIRS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in TARGETS:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} names {node.value!r}")
    assert not offenders, "target-specific code outside its target's package: " + "; ".join(offenders)


@pytest.mark.parametrize("layer", sorted(NOT_IMPORTED_BY))
def test_imports_flow_one_way(layer: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        upward = _imported(path) & NOT_IMPORTED_BY[layer]
        if upward:
            offenders.append(f"{path.relative_to(PACKAGE)} imports {sorted(upward)}")
    assert not offenders, "; ".join(offenders)
