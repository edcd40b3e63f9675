"""metasr-profile: dispatch to host, adb, macOS or estimate, write the report, check the budget."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metasr.errors import MetaSRError
from metasr.exporter.registry import target_module
from metasr.profile.report import ProfileReport, ProfileRow, write_profile
from metasr.quiet import one_line
from metasr.runtime import REEXPORT, allowed_sizes, artifact_manifest, open_engine, read_manifest, takes_size


@dataclass(frozen=True)
class DeviceSpec:
    kind: str  # host | adb | macos | estimate
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> DeviceSpec:
        kind, _, name = text.partition(":")
        if kind not in ("host", "adb", "macos", "estimate") or (kind == "estimate" and not name):
            raise MetaSRError(f"unknown device '{text}'; use host, adb[:SERIAL], macos or estimate:NAME")
        return cls(kind, name or None)

    def __str__(self) -> str:
        return self.kind + (f":{self.name}" if self.name else "")


def profile_artifact(
    artifact: Path,
    device: DeviceSpec,
    input_size: tuple[int, int] | None = None,
    runs: int = 20,
    runner: Path | None = None,
) -> ProfileReport:
    """Profile ``artifact`` on ``device`` at ``input_size`` (default: the manifest's first size)."""
    if not artifact.exists():
        raise MetaSRError(f"artifact {artifact} does not exist; run metasr-export first")
    manifest = artifact_manifest(artifact) if device.kind == "host" else read_manifest(artifact)
    size = input_size or tuple(manifest["inputs"][0]["shapes"][0][2:4])
    h, w = size
    if min(size) < 1:
        raise MetaSRError(f"input size {h}x{w} has an empty side; pass --input-size HxW with sides of at least 1")
    if device.kind != "estimate" and not takes_size(manifest, size):  # an estimate pads any frame to whole cells
        raise MetaSRError(
            f"{artifact.name} takes {allowed_sizes(manifest)}, not {h}x{w}; pass --input-size with one of those"
        )
    dispatch = {"host": _host, "adb": _adb, "macos": _macos, "estimate": _estimate}[device.kind]
    return dispatch(artifact, manifest, device, size, runs, runner)


def check_budget(report: ProfileReport) -> None:
    """Raise (non-zero exit) when the headline latency exceeds the budget, naming the overrun."""
    over = report.over_budget_ms
    if over is not None and over > 0:
        label = "estimated" if report.kind == "estimate" else "measured"
        raise MetaSRError(
            f"{report.target} on {report.device}: {label} {report.headline_ms:.2f} ms exceeds the budget "
            f"{report.budget_ms:.2f} ms by {over:.2f} ms ({100 * over / report.budget_ms:.0f}%); "
            "use a smaller input size or tile, a lower-precision recipe, or raise latency_budget_ms"
        )


def profile_and_write(
    artifact: Path,
    device: DeviceSpec,
    input_size: tuple[int, int] | None,
    runs: int,
    budget_ms: float | None,
    runner: Path | None = None,
) -> tuple[ProfileReport, dict[str, Path]]:
    """Profile, write JSON/markdown/PNG into ``<artifact dir>/profile/``, then enforce the budget."""
    if budget_ms is not None:
        check_budget_ms(budget_ms, "--budget-ms (or the recipe's latency_budget_ms)")
    report = profile_artifact(artifact, device, input_size, runs, runner)
    report.budget_ms = budget_ms
    paths = write_profile(report, artifact.parent / "profile")
    check_budget(report)
    return report, paths


def check_budget_ms(budget_ms: object, source: str) -> float:
    """``budget_ms`` as a float when it is a usable budget (finite, > 0); otherwise a MetaSRError naming ``source``."""
    if isinstance(budget_ms, bool) or not isinstance(budget_ms, int | float) or not 0 < budget_ms < math.inf:
        raise MetaSRError(f"{source} is {one_line(repr(budget_ms), 40)}; give a finite number of milliseconds above 0")
    return float(budget_ms)


def recipe_budget(artifact: Path) -> float | None:
    """latency_budget_ms of the recipe the artifact was exported with (from its report.json), if it set one."""
    report = export_report(artifact)
    if report is None:
        return None
    recipe = report.get("recipe")
    if not isinstance(recipe, dict):
        raise MetaSRError(f"{artifact.parent / 'report.json'} has no recipe section; {REEXPORT}, or pass --budget-ms")
    budget = recipe.get("latency_budget_ms")
    source = f"latency_budget_ms in {artifact.parent / 'report.json'}"
    return None if budget is None else check_budget_ms(budget, source)


def export_report(artifact: Path) -> dict[str, Any] | None:
    """The report.json metasr-export wrote beside ``artifact``; None when there is none."""
    path = artifact.parent / "report.json"
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise MetaSRError(f"{path} is not a JSON report ({one_line(exc)}); {REEXPORT}") from exc
    if not isinstance(report, dict):
        raise MetaSRError(f"{path} holds a JSON {type(report).__name__}, not an export report; {REEXPORT}")
    return report


def _coverage_placement(artifact: Path) -> dict[str, int]:
    """Ops per compute unit from the export report's placement check."""
    report = export_report(artifact)
    if report is None:
        return {}
    cov = report.get("coverage")
    valid = isinstance(cov, dict) and isinstance(cov.get("where"), str)
    if not (valid and _count(cov.get("accelerated_ops")) and _count(cov.get("total_ops"))):
        raise MetaSRError(f"{artifact.parent / 'report.json'} has no valid coverage section; {REEXPORT}")
    placement = {cov["where"]: cov["accelerated_ops"]}
    if cov["total_ops"] > cov["accelerated_ops"]:
        placement["CPU fallback"] = cov["total_ops"] - cov["accelerated_ops"]
    return placement


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _host(artifact, manifest, device, size, runs, runner) -> ProfileReport:
    target = target_module(manifest["target"])
    if hasattr(target, "host_placement"):  # the host runtime emulates the accelerator: placement, not timing
        placement, notes = target.host_placement(artifact)
        row = ProfileRow(f"{target.WHERE}: placement only, no timing", None)
        return ProfileReport(
            str(artifact), target.NAME, str(device), "placement only", size, [row], placement, notes=notes
        )
    from metasr.profile.host import profile_host

    engine = open_engine(artifact, manifest)
    result = profile_host(engine, size, runs=runs)
    lat = result.latency
    label = engine.runtime if engine.routing is None else f"{engine.runtime}, routed whole (router + chosen experts)"
    rows = [ProfileRow(label, lat.median_ms, lat.p10_ms, lat.p90_ms, result.peak_rss_mb)]
    rows += [
        ProfileRow(f"{engine.runtime}, {name} alone", f.median_ms, f.p10_ms, f.p90_ms, part=True)
        for name, f in result.functions.items()
    ]
    notes = [f"measured on this host: {runs} runs after {result.warmup} warm-up runs; peak RSS of the process"]
    if engine.routing is not None:
        t = engine.routing.thumbnail
        notes.append(
            f"routed: the router alone runs on the x1/{t} thumbnail and each expert alone on the whole frame; an app "
            "runs the router once and, per tile, the expert it picks, so a frame costs about router + one expert"
        )
    return ProfileReport(
        str(artifact), target.NAME, str(device), "measured", size, rows, _coverage_placement(artifact), notes=notes
    )


def _adb(artifact, manifest, device, size, runs, runner) -> ProfileReport:
    from metasr.profile.adb import Adb, profile_with_app, profile_with_runner

    adb = Adb(device.name)
    result = profile_with_runner(adb, artifact, runner, runs) if runner else profile_with_app(adb, artifact, runs, size)
    lat = result.latency
    row = ProfileRow(result.method, lat.median_ms, lat.p10_ms, lat.p90_ms, result.peak_memory_mb)
    notes = [f"measured on the phone over adb ({result.method})"] + ([result.note] if result.note else [])
    if result.results:
        notes.append(f"device: {result.results.device.model} ({result.results.device.os})")
    return ProfileReport(
        str(artifact),
        manifest["target"],
        str(device),
        "measured",
        size,
        [row],
        _coverage_placement(artifact),
        notes=notes,
    )


def _macos(artifact, manifest, device, size, runs, runner) -> ProfileReport:
    from metasr.profile.macos import profile_coreml, require_macos

    require_macos()
    result = profile_coreml(artifact, manifest, size, runs)
    rows = [ProfileRow(units, s.median_ms, s.p10_ms, s.p90_ms) for units, s in result.latency.items()]
    notes = ["Core ML prediction timed per compute-unit setting; placement from MLComputePlan (CPU_AND_NE)"]
    return ProfileReport(
        str(artifact), manifest["target"], str(device), "measured", size, rows, result.placement, notes=notes
    )


def _estimate(artifact, manifest, device, size, runs, runner) -> ProfileReport:
    from metasr.profile.estimate import estimate_latency

    est = estimate_latency(manifest, size, device.name)
    row = ProfileRow(f"ESTIMATE {est.device} {est.unit}", est.total_ms)
    bound = sum(1 for layer in est.layers if layer.bound == "memory")
    notes = [
        f"{est.label}: per-layer max(MACs / effective peak, bytes / bandwidth) plus dispatch overhead",
        f"{bound} of {len(est.layers)} layers memory-bound",
        *[f"source: {s}" for s in est.sources],
    ]
    return ProfileReport(
        str(artifact),
        manifest["target"],
        str(device),
        "estimate",
        size,
        [row],
        {f"{est.unit} (estimate)": len(est.layers)},
        notes=notes,
    )
