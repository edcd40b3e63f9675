"""Every architecture the benchmarks compare, trained under one recipe, and their shipped weights.

``student`` and ``student-small`` are MetaSR's plain student (32 channels; 5 and 2 RepBlocks) trained
exactly like the anchors, so the comparison isolates the architecture. ``student-small`` has the MACs of
QuickSRNet-small once its training-time branches are folded.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from torch import nn

from benchmarks.anchors import ANCHORS
from metasr.errors import MetaSRError
from metasr.models import MetaSRStudent, StudentConfig
from metasr.safe_weights import load_weights, save_state

WEIGHTS = Path(__file__).parent / "anchors" / "weights"


def _student(scale: int, num_blocks: int) -> MetaSRStudent:
    return MetaSRStudent(StudentConfig(scale=scale, num_blocks=num_blocks))


ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    **ANCHORS,
    "student-small": partial(_student, num_blocks=2),
    "student": partial(_student, num_blocks=5),
}


def build(name: str, scale: int) -> nn.Module:
    """A freshly initialised ``name`` at ``scale`` (seeded, so every run starts from the same weights)."""
    if name not in ARCHITECTURES:
        raise MetaSRError(f"unknown architecture '{name}'; choose one of " + ", ".join(ARCHITECTURES))
    torch.manual_seed(0)
    return ARCHITECTURES[name](scale)


def weights_path(name: str, scale: int, root: Path = WEIGHTS) -> Path:
    return root / f"{name}_x{scale}.safetensors"


def save_trained(model: nn.Module, path: Path) -> None:
    """Deployable weights (training branches folded) as fp16 safetensors, written atomically."""
    if isinstance(model, MetaSRStudent):
        model.reparameterize()
    save_state({k: v.half() for k, v in model.state_dict().items()}, path)


def load_trained(name: str, scale: int, root: Path = WEIGHTS) -> nn.Module:
    """``name`` at ``scale`` with its benchmark-trained weights, in eval mode, as float32."""
    path = weights_path(name, scale, root)
    if not path.is_file():
        raise MetaSRError(f"no weights for {name} x{scale} at {path}; run `python -m benchmarks.train` first")
    model = build(name, scale)
    if isinstance(model, MetaSRStudent):
        model.reparameterize()
    load_weights(model, path)  # fp16 on disk, copied into the float32 parameters
    return model.eval()
