"""The student trainer's pixel losses: the YUV 4:2:0 loss counts what Y-PSNR and a 4:2:0 frame see."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metasr.losses import RGB_TO_YCBCR, yuv420_mse
from metasr.validate.metrics import y_psnr


def _rgb(ycbcr_diff: torch.Tensor) -> torch.Tensor:
    """The RGB difference whose BT.601 Y, Cb, Cr difference is ``ycbcr_diff`` (N, 3, H, W)."""
    inverse = torch.linalg.inv(RGB_TO_YCBCR).to(torch.float32)
    return torch.einsum("ij,njhw->nihw", inverse, ycbcr_diff)


def test_a_luma_error_costs_what_y_psnr_measures() -> None:
    generator = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 3, 32, 32, generator=generator) * 0.5 + 0.25
    luma = torch.zeros(1, 3, 32, 32)
    luma[:, 0] = torch.randn(32, 32, generator=generator) * 0.02
    sr = hr + _rgb(luma)
    mse = 10.0 ** (-y_psnr(sr[0].permute(1, 2, 0).numpy(), hr[0].permute(1, 2, 0).numpy()) / 10.0)
    # four luma samples of six per 2x2 block: the luma MSE times 2/3
    assert float(yuv420_mse(sr, hr)) == pytest.approx(mse * 2.0 / 3.0, rel=1e-4)


def test_chroma_finer_than_2x2_is_free_and_coarser_chroma_costs() -> None:
    hr = torch.full((1, 3, 8, 8), 0.5)
    checker = torch.zeros(1, 3, 8, 8)
    checker[:, 1] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4) * 0.05
    assert float(yuv420_mse(hr + _rgb(checker), hr)) == pytest.approx(0.0, abs=1e-10)
    flat = torch.zeros(1, 3, 8, 8)
    flat[:, 2] = 0.05
    # one Cr sample of six per block, each off by 0.05
    assert float(yuv420_mse(hr + _rgb(flat), hr)) == pytest.approx(0.05**2 / 6.0, rel=1e-4)
    assert float(torch.nn.functional.mse_loss(hr + _rgb(checker), hr)) > 0.0


def test_odd_sides_are_refused() -> None:
    with pytest.raises(ValueError, match="needs even sides, got 7x8"):
        yuv420_mse(torch.zeros(1, 3, 7, 8), torch.zeros(1, 3, 7, 8))


def test_the_loss_is_a_mean_over_the_batch() -> None:
    a = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    sr, hr = torch.from_numpy(a), torch.zeros(2, 3, 8, 8)
    whole = float(yuv420_mse(sr, hr))
    halves = (float(yuv420_mse(sr[:1], hr[:1])) + float(yuv420_mse(sr[1:], hr[1:]))) / 2.0
    assert whole == pytest.approx(halves, rel=1e-6)
