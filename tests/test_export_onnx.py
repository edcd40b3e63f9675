"""ONNX target end to end: parity in ONNX Runtime, manifest, atomic write, reproducibility."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from metasr.errors import MetaSRError
from metasr.export.pipeline import export, load, prepare, resolve_recipe
from metasr.export.stages import LoadedModel
from metasr.models import MetaSRStudent
from metasr.recipes import with_overrides
from tests.conftest import leftovers

SIZE = ((48, 64),)


def test_fp32_export_passes_floor_and_writes_manifest(tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    result = export(recipe, tmp_path)
    assert result.parity.min_psnr_db >= 80.0
    assert result.coverage.fraction == 1.0
    assert leftovers(tmp_path) == ["onnx"]
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == [
        "manifest.json",
        "metasr_x2.onnx",
        "report.json",
        "report.md",
    ]
    manifest = json.loads(result.manifest.read_text())
    assert manifest["scale"] == 2 and [i["name"] for i in manifest["inputs"]] == ["image", "modulation"]
    assert manifest["tile"] == {"size": recipe.tile.size, "overlap": recipe.tile.overlap}
    model = onnx.load(result.artifact)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims][2:] == ["height", "width"]
    report = json.loads(result.report.read_text())
    assert report["parity"]["images"] == ["astronaut", "coffee", "camera", "text"]
    assert report["macs_per_output_pixel"] > 1000


def test_fp16_variant_is_smaller_and_still_close(tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("onnx", Path("recipes/onnx-fp16.yaml")), input_sizes=SIZE)
    result = export(recipe, tmp_path)
    assert 55.0 <= result.parity.min_psnr_db < 140.0
    initializers = onnx.load(result.artifact).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in initializers)


def test_export_twice_is_byte_identical(tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    first = export(recipe, tmp_path / "a")
    second = export(recipe, tmp_path / "b")
    assert first.artifact.read_bytes() == second.artifact.read_bytes()
    assert first.manifest.read_bytes() == second.manifest.read_bytes()


class _FailingParity(MetaSRStudent):
    """A student whose float reference differs from what gets exported: parity must fail."""

    def forward(self, image: torch.Tensor, modulation: torch.Tensor | None = None) -> torch.Tensor:
        out = super().forward(image, modulation)
        return out if torch.compiler.is_exporting() else 1.0 - out


def test_parity_below_floor_fails_and_leaves_nothing(tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    base = load(None, 2).model
    model = _FailingParity(base.config)
    model.load_state_dict(base.state_dict())
    with pytest.raises(MetaSRError, match="below the recipe floor 80.00 dB"):
        export(recipe, tmp_path, loaded=LoadedModel(model.eval(), "test"))
    assert leftovers(tmp_path) == []


def test_failed_export_keeps_previous_artifact(tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    good = export(recipe, tmp_path)
    before = good.artifact.read_bytes()
    base = load(None, 2).model
    model = _FailingParity(base.config)
    model.load_state_dict(base.state_dict())
    with pytest.raises(MetaSRError):
        export(recipe, tmp_path, loaded=LoadedModel(model.eval(), "test"))
    assert good.artifact.read_bytes() == before
    assert leftovers(tmp_path) == ["onnx"]


def test_prepare_reports_parameters_and_macs() -> None:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    prepared = prepare(load(None, 2), recipe)
    assert 30_000 <= prepared.parameters <= 150_000
    per_pixel = prepared.macs_per_output_pixel
    assert per_pixel == pytest.approx(prepared.parameters / 4, rel=0.02)
