"""Orchestrator decisions, the assembled MetaSR graph, metadata perturbation and resumable training state."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from metasr.assembly import build_metasr, load_metasr, save_metasr
from metasr.checkpoint import save_student
from metasr.distill.metadata_noise import perturb_metadata
from metasr.errors import MetaSRError
from metasr.models import MetaSRStudent
from metasr.models.orchestrator import Orchestrator
from metasr.training_state import load_training_state, save_training_state

DIMS = {"edges": 2, "degradation": 3, "luminance": 3}


def _inputs(n: int = 2) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(n, 3, 64, 96, generator=g)
    return image, [torch.rand(n, d, 2, 3, generator=g) for d in DIMS.values()]


def _randomise(module: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def test_decisions_have_one_gate_per_source_and_stage_per_cell() -> None:
    orch = Orchestrator(DIMS, [8, 8, 16])
    image, metadata = _inputs()
    d = orch(image, metadata)
    assert d.select.shape == d.fusion.shape == (2, 3, 2, 3)
    assert d.inject.shape == (2, 3, 2, 3)
    assert [g.shape[1] for g, _ in d.modulation] == [8, 8, 16]
    assert float(d.fusion.sum(dim=1).max()) <= 1.0 + 1e-5


def test_fresh_orchestrator_is_the_identity_modulation() -> None:
    d = Orchestrator(DIMS, [8, 8])(*_inputs())
    for gain, bias in d.modulation:
        assert torch.equal(gain, torch.ones_like(gain)) and torch.equal(bias, torch.zeros_like(bias))


def test_hard_gates_are_sparse_and_absent_sources_are_gated_off() -> None:
    orch = Orchestrator(DIMS, [8, 8])
    _randomise(orch)
    image, metadata = _inputs()
    soft = orch(image, metadata)
    orch.hard = True
    hard = orch(image, metadata)
    below = soft.select < orch.threshold
    assert bool(below.any()) and bool((hard.select[below] == 0).all())
    present = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]).reshape(2, 3, 1, 1)
    gated = orch(image, metadata, present)
    assert bool((gated.select[:, 1] == 0).all()) and bool((gated.fusion[1] == 0).all())


def test_gradients_reach_every_orchestrator_head() -> None:
    orch = Orchestrator(DIMS, [8, 8])
    _randomise(orch)
    d = orch(*_inputs())
    sum(g.sum() + b.sum() for g, b in d.modulation).backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in orch.parameters())


def test_metasr_wraps_a_plain_student_exactly(tmp_path: Path, small_student: MetaSRStudent) -> None:
    path = tmp_path / "student.safetensors"
    save_student(small_student, path)
    model = load_metasr(path)
    image = torch.rand(1, 3, 64, 64)
    assert torch.equal(model(image), small_student(image))
    assert torch.equal(model(image, torch.full((1, 1, 1, 1), 1.0)), small_student(image))  # identity orchestrator


def test_strength_drives_a_trained_orchestrator_and_round_trips(tmp_path: Path, small_student: MetaSRStudent) -> None:
    model = build_metasr(small_student).eval()
    _randomise(model.orchestrator)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(model(image, torch.zeros(1, 1, 1, 1)), model(image, torch.ones(1, 1, 1, 1)))
    model.orchestrator.hard = True  # what load_metasr sets for inference
    default = model(image)
    assert torch.equal(default, model(image, model.default_strength()))
    save_metasr(model, tmp_path / "m.safetensors")
    assert torch.equal(load_metasr(tmp_path / "m.safetensors")(image), default)
    torch.export.export(model, (image, model.default_strength()))


def test_metadata_dropout_and_corruption() -> None:
    _, metadata = _inputs(4)
    dropped, present = perturb_metadata(metadata, 1.0, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(present, torch.zeros(4, 3, 1, 1))
    corrupted, present = perturb_metadata(metadata, 0.0, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(present, torch.ones(4, 3, 1, 1))
    assert all(not torch.equal(a, b) for a, b in zip(corrupted, metadata, strict=True))
    inverted, _ = perturb_metadata(metadata, 0.0, 1.0, torch.Generator().manual_seed(0), kinds=("invert",))
    assert all(torch.allclose(a, 1.0 - b) for a, b in zip(inverted, metadata, strict=True))
    with pytest.raises(MetaSRError, match="choose from swap, noise, invert"):
        perturb_metadata(metadata, 0.0, 1.0, torch.Generator().manual_seed(0), kinds=("flip",))
    again, _ = perturb_metadata(metadata, 0.3, 0.3, torch.Generator().manual_seed(5))
    once, _ = perturb_metadata(metadata, 0.3, 0.3, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(again, once, strict=True))


def test_training_state_resumes_bit_identically(tmp_path: Path) -> None:
    def run(steps: int, model, optimizer, generator) -> None:
        for _ in range(steps):
            loss = model(torch.rand(4, 3, generator=generator)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        return model, torch.optim.Adam(model.parameters(), lr=0.1), torch.Generator().manual_seed(3)

    model, optimizer, generator = fresh()
    run(6, model, optimizer, generator)
    straight = model.weight.clone()
    model, optimizer, generator = fresh()
    run(3, model, optimizer, generator)
    save_training_state(tmp_path / "s.safetensors", {"m": model}, optimizer, {"g": generator}, 3, {"k": 1})
    model, optimizer, generator = fresh()
    step, extra = load_training_state(tmp_path / "s.safetensors", {"m": model}, optimizer, {"g": generator})
    run(3, model, optimizer, generator)
    assert (step, extra) == (3, {"k": 1}) and torch.equal(model.weight, straight)
