"""An ncnn model (text ``.param`` + ``.bin``) as a ``torch.nn.Module``: the peers' pretrained weights, run by torch.

:func:`read_param` parses the graph (magic 7767517, one layer per line, ``key=value`` params, arrays as
``-233xx=n,v,...``); :func:`load_ncnn` reads the weights in layer order and builds :class:`NcnnGraph`, whose
blobs are ``(N, C, H, W)`` tensors (ncnn's ``c, h, w`` plus a batch). The graph is plain torch ops over a
fixed list of steps, so ``torch.export`` captures it like any other network.

Weights follow ncnn's ``ModelBin``: tensors a layer stores "tagged" (convolution weights) start with a
4-byte flag (0 = fp32, 0x01306B47 = fp16, 0x01348B83 = bf16, other non-zero = a 256-entry fp32 table and
uint8 indices); the others (biases, PReLU slopes, MemoryData) are raw fp32. Every tensor is padded to 4 bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MAGIC = 7767517
FP16_TAG = 0x01306B47
BF16_TAG = 0x01348B83
INT8_TAG = 0x000D4B38
ARRAY_KEY = -23300  # array params are written with key -23300 - id

Param = int | float | tuple[int | float, ...]


class NcnnGraphError(ValueError):
    """A graph or weight file this reader cannot turn into torch: the message is one line."""


@dataclass(frozen=True)
class Layer:
    """One layer line of a ``.param`` file."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, Param]

    def get(self, key: int, default: Param) -> Param:
        return self.params.get(key, default)


def read_param(path: Path) -> list[Layer]:
    """The layers of an ncnn text ``.param`` file, in file (topological) order."""
    lines = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise NcnnGraphError(f"{path}: not an ncnn text param file (no magic {MAGIC} on the first line)")
    layer_count = int(lines[1][0])
    layers = []
    for fields in lines[2 : 2 + layer_count]:
        kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        inputs, outputs = tuple(fields[4 : 4 + n_in]), tuple(fields[4 + n_in : 4 + n_in + n_out])
        params = dict(_param(item) for item in fields[4 + n_in + n_out :])
        layers.append(Layer(kind, name, inputs, outputs, params))
    if len(layers) != layer_count:
        raise NcnnGraphError(f"{path}: {len(layers)} layer lines, the header says {layer_count}")
    return layers


def _param(item: str) -> tuple[int, Param]:
    key_text, value = item.split("=", 1)
    key = int(key_text)
    if key <= ARRAY_KEY:  # -23300 - id = n,v1,...,vn
        count, *values = value.split(",")
        return ARRAY_KEY - key, tuple(_number(v) for v in values[: int(count)])
    if "," in value:  # the modern array spelling: id=v1,v2
        return key, tuple(_number(v) for v in value.split(","))
    return key, _number(value)


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


class WeightReader:
    """Sequential reads from an ncnn ``.bin``, as the layers' ``load_model`` does them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data = self.path.read_bytes()
        self.offset = 0

    def raw(self, count: int) -> np.ndarray:
        """``count`` untagged fp32 values."""
        return self._take(np.float32, count)

    def tagged(self, count: int) -> np.ndarray:
        """``count`` values behind a storage flag, as fp32."""
        (tag,) = self._take(np.uint32, 1)
        if tag == 0:
            return self._take(np.float32, count)
        if tag == FP16_TAG:
            return self._take(np.float16, count).astype(np.float32)
        if tag == BF16_TAG:
            bits = self._take(np.uint16, count).astype(np.uint32) << 16
            return bits.view(np.float32)
        if tag == INT8_TAG:
            raise NcnnGraphError(f"{self.path}: int8-quantized weights (flag 0x{tag:08X}) are not supported")
        table = self._take(np.float32, 256)
        return table[self._take(np.uint8, count)]

    def done(self) -> None:
        if self.offset != len(self.data):
            raise NcnnGraphError(f"{self.path}: {len(self.data) - self.offset} bytes left after the last layer")

    def _take(self, dtype: type, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize * count
        if self.offset + size > len(self.data):
            raise NcnnGraphError(f"{self.path}: truncated at byte {self.offset} (wanted {size} more)")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset).copy()
        self.offset += -(-size // 4) * 4  # every tensor is padded to 4 bytes
        return values


class NcnnGraph(nn.Module):
    """An ncnn graph as torch: ``steps`` run in order over a name -> tensor map of blobs.

    ``forward`` takes the ``input`` blob and returns the ``output`` blob; a blob is dropped after its last use,
    so a large frame holds only the live activations.
    """

    def __init__(self, steps: list[tuple[nn.Module, tuple[str, ...], tuple[str, ...]]], input: str, output: str):
        super().__init__()
        self.ops = nn.ModuleList(op for op, _, _ in steps)
        self.wiring = [(ins, outs) for _, ins, outs in steps]
        self.input, self.output = input, output
        last_use = {name: index for index, (ins, _) in enumerate(self.wiring) for name in ins}
        self.drops = [
            tuple(name for name in ins if last_use[name] == index and name != output)
            for index, (ins, _) in enumerate(self.wiring)
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs = {self.input: x}
        for op, (ins, outs), drops in zip(self.ops, self.wiring, self.drops, strict=True):
            result = op(*(blobs[name] for name in ins))
            for name, tensor in zip(outs, result if isinstance(result, tuple) else (result,), strict=True):
                blobs[name] = tensor
            for name in drops:
                del blobs[name]
        return blobs[self.output]


def load_ncnn(param: Path, weights: Path, output: str | None = None) -> NcnnGraph:
    """``param`` + ``weights`` as an :class:`NcnnGraph` (eval mode, float32).

    The input is the graph's ``Input`` blob; the output is ``output``, else the blob named ``output``, else the
    last layer's. Raises :class:`NcnnGraphError` naming the file for a layer type this reader does not know.
    """
    layers = read_param(param)
    reader = WeightReader(weights)
    inputs = [layer.outputs[0] for layer in layers if layer.type == "Input"]
    if len(inputs) != 1:
        raise NcnnGraphError(f"{param}: {len(inputs)} Input layers; this reader runs single-input graphs")
    steps = []
    for layer in layers:
        if layer.type == "Input":
            continue
        build = BUILDERS.get(layer.type)
        if build is None:
            raise NcnnGraphError(f"{param}: unsupported ncnn layer type '{layer.type}' (layer '{layer.name}')")
        steps.append((build(layer, reader), layer.inputs, layer.outputs))
    reader.done()
    produced = {name for layer in layers for name in layer.outputs}
    output = output or ("output" if "output" in produced else layers[-1].outputs[-1])
    if output not in produced:
        raise NcnnGraphError(f"{param}: no blob named '{output}'")
    return NcnnGraph(steps, inputs[0], output).eval()


# Layers ------------------------------------------------------------------------------------------------------


class Lambda(nn.Module):
    """A parameter-free op (kept as a module so the graph is a flat ``ModuleList``)."""

    def __init__(self, fn: Callable[..., torch.Tensor], label: str) -> None:
        super().__init__()
        self.fn, self.label = fn, label

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)

    def extra_repr(self) -> str:
        return self.label


class Constant(nn.Module):
    """MemoryData: a stored tensor, broadcastable against ``(N, C, H, W)`` blobs."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("value", value)

    def forward(self) -> torch.Tensor:
        return self.value


class Split(nn.Module):
    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,) * self.count


class ConvBlock(nn.Module):
    """Convolution / ConvolutionDepthWise: explicit padding where ncnn's is asymmetric or non-zero, fused activation."""

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int], pad_value: float, activation: nn.Module):
        super().__init__()
        self.conv, self.pad, self.pad_value, self.activation = conv, pad, pad_value, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad, value=self.pad_value)
        return self.activation(self.conv(x))


def _convolution(layer: Layer, reader: WeightReader) -> nn.Module:
    out = int(layer.get(0, 0))
    kw = int(layer.get(1, 0))
    kh = int(layer.get(11, kw))
    dw = int(layer.get(2, 1))
    dh = int(layer.get(12, dw))
    sw = int(layer.get(3, 1))
    sh = int(layer.get(13, sw))
    left = int(layer.get(4, 0))
    right, top = int(layer.get(15, left)), int(layer.get(14, left))
    bottom = int(layer.get(16, top))
    groups = int(layer.get(7, 1)) if layer.type == "ConvolutionDepthWise" else 1
    size = int(layer.get(6, 0))
    if int(layer.get(8, 0)) or int(layer.get(19, 0)):
        raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' is int8-quantized or has dynamic weights")
    if min(left, right, top, bottom) < 0:
        raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' uses SAME padding (-233/-234), not supported")
    per_group_in, rest = divmod(size, out * kh * kw) if out * kh * kw else (0, 0)
    in_channels = per_group_in * groups
    if rest or per_group_in <= 0 or out % groups:
        raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' weight size {size} does not fit its kernel")
    conv = nn.Conv2d(in_channels, out, (kh, kw), (sh, sw), dilation=(dh, dw), groups=groups, bias=bool(layer.get(5, 0)))
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(reader.tagged(size)).view(out, in_channels // groups, kh, kw))
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(reader.raw(out)))
    pad_value = float(layer.get(18, 0.0))
    if left == right and top == bottom and pad_value == 0.0:
        conv.padding, pad = (top, left), (0, 0, 0, 0)
    else:
        pad = (left, right, top, bottom)
    return ConvBlock(conv, pad, pad_value, _activation(layer, reader.path))


def _activation(layer: Layer, path: Path) -> nn.Module:
    kind = int(layer.get(9, 0))
    params = tuple(float(v) for v in layer.get(10, ()))  # type: ignore[union-attr]
    if kind == 0:
        return nn.Identity()
    if kind == 1:
        return nn.ReLU()
    if kind == 2:
        return nn.LeakyReLU(params[0])
    if kind == 3:
        return Lambda(lambda x: x.clamp(params[0], params[1]), f"clip {params}")
    if kind == 4:
        return nn.Sigmoid()
    if kind == 5:
        return nn.Mish()
    if kind == 6:
        return Lambda(lambda x: x * (x * params[0] + params[1]).clamp(0.0, 1.0), f"hardswish {params}")
    raise NcnnGraphError(f"{path}: layer '{layer.name}' has unsupported fused activation_type {kind}")


def _prelu(layer: Layer, reader: WeightReader) -> nn.Module:
    count = int(layer.get(0, 0))
    prelu = nn.PReLU(count)
    with torch.no_grad():
        prelu.weight.copy_(torch.from_numpy(reader.raw(count)))
    return prelu


def _relu(layer: Layer, reader: WeightReader) -> nn.Module:
    slope = float(layer.get(0, 0.0))
    return nn.LeakyReLU(slope) if slope else nn.ReLU()


def _clip(layer: Layer, reader: WeightReader) -> nn.Module:
    low, high = float(layer.get(0, -math.inf)), float(layer.get(1, math.inf))
    return Lambda(lambda x: x.clamp(low, high), f"clip {low}, {high}")


BINARY: dict[int, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    0: torch.add,
    1: torch.sub,
    2: torch.mul,
    3: torch.div,
    4: torch.maximum,
    5: torch.minimum,
    6: torch.pow,
    7: lambda a, b: b - a,
    8: lambda a, b: b / a,
}
SCALAR: dict[int, Callable[[torch.Tensor, float], torch.Tensor]] = {
    0: lambda x, b: x + b,
    1: lambda x, b: x - b,
    2: lambda x, b: x * b,
    3: lambda x, b: x / b,
    4: lambda x, b: x.clamp(min=b),
    5: lambda x, b: x.clamp(max=b),
    6: lambda x, b: x**b,
    7: lambda x, b: b - x,
    8: lambda x, b: b / x,
}


def _binary(layer: Layer, reader: WeightReader) -> nn.Module:
    kind = int(layer.get(0, 0))
    if kind not in BINARY:
        raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' has unsupported BinaryOp op_type {kind}")
    if int(layer.get(1, 0)):  # with_scalar: b is the param
        b, fn = float(layer.get(2, 0.0)), SCALAR[kind]
        return Lambda(lambda x: fn(x, b), f"op {kind}, scalar {b}")
    return Lambda(BINARY[kind], f"op {kind}")


def _eltwise(layer: Layer, reader: WeightReader) -> nn.Module:
    kind = int(layer.get(0, 0))
    coeffs = tuple(float(c) for c in layer.get(1, ()))  # type: ignore[union-attr]
    if kind == 0:
        return Lambda(lambda *xs: math.prod(xs[1:], start=xs[0]), "prod")
    if kind == 2:
        return Lambda(lambda *xs: torch.stack(xs).amax(0), "max")
    if kind == 1:
        if coeffs:
            return Lambda(lambda *xs: sum(c * x for c, x in zip(coeffs, xs, strict=True)), f"sum {coeffs}")
        return Lambda(lambda *xs: sum(xs[1:], start=xs[0]), "sum")
    raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' has unsupported Eltwise op_type {kind}")


def _concat(layer: Layer, reader: WeightReader) -> nn.Module:
    axis = int(layer.get(0, 0))
    dim = axis % 3 + 1  # ncnn axes count c, h, w of a 3-d blob; torch adds the batch
    return Lambda(lambda *xs: torch.cat(xs, dim), f"dim {dim}")


class PixelShuffle(nn.Module):
    """ncnn PixelShuffle: mode 0 is torch's channel order; mode 1 (depth-to-space, DCR) is permuted into it."""

    def __init__(self, factor: int, mode: int) -> None:
        super().__init__()
        self.factor, self.mode = factor, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == 1:
            r2 = self.factor * self.factor
            c = x.shape[1] // r2
            x = x.unflatten(1, (r2, c)).transpose(1, 2).flatten(1, 2)
        return F.pixel_shuffle(x, self.factor)


def _pixel_shuffle(layer: Layer, reader: WeightReader) -> nn.Module:
    return PixelShuffle(int(layer.get(0, 1)), int(layer.get(1, 0)))


def _interp(layer: Layer, reader: WeightReader) -> nn.Module:
    modes = {1: "nearest", 2: "bilinear", 3: "bicubic"}
    kind = int(layer.get(0, 0))
    if kind not in modes or int(layer.get(5, 0)):
        raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' has unsupported Interp resize_type {kind}")
    mode = modes[kind]
    align = bool(int(layer.get(6, 0))) if mode != "nearest" else None
    out_h, out_w = int(layer.get(3, 0)), int(layer.get(4, 0))
    if out_h and out_w:
        return Lambda(lambda x: F.interpolate(x, size=(out_h, out_w), mode=mode, align_corners=align), mode)
    scale = (float(layer.get(1, 1.0)), float(layer.get(2, 1.0)))
    return Lambda(lambda x: F.interpolate(x, scale_factor=scale, mode=mode, align_corners=align), f"{mode} {scale}")


def _memory_data(layer: Layer, reader: WeightReader) -> nn.Module:
    w, h, c = int(layer.get(0, 0)), int(layer.get(1, 0)), int(layer.get(2, 0))
    if int(layer.get(11, 0)):
        raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' is a 4-d MemoryData, not supported")
    if c:
        shape = (1, c, h, w)
    elif h:
        shape = (1, 1, h, w)
    else:
        shape = (1, w, 1, 1)  # a 1-d blob broadcasts per channel
    return Constant(torch.from_numpy(reader.raw(math.prod(shape))).view(shape))


UNSET = -233  # ncnn's "not given" for Crop's offsets, sizes, starts and ends


def _crop(layer: Layer, reader: WeightReader) -> nn.Module:
    """Crop of a 3-d blob: numpy-style ``starts``/``ends``/``axes`` (ids 9-11), else offsets and sizes (ids 0-8)."""
    starts, ends, axes = (tuple(int(v) for v in layer.get(key, ())) for key in (9, 10, 11))  # type: ignore[union-attr]
    if starts and ends:  # [start, end) per axis (c, h, w); negative counts from the end, an end of 0 is the end
        dims = tuple(a % 3 + 1 for a in axes) if axes else (1, 2, 3)[: len(starts)]
        spans = tuple(
            (dim, 0 if start == UNSET else start, None if end in (UNSET, 0) else end)
            for dim, start, end in zip(dims, starts, ends, strict=True)
        )
    else:  # offset, then at most ``size`` (UNSET: all), leaving ``offset2`` at the far end
        offsets = (int(layer.get(2, 0)), int(layer.get(1, 0)), int(layer.get(0, 0)))  # c, h, w
        if UNSET in offsets:
            raise NcnnGraphError(f"{reader.path}: layer '{layer.name}' uses Crop's -233 offset shorthand (unsupported)")
        sizes = (int(layer.get(5, UNSET)), int(layer.get(4, UNSET)), int(layer.get(3, UNSET)))
        tails = (int(layer.get(8, 0)), int(layer.get(7, 0)), int(layer.get(6, 0)))
        spans = tuple(
            (dim, offset, (offset, size, tail))
            for dim, offset, size, tail in zip((1, 2, 3), offsets, sizes, tails, strict=True)
        )

    def crop(x: torch.Tensor) -> torch.Tensor:
        for dim, start, end in spans:
            side = x.shape[dim]
            first = start + side if start < 0 else start
            if isinstance(end, tuple):  # offsets form
                offset, size, tail = end
                length = side - offset - tail if size == UNSET else min(size, side - offset - tail)
            else:
                last = side if end is None else min(side, end if end > 0 else side + end)
                length = last - first
            x = x.narrow(dim, first, length)
        return x

    return Lambda(crop, f"spans {spans}")


def _simple(module: Callable[[], nn.Module]) -> Callable[[Layer, WeightReader], nn.Module]:
    return lambda layer, reader: module()


BUILDERS: dict[str, Callable[[Layer, WeightReader], nn.Module]] = {
    "Convolution": _convolution,
    "ConvolutionDepthWise": _convolution,
    "ReLU": _relu,
    "PReLU": _prelu,
    "Clip": _clip,
    "Sigmoid": _simple(nn.Sigmoid),
    "Swish": _simple(nn.SiLU),
    "TanH": _simple(nn.Tanh),
    "BinaryOp": _binary,
    "Eltwise": _eltwise,
    "Split": lambda layer, reader: Split(len(layer.outputs)),
    "Concat": _concat,
    "PixelShuffle": _pixel_shuffle,
    "Interp": _interp,
    "MemoryData": _memory_data,
    "Crop": _crop,
    "Noop": _simple(nn.Identity),
    "Dropout": _simple(nn.Identity),
}
