"""A graph whose orchestrator is the identity exports as the bare student: convs alone, the image its only input."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch

from metasr.assembly import build_metasr, load_graph, load_metasr, save_metasr
from metasr.checkpoint import save_student
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import export, resolve_recipe
from metasr.model_zoo import model_card
from metasr.models import MetaSRStudent, StudentConfig
from metasr.models.metasr import MetaSR
from metasr.profile.estimate import estimate_latency
from metasr.recipes import with_overrides
from metasr.runtime import open_engine
from metasr.schemas import check
from metasr.upscaling.model import load_upscaler
from tests.conftest import responsive_metasr

pytestmark = pytest.mark.export

SIZE = ((64, 96),)
STUDENT_OPS = {"Conv", "Relu", "Add", "DepthToSpace", "Clip"}  # nothing else belongs in a bare student


@pytest.fixture(scope="module")
def plain_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("plain") / "student.safetensors"
    save_student(MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)), path)
    return path


def test_identity_orchestrator_loads_as_the_bare_student(plain_checkpoint: Path, tmp_path: Path) -> None:
    assert isinstance(load_graph(plain_checkpoint), MetaSRStudent)
    assert isinstance(load_graph(model_card("student-x4").path), MetaSRStudent)
    wrapped = tmp_path / "wrapped.safetensors"  # a MetaSR checkpoint whose FiLM heads are all zero
    save_metasr(build_metasr(load_graph(plain_checkpoint), sources=("degradation",)), wrapped)
    student = load_graph(wrapped)
    assert isinstance(student, MetaSRStudent)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(student(image), load_metasr(wrapped)(image))  # the identity changed nothing


def test_modulating_orchestrator_stays_metasr(tmp_path: Path) -> None:
    assert isinstance(load_graph(model_card("metasr-x2").path), MetaSR)
    path = tmp_path / "responsive.safetensors"
    save_metasr(responsive_metasr(), path)
    assert isinstance(load_graph(path), MetaSR)


def test_plain_checkpoint_exports_its_convolutions_alone(plain_checkpoint: Path, tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    result = export(recipe, tmp_path, checkpoint=plain_checkpoint)
    manifest = json.loads(result.manifest.read_text())
    check(manifest, "manifest")
    assert [entry["name"] for entry in manifest["inputs"]] == ["image"]
    assert manifest["model"] == {
        "graph": "student",
        "student": {"scale": 2, "channels": 8, "num_blocks": 2, "in_channels": 3},
        "sources": [],
    }
    macs = json.loads(result.report.read_text())["macs_per_output_pixel"]
    assert macs["metadata_and_orchestrator"] == 0.0 and macs["total"] == macs["student"] > 0
    graph = onnx.load(result.artifact).graph
    assert [i.name for i in graph.input] == ["image"]
    assert {node.op_type for node in graph.node} <= STUDENT_OPS
    engine = open_engine(result.artifact)
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        reference = load_graph(plain_checkpoint).eval().reparameterize()(image)
    assert torch.allclose(engine.run(image), reference, atol=1e-5)
    with pytest.raises(MetaSRError, match="no strength input"):
        engine.run(image, torch.zeros(1, 1, 1, 1))
    layers = estimate_latency(manifest, (64, 96), "galaxy-s24").layers  # the cost model sees the convs alone
    assert {layer.name.split(".")[0] for layer in layers} == {"head", "blocks", "tail", "anchor"}


def test_plain_student_pte_takes_the_image_alone(plain_checkpoint: Path, tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("executorch-xnnpack"), input_sizes=SIZE)
    result = export(recipe, tmp_path, checkpoint=plain_checkpoint)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["input_order"] == ["image"] and manifest["calibration_strengths"] == []
    assert manifest["methods"]["forward"] == {"image": [1, 3, 64, 96], "output": [1, 3, 128, 192]}
    assert result.coverage.fraction == 1.0
    output = open_engine(result.artifact).run(torch.rand(1, 3, 64, 96))
    assert output.shape == (1, 3, 128, 192)


def test_strength_for_a_plain_float_student_is_refused(plain_checkpoint: Path) -> None:
    with pytest.raises(MetaSRError, match="no strength input"):
        load_upscaler(checkpoint=plain_checkpoint, strength=0.5)
    upscaler = load_upscaler(checkpoint=plain_checkpoint)
    assert upscaler.run(torch.rand(1, 3, 64, 64)).shape == (1, 3, 128, 128)
