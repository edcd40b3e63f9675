"""The model behind metasr-upscale: the float graph (bundled or a checkpoint; MetaSR or the bare student), or an
exported artifact."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from metasr.assembly import load_graph
from metasr.errors import MetaSRError
from metasr.model_zoo import default_model
from metasr.models import MetaSRStudent
from metasr.models.metasr import MetaSR
from metasr.models.routed import RoutedMetaSR
from metasr.runtime import allowed_sizes, artifact_manifest, open_engine, static_sizes, takes_size
from metasr.upscaling.tiling import ModelFn, TilePlan, plan_tiles, whole_cells

RouteFn = Callable[[torch.Tensor], torch.Tensor]  # (1, 3, h, w) -> expert index (1, h / tile, w / tile)
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 16


@dataclass(frozen=True)
class Routing:
    """How a routed model picks: ``route`` gives the expert (of ``experts``) per ``tile``-pixel routing tile."""

    route: RouteFn
    tile: int
    experts: int


@dataclass(frozen=True)
class Upscaler:
    """A model plus its tiling: ``run`` maps (1,3,h,w) in [0,1] to (1,3,sh,sw)."""

    name: str
    scale: int
    run: ModelFn
    tile: tuple[int, int]
    overlap: int
    static: bool
    routing: Routing | None = None  # a routed model's choices, for the compare picture

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
        size = tile or DEFAULT_TILE
        tile_overlap = _overlap((size, size), overlap, DEFAULT_OVERLAP)
        model = load_graph(checkpoint or default_model(scale or 2).path, scale).reparameterize()
        name = f"{checkpoint.name if checkpoint else f'MetaSR x{model.scale}'} (float)"
        run = _float_runner(model, value, name)
        if isinstance(model, RoutedMetaSR):
            route = functools.partial(model.route, strength=_or_default(value, model.router.default_strength()))
            routing = Routing(route, model.router.tile, len(model.experts))
            return Upscaler(name, model.scale, run, (size, size), tile_overlap, False, routing)
        return Upscaler(name, model.scale, run, (size, size), tile_overlap, False)
    manifest = artifact_manifest(artifact)  # everything the manifest can refuse is refused before loading
    if scale is not None and scale != manifest["scale"]:
        raise MetaSRError(f"{artifact.name} is a x{manifest['scale']} model but --scale {scale} was asked; fix one")
    tile_hw = _artifact_tile(artifact.name, manifest, tile)
    tile_overlap = _overlap(tile_hw, overlap, manifest["tile"]["overlap"])
    engine = open_engine(artifact, manifest)
    run = functools.partial(engine.run, strength=value)
    static = engine.static_sizes is not None
    name = f"{artifact.name} ({engine.runtime})"
    if engine.routing is not None:
        routing = Routing(
            functools.partial(engine.route, strength=value), engine.routing.tile, len(engine.routing.experts)
        )
        return Upscaler(name, engine.scale, run, tile_hw, tile_overlap, static, routing)
    return Upscaler(name, engine.scale, run, tile_hw, tile_overlap, static)


def _artifact_tile(name: str, manifest: dict[str, Any], tile: int | None) -> tuple[int, int]:
    """The (H, W) tile for an artifact: ``tile`` (default: the manifest's), which the artifact must take."""
    sizes = static_sizes(manifest)
    if sizes is not None:
        if tile is None:
            return sizes[0]
        if (tile, tile) not in sizes:
            shapes = allowed_sizes(manifest)
            raise MetaSRError(f"{name} takes only {shapes} inputs; drop --tile or pass one of those sizes")
        return tile, tile
    size = tile or manifest["tile"]["size"]
    padded = (whole_cells(size),) * 2  # what the artifact is fed: a full tile padded to whole cells
    if not takes_size(manifest, padded):
        raise MetaSRError(
            f"tile {size} is fed to {name} as {padded[0]}x{padded[1]}, but it takes {allowed_sizes(manifest)}; "
            "pass a smaller --tile"
        )
    return size, size


def _float_runner(model: RoutedMetaSR | MetaSR | MetaSRStudent, strength: torch.Tensor | None, name: str) -> ModelFn:
    """``image -> output`` of the float graph; a strength for a bare student is refused, not ignored."""
    if isinstance(model, RoutedMetaSR):
        return functools.partial(model, strength=_or_default(strength, model.router.default_strength()))
    if not isinstance(model, MetaSR):
        if strength is not None:
            raise MetaSRError(f"{name} is a plain student with no strength input; omit --strength")
        return model
    return functools.partial(model, strength=_or_default(strength, model.default_strength()))


def _or_default(strength: torch.Tensor | None, default: torch.Tensor) -> torch.Tensor:
    return default if strength is None else strength


def _overlap(tile: tuple[int, int], overlap: int | None, default: int) -> int:
    """``overlap`` (default: ``default``), refused unless under half the tile."""
    overlap = default if overlap is None else overlap
    if min(tile) < 16 or overlap < 0 or 2 * overlap >= min(tile):
        raise MetaSRError(f"tile {tile[0]}x{tile[1]} with overlap {overlap} is invalid; use overlap < tile/2")
    return overlap
