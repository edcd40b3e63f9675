"""The student architecture: shapes, anchor residual, reparameterization, modulation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from metasr.models import MetaSRStudent, StudentConfig
from metasr.validate.macs import count_macs


@pytest.mark.parametrize("scale", [2, 4])
def test_output_shape_and_range(scale: int) -> None:
    model = MetaSRStudent(StudentConfig(scale=scale)).eval()
    out = model(torch.rand(2, 3, 24, 20))
    assert out.shape == (2, 3, 24 * scale, 20 * scale)
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("scale", [2, 4])
def test_anchor_is_nearest_neighbour_upsampling(scale: int) -> None:
    model = MetaSRStudent(StudentConfig(scale=scale)).eval()
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)
    image = torch.rand(1, 3, 9, 7)
    expected = F.interpolate(image, scale_factor=scale, mode="nearest")
    assert torch.equal(model(image), expected)


def test_reparameterize_keeps_output(small_student: MetaSRStudent) -> None:
    small_student.train()
    for block in small_student.blocks:  # make the 1x1 branch matter
        torch.nn.init.normal_(block.conv1.weight, std=0.1)
    small_student.eval()
    image = torch.rand(1, 3, 16, 16)
    before = small_student(image)
    small_student.reparameterize()
    assert all(block.fused is not None for block in small_student.blocks)
    assert not any(name.endswith(("conv1.weight", "conv3.weight")) for name, _ in small_student.named_parameters())
    torch.testing.assert_close(small_student(image), before, atol=1e-5, rtol=0)


def test_neutral_modulation_is_identity_and_other_values_change_output(small_student: MetaSRStudent) -> None:
    image = torch.rand(1, 3, 16, 16)
    neutral = small_student.neutral_modulation()
    assert neutral.shape == (1, small_student.modulation_channels, 1, 1)
    assert torch.equal(small_student(image), small_student(image, neutral))
    assert not torch.allclose(small_student(image), small_student(image, neutral * 0.5))


def test_parameter_budget_of_default_students() -> None:
    for scale in (2, 4):
        model = MetaSRStudent(StudentConfig(scale=scale)).reparameterize()
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert 30_000 <= params <= 150_000


def test_macs_count_matches_conv_arithmetic() -> None:
    model = MetaSRStudent(StudentConfig(scale=2, channels=4, num_blocks=1)).reparameterize()
    h, w = 10, 6
    macs = count_macs(model, (torch.zeros(1, 3, h, w), model.neutral_modulation()))
    expected = h * w * (4 * 3 * 9 + 4 * 4 * 9 + 12 * 4 * 9 + 12 * 3)
    assert macs == expected
