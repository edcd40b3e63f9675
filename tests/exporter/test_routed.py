"""Routed artifacts: a router and K experts saved as one checkpoint, exported as functions of one artifact (set)
with per-function parity and placement, dispatched on the host as the manifest tells an app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from metasr.assembly import load_graph, save_metasr, save_routed
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import export, resolve_recipe
from metasr.exporter.stages import ExportResult
from metasr.images import to_numpy, to_tensor
from metasr.metadata.filters import LUMA
from metasr.models import MetaSRStudent
from metasr.models.routed import RoutedMetaSR, TileRouter
from metasr.profile.run import DeviceSpec, profile_artifact
from metasr.recipes import with_overrides
from metasr.runtime import open_engine
from metasr.safe_weights import read_state, save_state
from metasr.schemas import check
from metasr.upscaling.batch import Batch
from metasr.upscaling.compare import GAP, LABEL_HEIGHT, PALETTE
from metasr.upscaling.model import load_upscaler
from metasr.validate.metrics import y_psnr
from tests.conftest import responsive_metasr

pytestmark = pytest.mark.export

SIZE = ((128, 128),)
TILE = 64


def _two_textures() -> torch.Tensor:
    """A 128x128 frame whose left half is a smooth ramp and right half noise: two kinds of routing tile."""
    noise = torch.rand(1, 3, 128, 64, generator=torch.Generator().manual_seed(3))
    return torch.cat([torch.linspace(0.2, 0.8, 64).expand(1, 3, 128, 64), noise], dim=-1)


def _routed() -> RoutedMetaSR:
    """Two experts at the responsive MetaSR's FiLM on a smooth and on a noisy tile, 64-px tiles, a half-size
    thumbnail: the two-texture frame uses both. The second is a plain expert (another seeded student)."""
    metasr = responsive_metasr()
    with torch.no_grad():
        probe = TileRouter(metasr, torch.zeros(1, metasr.student.modulation_channels), TILE, thumbnail=2)
        vectors = probe.tile_modulation(_two_textures())
    centroids = vectors[0].flatten(1).T[:2]  # the top-left (smooth) and top-right (noisy) tiles
    torch.manual_seed(1)
    plain = MetaSRStudent(metasr.student.config)
    return RoutedMetaSR(TileRouter(metasr, centroids, TILE, thumbnail=2), metasr.student, [plain], [1]).eval()


@pytest.fixture(scope="module")
def routed_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routed") / "routed.safetensors"
    save_routed(_routed(), path)
    return path


def _reference(checkpoint: Path, image: torch.Tensor) -> torch.Tensor:
    model = load_graph(checkpoint)
    with torch.no_grad():
        return model(image, model.router.default_strength())


def test_routed_checkpoint_round_trips(routed_checkpoint: Path) -> None:
    loaded = load_graph(routed_checkpoint)
    original = _routed()
    assert isinstance(loaded, RoutedMetaSR)
    assert (loaded.router.tile, loaded.router.thumbnail, len(loaded.experts)) == (TILE, 2, 2)
    assert loaded.plain_experts == (1,)
    image = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(image), original(image))
        assert torch.equal(loaded.route(image), original.route(image))


def test_routing_metadata_of_the_wrong_shape_is_refused(routed_checkpoint: Path, tmp_path: Path) -> None:
    state, metadata = read_state(routed_checkpoint)
    bad = tmp_path / "bad.safetensors"
    save_state({**state, "routing.centroids": torch.zeros(2, 5)}, bad, metadata)
    with pytest.raises(MetaSRError, match="must be \\(experts"):
        load_graph(bad)
    plain = tmp_path / "plain.safetensors"  # an unrouted MetaSR checkpoint still loads as MetaSR
    save_metasr(responsive_metasr(), plain)
    assert not isinstance(load_graph(plain), RoutedMetaSR)


def test_sizes_that_are_not_whole_routing_tiles_are_refused_before_export(
    routed_checkpoint: Path, tmp_path: Path
) -> None:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=((96, 128),))
    with pytest.raises(MetaSRError, match="multiples of 64"):
        export(recipe, tmp_path, checkpoint=routed_checkpoint)
    assert not (tmp_path / "onnx").exists()


@pytest.fixture(scope="module")
def onnx_routed(routed_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    return export(recipe, tmp_path_factory.mktemp("a"), checkpoint=routed_checkpoint)


def test_onnx_routed_set_passes_parity_and_runs_as_dispatched(
    onnx_routed: ExportResult, routed_checkpoint: Path, tmp_path: Path
) -> None:
    result = onnx_routed
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=SIZE)
    folder = result.artifact.parent
    files = sorted(p.name for p in folder.glob("*.onnx"))
    assert files == ["metasr_x2_expert_0.onnx", "metasr_x2_expert_1.onnx", "metasr_x2_router.onnx"]
    assert result.artifact.name == "metasr_x2_router.onnx"
    assert result.parity.passed and result.coverage.fallback == []
    manifest = json.loads(result.manifest.read_text())
    check(manifest, "manifest")
    assert manifest["model"]["graph"] == "routed"
    routing = manifest["routing"]
    assert (routing["tile"], routing["thumbnail"], routing["blending"]) == (TILE, 2, "hard")
    assert [e["function"] for e in routing["experts"]] == ["expert_0", "expert_1"]
    assert routing["router"]["output"]["shapes"] == [[1, 2, 2, 2]]
    report = json.loads(result.report.read_text())
    assert set(report["functions"]) == {"router", "expert_0", "expert_1"}
    assert report["functions"]["router"]["agreement_with_float_router"] == 1.0

    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    out = open_engine(result.artifact).run(image)
    assert torch.allclose(out, _reference(routed_checkpoint, image), atol=1e-4)

    again = export(recipe, tmp_path / "b", checkpoint=routed_checkpoint).artifact.parent
    for name in [*files, "manifest.json"]:
        assert (folder / name).read_bytes() == (again / name).read_bytes(), name


def test_profile_of_a_routed_artifact_times_the_router_and_each_expert(onnx_routed: ExportResult) -> None:
    report = profile_artifact(onnx_routed.artifact, DeviceSpec("host"), SIZE[0], runs=2)
    whole, *parts = report.rows
    assert "routed whole" in whole.label and not whole.part
    assert [r.label.split(", ")[-1] for r in parts] == ["router alone", "expert_0 alone", "expert_1 alone"]
    assert all(r.part and r.median_ms > 0 for r in parts)
    assert report.headline_ms == whole.median_ms  # a part is never what the budget is compared with


@pytest.mark.parametrize("source", ["artifact", "checkpoint"])
def test_compare_picture_paints_each_routing_tile_in_its_experts_colour(
    source: str, onnx_routed: ExportResult, routed_checkpoint: Path, tmp_path: Path
) -> None:
    photo = (_two_textures()[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "a.png")
    where = {"artifact": onnx_routed.artifact} if source == "artifact" else {"checkpoint": routed_checkpoint}
    upscaler = load_upscaler(**where, tile=128, overlap=0)  # one app tile: its routes are the whole image's
    assert Batch(tmp_path / "o", upscaler, compare=True).upscale_file(tmp_path / "a.png").status == "ok"
    routes = open_engine(onnx_routed.artifact).route(to_tensor(photo.astype(np.float32) / 255.0))[0]
    assert len(torch.unique(routes)) == 2  # both experts show
    output = np.asarray(Image.open(tmp_path / "o" / "a.png")).astype(np.float32) / 255.0
    picture = np.asarray(Image.open(tmp_path / "o" / "a_compare.png")).astype(np.float32)
    side = 2 * SIZE[0][0]
    assert picture.shape[1] == 3 * side + 2 * GAP
    panel = picture[LABEL_HEIGHT:, 2 * (side + GAP) :]
    block = TILE * 2
    for i, j in np.ndindex(*routes.shape):
        y, x = i * block + block // 2, j * block + block // 2
        luma = output[y, x] @ np.array(LUMA, np.float32)
        expected = 255 * (0.55 * PALETTE[routes[i, j]] + 0.45 * luma)
        assert np.abs(panel[y, x] - expected).max() <= 1.5, (i, j)


def test_executorch_routed_program_has_a_method_per_function(routed_checkpoint: Path, tmp_path: Path) -> None:
    from executorch.runtime import Runtime

    recipe = with_overrides(resolve_recipe("executorch-xnnpack"), input_sizes=SIZE)
    result = export(recipe, tmp_path, checkpoint=routed_checkpoint)
    assert result.artifact.name == "metasr_x2_routed.pte"
    assert [p.name for p in result.artifact.parent.glob("*.pte")] == ["metasr_x2_routed.pte"]
    assert result.parity.passed and result.coverage.fallback == []
    methods = set(Runtime.get().load_program(result.artifact).method_names)
    assert methods == {"router", "expert_0", "expert_1"}
    manifest = json.loads(result.manifest.read_text())
    check(manifest, "manifest")
    assert manifest["methods"]["router"]["image"] == [1, 3, 64, 64]
    functions = json.loads(result.report.read_text())["functions"]
    assert functions["router"]["quantization"].startswith("fp32")  # int8 scores would flip near-ties
    assert functions["router"]["max_abs_score_error"] < 1e-4
    assert functions["expert_0"]["quantization"].startswith("int8")
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    out = open_engine(result.artifact).run(image)
    assert out.shape == (1, 3, 256, 256)
    psnr = y_psnr(to_numpy(out), to_numpy(_reference(routed_checkpoint, image)))
    assert psnr > 35.0, psnr  # int8 experts on noise: a routing mismatch would cost far more


def test_core_ml_routed_package_has_a_function_per_function(routed_checkpoint: Path, tmp_path: Path) -> None:
    import coremltools as ct

    from metasr.exporter import coreml

    recipe = with_overrides(resolve_recipe("coreml"), input_sizes=SIZE)
    result = export(recipe, tmp_path, checkpoint=routed_checkpoint)
    assert [p.name for p in result.artifact.parent.glob("*.mlpackage")] == ["metasr_x2_routed.mlpackage"]
    assert result.parity.passed and result.coverage.fallback == []
    functions = coreml._program(result.artifact).functions
    assert set(functions) == {"router", "expert_0", "expert_1"}
    assert functions["router"].outputs[0].shape == (1, 2, 2, 2)  # scores, not an image
    manifest = json.loads(result.manifest.read_text())
    check(manifest, "manifest")
    assert manifest["minimum_deployment_target"] == "iOS18"
    report = json.loads(result.report.read_text())
    assert report["functions"]["router"]["agreement_with_float_router"] == 1.0
    spec = ct.utils.load_spec(str(result.artifact))
    assert spec.description.metadata.shortDescription.startswith("MetaSR x2 routed model")
    described = {f.name: f.output[0].shortDescription for f in spec.description.functions}
    assert described["router"].startswith("one score per expert") and described["expert_1"].startswith("the x2")
