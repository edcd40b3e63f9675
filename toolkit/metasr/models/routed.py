"""Routed MetaSR: the orchestrator picks, per tile, one of K plain experts whose FiLM is folded into their convs.

    image ─ thumbnail ─ extractors + orchestrator (cells) ─ mean FiLM per tile ─ nearest centroid ─ expert index
    tile  ─ expert[index] (a plain student: FiLM folded into its stage convs) ─ SR tile

A stage computes ``relu(gain * (W x + c) + bias)``; with gain and bias constant over a tile that is
``relu((gain W) x + (gain c + bias))``, one plain conv. So every expert costs exactly the plain student, and the
per-pixel work of full-resolution FiLM disappears; the orchestrator's decisions survive as the choice of expert.
The router may read a thumbnail (``thumbnail`` > 1: every ``thumbnail``-th pixel of each row and column; unlike
averaging, it keeps noise and JPEG blocking visible), which divides its cost by the factor squared; a tile
must then hold whole metadata cells of the thumbnail. An expert may instead be another plain student (a
"plain expert", e.g. one trained longer on clean photos, or one fine-tuned on damaged photos) where that restores
its cluster's tiles better.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metasr.metadata.base import CELL
from metasr.models.conv_router import ConvRouter
from metasr.models.metasr import MetaSR
from metasr.models.student import MetaSRStudent


def fold_modulation(student: MetaSRStudent, modulation: torch.Tensor) -> MetaSRStudent:
    """A reparameterized copy of ``student`` with one FiLM vector (2*stages*C: gain, bias per stage) folded in."""
    expert = copy.deepcopy(student).reparameterize()
    c = student.config.channels
    films = torch.split(modulation.reshape(-1), c)
    with torch.no_grad():
        for i, block in enumerate(expert.blocks):
            gain, bias = films[2 * i], films[2 * i + 1]
            block.fused.weight.mul_(gain[:, None, None, None])
            block.fused.bias.mul_(gain).add_(bias)
    return expert


def thumbnail_of(image: torch.Tensor, thumbnail: int) -> torch.Tensor:
    """What the router reads: every ``thumbnail``-th pixel of each row and column."""
    return image[..., ::thumbnail, ::thumbnail]


def compose(
    image: torch.Tensor,
    routes: torch.Tensor,
    experts: Sequence[Callable[[torch.Tensor], torch.Tensor]],
    tile: int,
    scale: int,
) -> torch.Tensor:
    """Each output tile from the expert ``routes`` (N, H / tile, W / tile) names; every expert that is used sees
    the whole frame, as overlapping app tiles would. When every tile names one expert (an app tile that is one
    routing tile), its output is returned as is. ``tile`` 0 (a router deciding per call, routes (N, 1, 1)): each
    image from the expert it names."""
    used = torch.unique(routes).tolist()
    if len(used) == 1:
        return experts[used[0]](image)
    if tile == 0:
        return torch.cat([experts[int(k)](one[None]) for k, one in zip(routes.flatten(), image, strict=True)])
    mask = F.interpolate(routes[:, None].float(), scale_factor=tile * scale, mode="nearest")
    mask = mask[..., : image.shape[-2] * scale, : image.shape[-1] * scale]
    out = torch.zeros(image.shape[0], 3, image.shape[-2] * scale, image.shape[-1] * scale)
    for k in used:
        out = torch.where(mask == k, experts[k](image), out)
    return out


@dataclass(frozen=True)
class RoutedDispatch:
    """Routed functions run as an app runs them: ``router`` scores the x1/``thumbnail`` thumbnail's tiles
    (lowest wins) and each ``tile``-pixel tile comes from the expert it names."""

    router: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (thumbnail, strength) -> scores
    experts: Sequence[Callable[[torch.Tensor], torch.Tensor]]
    tile: int
    thumbnail: int
    scale: int

    def router_input(self, image: torch.Tensor) -> torch.Tensor:
        """The thumbnail the router reads, copied by NumPy on the calling thread: torch's parallel strided copy
        leaves its OpenMP workers spinning, and they take a core from the expert that runs next (+7 ms on a
        35-ms ONNX Runtime expert call at a 256-px tile on two cores)."""
        return torch.from_numpy(np.ascontiguousarray(thumbnail_of(image, self.thumbnail).numpy()))

    def route(self, image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        """Expert index per tile, (N, H / tile, W / tile)."""
        return self.router(self.router_input(image), strength).argmin(dim=1)

    def run(self, image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        """Each tile from its expert (see :func:`compose`)."""
        return compose(image, self.route(image, strength), self.experts, self.tile, self.scale)


class TileRouter(nn.Module):
    """A MetaSR graph's extractors and orchestrator scoring ``centroids`` (K, M) per tile: lower is nearer.

    ``score_k = |c_k|^2 - |m|^2 - 2 (c_k - m) . v`` for a tile's mean FiLM ``v`` and the centroids' mean ``m``:
    its squared distance to ``c_k`` less its squared distance to ``m``. A 1x1 conv over the per-tile FiLM, so
    the router lowers like any other conv graph; an app takes the argmin. Measuring from ``m`` keeps the scores
    near zero and cancels the error ``v`` shares across centroids, so int8 scores keep their order.
    """

    def __init__(
        self, metasr: MetaSR, centroids: torch.Tensor, tile: int, thumbnail: int = 1, partial_tiles: bool = True
    ) -> None:
        super().__init__()
        if tile % (CELL * thumbnail):
            raise ValueError(f"tile {tile} must be whole {CELL}-pixel metadata cells of the x1/{thumbnail} thumbnail")
        self.metasr = metasr
        self.tile = tile
        self.thumbnail = thumbnail
        self.partial_tiles = partial_tiles  # False: the image holds whole tiles (an artifact's fixed pooling)
        self.register_buffer("centroids", centroids.clone())
        self.score = nn.Conv2d(centroids.shape[1], len(centroids), 1)
        with torch.no_grad():
            mean = centroids.mean(dim=0)
            self.score.weight.copy_(-2.0 * (centroids - mean)[:, :, None, None])
            self.score.bias.copy_((centroids**2).sum(dim=1) - (mean**2).sum())

    @property
    def scale(self) -> int:
        """The scale of the experts this router serves."""
        return self.metasr.scale

    def default_strength(self, batch: int = 1) -> torch.Tensor:
        """The ``strength`` input that keeps the estimated degree, shape (N, 1, 1, 1)."""
        return self.metasr.default_strength(batch)

    def tile_modulation(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """The orchestrator's FiLM averaged over each tile's cells: (N, M, H / tile, W / tile)."""
        small = thumbnail_of(image, self.thumbnail)
        decisions = self.metasr.decide(small, strength)
        per_tile = self.tile // (CELL * self.thumbnail)
        return F.avg_pool2d(decisions.stacked_modulation(), per_tile, per_tile, ceil_mode=self.partial_tiles)

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (N, K, H / tile, W / tile)."""
        return self.score(self.tile_modulation(image, strength))

    def on_thumbnail(self) -> TileRouter:
        """The same router taking the thumbnail itself (``image[..., ::t, ::t]``, cut by the app) as its image,
        whole tiles only: the graph an artifact holds, with no strided reads and fixed pooling windows."""
        return TileRouter(self.metasr, self.centroids, self.tile // self.thumbnail, partial_tiles=False)


class RoutedMetaSR(nn.Module):
    """A tile router over experts: ``student`` folded at each of the router's centroids, except the experts
    named in ``plain_experts``, which are the matching students of ``plain`` (other plain students, e.g. one
    trained longer on clean photos, or fine-tuned on damaged ones, for the clusters where they restore better).

    With ``conv_router`` (a :class:`ConvRouter` trained to pick the expert that restores a tile best, on the
    same tiles and thumbnail), that router decides and is the one deployed; ``router`` still defines the
    experts (its centroids) and is kept for saving.
    """

    def __init__(
        self,
        router: TileRouter,
        student: MetaSRStudent,
        plain: Sequence[MetaSRStudent] = (),
        plain_experts: Sequence[int] = (),
        conv_router: ConvRouter | None = None,
    ) -> None:
        super().__init__()
        if conv_router is not None and (
            (conv_router.tile, conv_router.thumbnail, conv_router.experts, conv_router.scale)
            != (router.tile, router.thumbnail, len(router.centroids), router.scale)
        ):
            raise ValueError(
                f"the conv router (tile {conv_router.tile}, x1/{conv_router.thumbnail}, {conv_router.experts} "
                f"experts, x{conv_router.scale}) must match the routing (tile {router.tile}, x1/{router.thumbnail}, "
                f"{len(router.centroids)} experts, x{router.scale})"
            )
        if sorted(set(plain_experts)) != list(plain_experts) or not all(
            0 <= k < len(router.centroids) for k in plain_experts
        ):
            raise ValueError(f"plain experts {list(plain_experts)} must be increasing indices of the experts")
        if len(plain) != len(plain_experts) or any(p.scale != student.scale for p in plain):
            given = ", ".join(f"x{p.scale}" for p in plain) or "none"
            raise ValueError(
                f"plain experts {list(plain_experts)} need one plain x{student.scale} student each (given: {given})"
            )
        self.router = router
        self.conv_router = conv_router
        self.plain = tuple(plain)  # kept as trained, for saving
        self.plain_experts = tuple(plain_experts)
        by_expert = dict(zip(self.plain_experts, self.plain, strict=True))
        self.experts = nn.ModuleList(
            copy.deepcopy(by_expert[k]).reparameterize() if k in by_expert else fold_modulation(student, c)
            for k, c in enumerate(router.centroids)
        )

    @property
    def scale(self) -> int:
        return self.experts[0].scale

    @property
    def expert_names(self) -> list[str]:
        return [f"expert_{k}" for k in range(len(self.experts))]

    @property
    def deciding_router(self) -> TileRouter | ConvRouter:
        """The router that picks the experts: the conv router when there is one."""
        return self.router if self.conv_router is None else self.conv_router

    @property
    def routing_tile(self) -> int:
        """The routing tile in input pixels; 0 when the router decides once per call."""
        return 0 if self.conv_router is not None and self.conv_router.per_call else self.router.tile

    def deciding_per_call(self) -> RoutedMetaSR:
        """A copy whose conv router decides once per input (``ConvRouter.per_call``): what an artifact holds, so
        a call (app tile) of any size runs exactly one expert."""
        if self.conv_router is None:
            raise ValueError("only a conv router decides per call; the orchestrator's router pools fixed tiles")
        routed = copy.deepcopy(self)
        routed.conv_router.per_call = True
        return routed

    def reparameterize(self) -> RoutedMetaSR:
        """Already the inference form: every expert is folded plain convs and the router uses no student."""
        return self

    def with_conv_router(self, conv_router: ConvRouter | None) -> RoutedMetaSR:
        """The same experts, decided by ``conv_router`` (or by the orchestrator's router when None)."""
        return RoutedMetaSR(self.router, self.router.metasr.student, self.plain, self.plain_experts, conv_router)

    def with_plain_expert(self, expert: int, student: MetaSRStudent) -> RoutedMetaSR:
        """The same router and other experts, with plain expert ``expert`` replaced by ``student`` (e.g. the same
        architecture trained longer)."""
        if expert not in self.plain_experts:
            raise ValueError(
                f"expert {expert} is not a plain student (plain experts: {list(self.plain_experts)}); only a plain "
                "expert can be replaced"
            )
        plain = [student if k == expert else p for k, p in zip(self.plain_experts, self.plain, strict=True)]
        return RoutedMetaSR(self.router, self.router.metasr.student, plain, self.plain_experts, self.conv_router)

    def functions(self) -> dict[str, nn.Module]:
        """What a routed artifact holds: ``router`` (scores from the thumbnail and strength) and each expert."""
        experts = dict(zip(self.expert_names, self.experts, strict=True))
        return {"router": self.deciding_router.on_thumbnail(), **experts}

    def route(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Expert index per tile, (N, H / tile, W / tile)."""
        return self.deciding_router(image, strength).argmin(dim=1)

    def forward(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Each tile from its expert (see :func:`compose`)."""
        return compose(image, self.route(image, strength), self.experts, self.routing_tile, self.scale)
