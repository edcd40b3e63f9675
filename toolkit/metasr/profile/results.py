"""Benchmark results JSON written by android_demo and ios_demo: parse, check and write it.

The file format is ``metasr/schemas/benchmark_results.schema.json``. Beyond the schema, the summary statistics
must agree with ``latencies_ms`` (recomputed with :func:`percentile`), ``runs`` must equal the number of latencies,
and ``runtime`` must be one that can execute ``artifact.target``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from metasr.atomic import atomic_path
from metasr.errors import MetaSRError
from metasr.exporter.registry import TARGETS, target_module
from metasr.schemas import check

SCHEMA = "benchmark_results"
SCHEMA_VERSION = 1
# Apps round latencies and statistics to 3 decimals (microseconds); this absorbs that rounding.
TOLERANCE_MS = 1e-3


@functools.cache
def runtime_targets() -> dict[str, str]:
    """Which manifest target each app runtime executes, as the target modules declare (``APP_RUNTIME``)."""
    return {target_module(name).APP_RUNTIME: name for name in TARGETS}


@dataclass(frozen=True)
class Device:
    """The phone the benchmark ran on."""

    model: str
    os: str
    soc: str | None
    manufacturer: str | None = None


@dataclass(frozen=True)
class ArtifactRef:
    """The artifact that was timed, as named by its manifest.json."""

    file: str
    target: str
    model_sha256: str


@dataclass(frozen=True)
class BenchmarkResults:
    """One on-device benchmark: per-run latencies of the model at one input size, and their summary."""

    app: str
    device: Device
    artifact: ArtifactRef
    runtime: str
    input_size: tuple[int, int]
    scale: int
    warmup_runs: int
    runs: int
    latencies_ms: tuple[float, ...]
    median_ms: float
    p10_ms: float
    p90_ms: float
    peak_memory_mb: float | None
    timestamp: datetime
    backend: str | None = None
    compute_units: str | None = None
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> BenchmarkResults:
        """Validate ``doc`` (schema and consistency) and build the results; raises MetaSRError."""
        validate(doc)
        device, artifact = doc["device"], doc["artifact"]
        return cls(
            app=doc["app"],
            device=Device(device["model"], device["os"], device["soc"], device.get("manufacturer")),
            artifact=ArtifactRef(artifact["file"], artifact["target"], artifact["model_sha256"]),
            runtime=doc["runtime"],
            input_size=(doc["input_size"][0], doc["input_size"][1]),
            scale=doc["scale"],
            warmup_runs=doc["warmup_runs"],
            runs=doc["runs"],
            latencies_ms=tuple(float(v) for v in doc["latencies_ms"]),
            median_ms=float(doc["median_ms"]),
            p10_ms=float(doc["p10_ms"]),
            p90_ms=float(doc["p90_ms"]),
            peak_memory_mb=None if doc["peak_memory_mb"] is None else float(doc["peak_memory_mb"]),
            timestamp=_parse_timestamp(doc["timestamp"]),
            backend=doc.get("backend"),
            compute_units=doc.get("compute_units"),
            schema_version=doc["schema_version"],
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, keys in the order the apps write them (optional keys only when set)."""
        device: dict[str, Any] = {"model": self.device.model, "os": self.device.os, "soc": self.device.soc}
        if self.device.manufacturer is not None:
            device = {"manufacturer": self.device.manufacturer, **device}
        doc: dict[str, Any] = {
            "schema_version": self.schema_version,
            "app": self.app,
            "device": device,
            "artifact": {
                "file": self.artifact.file,
                "target": self.artifact.target,
                "model_sha256": self.artifact.model_sha256,
            },
            "runtime": self.runtime,
        }
        if self.backend is not None:
            doc["backend"] = self.backend
        if self.compute_units is not None:
            doc["compute_units"] = self.compute_units
        doc.update(
            {
                "input_size": list(self.input_size),
                "scale": self.scale,
                "warmup_runs": self.warmup_runs,
                "runs": self.runs,
                "latencies_ms": list(self.latencies_ms),
                "median_ms": self.median_ms,
                "p10_ms": self.p10_ms,
                "p90_ms": self.p90_ms,
                "peak_memory_mb": self.peak_memory_mb,
                "timestamp": _format_timestamp(self.timestamp),
            }
        )
        return doc


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) by linear interpolation between closest ranks, as the apps compute it."""
    if not values:
        raise MetaSRError("cannot take a percentile of no latencies; run the benchmark with runs >= 1")
    ordered = sorted(values)
    rank = p / 100.0 * (len(ordered) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def summarize(latencies_ms: Sequence[float]) -> tuple[float, float, float]:
    """(median, p10, p90) of ``latencies_ms``."""
    return percentile(latencies_ms, 50), percentile(latencies_ms, 10), percentile(latencies_ms, 90)


def validate(doc: dict[str, Any]) -> None:
    """Raise MetaSRError (one line) unless ``doc`` matches the schema and its statistics are consistent."""
    check(doc, SCHEMA)
    latencies = doc["latencies_ms"]
    if doc["runs"] != len(latencies):
        raise MetaSRError(f"runs is {doc['runs']} but latencies_ms has {len(latencies)} values; they must agree")
    for key, expected in zip(("median_ms", "p10_ms", "p90_ms"), summarize(latencies), strict=True):
        if not math.isclose(doc[key], expected, rel_tol=0.0, abs_tol=TOLERANCE_MS):
            raise MetaSRError(
                f"{key} is {doc[key]} but latencies_ms give {expected:.3f} (linear-interpolated percentile); "
                "recompute it from latencies_ms"
            )
    target, runtime = doc["artifact"]["target"], doc["runtime"]
    expected = runtime_targets()[runtime]
    if expected != target:
        raise MetaSRError(f"runtime '{runtime}' cannot run a '{target}' artifact; expected target '{expected}'")
    _parse_timestamp(doc["timestamp"])


def load_results(path: str | Path) -> BenchmarkResults:
    """Parse and validate a benchmark results JSON file (as pulled from the phone)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise MetaSRError(f"{path}: no such benchmark results file; pull it from the device first") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise MetaSRError(f"{path}: not valid JSON ({first}); re-run the benchmark and pull the file again") from exc
    if not isinstance(doc, dict):
        raise MetaSRError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    try:
        return BenchmarkResults.from_dict(doc)
    except MetaSRError as exc:
        raise MetaSRError(f"{path}: {exc}") from exc


def write_results(results: BenchmarkResults, path: str | Path) -> Path:
    """Validate ``results`` and write them atomically."""
    path = Path(path)
    doc = results.to_dict()
    validate(doc)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def _parse_timestamp(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MetaSRError(f"timestamp '{text}' is not ISO 8601; write e.g. 2025-06-01T12:00:00Z") from exc
    if stamp.tzinfo is None:
        raise MetaSRError(f"timestamp '{text}' has no UTC offset; write e.g. 2025-06-01T12:00:00Z")
    return stamp


def _format_timestamp(stamp: datetime) -> str:
    if stamp.tzinfo is None:
        raise MetaSRError("BenchmarkResults.timestamp must be timezone-aware (e.g. datetime.now(UTC))")
    return stamp.isoformat().replace("+00:00", "Z")
