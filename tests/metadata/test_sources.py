"""Metadata sources: registry, teacher/device agreement, exportability, optional local-model sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from metasr.data.degradations import REAL_ESRGAN_X4PLUS, degrade
from metasr.data.sample_images import image_batch
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale
from metasr.metadata import CELL, available_sources, create_source
from metasr.metadata.degradation import override_degree

SHIPPED = ("edges", "degradation", "damage", "luminance")


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    return image_batch(("astronaut",), 128, 96)[0]


def test_registry_names_every_source_and_refuses_unknown() -> None:
    assert {"edges", "degradation", "damage", "luminance", "motion", "depth", "segmentation", "semantic"} <= set(
        available_sources()
    )
    with pytest.raises(MetaSRError, match="unknown metadata source 'edgez'.*known sources: .*edges"):
        create_source("edgez")


@pytest.mark.parametrize("name", SHIPPED)
def test_teacher_and_device_grades_agree_in_shape_and_range(name: str, astronaut: torch.Tensor) -> None:
    source = create_source(name)
    teacher, device = source.teacher(astronaut), source.device().eval()(astronaut)
    assert teacher.shape == device.shape == (1, source.dims, 128 // CELL, 96 // CELL)
    for out in (teacher, device):
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    torch.export.export(source.device().eval(), (astronaut,))


def test_edges_follow_structure(astronaut: torch.Tensor) -> None:
    source = create_source("edges")
    flat = torch.full_like(astronaut, 0.5)
    teacher, device = source.teacher(astronaut), source.device()(astronaut)
    assert float(device[:, 0].max()) > 0.2
    assert float(source.device()(flat)[:, :, 1:-1, 1:-1].max()) < 0.02  # interior cells of a flat frame
    corr = np.corrcoef(teacher[0, 0].flatten().numpy(), device[0, 0].flatten().numpy())[0, 1]
    assert corr > 0.9


def test_luminance_sees_darkness_and_noise(astronaut: torch.Tensor) -> None:
    source = create_source("luminance")
    noisy = (astronaut + torch.randn(astronaut.shape, generator=torch.Generator().manual_seed(0)) * 0.05).clamp(0, 1)
    for extract in (source.teacher, source.device()):
        base, dark, loud = extract(astronaut), extract(astronaut * 0.2), extract(noisy)
        assert float(dark[:, 0].mean()) < float(base[:, 0].mean()) * 0.5
        assert float(loud[:, 2].mean()) > float(base[:, 2].mean()) + 0.1


def test_motion_needs_two_frames_and_sees_a_shift(astronaut: torch.Tensor) -> None:
    source = create_source("motion")
    assert source.needs_previous_frame
    still = torch.cat([astronaut, astronaut], dim=1)
    moved = torch.cat([astronaut, torch.roll(astronaut, 4, dims=3)], dim=1)
    for extract in (source.teacher, source.device()):
        assert float(extract(still).max()) < 0.05
        assert float(extract(moved)[:, 0].mean()) > 0.05


def test_strength_overrides_the_estimated_degree() -> None:
    degree = torch.rand(1, 3, 2, 2)
    assert torch.equal(override_degree(degree, torch.full((1, 1, 1, 1), -1.0)), degree)
    assert torch.allclose(override_degree(degree, torch.full((1, 1, 1, 1), 0.7)), torch.full_like(degree, 0.7))


def test_shipped_degree_estimator_rises_with_damage_and_reads_clean_photos_low() -> None:
    from metasr.metadata.degradation import load_estimator
    from metasr.metadata.degree_training import evaluate_monotonicity

    report = evaluate_monotonicity(load_estimator(), size=96)
    assert min(report.mean.values()) >= 0.9
    assert max(report.clean_mean.values()) < 0.45  # bicubic-only photos must not read as half-way damaged


def test_shipped_damage_source_reads_realistic_damage_above_the_clean_frame() -> None:
    hr = torch.cat(image_batch(("astronaut", "coffee", "chelsea", "rocket", "camera"), 192, 192))
    damaged = degrade(hr, 2, REAL_ESRGAN_X4PLUS, torch.Generator().manual_seed(0)).lr
    clean = bicubic_downscale(hr, 2)
    extractor = create_source("damage").device().eval()
    with torch.no_grad():
        gap = extractor(damaged).mean(dim=(1, 2, 3)) - extractor(clean).mean(dim=(1, 2, 3))
    assert float(gap.min()) > 0.1, f"mean damage reading, damaged minus clean, per photo: {gap.tolist()}"


class _Depth(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 1:2] * 2.0 + 1.0


class _Segmenter(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, 1.0 - x[:, :1]], dim=1) * 4.0


def _onnx(module: torch.nn.Module, path: Path) -> Path:
    torch.onnx.export(
        module,
        (torch.rand(1, 3, 64, 64),),
        str(path),
        input_names=["x"],
        dynamic_axes={"x": {2: "h", 3: "w"}},
        dynamo=False,
    )
    return path


def test_local_onnx_sources_map_user_models_to_cells(tmp_path: Path, astronaut: torch.Tensor) -> None:
    depth = create_source("depth", path=_onnx(_Depth(), tmp_path / "depth.onnx"))
    out = depth.teacher(astronaut)
    assert out.shape == (1, 2, 4, 3) and float(out.min()) >= 0 and float(out.max()) <= 1
    seg = create_source("segmentation", path=_onnx(_Segmenter(), tmp_path / "seg.onnx"))
    assert seg.dims == 4 and not seg.ships_device
    torch.testing.assert_close(seg.teacher(astronaut).sum(dim=1), torch.ones(1, 4, 3))
    with pytest.raises(MetaSRError, match="has no device-grade extractor"):
        seg.device()


def test_local_source_refuses_missing_and_corrupt_models(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="does not exist"):
        create_source("depth", path=tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(MetaSRError, match="cannot load depth model"):
        create_source("depth", path=bad)
