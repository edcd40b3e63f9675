"""Declarative settings of teacher training and distillation (``recipes/teacher-*.yaml``, ``distill-*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from metasr.distill.metadata_noise import check_corruption_kinds
from metasr.errors import MetaSRError
from metasr.metadata import DEVICE_SOURCES, available_sources
from metasr.recipes import build_dataclass, load_mapping
from metasr.safe_weights import shipped_teacher_path

TEACHER_SOURCES = ("edges", "degradation", "content", "luminance")


@dataclass(frozen=True)
class TeacherRecipe:
    """Teacher training: data, UNet size, diffusion schedule, metadata robustness, optimisation."""

    scale: int = 2
    corpus: str = "data/corpus"
    out: str = "checkpoints/teacher_x2"
    sources: tuple[str, ...] = TEACHER_SOURCES
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    blocks_per_level: int = 2
    diffusion_steps: int = 4
    kappa: float = 0.1  # noise scale on [0, 1]: lower trades sample diversity for fidelity (TRAINING.md)
    steps: int = 2000
    batch: int = 8
    patch: int = 32  # LR pixels
    lr: float = 4e-4  # peak; linear warm-up over warmup_steps, then cosine decay to zero
    warmup_steps: int = 100
    ema_decay: float = 0.999  # the saved teacher is the exponential moving average of the weights
    own_estimate_from: int | None = None  # from this step on, low-noise steps train on the net's own x_T estimate
    metadata_dropout: float = 0.15
    metadata_corruption: float = 0.1
    corruption_kinds: tuple[str, ...] = ("swap", "noise")  # see metasr.distill.metadata_noise
    checkpoint_every: int = 100
    max_side: int = 1024
    seed: int = 0


@dataclass(frozen=True)
class LossWeights:
    """Distillation loss terms: ground truth, teacher output, plain student on clean input, embedding, gates."""

    gt: float = 1.0
    teacher: float = 1.0
    plain: float = 0.0  # > 0: clean patches take init_student's output and shut gates as targets, not the teacher's
    embed: float = 0.1
    decisions: float = 0.1


@dataclass(frozen=True)
class DistillRecipe:
    """Distillation of the teacher (and its orchestrator) into the student with a device orchestrator."""

    scale: int = 2
    corpus: str = "data/corpus"
    teacher: str = str(shipped_teacher_path())  # the teacher inside the installed package
    out: str = "checkpoints/distill_x2"
    init_student: str | None = None  # start from these student weights (e.g. the bundled plain student)
    freeze_student: bool = False  # train only the orchestrator: closed gates give init_student's output exactly
    use_metadata: bool = True  # False: the ablation, same student and orchestrator with every source absent
    device_sources: tuple[str, ...] = DEVICE_SOURCES  # device-grade extractors inside the exported graph
    channels: int = 32
    num_blocks: int = 5
    cache_size: int = 1024  # degraded patches the teacher super-resolves once, reused every epoch
    clean_share: float = 0.25  # of the cache: bicubic-only patches (degree 0), so clean frames are left alone
    controlled_share: float = 0.0  # of the cache: one mild stage of blur/noise/JPEG, degrees uniform in [0, 0.5]
    fresh_clean: int = 0  # bicubic-only patches drawn fresh each step and added to the batch (ground-truth loss)
    patch: int = 32  # LR pixels
    steps: int = 3000
    batch: int = 16
    lr: float = 1e-3
    metadata_dropout: float = 0.15
    metadata_corruption: float = 0.1
    corruption_kinds: tuple[str, ...] = ("swap", "noise")
    strength_override: float = 0.25  # share of samples whose degree is replaced by the true degree
    hard_gates_from: float = 0.8  # fraction of training after which gates run sparse (straight-through)
    loss: LossWeights = field(default_factory=LossWeights)
    checkpoint_every: int = 250
    max_side: int = 1024  # training and validation photos are downscaled to this longer side
    extra_sides: tuple[int, ...] = ()  # training photos also held at these smaller sides (denser detail)
    seed: int = 0


def load_teacher_recipe(path: str | Path) -> TeacherRecipe:
    """Parse and validate a teacher recipe."""
    recipe = build_dataclass(TeacherRecipe, load_mapping(path, "teacher"), str(path))
    _check_common(recipe, str(path))
    if not 0.0 <= recipe.ema_decay < 1.0:
        raise MetaSRError(f"{path}: ema_decay {recipe.ema_decay} must be in [0, 1); 0.999 is the usual choice")
    if recipe.own_estimate_from is not None and not 0 <= recipe.own_estimate_from < recipe.steps:
        raise MetaSRError(
            f"{path}: own_estimate_from {recipe.own_estimate_from} must be a step in [0, {recipe.steps}); "
            "lower it or remove the line"
        )
    return recipe


def load_distill_recipe(path: str | Path) -> DistillRecipe:
    """Parse and validate a distillation recipe."""
    recipe = build_dataclass(DistillRecipe, load_mapping(path, "distill"), str(path))
    _check_common(recipe, str(path))
    shares = (recipe.clean_share, recipe.controlled_share)
    if min(shares) < 0.0 or sum(shares) > 1.0:
        raise MetaSRError(
            f"{path}: clean_share + controlled_share must be shares in [0, 1] summing to at most 1, got {shares}; "
            "the rest of the cache is Real-ESRGAN degraded"
        )
    if any(side < 2 * recipe.patch * recipe.scale for side in recipe.extra_sides):
        raise MetaSRError(
            f"{path}: extra_sides {list(recipe.extra_sides)} must each be at least {2 * recipe.patch * recipe.scale} "
            "pixels (two HR patches); raise them or drop the entry"
        )
    if recipe.fresh_clean < 0:
        raise MetaSRError(f"{path}: fresh_clean {recipe.fresh_clean} must be a patch count >= 0; 0 turns it off")
    if recipe.loss.plain and not recipe.init_student:
        raise MetaSRError(
            f"{path}: loss.plain needs init_student (the output to keep on clean input); add it or drop it"
        )
    if recipe.freeze_student and not recipe.init_student:
        raise MetaSRError(
            f"{path}: freeze_student needs init_student (the weights to keep); add it or drop freeze_student"
        )
    return recipe


def _check_common(recipe: TeacherRecipe | DistillRecipe, where: str) -> None:
    if recipe.scale not in (2, 4):
        raise MetaSRError(f"{where}: scale {recipe.scale} is not supported; use 2 or 4")
    if recipe.patch % 32:
        raise MetaSRError(f"{where}: patch {recipe.patch} must be a multiple of 32 LR pixels (one metadata cell)")
    for name in (*getattr(recipe, "sources", ()), *getattr(recipe, "device_sources", ())):
        if name not in available_sources():
            raise MetaSRError(f"{where}: unknown source '{name}'; known sources: {', '.join(available_sources())}")
    for rate in (recipe.metadata_dropout, recipe.metadata_corruption):
        if not 0.0 <= rate <= 1.0:
            raise MetaSRError(f"{where}: metadata dropout/corruption rate {rate} must be between 0 and 1")
    check_corruption_kinds(recipe.corruption_kinds, where)
