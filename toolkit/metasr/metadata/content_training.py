"""Distil the teacher-grade content labels into the device-grade classifier, and measure it on held-out images.

The classifier learns from the training side of :mod:`metasr.metadata.content_tiles` with a class-weighted
cross-entropy per cell (weights ~ 1 / sqrt(class frequency), so text and face cells count despite being
rare) and horizontal flips. The held-out side (frames from source images never used in training) is only
read after training, for the confusion matrix: device argmax versus teacher label, per cell.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from metasr.atomic import atomic_path
from metasr.metadata.content_classifier import ContentClassifier
from metasr.metadata.content_labels import CLASSES
from metasr.metadata.content_tiles import ContentTiles, load_content_tiles
from metasr.safe_weights import save_state
from metasr.training_loop import Checkpoints, interrupted_state, train_steps

BATCH = 64
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
STEPS = 3000
CHECKPOINT_EVERY = 500  # a killed run resumes from its last checkpoint


@dataclass(frozen=True)
class ContentTrainingResult:
    """Where the weights and confusion report went, and the held-out scores."""

    weights: Path
    report: Path
    accuracy: float
    recall: dict[str, float]
    confusion: list[list[int]]  # rows: teacher label, columns: device prediction, in CLASSES order
    counts: dict[str, dict[str, int]]  # labelled cells per class on each side
    seconds: float


def train_content_classifier(
    out: Path, data_cache: Path, corpus: Path, steps: int = STEPS, seed: int = 0
) -> ContentTrainingResult:
    """Train on the labelled frames (built and cached under ``data_cache`` on first use), save, and evaluate.

    Writes ``out`` (safetensors, atomically) and ``<out stem>.confusion.json`` beside it.
    """
    start = time.perf_counter()
    out, data_cache, corpus = Path(out), Path(data_cache), Path(corpus)
    tiles = load_content_tiles(data_cache, corpus, seed)
    torch.manual_seed(seed)
    model = _fit(tiles, steps, seed, interrupted_state(out))
    command = training_command(out, data_cache, corpus, steps, seed)
    save_state(model.state_dict(), out, {"metasr.content_classes": json.dumps(CLASSES), "metasr.command": command})
    frames, labels = tiles.part(held_out=True)
    confusion = confusion_matrix(model, frames, labels)
    recall = {c: float(confusion[i, i] / max(confusion[i].sum(), 1)) for i, c in enumerate(CLASSES)}
    result = ContentTrainingResult(
        weights=out,
        report=out.with_name(f"{out.stem}.confusion.json"),
        accuracy=float(np.trace(confusion) / max(confusion.sum(), 1)),
        recall=recall,
        confusion=confusion.tolist(),
        counts={side: _class_counts(tiles.part(held_out=side == "held_out")[1]) for side in ("train", "held_out")},
        seconds=time.perf_counter() - start,
    )
    _write_report(result, command)
    return result


def training_command(out: Path, data_cache: Path, corpus: Path, steps: int = STEPS, seed: int = 0) -> str:
    """The command that reproduces a run."""
    return f"metasr-train content --corpus {corpus} --out {out} --cache {data_cache} --steps {steps} --seed {seed}"


def confusion_matrix(model: ContentClassifier, frames: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """5 x 5 cell counts: row = teacher label, column = the classifier's argmax."""
    matrix = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(frames), 256):
            predicted = model.logits(_to_tensor(frames[i : i + 256])).argmax(dim=1).numpy()
            np.add.at(matrix, (labels[i : i + 256].ravel(), predicted.ravel()), 1)
    return matrix


def _fit(tiles: ContentTiles, steps: int, seed: int, state: Path) -> ContentClassifier:
    """Class-weighted cross-entropy per cell with horizontal flips, on one thread (small convs run faster so);
    resumable from ``state`` while it runs, which is removed at the end."""
    frames, labels = tiles.part(held_out=False)
    images = _to_tensor(frames).contiguous(memory_format=torch.channels_last)
    targets = torch.from_numpy(labels)
    counts = np.bincount(labels.ravel(), minlength=len(CLASSES)).astype(np.float64)
    weights = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    weights = torch.tensor(weights / (weights * counts).sum() * counts.sum(), dtype=torch.float32)
    model = ContentClassifier().to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=LEARNING_RATE, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        checkpoints = Checkpoints(state, {"model": model}, CHECKPOINT_EVERY, {"batches": generator})

        def loss_at(step: int) -> torch.Tensor:
            pick = torch.randint(len(images), (BATCH,), generator=generator)
            flip = torch.rand(BATCH, generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], images[pick].flip(3), images[pick])
            y = torch.where(flip[:, None, None], targets[pick].flip(2), targets[pick])
            return F.cross_entropy(model.logits(x), y, weight=weights)

        train_steps("content classifier", steps, optimizer, loss_at, scheduler=schedule, checkpoints=checkpoints)
        state.unlink()
    finally:
        torch.set_num_threads(threads)
    return model.to(memory_format=torch.contiguous_format).eval()


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0


def _class_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels.ravel(), minlength=len(CLASSES))
    return {c: int(n) for c, n in zip(CLASSES, counts, strict=True)}


def _write_report(result: ContentTrainingResult, command: str) -> None:
    """confusion.json beside the weights: a plain dict, written atomically."""
    report = {
        "classes": list(CLASSES),
        "matrix": result.confusion,
        "matrix_axes": "rows: teacher label, columns: device prediction (held-out cells)",
        "accuracy": result.accuracy,
        "recall": result.recall,
        "counts": result.counts,
        "command": command,
    }
    with atomic_path(result.report) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
