"""The numbers TRAINING.md reports for a distilled student: per content class, ablations, cost ratio.

Mixed-content evaluation set (HR, all real or rendered from real material, degraded with the fixed
Real-ESRGAN pipeline): text (scikit-image ``text``/``page`` and subtitles rendered with DejaVu over a
validation photo), face (the astronaut's head), cartoon (scikit-image ``logo`` and flat-colour drawings),
low light (validation photos darkened with an exposure/gamma model), natural (validation photos).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from metasr.assembly import load_metasr
from metasr.data.folder import list_images, load_for_training, split_images
from metasr.data.pairs import validation_pairs
from metasr.data.sample_images import fit_crop, photo
from metasr.distill.teacher_system import load_teacher, teacher_metadata, teacher_sources
from metasr.images import bicubic_upscale, to_numpy
from metasr.metadata.content_classifier import CONTENT_CLASSES
from metasr.models.metasr import MetaSR
from metasr.validate.macs import macs_per_output_pixel
from metasr.validate.metrics import y_psnr

CLASSES = CONTENT_CLASSES  # the content classifier's classes, in its order
SIZE = 256  # HR side of every evaluation image
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@dataclass(frozen=True)
class ClassScores:
    """Mean Y-PSNR per content class for one way of running the model."""

    per_class: dict[str, float]

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_class.values())))


def content_eval_images(natural: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """HR uint8 images per content class; ``natural`` are validation photos (uint8 HxWx3)."""
    crops = [_u8(fit_crop(img.astype(np.float32) / 255.0, SIZE, SIZE)) for img in natural]
    astronaut = photo("astronaut")[0:220, 140:360]
    logo = photo("logo")
    return {
        "text": [_u8(fit_crop(photo("text"), SIZE, SIZE)), _u8(fit_crop(photo("page"), SIZE, SIZE))]
        + [_subtitles(c, i) for i, c in enumerate(crops[:2])],
        "face": [_u8(fit_crop(astronaut, SIZE, SIZE)), _u8(fit_crop(photo("astronaut")[20:300, 100:380], SIZE, SIZE))],
        "cartoon": [_u8(fit_crop(logo, SIZE, SIZE)), _drawing(0), _drawing(1)],
        "low_light": [_u8(_darken(c.astype(np.float32) / 255.0)) for c in crops],
        "natural": crops,
    }


@torch.no_grad()
def score_classes(run, images: dict[str, list[np.ndarray]], scale: int, seed: int = 0) -> ClassScores:
    """Y-PSNR per class of ``run(lr) -> sr`` on the images degraded with fixed seeds."""
    per_class = {}
    for name, group in images.items():
        scores = []
        for pair in validation_pairs(group, scale, SIZE, seed):
            scores.append(y_psnr(to_numpy(run(pair.lr)), to_numpy(pair.hr), border=scale))
        per_class[name] = float(np.mean(scores))
    return ClassScores(per_class)


def student_runs(model: MetaSR) -> dict[str, object]:
    """Ways to run a distilled student: with its metadata, without any, and with deliberately wrong metadata.

    Two wrong kinds: ``wrong metadata`` inverts every source (``1 - m``; distillation recipes may train
    against that kind), ``misplaced metadata`` gives every cell the metadata of the cell mirrored through
    the frame's centre (right values, wrong places; no recipe trains against that).
    """

    def without(lr: torch.Tensor) -> torch.Tensor:
        metadata = model.metadata(lr)
        return model.run(lr, None, metadata, torch.zeros(1, len(metadata), 1, 1))[0]

    def wrong(lr: torch.Tensor) -> torch.Tensor:
        metadata = [1.0 - m.clamp(0, 1) for m in model.metadata(lr)]  # every source says the opposite
        return model.run(lr, None, metadata)[0]

    def misplaced(lr: torch.Tensor) -> torch.Tensor:
        return model.run(lr, None, model.metadata(torch.flip(lr, dims=(2, 3))))[0]

    return {
        "with metadata": model,
        "no metadata": without,
        "wrong metadata": wrong,
        "misplaced metadata": misplaced,
        "bicubic": _bicubic(model.scale),
    }


def _bicubic(scale: int):
    return lambda lr: bicubic_upscale(lr, scale)


def _u8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def _darken(rgb: np.ndarray, exposure: float = 0.08) -> np.ndarray:
    """Underexposure: linearise (gamma 2.2), scale the exposure, re-encode (noise comes from the degradation)."""
    return np.power(np.power(rgb, 2.2) * exposure, 1 / 2.2)


def _subtitles(image: np.ndarray, seed: int) -> np.ndarray:
    """A validation photo with two lines of white subtitles with a dark outline."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.truetype(FONT, 18 + 4 * seed)
    for line, text in enumerate(("Where are we going?", "Meet me at 7:45 PM")):
        draw.text((12, 150 + 40 * line), text, font=font, fill="white", stroke_width=2, stroke_fill="black")
    return np.asarray(canvas)


def _drawing(seed: int) -> np.ndarray:
    """A flat-colour illustration: outlined shapes on a plain background."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (SIZE, SIZE), tuple(int(v) for v in rng.integers(150, 256, 3)))
    draw = ImageDraw.Draw(canvas)
    for _ in range(8):
        x, y = rng.integers(0, SIZE - 40, 2)
        w, h = rng.integers(30, 120, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([int(x), int(y), int(x + w), int(y + h)], fill=colour, outline="black", width=3)
    return np.asarray(canvas)


def distill_report(teacher_path: Path, student_path: Path, ablation_path: Path, corpus: Path) -> dict:
    """Every number TRAINING.md quotes for a distilled student, as a plain dict (written as JSON by the CLI)."""
    teacher, names = load_teacher(teacher_path)
    sources = teacher_sources(names)
    student, ablation = load_metasr(student_path), load_metasr(ablation_path)
    scale = student.scale
    _, val_files = split_images(list_images(corpus))
    natural = [load_for_training(p, 1024) for p in val_files]

    def run_teacher(lr: torch.Tensor) -> torch.Tensor:
        return teacher.sample(lr, teacher_metadata(sources, lr), torch.Generator().manual_seed(0))[0]

    runs = {"teacher": run_teacher, **student_runs(student), "trained without metadata": _without(ablation)}
    images = content_eval_images(natural)
    classes = {name: score_classes(run, images, scale).per_class for name, run in runs.items()}
    validation = {name: score_classes(run, {"validation": natural}, scale).mean for name, run in runs.items()}
    lr = torch.rand(1, 3, 64, 64)
    hr_pixels = 64 * 64 * scale * scale
    teacher_macs = teacher.schedule.steps * macs_per_output_pixel(
        teacher.net, (torch.rand(1, 3, 64 * scale, 64 * scale), lr, torch.zeros(1)), hr_pixels
    )
    student_macs = macs_per_output_pixel(student, (lr, student.default_strength()), hr_pixels)
    return {
        "scale": scale,
        "validation_psnr": validation,
        "class_psnr": classes,
        "macs_per_output_pixel": {"teacher (all steps)": teacher_macs, "student graph": student_macs},
        "mac_ratio": teacher_macs / student_macs,
    }


def _without(model: MetaSR):
    return student_runs(model)["no metadata"]
