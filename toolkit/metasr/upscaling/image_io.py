"""Reading and writing the images metasr-upscale handles: PNG and JPEG, 8 and 16 bit, alpha, greyscale.

Pixels stay integers (uint8 or uint16) in memory; PNG and JPEG output are streamed row block by row block.
16-bit PNGs are decoded with FFmpeg (PyAV) because Pillow reduces 16-bit colour to 8 bit.
CMYK JPEGs are converted to RGB (Pillow's plain conversion, no ICC colour management) with a note.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from PIL import Image

from metasr.errors import MetaSRError
from metasr.images import LUMA
from metasr.upscaling.jpeg_stream import MAX_SIDE, JpegStreamWriter
from metasr.upscaling.png_stream import PngStreamWriter

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
MIN_SIDE = 8
JPEG_QUALITY = 95
CHUNK_ROWS = 64  # rows converted at once: bounds the float temporaries
EXIF_ORIENTATION = 0x0112
_LUMA = np.array(LUMA, np.float32)
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zlib.error, struct.error, Image.DecompressionBombError)


@dataclass
class DecodedImage:
    """An input image: RGB pixels (greyscale repeated to RGB), optional alpha, and how to write it back."""

    rgb: np.ndarray  # (H, W, 3) uint8 or uint16
    alpha: np.ndarray | None  # (H, W), same dtype
    grey: bool
    format: str  # "PNG" or "JPEG"
    icc: bytes | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[0], self.rgb.shape[1]

    @property
    def channels(self) -> int:
        """Channels written out: 1-4 for grey, grey+alpha, RGB, RGBA."""
        return (1 if self.grey else 3) + (self.alpha is not None)


def read_image(path: Path) -> DecodedImage:
    """Decode ``path`` with EXIF orientation applied; damaged, empty or too small files raise MetaSRError."""
    if path.stat().st_size == 0:
        raise MetaSRError(f"{path} is empty (0 bytes)")
    try:
        with Image.open(path) as img:
            if img.format not in ("PNG", "JPEG"):
                raise MetaSRError(f"{path} is {img.format}, not PNG or JPEG; convert it first")
            orientation = img.getexif().get(EXIF_ORIENTATION, 1)
            if img.format == "PNG" and _png_bitdepth(path) == 16:
                decoded = _read_png16(path, img.info.get("icc_profile"))
            else:
                decoded = _from_pil(img)
    except DECODE_ERRORS + (av.error.FFmpegError,) as exc:
        raise MetaSRError(f"cannot read {path}: {exc}; the file is damaged or not an image") from exc
    decoded.rgb = _orient(decoded.rgb, orientation)
    decoded.alpha = None if decoded.alpha is None else _orient(decoded.alpha, orientation)
    h, w = decoded.size
    if min(h, w) < MIN_SIDE:
        raise MetaSRError(f"{path} is {w}x{h} pixels, too small; the minimum is {MIN_SIDE}x{MIN_SIDE}")
    return decoded


def _png_bitdepth(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 else 8


def _from_pil(img: Image.Image) -> DecodedImage:
    """8-bit images: every Pillow mode a PNG or JPEG decodes to (the ICC profile is dropped for CMYK).

    A transparency key (PNG tRNS: a palette's alphas, or the one grey level or RGB colour that is
    transparent) becomes an alpha channel.
    """
    fmt, icc, notes = img.format or "PNG", img.info.get("icc_profile"), []
    mode = img.mode
    if mode == "P":
        mode = "RGBA" if "transparency" in img.info else "RGB"
    elif mode in ("1", "L", "RGB") and "transparency" in img.info:
        mode = "RGBA" if mode == "RGB" else "LA"
    elif mode == "CMYK":
        notes.append("CMYK converted to RGB without colour management")
        mode, icc = "RGB", None
    elif mode not in ("1", "L", "LA", "RGBA"):
        mode = "RGBA" if mode[-1] in "Aa" else "RGB"
    arr = np.asarray(img.convert("L" if mode == "1" else mode))
    if arr.ndim == 2:
        return DecodedImage(np.repeat(arr[..., None], 3, axis=2), None, True, fmt, icc, notes)
    grey = mode == "LA"
    rgb = np.repeat(arr[..., :1], 3, axis=2) if grey else np.ascontiguousarray(arr[..., :3])
    alpha = np.ascontiguousarray(arr[..., -1]) if mode in ("LA", "RGBA") else None
    return DecodedImage(rgb, alpha, grey, fmt, icc, notes)


def _read_png16(path: Path, icc: bytes | None) -> DecodedImage:
    """16-bit PNG (grey, grey+alpha, RGB, RGBA) via FFmpeg, which keeps all 16 bits."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0), None)
        if frame is None:
            raise ValueError("no image data")
        name = frame.format.name
        arr = frame.to_ndarray(format="rgba64le" if name.startswith(("ya", "rgba")) else "rgb48le")
    alpha = np.ascontiguousarray(arr[..., 3]) if arr.shape[2] == 4 else None
    grey = name.startswith(("gray", "ya"))
    return DecodedImage(np.ascontiguousarray(arr[..., :3]), alpha, grey, "PNG", icc)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) the way ``PIL.ImageOps.exif_transpose`` does."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def output_name(src: Path, decoded_format: str) -> str:
    """The input's stem with .jpg for JPEG inputs, .png for everything else."""
    return src.stem + (".jpg" if decoded_format == "JPEG" else ".png")


class ImageWriter:
    """Turns upscaled float RGB row blocks into the output file: grey and alpha restored, 8 or 16 bit.

    Both formats are streamed: PNG by :class:`PngStreamWriter`, JPEG (quality 95, 4:2:0) by :class:`JpegStreamWriter`.
    """

    def __init__(self, file: BinaryIO, decoded: DecodedImage, scale: int) -> None:
        self.decoded, self.scale = decoded, scale
        self.dtype = decoded.rgb.dtype
        h, w = decoded.size
        self.height, self.width = h * scale, w * scale
        self._out: PngStreamWriter | JpegStreamWriter
        if decoded.format == "JPEG":
            if max(self.height, self.width) > MAX_SIDE:
                raise MetaSRError(
                    f"the {self.width}x{self.height} output exceeds JPEG's {MAX_SIDE} pixels a side; "
                    "convert the input to PNG first"
                )
            self._out = JpegStreamWriter(file, self.width, self.height, decoded.channels, JPEG_QUALITY, decoded.icc)
        else:
            bits = 16 if self.dtype == np.uint16 else 8
            self._out = PngStreamWriter(file, self.width, self.height, decoded.channels, bits, decoded.icc)

    def write(self, row0: int, rgb: np.ndarray) -> None:
        """Add output rows ``row0 .. row0 + len(rgb)`` given as float RGB in [0, 1]."""
        for i in range(0, len(rgb), CHUNK_ROWS):
            self._write_chunk(row0 + i, rgb[i : i + CHUNK_ROWS])

    def _write_chunk(self, row0: int, rgb: np.ndarray) -> None:
        peak = float(np.iinfo(self.dtype).max)
        pixels = (rgb @ _LUMA)[..., None] if self.decoded.grey else rgb
        block = np.rint(np.clip(pixels, 0.0, 1.0) * peak).astype(self.dtype)
        if self.decoded.alpha is not None:
            block = np.concatenate([block, self._alpha_rows(row0, len(rgb))[..., None]], axis=2)
        self._out.write(block)

    def close(self) -> None:
        """Finish the file."""
        self._out.close()

    def _alpha_rows(self, row0: int, rows: int) -> np.ndarray:
        """Bicubic upscale of the alpha rows ``row0 .. row0 + rows``, reading only the input rows they need."""
        alpha, s = self.decoded.alpha, self.scale
        h, w = alpha.shape
        top, bottom = max(0, row0 // s - 3), min(h, -(-(row0 + rows) // s) + 3)
        strip = Image.fromarray(alpha[top:bottom].astype(np.float32), "F")
        box = (0.0, row0 / s - top, float(w), (row0 + rows) / s - top)
        out = np.asarray(strip.resize((self.width, rows), Image.Resampling.BICUBIC, box=box))
        return np.rint(np.clip(out, 0, np.iinfo(self.dtype).max)).astype(self.dtype)
