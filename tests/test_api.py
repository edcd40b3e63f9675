"""The Python API: README examples run, the model registry's cards match their weights, a user's own
nn.Module exports to every target, and bad arguments get one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import metasr
from metasr.errors import MetaSRError
from metasr.exporter import routed
from metasr.exporter.pipeline import prepare
from metasr.exporter.stages import LoadedModel
from metasr.model_zoo import DEFAULTS, MODELS
from metasr.models.metasr import MetaSR
from metasr.models.routed import RoutedMetaSR
from metasr.profile.estimate import estimate_latency
from metasr.recipes import Recipe
from metasr.schemas import check
from metasr.upscaling.model import load_upscaler
from metasr.upscaling.tiling import upscale_strips

pytestmark = pytest.mark.export

ROOT = Path(__file__).resolve().parents[1]


class TinySR(nn.Module):
    """A user's own x2 network: conv, ReLU, conv, depth-to-space."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1))
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(image))


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_api_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _readme_python_blocks()
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "artifacts" / "onnx" / "metasr_x2_router.onnx").is_file()  # the routed default
    manifest = json.loads((tmp_path / "artifacts" / "executorch-xnnpack" / "manifest.json").read_text())
    assert manifest["model"]["graph"] == "custom" and manifest["model"]["class"] == "readme.TinySR"


def test_listing() -> None:
    assert metasr.list_targets() == ["coreml", "executorch-xnnpack", "executorch-vulkan", "onnx", "onnx-qnn"]
    assert set(DEFAULTS.values()) <= set(metasr.list_models()) == set(MODELS)


@pytest.mark.parametrize("name", list(MODELS))
def test_each_card_matches_its_weights(name: str) -> None:
    card = metasr.model_card(name)
    model = metasr.get_model(name)
    assert model.scale == card.scale and card.path.is_file()
    graph = "routed" if isinstance(model, RoutedMetaSR) else "metasr" if isinstance(model, MetaSR) else "student"
    assert card.graph == graph
    # the metadata the deployed graph reads: none for a plain student or a routed model whose conv router decides
    reads_metadata = graph == "metasr" or (graph == "routed" and model.conv_router is None)
    metasr_graph = model.router.metasr if graph == "routed" else model
    assert tuple(metasr_graph.orchestrator.sources if reads_metadata else ()) == card.sources
    recipe = Recipe(target="onnx", scale=card.scale)  # 256x256, as on cards
    routed_graph = graph == "routed"
    prepared = routed.prepare(model, name, recipe) if routed_graph else prepare(LoadedModel(model, name), recipe)
    assert prepared.parameters == card.parameters
    assert prepared.macs_per_output_pixel.total == pytest.approx(card.macs_per_output_pixel, abs=0.1)
    assert card.command.startswith(("metasr-train", "metasr-distill")) and card.quality_db and card.quality_source


def test_get_model_takes_local_weights_of_the_same_scale(tmp_path: Path) -> None:
    from metasr.checkpoint import save_student

    student = metasr.get_model("student-x2")
    with torch.no_grad():
        student.tail.weight.mul_(0.5)
    save_student(student, tmp_path / "mine.safetensors")
    mine = metasr.get_model("student-x2", weights=tmp_path / "mine.safetensors")
    assert torch.equal(mine.tail.weight, student.tail.weight)
    with pytest.raises(MetaSRError, match="x2 model but x4 was asked"):
        metasr.get_model("student-x4", weights=tmp_path / "mine.safetensors")


@pytest.mark.parametrize("target", ["coreml", "executorch-xnnpack", "executorch-vulkan", "onnx", "onnx-qnn"])
def test_a_users_own_module_exports_to_every_target(target: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    result = metasr.export(target, model=TinySR(), out=tmp_path, input_sizes=[(64, 64)], parity_floor_db=30)
    assert result.parity.passed and result.coverage.fraction == 1.0
    manifest = json.loads(result.manifest.read_text())
    check(manifest, "manifest")
    assert manifest["model"] == {"graph": "custom", "class": "tests.test_api.TinySR", "sources": []}
    assert [i["name"] for i in manifest["inputs"]] == ["image"] and manifest["scale"] == 2
    report = json.loads(result.report.read_text())
    assert report["macs_per_output_pixel"]["total"] == pytest.approx((3 * 8 + 8 * 12) * 9 / 4)
    with pytest.raises(MetaSRError, match=r"custom network \(tests.test_api.TinySR\) the cost model cannot rebuild"):
        estimate_latency(manifest, (64, 64), "pixel-8")


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (nn.Conv2d(3, 3, 3, padding=1), r"maps 32x48 to 32x48; the targets take x2 or x4"),
        (nn.Sequential(nn.Conv2d(3, 27, 3, padding=1), nn.PixelShuffle(3)), r"maps 32x48 to 96x144"),
        (nn.Conv2d(4, 12, 3), r"fails on a \(1, 3, 32, 48\) image"),
        (nn.Flatten(), r"returns \(1, 4608\)"),
    ],
)
def test_a_module_the_targets_cannot_take_is_refused_in_one_line(
    module: nn.Module, message: str, tmp_path: Path
) -> None:
    with pytest.raises(MetaSRError, match=message) as info:
        metasr.export("onnx", model=module, out=tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_nan_weights_of_a_users_module_are_refused(tmp_path: Path) -> None:
    model = TinySR()
    with torch.no_grad():
        model.body[0].bias[0] = float("nan")
    with pytest.raises(MetaSRError, match=r"tensor 'body.0.bias' holds NaN"):
        metasr.export("onnx", model=model, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "metasr-x3"}, "unknown model 'metasr-x3'; did you mean 'metasr-x2'?"),
        ({"model": 3}, "is not a registered model"),
        ({"model": "student-x4", "scale": 2}, "the model is x4 but scale=2 was asked"),
        ({"inputsizes": [(64, 64)]}, "unknown export option 'inputsizes' for onnx; did you mean 'input_sizes'?"),
        ({"input_sizes": [(65, 64)]}, "does not fit MetaSR's 32x32-pixel metadata cells"),
        ({"recipe": "onnx-fp61"}, "did you mean 'onnx-fp16'?"),
    ],
)
def test_bad_export_arguments(kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match=re.escape(message)):
        metasr.export("onnx", out=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_upscale_keeps_the_input_type_and_equals_the_tiler() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    upscaler = load_upscaler(checkpoint=metasr.model_card("student-x2").path)
    rows = np.concatenate([s for _, s in upscale_strips(rgb, upscaler.plan(70, 90), upscaler.run)])
    expected = np.clip(np.rint(rows * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(metasr.upscale(rgb, model="student-x2"), expected)
    picture = metasr.upscale(Image.fromarray(rgb), model="student-x2")
    assert isinstance(picture, Image.Image) and np.array_equal(np.asarray(picture), expected)
    wide = metasr.upscale(rgb.astype(np.uint16) * 257, model="student-x4")
    assert wide.dtype == np.uint16 and wide.shape == (280, 360, 3)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (Image.new("RGBA", (8, 8)), "alpha channel"),
        (Image.new("CMYK", (8, 8)), "mode CMYK is not supported"),
        (np.zeros((8, 8), np.uint8), r"shape \(8, 8\)"),
        (np.zeros((8, 8, 3), np.float32), "dtype float32"),
        ("photo.png", "image is a str"),
    ],
)
def test_upscale_refuses_what_it_cannot_read(image: object, message: str) -> None:
    with pytest.raises(MetaSRError, match=message):
        metasr.upscale(image)
