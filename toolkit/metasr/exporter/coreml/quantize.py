"""Core ML quantization: W8A8 calibrated in PyTorch (PT2E) and data-free weight compression of ML programs.

W8A8 quantizes what the Neural Engine runs in int8: every conv's input (per tensor, asymmetric) and weight
(per output channel, symmetric); everything else (gates, FiLM mul/add, the strength override) stays fp16.
The orchestrator's convs read the strength-overridden degree, so calibration covers several strengths.
"""

from __future__ import annotations

from typing import Literal

import coremltools as ct
import coremltools.optimize.coreml as cto
import torch
from threadpoolctl import threadpool_limits
from torchao.quantization.pt2e import MinMaxObserver, PerChannelMinMaxObserver
from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, QuantizationSpec, Quantizer

from metasr.exporter.calibration import Batch

WeightCompression = Literal["none", "int8", "palettize6", "palettize4"]

# Smaller tensors (biases, the fixed 1x1 anchor conv) stay fp16: compressing them saves nothing, and a
# 64-entry palette for a 36-value tensor is degenerate.
MIN_COMPRESSED_WEIGHTS = 256

ACTIVATION = QuantizationSpec(
    dtype=torch.int8,
    quant_min=-128,
    quant_max=127,
    qscheme=torch.per_tensor_affine,
    observer_or_fake_quant_ctr=MinMaxObserver,
)
WEIGHT = QuantizationSpec(
    dtype=torch.int8,
    quant_min=-127,
    quant_max=127,
    qscheme=torch.per_channel_symmetric,
    ch_axis=0,
    observer_or_fake_quant_ctr=PerChannelMinMaxObserver,
)


class ConvW8A8Quantizer(Quantizer):
    """PT2E quantizer: int8 input activation and int8 per-channel weight for every conv; bias stays float."""

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in model.graph.nodes:
            if node.target == torch.ops.aten.conv2d.default:
                image, weight = node.args[:2]
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={image: ACTIVATION, weight: WEIGHT}, _annotated=True
                )
        return model

    def validate(self, model: torch.fx.GraphModule) -> None:
        """Every annotation is built above; nothing to check."""


def quantize_w8a8(graph: torch.fx.GraphModule, batches: list[Batch]) -> torch.fx.GraphModule:
    """Calibrate activation ranges on ``batches`` (the graph's inputs each) and return the quantize/dequantize graph."""
    prepared = prepare_pt2e(graph, ConvW8A8Quantizer())
    with torch.no_grad():
        for batch in batches:
            prepared(*batch)
    return convert_pt2e(prepared)


def compress_weights(mlmodel: ct.models.MLModel, weights: WeightCompression) -> ct.models.MLModel:
    """Data-free compression of conv weights in a converted ML program: int8 per-channel linear, or a 6/4-bit
    k-means palette per tensor (scikit-learn k-means, seeded and single-threaded so the palette is reproducible)."""
    if weights == "int8":
        linear = cto.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=MIN_COMPRESSED_WEIGHTS
        )
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=linear))
    if weights in ("palettize6", "palettize4"):
        palette = cto.OpPalettizerConfig(
            mode="kmeans", nbits=int(weights[-1]), granularity="per_tensor", weight_threshold=MIN_COMPRESSED_WEIGHTS
        )
        with threadpool_limits(limits=1):
            return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=palette))
    return mlmodel
