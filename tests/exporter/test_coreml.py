"""Core ML target end to end: image I/O with enumerated shapes, simulated parity, ANE coverage, compression."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.proto.FeatureTypes_pb2 import ImageFeatureType

import metasr
from metasr.data.sample_images import calibration_images, validation_images
from metasr.errors import MetaSRError
from metasr.exporter import coreml
from metasr.exporter.coreml.quantize import MIN_COMPRESSED_WEIGHTS
from metasr.exporter.pipeline import export, load, prepare, resolve_recipe, validate
from metasr.exporter.stages import ExportResult, LoadedModel
from metasr.images import to_numpy
from metasr.models.metasr import MetaSR
from metasr.recipes import Recipe, with_overrides
from metasr.validate.metrics import y_psnr
from tests.conftest import PER_PIXEL, assert_follows_strength, leftovers, responsive_metasr

pytestmark = pytest.mark.export

SIZES = ((64, 64), (96, 128))


def small(name: str = "coreml") -> Recipe:
    return with_overrides(resolve_recipe("coreml", name), input_sizes=SIZES)


def package_files(package: Path) -> dict[str, bytes]:
    return {str(p.relative_to(package)): p.read_bytes() for p in sorted(package.rglob("*")) if p.is_file()}


def weights_bytes(package: Path) -> int:
    return (package / "Data/com.apple.CoreML/weights/weight.bin").stat().st_size


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """These graphs are tiny: extra intra-op threads only contend with other jobs on busy CI cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fp16(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export(small(), tmp_path_factory.mktemp("fp16"), checkpoint=PER_PIXEL)


def _export_responsive(out: Path) -> ExportResult:
    """``responsive_metasr`` (strength changes its output), floor lifted: its weights are random, not trained."""
    return export(dataclasses.replace(small(), parity_floor_db=0.0), out, loaded=LoadedModel(responsive_metasr(), "t"))


@pytest.fixture(scope="module")
def responsive(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return _export_responsive(tmp_path_factory.mktemp("responsive"))


def test_default_export_is_an_fp16_image_model_for_the_neural_engine(fp16: ExportResult) -> None:
    assert fp16.parity.min_psnr_db >= 60.0
    assert fp16.coverage.fallback == [] and fp16.coverage.fraction == 1.0
    assert fp16.coverage.where == coreml.NEURAL_ENGINE
    spec = ct.utils.load_spec(str(fp16.artifact))
    assert spec.WhichOneof("Type") == "mlProgram" and spec.specificationVersion == 8  # iOS 17
    image, strength = spec.description.input
    assert image.name == "image" and image.type.imageType.colorSpace == ImageFeatureType.RGB
    assert [(s.height, s.width) for s in image.type.imageType.enumeratedSizes.sizes] == list(SIZES)
    assert strength.name == "strength" and list(strength.type.multiArrayType.shape) == [1, 1, 1, 1]
    assert strength.type.isOptional and strength.type.multiArrayType.floatDefaultValue == -1.0
    (output,) = spec.description.output
    assert output.name == "output" and output.type.imageType.colorSpace == ImageFeatureType.RGB
    ops = list(coreml.main_function(fp16.artifact).operations)
    scaling = next(op for op in ops if op.op_type == "mul" and op.x.name == "image")
    assert scaling.y.val == pytest.approx(1 / 255)
    assert {"conv", "pixel_shuffle", "avg_pool", "upsample_bilinear"} <= {op.op_type for op in ops}
    assert all(op.outputs[0].dtype == ct.converters.mil.mil.types.fp16 for op in ops if op.op_type == "conv")
    manifest = json.loads(fp16.manifest.read_text())
    assert manifest["compute_units"] == "CPU_AND_NE" and manifest["precision"] == "fp16"
    assert manifest["enumerated_shapes"] == [[1, 3, 64, 64], [1, 3, 96, 128]]
    assert manifest["inputs"][0]["layout"] == manifest["outputs"][0]["layout"] == "image"
    assert manifest["outputs"][0]["shapes"] == [[1, 3, 128, 128], [1, 3, 192, 256]]
    assert manifest["inputs"][1]["dtype"] == "float16" and manifest["inputs"][1]["optional"] is True
    report = json.loads(fp16.report.read_text())
    assert "simulation" in report["parity"]["runtime"]


def test_export_twice_is_byte_identical(responsive: ExportResult, tmp_path: Path) -> None:
    again = _export_responsive(tmp_path)
    assert package_files(again.artifact) == package_files(responsive.artifact)
    assert again.manifest.read_bytes() == responsive.manifest.read_bytes()
    # Maps serialize in a per-process order unless asked not to: the stored spec must be the canonical form.
    stored = responsive.artifact / "Data/com.apple.CoreML/model.mlmodel"
    assert stored.read_bytes() == ct.utils.load_spec(str(responsive.artifact)).SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    ("name", "palette", "max_ratio"),
    [("coreml-int8", None, 0.55), ("coreml-palettize6", 64, 0.45), ("coreml-palettize4", 16, 0.3)],
)
def test_compressed_weights_are_stored_compressed_and_pass_their_floor(
    name: str, palette: int | None, max_ratio: float, fp16: ExportResult, tmp_path: Path
) -> None:
    result = export(small(name), tmp_path, checkpoint=PER_PIXEL)
    assert result.parity.passed and result.coverage.fallback == []
    ops = list(coreml.main_function(result.artifact).operations)
    compressed = [op for op in ops if op.op_type.startswith("constexpr")]
    # every conv weight with enough values is stored compressed; biases, fixed filters and small 1x1s stay fp16
    large = [op.weight.op for op in ops if op.op_type == "conv" and np.prod(op.weight.shape) >= MIN_COMPRESSED_WEIGHTS]
    assert len(large) > 7 and all(weight in compressed for weight in large)  # more than the student's 7
    for op in compressed:
        if palette is None:
            assert op.op_type == "constexpr_affine_dequantize" and op.quantized_data.val.dtype == np.int8
        else:
            assert op.op_type == "constexpr_lut_to_dense" and op.lut.val.size == palette
    assert weights_bytes(result.artifact) < max_ratio * weights_bytes(fp16.artifact)


def test_w8a8_simulation_matches_the_calibrated_pt2e_model(tmp_path: Path) -> None:
    recipe = small("coreml-w8a8")
    prepared = prepare(load(PER_PIXEL, 2), recipe)
    quantized = coreml.quantize(prepared, calibration_images(*recipe.input_size)[:4])
    lowered = coreml.lower(quantized, tmp_path)
    assert lowered.coverage.fallback == []
    ops = {op.op_type for op in coreml.main_function(lowered.path).operations}
    assert {"quantize", "dequantize", "constexpr_affine_dequantize"} <= ops
    assert validate(lowered, prepared).passed
    strength = prepared.model.default_strength()
    image = validation_images(*recipe.input_size)[0]
    with torch.no_grad():
        fake_quant = quantized.program(image, strength) / 255.0
    assert y_psnr(to_numpy(lowered.predict(image, strength)), to_numpy(fake_quant)) > 50.0


def test_fp16_artifact_follows_strength(responsive: ExportResult) -> None:
    model = prepare(LoadedModel(responsive_metasr(), "test"), small()).model
    predict = coreml._simulator(coreml.main_function(responsive.artifact))
    assert_follows_strength(predict, model, SIZES[0])


def test_w8a8_artifact_follows_strength(tmp_path: Path) -> None:
    """Activation ranges calibrated at strengths -1, 0, 0.5 and 1 keep both ends of the strength path."""
    recipe = small("coreml-w8a8")
    prepared = prepare(LoadedModel(responsive_metasr(), "test"), recipe)
    lowered = coreml.lower(coreml.quantize(prepared, calibration_images(*recipe.input_size)[:2]), tmp_path)
    assert lowered.coverage.fallback == []
    assert_follows_strength(lowered.predict, prepared.model, recipe.input_size)


class _WithErf(MetaSR):
    """A MetaSR ending in erf, which the Neural Engine does not run."""

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        return torch.erf(super().forward(image, strength))


def test_op_off_the_neural_engine_fails_and_leaves_nothing(tmp_path: Path) -> None:
    base = responsive_metasr()
    model = _WithErf(base.student, dict(base.extractors), base.orchestrator).eval()
    with pytest.raises(MetaSRError, match=r"cannot run erf on Apple Neural Engine"):
        export(small(), tmp_path, loaded=LoadedModel(model, "test"))
    assert leftovers(tmp_path) == []


class _IgnoresStrength(MetaSR):
    """A MetaSR that never reads its strength input, as a plain image -> image network behind the same I/O."""

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(image, None)


def test_unused_input_leaves_no_op_off_the_neural_engine(tmp_path: Path) -> None:
    base = responsive_metasr()
    model = _IgnoresStrength(base.student, dict(base.extractors), base.orchestrator).eval()
    prepared = prepare(LoadedModel(model, "test"), small())
    lowered = coreml.lower(coreml.quantize(prepared, []), tmp_path)
    dead = [op for op in coreml.main_function(lowered.path).operations if op.op_type == "identity"]
    assert dead and not any(v.child_ops for op in dead for v in op.outputs)  # coremltools keeps a dead identity
    assert lowered.coverage.fallback == [] and lowered.coverage.fraction == 1.0
    image = calibration_images(*prepared.recipe.input_size)[0]
    strength = model.default_strength()
    assert y_psnr(to_numpy(lowered.predict(image, strength)), to_numpy(prepared.model(image, strength))) > 40.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"activations": "int8", "weights": "palettize4"}, "set weights: int8"),
        ({"precision": "fp32"}, "Neural Engine computes in fp16 only"),
    ],
)
def test_contradictory_options_fail_before_converting(options: dict, message: str, tmp_path: Path) -> None:
    recipe = small()
    recipe = dataclasses.replace(recipe, options=dataclasses.replace(recipe.options, **options))
    with pytest.raises(MetaSRError, match=message):
        export(recipe, tmp_path, checkpoint=PER_PIXEL)
    assert leftovers(tmp_path) == []


def test_the_package_describes_itself_for_xcode(fp16: ExportResult) -> None:
    spec = ct.utils.load_spec(str(fp16.artifact))
    metadata = spec.description.metadata
    assert (metadata.author, metadata.versionString) == ("MetaSR Edge", metasr.__version__)
    assert "x2 super-resolution" in metadata.shortDescription
    inputs = {feature.name: feature.shortDescription for feature in spec.description.input}
    assert "RGB image" in inputs["image"] and inputs["strength"].startswith("restoration strength")
    assert spec.description.output[0].shortDescription.startswith("the x2 upscaled image")
