"""Export a routed MetaSR: its router and each expert lowered as functions of one artifact (or artifact set).

The stages mirror :mod:`metasr.exporter.pipeline`, applied per function: the router reads the thumbnail
(every t-th pixel, cut by the app) and scores the experts per tile; each expert is a plain student graph.
A target may lower the functions together (``lower_functions``: one multi-method .pte, one multifunction
.mlpackage); otherwise each function becomes its own file. Every function is checked on its own, then the
whole routed output, dispatched through the artifact's functions, is checked against the float routed model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from metasr.data.sample_images import VALIDATION_NAMES, calibration_images, validation_images
from metasr.errors import MetaSRError
from metasr.exporter.parity import parity
from metasr.exporter.stages import (
    Coverage,
    LoweredArtifact,
    Macs,
    ParityResult,
    PreparedModel,
    QuantizedModel,
    TargetModule,
    with_defaults,
)
from metasr.images import to_numpy
from metasr.metadata.base import CELL
from metasr.models.routed import RoutedDispatch, RoutedMetaSR, thumbnail_of
from metasr.recipes import Recipe
from metasr.validate.macs import count_macs
from metasr.validate.metrics import max_abs_error, y_psnr

ROUTER = "router"


@dataclass
class RoutedPrepared:
    """Output of *prepare*: the float routed reference and one prepared model per function."""

    model: RoutedMetaSR
    source: str
    recipe: Recipe
    functions: dict[str, PreparedModel]

    @property
    def experts(self) -> list[str]:
        return [name for name in self.functions if name != ROUTER]

    @property
    def parameters(self) -> int:
        return sum(f.parameters for f in self.functions.values())

    @property
    def macs_per_output_pixel(self) -> Macs:
        """The router plus its dearest expert (what an output pixel costs at most), and that expert alone."""
        router = self.functions[ROUTER].macs_per_output_pixel
        expert = max(self.functions[name].macs_per_output_pixel.total for name in self.experts)
        return Macs(router.total + expert, expert)


@dataclass
class RouterParity:
    """The artifact's router against the float router on the validation photos' thumbnails."""

    agreement: float  # share of tiles where both pick the same expert
    max_abs_error: float  # of the scores


@dataclass
class RoutedParity:
    """Each expert's parity, the router's agreement, and the whole dispatched output vs the float routed model."""

    experts: dict[str, ParityResult]
    router: RouterParity
    whole: ParityResult

    @property
    def passed(self) -> bool:
        return self.whole.passed and all(p.passed for p in self.experts.values())


@dataclass
class RoutedLowered:
    """Output of *lower*: each function's lowered artifact (several may share one file)."""

    functions: dict[str, LoweredArtifact]

    @property
    def files(self) -> list[Path]:
        return sorted({f.path for f in self.functions.values()})

    @property
    def coverage(self) -> Coverage:
        """Placement summed over the functions."""
        parts = [f.coverage for f in self.functions.values()]
        fallback = [op for c in parts for op in c.fallback]
        return Coverage(sum(c.accelerated for c in parts), sum(c.total for c in parts), fallback, parts[0].where)


def check_sizes(model: RoutedMetaSR, recipe: Recipe) -> None:
    """Every input size must hold whole routing tiles when the router pools fixed windows (a per-call router
    takes any size)."""
    tile = model.routing_tile
    if not tile:
        return
    bad = [f"{h}x{w}" for h, w in recipe.input_sizes if h % tile or w % tile]
    if bad:
        raise MetaSRError(
            f"input size {', '.join(bad)} is not whole {tile}-pixel routing tiles; "
            f"use multiples of {tile}, e.g. {4 * tile}x{4 * tile}"
        )


def prepare(model: RoutedMetaSR, source: str, recipe: Recipe) -> RoutedPrepared:
    """Stage 2: the float reference and, per function, its reparameterized graph, recipe sizes and MACs. A conv
    router decides once per call, so each app tile, of any size, runs one expert."""
    model = model.deciding_per_call() if model.conv_router is not None else copy.deepcopy(model)
    check_sizes(model, recipe)
    model = model.eval()
    t = model.router.thumbnail
    out_pixels = recipe.input_size[0] * recipe.input_size[1] * model.scale**2
    functions = {}
    for name, module in model.functions().items():
        module = module.eval()
        sizes = tuple((-(-h // t), -(-w // t)) for h, w in recipe.input_sizes) if name == ROUTER else recipe.input_sizes
        unit = max(1, CELL // t) if name == ROUTER else CELL
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        for p in module.parameters():
            p.requires_grad_(False)
        macs = count_macs(module, with_defaults(module, torch.zeros(1, 3, *sizes[0]))) / out_pixels
        student = 0.0 if name == ROUTER else macs
        functions[name] = PreparedModel(
            module, source, recipe, sizes, params, Macs(macs, student), function=name, unit=unit
        )
    return RoutedPrepared(model, source, recipe, functions)


def quantize(prepared: RoutedPrepared, target: TargetModule) -> dict[str, QuantizedModel]:
    """Stage 3: each function quantized by the target; the router calibrates on the photos' thumbnails (or
    keeps the precision the target's ``quantize_router`` gives it)."""
    photos = calibration_images(*prepared.recipe.input_size)
    thumbnails = [thumbnail_of(p, prepared.model.router.thumbnail) for p in photos]
    quantize_router = getattr(target, "quantize_router", target.quantize)
    return {
        name: quantize_router(function, thumbnails) if name == ROUTER else target.quantize(function, photos)
        for name, function in prepared.functions.items()
    }


def lower(quantized: dict[str, QuantizedModel], target: TargetModule, staging: Path) -> RoutedLowered:
    """Stage 4: the target's joint lowering (one file) if it has one, else one file per function."""
    joint = getattr(target, "lower_functions", None)
    functions = joint(quantized, staging) if joint else {n: target.lower(q, staging) for n, q in quantized.items()}
    lowered = RoutedLowered(functions)
    if lowered.coverage.fallback:
        ops = ", ".join(sorted(set(lowered.coverage.fallback))[:6])
        raise MetaSRError(
            f"target '{target.NAME}' cannot run {ops} of the routed functions on {lowered.coverage.where}; "
            "export the MetaSR checkpoint unrouted, or with --target onnx"
        )
    return lowered


def validate(lowered: RoutedLowered, prepared: RoutedPrepared) -> RoutedParity:
    """Stage 5: each expert vs its float graph, the router's choices, and the dispatched whole vs the float
    routed model, on real photos."""
    model, recipe = prepared.model, prepared.recipe
    images = validation_images(*recipe.input_size)
    experts = {name: parity(lowered.functions[name], prepared.functions[name]) for name in prepared.experts}
    router = lowered.functions[ROUTER].predict
    agree, tiles, score_error, psnrs, whole_error = 0, 0, 0.0, [], 0.0
    r = model.router
    dispatch = RoutedDispatch(
        router, [lowered.functions[n].predict for n in prepared.experts], model.routing_tile, r.thumbnail, model.scale
    )
    for image in images:
        strength = model.router.default_strength()
        small = thumbnail_of(image, model.router.thumbnail)
        with torch.no_grad():
            reference_scores = prepared.functions[ROUTER].model(small, strength)
            reference = to_numpy(model(image, strength))
        scores = router(small, strength)
        agree += int((scores.argmin(dim=1) == reference_scores.argmin(dim=1)).sum())
        tiles += reference_scores[:, 0].numel()
        score_error = max(score_error, float((scores - reference_scores).abs().max()))
        output = to_numpy(dispatch.run(image, strength))
        psnrs.append(y_psnr(output, reference))
        whole_error = max(whole_error, max_abs_error(output, reference))
    whole = ParityResult(psnrs, whole_error, list(VALIDATION_NAMES), recipe.parity_floor_db)
    return RoutedParity(experts, RouterParity(agree / tiles, score_error), whole)
