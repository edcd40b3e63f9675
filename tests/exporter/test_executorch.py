"""ExecuTorch targets end to end: int8 XNNPACK (PT2E and NNCF) run in ExecuTorch's runtime, fp16 Vulkan."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from executorch.runtime import Runtime

from metasr.errors import MetaSRError
from metasr.exporter.executorch_common import method_runner
from metasr.exporter.executorch_vulkan import _simulate
from metasr.exporter.executorch_xnnpack.quantize import capture
from metasr.exporter.pipeline import export, lower, prepare, resolve_recipe
from metasr.exporter.registry import target_module
from metasr.exporter.stages import ExportResult, LoadedModel, QuantizedModel
from metasr.models.metasr import MetaSR
from metasr.recipes import Recipe, with_overrides
from metasr.runtime import open_engine
from metasr.schemas import check
from tests.conftest import PER_PIXEL, assert_follows_strength, leftovers, responsive_metasr

pytestmark = pytest.mark.export

SIZE = ((64, 64),)
SIZES = ((64, 64), (64, 96))
METHODS = {"forward": (64, 64), "forward_64x96": (64, 96)}


Sizes = tuple[tuple[int, int], ...]


def _recipe(target: str, path: str | None = None, sizes: Sizes = SIZE) -> Recipe:
    return with_overrides(resolve_recipe(target, path), input_sizes=sizes)


def _responsive(target: str, out: Path, path: str | None = None, sizes: Sizes = SIZES) -> ExportResult:
    """``responsive_metasr`` (strength changes its output), floor lifted: its weights are random, not trained."""
    recipe = dataclasses.replace(_recipe(target, path, sizes=sizes), parity_floor_db=0.0)
    return export(recipe, out, loaded=LoadedModel(responsive_metasr(), "test"))


@pytest.fixture(scope="module")
def xnnpack(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export(_recipe("executorch-xnnpack", sizes=SIZES), tmp_path_factory.mktemp("xnnpack"), checkpoint=PER_PIXEL)


@pytest.fixture(scope="module")
def xnnpack_responsive(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return _responsive("executorch-xnnpack", tmp_path_factory.mktemp("xnnpack-responsive"), sizes=SIZE)


@pytest.fixture(scope="module")
def vulkan_responsive(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return _responsive("executorch-vulkan", tmp_path_factory.mktemp("vulkan-responsive"))


def test_xnnpack_int8_passes_floor_fully_delegated(xnnpack: ExportResult) -> None:
    assert xnnpack.parity.min_psnr_db >= 40.0
    assert xnnpack.coverage.fallback == [] and xnnpack.coverage.fraction == 1.0
    assert xnnpack.coverage.where == "XNNPACK delegate"
    report = json.loads(xnnpack.report.read_text())
    assert report["parity"]["runtime"].startswith("ExecuTorch")
    assert "per-channel symmetric int8 weights" in report["quantization"]["scheme"]
    assert report["quantization"]["calibration_images"] == 8
    assert report["quantization"]["calibration_strengths"] == [-1.0, 0.0, 0.5, 1.0]
    assert sorted(p.name for p in xnnpack.artifact.parent.iterdir()) == [
        "manifest.json",
        "metasr_x2.pte",
        "report.json",
        "report.md",
    ]


def test_xnnpack_pte_runs_every_method_in_executorch_runtime(xnnpack: ExportResult) -> None:
    program = Runtime.get().load_program(xnnpack.artifact.read_bytes())
    assert program.method_names == set(METHODS)
    manifest = json.loads(xnnpack.manifest.read_text())
    check(manifest, "manifest")
    assert manifest["input_order"] == ["image", "strength"]
    assert manifest["calibration_strengths"] == [-1.0, 0.0, 0.5, 1.0]
    assert set(manifest["methods"]) == set(METHODS)
    engine = open_engine(xnnpack.artifact)
    for name, (h, w) in METHODS.items():
        assert manifest["methods"][name]["strength"] == [1, 1, 1, 1]
        assert manifest["methods"][name]["output"] == [1, 3, 2 * h, 2 * w]
        output = engine.run(torch.rand(1, 3, h, w), torch.full((1, 1, 1, 1), 0.5))
        assert output.shape == (1, 3, 2 * h, 2 * w)
        assert float(output.min()) >= 0.0 and float(output.max()) <= 1.0


def test_xnnpack_int8_follows_strength(xnnpack_responsive: ExportResult) -> None:
    """Calibrated at strengths -1, 0, 0.5 and 1, so int8 keeps both ends of the strength path."""
    model = prepare(LoadedModel(responsive_metasr(), "test"), _recipe("executorch-xnnpack")).model
    predict = method_runner(xnnpack_responsive.artifact)
    assert_follows_strength(predict, model, SIZE[0])


def test_xnnpack_bytes_do_not_depend_on_the_hash_seed(xnnpack_responsive: ExportResult, tmp_path: Path) -> None:
    """A second export, in a fresh process with another PYTHONHASHSEED, writes the fixture's .pte and manifest
    byte for byte."""
    seed = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
    script = (
        "import sys; from pathlib import Path; from tests.exporter.test_executorch import _responsive, SIZE; "
        "_responsive('executorch-xnnpack', Path(sys.argv[1]), sizes=SIZE)"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env, capture_output=True, cwd=root)
    target = tmp_path / "executorch-xnnpack"
    assert (target / xnnpack_responsive.artifact.name).read_bytes() == xnnpack_responsive.artifact.read_bytes()
    assert (target / "manifest.json").read_bytes() == xnnpack_responsive.manifest.read_bytes()


def test_nncf_variant_is_fully_delegated_and_follows_strength(tmp_path: Path) -> None:
    """The NNCF path on the small responsive model; `metasr-export --target all` checks floors on trained weights."""
    result = _responsive("executorch-xnnpack", tmp_path, "executorch-xnnpack-nncf", SIZE)
    assert result.coverage.fallback == [] and result.coverage.fraction == 1.0
    assert "NNCF" in json.loads(result.report.read_text())["quantization"]["scheme"]
    model = prepare(LoadedModel(responsive_metasr(), "test"), _recipe("executorch-xnnpack")).model
    assert_follows_strength(method_runner(result.artifact), model, SIZE[0])


class _WithErf(MetaSR):
    """A MetaSR with an op XNNPACK has no kernel for."""

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        return torch.erf(super().forward(image, strength))


def test_op_outside_the_delegate_fails_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    """Placement checked on the float graph (XNNPACK runs erf neither in fp32 nor in int8): no calibration needed."""
    base = responsive_metasr()
    model = _WithErf(base.student, dict(base.extractors), base.orchestrator).eval()
    prepared = prepare(LoadedModel(model, "test"), _recipe("executorch-xnnpack"))
    graph = capture(prepared.model, prepared.example_inputs(), prepared.dynamic_shapes())
    with pytest.raises(MetaSRError, match=r"cannot run aten\.erf\.default on XNNPACK delegate"):
        lower(QuantizedModel(prepared, graph, "float"), target_module("executorch-xnnpack"), tmp_path)
    assert leftovers(tmp_path) == []


def test_vulkan_fp16_all_in_partition_with_simulated_parity(tmp_path: Path) -> None:
    vulkan = export(_recipe("executorch-vulkan"), tmp_path, checkpoint=PER_PIXEL)
    assert vulkan.coverage.fallback == [] and vulkan.coverage.fraction == 1.0
    assert vulkan.coverage.where == "Vulkan delegate"
    assert 60.0 <= vulkan.parity.min_psnr_db < 120.0  # fp16, not an fp32 stand-in
    report = json.loads(vulkan.report.read_text())
    assert report["parity"]["runtime"].startswith("simulation")
    assert any("no VulkanBackend" in note for note in report["notes"])
    program = Runtime.get().load_program(vulkan.artifact.read_bytes())
    assert program.method_names == {"forward"}
    assert not Runtime.get().backend_registry.is_available("VulkanBackend")


def test_vulkan_pte_takes_strength_and_its_simulation_follows_it(vulkan_responsive: ExportResult) -> None:
    """Only the fp16 simulation can run here (no VulkanBackend); the .pte itself must take (image, strength)."""
    program = Runtime.get().load_program(vulkan_responsive.artifact.read_bytes())
    for name, (h, w) in METHODS.items():
        meta = program.metadata(name)
        assert meta.num_inputs() == 2
        assert [meta.input_tensor_meta(i).sizes() for i in range(2)] == [(1, 3, h, w), (1, 1, 1, 1)]
    model = prepare(LoadedModel(responsive_metasr(), "test"), _recipe("executorch-vulkan", sizes=SIZES)).model
    assert_follows_strength(_simulate(model, torch.float16), model, SIZES[0])


def test_vulkan_export_twice_is_byte_identical(vulkan_responsive: ExportResult, tmp_path: Path) -> None:
    again = _responsive("executorch-vulkan", tmp_path)
    assert again.artifact.read_bytes() == vulkan_responsive.artifact.read_bytes()
    assert again.manifest.read_bytes() == vulkan_responsive.manifest.read_bytes()
