"""Train the degradation-degree estimator without labels, and measure that its degrees are monotone.

Metric learning as in MM-RealSR: the same clean crop is degraded twice along one degradation (blur,
noise or JPEG), once less and once more, with the other two held at a shared random level. A margin
ranking loss asks the estimate of that degradation to rise by at least a margin proportional to the
gap, and a consistency loss keeps the other two estimates equal between the pair. Two anchors fix the
scale: a clean crop is pinned at 0 on every degradation, a maximally degraded one at 1 on its own.
With a ``realistic`` weight, the same ranking also covers Real-ESRGAN's two-stage damage, the kind
camera frames carry: a crop put through it must read above its clean version on each degradation by a
margin proportional to the degree the pipeline reports, and of two such draws the more damaged must read
higher. Without it (the shipped weights), the estimator learns single-stage damage only and reads
realistic frames about as damaged as clean ones; with it, blur readings stop rising monotonically on
fine-textured photos (TRAINING.md, section 1).
No degree value is ever used as a regression target, only the order of the pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from metasr.data.degradations import REAL_ESRGAN_X4PLUS, controlled_degradation, degrade
from metasr.data.folder import PatchSampler, list_images, load_at_sides, split_images
from metasr.data.sample_images import fit_crop, photo
from metasr.errors import MetaSRError
from metasr.metadata.degree_estimator import DEGRADATIONS, DegreeEstimator
from metasr.safe_weights import save_state
from metasr.training_loop import Checkpoints, interrupted_state, train_steps

EVAL_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry")
EVAL_LEVELS = tuple(np.linspace(0.0, 1.0, 9))


@dataclass(frozen=True)
class DegreeTrainConfig:
    """Settings of one estimator run; the defaults produced the shipped weights."""

    corpus: Path
    out: Path
    steps: int = 700
    batch: int = 8
    patch: int = 64  # LR pixels (two cells)
    scale: int = 2
    lr: float = 2e-3
    margin: float = 0.5  # required rise per unit of degree gap
    other_max: float = 0.6  # the held degradations are drawn in [0, other_max]
    sides: tuple[int, ...] = (1024, 512, 256)  # each photo at these longer sides: smooth to detail-dense crops
    clean_weight: float = 4.0  # clean anchor vs each maximum anchor: a cell showing no damage reads near 0
    realistic: float = 0.0  # weight of the ranking on Real-ESRGAN two-stage damage (TRAINING.md: estimators v4-v10)
    channels: int = 24  # width of the estimator's first convs; MACs grow with its square
    seed: int = 0
    checkpoint_every: int = 100  # a killed run resumes from its last checkpoint


@dataclass(frozen=True)
class DegreeReport:
    """Spearman correlation between applied and estimated degree, per degradation and photo, and the
    frame-mean estimate on each photo's clean (bicubic-only) version, which should read near 0."""

    per_photo: dict[str, dict[str, float]]
    clean: dict[str, dict[str, float]]

    @property
    def minimum(self) -> dict[str, float]:
        return {d: min(v[d] for v in self.per_photo.values()) for d in DEGRADATIONS}

    @property
    def mean(self) -> dict[str, float]:
        return {d: float(np.mean([v[d] for v in self.per_photo.values()])) for d in DEGRADATIONS}

    @property
    def clean_mean(self) -> dict[str, float]:
        return {d: float(np.mean([v[d] for v in self.clean.values()])) for d in DEGRADATIONS}


def train_degree_estimator(cfg: DegreeTrainConfig) -> tuple[Path, DegreeReport]:
    """Train on clean corpus crops, save ``cfg.out`` (safetensors) and return the monotonicity report.

    Each training photo is held at every size in ``cfg.sides``: wallpapers at 1024 px are smooth, so a
    clean anchor pinned only there would read the denser detail of ordinary photos as blur or JPEG.
    """
    if cfg.realistic < 0:
        raise MetaSRError(f"realistic weight {cfg.realistic} is negative; pass 0 (off) or a positive weight")
    if cfg.channels < 1:
        raise MetaSRError(f"channel count {cfg.channels} must be at least 1; pass e.g. --channels 24")
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    train_files, _ = split_images(list_images(cfg.corpus))
    images = load_at_sides(train_files, cfg.sides, patch=cfg.patch * cfg.scale)
    sampler = PatchSampler(images, cfg.patch, cfg.scale, seed=cfg.seed)
    model = DegreeEstimator(cfg.channels).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    state = interrupted_state(cfg.out)
    checkpoints = Checkpoints(
        state, {"model": model}, cfg.checkpoint_every, {"losses": generator}, {"crops": sampler.rng}
    )

    def loss_at(step: int) -> torch.Tensor:
        _, hr = sampler.sample(cfg.batch)
        return _step_loss(model, hr, cfg, generator)

    train_steps("degree estimator", cfg.steps, optimizer, loss_at, scheduler=schedule, checkpoints=checkpoints)
    model.eval()
    save_state(model.state_dict(), cfg.out)
    state.unlink()
    return cfg.out, evaluate_monotonicity(model, cfg.scale)


def _step_loss(model: DegreeEstimator, hr: torch.Tensor, cfg: DegreeTrainConfig, generator: torch.Generator):
    n = hr.shape[0]
    zeros = torch.zeros(n)
    losses = []
    for d in range(len(DEGRADATIONS)):
        low = torch.rand(n, generator=generator) * 0.8
        high = low + 0.1 + torch.rand(n, generator=generator) * (0.9 - low)
        held = torch.rand(n, len(DEGRADATIONS), generator=generator) * cfg.other_max
        pair = []
        for level in (low, high):
            degrees = held.clone()
            degrees[:, d] = level
            pair.append(model(_degrade(hr, cfg.scale, degrees, generator)))
        less, more = pair
        gap = (high - low).reshape(n, 1, 1)
        losses.append(F.relu(cfg.margin * gap - (more[:, d] - less[:, d])).mean())
        others = [o for o in range(len(DEGRADATIONS)) if o != d]
        losses.append(0.5 * (more[:, others] - less[:, others]).abs().mean())
        peak = zeros.unsqueeze(1).repeat(1, len(DEGRADATIONS))
        peak[:, d] = 1.0
        losses.append((1.0 - model(_degrade(hr, cfg.scale, peak, generator))[:, d]).pow(2).mean())
    clean = model(_degrade(hr, cfg.scale, torch.zeros(n, len(DEGRADATIONS)), generator))
    losses.append(cfg.clean_weight * clean.pow(2).mean())
    if cfg.realistic:
        losses.append(cfg.realistic * _realistic_ranking(model, hr, clean, cfg, generator))
    return sum(losses)


def _realistic_ranking(
    model: DegreeEstimator, hr: torch.Tensor, clean: torch.Tensor, cfg: DegreeTrainConfig, generator: torch.Generator
) -> torch.Tensor:
    """Margin ranking on two Real-ESRGAN draws of ``hr``: each reads above clean, the more damaged above the other."""
    first, second = (degrade(hr, cfg.scale, REAL_ESRGAN_X4PLUS, generator) for _ in range(2))
    read_first, read_second = model(first.lr), model(second.lr)
    gap = first.degrees - second.degrees
    return (
        _ranking(read_first, clean, first.degrees, cfg.margin)
        + _ranking(read_second, clean, second.degrees, cfg.margin)
        + _ranking(read_first, read_second, gap, cfg.margin)
        + _ranking(read_second, read_first, -gap, cfg.margin)
    )


def _ranking(more: torch.Tensor, less: torch.Tensor, gap: torch.Tensor, margin: float) -> torch.Tensor:
    """Hinge on ``more - less >= margin * gap`` per degradation, counted only where the gap (N, 3) is positive."""
    gap = gap.clamp(min=0.0)[:, :, None, None]
    return (F.relu(margin * gap - (more - less)) * (gap > 0)).mean()


def _degrade(hr: torch.Tensor, scale: int, degrees: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    blur, noise, jpeg = degrees.unbind(dim=1)
    return controlled_degradation(hr, scale, blur=blur, noise=noise, jpeg=jpeg, generator=generator)


@torch.no_grad()
def evaluate_monotonicity(model: DegreeEstimator, scale: int = 2, size: int = 256) -> DegreeReport:
    """Degrade scikit-image photos with rising blur, then rising noise, then rising JPEG (the others at 0),
    and compute the Spearman correlation between applied level and frame-mean estimate per photo; also
    record each photo's estimate at level 0 (clean)."""
    model.eval()
    per_photo, clean = {}, {}
    for name in EVAL_PHOTOS:
        crop = fit_crop(photo(name), size * scale, size * scale)
        hr = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None]
        scores = {}
        for d, degradation in enumerate(DEGRADATIONS):
            estimates = []
            for level in EVAL_LEVELS:
                degrees = torch.zeros(1, len(DEGRADATIONS))
                degrees[0, d] = float(level)
                lr = _degrade(hr, scale, degrees, torch.Generator().manual_seed(1))
                estimates.append(model(lr)[0, d].mean().item())
            scores[degradation] = float(spearmanr(EVAL_LEVELS, estimates).statistic)
            clean.setdefault(name, {})[degradation] = estimates[0]
        per_photo[name] = scores
    return DegreeReport(per_photo, clean)
