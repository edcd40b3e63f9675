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

from metasr.data.degradations import controlled_degradation
from metasr.data.pairs import DegradedPatchSampler
from metasr.distill.teacher_system import ConditionedTeacher, teacher_metadata
from metasr.metadata import MetadataSource
from metasr.progress import progress_bar
from metasr.safe_weights import read_state, save_state

KEY = "metasr.distill_cache"
CHUNK = 8
CONTROLLED_MAX = 0.5  # highest blur/noise/JPEG degree of the mild, controlled chunks


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
    clean_share: float = 0.25,
    controlled_share: float = 0.0,
) -> DistillSet:
    """Load the set at ``path`` if it was made for ``identity``; otherwise let the teacher make it.

    Chunks of the set are, in a seeded random order: ``clean_share`` bicubic-only (degree 0), so the
    student also learns to leave clean frames alone; ``controlled_share`` one mild stage of blur, noise
    and JPEG with degrees uniform in [0, ``CONTROLLED_MAX``]; the rest Real-ESRGAN's two-stage degradation.
    """
    if path.is_file():
        tensors, meta = read_state(path)
        if json.loads(meta.get(KEY, "null")) == identity:
            return DistillSet(**tensors)
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in DistillSet.__dataclass_fields__}
    generator = torch.Generator().manual_seed(identity.get("seed", 0))
    kinds = chunk_kinds(-(-size // CHUNK), clean_share, controlled_share, generator)
    with progress_bar() as bar:
        task = bar.add_task("teacher targets", total=size)
        for kind in kinds:
            batch = sampler.sample(CHUNK)
            if kind != "realistic":
                top = CONTROLLED_MAX if kind == "controlled" else 0.0
                batch.degrees = torch.rand(CHUNK, 3, generator=generator) * top
                blur, noise, jpeg = batch.degrees.unbind(dim=1)
                batch.lr = controlled_degradation(batch.hr, sampler.scale, blur, noise, jpeg, generator)
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


def chunk_kinds(chunks: int, clean_share: float, controlled_share: float, generator: torch.Generator) -> list[str]:
    """``clean``, ``controlled`` and ``realistic`` chunk labels in the given shares (rounded), shuffled."""
    clean, controlled = round(chunks * clean_share), round(chunks * controlled_share)
    kinds = ["clean"] * clean + ["controlled"] * controlled + ["realistic"] * (chunks - clean - controlled)
    return [kinds[i] for i in torch.randperm(chunks, generator=generator).tolist()]
