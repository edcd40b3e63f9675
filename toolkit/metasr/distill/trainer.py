"""Distil the diffusion teacher and its orchestrator into the student with a device-grade orchestrator.

Loss per batch (weights in the recipe's ``loss``):

* output: L1 to the ground truth and L1 to the teacher's output;
* with a ``plain`` weight, clean patches learn from the plain ``init_student`` instead of the teacher
  (which was trained on damaged input and softens clean input): L1 to its output, shut injection gates;
* feature alignment: the device orchestrator's fused metadata embedding against the teacher's;
* decision distillation: device select/fusion gates against the teacher's for the sources both read,
  and device injection gates against the teacher's at the same relative depth.

The device metadata is computed online from each LR patch by the frozen device extractors, then
dropped or corrupted at random (robustness), and for a share of samples the degree is overridden by
the true degradation degree through the ``strength`` path, so the exported strength input is trained.
With ``fresh_clean``, every batch also gets that many bicubic-only patches drawn fresh from the training
photos (ground-truth loss only), so the student keeps the plain student's sharpness on clean frames
beyond the few hundred clean patches of the cache.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from metasr.assembly import build_metasr, save_metasr
from metasr.checkpoint import load_student
from metasr.data.folder import PatchSampler, list_images, load_at_sides, load_for_training, split_images
from metasr.data.pairs import DegradedPatchSampler
from metasr.distill.cache import DistillSet, build_distill_set
from metasr.distill.evaluate import score_classes, student_runs
from metasr.distill.metadata_noise import perturb_metadata
from metasr.distill.recipe import DistillRecipe, load_distill_recipe
from metasr.distill.teacher_system import load_teacher, teacher_sources
from metasr.models import MetaSRStudent, StudentConfig
from metasr.models.metasr import MetaSR
from metasr.models.orchestrator import Decisions
from metasr.train import cosine_schedule
from metasr.training_loop import Checkpoints, train_steps


@dataclass(frozen=True)
class DistillResult:
    weights: Path
    steps: int
    val_psnr: float


def distill(recipe: DistillRecipe, until: int | None = None) -> DistillResult:
    """Run (or resume) the distillation described by ``recipe``; stop after ``until`` steps if given."""
    torch.manual_seed(recipe.seed)
    out = Path(recipe.out)
    teacher, teacher_names = load_teacher(recipe.teacher)
    train_files, val_files = split_images(list_images(recipe.corpus))
    images = load_at_sides(train_files, (recipe.max_side, *recipe.extra_sides), patch=recipe.patch * recipe.scale)
    sampler = DegradedPatchSampler(images, recipe.patch, recipe.scale, seed=recipe.seed)
    identity = {"teacher": str(Path(recipe.teacher).resolve()), "mtime": Path(recipe.teacher).stat().st_mtime_ns}
    identity.update(seed=recipe.seed, size=recipe.cache_size, patch=recipe.patch, scale=recipe.scale)
    identity.update(clean=recipe.clean_share, controlled=recipe.controlled_share, sides=list(recipe.extra_sides))
    data = build_distill_set(
        out / "distill_set.safetensors",
        teacher,
        teacher_sources(teacher_names),
        sampler,
        recipe.cache_size,
        identity,
        recipe.clean_share,
        recipe.controlled_share,
    )
    student = (
        load_student(recipe.init_student, recipe.scale).train()
        if recipe.init_student
        else MetaSRStudent(StudentConfig(recipe.scale, recipe.channels, recipe.num_blocks))
    )
    model = build_metasr(student, recipe.device_sources).train()
    model.extractors.requires_grad_(False)
    model.extractors.eval()
    if recipe.freeze_student:
        model.student.requires_grad_(False)
    plain = load_student(recipe.init_student, recipe.scale).eval().requires_grad_(False) if recipe.loss.plain else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=recipe.lr)
    generator = torch.Generator().manual_seed(recipe.seed)
    fresh = PatchSampler(images, recipe.patch, recipe.scale, seed=recipe.seed + 1)
    checkpoints = Checkpoints(
        out / "state.safetensors",
        {"model": model},
        recipe.checkpoint_every,
        {"batches": generator},
        {"fresh": fresh.rng},
    )
    shared = [
        (i, teacher_names.index(name)) for i, name in enumerate(model.orchestrator.sources) if name in teacher_names
    ]

    def loss_at(step: int) -> torch.Tensor:
        model.orchestrator.hard = step >= recipe.hard_gates_from * recipe.steps
        batch = _with_fresh_clean(_batch(data, recipe.batch, generator), fresh, recipe.fresh_clean)
        return _step_loss(model, batch, recipe, shared, generator, plain)

    def lr_at(step: int) -> float:
        return recipe.lr * cosine_schedule(step, recipe.steps)

    stop = train_steps("distill", recipe.steps, optimizer, loss_at, lr_at=lr_at, checkpoints=checkpoints, until=until)
    model.orchestrator.hard = True
    model.eval()
    weights = out / f"metasr_x{recipe.scale}.safetensors"
    save_metasr(model, weights)
    val = [load_for_training(p, recipe.max_side) for p in val_files]
    return DistillResult(weights, stop, evaluate_student(model, val, recipe.scale, recipe.use_metadata))


def _batch(data: DistillSet, size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A random batch with one random flip/rotation applied to images and cell maps alike."""
    index = torch.randint(0, len(data), (size,), generator=generator)
    k = int(torch.randint(0, 4, (1,), generator=generator))
    flip = bool(torch.randint(0, 2, (1,), generator=generator))
    batch = {}
    for name, value in vars(data).items():
        value = value[index]
        if value.dim() == 4:
            value = torch.rot90(value, k, dims=(2, 3))
            value = torch.flip(value, dims=(3,)) if flip else value
        batch[name] = value
    return batch


def _with_fresh_clean(batch: dict[str, torch.Tensor], sampler: PatchSampler, count: int) -> dict[str, torch.Tensor]:
    """``count`` fresh bicubic-only patches appended to ``lr``, ``hr`` and ``degrees`` (0); teacher fields stay."""
    if not count:
        return batch
    lr, hr = sampler.sample(count)
    clean = {"lr": lr, "hr": hr, "degrees": torch.zeros(count, batch["degrees"].shape[1])}
    return {**batch, **{name: torch.cat([batch[name], value]) for name, value in clean.items()}}


def _step_loss(
    model: MetaSR,
    batch: dict[str, torch.Tensor],
    recipe: DistillRecipe,
    shared: list[tuple[int, int]],
    generator: torch.Generator,
    plain: MetaSRStudent | None = None,
) -> torch.Tensor:
    lr, n = batch["lr"], batch["lr"].shape[0]
    with torch.no_grad():
        metadata = model.metadata(lr)
    if recipe.use_metadata:
        metadata, present = perturb_metadata(
            metadata, recipe.metadata_dropout, recipe.metadata_corruption, generator, recipe.corruption_kinds
        )
    else:
        present = torch.zeros(n, len(metadata), 1, 1)
    override = torch.rand(n, generator=generator) < recipe.strength_override
    true_degree = batch["degrees"].amax(dim=1)
    strength = torch.where(override, true_degree, torch.full_like(true_degree, -1.0)).reshape(n, 1, 1, 1)
    out, decisions = model.run(lr, strength if recipe.use_metadata else None, metadata, present)
    w, cached = recipe.loss, batch["teacher_sr"].shape[0]  # the teacher's targets cover the cached samples
    to_plain = (true_degree == 0).float().reshape(n, 1, 1, 1) if plain is not None and w.plain else None
    loss = w.gt * F.l1_loss(out, batch["hr"])
    if to_plain is None:
        loss = loss + w.teacher * F.l1_loss(out[:cached], batch["teacher_sr"])
    else:  # clean patches learn from the plain student, not from the teacher
        with torch.no_grad():
            kept = plain(lr)
        teacher = (F.l1_loss(out[:cached], batch["teacher_sr"], reduction="none") * (1 - to_plain[:cached])).mean()
        anchor = (F.l1_loss(out, kept, reduction="none") * to_plain).mean()
        loss = loss + w.teacher * teacher + w.plain * anchor
    if recipe.use_metadata:
        closed = torch.zeros(n, 1, 1, 1) if to_plain is None else to_plain
        loss = loss + w.decisions * _decision_loss(decisions, batch, present, shared, closed)
        loss = loss + w.embed * F.mse_loss(decisions.embed[:cached], batch["embed"])
    return loss


def _decision_loss(
    decisions: Decisions,
    batch: dict[str, torch.Tensor],
    present: torch.Tensor,
    shared: list[tuple[int, int]],
    closed: torch.Tensor,
) -> torch.Tensor:
    """Device gates match teacher gates: select/fusion on shared sources (absent ones target 0), inject by depth.

    Samples marked in ``closed`` (N, 1, 1, 1) target shut injection gates instead, which leave the student's
    own output; so do the samples past the teacher's targets (fresh clean patches).
    """
    cached = batch["select"].shape[0]
    device_idx, teacher_idx = zip(*shared, strict=True)
    mask = present[:cached, list(device_idx)]
    select, fusion = decisions.select[:cached, list(device_idx)], decisions.fusion[:cached, list(device_idx)]
    loss = F.mse_loss(select, batch["select"][:, list(teacher_idx)] * mask)
    loss = loss + F.mse_loss(fusion * mask, batch["fusion"][:, list(teacher_idx)] * mask)
    stages_s, stages_t = decisions.inject.shape[1], batch["inject"].shape[1]
    depth = [round(j * (stages_t - 1) / max(stages_s - 1, 1)) for j in range(stages_s)]
    inject = batch["inject"][:, depth]
    inject = torch.cat([inject, inject.new_zeros(closed.shape[0] - cached, *inject.shape[1:])]) * (1 - closed)
    return loss + F.mse_loss(decisions.inject, inject)


@torch.no_grad()
def evaluate_student(model: MetaSR, images: list[np.ndarray], scale: int, use_metadata: bool = True) -> float:
    """Mean Y-PSNR on the fixed degraded validation crops (metadata absent when ``use_metadata`` is False)."""
    model.eval()
    run = model if use_metadata else student_runs(model)["no metadata"]
    return score_classes(run, {"validation": images}, scale).mean


def main() -> None:
    """``python -m metasr.distill.trainer RECIPE [UNTIL]``."""
    result = distill(load_distill_recipe(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(f"student {result.weights}: {result.val_psnr:.2f} dB on the degraded validation crops")


if __name__ == "__main__":
    main()
