"""Training the plain student: runs, resumes exactly, and reports validation quality."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from metasr.checkpoint import load_student
from metasr.data.folder import list_images, split_folders, split_images
from metasr.data.sample_images import photo
from metasr.data.teacher_patches import TeacherPatchSampler, teacher_output
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale
from metasr.models import StudentConfig
from metasr.peers.zoo import load_teacher
from metasr.train import TrainConfig, deepened, train_student, widened

pytestmark = pytest.mark.training


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "page", "retina"):
        Image.fromarray((photo(name) * 255).astype(np.uint8)).save(folder / f"{name}.png")
    return folder


def _config(data: Path, out: Path, steps: int, until: int | None = None, **extra: object) -> TrainConfig:
    settings: dict = {"batch": 2, "patch": 16, "max_side": 256, "checkpoint_every": 4}
    student = StudentConfig(scale=2, channels=8, num_blocks=1)
    return TrainConfig(data=data, out=out, steps=steps, until=until, student=student, **{**settings, **extra})


def test_split_is_whole_images_and_stable(photo_folder: Path) -> None:
    files = list_images(photo_folder)
    train, val = split_images(files)
    assert set(train).isdisjoint(val) and len(train) + len(val) == len(files)
    assert split_images(list_images(photo_folder)) == (train, val)


def test_another_folder_adds_photos_without_moving_the_first_folders_validation(
    photo_folder: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    for name in ("rocket", "coffee", "brick"):
        (extra / f"zz-{name}.png").write_bytes((photo_folder / f"{name}.png").read_bytes())
    train, val = split_folders((photo_folder, extra))
    alone_train, alone_val = split_images(list_images(photo_folder))
    assert val[: len(alone_val)] == alone_val and train[: len(alone_train)] == alone_train
    assert set(train[len(alone_train) :]) | set(val[len(alone_val) :]) == set(list_images(extra))
    assert extra / "zz-brick.png" in val  # the extra folder's own first image validates
    result = train_student(_config(photo_folder, tmp_path / "run", steps=2, extra_data=(extra,)))
    assert np.isfinite(result.val_psnr)


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
    mild = train_student(_config(photo_folder, tmp_path / "m", steps=2, degradation="mild", init=base.weights))
    assert straight.val_bicubic_psnr < mild.val_bicubic_psnr < base.val_bicubic_psnr  # validated on mild damage
    with pytest.raises(MetaSRError, match="unknown degradation 'blurry'"):
        _config(photo_folder, tmp_path / "d", steps=1, degradation="blurry")


# option, how the student grows, its new size, and the weights that grew (zero at first: nothing reads them)
GROWTHS = [
    ("blocks", deepened, 3, lambda student: student.blocks[2].conv3.weight),
    ("channels", widened, 12, lambda student: student.tail.weight[:, 8:]),
]


@pytest.mark.parametrize(("option", "grow", "size", "grew"), GROWTHS)
def test_a_grown_student_starts_as_its_init_and_then_trains_what_grew(
    photo_folder: Path, tmp_path: Path, option: str, grow, size: int, grew
) -> None:
    base = train_student(_config(photo_folder, tmp_path / "base", steps=2))
    grown = grow(load_student(base.weights).eval(), size)
    image = torch.rand(1, 3, 24, 24)
    torch.testing.assert_close(grown.eval()(image), load_student(base.weights)(image), rtol=0, atol=1e-6)
    assert not grew(grown).any()
    trained = load_student(
        train_student(_config(photo_folder, tmp_path / "grown", steps=2, init=base.weights, **{option: size})).weights
    )
    assert trained.config == grown.config and grew(trained).abs().sum() > 0
    with pytest.raises(MetaSRError, match=f"has {size} {option}; give --{option} {size} or more"):
        grow(grown, 2)
    with pytest.raises(MetaSRError, match=f"at least one {option[:-1]}"):
        _config(photo_folder, tmp_path / "none", steps=1, **{option: 0})


def test_an_l2_fine_tuning_stage_trains_its_own_student_and_resumes_exactly(photo_folder: Path, tmp_path: Path) -> None:
    base = train_student(_config(photo_folder, tmp_path / "base", steps=2))
    l2 = {"loss": "l2", "init": base.weights, "teacher": "span-ch48-x2", "teacher_weight": 0.5}
    straight = train_student(_config(photo_folder, tmp_path / "a", steps=4, **l2))
    train_student(_config(photo_folder, tmp_path / "b", steps=4, until=2, **l2))
    resumed = train_student(_config(photo_folder, tmp_path / "b", steps=4, **l2))
    a, b = load_student(straight.weights), load_student(resumed.weights)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    for i, other in enumerate(("l1", "l2-yuv420")):
        run = train_student(_config(photo_folder, tmp_path / f"c{i}", steps=4, **{**l2, "loss": other}))
        assert not torch.equal(next(iter(load_student(run.weights).parameters())), next(iter(a.parameters())))
    with pytest.raises(MetaSRError, match="unknown loss 'huber'; choose one of l1, l2, l2-yuv420"):
        _config(photo_folder, tmp_path / "d", steps=1, loss="huber")


@pytest.mark.parametrize(("sides", "bad"), [((800, 0), 0), ((32,), 32)])
def test_a_side_too_small_for_a_patch_is_refused(photo_folder: Path, tmp_path: Path, sides: tuple, bad: int) -> None:
    with pytest.raises(MetaSRError, match=f"photo side {bad} is under 64 px"):
        _config(photo_folder, tmp_path / "run", steps=1, sides=sides)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sides": (128,), "patch": 96}, "photo side 128 cannot hold the 192-px HR patch .--patch 96 at x2."),
        ({"patch": 4}, "patch 4 / batch 2 is too small; give --patch >= 8"),
        ({"batch": 0}, "patch 16 / batch 0 is too small"),
    ],
)
def test_a_patch_or_batch_that_cannot_train_is_refused(
    photo_folder: Path, tmp_path: Path, extra: dict, message: str
) -> None:
    with pytest.raises(MetaSRError, match=message):
        _config(photo_folder, tmp_path / "run", steps=1, **extra)


def test_a_photo_narrower_than_the_patch_is_named_before_training(photo_folder: Path, tmp_path: Path) -> None:
    Image.new("RGB", (400, 40), (90, 120, 30)).save(photo_folder / "strip.png")
    with pytest.raises(MetaSRError, match="strip.png at side 256 is 256x26 px, under the 32-px HR patch"):
        train_student(_config(photo_folder, tmp_path / "run", steps=1))
    assert not (tmp_path / "run").exists()


def test_a_larger_patch_and_batch_train(photo_folder: Path, tmp_path: Path) -> None:
    small = train_student(_config(photo_folder, tmp_path / "a", steps=2))
    large = train_student(_config(photo_folder, tmp_path / "b", steps=2, patch=24, batch=3))
    a, b = load_student(small.weights), load_student(large.weights)
    assert not torch.equal(next(iter(a.parameters())), next(iter(b.parameters())))


def test_a_folder_given_twice_is_refused_rather_than_counted_twice(photo_folder: Path, tmp_path: Path) -> None:
    same = photo_folder / ".." / photo_folder.name
    with pytest.raises(MetaSRError, match="is given twice"):
        _config(photo_folder, tmp_path / "run", steps=1, extra_data=(same,))


NEAREST_X2 = """7767517
2 2
Input                in     0 1 data
Interp               up     1 1 data output 0=1 1=2.000000e+00 2=2.000000e+00
"""


def _nearest_teacher(folder: Path) -> Path:
    """A local ncnn graph that upscales x2 by pixel repetition (no weights): crops of its output are its output
    on the crops, so the sampler's alignment can be checked exactly."""
    param = folder / "nearest_x2.param"
    param.write_text(NEAREST_X2)
    param.with_suffix(".bin").write_bytes(b"")
    return param


def test_teacher_targets_are_the_teachers_output_on_the_same_lr_crop(tmp_path: Path) -> None:
    images = [(photo(name) * 255).astype(np.uint8)[:200, :300] for name in ("astronaut", "coffee")]
    teacher = load_teacher(str(_nearest_teacher(tmp_path)), 2)
    sampler = TeacherPatchSampler(images, teacher, patch=24, scale=2, seed=3)
    lr, hr, target = sampler.sample(8)
    assert lr.shape == (8, 3, 24, 24) and hr.shape == target.shape == (8, 3, 48, 48)
    assert torch.equal(target, F.interpolate(lr, scale_factor=2, mode="nearest").clamp(0, 1))
    # the LR crop is the bicubic downscale of the HR crop's photo at the same place (up to the crop's border)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert torch.allclose(lr[inner], bicubic_downscale(hr, 2)[inner], atol=0.02)
    whole = teacher_output(teacher, bicubic_downscale(torch.rand(1, 3, 64, 1200), 2), 2)  # three column bands
    assert whole.shape == (1, 3, 64, 1200)


def test_training_on_a_teachers_output_learns_it_and_resumes_exactly(photo_folder: Path, tmp_path: Path) -> None:
    nearest = {"teacher": str(_nearest_teacher(tmp_path))}
    straight = train_student(_config(photo_folder, tmp_path / "a", steps=4, **nearest))
    train_student(_config(photo_folder, tmp_path / "b", steps=4, until=2, **nearest))
    resumed = train_student(_config(photo_folder, tmp_path / "b", steps=4, **nearest))
    a, b = load_student(straight.weights), load_student(resumed.weights)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    ground_truth = train_student(_config(photo_folder, tmp_path / "c", steps=4))
    assert not torch.equal(next(iter(load_student(ground_truth.weights).parameters())), next(iter(a.parameters())))


def test_a_real_pretrained_peer_teaches(photo_folder: Path, tmp_path: Path) -> None:
    result = train_student(_config(photo_folder, tmp_path / "span", steps=2, teacher="span-ch48-x2"))
    assert np.isfinite(result.val_psnr) and result.steps == 2


@pytest.mark.parametrize(
    ("teacher", "extra", "fragment"),
    [
        ("span-ch48-x4", {}, "not x2; pick a x2 teacher"),
        ("spam-x2", {}, "neither a pretrained peer"),
        ("missing.param", {}, "neither a pretrained peer"),
        ("span-ch48-x2", {"degradation": "realistic"}, "drop --degradation realistic or --teacher"),
        ("span-ch48-x2", {"teacher_weight": 1.5}, "outside [0, 1]"),
    ],
)
def test_a_teacher_that_cannot_teach_is_refused_in_one_line(
    photo_folder: Path, tmp_path: Path, teacher: str, extra: dict, fragment: str
) -> None:
    with pytest.raises(MetaSRError, match=re.escape(fragment)):
        train_student(_config(photo_folder, tmp_path / "o", steps=1, teacher=teacher, **extra))
    assert not (tmp_path / "o" / "state.safetensors").exists()


def test_a_teacher_without_its_weights_file_is_refused(tmp_path: Path) -> None:
    param = _nearest_teacher(tmp_path)
    param.with_suffix(".bin").unlink()
    with pytest.raises(MetaSRError, match="no weights file nearest_x2.bin"):
        load_teacher(str(param), 2)
