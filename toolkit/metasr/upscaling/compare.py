"""The --compare picture: bicubic | model output (| routing heat-map), labelled, side by side.

Panels are a 1:1 crop of at most ``WINDOW`` output pixels around the centre, so SR detail stays
visible and the picture stays small whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from metasr.images import LUMA

WINDOW = 768
LABEL_HEIGHT = 28
GAP = 8
# one colour per expert (up to 16: metasr-train route's limit), distinct at a glance
PALETTE = (
    np.array(
        [
            [230, 25, 75],
            [60, 180, 75],
            [0, 130, 200],
            [255, 225, 25],
            [145, 30, 180],
            [70, 240, 240],
            [245, 130, 48],
            [240, 50, 230],
            [210, 245, 60],
            [250, 190, 212],
            [0, 128, 128],
            [220, 190, 255],
            [170, 110, 40],
            [128, 0, 0],
            [128, 128, 0],
            [0, 0, 128],
        ],
        np.float32,
    )
    / 255.0
)


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


def route_colours(
    route: Callable[[torch.Tensor], torch.Tensor], tile: int, experts: int, scale: int
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A model-like function: an input tile -> its routing map at output size, each routing tile painted in its
    expert's colour (``tile`` 0: one choice per input tile); run through the same tiler as the output, overlaps
    blend exactly as the output's do."""
    if experts > len(PALETTE):
        raise ValueError(f"{experts} experts but only {len(PALETTE)} routing colours")
    palette = torch.from_numpy(PALETTE)

    def paint(image: torch.Tensor) -> torch.Tensor:
        routes = route(image)[0].long()  # (h / tile, w / tile)
        cells = palette[routes].permute(2, 0, 1)  # (3, h / tile, w / tile)
        height, width = image.shape[-2] * scale, image.shape[-1] * scale
        rows, cols = (tile * scale, tile * scale) if tile else (height, width)
        full = cells.repeat_interleave(rows, dim=1).repeat_interleave(cols, dim=2)
        return full[None, :, :height, :width]

    return paint


def tinted(output: np.ndarray, colours: np.ndarray, weight: float = 0.55) -> Image.Image:
    """The output's luma under the routing colours, so each choice can be read against the content."""
    luma = output.clip(0.0, 1.0) @ np.array(LUMA, np.float32)
    return Image.fromarray(_to_uint8(weight * colours + (1.0 - weight) * luma[..., None]))


def legend(panel: Image.Image, experts: int) -> Image.Image:
    """``panel`` with a key of the experts' colours in its top-left corner."""
    out = panel.copy()
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=12)
    for k in range(experts):
        x, y = 6 + 40 * (k % 8), 6 + 20 * (k // 8)
        draw.rectangle((x, y, x + 36, y + 16), fill="white")
        draw.rectangle((x + 2, y + 2, x + 14, y + 14), fill=tuple(int(c * 255) for c in PALETTE[k]))
        draw.text((x + 18, y + 1), str(k), fill="black", font=font)
    return out


def side_by_side(
    bicubic: Image.Image,
    output: np.ndarray,
    output_label: str,
    heatmap: Image.Image | None = None,
) -> Image.Image:
    """Label and join the panels; ``heatmap`` (the routing map, when there is one) becomes a third panel."""
    panels = [("bicubic", bicubic), (output_label, Image.fromarray(_to_uint8(output)))]
    if heatmap is not None:
        panels.append(
            ("routing (expert per tile)", heatmap.convert("RGB").resize(bicubic.size, Image.Resampling.NEAREST))
        )
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
