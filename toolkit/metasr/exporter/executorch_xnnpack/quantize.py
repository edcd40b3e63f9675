"""Static int8 PT2E quantization for XNNPACK: torchao's prepare/convert or NNCF's ``quantize_pt2e``.

Both paths annotate with ExecuTorch's ``XNNPACKQuantizer`` (int8 activations per tensor, int8 weights
per output channel, symmetric) and return a folded Q/DQ ``GraphModule`` ready for ``torch.export``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import nncf
import nncf.quantization.algorithms.min_max.algorithm as nncf_min_max
import torch
from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
    XNNPACKQuantizer,
    get_symmetric_quantization_config,
)
from nncf.common.graph.graph import NNCFGraph
from nncf.common.quantization.quantizer_setup import SingleConfigQuantizerSetup
from nncf.experimental.torch.fx import quantize_pt2e as nncf_quantize_pt2e
from nncf.experimental.torch.fx.constant_folding import constant_fold
from nncf.experimental.torch.fx.quantization.quantizer.torch_ao_adapter import TorchAOQuantizerAdapter
from nncf.experimental.torch.fx.transformations import QUANTIZE_NODE_TARGETS
from nncf.quantization.advanced_parameters import OverflowFix
from nncf.quantization.range_estimator import RangeEstimatorParametersSet
from torchao.quantization.pt2e import MinMaxObserver
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
from torchao.quantization.pt2e.quantizer import QuantizationSpec

from metasr.exporter.calibration import Batch
from metasr.exporter.graph_passes import drop_aliases
from metasr.quiet import quiet

BiasCorrection = Literal["full", "fast", "none"]
Ranges = Literal["histogram", "minmax"]

_SPLITS = (torch.ops.aten.split.Tensor, torch.ops.aten.split_with_sizes.default, torch.ops.aten.chunk.default)
_BINARY = (torch.ops.aten.add.Tensor, torch.ops.aten.sub.Tensor, torch.ops.aten.mul.Tensor, torch.ops.aten.div.Tensor)


def xnnpack_quantizer(ranges: Ranges = "histogram") -> XNNPACKQuantizer:
    """Static int8: per-tensor activations, per-channel symmetric weights.

    ``ranges`` picks the activation observer: ``histogram`` searches the range that minimises the
    quantization error (about 0.1 s per observed tensor); ``minmax`` takes the observed extremes, which is
    enough where the ranges do not matter (latency: the kernels are the same).
    """
    config = get_symmetric_quantization_config(is_per_channel=True)
    if ranges == "minmax":
        inputs, outputs = _minmax(config.input_activation), _minmax(config.output_activation)
        config = dataclasses.replace(config, input_activation=inputs, output_activation=outputs)
    return XNNPACKQuantizer().set_global(config)


def _minmax(spec: QuantizationSpec) -> QuantizationSpec:
    return dataclasses.replace(spec, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))


def capture(
    model: torch.nn.Module, example: tuple[torch.Tensor, ...], dynamic_shapes: tuple[Any, ...] | None
) -> torch.fx.GraphModule:
    """Pre-autograd graph of ``model(*example)`` (dynamic image height/width if given), splits rewritten as slices.

    XNNPACK has no split kernel, so a split would stay outside the delegate; slices are delegated.
    The dynamic size lets one calibrated graph be exported once per recipe input size.
    """
    graph_module = torch.export.export(model, example, dynamic_shapes=dynamic_shapes).module()
    return scalars_to_tensors(drop_aliases(split_to_slices(graph_module)))


def scalars_to_tensors(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Give every add/sub/mul/div of a 4-D tensor and a Python number a (1, 1, 1, 1) constant instead, in place.

    Exact (the constant broadcasts like the number). ExecuTorch 1.5.1's XNNPACK layout pass turns a number into
    a 0-d tensor, which it cannot lay out channels-last, so it converts the op's activation to NCHW with
    ``replace_all_uses_with``: every other consumer of that activation then reads the NCHW copy, and a
    channels-last consumer (a conv, an average pool) fails to lower ("non-NHWC compatible node").
    """
    graph = graph_module.graph
    count = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in (*_BINARY, torch.ops.aten.rsub.Scalar) or node.kwargs:
            continue
        tensor, number = node.args[:2]
        if not isinstance(number, int | float) or len(tensor.meta["val"].shape) != 4:
            continue
        name = f"_scalar_constant_{count}"
        count += 1
        graph_module.register_buffer(name, torch.full((1, 1, 1, 1), float(number)))
        with graph.inserting_before(node):
            constant = graph.get_attr(name)
        constant.meta["val"] = torch.full((1, 1, 1, 1), float(number))
        if node.target is torch.ops.aten.rsub.Scalar:  # rsub(x, c) = c - x
            node.target, node.args = torch.ops.aten.sub.Tensor, (constant, tensor)
        else:
            node.args = (tensor, constant)
    graph.lint()
    graph_module.recompile()
    return graph_module


def split_to_slices(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Replace every ``split``/``chunk`` whose outputs are only indexed with one ``slice`` per output, in place."""
    graph = graph_module.graph
    for node in [n for n in graph.nodes if n.op == "call_function" and n.target in _SPLITS]:
        if any(user.target is not operator.getitem for user in node.users):
            continue
        source, sizes, dim = node.args[0], node.args[1], node.args[2] if len(node.args) > 2 else 0
        length = source.meta["val"].shape[dim]
        if node.target is torch.ops.aten.chunk.default:
            sizes = -(-length // sizes)  # chunk(n) is split(ceil(length / n))
        if isinstance(sizes, int):
            chunk = sizes
            sizes = [min(chunk, length - start) for start in range(0, length, chunk)]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        for user in list(node.users):
            index = user.args[1]
            with graph.inserting_before(user):
                piece = graph.call_function(
                    torch.ops.aten.slice.Tensor, (source, dim, starts[index], starts[index] + sizes[index])
                )
            piece.meta = dict(user.meta)
            user.replace_all_uses_with(piece)
            graph.erase_node(user)
        graph.erase_node(node)
    graph.lint()
    graph_module.recompile()
    return graph_module


def quantize_pt2e(
    graph_module: torch.fx.GraphModule, batches: Sequence[tuple[torch.Tensor, ...]], ranges: Ranges = "histogram"
) -> torch.fx.GraphModule:
    """torchao PT2E: insert observers, run the calibration batches (the graph's inputs each), fold to Q/DQ."""
    prepared = prepare_pt2e(graph_module, xnnpack_quantizer(ranges))
    with torch.no_grad():
        for batch in batches:
            prepared(*batch)
    return convert_pt2e(prepared)


def quantize_nncf(
    graph_module: torch.fx.GraphModule, batches: list[Batch], bias_correction: BiasCorrection
) -> torch.fx.GraphModule:
    """NNCF PT2E with the same quantizer and histogram ranges as torchao, then (fast or full) bias correction.

    With ``none`` the result matches :func:`quantize_pt2e` (within 0.01 dB), so the difference is NNCF's
    bias correction. Weight Q/DQ is folded here rather than by NNCF: given a quantizer with
    ``get_nncf_quantization_setup``, NNCF folds it the OpenVINO way (mul/sub), which XNNPACK cannot match.
    """
    fast = {"full": False, "fast": True, "none": None}[bias_correction]
    with _nncf_full_int8_weights(), quiet():
        quantized = nncf_quantize_pt2e(
            graph_module,
            _SignedWeightsQuantizer(xnnpack_quantizer()),
            nncf.Dataset(batches),
            subset_size=len(batches),
            fast_bias_correction=fast,
            activations_range_estimator_params=RangeEstimatorParametersSet.HISTOGRAM,
            fold_quantize=False,
        )
    constant_fold(quantized, lambda n: n.op == "call_function" and n.target in QUANTIZE_NODE_TARGETS)
    return quantized


class _SignedWeightsQuantizer:
    """``XNNPACKQuantizer`` as NNCF sees it, with every per-channel (weight) quantizer forced signed.

    NNCF 3.4.0 makes an all-non-negative weight tensor (the anchor conv) "unsigned symmetric", i.e.
    int8 with zero point -127: XNNPACK requires zero point 0, and ``dequantize_per_channel`` overflows
    int8 on it. Providing ``get_nncf_quantization_setup`` is NNCF's hook for supplying that setup.
    """

    def __init__(self, quantizer: XNNPACKQuantizer) -> None:
        self._quantizer = quantizer

    def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        return self._quantizer.transform_for_annotation(model)

    def get_nncf_quantization_setup(
        self, model: torch.fx.GraphModule, nncf_graph: NNCFGraph
    ) -> SingleConfigQuantizerSetup:
        setup = TorchAOQuantizerAdapter(self._quantizer).get_quantization_setup(model, nncf_graph)
        for point in setup.quantization_points.values():
            if point.qconfig.per_channel:
                point.qconfig.signedness_to_force = True
        return setup


@contextlib.contextmanager
def _nncf_full_int8_weights() -> Iterator[None]:
    """Switch off NNCF's x86 "overflow fix" for the duration of one quantization.

    By default NNCF halves the weight range (7-bit weights) of the first convolutions after every model
    input, a workaround for x86 CPUs without VNNI. The image feeds the student's head and anchor, every
    metadata extractor and the orchestrator's stem directly; XNNPACK on ARM needs no such fix, and
    ``quantize_pt2e`` exposes no parameter for it.
    """
    defaults = nncf_min_max.MODE_BASED_DEFAULTS
    saved = defaults[None]
    defaults[None] = dataclasses.replace(saved, overflow_fix=OverflowFix.DISABLE)
    try:
        yield
    finally:
        defaults[None] = saved
