"""A streaming baseline-JPEG encoder: rows go in block by block, so an image never has to be whole in memory.

Pillow (libjpeg) encodes whole images only, so each strip of whole MCU rows is encoded as its own JPEG,
with the same quality, subsampling and standard Huffman tables, and a restart interval of exactly one
strip. A restart marker resets the DC predictors, so the strips' entropy-coded data joined by
RST0..RST7 (cycling) under the first strip's header, its SOF patched to the full height, is the file
libjpeg writes for the whole image with that restart interval, byte for byte; it decodes to the same
pixels as one without restart markers.
"""

from __future__ import annotations

import io
import math
import struct
from typing import BinaryIO

import numpy as np
from PIL import Image

SOI, EOI, SOS, SOF0 = b"\xff\xd8", b"\xff\xd9", b"\xff\xda", b"\xff\xc0"
RST0 = 0xD0
MAX_SIDE = 65535  # JPEG stores width and height in 16 bits
MAX_INTERVAL = 65535  # the restart interval (MCUs) is 16 bits too
STRIP_MCU_ROWS = 8  # 128 rows a strip in colour (4:2:0), 64 in greyscale


class JpegStreamWriter:
    """Write a baseline JPEG of known size to ``file`` from (rows, W, C) uint8 blocks (C = 1 or 3), top to bottom.

    Colour is 4:2:0 (Pillow's default), so strips are multiples of 16 rows; greyscale, of 8 rows.
    """

    def __init__(
        self,
        file: BinaryIO,
        width: int,
        height: int,
        channels: int,
        quality: int,
        icc: bytes | None = None,
        strip_mcu_rows: int = STRIP_MCU_ROWS,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"a JPEG has 1 or 3 channels, not {channels}")
        if not 1 <= min(width, height) <= max(width, height) <= MAX_SIDE:
            raise ValueError(f"{width}x{height} is not a JPEG size (1 to {MAX_SIDE} pixels a side)")
        self.file, self.width, self.height, self.channels = file, width, height, channels
        self.options = {"quality": quality, "subsampling": "4:2:0", "icc_profile": icc}
        mcu = 8 if channels == 1 else 16
        mcus_wide = math.ceil(width / mcu)
        mcu_rows = min(strip_mcu_rows, MAX_INTERVAL // mcus_wide)  # at least 7: widths stop at 65535
        self.strip_rows = mcu * mcu_rows
        self.options["restart_marker_blocks"] = mcus_wide * mcu_rows
        self.rows_written = 0
        self._strips = 0
        self._header = b""
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` (rows, W, C) of this image's width and channels."""
        fits = block.shape[1:] == (self.width, self.channels) and self.rows_written + len(block) <= self.height
        if not fits or block.dtype != np.uint8:
            raise ValueError(f"block {block.shape} does not fit a {self.width}x{self.height}x{self.channels} JPEG")
        self.rows_written += len(block)
        self._pending.append(block)
        self._pending_rows += len(block)
        while self._pending_rows >= self.strip_rows or (self._pending and self.rows_written == self.height):
            self._encode_strip()

    def close(self) -> None:
        """Finish the file; raises if fewer rows than the image's height were written."""
        if self.rows_written != self.height:
            raise ValueError(f"JPEG got {self.rows_written} of {self.height} rows")
        self.file.write(EOI)

    def _encode_strip(self) -> None:
        rows = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        strip, rest = rows[: self.strip_rows], rows[self.strip_rows :]
        self._pending, self._pending_rows = ([rest] if len(rest) else []), len(rest)
        buffer = io.BytesIO()
        pixels = strip[..., 0] if self.channels == 1 else strip
        Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "JPEG", **self.options)
        header, data = split_jpeg(buffer.getvalue())
        header = with_height(header, self.height)
        if self._strips == 0:
            self._header = header
            self.file.write(header)
        else:
            if header != self._header:  # other tables would decode this strip wrongly
                raise ValueError("Pillow encoded a JPEG strip with other tables than the first")
            self.file.write(bytes((0xFF, RST0 + (self._strips - 1) % 8)))
        self.file.write(data)
        self._strips += 1


def split_jpeg(jpeg: bytes) -> tuple[bytes, bytes]:
    """(header up to and including SOS, entropy-coded data) of a single-scan JPEG ending in EOI."""
    if jpeg[:2] != SOI or jpeg[-2:] != EOI:
        raise ValueError("not a complete JPEG")
    pos = 2
    while True:
        marker = jpeg[pos : pos + 2]
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        pos += 2 + length
        if marker == SOS:
            return jpeg[:pos], jpeg[pos:-2]


def with_height(header: bytes, height: int) -> bytes:
    """``header`` with the frame height in its SOF0 segment set to ``height``."""
    pos = 2
    while header[pos : pos + 2] != SOF0:
        (length,) = struct.unpack(">H", header[pos + 2 : pos + 4])
        pos += 2 + length
    at = pos + 5  # marker (2), length (2), precision (1), then the height
    return header[:at] + struct.pack(">H", height) + header[at + 2 :]
