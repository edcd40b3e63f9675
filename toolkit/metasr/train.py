"""Train an SR network on downscaled photos: the plain student (the bundled default before distillation), or any
``image -> upscaled image`` module under the same recipe (the benchmark anchors). LR patches are the bicubic
downscale of the HR patch, or (``degradation="realistic"``) Real-ESRGAN's two-stage damage of it (``"mild"``:
the same with about a third of its noise): a routed model's expert for damaged tiles, usually fine-tuned from a
bicubic-trained student (``init``). With a
pretrained ``teacher`` (a peer such as SPAN, or a local ncnn graph) the target is partly or wholly the
teacher's output on the LR patch: it carries what the few training photos cannot teach."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from metasr.checkpoint import load_student, save_student
from metasr.data.degradations import DAMAGE_CONFIGS, degrade
from metasr.data.folder import PatchSampler, load_at_sides, load_for_training, split_folders
from metasr.data.pairs import centre_crop, validation_pairs
from metasr.data.teacher_patches import TeacherPatchSampler
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale, bicubic_upscale, to_numpy
from metasr.losses import LOSSES
from metasr.models import MetaSRStudent, StudentConfig
from metasr.peers.zoo import load_teacher
from metasr.training_loop import Checkpoints, train_steps
from metasr.validate.metrics import y_psnr

DEGRADATIONS = ("bicubic", "realistic", "mild")
MIN_SIDE = 64  # a photo's longer side when training: room for a few patches
MIN_PATCH = 8  # LR patch side: below it, zero padding is most of what a 3x3 network sees


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; the defaults produced the bundled weights."""

    data: Path
    out: Path
    scale: int = 2
    steps: int = 6000
    batch: int = 16
    patch: int = 48
    lr: float = 2e-3
    max_side: int = 1600
    sides: tuple[int, ...] = ()  # train on every photo at each of these longer sides (default: max_side alone)
    seed: int = 0
    checkpoint_every: int = 500
    until: int | None = None  # stop (with a checkpoint) after this step; a later run resumes
    student: StudentConfig | None = None
    degradation: str = "bicubic"  # "realistic": Real-ESRGAN's second-order damage (x4plus); "mild": its light form
    init: Path | None = None  # student weights to start from (fine-tuning)
    teacher: str | None = None  # a pretrained peer's name or an ncnn .param path (metasr.peers.zoo.load_teacher)
    teacher_weight: float = 1.0  # share of the loss against the teacher's output; the rest against the HR patch
    extra_data: tuple[Path, ...] = ()  # more photo folders, each split like ``data`` (its held-out files validate)
    blocks: int | None = None  # RepBlocks of the student; with ``init``, more than it has appends identity blocks
    channels: int | None = None  # feature channels; with ``init``, more than it has are added, read by nothing yet
    loss: str = "l1"  # "l2": mean squared error, what PSNR measures (a last fine-tuning stage)

    def __post_init__(self) -> None:
        if self.degradation not in DEGRADATIONS:
            raise MetaSRError(f"unknown degradation '{self.degradation}'; choose one of {', '.join(DEGRADATIONS)}")
        if self.loss not in LOSSES:
            raise MetaSRError(f"unknown loss '{self.loss}'; choose one of {', '.join(LOSSES)}")
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise MetaSRError(f"teacher weight {self.teacher_weight} is outside [0, 1]; e.g. 1.0 (its output alone)")
        if self.teacher is not None and self.degradation != "bicubic":
            raise MetaSRError(
                f"a teacher's targets are made from bicubic LR; drop --degradation {self.degradation} or --teacher"
            )
        if self.patch < MIN_PATCH or self.batch < 1:
            raise MetaSRError(
                f"patch {self.patch} / batch {self.batch} is too small; give --patch >= {MIN_PATCH} and --batch >= 1"
            )
        sides = (self.max_side, *self.sides)
        too_small = [side for side in sides if side < MIN_SIDE]
        if too_small:
            raise MetaSRError(f"photo side {too_small[0]} is under {MIN_SIDE} px; give each side as >= {MIN_SIDE}")
        hr_patch = self.patch * self.scale
        if min(sides) < hr_patch:
            raise MetaSRError(
                f"photo side {min(sides)} cannot hold the {hr_patch}-px HR patch (--patch {self.patch} at "
                f"x{self.scale}); give each side as >= {hr_patch} or a smaller --patch"
            )
        if self.blocks is not None and self.blocks < 1:
            raise MetaSRError(f"a student needs at least one block, not {self.blocks}; e.g. --blocks 5")
        if self.channels is not None and self.channels < 1:
            raise MetaSRError(f"a student needs at least one channel, not {self.channels}; e.g. --channels 32")
        folders = [Path(folder).resolve() for folder in (self.data, *self.extra_data)]
        repeated = next((folder for i, folder in enumerate(folders) if folder in folders[:i]), None)
        if repeated is not None:
            raise MetaSRError(f"photo folder {repeated} is given twice; name each --data/--extra-data folder once")


@dataclass(frozen=True)
class TrainResult:
    weights: Path
    val_psnr: float
    val_bicubic_psnr: float
    steps: int


def evaluate(
    model: torch.nn.Module, images: list[np.ndarray], scale: int, crop: int = 512, degradation: str = "bicubic"
) -> tuple[float, float]:
    """Mean Y-PSNR (border = scale) of the model and of bicubic on centre crops of validation photos, downscaled
    bicubically or damaged (``realistic``, ``mild``: the fixed validation pairs, seed 0)."""
    if degradation in DAMAGE_CONFIGS:
        damaged = validation_pairs(images, scale, crop, seed=0, config=DAMAGE_CONFIGS[degradation])
        pairs = [(batch.hr, batch.lr) for batch in damaged]
    else:
        pairs = [(hr, bicubic_downscale(hr, scale)) for hr in (centre_crop(img, crop, scale) for img in images)]
    ours, bicubic = [], []
    model.eval()
    with torch.no_grad():
        for hr, lr in pairs:
            ref = to_numpy(hr)
            ours.append(y_psnr(to_numpy(model(lr)), ref, border=scale))
            bicubic.append(y_psnr(to_numpy(bicubic_upscale(lr, scale)), ref, border=scale))
    model.train()
    return float(np.mean(ours)), float(np.mean(bicubic))


def cosine_schedule(step: int, steps: int, warmup: int = 0) -> float:
    """Learning-rate factor at ``step``: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def fit(model: torch.nn.Module, cfg: TrainConfig, label: str | None = None) -> tuple[float, float]:
    """Train ``model`` in place with ``cfg.loss`` (L1 or L2) and a cosine schedule; checkpoints to
    ``cfg.out/state.safetensors`` (nothing pickled) and resumes from it bit-identically. Returns the validation
    Y-PSNR of the model and of bicubic."""
    torch.manual_seed(cfg.seed)
    train_files, val_files = split_folders((cfg.data, *cfg.extra_data))
    train_imgs = load_at_sides(train_files, cfg.sides or (cfg.max_side,), patch=cfg.patch * cfg.scale)
    val_imgs = [load_for_training(p, cfg.max_side) for p in val_files]
    if cfg.teacher is None:
        sampler = PatchSampler(train_imgs, cfg.patch, cfg.scale, seed=cfg.seed)
    else:
        teacher = load_teacher(cfg.teacher, cfg.scale)
        sampler = TeacherPatchSampler(train_imgs, teacher, cfg.patch, cfg.scale, seed=cfg.seed)
    damage = torch.Generator().manual_seed(cfg.seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    cfg.out.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpoints(
        cfg.out / "state.safetensors",
        {"model": model},
        cfg.checkpoint_every,
        {"damage": damage},
        {"crops": sampler.rng},
    )

    distance = LOSSES[cfg.loss]

    def loss_at(step: int) -> torch.Tensor:
        if cfg.teacher is not None:
            lr, hr, target = sampler.sample(cfg.batch)
            sr, w = model(lr), cfg.teacher_weight
            return (1.0 - w) * distance(sr, hr) + w * distance(sr, target)
        lr, hr = sampler.sample(cfg.batch)
        if cfg.degradation != "bicubic":
            lr = degrade(hr, cfg.scale, DAMAGE_CONFIGS[cfg.degradation], damage).lr
        return distance(model(lr), hr)

    train_steps(
        label or f"train x{cfg.scale}",
        cfg.steps,
        optimizer,
        loss_at,
        lr_at=lambda step: cfg.lr * cosine_schedule(step, cfg.steps),
        checkpoints=checkpoints,
        until=cfg.until,
    )
    return evaluate(model, val_imgs, cfg.scale, degradation=cfg.degradation)


def deepened(student: MetaSRStudent, blocks: int) -> MetaSRStudent:
    """``student`` with identity RepBlocks appended up to ``blocks`` (their convolutions zero: the output is
    unchanged, and training grows them from there); refuses fewer blocks than it has."""
    have = student.config.num_blocks
    if blocks < have:
        raise MetaSRError(f"the --init student has {have} blocks; give --blocks {have} or more (blocks are only added)")
    grown = MetaSRStudent(replace(student.config, num_blocks=blocks))
    missing, _ = grown.load_state_dict(student.state_dict(), strict=False)
    with torch.no_grad():
        for name in missing:
            grown.get_parameter(name).zero_()
    return grown.train()


def widened(student: MetaSRStudent, channels: int) -> MetaSRStudent:
    """``student`` with feature channels added up to ``channels``: each new channel reads the old ones through
    freshly initialised weights, and nothing reads it yet (zero weights), so the output is unchanged and training
    grows them from there; refuses fewer channels than it has."""
    have = student.config.channels
    if channels < have:
        raise MetaSRError(
            f"the --init student has {have} channels; give --channels {have} or more (channels are only added)"
        )
    grown = MetaSRStudent(replace(student.config, channels=channels))
    with torch.no_grad():
        for name, old in student.named_parameters():
            new = grown.get_parameter(name)
            if new.dim() == 4:
                new[: old.shape[0], old.shape[1] :] = 0.0
                new[: old.shape[0], : old.shape[1]] = old
            else:
                new[: old.shape[0]] = old
    return grown.train()


def train_student(cfg: TrainConfig) -> TrainResult:
    """Train the plain student (see :func:`fit`) and save it as ``cfg.out/student_x{scale}.safetensors``."""
    torch.manual_seed(cfg.seed)
    if cfg.init is not None:
        model = load_student(cfg.init, cfg.scale).train()
        if cfg.channels is not None:
            model = widened(model, cfg.channels)
        if cfg.blocks is not None:
            model = deepened(model, cfg.blocks)
    else:
        config = cfg.student or StudentConfig(scale=cfg.scale)
        config = replace(config, num_blocks=cfg.blocks or config.num_blocks, channels=cfg.channels or config.channels)
        model = MetaSRStudent(config)
    val_psnr, val_bicubic = fit(model, cfg)
    weights = cfg.out / f"student_x{cfg.scale}.safetensors"
    save_student(model, weights)
    return TrainResult(weights, val_psnr, val_bicubic, min(cfg.until or cfg.steps, cfg.steps))
