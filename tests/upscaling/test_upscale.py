"""metasr-upscale: seamless tiling, image edge cases, per-file errors, video, route hysteresis."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageOps
from skimage import data

from metasr.assembly import load_metasr, save_metasr
from metasr.checkpoint import load_student, save_student
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale, to_numpy, to_tensor
from metasr.model_zoo import model_card
from metasr.models import MetaSRStudent, StudentConfig
from metasr.upscaling.batch import Batch
from metasr.upscaling.command import upscale_command
from metasr.upscaling.image_io import read_image
from metasr.upscaling.jpeg_stream import STRIP_MCU_ROWS, JpegStreamWriter
from metasr.upscaling.model import Upscaler, load_upscaler
from metasr.upscaling.png_stream import PngStreamWriter
from metasr.upscaling.tiling import axis_spans, axis_weights, upscale_strips
from metasr.upscaling.video import RouteStabilizer
from metasr.validate.metrics import y_psnr
from tests.conftest import leftovers, responsive_metasr


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    save_student(MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)).eval(), path)
    return path


def _upscale(image: np.ndarray, upscaler: Upscaler) -> np.ndarray:
    h, w = image.shape[:2]
    return np.concatenate([rows for _, rows in upscale_strips(image, upscaler.plan(h, w), upscaler.run)])


def _photo(size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS))


def test_tiled_equals_untiled_on_a_photo() -> None:
    hr = data.astronaut().astype(np.float32) / 255.0  # 512x512; the input is its 256x256 bicubic downscale
    lr = np.rint(to_numpy(bicubic_downscale(to_tensor(hr), 2)) * 255).astype(np.uint8)
    plain = model_card("student-x2").path  # in an identity orchestrator: every tile sees the same model
    upscaler = load_upscaler(checkpoint=plain, tile=96, overlap=16)
    assert upscaler.plan(256, 256).count == 9
    tiled = _upscale(lr, upscaler)
    with torch.inference_mode():
        untiled = to_numpy(load_metasr(plain)(to_tensor(lr.astype(np.float32) / 255.0)))
    assert y_psnr(tiled, untiled) >= 60.0
    assert abs(y_psnr(tiled, hr) - y_psnr(untiled, hr)) <= 0.01


def test_static_model_gets_exact_tile_sizes(checkpoint: Path) -> None:
    model = load_student(checkpoint).reparameterize()
    seen: set[tuple[int, ...]] = set()

    def run(x: torch.Tensor) -> torch.Tensor:
        seen.add(tuple(x.shape))
        return model(x)

    static = Upscaler("static", 2, run, (32, 48), 8, static=True)
    big, small = _photo(100)[:70], _photo(20)
    tiled = _upscale(big, static)
    assert tiled.shape == (140, 200, 3)
    assert _upscale(small, static).shape == (40, 40, 3)  # reflect-padded to 32x48, then cropped
    assert seen == {(1, 3, 32, 48)}
    seen.clear()
    dynamic = Upscaler("dynamic", 2, run, (70, 200), 0, static=False)
    assert y_psnr(tiled, _upscale(big, dynamic)) >= 40.0
    assert _upscale(small, dynamic).shape == (40, 40, 3)
    assert seen == {(1, 3, 96, 128), (1, 3, 64, 64)}  # padded to whole 32-pixel metadata cells, at least two


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (33, 32, 8), (32, 32, 8), (257, 64, 16), (10, 64, 16)])
def test_spans_cover_and_weights_sum_to_one(length: int, tile: int, overlap: int) -> None:
    spans = axis_spans(length, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(e - s == min(tile, length) for s, e in spans)
    assert all(b[0] <= a[1] - overlap for a, b in zip(spans, spans[1:], strict=False))
    total = np.zeros(2 * length)
    for (s, e), w in zip(spans, axis_weights(spans, 2, overlap // 4), strict=True):
        total[2 * s : 2 * e] += w
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)


@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (2, np.uint8), (3, np.uint8), (4, np.uint8), (3, np.uint16)])
def test_png_stream_roundtrip(tmp_path: Path, channels: int, dtype: type) -> None:
    rng = np.random.default_rng(channels)
    smooth = np.cumsum(rng.integers(0, 3, (37, 41, channels)), axis=1)
    pixels = (smooth * (np.iinfo(dtype).max // 200)).astype(dtype)
    path = tmp_path / "x.png"
    with open(path, "wb") as f:
        writer = PngStreamWriter(f, 41, 37, channels, 16 if dtype == np.uint16 else 8, icc=b"profile")
        for i in range(0, 37, 10):
            writer.write(pixels[i : i + 10])
        writer.close()
    decoded = read_image(path)
    assert decoded.channels == channels and decoded.rgb.dtype == dtype
    colour = pixels[..., :1].repeat(3, axis=2) if channels < 3 else pixels[..., :3]
    np.testing.assert_array_equal(decoded.rgb, colour)
    if channels in (2, 4):
        np.testing.assert_array_equal(decoded.alpha, pixels[..., -1])
    assert Image.open(path).info["icc_profile"] == b"profile"


def _exif_rotated_jpeg(path: Path) -> None:
    """Stored 24 wide x 16 high with a white block top-left; orientation 6 displays it 16x24, block top-right."""
    pixels = np.full((16, 24, 3), 60, np.uint8)
    pixels[:8, :8] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())


def _sixteen_bit_png(path: Path) -> np.ndarray:
    ramp = np.linspace(1000, 60000, 24 * 32).reshape(24, 32).astype(np.uint16)
    pixels = np.stack([ramp, ramp[::-1], np.full_like(ramp, 30001)], axis=2)
    with open(path, "wb") as f:
        writer = PngStreamWriter(f, 32, 24, 3, 16)
        writer.write(pixels)
        writer.close()
    return pixels


def _mixed_folder(folder: Path) -> None:
    photo = _photo(32)
    Image.fromarray(photo).save(folder / "photo.png")
    alpha = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    Image.fromarray(np.dstack([photo, alpha])).save(folder / "rgba.png")
    Image.fromarray(photo).convert("L").save(folder / "grey.png")
    Image.fromarray(photo).convert("P").save(folder / "palette.png")
    Image.fromarray(photo).convert("CMYK").save(folder / "cmyk.jpg")
    _exif_rotated_jpeg(folder / "rotated.jpg")
    _sixteen_bit_png(folder / "deep.png")
    good = (folder / "photo.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "empty.png").write_bytes(b"")
    Image.new("RGB", (1, 1)).save(folder / "dot.png")
    (folder / "notes.txt").write_text("not an image")


def test_folder_with_edge_cases(tmp_path: Path, checkpoint: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _mixed_folder(src)
    result = CliRunner().invoke(upscale_command, [str(src), "--checkpoint", str(checkpoint), "-o", str(out)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert any("truncated.png" in e and "truncated" in e for e in errors)
    assert any("empty.png is empty (0 bytes)" in e for e in errors)
    assert any("dot.png is 1x1 pixels, too small; the minimum is 8x8" in e for e in errors)
    assert "skipped:" in result.output and "notes.txt" in result.output
    assert "Error: 3 of 10 file(s) failed" in result.output
    expected = ["cmyk.jpg", "deep.png", "grey.png", "palette.png", "photo.png", "rgba.png", "rotated.jpg"]
    assert leftovers(out) == expected  # nothing half-written, no temp files

    def opened(name: str) -> Image.Image:
        return Image.open(out / name)

    assert (opened("photo.png").mode, opened("photo.png").size) == ("RGB", (64, 64))
    assert opened("grey.png").mode == "L" and opened("palette.png").mode == "RGB"
    assert opened("cmyk.jpg").mode == "RGB" and "CMYK converted to RGB" in result.output
    rgba = np.asarray(opened("rgba.png"))
    assert rgba.shape == (64, 64, 4)
    expected_alpha = np.asarray(Image.open(src / "rgba.png").getchannel("A").resize((64, 64), Image.Resampling.BICUBIC))
    assert np.abs(rgba[..., 3].astype(int) - expected_alpha).max() <= 1
    rotated = np.asarray(opened("rotated.jpg"))
    assert rotated.shape == (48, 32, 3)  # 16x24 as displayed, upscaled x2
    assert rotated[:12, -12:].mean() > 200 and rotated[:12, :12].mean() < 120
    deep = read_image(out / "deep.png")
    assert deep.rgb.dtype == np.uint16 and deep.rgb.shape == (48, 64, 3)
    assert np.any(deep.rgb % 257 != 0)  # real 16-bit values, not 8-bit scaled up


def test_failure_mid_write_leaves_nothing(tmp_path: Path, checkpoint: Path) -> None:
    model = load_student(checkpoint)
    calls = 0

    def flaky(x: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise MetaSRError("model crashed")
        return model(x)

    Image.fromarray(_photo(64)).save(tmp_path / "a.png")
    batch = Batch(tmp_path / "o", Upscaler("flaky", 2, flaky, (32, 32), 8, static=False))
    (tmp_path / "o").mkdir()
    result = batch.upscale_file(tmp_path / "a.png")
    assert (result.status, result.message) == ("failed", "model crashed")
    assert calls == 3 and leftovers(tmp_path / "o") == []


def test_compare_writes_side_by_side(tmp_path: Path, checkpoint: Path) -> None:
    Image.fromarray(_photo(40)).save(tmp_path / "a.png")
    args = [str(tmp_path / "a.png"), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "o"), "--compare"]
    result = CliRunner().invoke(upscale_command, args)
    assert result.exit_code == 0, result.output
    picture = Image.open(tmp_path / "o" / "a_compare.png")
    assert picture.size[0] > 2 * 80 and picture.size[1] > 80


def test_strength_is_passed_to_the_model(tmp_path: Path) -> None:
    """A MetaSR with random FiLM heads (the bundled wrapped student ignores strength): 0 and 1 differ."""
    checkpoint = tmp_path / "metasr.safetensors"
    save_metasr(responsive_metasr(), checkpoint)
    Image.fromarray(_photo(64)).save(tmp_path / "a.png")
    outputs = {}
    for strength in ("0", "1"):
        out = tmp_path / f"s{strength}"
        args = [str(tmp_path / "a.png"), "--checkpoint", str(checkpoint), "-o", str(out), "--strength", strength]
        result = CliRunner().invoke(upscale_command, args)
        assert result.exit_code == 0, result.output
        outputs[strength] = np.asarray(Image.open(out / "a.png")).astype(np.float32) / 255.0
    assert y_psnr(outputs["0"], outputs["1"]) < 35.0
    result = CliRunner().invoke(upscale_command, [*args[:-1], "1.5"])
    assert result.exit_code == 2 and "--strength" in result.output


def test_same_output_name_and_bad_options(tmp_path: Path, checkpoint: Path) -> None:
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        Image.fromarray(_photo(16)).save(tmp_path / folder / "a.png")
    args = [str(tmp_path / "x" / "a.png"), str(tmp_path / "y" / "a.png"), str(tmp_path / "missing.png")]
    result = CliRunner().invoke(upscale_command, [*args, "--checkpoint", str(checkpoint), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "is already the output of" in result.output and "missing.png does not exist" in result.output
    assert leftovers(tmp_path / "o") == ["a.png"]
    both = ["--checkpoint", str(checkpoint), "--artifact", "m.onnx", "-o", str(tmp_path / "o"), str(tmp_path)]
    result = CliRunner().invoke(upscale_command, both)
    assert result.exit_code == 1 and "not both" in result.output
    result = CliRunner().invoke(upscale_command, [str(tmp_path), "--checkpoint", str(checkpoint), "--scale", "4"])
    assert result.exit_code == 2 and "--out" in result.output


def _synthetic_video(path: Path, frames: int = 6) -> None:
    """``frames`` frames of 32x48 H.264 at 12 fps with a mono AAC sine track."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(frames):
            pixels = np.full((32, 48, 3), 40 * i, np.uint8)
            pixels[4:12, 4 + 4 * i : 12 + 4 * i] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = (0.3 * np.sin(np.arange(16000 * frames // 12) / 10)).astype(np.float32)[None]
        for start in range(0, samples.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, start : start + 1024]), format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts = 16000, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))


def test_video_keeps_frames_rate_and_audio(tmp_path: Path, checkpoint: Path) -> None:
    _synthetic_video(tmp_path / "clip.mp4")
    out = tmp_path / "o"
    result = CliRunner().invoke(
        upscale_command, [str(tmp_path / "clip.mp4"), "--checkpoint", str(checkpoint), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert leftovers(out) == ["clip.mp4"]
    with av.open(str(out / "clip.mp4")) as container:
        video = container.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 96, 64)
        assert video.average_rate == Fraction(12)
        assert len(container.streams.audio) == 1
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_route_stabilizer_hysteresis() -> None:
    stab = RouteStabilizer(hold=3, margin=0.5)
    assert stab.update({"a": 1.0, "b": 0.9}) == "a"
    assert [stab.update({"a": 1.0, "b": 1.2}) for _ in range(2)] == ["a", "a"]  # small lead, not yet K frames
    assert stab.update({"a": 1.0, "b": 0.5}) == "a"  # a wins again: b's streak resets
    assert [stab.update({"a": 1.0, "b": 1.2}) for _ in range(3)] == ["a", "a", "b"]  # K=3 frames in a row
    assert stab.update({"a": 2.0, "b": 1.0}) == "a"  # beats the current route by the margin: switch at once
    assert stab.update({"c": 0.1}) == "c"  # the current route disappeared
    with pytest.raises(ValueError):
        stab.update({})


def test_exif_orientation_matches_pillow(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (10, 14, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG", exif=exif.tobytes())
        path = tmp_path / f"o{orientation}.png"
        path.write_bytes(buffer.getvalue())
        expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        np.testing.assert_array_equal(read_image(path).rgb, expected)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_png_colour_key_becomes_alpha(tmp_path: Path, checkpoint: Path, mode: str) -> None:
    """tRNS in an RGB or greyscale PNG (one transparent colour) is read as alpha and kept in the output."""
    pixels = np.asarray(Image.fromarray(_photo(16)).convert(mode)).copy()
    key = (1, 2, 3) if mode == "RGB" else int(np.setdiff1d(np.arange(256), pixels)[0])  # not elsewhere in the photo
    pixels[4:12, 4:12] = key
    Image.fromarray(pixels).save(tmp_path / "key.png", transparency=key)
    decoded = read_image(tmp_path / "key.png")
    transparent = np.zeros((16, 16), bool)
    transparent[4:12, 4:12] = True
    assert decoded.grey == (mode == "L") and decoded.alpha is not None
    np.testing.assert_array_equal(decoded.alpha, np.where(transparent, 0, 255))
    result = CliRunner().invoke(
        upscale_command, [str(tmp_path / "key.png"), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "o" / "key.png") as out:
        assert out.mode == ("RGBA" if mode == "RGB" else "LA") and out.size == (32, 32)
        alpha = np.asarray(out.getchannel("A"))
    assert alpha[10:22, 10:22].max() == 0 and alpha[:4].min() == 255


@pytest.mark.parametrize(
    ("height", "width", "channels", "mcu_rows"),
    [(150, 45, 3, 1), (77, 45, 1, 1), (40, 33, 3, 1), (300, 301, 3, STRIP_MCU_ROWS), (90, 17, 1, 3)],
)
def test_jpeg_stream_is_the_whole_image_encode(height: int, width: int, channels: int, mcu_rows: int) -> None:
    """Strips stitched with RST0..RST7 are byte for byte Pillow's whole-image encode with that restart interval,
    and decode to the same pixels as the unstreamed encode (no restart markers) the writer used before."""
    rng = np.random.default_rng(height)
    ramp = np.linspace(0, 220, height)[:, None] + rng.integers(0, 30, (height, width))
    pixels = np.stack([ramp, ramp[::-1], 250 - ramp], axis=2)[..., :channels].clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    writer = JpegStreamWriter(buffer, width, height, channels, 95, icc=b"profile", strip_mcu_rows=mcu_rows)
    for i in range(0, height, 7):
        writer.write(pixels[i : i + 7])
    writer.close()
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    mcu = 8 if channels == 1 else 16
    interval = -(-width // mcu) * mcu_rows
    whole, before = io.BytesIO(), io.BytesIO()
    image.save(whole, "JPEG", quality=95, icc_profile=b"profile", subsampling="4:2:0", restart_marker_blocks=interval)
    image.save(before, "JPEG", quality=95, icc_profile=b"profile")
    assert buffer.getvalue() == whole.getvalue()
    assert buffer.getvalue().count(b"\xff\xd0") == (-(-height // (mcu * mcu_rows)) + 6) // 8  # RST0 every 8th join
    with Image.open(buffer) as streamed, Image.open(before) as unstreamed:
        assert streamed.info["icc_profile"] == b"profile"
        np.testing.assert_array_equal(np.asarray(streamed), np.asarray(unstreamed))
