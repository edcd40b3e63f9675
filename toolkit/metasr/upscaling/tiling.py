"""Seamless tiled upscaling in bounded memory: overlapping tiles, feathered blending, row strips.

Tiles along an axis are spread evenly so that each has exactly the tile size. A tile the model cannot
take as is gets reflection-padded and the output cropped: up to the exact size of a static-shape
model, otherwise up to whole metadata cells (MetaSR describes the frame on 32x32 cells). In each
overlap the blend weight is 0 for ``margin`` pixels next to the cut (where zero padding at the tile
border disturbs the model), then ramps linearly to 1; weights are normalised per axis, so they sum
to 1 everywhere.
Rows are processed one tile row (strip) at a time and finished output rows are yielded as soon
as no later strip can touch them, so memory is bounded by a strip, not by the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from metasr.exporter.stages import MIN_CELLS
from metasr.metadata import CELL

Span = tuple[int, int]
ModelFn = Callable[[torch.Tensor], torch.Tensor]


def axis_spans(length: int, tile: int, overlap: int) -> list[Span]:
    """Evenly spread [start, end) spans of exactly ``tile`` pixels covering ``length``, overlapping >= ``overlap``."""
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    return [(s, s + tile) for s in starts]


def axis_weights(spans: list[Span], scale: int, margin: int) -> list[np.ndarray]:
    """Per-span blend weights in output pixels, normalised so they sum to 1 at every output pixel."""
    length = spans[-1][1] * scale
    raw = []
    for i, (start, end) in enumerate(spans):
        pos = np.arange((end - start) * scale, dtype=np.float64) + 0.5
        w = np.ones_like(pos)
        if i > 0:
            w = np.minimum(w, _ramp(pos, (spans[i - 1][1] - start) * scale, margin * scale))
        if i + 1 < len(spans):
            w = np.minimum(w, _ramp(pos[::-1], (end - spans[i + 1][0]) * scale, margin * scale))
        raw.append(w)
    total = np.zeros(length)
    for (start, end), w in zip(spans, raw, strict=True):
        total[start * scale : end * scale] += w
    return [(w / total[s * scale : e * scale]).astype(np.float32) for (s, e), w in zip(spans, raw, strict=True)]


def _ramp(dist: np.ndarray, overlap: int, margin: int) -> np.ndarray:
    """0 within ``margin`` of the cut, then linear up to 1 at the far side of the overlap."""
    margin = min(margin, (overlap - 1) // 2)
    return np.clip((dist - margin) / max(overlap - 2 * margin, 1), 0.0, 1.0)


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one image go (input pixels) and how their outputs are blended."""

    height: int
    width: int
    scale: int
    rows: list[Span]
    cols: list[Span]
    row_weights: list[np.ndarray]
    col_weights: list[np.ndarray]
    model_size: tuple[int, int] | None

    @property
    def count(self) -> int:
        return len(self.rows) * len(self.cols)


def plan_tiles(
    height: int,
    width: int,
    scale: int,
    tile: tuple[int, int],
    overlap: int,
    static: bool = False,
) -> TilePlan:
    """Plan tiles of ``tile`` (H, W) input pixels; ``static`` pads small images up to exactly that size."""
    if overlap < 0 or 2 * overlap >= min(tile):
        raise ValueError(f"overlap {overlap} must be >= 0 and under half the tile size {tile}")
    rows, cols = axis_spans(height, tile[0], overlap), axis_spans(width, tile[1], overlap)
    margin = overlap // 4
    return TilePlan(
        height,
        width,
        scale,
        rows,
        cols,
        axis_weights(rows, scale, margin),
        axis_weights(cols, scale, margin),
        tile if static else None,
    )


def upscale_strips(
    image: np.ndarray,
    plan: TilePlan,
    model: ModelFn,
    on_tile: Callable[[], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, rows)`` of the upscaled image top to bottom, float32 (rows, sW, 3) in [0, 1].

    ``image`` is (H, W, 3) uint8 or uint16 and is converted to float one tile at a time.
    """
    s = plan.scale
    carry = np.zeros((0, plan.width * s, 3), np.float32)
    for k, ((y0, y1), wy) in enumerate(zip(plan.rows, plan.row_weights, strict=True)):
        acc = np.zeros(((y1 - y0) * s, plan.width * s, 3), np.float32)
        acc[: len(carry)] = carry
        for (x0, x1), wx in zip(plan.cols, plan.col_weights, strict=True):
            out = _run_tile(image[y0:y1, x0:x1], model, plan.model_size)
            acc[:, x0 * s : x1 * s] += out * wy[:, None, None] * wx[None, :, None]
            if on_tile is not None:
                on_tile()
        done = len(acc) if k + 1 == len(plan.rows) else (plan.rows[k + 1][0] - y0) * s
        yield y0 * s, acc[:done]
        carry = acc[done:].copy()


def whole_cells(side: int) -> int:
    """``side`` rounded up to whole metadata cells, at least the smallest input the exported graphs take."""
    return max(MIN_CELLS, math.ceil(side / CELL)) * CELL


def _run_tile(tile: np.ndarray, model: ModelFn, model_size: tuple[int, int] | None) -> np.ndarray:
    """Upscale one (h, w, 3) integer tile; reflect-pad to ``model_size`` (or whole cells) first and crop after."""
    h, w = tile.shape[:2]
    peak = float(np.iinfo(tile.dtype).max)
    x = tile.astype(np.float32) / peak
    size = model_size or (whole_cells(h), whole_cells(w))
    if (h, w) != size:
        x = np.pad(x, ((0, size[0] - h), (0, size[1] - w), (0, 0)), mode="reflect")
    with torch.inference_mode():
        y = model(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None])
    s = y.shape[-1] // x.shape[1]
    return y[0, :, : h * s, : w * s].float().numpy().transpose(1, 2, 0)
