"""ONNX QNN target end to end on the QNN HTP emulator: QDQ graph, full offload, parity, EPContext, reproducibility."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper

from metasr.errors import MetaSRError
from metasr.exporter.onnx_qnn.quantize import split_identity
from metasr.exporter.onnx_qnn.runtime import open_session, qnn_ep_name
from metasr.exporter.pipeline import export, prepare, resolve_recipe
from metasr.exporter.stages import ExportResult, LoadedModel
from metasr.models.metasr import MetaSR
from metasr.recipes import Recipe, with_overrides
from tests.conftest import PER_PIXEL, assert_follows_strength, leftovers, responsive_metasr

pytestmark = [
    pytest.mark.export,
    pytest.mark.skipif(
        importlib.util.find_spec("onnxruntime_qnn") is None,
        reason="onnxruntime-qnn (QNN HTP emulator) ships only for Linux x86-64 and Windows; not installed here",
    ),
]

SIZE = ((96, 128),)  # tiny crops of whole photos are harder than real frames: 48x64 gave 48.5 dB
SOC = "SM8650"


def _recipe(path: str | None = None, **options: object) -> Recipe:
    recipe = with_overrides(resolve_recipe("onnx-qnn", path), input_sizes=SIZE)
    return dataclasses.replace(recipe, options=dataclasses.replace(recipe.options, **options))


@pytest.fixture(scope="module")
def a16w8(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    """The default A16W8 recipe with an SM8650 EPContext model, exported once for the module."""
    return export(_recipe(context_soc_model=SOC), tmp_path_factory.mktemp("a16w8"), checkpoint=PER_PIXEL)


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def test_a16w8_passes_floor_fully_offloaded(a16w8: ExportResult) -> None:
    assert a16w8.parity.floor_db == 50.0
    assert a16w8.parity.min_psnr_db >= 50.0
    assert a16w8.coverage.fraction == 1.0 and a16w8.coverage.fallback == []
    assert "emulator" in a16w8.coverage.where
    report = json.loads(a16w8.report.read_text())
    assert "emulator" in report["parity"]["runtime"]
    manifest = json.loads(a16w8.manifest.read_text())
    assert manifest["execution_provider"] == "QNNExecutionProvider" and manifest["backend"] == "htp"
    assert manifest["static_input_shape"] == [1, 3, 96, 128]
    assert manifest["input_names"] == ["image", "strength"]
    assert manifest["quantization"]["calibration_strengths"] == [-1.0, 0.0, 0.5, 1.0]
    assert manifest["quantization"]["scheme"] == "a16w8" and manifest["quantization"]["activations"] == "uint16"
    assert manifest["context_model"] == {"file": f"metasr_x2_{SOC}_ctx.onnx", "soc_model": SOC, "embed_mode": 1}


def test_a16w8_graph_is_qdq_with_16bit_activations_and_int8_weights(a16w8: ExportResult) -> None:
    model = onnx.load(a16w8.artifact)
    assert model.opset_import[0].version == 21
    assert {p.key: p.value for p in model.metadata_props}["author"] == "MetaSR Edge"  # quantizing keeps it
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 96, 128]
    quantizers = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantizers and all(_initializer(model, n.input[2]).data_type == onnx.TensorProto.UINT16 for n in quantizers)
    producers = {n.output[0]: n for n in model.graph.node}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    for conv in convs:
        weight_dq = producers[conv.input[1]]
        assert weight_dq.op_type == "DequantizeLinear"
        weight = _initializer(model, weight_dq.input[0])
        assert weight.data_type == onnx.TensorProto.INT8
        assert list(_initializer(model, weight_dq.input[1]).dims) == [weight.dims[0]]  # per output channel
        assert not numpy_helper.to_array(_initializer(model, weight_dq.input[2])).any()  # symmetric
    # only the student's five RepBlock convs carry a folded identity; no extractor or orchestrator conv is C->C 3x3
    assert sum(n.name.endswith("_identity") for n in model.graph.node) == 5
    assert [i.name for i in model.graph.input] == ["image", "strength"]


def test_session_without_cpu_fallback_runs_everything_on_htp(a16w8: ExportResult) -> None:
    session = open_session(a16w8.artifact)
    assert session.get_session_options().get_session_config_entry("session.disable_cpu_ep_fallback") == "1"
    assert {g.ep_name for g in session.get_provider_graph_assignment_info()} == {qnn_ep_name()}
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    strength = torch.full((1, 1, 1, 1), 0.5)
    out = session.run(["output"], {"image": image.numpy(), "strength": strength.numpy()})[0]
    assert out.shape == (1, 3, 192, 256) and out.min() >= 0.0 and out.max() <= 1.0 + 1e-6


def test_context_model_is_precompiled_and_matches_qdq(a16w8: ExportResult) -> None:
    context = a16w8.artifact.with_name(f"metasr_x2_{SOC}_ctx.onnx")
    assert [n.op_type for n in onnx.load(context).graph.node] == ["EPContext"]
    feeds = {"image": torch.rand(1, 3, 96, 128).numpy(), "strength": np.full((1, 1, 1, 1), -1.0, np.float32)}
    compiled = open_session(context, SOC).run(["output"], feeds)[0]
    assert (compiled == open_session(a16w8.artifact, SOC).run(["output"], feeds)[0]).all()


def test_unknown_soc_model_fails_instead_of_compiling_for_a_default(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="does not know soc_model 'SM1234'"):
        export(_recipe(context_soc_model="SM1234"), tmp_path, checkpoint=PER_PIXEL)
    assert leftovers(tmp_path) == []


def test_export_twice_is_byte_identical(a16w8: ExportResult, tmp_path: Path) -> None:
    again = export(_recipe(context_soc_model=SOC), tmp_path, checkpoint=PER_PIXEL)
    for name in (a16w8.artifact.name, f"metasr_x2_{SOC}_ctx.onnx", "manifest.json"):
        assert (again.artifact.parent / name).read_bytes() == (a16w8.artifact.parent / name).read_bytes(), name


def test_a8w8_variant_uses_8bit_activations_and_passes_floor(tmp_path: Path) -> None:
    result = export(_recipe("onnx-qnn-a8w8"), tmp_path, checkpoint=PER_PIXEL)
    assert result.parity.passed and result.coverage.fraction == 1.0
    model = onnx.load(result.artifact)
    quantizers = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert all(_initializer(model, n.input[2]).data_type == onnx.TensorProto.UINT8 for n in quantizers)


def test_nncf_is_refused_for_a_metasr_graph_up_front(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="does not run on the QNN HTP.*use method: ort"):
        export(_recipe(method="nncf", scheme="a8w8"), tmp_path, checkpoint=PER_PIXEL)
    assert leftovers(tmp_path) == []


def test_nncf_needs_a8w8(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="8 bits only"):
        export(_recipe(method="nncf"), tmp_path, checkpoint=PER_PIXEL)
    assert leftovers(tmp_path) == []


def test_split_identity_is_exact_in_float_and_shrinks_weights() -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(0.0, 0.05, (4, 4, 3, 3)).astype(np.float32)
    weight[np.arange(4), np.arange(4), 1, 1] += 1.0
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")
    graph = helper.make_graph(
        [conv],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 8, 8])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    split, count = split_identity(model)
    assert count == 1 and [n.op_type for n in split.graph.node] == ["Conv", "Add"]
    assert np.abs(numpy_helper.to_array(split.graph.initializer[0])).max() < 0.5
    x = {"x": rng.random((1, 4, 8, 8), dtype=np.float32)}
    run = [ort.InferenceSession(m.SerializeToString()).run(None, x)[0] for m in (model, split)]
    np.testing.assert_allclose(run[0], run[1], atol=1e-6)


def test_a16w8_follows_strength(tmp_path: Path) -> None:
    """Calibrated at strengths -1, 0, 0.5 and 1, the HTP model keeps both ends of the strength path."""
    recipe = dataclasses.replace(_recipe(), parity_floor_db=0.0)  # random FiLM heads: no trained floor applies
    loaded = LoadedModel(responsive_metasr(), "test")
    result = export(recipe, tmp_path, loaded=loaded)
    session = open_session(result.artifact)

    def predict(image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["output"], {"image": image.numpy(), "strength": strength.numpy()})[0])

    assert_follows_strength(predict, prepare(loaded, recipe).model, SIZE[0])


class _WithErf(MetaSR):
    """A MetaSR with an op the HTP cannot run (Erf)."""

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        return torch.erf(super().forward(image, strength))


def test_unsupported_op_fails_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    base = responsive_metasr()
    model = _WithErf(base.student, dict(base.extractors), base.orchestrator).eval()
    with pytest.raises(MetaSRError, match=r"cannot run Erf on Qualcomm HTP"):
        export(_recipe(), tmp_path, loaded=LoadedModel(model, "test"))
    assert leftovers(tmp_path) == []
