"""Train the orchestrator-conditioned diffusion teacher on degraded corpus crops; one process or torchrun DDP.

Run ``metasr-train teacher --recipe recipes/teacher-x2.yaml`` (single process), or
``torchrun --nproc_per_node N -m metasr.distill.teacher_trainer recipes/teacher-x2.yaml`` on N GPUs:
every rank draws its own crops (seed offset per rank), DDP averages the gradients, rank 0 writes the
resumable state ``out/state.safetensors`` every ``checkpoint_every`` steps and ``out/teacher.safetensors``
(the EMA weights) at the end. Re-running the same command resumes from the state file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from metasr.data.folder import list_images, load_at_sides, load_for_training, split_images
from metasr.data.pairs import DegradedPatchSampler
from metasr.diffusion.resshift import ResShiftSchedule
from metasr.distill.ddp import DistributedContext
from metasr.distill.evaluate import score_classes
from metasr.distill.metadata_noise import perturb_metadata
from metasr.distill.recipe import TeacherRecipe, load_teacher_recipe
from metasr.distill.teacher_system import build_teacher, save_teacher, teacher_metadata, teacher_sources
from metasr.images import bicubic_upscale
from metasr.models.teacher import TeacherConfig
from metasr.train import cosine_schedule
from metasr.training_loop import Checkpoints, train_steps


@dataclass(frozen=True)
class TeacherResult:
    weights: Path
    steps: int
    val_psnr: float
    val_bicubic_psnr: float


def train_teacher(recipe: TeacherRecipe, until: int | None = None) -> TeacherResult:
    """Train (or resume) the teacher described by ``recipe``; stop after ``until`` steps if given."""
    ctx = DistributedContext.from_env().init()
    torch.manual_seed(ctx.seed_for(recipe.seed))
    out = Path(recipe.out)
    train_files, val_files = split_images(list_images(recipe.corpus))
    images = load_at_sides(train_files, (recipe.max_side,), patch=recipe.patch * recipe.scale)
    sampler = DegradedPatchSampler(images, recipe.patch, recipe.scale, seed=ctx.seed_for(recipe.seed))
    sources = teacher_sources(recipe.sources)
    config = TeacherConfig(
        scale=recipe.scale,
        base_channels=recipe.base_channels,
        channel_mult=recipe.channel_mult,
        blocks_per_level=recipe.blocks_per_level,
    )
    teacher = build_teacher(config, sources, ResShiftSchedule(steps=recipe.diffusion_steps, kappa=recipe.kappa))
    teacher = teacher.to(ctx.device)
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=recipe.lr, weight_decay=0.0)
    ema = AveragedModel(teacher, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
    noise = torch.Generator().manual_seed(ctx.seed_for(recipe.seed) + 1)
    generators = {"noise": noise, "degradations": sampler.generator}
    checkpoints = Checkpoints(
        out / "state.safetensors",
        {"teacher": teacher, "ema": ema},
        recipe.checkpoint_every,
        generators,
        {"crops": sampler.crops.rng},
        enabled=ctx.is_main,
    )
    model = ctx.wrap(teacher)

    def loss_at(step: int) -> torch.Tensor:
        batch = sampler.sample(recipe.batch)
        metadata = teacher_metadata(sources, batch.lr)
        metadata, present = perturb_metadata(
            metadata, recipe.metadata_dropout, recipe.metadata_corruption, noise, recipe.corruption_kinds
        )
        own = recipe.own_estimate_from is not None and step >= recipe.own_estimate_from
        return model(batch.lr.to(ctx.device), batch.hr.to(ctx.device), metadata, present, noise, own)

    def lr_at(step: int) -> float:
        return recipe.lr * cosine_schedule(step, recipe.steps, recipe.warmup_steps)

    stop = train_steps(
        "teacher",
        recipe.steps,
        optimizer,
        loss_at,
        lr_at=lr_at,
        clip=(list(teacher.parameters()), 1.0),
        after_step=lambda: ema.update_parameters(teacher),
        checkpoints=checkpoints,
        until=until,
    )
    weights = out / "teacher.safetensors"
    psnr, bicubic = float("nan"), float("nan")
    if ctx.is_main:
        save_teacher(ema.module, weights)
        val_images = [load_for_training(p, recipe.max_side) for p in val_files]
        psnr, bicubic = evaluate_teacher(ema.module, sources, val_images, recipe.scale)
    ctx.barrier()
    ctx.shutdown()
    return TeacherResult(weights, stop, psnr, bicubic)


@torch.no_grad()
def evaluate_teacher(teacher, sources, images: list[np.ndarray], scale: int, seed: int = 0) -> tuple[float, float]:
    """Mean Y-PSNR of the teacher and of bicubic on the fixed degraded validation crops."""

    def run(lr: torch.Tensor) -> torch.Tensor:
        return teacher.sample(lr, teacher_metadata(sources, lr), torch.Generator().manual_seed(seed))[0]

    teacher.eval()
    ours = score_classes(run, {"validation": images}, scale, seed).mean
    bicubic = score_classes(lambda lr: bicubic_upscale(lr, scale), {"validation": images}, scale, seed).mean
    teacher.train()
    return ours, bicubic


def main() -> None:
    """torchrun entry point: ``python -m metasr.distill.teacher_trainer RECIPE [UNTIL]``."""
    recipe = load_teacher_recipe(sys.argv[1])
    result = train_teacher(recipe, int(sys.argv[2]) if len(sys.argv) > 2 else None)
    if DistributedContext.from_env().is_main:
        print(f"teacher {result.weights}: {result.val_psnr:.2f} dB vs bicubic {result.val_bicubic_psnr:.2f} dB")


if __name__ == "__main__":
    main()
