"""ONNX target end to end: parity in ONNX Runtime, manifest, strength, atomic write, reproducibility."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
import torch

import metasr
from metasr.assembly import load_metasr
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import export, load, prepare, resolve_recipe
from metasr.exporter.stages import ExportResult, LoadedModel
from metasr.models.metasr import MetaSR
from metasr.recipes import Recipe, with_overrides
from metasr.runtime import open_engine
from tests.conftest import PER_PIXEL, assert_follows_strength, leftovers, responsive_metasr

pytestmark = pytest.mark.export

SIZE = ((64, 96),)


def _recipe(path: str | None = None, **options: object) -> Recipe:
    recipe = with_overrides(resolve_recipe("onnx", path), input_sizes=SIZE)
    return dataclasses.replace(recipe, options=dataclasses.replace(recipe.options, **options))


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export(_recipe(), tmp_path_factory.mktemp("fp32"), checkpoint=PER_PIXEL)


def test_fp32_export_passes_floor_and_writes_manifest(fp32: ExportResult) -> None:
    assert fp32.parity.min_psnr_db >= 80.0
    assert fp32.coverage.fraction == 1.0
    assert leftovers(fp32.artifact.parent.parent) == ["onnx"]
    assert sorted(p.name for p in fp32.artifact.parent.iterdir()) == [
        "manifest.json",
        "metasr_x2.onnx",
        "report.json",
        "report.md",
    ]
    manifest = json.loads(fp32.manifest.read_text())
    assert manifest["scale"] == 2 and [i["name"] for i in manifest["inputs"]] == ["image", "strength"]
    strength = manifest["inputs"][1]
    assert (strength["shapes"], strength["value_range"], strength["default"]) == ([[1, 1, 1, 1]], [0.0, 1.0], -1.0)
    assert manifest["tile"] == {"size": 256, "overlap": 16}
    assert manifest["dynamic_size"] == {"multiple_of": 32, "min": 64, "max": 8192}
    assert manifest["model"]["sources"] == list(load_metasr(PER_PIXEL).orchestrator.sources)  # the default's
    model = onnx.load(fp32.artifact)
    assert [i.name for i in model.graph.input] == ["image", "strength"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert all(d.dim_param for d in dims[2:])  # free height and width
    report = json.loads(fp32.report.read_text())
    assert report["parity"]["images"] == ["astronaut", "coffee", "camera", "text"]
    macs = report["macs_per_output_pixel"]
    assert macs == manifest["macs_per_output_pixel"]
    assert macs["total"] == pytest.approx(macs["student"] + macs["metadata_and_orchestrator"], abs=0.2)
    assert 0 < macs["metadata_and_orchestrator"] < 0.2 * macs["student"]


def test_dynamic_graph_runs_other_whole_cell_sizes(fp32: ExportResult) -> None:
    engine = open_engine(fp32.artifact)
    assert engine.static_sizes is None
    base = load(PER_PIXEL, 2).model
    image = torch.rand(1, 3, 128, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = base(image)
    torch.testing.assert_close(engine.run(image), expected, atol=1e-4, rtol=0)


def test_fp16_variant_is_smaller_and_still_close(tmp_path: Path) -> None:
    result = export(_recipe("onnx-fp16", dynamic_size=False), tmp_path, checkpoint=PER_PIXEL)
    assert 55.0 <= result.parity.min_psnr_db < 140.0
    initializers = onnx.load(result.artifact).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in initializers)


def test_artifact_follows_strength(tmp_path: Path) -> None:
    """A MetaSR with random FiLM heads (the bundled wrapped student ignores strength): 0 and 1 differ, default too."""
    model = responsive_metasr()
    recipe = _recipe(dynamic_size=False)
    result = export(recipe, tmp_path, loaded=LoadedModel(model, "test"))
    session = ort.InferenceSession(str(result.artifact), providers=["CPUExecutionProvider"])

    def predict(image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["output"], {"image": image.numpy(), "strength": strength.numpy()})[0])

    psnr = assert_follows_strength(predict, prepare(LoadedModel(model, "test"), recipe).model, SIZE[0])
    assert min(psnr.values()) > 80.0


class _FailingParity(MetaSR):
    """A MetaSR whose float reference differs from what gets exported: parity must fail."""

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        out = super().forward(image, strength)
        return out if torch.compiler.is_exporting() else 1.0 - out


def test_parity_below_floor_fails_leaves_nothing_and_keeps_previous_artifact(
    fp32: ExportResult, tmp_path: Path
) -> None:
    shutil.copytree(fp32.artifact.parent, tmp_path / "onnx")
    before = (tmp_path / "onnx" / fp32.artifact.name).read_bytes()
    base = load(PER_PIXEL, 2).model
    model = _FailingParity(base.student, dict(base.extractors), base.orchestrator).eval()
    with pytest.raises(MetaSRError, match="below the recipe floor 80.00 dB"):
        export(_recipe(dynamic_size=False), tmp_path, loaded=LoadedModel(model, "test"))
    assert (tmp_path / "onnx" / fp32.artifact.name).read_bytes() == before
    assert leftovers(tmp_path) == ["onnx"]


def test_input_sizes_must_be_whole_metadata_cells(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match=r"input size 48x64 does not fit .* 32x32-pixel metadata cells.*64x64"):
        export(with_overrides(resolve_recipe("onnx"), input_sizes=((48, 64),)), tmp_path)  # refused up front
    assert leftovers(tmp_path) == []


def test_prepare_counts_macs_of_the_whole_graph_and_the_student() -> None:
    prepared = prepare(load(PER_PIXEL, 2), _recipe())
    assert 30_000 <= prepared.parameters <= 150_000
    macs = prepared.macs_per_output_pixel
    student_params = sum(p.numel() for p in prepared.model.student.parameters())
    student_params -= prepared.model.student.anchor.weight.numel()
    assert macs.student == pytest.approx(student_params / 4, rel=0.02)  # every student conv runs at input resolution
    assert macs.total > macs.student and macs.overhead == pytest.approx(macs.total - macs.student)


def test_artifact_bytes_do_not_depend_on_the_hash_seed(fp32: ExportResult, tmp_path: Path) -> None:
    """A second export, in a fresh process with another PYTHONHASHSEED, writes the same bytes: the exporter's
    debug annotations (range constraints in hash-seed order, stack traces) are stripped."""
    script = (
        "import sys; from pathlib import Path; from tests.exporter.test_onnx import PER_PIXEL, _recipe; "
        "from metasr.exporter.pipeline import export; export(_recipe(), Path(sys.argv[1]), checkpoint=PER_PIXEL)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"}
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env, capture_output=True, cwd=root)
    assert (tmp_path / "onnx" / fp32.artifact.name).read_bytes() == fp32.artifact.read_bytes()
    assert (tmp_path / "onnx" / "manifest.json").read_bytes() == fp32.manifest.read_bytes()
    assert {p.key for p in onnx.load(fp32.artifact).metadata_props} == {"author", "version", "summary"}  # ours only
    assert not any(node.metadata_props for node in onnx.load(fp32.artifact).graph.node)


def test_the_artifact_describes_itself(fp32: ExportResult) -> None:
    model = onnx.load(fp32.artifact)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["author"] == "MetaSR Edge" and props["version"] == metasr.__version__
    assert props["summary"] == model.doc_string and "x2 super-resolution" in model.doc_string
    docs = {value.name: value.doc_string for value in model.graph.input}
    assert "RGB image" in docs["image"] and docs["strength"].startswith("restoration strength")
    assert model.graph.output[0].doc_string.startswith("the x2 upscaled image")
