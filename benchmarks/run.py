"""One command for every benchmark table: ``python -m benchmarks.run`` (``make bench``), or ``--quick``.

Writes ``BENCHMARKS.md`` (tables, machine, command) and one CSV per table into ``--out``:

1. quality: Y-PSNR / SSIM / gradient-magnitude similarity at x2 and x4, photos and the corpus's
   validation split, bicubic and realistic degradation; text legibility (OCR character accuracy);
2. quant_loss: float -> lowered artifact Y-PSNR on every export target;
3. latency: ExecuTorch XNNPACK int8 and ONNX Runtime fp32 at 960x540 -> 1920x1080 (x2) and
   480x270 -> 1920x1080 (x4), against this CPU's measured int8 GEMM peak;
4. overhead: the MetaSR graph against its student alone (device metadata + orchestrator removed);
5. app_latency: the routed graphs (the defaults and the opt-in capacity- and quality-routed x2 models) against
   their plain experts, both exported and run call by call as an app does (256-px app tiles, and whole
   1080p-output frames);
   app_quality: their Y-PSNR through those app tiles, the calls each expert takes and what they cost;
   designs: issue 17's (a), (b), (c) timed side by side on one frame;
6. export_time: ``metasr-export --target all`` wall time, per target and stage;
7. ncnn_latency: the pretrained peers (``benchmarks/peers``) in ncnn's own fp32 CPU runtime, at the latency sizes.

Pretrained peers get quality, legibility and latency rows like any network, no quantization-loss rows;
``python -m benchmarks.peers`` measures them alone (parity with ncnn, photos, ncnn time) in a few minutes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks import entries as E
from benchmarks import latency as L
from benchmarks.app_latency import FRAMES, app_latency_rows, app_quality_rows
from benchmarks.architectures import ARCHITECTURES
from benchmarks.conditioning import rows as design_rows
from benchmarks.legibility import TextReader, legibility, text_samples
from benchmarks.peers.measure import time_ncnn
from benchmarks.quality import DEGRADATIONS, PHOTOS, pairs, photo_set, score
from benchmarks.quant_loss import TARGETS, prepare_plain, quant_loss
from benchmarks.report import render
from metasr.data.folder import list_images, load_for_training, split_images
from metasr.exporter import pipeline
from metasr.metadata import CELL
from metasr.model_zoo import WeightsCard, default_model, model_card
from metasr.peers.zoo import PEERS
from metasr.progress import progress_bar
from metasr.safe_weights import shipped_teacher_path
from metasr.validate.macs import count_macs

BUDGET_FILE = Path(__file__).parent / "anchors" / "weights" / "training.jsonl"
APP_RUNS = 5  # per photo and artifact in the app-latency table
FINDINGS_FILE = Path(__file__).parent / "findings.md"  # hand-written reading of the published full run
PLAIN = (
    "40000 steps x 16 x 48^2 LR, bicubic, then 40000 on SPAN-ch48's outputs (the last 10000 with data/photos; "
    "plain student, exported bare)"
)
DISTILLED_DEFAULT = "distilled from the teacher, clean patches anchored to the plain student"
ROUTED_TRAINING = "conv router over the plain student (SPAN-taught) and a mild Real-ESRGAN fine-tune, one call each"
DEFAULT_ROW = "MetaSR graph, shipped default"
PER_PIXEL_ROW = "MetaSR graph, per-pixel (metasr-x2)"
PLAIN_X4_ROW = "plain student x4 (student-x4)"
CORPUS_SIDE = 1600  # the size the corpus validation images are loaded at (load_for_training)
CAPACITY = "metasr-x2-capacity"  # opt-in: the x2 default's router and experts plus a 2-block expert for easy tiles
CAPACITY_ROW = "MetaSR graph, capacity-routed (metasr-x2-capacity)"
CAPACITY_TRAINING = "the default's experts and a 2-block SPAN-taught student; router fine-tuned from the default's"
QUALITY = "metasr-x2-quality"  # opt-in: the x2 default with an 8-block clean expert
QUALITY_ROW = "MetaSR graph, quality-routed (metasr-x2-quality)"
QUALITY_TRAINING = "the default's router and damage expert, an 8-block SPAN-taught clean expert"


@dataclass(frozen=True)
class Settings:
    """What one run measures; :data:`FULL` is the published run, :data:`QUICK` the smoke test."""

    name: str
    scales: tuple[int, ...]
    architectures: tuple[str, ...]
    photos: tuple[str, ...]
    corpus_images: int  # validation-split images from the corpus (0: none)
    max_side: int  # HR crop side for quality
    text: bool
    quant_scales: tuple[int, ...]
    quant_targets: tuple[str, ...]
    quant_size: tuple[int, int]
    latency_sizes: dict[int, tuple[int, int]]  # scale -> LR (height, width)
    latency_runs: int
    peak_shape: tuple[int, int, int]
    export_targets: str  # the --target given to metasr-export
    realworld: bool  # the opt-in distilled x2 graph, with and without its metadata, and the routed graph
    teacher: bool
    peers: tuple[str, ...] = ()  # pretrained peers (benchmarks/peers) at the scales measured
    timed_peers: tuple[str, ...] = ()  # the peers in the latency tables (big: SPAN-ch48 is ~7x the student's MACs)
    peer_runs: int = 3  # timed runs per peer and runtime (one frame takes seconds)


FULL = Settings(
    name="full",
    scales=(2, 4),
    architectures=tuple(ARCHITECTURES),
    photos=PHOTOS,
    corpus_images=6,
    max_side=384,
    text=True,
    quant_scales=(2,),
    quant_targets=TARGETS,
    quant_size=(64, 64),
    latency_sizes={2: (540, 960), 4: (270, 480)},
    latency_runs=20,
    peak_shape=(2048, 2048, 2048),
    export_targets="all",
    realworld=True,
    teacher=True,
    peers=tuple(PEERS),
    # SRMD (~1.5 M MACs per LR pixel; an ORT fp32 frame at 960x540, estimated from 48x32, ~25 s here): quality only
    timed_peers=("span-ch48-x2", "span-ch48-x4", "realesr-animevideov3-x2", "realesr-animevideov3-x4"),
)
QUICK = Settings(
    name="quick",
    scales=(2,),
    architectures=("quicksrnet-small", "student-small"),
    photos=("astronaut",),
    corpus_images=0,
    max_side=128,
    text=False,
    quant_scales=(2,),
    quant_targets=("onnx", "executorch-xnnpack"),
    quant_size=(64, 64),
    latency_sizes={2: (64, 64)},
    latency_runs=3,
    peak_shape=(256, 256, 256),
    export_targets="onnx",
    realworld=False,
    teacher=False,
)

Row = dict[str, object]


def build_entries(settings: Settings, teacher: Path | None) -> list[E.Entry]:
    """Every model row, per scale: bicubic, the trained architectures, the shipped MetaSR graphs, the teacher."""
    budget = _budget()
    rows: list[E.Entry] = []
    for scale in settings.scales:
        rows.append(E.bicubic(scale))
        rows += [E.trained(name, scale, budget) for name in settings.architectures]
        rows.append(_default_entry(scale))
        if scale == 2:  # the per-pixel MetaSR graph: latency and overhead rows against its student
            rows.append(E.metasr(PER_PIXEL_ROW, model_card("metasr-x2").path, 2, DISTILLED_DEFAULT))
        if scale == 4:  # the default's clean expert, exported bare: the x4 latency rows
            rows.append(E.metasr(PLAIN_X4_ROW, model_card("student-x4").path, 4, PLAIN))
        if scale == 2 and settings.realworld:
            rows.append(E.routed(CAPACITY_ROW, model_card(CAPACITY).path, CAPACITY_TRAINING))
            rows.append(E.routed(QUALITY_ROW, model_card(QUALITY).path, QUALITY_TRAINING))
            distilled = "distilled from the teacher, realistic degradations"
            # quantization only: its ops are the per-pixel graph's minus the damage estimator, which that one times
            rows.append(E.metasr("MetaSR graph, realworld", E.REALWORLD, 2, distilled, timed=False))
            rows.append(E.metasr("MetaSR graph, realworld, metadata off", E.REALWORLD, 2, distilled, metadata=False))
        if scale == 2 and settings.teacher and teacher is not None and teacher.is_file():
            rows.append(E.teacher(teacher))
        rows += [
            E.peer(name, timed=name in settings.timed_peers) for name in settings.peers if PEERS[name].scale == scale
        ]
    return rows


def _default_entry(scale: int) -> E.Entry:
    """The shipped default for ``scale``: a routed model (quality rows here; ``app_latency`` times its artifact
    against its plain expert), or a MetaSR graph / bare student (lowered and timed like any network)."""
    card = default_model(scale)
    if card.graph == "routed":
        return E.routed(DEFAULT_ROW, card.path, _shipped_training(scale))
    return E.metasr(DEFAULT_ROW, card.path, scale, _shipped_training(scale))


def _shipped_training(scale: int) -> str:
    """How the default model for ``scale`` was trained."""
    return {"routed": ROUTED_TRAINING, "metasr": DISTILLED_DEFAULT}.get(default_model(scale).graph, PLAIN)


def quality_rows(
    entries: list[E.Entry], settings: Settings, corpus: Path | None, tick: Callable[[], None]
) -> list[Row]:
    sets = _image_sets(settings, corpus)
    rows = []
    for scale in settings.scales:
        for set_name, images in sets.items():
            for degradation in DEGRADATIONS:
                image_pairs = pairs(images, scale, degradation, settings.max_side)
                for entry in (e for e in entries if e.scale == scale):
                    s = score(entry.run, image_pairs, scale)
                    rows.append(_row(entry, set=set_name, degradation=degradation, psnr=s.psnr, ssim=s.ssim, gms=s.gms))
                    tick()
    return rows


def legibility_rows(entries: list[E.Entry], tick: Callable[[], None]) -> list[Row]:
    samples, reader = text_samples(), TextReader()
    rows = []
    for entry in entries:
        accuracy = legibility(entry.run, samples, entry.scale, reader)
        rows.append(_row(entry, **accuracy, mean=sum(accuracy.values()) / len(accuracy)))
        tick()
    return rows


def quant_rows(entries: list[E.Entry], settings: Settings, tick: Callable[[], None]) -> list[Row]:
    rows = []
    """Plain networks through every target's quantize/lower/validate; the MetaSR graph's rows come from
    the export run (:func:`export_rows`)."""
    for entry in (e for e in entries if e.net is not None and not e.pretrained and e.scale in settings.quant_scales):
        for target in settings.quant_targets:
            loss = quant_loss(prepare_plain(entry.net, entry.scale, target, settings.quant_size))
            rows.append(_row(entry, target=target, mean_db=loss.mean_db, min_db=loss.min_db, error=loss.error))
            tick()
    return rows


def latency_rows(entries: list[E.Entry], settings: Settings, peak: L.Peak, tick: Callable[[], None]) -> list[Row]:
    rows = []
    for entry in (e for e in entries if e.lowerable and e.timed and e.scale in settings.latency_sizes):
        runs = settings.peer_runs if entry.pretrained else settings.latency_runs
        rows += measure_latency(entry, settings.latency_sizes[entry.scale], runs, peak)
        tick()
    return rows


def ncnn_latency_rows(entries: list[E.Entry], settings: Settings, tick: Callable[[], None]) -> list[Row]:
    """The timed peers in ncnn's fp32 CPU runtime (their own engine), on all cores, at the latency sizes."""
    rows = []
    for entry in (e for e in entries if e.pretrained and e.timed and e.scale in settings.latency_sizes):
        h, w = settings.latency_sizes[entry.scale]
        stats = time_ncnn(entry.name, (h, w), settings.peer_runs, threads=L.CPU_THREADS)
        rows.append(
            _row(
                entry,
                runtime="ncnn CPU fp32",
                input=f"{w}x{h}",
                output=f"{w * entry.scale}x{h * entry.scale}",
                median_ms=stats.median_ms,
                p10_ms=stats.p10_ms,
                p90_ms=stats.p90_ms,
                threads=L.CPU_THREADS,
            )
        )
        tick()
    return rows


def measure_latency(entry: E.Entry, size: tuple[int, int], runs: int, peak: L.Peak) -> list[Row]:
    """int8 XNNPACK and fp32 ORT latency of one entry; a MetaSR graph runs on whole metadata cells (padded)."""
    module, inputs = _lowerable(entry, size)
    h, w = inputs[0].shape[-2:]
    probe = (torch.rand(1, 3, 4 * CELL, 4 * CELL), *inputs[1:])  # MACs per pixel do not depend on the size
    macs_per_px = count_macs(module, probe) / (16 * CELL * CELL * entry.scale**2)
    macs = macs_per_px * h * w * entry.scale**2
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        pte, onnx_path = Path(tmp) / "model.pte", Path(tmp) / "model.onnx"
        coverage = L.lower_xnnpack_int8(module, inputs, [inputs], pte)
        int8 = L.time_pte(pte, inputs, runs, warmup=1)
        L.lower_onnx(module, inputs, onnx_path)
        fp32 = L.time_onnx(onnx_path, inputs, runs, warmup=1)
    common = {"input": f"{w}x{h}", "output": f"{w * entry.scale}x{h * entry.scale}", "macs_per_px": macs_per_px}
    for runtime, stats in (("XNNPACK int8", int8), ("ORT CPU fp32", fp32)):
        rate = macs / (stats.median_ms / 1e3)
        rows.append(
            _row(
                entry,
                runtime=runtime,
                **common,
                median_ms=stats.median_ms,
                p10_ms=stats.p10_ms,
                p90_ms=stats.p90_ms,
                gmacs_per_s=rate / 1e9,
                peak_pct=100 * rate / peak.macs_per_s if runtime == "XNNPACK int8" else math.nan,
                delegated=f"{coverage.accelerated}/{coverage.total}" if runtime == "XNNPACK int8" else "-",
            )
        )
    return rows


def overhead_rows(
    entries: list[E.Entry], latency: list[Row], settings: Settings, tick: Callable[[], None]
) -> list[Row]:
    """Each MetaSR graph's latency rows against its student alone, lowered and timed the same way."""
    rows = []
    for entry in (e for e in entries if e.checkpoint is not None and e.timed and e.scale in settings.latency_sizes):
        graph = {r["runtime"]: r for r in latency if r["model"] == entry.name and r["scale"] == entry.scale}
        size = settings.latency_sizes[entry.scale]
        peak = L.Peak(1, 1.0, math.nan, 0)  # the peak fraction is not reported here
        alone = {r["runtime"]: r for r in measure_latency(E.student_of(entry), size, settings.latency_runs, peak)}
        for runtime, g in graph.items():
            s = alone[runtime]
            rows.append(
                _row(
                    entry,
                    runtime=runtime,
                    input=g["input"],
                    graph_ms=g["median_ms"],
                    student_ms=s["median_ms"],
                    overhead_ms=g["median_ms"] - s["median_ms"],
                    overhead_pct=100 * (g["median_ms"] / s["median_ms"] - 1),
                    macs_overhead_pct=100 * (g["macs_per_px"] / s["macs_per_px"] - 1),
                )
            )
        tick()
    return rows


def export_rows(settings: Settings, scale: int = 2) -> tuple[list[Row], list[Row]]:
    """``metasr-export --target ...`` of the shipped default graph in a child process.

    Returns the wall-time rows (per target and stage, and the whole command) and quant-loss rows for the
    shipped graph, read from each target's report (parity at the recipe's input size).
    """
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        exporter = str(Path(sys.executable).parent / "metasr-export")
        command = [exporter, "--target", settings.export_targets, "--scale", str(scale), "--out", tmp]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1]}")
        times, parity = [], []
        graph = E.Entry(DEFAULT_ROW, scale, _shipped_training(scale), E.bicubic(scale).run)
        for path in sorted(Path(tmp).glob("*/report.json")):
            report = json.loads(path.read_text())
            stages = report["stage_seconds"]
            times.append({"target": report["target"], **stages, "total_s": sum(stages.values())})
            psnrs = report["parity"]["y_psnr_db"]
            size = "x".join(map(str, report["recipe"]["input_sizes"][0]))
            parity.append(
                _row(
                    graph,
                    target=report["target"],
                    mean_db=sum(psnrs) / len(psnrs),
                    min_db=float(report["parity"]["min_y_psnr_db"]),
                    error=f"(from the export report, {size} input)",
                )
            )
    times.append({"target": f"--target {settings.export_targets} (wall, one process)", "total_s": wall})
    return times, parity


def run(settings: Settings, out: Path, report: Path, corpus: Path | None, teacher: Path | None) -> dict[str, list[Row]]:
    """Measure everything ``settings`` asks for; write the CSVs into ``out`` and the markdown to ``report``."""
    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    entries = build_entries(settings, teacher)
    tables: dict[str, list[Row]] = {}
    started = time.perf_counter()
    with progress_bar() as bar:
        steps = {
            "latency": lambda tick: latency_rows(entries, settings, _peak(settings, tables), tick),
            "overhead": lambda tick: overhead_rows(entries, tables["latency"], settings, tick),
            "ncnn_latency": (lambda tick: ncnn_latency_rows(entries, settings, tick)) if settings.timed_peers else None,
            "app_latency": (
                lambda tick: [
                    row
                    for card in _routed_cards(settings)
                    for frame in (None, FRAMES[card.scale])
                    for row in app_latency_rows(card.path, settings.photos, APP_RUNS, frame)
                ]
            )
            if settings.realworld
            else None,
            "app_quality": (
                lambda tick: [
                    row
                    for card in _routed_cards(settings)
                    for row in app_quality_rows(card.path, _app_sets(settings, corpus))
                ]
            )
            if settings.realworld
            else None,
            "designs": (lambda tick: design_rows(FRAMES[2], APP_RUNS, lambda _: tick()))
            if settings.realworld
            else None,
            "export_time": lambda tick: _export(settings, tables),
            "quality": lambda tick: quality_rows(entries, settings, corpus, tick),
            "legibility": (lambda tick: legibility_rows(entries, tick)) if settings.text else None,
            "quant_loss": lambda tick: quant_rows(entries, settings, tick) + tables.pop("_graph_parity"),
        }
        for name, step in steps.items():
            if step is None:
                continue
            task = bar.add_task(name, total=None)
            tables[name] = step(lambda task=task: bar.advance(task))
            bar.update(task, total=1, completed=1)
            _write_csv(out / f"{name}.csv", tables[name])
    _write_csv(out / "peak.csv", tables["peak"])
    minutes = (time.perf_counter() - started) / 60
    findings = FINDINGS_FILE.read_text() if settings is FULL and FINDINGS_FILE.is_file() else ""
    report.write_text(render(tables, settings, _machine(), _command(), minutes, findings))
    return tables


def _routed_cards(settings: Settings) -> list[WeightsCard]:
    """The routed defaults of the scales measured, then the opt-in x2 routed models (capacity, quality)."""
    defaults = [card for card in map(default_model, settings.scales) if card.graph == "routed"]
    return [*defaults, *(map(model_card, (CAPACITY, QUALITY)) if 2 in settings.scales else ())]


def _image_sets(settings: Settings, corpus: Path | None) -> dict[str, list[np.ndarray]]:
    """The photos, and the corpus's validation images at 1600 px when a corpus is given."""
    sets = {"photos": photo_set(settings.photos)}
    if corpus is not None and settings.corpus_images:
        _, val = split_images(list_images(corpus))
        sets["corpus-val"] = [load_for_training(p, CORPUS_SIDE) for p in val[: settings.corpus_images]]
    return sets


def _app_sets(settings: Settings, corpus: Path | None) -> dict[str, tuple[list[np.ndarray], int]]:
    """:func:`_image_sets` with the HR side to crop to: the photos at their own size, the corpus at 1600 px."""
    sides = {"photos": 8192, "corpus-val": CORPUS_SIDE}
    return {name: (images, sides[name]) for name, images in _image_sets(settings, corpus).items()}


def _export(settings: Settings, tables: dict[str, list[Row]]) -> list[Row]:
    times, tables["_graph_parity"] = export_rows(settings)
    return times


def _peak(settings: Settings, tables: dict[str, list[Row]]) -> L.Peak:
    m, k, n = settings.peak_shape
    peak = L.int8_peak(m, k, n)
    tables["peak"] = [
        {
            "gemm": f"{m}x{k} @ {k}x{n}",
            "median_ms": peak.median_ms,
            "gmacs_per_s": peak.macs_per_s / 1e9,
            "threads": peak.threads,
        }
    ]
    return peak


def _lowerable(entry: E.Entry, size: tuple[int, int]) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    if entry.net is not None:
        return entry.net, (torch.rand(1, 3, *size),)
    padded = tuple(-(-side // CELL) * CELL for side in size)
    recipe = dataclasses.replace(
        pipeline.resolve_recipe("executorch-xnnpack"), scale=entry.scale, input_sizes=(padded,)
    )
    prepared = pipeline.prepare(pipeline.load(entry.checkpoint, entry.scale), recipe)
    return prepared.model, prepared.example_inputs(padded)


def _row(entry: E.Entry, **values: object) -> Row:
    return {"model": entry.name, "scale": entry.scale, "trained": entry.trained, **values}


def _budget() -> str:
    """The shared training recipe, read from the training log beside the weights."""
    if not BUDGET_FILE.is_file():
        return "benchmark recipe"
    record = json.loads(BUDGET_FILE.read_text().splitlines()[0])
    return f"{record['steps']} steps x {record['batch']} x {record['patch']}^2 LR, bicubic"


def _write_csv(path: Path, rows: list[Row]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)


def _csv_value(value: object) -> object:
    return f"{value:.4f}" if isinstance(value, float) else value


def _machine() -> dict[str, str]:
    import executorch.version
    import onnxruntime

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": str(L.CPU_THREADS),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "executorch": executorch.version.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _command() -> str:
    return "python -m benchmarks.run " + " ".join(sys.argv[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of every table (about 2 min)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--report", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    parser.add_argument("--teacher", type=Path, default=shipped_teacher_path())
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    corpus = args.corpus if args.corpus.is_dir() else None
    tables = run(settings, args.out, args.report, corpus, args.teacher)
    print(f"wrote {args.report} and {len(tables)} tables to {args.out}")


if __name__ == "__main__":
    main()
