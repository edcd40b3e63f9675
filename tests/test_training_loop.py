"""The shared training loop: a run stopped and resumed from its checkpoint ends bit-identical to one that never
stopped, with a per-step rate or a scheduler, torch and NumPy generators alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from metasr.training_loop import Checkpoints, train_steps


def _run(folder: Path, until: int | None, scheduled: bool, seed: int = 0) -> tuple[nn.Module, int]:
    """Train a tiny net for 20 steps (or ``until``); every RNG and the initial weights come from ``seed``, so only a
    resume that restores them all can match a run with another seed. Returns the net and the steps it ran."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=20) if scheduled else None
    noise, rng = torch.Generator().manual_seed(seed + 1), np.random.default_rng(seed + 2)
    checkpoints = Checkpoints(folder / "state.safetensors", {"model": model}, 3, {"noise": noise}, {"rng": rng})
    ran = []

    def loss_at(step: int) -> torch.Tensor:
        ran.append(step)
        x = torch.from_numpy(rng.standard_normal((16, 4)).astype(np.float32)) + torch.randn(16, 4, generator=noise)
        x = x + 0.01 * torch.randn(16, 4)  # the global generator too
        return (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()

    lr_at = None if scheduled else (lambda step: 1e-2 * (1 - step / 20))
    train_steps("t", 20, optimizer, loss_at, lr_at=lr_at, scheduler=scheduler, checkpoints=checkpoints, until=until)
    return model, len(ran)


@pytest.mark.parametrize("scheduled", [False, True])
def test_a_stopped_and_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path: Path, scheduled: bool) -> None:
    whole, _ = _run(tmp_path / "whole", None, scheduled)
    assert _run(tmp_path / "parts", 7, scheduled)[1] == 7  # stops after step 7 (off the every-3 grid), checkpointed
    resumed, ran = _run(tmp_path / "parts", None, scheduled, seed=99)
    assert ran == 13
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other, _ = _run(tmp_path / "other", None, scheduled, seed=99)
    assert not torch.equal(whole[0].weight, other[0].weight)  # the seed matters: the resume restored it all
