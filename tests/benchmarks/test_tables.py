"""The benchmark harness end to end in ``--quick`` mode, and the anchor architectures' contracts."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from benchmarks.anchors import ANCHORS
from benchmarks.architectures import ARCHITECTURES, load_trained, weights_path
from benchmarks.run import PER_PIXEL_ROW, QUICK, run
from metasr.validate.macs import count_macs

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("name", sorted(ANCHORS))
@pytest.mark.parametrize("scale", [2, 4])
def test_anchor_maps_lr_to_hr_in_unit_range(name: str, scale: int) -> None:
    net = ANCHORS[name](scale).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 20, 28))
    assert out.shape == (1, 3, 20 * scale, 28 * scale)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_student_small_has_the_macs_of_quicksrnet_small() -> None:
    image = torch.rand(1, 3, 32, 32)
    student = ARCHITECTURES["student-small"](2).reparameterize()
    assert count_macs(student, (image,)) <= count_macs(ANCHORS["quicksrnet-small"](2), (image,))


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_shipped_benchmark_weights_load(name: str) -> None:
    for scale in (2, 4):
        assert weights_path(name, scale).is_file(), f"{name} x{scale} weights are not shipped"
        net = load_trained(name, scale)
        with torch.no_grad():
            assert torch.isfinite(net(torch.rand(1, 3, 16, 16))).all()


def test_quick_run_writes_every_table_with_finite_numbers(tmp_path: Path) -> None:
    report = tmp_path / "BENCHMARKS.md"
    tables = run(QUICK, tmp_path / "results", report, corpus=None, teacher=None)
    expected = {"quality", "quant_loss", "peak", "latency", "overhead", "export_time"}
    assert expected <= set(tables)
    models = {"bicubic", *QUICK.architectures, "MetaSR graph, shipped default"}
    assert models <= {row["model"] for row in tables["quality"]}
    assert {(m, t) for m in QUICK.architectures for t in QUICK.quant_targets} == {
        (r["model"], r["target"]) for r in tables["quant_loss"] if r["model"] in QUICK.architectures
    }
    assert ("MetaSR graph, shipped default", QUICK.export_targets) in {
        (r["model"], r["target"]) for r in tables["quant_loss"]
    }
    assert {*QUICK.architectures, PER_PIXEL_ROW} <= {row["model"] for row in tables["latency"]}
    assert [row["model"] for row in tables["overhead"]] == [PER_PIXEL_ROW] * 2
    for name, rows in tables.items():
        assert rows, f"table {name} is empty"
        for row in rows:
            numbers = [v for k, v in row.items() if isinstance(v, float) and k != "peak_pct"]
            assert numbers and all(math.isfinite(v) for v in numbers), f"{name}: {row}"
        with open(tmp_path / "results" / f"{name}.csv") as f:
            assert len(list(csv.DictReader(f))) == len(rows)
    text = report.read_text()
    assert "Student vs QuickSRNet-small" in text and "## Latency" in text


def test_a_whole_frame_app_row_upscales_each_frame_in_one_call() -> None:
    from benchmarks.app_latency import _calls_of
    from metasr.upscaling.model import load_upscaler

    upscaler = _calls_of(load_upscaler(scale=2), (288, 480))  # larger than the default 256-px tile
    plan = upscaler.plan(288, 480)
    assert (len(plan.rows), len(plan.cols)) == (1, 1)


def test_every_conditioning_design_upscales_the_frame_and_b_reads_its_maps() -> None:
    from benchmarks.conditioning import designs

    graphs = designs((64, 96))
    for name, parts in graphs.items():
        module, inputs = parts[-1]
        with torch.no_grad():
            assert module(*inputs).shape == (1, 3, 128, 192), name
    module, (image, maps) = graphs["(b) conditioning channels, 5 stages"][0]
    with torch.no_grad():
        assert not torch.equal(module(image, maps), module(image, torch.zeros_like(maps)))


def test_app_quality_rows_count_each_calls_expert_and_its_macs(tmp_path: Path) -> None:
    import numpy as np

    from benchmarks.app_latency import app_quality_rows
    from metasr.assembly import build_metasr, save_routed
    from metasr.distill.routing import RoutingConfig, build_routed, expert_costs
    from metasr.models import MetaSRStudent, StudentConfig
    from metasr.models.conv_router import ConvRouter

    torch.manual_seed(0)
    big, small, own = (MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=n)).eval() for n in (4, 1, 1))
    blank = [np.zeros((256, 256, 3), dtype=np.uint8)]
    routed = build_routed(build_metasr(own).eval(), blank, RoutingConfig(tile=64), [big, small])
    router = ConvRouter(torch.tensor([0.0, 0.5, 1.0]), 64, 2, 2, width=8).eval()
    with torch.no_grad():
        router.head.weight.zero_()
        router.head.bias.copy_(torch.tensor([-1.0, 1.0, -1.0]))  # logits: every call to the small expert
    save_routed(routed.with_conv_router(router), tmp_path / "capacity.safetensors")
    g = np.random.default_rng(0)
    images = [(g.random((320, 640, 3)) * 255).astype(np.uint8)]
    rows = app_quality_rows(tmp_path / "capacity.safetensors", {"noise": (images, 640)})
    costs = expert_costs(routed)
    assert [(r["set"], r["degradation"]) for r in rows] == [("noise", "bicubic"), ("noise", "realistic")]
    for row in rows:
        assert row["calls"] == 2 and row["calls_per_expert"] == "0.00 / 1.00 / 0.00"  # two 256-px app tiles
        assert row["relative_macs"] == pytest.approx(float(costs[1] / costs[0])) and costs[1] < costs[0]
        assert row["routed_psnr"] != row["plain_psnr"]
