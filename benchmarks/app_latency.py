"""Routed vs plain as an app runs them: whole photos upscaled call by call through the exported artifacts, and
(:func:`app_quality_rows`) what the routed model's app tiles read in Y-PSNR, which experts they call and what
that costs (a capacity-routed model's small expert makes some calls cheaper).

Both artifacts are exported by ``metasr-export``'s pipeline at one call size and run through ``metasr-upscale``'s
tiler in their host runtime (ExecuTorch XNNPACK int8, ONNX Runtime fp32): the recipes' 256-px app tile (overlap
16) over the photos at their own size, or a whole 1080p-output frame per call (x2 from 544x960, x4 from
288x480, its 270 rows padded to whole 32-px cells; the photos resized to it). The routed artifact is dispatched
as its manifest says: per call, the router on its thumbnail, then the expert it names (a conv router decides once
per call, so each call runs exactly one expert). The plain student is the routed model's plain expert, exported
bare: the cost an app pays without adaptivity.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.quality import pairs, photo_set
from metasr.assembly import load_routed
from metasr.checkpoint import save_student
from metasr.distill.routing import expert_costs
from metasr.exporter import pipeline
from metasr.recipes import with_overrides
from metasr.upscaling.model import Upscaler, load_upscaler
from metasr.upscaling.tiling import plan_tiles, upscale_strips
from metasr.validate.metrics import y_psnr

TARGETS = {"executorch-xnnpack": "XNNPACK int8", "onnx": "ORT CPU fp32"}
APP_TILE = 256
APP_OVERLAP = 16
FRAMES = {2: (544, 960), 4: (288, 480)}  # LR frames of a 1080p output (x4: 270 rows padded to whole 32-px cells)


def frames(names: tuple[str, ...], scale: int, size: tuple[int, int] | None = None) -> dict[str, list[np.ndarray]]:
    """The photos as LR frames (uint8 RGB), at their own size or resized to ``size``: the x``scale`` pairs of
    their bicubic upscales, clean (bicubic down again) and with realistic damage (Real-ESRGAN pipeline, one fixed
    seed per photo)."""
    photos = photo_set(names)
    hr_sizes = [
        (scale * p.shape[1], scale * p.shape[0]) if size is None else (scale * size[1], scale * size[0]) for p in photos
    ]
    upscaled = [
        np.asarray(Image.fromarray(p).resize(hr, Image.BICUBIC)) for p, hr in zip(photos, hr_sizes, strict=True)
    ]
    sets = {}
    for degradation in ("bicubic", "realistic"):
        lr = [p.lr[0].permute(1, 2, 0).numpy() for p in pairs(upscaled, scale, degradation, max_side=8192)]
        sets[degradation] = [(np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8) for x in lr]
    return sets


def app_latency_rows(
    routed_checkpoint: Path, names: tuple[str, ...], runs: int, frame: tuple[int, int] | None = None
) -> list[dict]:
    """Per target and degradation: ms per photo (median over ``runs``, summed over the photos) of the routed
    artifact and of its plain expert alone, their ratio, and the distinct experts a call runs. ``frame``: each
    photo resized to that LR size and upscaled in one call of an artifact exported at it; else 256-px app tiles."""
    routed = load_routed(routed_checkpoint)
    if not routed.plain:
        raise ValueError(f"{routed_checkpoint} has no plain expert to compare with")
    sets = frames(names, routed.scale, frame)
    call = frame or (APP_TILE, APP_TILE)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        plain_path = Path(tmp) / f"plain_x{routed.scale}.safetensors"
        save_student(routed.plain[0], plain_path)  # the clean expert
        for target, runtime in TARGETS.items():
            recipe = with_overrides(pipeline.resolve_recipe(target), scale=routed.scale, input_sizes=(call,))
            upscalers = {
                name: _calls_of(
                    load_upscaler(artifact=pipeline.export(recipe, Path(tmp) / name, checkpoint=path).artifact), call
                )
                for name, path in (("routed", routed_checkpoint), ("plain", plain_path))
            }
            for degradation, images in sets.items():
                per_image = [_interleaved_ms(upscalers, image, runs) for image in images]
                ms = {name: sum(m[name] for m in per_image) for name in upscalers}
                rows.append(
                    {
                        "model": routed_checkpoint.stem,
                        "runtime": runtime,
                        "call": "x".join(map(str, call)),
                        "degradation": degradation,
                        "photos": len(images),
                        "routed_ms": ms["routed"],
                        "plain_ms": ms["plain"],
                        "ratio": ms["routed"] / ms["plain"],
                        "experts_per_call": _experts_per_call(upscalers["routed"], images),
                    }
                )
    return rows


def _calls_of(upscaler: Upscaler, call: tuple[int, int]) -> Upscaler:
    """``upscaler`` tiling at ``call``: an ONNX artifact takes any size and its manifest's default tile is the
    256-px app tile, so a whole-frame row must ask for the frame (a static ``.pte`` is exported at it)."""
    return dataclasses.replace(upscaler, tile=call)


def _interleaved_ms(upscalers: dict[str, Upscaler], image: np.ndarray, runs: int) -> dict[str, float]:
    """Median ms per upscaler over ``runs`` rounds, each round running every upscaler once in turn, so a
    change in the machine's load hits all of them alike (timed one after the other, a shared host's drift
    moved the plain student's own time by 20 %)."""
    calls = {}
    for name, upscaler in upscalers.items():
        plan = upscaler.plan(*image.shape[:2])

        def call(upscaler: Upscaler = upscaler, plan: object = plan) -> None:
            for _ in upscale_strips(image, plan, upscaler.run):
                pass

        call()  # warm-up: loads each method and session
        calls[name] = call
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: float(np.median(values)) for name, values in times.items()}


def _experts_per_call(upscaler: Upscaler, images: list[np.ndarray]) -> float:
    """Mean number of distinct experts the router names within one call (app tile or frame)."""
    counts: list[int] = []
    route = upscaler.routing.route

    def count(tile: torch.Tensor) -> torch.Tensor:
        counts.append(len(torch.unique(route(tile))))
        return torch.zeros(1, 3, tile.shape[-2] * upscaler.scale, tile.shape[-1] * upscaler.scale)

    for image in images:
        for _ in upscale_strips(image, upscaler.plan(*image.shape[:2]), count):
            pass
    return float(np.mean(counts))


def app_quality_rows(routed_checkpoint: Path, sets: dict[str, tuple[list[np.ndarray], int]]) -> list[dict]:
    """Per image set (images, HR side) and degradation: the float routed model's Y-PSNR through 256-px app tiles
    (each call routed once, as its artifact decides), its plain clean expert's alone, the share of calls per expert
    and their mean MACs per output pixel over the clean expert's."""
    routed = load_routed(routed_checkpoint).deciding_per_call()
    costs = expert_costs(routed)
    plain = routed.experts[0]  # the clean expert: app_latency_rows' plain student
    rows = []
    for set_name, (images, side) in sets.items():
        for degradation in ("bicubic", "realistic"):
            calls: list[int] = []

            def run(tile: torch.Tensor, calls: list[int] = calls) -> torch.Tensor:
                calls.append(int(routed.route(tile).item()))  # one decision per call, then that expert alone
                return routed.experts[calls[-1]](tile)

            psnr = {"routed": [], "plain": []}
            for pair in pairs(images, routed.scale, degradation, side):
                lr = (pair.lr[0].permute(1, 2, 0).clamp(0, 1).numpy() * 65535.0 + 0.5).astype(np.uint16)
                plan = plan_tiles(*lr.shape[:2], routed.scale, (APP_TILE, APP_TILE), APP_OVERLAP)
                for name, model in (("routed", run), ("plain", plain)):
                    sr = np.concatenate([strip for _, strip in upscale_strips(lr, plan, model)])
                    psnr[name].append(y_psnr(sr, pair.hr, border=routed.scale))
            share = np.bincount(calls, minlength=len(costs)) / len(calls)
            rows.append(
                {
                    "model": routed_checkpoint.stem,
                    "set": set_name,
                    "degradation": degradation,
                    "routed_psnr": float(np.mean(psnr["routed"])),
                    "plain_psnr": float(np.mean(psnr["plain"])),
                    "calls": len(calls),
                    "calls_per_expert": " / ".join(f"{x:.2f}" for x in share),
                    "relative_macs": float((share * costs.numpy()).sum() / float(costs[0])),
                }
            )
    return rows
