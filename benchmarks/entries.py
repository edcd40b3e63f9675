"""The rows of every benchmark table: which models run, how, and what they are made of.

An :class:`Entry` is one model at one scale with a ``run(lr) -> sr`` function for quality, and for the
lowered measurements either a plain ``image -> image`` network (``net``) or a MetaSR checkpoint. Pretrained
peers (:func:`peer`) are networks with someone else's published weights, read from their ncnn files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.architectures import load_trained
from benchmarks.quality import Run
from metasr.assembly import load_graph, load_metasr
from metasr.distill.evaluate import student_runs
from metasr.distill.teacher_system import load_teacher, teacher_metadata, teacher_sources
from metasr.images import bicubic_upscale
from metasr.metadata import CELL
from metasr.model_zoo import model_card
from metasr.models.metasr import MetaSR
from metasr.peers.zoo import PEERS, load_peer

WEIGHTS = model_card("metasr-x2").path.parent
REALWORLD = WEIGHTS / "metasr_x2_realworld.safetensors"


@dataclass(frozen=True)
class Entry:
    """One model at one scale."""

    name: str
    scale: int
    trained: str  # how it was trained, for the tables
    run: Run
    net: nn.Module | None = None  # a plain network (lowered as is)
    checkpoint: Path | None = None  # a MetaSR graph (lowered through the export pipeline's load/prepare)
    timed: bool = True  # in the latency table
    pretrained: bool = False  # a peer's published weights: quality and latency rows, no quantization-loss rows

    @property
    def lowerable(self) -> bool:
        return self.net is not None or self.checkpoint is not None


def bicubic(scale: int) -> Entry:
    return Entry("bicubic", scale, "-", lambda lr: bicubic_upscale(lr, scale).clamp(0, 1))


def trained(name: str, scale: int, budget: str) -> Entry:
    """An architecture with its benchmark-trained weights (the shared recipe and step budget)."""
    net = load_trained(name, scale)
    return Entry(name, scale, budget, _no_grad(net), net=net)


def peer(name: str, timed: bool = True) -> Entry:
    """A pretrained peer (``benchmarks/peers``), its output clamped to [0, 1] as its app wrapper writes uint8."""
    net = load_peer(name)
    spec = PEERS[name]
    trained_as = f"pretrained weights (not trained here): {spec.source}"

    def run(lr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(lr).clamp(0, 1)

    return Entry(name, spec.scale, trained_as, run, net=net, timed=timed, pretrained=True)


def metasr(
    name: str, checkpoint: Path, scale: int, trained_as: str, metadata: bool = True, timed: bool = True
) -> Entry:
    """A MetaSR graph; ``metadata=False`` runs it with every source switched off (the orchestrator's view)."""
    model = load_metasr(checkpoint, scale)
    run = _padded(model if metadata else student_runs(model)["no metadata"], model.scale)
    return Entry(name, scale, trained_as, run, checkpoint=checkpoint if metadata else None, timed=timed)


def routed(name: str, checkpoint: Path, trained_as: str) -> Entry:
    """A routed MetaSR (router + plain experts), float; quality only: ``benchmarks/app_latency.py`` times its
    exported artifact tile by tile."""
    model = load_graph(checkpoint)
    return Entry(name, model.scale, trained_as, _padded(model, model.scale, CELL * model.router.thumbnail))


def teacher(path: Path) -> Entry:
    """The diffusion teacher (all sampling steps, seeded), with its teacher-grade metadata."""
    model, names = load_teacher(path)
    sources = teacher_sources(names)

    def run(lr: torch.Tensor) -> torch.Tensor:
        return model.sample(lr, teacher_metadata(sources, lr), torch.Generator().manual_seed(0))[0].clamp(0, 1)

    return Entry("teacher (diffusion)", model.scale, f"ResShift, {path.name}", _padded(run, model.scale))


def student_of(entry: Entry) -> Entry:
    """The student inside a MetaSR graph entry, without the metadata extractors and orchestrator."""
    model: MetaSR = load_metasr(entry.checkpoint, entry.scale).reparameterize()
    student = model.student.eval()
    return Entry(f"{entry.name}: student only", entry.scale, entry.trained, _no_grad(student), net=student)


def _no_grad(net: nn.Module) -> Run:
    def run(lr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(lr)

    return run


def _padded(run, scale: int, unit: int = CELL) -> Run:
    """Run a MetaSR graph on any size: pad the frame (edge-replicate) to whole ``unit``-pixel blocks (metadata
    cells; a thumbnail router's cells are larger), crop the output."""

    def padded(lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        ph, pw = (max(2 * unit, -(-side // unit) * unit) - side for side in (h, w))
        with torch.no_grad():
            out = run(F.pad(lr, (0, pw, 0, ph), mode="replicate") if ph or pw else lr)
        return out[..., : h * scale, : w * scale]

    return padded
