"""Routed MetaSR vs per-pixel FiLM vs the plain student: quality of design (c) of issue 17, float, one run.

    python -m benchmarks.routing --corpus data/corpus [--experts 2 4 8] [--tile 64]

Every variant shares the x2 default's extractors and orchestrator. "per-pixel FiLM" is the shipped graph;
"per-tile FiLM" folds each tile's own mean FiLM into the convs (K unbounded, the ceiling of routing);
"routed K" folds the K k-means centroids of that FiLM over training tiles and routes each tile to the nearest;
"router on x1/t" reads every t-th pixel (a quarter of the work at t=2), as is, or trained to pick the full
router's expert or the expert nearest the HR tile. "cleanest cluster -> plain student" swaps one expert for
the plain student. Each expert is a plain student, so a routed frame costs the router plus the plain student.
Writes benchmarks/results/routing.csv and routing.md (also printed); ``--latency`` adds int8/fp32 timings.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import latency as L
from benchmarks.quality import DEGRADATIONS, pairs, photo_set, score
from metasr.data.folder import list_images, load_for_training, split_images
from metasr.distill.routing import (
    RouterAgreement,
    RouterTraining,
    best_experts,
    kmeans,
    router_choices,
    tile_vectors,
    train_thumbnail_router,
    training_tiles,
)
from metasr.exporter import pipeline
from metasr.exporter.stages import LoadedModel
from metasr.model_zoo import get_model
from metasr.models.metasr import MetaSR
from metasr.models.routed import RoutedMetaSR, TileRouter
from metasr.models.student import MetaSRStudent
from metasr.progress import progress_bar
from metasr.validate.macs import count_macs

RESULTS = Path(__file__).resolve().parent / "results" / "routing.csv"
REPORT = RESULTS.with_suffix(".md")


def _per_tile(metasr: MetaSR, tile: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Each tile folded at its own mean FiLM: a routed graph with one expert per tile of this frame."""

    def run(lr: torch.Tensor) -> torch.Tensor:
        probe = TileRouter(metasr, torch.zeros(1, metasr.student.modulation_channels), tile)
        vectors = probe.tile_modulation(lr)[0].flatten(1).T  # (tiles, M)
        return RoutedMetaSR(TileRouter(metasr, vectors, tile), metasr.student)(lr)  # each tile: its own vector

    return run


def _with_plain(routed: RoutedMetaSR, plain: MetaSRStudent, vectors: torch.Tensor, clean: int) -> RoutedMetaSR:
    """``routed`` with the expert of its cleanest cluster (most bicubic-only training tiles, the first
    ``clean`` of ``vectors``) a plain expert: the plain student."""
    labels = torch.cdist(vectors, routed.router.centroids).argmin(dim=1)
    share = [float((labels[:clean] == k).sum()) / max(1, int((labels == k).sum())) for k in range(len(routed.experts))]
    cleanest = max(range(len(share)), key=share.__getitem__)
    return RoutedMetaSR(routed.router, routed.router.metasr.student, [plain], [cleanest]).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--experts", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--tile", type=int, default=64, help="router tile, LR pixels (whole metadata cells)")
    parser.add_argument("--tiles", type=int, default=512, help="training tiles for k-means")
    parser.add_argument("--thumbnail", type=int, default=2, help="the thumbnail router's downscale factor")
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--corpus-images", type=int, default=6)
    parser.add_argument("--latency", action="store_true", help="also time the graphs at 544x960 (int8 XNNPACK, ORT)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_grad_enabled(False)

    metasr = get_model("metasr-x2")
    plain = get_model("student-x2").reparameterize()
    train, val = split_images(list_images(args.corpus))
    train_images = [load_for_training(p, 512) for p in train]
    tiles, tiles_hr = training_tiles(train_images, args.tile, 2, args.tiles)
    held_out, held_hr = training_tiles([load_for_training(p, 512) for p in val], args.tile, 2, args.tiles // 2, seed=1)
    agreements: dict[tuple[int, str], RouterAgreement] = {}
    vectors = tile_vectors(metasr, tiles, args.tile)
    thumb_vectors = tile_vectors(metasr, tiles, args.tile, thumbnail=args.thumbnail)
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "plain student (student-x2)": plain,
        "per-pixel FiLM (metasr-x2, shipped)": metasr,
        f"per-tile FiLM, tile {args.tile}": _per_tile(metasr, args.tile),
    }
    for k in args.experts:
        routed = RoutedMetaSR(TileRouter(metasr, kmeans(vectors, k), args.tile), metasr.student)
        variants[f"routed, {k} experts, tile {args.tile}"] = routed
        variants[f"routed, {k} experts, tile {args.tile}, cleanest cluster -> plain student"] = _with_plain(
            routed, plain, vectors, args.tiles // 2
        )
        thumb = TileRouter(metasr, kmeans(thumb_vectors, k), args.tile, args.thumbnail)
        variants[f"routed, {k} experts, tile {args.tile}, router on x1/{args.thumbnail}"] = RoutedMetaSR(
            thumb, metasr.student
        )
        experts = list(routed.experts)
        labellings = {
            "the full router's choice": (router_choices(routed.router, tiles), router_choices(routed.router, held_out)),
            "the best expert": (best_experts(experts, tiles, tiles_hr), best_experts(experts, held_out, held_hr)),
        }
        for label, (train_labels, held_labels) in labellings.items():
            trained, agreement = train_thumbnail_router(
                routed.router, args.thumbnail, tiles, train_labels, (held_out, held_labels), RouterTraining()
            )
            agreements[(k, label)] = agreement
            name = f"routed, {k} experts, tile {args.tile}, router on x1/{args.thumbnail} trained on {label}"
            variants[name] = RoutedMetaSR(trained, metasr.student)
    sets = {
        "photos": photo_set(),
        "corpus-val": [load_for_training(p, 1600) for p in val[: args.corpus_images]],
    }
    rows = []
    with progress_bar() as bar:
        task = bar.add_task("routing", total=len(variants) * len(sets) * len(DEGRADATIONS))
        for set_name, images in sets.items():
            for degradation in DEGRADATIONS:
                image_pairs = pairs(images, 2, degradation, args.max_side)
                for name, run in variants.items():
                    rows.append(
                        {
                            "variant": name,
                            "set": set_name,
                            "degradation": degradation,
                            "psnr": round(score(run, image_pairs, 2).psnr, 3),
                        }
                    )
                    bar.advance(task)
    image = torch.zeros(1, 3, 544, 960)
    pixels = 544 * 960 * 4
    macs = {
        "student": count_macs(plain, (image,)) / pixels,
        "router": count_macs(TileRouter(metasr, vectors[:1], args.tile), (image,)) / pixels,
        "thumbnail router": count_macs(TileRouter(metasr, vectors[:1], args.tile, args.thumbnail), (image,)) / pixels,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    with open(RESULTS, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    columns = [(s, d) for s in sets for d in DEGRADATIONS]
    lines = [
        f"# Routed MetaSR study (`python -m benchmarks.routing {' '.join(sys.argv[1:])}`)",
        "",
        "Y-PSNR, x2, benchmark protocol (benchmarks/quality.py); every variant uses the x2 default's orchestrator.",
        "",
        "| variant | " + " | ".join(f"{s} {d}" for s, d in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name in variants:
        values = {(r["set"], r["degradation"]): r["psnr"] for r in rows if r["variant"] == name}
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.2f}" for c in columns) + " |")
    lines += ["", "MACs per output pixel at 544x960: " + ", ".join(f"{n} {v:.0f}" for n, v in macs.items())]
    lines += [
        "",
        f"Thumbnail router agreement with its labels on {len(held_out)} held-out tiles (validation split, half "
        "clean, half Real-ESRGAN): "
        + ", ".join(f"K={k}, {label}: {a.before:.2f} -> {a.after:.2f}" for (k, label), a in agreements.items()),
    ]
    if args.latency:
        lines += _latency_lines(metasr, plain, kmeans(thumb_vectors, max(args.experts)), args)
    REPORT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _latency_lines(
    metasr: MetaSR, plain: torch.nn.Module, centroids: torch.Tensor, args: argparse.Namespace
) -> list[str]:
    """Median ms at 544x960 LR (1080p-class output) of the plain student, the shipped per-pixel graph and the
    routers, through the benchmark's own lowering; a routed frame costs a router plus the plain student."""
    size = (544, 960)
    recipe = dataclasses.replace(pipeline.resolve_recipe("executorch-xnnpack"), input_sizes=(size,))
    deployed = pipeline.prepare(LoadedModel(metasr, "metasr-x2"), recipe).model
    graphs = {
        "plain student (= one expert)": (plain, (torch.rand(1, 3, *size),)),
        "per-pixel FiLM (shipped)": (deployed, (torch.rand(1, 3, *size), deployed.default_strength())),
        f"router, tile {args.tile}": (TileRouter(deployed, centroids, args.tile), (torch.rand(1, 3, *size),)),
        f"router on x1/{args.thumbnail}": (
            TileRouter(deployed, centroids, args.tile, args.thumbnail),
            (torch.rand(1, 3, *size),),
        ),
    }
    times: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="routing-latency-") as tmp:
        for name, (module, inputs) in graphs.items():
            pte, onnx_path = Path(tmp) / "model.pte", Path(tmp) / "model.onnx"
            L.lower_xnnpack_int8(module, inputs, [inputs], pte)
            L.lower_onnx(module, inputs, onnx_path)
            times[name] = {
                "XNNPACK int8": L.time_pte(pte, inputs, 10, 1, args.threads).median_ms,
                "ORT CPU fp32": L.time_onnx(onnx_path, inputs, 10, 1, args.threads).median_ms,
            }
    student = times["plain student (= one expert)"]
    lines = [
        "",
        f"Median ms, 544x960 in (1088x1920 out), {args.threads} thread(s), the benchmark's own lowering; ratio: "
        "the graph (a router: plus one expert, the plain student's cost) over the plain student.",
        "",
        "| graph | XNNPACK int8 ms | ratio | ORT fp32 ms | ratio |",
        "|---|---|---|---|---|",
    ]
    for name, row in times.items():
        extra = 0.0 if name.startswith(("plain", "per-pixel")) else 1.0  # a router runs beside one expert
        cells = [f"{row[r]:.1f} | {(row[r] + extra * student[r]) / student[r]:.2f}" for r in row]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
