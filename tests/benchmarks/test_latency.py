"""benchmarks.latency on a tiny SR net: int8 XNNPACK and fp32 ONNX parity and timing, and the int8 GEMM peak."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from executorch.runtime import Runtime
from torch import nn

from benchmarks.latency import int8_peak, lower_onnx, lower_xnnpack_int8, time_onnx, time_pte
from metasr.exporter.executorch_xnnpack.quantize import capture, quantize_pt2e
from metasr.profile.timing import LatencyStats

RUNS = 3


class _Strength(nn.Module):
    """The net behind the exported graph's ``(image, strength)`` signature, its output scaled by ``strength``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        return self.net(image) * strength


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 12, 3, padding=1), nn.PixelShuffle(2)
    ).eval()


def _smooth(seed: int) -> torch.Tensor:
    """A random smooth 3x32x32 image: 8x8 noise, bicubic upsampled."""
    noise = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(noise, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)


def _inputs(two: bool, seed: int) -> tuple[torch.Tensor, ...]:
    return (_smooth(seed), torch.full((1, 1, 1, 1), 0.5 + seed / 16)) if two else (_smooth(seed),)


def _psnr(out: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR against the reference's value range (a random net's output is not in [0, 1])."""
    peak = (ref.max() - ref.min()).item()
    return 10 * math.log10(peak**2 / torch.mean((out - ref) ** 2).item())


def _check(stats: LatencyStats) -> None:
    assert stats.runs == RUNS
    assert all(math.isfinite(ms) and ms > 0 for ms in (stats.median_ms, stats.p10_ms, stats.p90_ms))


@pytest.mark.parametrize("two", [False, True], ids=["image", "image-strength"])
def test_xnnpack_int8_fully_delegated_matches_float_and_times(tmp_path: Path, two: bool) -> None:
    module = _Strength(_net()) if two else _net()
    example = _inputs(two, 0)
    path = tmp_path / "net.pte"
    coverage = lower_xnnpack_int8(module, example, [_inputs(two, seed) for seed in range(8)], path)
    assert coverage.fallback == [] and coverage.fraction == 1.0
    out = Runtime.get().load_program(path).load_method("forward").execute(list(example))[0]
    with torch.no_grad():
        assert _psnr(out, module(*example)) > 30.0
    _check(time_pte(path, example, runs=RUNS, warmup=1, threads=1))


def test_onnx_fp32_matches_float_and_times(tmp_path: Path) -> None:
    net, image = _net(), _smooth(0)
    path = tmp_path / "net.onnx"
    lower_onnx(net, (image,), path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: image.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, net(image).numpy(), atol=1e-4, rtol=0)
    _check(time_onnx(path, (image,), runs=RUNS, warmup=1, threads=1))


def test_int8_peak_is_a_positive_rate() -> None:
    peak = int8_peak(m=64, k=128, n=32, runs=RUNS, warmup=1, threads=1)
    assert peak.macs == 64 * 128 * 32 and peak.threads == 1
    assert math.isfinite(peak.macs_per_s) and peak.macs_per_s > 0
    assert peak.macs_per_s == pytest.approx(peak.macs / (peak.median_ms / 1e3))


def test_minmax_ranges_take_the_calibration_extremes() -> None:
    net, example = _net(), (_smooth(0),)
    graph = capture(net, example, dynamic_shapes=None)
    quantized = quantize_pt2e(graph, [example], ranges="minmax")
    quantize = torch.ops.quantized_decomposed.quantize_per_tensor.default
    first = next(n for n in quantized.graph.nodes if n.target == quantize)
    scale, zero_point = first.args[1], first.args[2]
    low, high = min(0.0, example[0].min().item()), example[0].max().item()
    assert scale == pytest.approx((high - low) / 255, rel=1e-5)
    assert zero_point == -128 + round(-low / scale)
