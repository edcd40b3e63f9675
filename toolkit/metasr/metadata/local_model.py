"""Optional sources computed by a user's own model (depth, segmentation, semantic embedding).

No such weights ship with MetaSR; a user who has them exports the model to ONNX and passes its local
path. The model runs in ONNX Runtime on the host (no pickle is ever loaded), so these sources are
teacher-grade only: the teacher and the orchestrator use them, and the device orchestrator learns to
work without them (metadata dropout). Contract for the ONNX model: one input, NCHW float32 RGB in
[0, 1] at any size (or the fixed size the model declares), first output (N, C, H', W') or (N, C).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

from metasr.errors import MetaSRError
from metasr.metadata.base import CELL, MetadataSource, cell_grid, cell_pool, register

DEPTH_SPREAD_GAIN = 4.0  # per-cell depth std of 0.25 (of the frame's depth range) maps to 1


class LocalModelSource(MetadataSource):
    """A source whose per-cell metadata comes from a local ONNX model; subclasses map its output to cells."""

    ships_device = False

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise MetaSRError(f"{self.name} model {path} does not exist; pass the path of an exported .onnx model")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types for unreadable models
            raise MetaSRError(f"cannot load {self.name} model {path} ({exc}); pass a valid ONNX file") from exc
        self.input = self.session.get_inputs()[0]
        self.dims = self._cells(self._run(torch.zeros(1, 3, CELL, CELL))).shape[1]

    def teacher(self, image: torch.Tensor) -> torch.Tensor:
        rows, cols = cell_grid(image.shape[2], image.shape[3])
        out = self._run(image[:, :, : rows * CELL, : cols * CELL])
        if out.dim() == 2:
            return self._cells(out)[:, :, :1, :1].expand(-1, -1, rows, cols).to(image)
        out = F.interpolate(out, size=(rows * CELL, cols * CELL), mode="bilinear", align_corners=False)
        return self._cells(out).to(image)

    def _run(self, image: torch.Tensor) -> torch.Tensor:
        h, w = self.input.shape[2:]
        if isinstance(h, int) and isinstance(w, int):
            image = F.interpolate(image, size=(h, w), mode="bilinear", align_corners=False)
        feeds = {self.input.name: image.float().cpu().numpy().astype(np.float32)}
        return torch.from_numpy(self.session.run(None, feeds)[0]).float()

    def _cells(self, out: torch.Tensor) -> torch.Tensor:
        """Model output (N, C, H, W) at whole-cell size, or (N, C) -> per-cell metadata (N, dims, h, w)."""
        raise NotImplementedError


@register
class DepthSource(LocalModelSource):
    """Monocular depth: per cell, the mean depth (normalised per frame) and how much it varies."""

    name = "depth"
    dims = 2

    def _cells(self, out: torch.Tensor) -> torch.Tensor:
        if out.dim() == 2:
            raise MetaSRError("the depth model returns a vector; pass a model whose output is a depth map")
        depth = out[:, :1]
        low = depth.amin(dim=(2, 3), keepdim=True)
        high = depth.amax(dim=(2, 3), keepdim=True)
        depth = (depth - low) / (high - low + 1e-6)
        if depth.shape[2] < CELL or depth.shape[3] < CELL:
            depth = F.interpolate(depth, size=(CELL, CELL), mode="bilinear", align_corners=False)
        mean = cell_pool(depth)
        spread = torch.sqrt(torch.relu(cell_pool(depth * depth) - mean * mean))
        return torch.cat([mean, torch.clamp(spread * DEPTH_SPREAD_GAIN, 0.0, 1.0)], dim=1)


@register
class SegmentationSource(LocalModelSource):
    """Semantic segmentation: per cell, the fraction of pixels of every class (softmax of the logits)."""

    name = "segmentation"
    dims = 0  # the number of classes of the user's model

    def _cells(self, out: torch.Tensor) -> torch.Tensor:
        if out.dim() == 2:
            raise MetaSRError("the segmentation model returns a vector; pass a model whose output is per-pixel logits")
        if out.shape[2] < CELL or out.shape[3] < CELL:
            out = F.interpolate(out, size=(CELL, CELL), mode="bilinear", align_corners=False)
        return cell_pool(torch.softmax(out, dim=1))


@register
class SemanticSource(LocalModelSource):
    """A semantic embedding (CLIP-like image encoder): the L2-normalised embedding, per cell or per frame."""

    name = "semantic"
    dims = 0  # the embedding width of the user's model

    def _cells(self, out: torch.Tensor) -> torch.Tensor:
        if out.dim() == 2:
            out = out[:, :, None, None]
        elif out.shape[2] >= CELL and out.shape[3] >= CELL:
            out = cell_pool(out)
        else:
            out = out.mean(dim=(2, 3), keepdim=True)
        return F.normalize(out, dim=1) * 0.5 + 0.5
