"""ExecuTorch targets end to end: int8 XNNPACK (PT2E and NNCF) run in ExecuTorch's runtime, fp16 Vulkan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from executorch.runtime import Runtime

from metasr.errors import MetaSRError
from metasr.export.pipeline import export, resolve_recipe
from metasr.export.stages import ExportResult, LoadedModel
from metasr.models import MetaSRStudent, StudentConfig
from metasr.recipes import Recipe, with_overrides
from metasr.schemas import check
from tests.conftest import leftovers

SIZES = ((48, 48), (32, 40))
METHODS = {"forward": (48, 48), "forward_32x40": (32, 40)}


def _recipe(target: str, path: str | None = None, sizes: tuple[tuple[int, int], ...] = SIZES) -> Recipe:
    return with_overrides(resolve_recipe(target, Path(path) if path else None), input_sizes=sizes)


@pytest.fixture(scope="module")
def vulkan(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export(_recipe("executorch-vulkan", sizes=SIZES[:1]), tmp_path_factory.mktemp("vulkan"))


@pytest.fixture(scope="module")
def xnnpack(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export(_recipe("executorch-xnnpack"), tmp_path_factory.mktemp("xnnpack"))


def test_xnnpack_int8_passes_floor_fully_delegated(xnnpack: ExportResult) -> None:
    assert xnnpack.parity.min_psnr_db >= 40.0
    assert xnnpack.coverage.fallback == [] and xnnpack.coverage.fraction == 1.0
    assert xnnpack.coverage.where == "XNNPACK delegate"
    report = json.loads(xnnpack.report.read_text())
    assert report["parity"]["runtime"].startswith("ExecuTorch")
    assert "per-channel symmetric int8 weights" in report["quantization"]["scheme"]
    assert report["quantization"]["calibration_images"] == 8
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
    assert manifest["input_order"] == ["image", "modulation"]
    assert set(manifest["methods"]) == set(METHODS)
    modulation = MetaSRStudent().neutral_modulation()
    for name, (h, w) in METHODS.items():
        assert manifest["methods"][name]["output"] == [1, 3, 2 * h, 2 * w]
        output = program.load_method(name).execute([torch.rand(1, 3, h, w), modulation])[0]
        assert output.shape == (1, 3, 2 * h, 2 * w)
        assert float(output.min()) >= 0.0 and float(output.max()) <= 1.0


def test_xnnpack_export_twice_is_byte_identical(xnnpack: ExportResult, tmp_path: Path) -> None:
    again = export(_recipe("executorch-xnnpack"), tmp_path)
    assert again.artifact.read_bytes() == xnnpack.artifact.read_bytes()
    assert again.manifest.read_bytes() == xnnpack.manifest.read_bytes()


def test_nncf_variant_passes_floor_fully_delegated(tmp_path: Path) -> None:
    result = export(_recipe("executorch-xnnpack", "recipes/executorch-xnnpack-nncf.yaml", SIZES[:1]), tmp_path)
    assert result.parity.min_psnr_db >= 40.0
    assert result.coverage.fallback == [] and result.coverage.fraction == 1.0
    assert "NNCF" in json.loads(result.report.read_text())["quantization"]["scheme"]


class _WithErf(MetaSRStudent):
    """A student with an op XNNPACK has no kernel for."""

    def forward(self, image: torch.Tensor, modulation: torch.Tensor | None = None) -> torch.Tensor:
        return torch.erf(super().forward(image, modulation))


def test_op_outside_the_delegate_fails_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _WithErf(StudentConfig(scale=2, channels=8, num_blocks=2)).eval()
    with pytest.raises(MetaSRError, match=r"cannot run aten\.erf\.default on XNNPACK delegate"):
        export(_recipe("executorch-xnnpack", sizes=((32, 32),)), tmp_path, loaded=LoadedModel(model, "test"))
    assert leftovers(tmp_path) == []


def test_vulkan_fp16_all_in_partition_with_simulated_parity(vulkan: ExportResult) -> None:
    assert vulkan.coverage.fallback == [] and vulkan.coverage.fraction == 1.0
    assert vulkan.coverage.where == "Vulkan delegate"
    assert 60.0 <= vulkan.parity.min_psnr_db < 120.0  # fp16, not an fp32 stand-in
    report = json.loads(vulkan.report.read_text())
    assert report["parity"]["runtime"].startswith("simulation")
    assert any("no VulkanBackend" in note for note in report["notes"])
    program = Runtime.get().load_program(vulkan.artifact.read_bytes())
    assert program.method_names == {"forward"}
    assert not Runtime.get().backend_registry.is_available("VulkanBackend")


def test_vulkan_export_twice_is_byte_identical(vulkan: ExportResult, tmp_path: Path) -> None:
    again = export(_recipe("executorch-vulkan", sizes=SIZES[:1]), tmp_path)
    assert again.artifact.read_bytes() == vulkan.artifact.read_bytes()
    assert again.manifest.read_bytes() == vulkan.manifest.read_bytes()
