"""The export pipeline, one function per stage; each stage takes and returns a plain object."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from metasr.assembly import load_graph
from metasr.data.sample_images import calibration_images
from metasr.errors import MetaSRError
from metasr.exporter import routed
from metasr.exporter.parity import parity as validate
from metasr.exporter.registry import target_module
from metasr.exporter.report import artifact_size, write_reports, write_routed_reports
from metasr.exporter.stages import (
    ExportResult,
    LoadedModel,
    LoweredArtifact,
    Macs,
    ParityResult,
    PreparedModel,
    QuantizedModel,
    TargetModule,
    with_defaults,
)
from metasr.model_zoo import default_model
from metasr.models.metasr import MetaSR
from metasr.models.routed import RoutedMetaSR
from metasr.recipes import Recipe, default_recipe_path, load_recipe, recipe_path, recipe_target
from metasr.validate.macs import count_macs

STAGES = ("load", "prepare", "quantize", "lower", "validate", "write")


def resolve_recipe(target: str | None, recipe: str | Path | None = None) -> Recipe:
    """Load a recipe (a file, or a bundled recipe's name) or the target's default, checked against its options.

    With ``target`` None the recipe's own ``target`` key decides."""
    if target is None and recipe is None:
        raise MetaSRError("name a target or a recipe; metasr-export --list shows both")
    path = recipe_path(recipe) if recipe is not None else default_recipe_path(target)
    target = target or recipe_target(path)
    loaded = load_recipe(path, target_module(target).Options)
    if loaded.target != target:
        raise MetaSRError(f"recipe is for target '{loaded.target}', not '{target}'; pass --target {loaded.target}")
    return loaded


def load(checkpoint: str | Path | None, scale: int) -> LoadedModel:
    """Stage 1: read the float graph (the bundled default unless a checkpoint is given); a plain student, or any
    MetaSR whose orchestrator is the identity, loads as the bare student; a routed checkpoint as RoutedMetaSR."""
    path = Path(checkpoint) if checkpoint else default_model(scale).path
    return LoadedModel(model=load_graph(path, scale), source=str(path) if checkpoint else f"bundled:{path.name}")


def prepare(loaded: LoadedModel, recipe: Recipe) -> PreparedModel:
    """Stage 2: fold training-time branches into plain convs, switch to sparse gates, measure the graph."""
    model = copy.deepcopy(loaded.model).eval().reparameterize()
    student = model
    if isinstance(model, MetaSR):
        model.orchestrator.hard = True  # deployed gates are sparse (see Orchestrator)
        student = model.student
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)  # not the fixed anchor and filters
    for p in model.parameters():
        p.requires_grad_(False)
    image = torch.zeros(1, 3, *recipe.input_size)
    out_pixels = recipe.input_size[0] * recipe.input_size[1] * model.scale**2
    total = count_macs(model, with_defaults(model, image))
    convs = count_macs(student, (image,))
    return PreparedModel(
        model, loaded.source, recipe, recipe.input_sizes, params, Macs(total / out_pixels, convs / out_pixels)
    )


def quantize(prepared: PreparedModel, target: TargetModule) -> QuantizedModel:
    """Stage 3: the target's quantization, calibrated on real photos."""
    return target.quantize(prepared, calibration_images(*prepared.input_size))


def lower(quantized: QuantizedModel, target: TargetModule, staging: Path) -> LoweredArtifact:
    """Stage 4: write the artifact into ``staging``; every compute op must land on the accelerator."""
    lowered = target.lower(quantized, staging)
    if lowered.coverage.fallback:
        ops = ", ".join(sorted(set(lowered.coverage.fallback))[:6])
        raise MetaSRError(
            f"target '{target.NAME}' cannot run {ops} on {lowered.coverage.where}; "
            "replace those ops with convs/ReLU/depth-to-space in the model, or export with --target onnx"
        )
    return lowered


def write(
    lowered: LoweredArtifact,
    prepared: PreparedModel,
    quantized: QuantizedModel,
    parity: ParityResult,
    staging: Path,
    out_dir: Path,
    seconds: dict[str, float],
) -> ExportResult:
    """Stage 6: reports and manifest beside the artifact, then an atomic move into ``out_dir``."""
    target = prepared.recipe.target
    write_reports(staging, lowered, prepared, quantized, parity, seconds)
    final = out_dir / target
    _replace_dir(staging, final)
    return ExportResult(
        target=target,
        artifact=final / lowered.path.name,
        report=final / "report.json",
        manifest=final / "manifest.json",
        size_bytes=artifact_size(final / lowered.path.name),
        parity=parity,
        coverage=lowered.coverage,
        seconds=sum(seconds.values()),
    )


def export(
    recipe: Recipe,
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    loaded: LoadedModel | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ExportResult:
    """Run every stage for ``recipe.target``; on any failure nothing is left in ``out_dir``."""
    target = target_module(recipe.target)
    out_dir = Path(out_dir)
    staging = _open_staging(out_dir, recipe.target)
    seconds: dict[str, float] = {}
    notify = on_stage or (lambda _stage: None)

    def timed(stage: str, fn, *args):
        notify(stage)
        start = time.perf_counter()
        result = fn(*args)
        seconds[stage] = time.perf_counter() - start
        return result

    try:
        loaded = loaded or timed("load", load, checkpoint, recipe.scale)
        if isinstance(loaded.model, RoutedMetaSR):
            return _export_routed(loaded, recipe, target, staging, out_dir, timed, seconds)
        prepared = timed("prepare", prepare, loaded, recipe)
        quantized = timed("quantize", quantize, prepared, target)
        lowered = timed("lower", lower, quantized, target, staging)
        parity = timed("validate", validate, lowered, prepared)
        if not parity.passed:
            raise MetaSRError(
                f"{recipe.target}: parity {parity.min_psnr_db:.2f} dB is below the recipe floor "
                f"{parity.floor_db:.2f} dB; use a higher-precision option in the recipe or retrain"
            )
        notify("write")
        return write(lowered, prepared, quantized, parity, staging, out_dir, seconds)
    except OSError as exc:  # a full disk, a file-size limit, a folder turned read-only mid-run
        raise MetaSRError(
            f"{recipe.target}: writing under {out_dir} failed ({exc.strerror or exc}); "
            "free disk space or choose another --out"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export_routed(
    loaded: LoadedModel,
    recipe: Recipe,
    target: TargetModule,
    staging: Path,
    out_dir: Path,
    timed: Callable,
    seconds: dict[str, float],
) -> ExportResult:
    """The stages for a routed MetaSR: every function prepared, quantized, lowered and checked (see
    :mod:`metasr.exporter.routed`), then the whole dispatched output checked before anything is written."""
    prepared = timed("prepare", routed.prepare, loaded.model, loaded.source, recipe)
    quantized = timed("quantize", routed.quantize, prepared, target)
    lowered = timed("lower", routed.lower, quantized, target, staging)
    parity = timed("validate", routed.validate, lowered, prepared)
    failing = {name: p for name, p in {**parity.experts, "routed whole": parity.whole}.items() if not p.passed}
    if failing:
        name, worst = next(iter(failing.items()))
        raise MetaSRError(
            f"{recipe.target}: {name} parity {worst.min_psnr_db:.2f} dB is below the recipe floor "
            f"{worst.floor_db:.2f} dB; use a higher-precision option in the recipe or retrain"
        )
    timed("write", write_routed_reports, staging, lowered, prepared, quantized, parity, seconds)
    final = out_dir / recipe.target
    _replace_dir(staging, final)
    primary = lowered.functions[routed.ROUTER].path.name
    return ExportResult(
        target=recipe.target,
        artifact=final / primary,
        report=final / "report.json",
        manifest=final / "manifest.json",
        size_bytes=sum(artifact_size(final / f.name) for f in lowered.files),
        parity=parity.whole,
        coverage=lowered.coverage,
        seconds=sum(seconds.values()),
    )


def _open_staging(out_dir: Path, target: str) -> Path:
    """Check ``out_dir`` and ``out_dir/target`` before any heavy work, clear staging left by killed runs, and
    create this run's staging folder (named with the process id, so a later run knows when it is stale)."""
    final = out_dir / target
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MetaSRError(
            f"cannot create output folder {out_dir} ({exc.strerror or exc}); choose a writable --out"
        ) from exc
    if final.exists() and not final.is_dir():
        raise MetaSRError(f"{final} is a file, not a folder; move it away or choose another --out")
    foreign = sorted(p.name for p in final.iterdir() if not _written_by_metasr(p.name)) if final.is_dir() else []
    if foreign:
        raise MetaSRError(
            f"{final} holds files metasr did not write ({', '.join(foreign[:3])}); move them or choose another --out"
        )
    _remove_stale(out_dir)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".staging-{target}-{os.getpid()}-", dir=out_dir))
        staging.chmod(0o755)
    except OSError as exc:
        raise MetaSRError(f"cannot write into {out_dir} ({exc.strerror or exc}); choose a writable --out") from exc
    return staging


def _written_by_metasr(name: str) -> bool:
    """Artifacts (``metasr*``), reports, manifest and profiles: what re-export may replace."""
    return name.startswith(("metasr", "profile-")) or name in ("report.json", "report.md", "manifest.json")


def _remove_stale(out_dir: Path) -> None:
    """Delete ``.staging-*`` and ``.old-*`` folders whose process is gone (a kill -9, a power cut)."""
    for path in out_dir.iterdir():
        if path.name.startswith((".staging-", ".old-")) and not _alive(_owner_pid(path.name)):
            shutil.rmtree(path, ignore_errors=True)


def _owner_pid(name: str) -> int | None:
    return next((int(part) for part in name.split("-")[1:] if part.isdigit()), None)


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an existing ``dst`` only once the new one is in place."""
    old = dst.with_name(f".old-{dst.name}-{os.getpid()}-{time.time_ns()}")
    if dst.exists():
        dst.rename(old)
    try:
        src.rename(dst)
    except OSError:
        if old.exists():
            old.rename(dst)
        raise
    shutil.rmtree(old, ignore_errors=True)
