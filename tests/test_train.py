"""Training the plain student: runs, resumes exactly, and reports validation quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metasr.checkpoint import load_student
from metasr.data.folder import list_images, split_images
from metasr.data.sample_images import photo
from metasr.errors import MetaSRError
from metasr.models import StudentConfig
from metasr.train import TrainConfig, train_student


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "page", "retina"):
        Image.fromarray((photo(name) * 255).astype(np.uint8)).save(folder / f"{name}.png")
    return folder


def _config(data: Path, out: Path, steps: int, until: int | None = None, **extra: object) -> TrainConfig:
    return TrainConfig(
        data=data,
        out=out,
        steps=steps,
        batch=2,
        patch=16,
        max_side=256,
        checkpoint_every=4,
        until=until,
        student=StudentConfig(scale=2, channels=8, num_blocks=1),
        **extra,
    )


def test_split_is_whole_images_and_stable(photo_folder: Path) -> None:
    files = list_images(photo_folder)
    train, val = split_images(files)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(files)
    assert split_images(list_images(photo_folder)) == (train, val)


def test_resume_matches_uninterrupted_run(photo_folder: Path, tmp_path: Path) -> None:
    straight = train_student(_config(photo_folder, tmp_path / "a", steps=6))
    first = train_student(_config(photo_folder, tmp_path / "b", steps=6, until=3))  # interrupted run
    assert first.steps == 3
    assert (tmp_path / "b" / "state.safetensors").is_file() and not list((tmp_path / "b").glob("*.pt"))
    resumed = train_student(_config(photo_folder, tmp_path / "b", steps=6))
    a, b = load_student(straight.weights), load_student(resumed.weights)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    assert np.isfinite(straight.val_psnr) and straight.val_bicubic_psnr > 15.0


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="does not exist"):
        train_student(_config(tmp_path / "nope", tmp_path / "o", steps=1))


def test_fine_tuning_on_realistic_damage_starts_from_its_weights_and_resumes_exactly(
    photo_folder: Path, tmp_path: Path
) -> None:
    base = train_student(_config(photo_folder, tmp_path / "base", steps=2))
    damage = {"degradation": "realistic", "init": base.weights}
    straight = train_student(_config(photo_folder, tmp_path / "a", steps=4, **damage))
    train_student(_config(photo_folder, tmp_path / "b", steps=4, until=2, **damage))
    resumed = train_student(_config(photo_folder, tmp_path / "b", steps=4, **damage))
    a, b = load_student(straight.weights), load_student(resumed.weights)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    bicubic_lr = train_student(_config(photo_folder, tmp_path / "c", steps=4, init=base.weights))
    assert not torch.equal(next(iter(load_student(bicubic_lr.weights).parameters())), next(iter(a.parameters())))
    assert straight.val_bicubic_psnr < base.val_bicubic_psnr  # bicubic upscaling of damaged frames scores lower
    with pytest.raises(MetaSRError, match="unknown degradation 'blurry'"):
        _config(photo_folder, tmp_path / "d", steps=1, degradation="blurry")
