"""The distillation set: degraded patches with the teacher's output and decisions, computed once.

Sampling a diffusion teacher costs hundreds of student steps, so the teacher super-resolves a fixed set
of degraded patches once; distillation then revisits them (with flips) every epoch. The set is a
safetensors file keyed by the teacher checkpoint's path, the seed and the size, so it is rebuilt when
any of them changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from metasr.checkpoint import read_state, save_state
from metasr.data.degradations import controlled_degradation
from metasr.data.pairs import DegradedPatchSampler
from metasr.distill.teacher_system import ConditionedTeacher, teacher_metadata
from metasr.metadata import MetadataSource
from metasr.progress import progress_bar

KEY = "metasr.distill_cache"
CHUNK = 8


@dataclass
class DistillSet:
    """Patches and teacher targets; decisions are at cell resolution."""

    lr: torch.Tensor
    hr: torch.Tensor
    degrees: torch.Tensor
    teacher_sr: torch.Tensor
    select: torch.Tensor
    fusion: torch.Tensor
    inject: torch.Tensor
    embed: torch.Tensor

    def __len__(self) -> int:
        return self.lr.shape[0]


def build_distill_set(
    path: Path,
    teacher: ConditionedTeacher,
    sources: list[MetadataSource],
    sampler: DegradedPatchSampler,
    size: int,
    identity: dict,
    clean_every: int = 4,
) -> DistillSet:
    """Load the set at ``path`` if it was made for ``identity``; otherwise let the teacher make it.

    Every ``clean_every``-th chunk is bicubic-only (degree 0), so the student also learns to leave clean
    frames alone rather than restore damage that is not there.
    """
    if path.is_file():
        tensors, meta = read_state(path)
        if json.loads(meta.get(KEY, "null")) == identity:
            return DistillSet(**tensors)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in DistillSet.__dataclass_fields__}
    generator = torch.Generator().manual_seed(identity.get("seed", 0))
    with progress_bar() as bar:
        task = bar.add_task("teacher targets", total=size)
        for chunk in range(0, size // CHUNK + (size % CHUNK > 0)):
            batch = sampler.sample(CHUNK)
            if clean_every and chunk % clean_every == clean_every - 1:
                batch.lr = controlled_degradation(batch.hr, sampler.scale, 0.0, 0.0, 0.0, generator)
                batch.degrees = torch.zeros_like(batch.degrees)
            sr, decisions = teacher.sample(batch.lr, teacher_metadata(sources, batch.lr), generator)
            for name, value in (
                ("lr", batch.lr),
                ("hr", batch.hr),
                ("degrees", batch.degrees),
                ("teacher_sr", sr),
                ("select", decisions.select),
                ("fusion", decisions.fusion),
                ("inject", decisions.inject),
                ("embed", decisions.embed),
            ):
                parts[name].append(value.float())
            bar.update(task, advance=CHUNK)
    data = DistillSet(**{name: torch.cat(values)[:size] for name, values in parts.items()})
    save_state(vars(data), path, {KEY: json.dumps(identity, sort_keys=True)})
    return data
