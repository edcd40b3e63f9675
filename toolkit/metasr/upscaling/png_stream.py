"""A streaming PNG encoder: rows go in block by block, so an image never has to be whole in memory.

Each row gets the PNG filter (None, Sub, Up, Average, Paeth) with the smallest sum of absolute
values, the usual libpng heuristic, computed with numpy over a block of rows at a time.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA
FILTER_ROWS = 64  # rows filtered at once: bounds the int16 temporaries
IDAT_BYTES = 1 << 20


class PngStreamWriter:
    """Write a PNG of known size to ``file`` from (rows, W, C) uint8 or uint16 blocks, top to bottom."""

    def __init__(
        self, file: BinaryIO, width: int, height: int, channels: int, bitdepth: int, icc: bytes | None = None
    ) -> None:
        self.file, self.width, self.height, self.channels = file, width, height, channels
        self.dtype = np.dtype(">u2") if bitdepth == 16 else np.dtype(np.uint8)
        self.bpp = channels * self.dtype.itemsize
        self.rows_written = 0
        self._prev = np.zeros(width * self.bpp, np.uint8)
        self._zip = zlib.compressobj(6)
        self._pending = bytearray()
        file.write(SIGNATURE)
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bitdepth, COLOUR_TYPES[channels], 0, 0, 0))
        if icc:
            self._chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (rows, W, C) of this image's width, channels and bit depth."""
        if block.shape[1:] != (self.width, self.channels) or self.rows_written + len(block) > self.height:
            raise ValueError(f"block {block.shape} does not fit a {self.width}x{self.height}x{self.channels} PNG")
        raw = np.ascontiguousarray(block, dtype=self.dtype).view(np.uint8).reshape(len(block), -1)
        for i in range(0, len(raw), FILTER_ROWS):
            part = raw[i : i + FILTER_ROWS]
            prev = np.concatenate([self._prev[None], part[:-1]])
            self._pending += _filter_rows(part, prev, self.bpp).tobytes()
            self._prev = part[-1].copy()
            if len(self._pending) >= IDAT_BYTES:
                self._flush(self._zip.compress(bytes(self._pending)))
                self._pending.clear()
        self.rows_written += len(block)

    def close(self) -> None:
        """Finish the stream; raises if fewer rows than the header's height were written."""
        if self.rows_written != self.height:
            raise ValueError(f"PNG got {self.rows_written} of {self.height} rows")
        self._flush(self._zip.compress(bytes(self._pending)) + self._zip.flush())
        self._chunk(b"IEND", b"")

    def _flush(self, data: bytes) -> None:
        if data:
            self._chunk(b"IDAT", data)

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self.file.write(struct.pack(">I", len(data)) + kind + data)
        self.file.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _filter_rows(rows: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """Prefix each row with its best filter type and the filtered bytes: (n, 1 + row_bytes) uint8."""
    x = rows.astype(np.int16)
    b = prev.astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    c = np.zeros_like(x)
    c[:, bpp:] = b[:, :-bpp]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]).astype(np.uint8)
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    best = cost.argmin(axis=0)
    chosen = candidates[best, np.arange(len(rows))]
    return np.concatenate([best.astype(np.uint8)[:, None], chosen], axis=1)
