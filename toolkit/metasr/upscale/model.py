"""The model behind metasr-upscale: the float graph (bundled or a checkpoint; MetaSR or the bare student), or an
exported artifact."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from metasr.assembly import load_graph
from metasr.checkpoint import bundled_weights
from metasr.errors import MetaSRError
from metasr.models import MetaSRStudent
from metasr.models.metasr import MetaSR
from metasr.runtime import open_engine
from metasr.upscale.tiling import ModelFn, TilePlan, plan_tiles

DEFAULT_TILE = 256
DEFAULT_OVERLAP = 16


@dataclass(frozen=True)
class Upscaler:
    """A model plus its tiling: ``run`` maps (1,3,h,w) in [0,1] to (1,3,sh,sw)."""

    name: str
    scale: int
    run: ModelFn
    tile: tuple[int, int]
    overlap: int
    static: bool

    def plan(self, height: int, width: int) -> TilePlan:
        return plan_tiles(height, width, self.scale, self.tile, self.overlap, self.static)


def load_upscaler(
    artifact: Path | None = None,
    checkpoint: Path | None = None,
    scale: int | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    strength: float | None = None,
) -> Upscaler:
    """Open ``artifact`` or ``checkpoint`` (or the bundled weights); tile and overlap default to the manifest's.

    ``strength`` in [0, 1] overrides the degradation degree the model estimates; None keeps the estimate.
    """
    if artifact is not None and checkpoint is not None:
        raise MetaSRError("pass --artifact or --checkpoint, not both")
    if strength is not None and not 0.0 <= strength <= 1.0:
        raise MetaSRError(f"strength {strength} is outside [0, 1]; omit it to use the estimated degradation degree")
    value = None if strength is None else torch.full((1, 1, 1, 1), strength)
    if artifact is None:
        model = load_graph(checkpoint or bundled_weights(scale or 2), scale).reparameterize()
        name = f"{checkpoint.name if checkpoint else f'MetaSR x{model.scale}'} (float)"
        size = tile or DEFAULT_TILE
        run = _float_runner(model, value, name)
        return _checked(name, model.scale, run, (size, size), overlap, DEFAULT_OVERLAP, False)
    engine = open_engine(artifact)
    if scale is not None and scale != engine.scale:
        raise MetaSRError(f"{artifact.name} is a x{engine.scale} model but --scale {scale} was asked; fix one")
    default_tile = engine.manifest["tile"]
    sizes = engine.static_sizes
    if sizes is None:
        size = tile or default_tile["size"]
        tile_hw = (size, size)
    elif tile is None:
        tile_hw = sizes[0]
    elif (tile, tile) in sizes:
        tile_hw = (tile, tile)
    else:
        shapes = ", ".join(f"{h}x{w}" for h, w in sizes)
        raise MetaSRError(f"{artifact.name} takes only {shapes} inputs; drop --tile or pass one of those sizes")
    name = f"{artifact.name} ({engine.runtime})"
    run = functools.partial(engine.run, strength=value)
    return _checked(name, engine.scale, run, tile_hw, overlap, default_tile["overlap"], sizes is not None)


def _float_runner(model: MetaSR | MetaSRStudent, strength: torch.Tensor | None, name: str) -> ModelFn:
    """``image -> output`` of the float graph; a strength for a bare student is refused, not ignored."""
    if not isinstance(model, MetaSR):
        if strength is not None:
            raise MetaSRError(f"{name} is a plain student with no strength input; omit --strength")
        return model
    return functools.partial(model, strength=model.default_strength() if strength is None else strength)


def _checked(
    name: str, scale: int, run: ModelFn, tile: tuple[int, int], overlap: int | None, default: int, static: bool
) -> Upscaler:
    overlap = default if overlap is None else overlap
    if min(tile) < 16 or overlap < 0 or 2 * overlap >= min(tile):
        raise MetaSRError(f"tile {tile[0]}x{tile[1]} with overlap {overlap} is invalid; use overlap < tile/2")
    return Upscaler(name, scale, run, tile, overlap, static)
