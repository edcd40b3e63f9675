"""The --compare picture: bicubic | model output (| routing heat-map), labelled, side by side.

Panels are a 1:1 crop of at most ``WINDOW`` output pixels around the centre, so SR detail stays
visible and the picture stays small whatever the image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WINDOW = 768
LABEL_HEIGHT = 28
GAP = 8


@dataclass(frozen=True)
class Window:
    """A crop of the output image, aligned to the scale so it maps to whole input pixels."""

    top: int
    left: int
    height: int
    width: int
    scale: int

    @classmethod
    def centred(cls, out_height: int, out_width: int, scale: int, size: int = WINDOW) -> Window:
        h, w = min(out_height, size), min(out_width, size)
        top = (out_height - h) // 2 // scale * scale
        left = (out_width - w) // 2 // scale * scale
        return cls(top, left, h // scale * scale, w // scale * scale, scale)


class CropTap:
    """Collects the window's pixels from output row blocks as they stream past."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.pixels = np.zeros((window.height, window.width, 3), np.float32)

    def take(self, row0: int, rgb: np.ndarray) -> None:
        w = self.window
        lo, hi = max(row0, w.top), min(row0 + len(rgb), w.top + w.height)
        if lo < hi:
            self.pixels[lo - w.top : hi - w.top] = rgb[lo - row0 : hi - row0, w.left : w.left + w.width]


def bicubic_panel(rgb: np.ndarray, window: Window) -> Image.Image:
    """Bicubic upscale of the input pixels under ``window`` (rgb: (H, W, 3) uint8 or uint16)."""
    s = window.scale
    rows = slice(window.top // s, (window.top + window.height) // s)
    cols = slice(window.left // s, (window.left + window.width) // s)
    img = Image.fromarray(_to_uint8(rgb[rows, cols].astype(np.float32) / np.iinfo(rgb.dtype).max))
    return img.resize((window.width, window.height), Image.Resampling.BICUBIC)


def side_by_side(
    bicubic: Image.Image,
    output: np.ndarray,
    output_label: str,
    heatmap: Image.Image | None = None,
) -> Image.Image:
    """Label and join the panels; ``heatmap`` (the routing map, when there is one) becomes a third panel."""
    panels = [("bicubic", bicubic), (output_label, Image.fromarray(_to_uint8(output)))]
    if heatmap is not None:
        panels.append(("routing", heatmap.convert("RGB").resize(bicubic.size, Image.Resampling.NEAREST)))
    w, h = bicubic.size
    canvas = Image.new("RGB", (len(panels) * w + (len(panels) - 1) * GAP, h + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=16)
    for i, (label, panel) in enumerate(panels):
        x = i * (w + GAP)
        canvas.paste(panel, (x, LABEL_HEIGHT))
        draw.text((x + 6, 5), label, fill="black", font=font)
    return canvas


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255).astype(np.uint8)
