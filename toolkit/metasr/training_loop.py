"""The one training loop every trainer runs: optimizer steps under a learning-rate schedule, a progress bar, and
periodic resumable checkpoints (weights, optimizer moments, RNG states; nothing pickled). A run that is killed
resumes from its last checkpoint and ends bit-identical to one that never stopped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metasr.progress import progress_bar
from metasr.training_state import load_training_state, save_training_state


@dataclass
class Checkpoints:
    """Where and what to checkpoint: ``modules`` and RNGs (torch ``generators``, NumPy ``rngs``) every ``every``
    steps and at the last one, with the optimizer (and ``scheduler``, when the loop has one)."""

    path: Path
    modules: dict[str, nn.Module]
    every: int
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    rngs: dict[str, np.random.Generator] = field(default_factory=dict)
    enabled: bool = True  # False on all but the main process of a distributed run

    def resume(self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> int:
        """Restore the state file if there is one; the step to continue from."""
        if not self.path.is_file():
            return 0
        step, extra = load_training_state(self.path, self.modules, optimizer, self.generators)
        for name, rng in self.rngs.items():
            if name in extra:  # states written before this generator existed never drew from it
                rng.bit_generator.state = extra[name]
        if scheduler is not None:
            scheduler.load_state_dict(extra["scheduler"])
        return step

    def save(
        self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler | None, step: int
    ) -> None:
        extra = {name: rng.bit_generator.state for name, rng in self.rngs.items()}
        if scheduler is not None:
            extra["scheduler"] = scheduler.state_dict()
        save_training_state(self.path, self.modules, optimizer, self.generators, step, extra)


def train_steps(
    label: str,
    steps: int,
    optimizer: torch.optim.Optimizer,
    loss_at: Callable[[int], torch.Tensor],
    *,
    lr_at: Callable[[int], float] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    clip: tuple[Sequence[nn.Parameter], float] | None = None,  # a list: a generator would run dry
    after_step: Callable[[], None] | None = None,
    checkpoints: Checkpoints | None = None,
    until: int | None = None,
) -> int:
    """Run steps ``start .. min(until, steps) - 1`` (``start``: the step the checkpoint holds, else 0) and return
    the step reached. Each step sets the rate ``lr_at(step)`` (or steps ``scheduler`` after the update), takes
    ``loss_at(step)``, back-propagates, clips to ``clip``'s norm, steps the optimizer, then ``after_step``."""
    start = checkpoints.resume(optimizer, scheduler) if checkpoints is not None else 0
    stop = min(until or steps, steps)
    with progress_bar() as bar:
        task = bar.add_task(label, total=steps, completed=start)
        for step in range(start, stop):
            if lr_at is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
            loss = loss_at(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(*clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if after_step is not None:
                after_step()
            bar.update(task, advance=1, description=f"{label} loss {loss.item():.4f}")
            due = (step + 1) % checkpoints.every == 0 or step + 1 == stop if checkpoints is not None else False
            if due and checkpoints.enabled:
                checkpoints.save(optimizer, scheduler, step + 1)
    return stop


def interrupted_state(weights: Path) -> Path:
    """Where a trainer that writes one weights file keeps its resumable state while it runs (removed when it
    finishes, so nothing but the weights lands where they are written)."""
    return weights.with_name(f"{weights.stem}.state.safetensors")
