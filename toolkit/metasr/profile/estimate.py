"""Latency ESTIMATE from a roofline cost model: per-layer MACs and bytes moved vs a device table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from metasr.assembly import build_metasr
from metasr.errors import MetaSRError
from metasr.exporter.registry import target_module
from metasr.exporter.stages import with_defaults
from metasr.metadata import CELL
from metasr.models import MetaSRStudent, StudentConfig
from metasr.validate.macs import layer_work

DEVICES_FILE = Path(__file__).resolve().with_name("devices.yaml")  # package data
DEVICES_NAME = "metasr/profile/devices.yaml"


@dataclass(frozen=True)
class LayerCost:
    name: str
    macs: int
    bytes_moved: int
    ms: float
    bound: str  # "compute" or "memory"


@dataclass(frozen=True)
class Estimate:
    """Predicted latency on a named device; always an estimate, never a measurement."""

    device: str
    unit: str
    total_ms: float
    layers: list[LayerCost]
    sources: list[str]
    label: str = "ESTIMATE (roofline cost model, not measured)"


def load_devices(path: Path = DEVICES_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def estimate_latency(manifest: dict[str, Any], input_size: tuple[int, int], device: str) -> Estimate:
    """Sum over layers of max(MACs / effective throughput, bytes / bandwidth), plus dispatch overhead."""
    model = manifest["model"]
    if model["graph"] == "custom":
        raise MetaSRError(
            f"{manifest['file']} holds a custom network ({model['class']}) the cost model cannot rebuild from its "
            "manifest; profile it with --device host, adb or macos"
        )
    devices = load_devices()
    if device not in devices:
        raise MetaSRError(f"unknown device '{device}'; choose one of {', '.join(devices)} ({DEVICES_NAME})")
    spec = devices[device]
    cost = target_module(manifest["target"]).COST
    unit_name, act_bytes, weight_bytes, key = cost.unit, cost.activation_bytes, cost.weight_bytes, cost.throughput
    if unit_name not in spec["units"]:
        raise MetaSRError(f"{device} has no {unit_name} in {DEVICES_NAME}; estimate another target or device")
    unit = spec["units"][unit_name]
    if key not in unit:
        raise MetaSRError(f"{device} {unit_name} lists no {key}; add it to {DEVICES_NAME}")
    macs_per_s = unit[key] * 1e12 / 2 * unit["efficiency"]
    bytes_per_s = spec["memory_bandwidth_gbs"] * 1e9
    layers = []
    for name, macs, moved in _layer_work(manifest, input_size, act_bytes, weight_bytes):
        compute_s, memory_s = macs / macs_per_s, moved / bytes_per_s
        bound = "compute" if compute_s >= memory_s else "memory"
        layers.append(LayerCost(name, macs, moved, max(compute_s, memory_s) * 1000.0, bound))
    total = sum(layer.ms for layer in layers) + unit["overhead_ms"]
    return Estimate(device, unit_name, total, layers, [unit["source"], spec["memory_source"]])


def _layer_work(
    manifest: dict[str, Any], input_size: tuple[int, int], act_bytes: int, weight_bytes: int
) -> list[tuple[str, int, int]]:
    """(layer, MACs, bytes read + written) for each conv of the graph (MetaSR or bare student) in ``manifest``."""
    spec = manifest["model"]
    model = MetaSRStudent(StudentConfig(**spec["student"]))
    if spec["graph"] == "metasr":
        model = build_metasr(model, tuple(spec["sources"]), spec["orchestrator"])
    model = model.eval().reparameterize().to("meta")  # shapes only, no arithmetic
    padded = [math.ceil(side / CELL) * CELL for side in input_size]  # apps pad frames to whole metadata cells
    inputs = with_defaults(model, torch.zeros(1, 3, *padded, device="meta"))
    layers = layer_work(model, inputs)
    return [
        (
            layer.name,
            layer.macs,
            (layer.input_elements + layer.output_elements) * act_bytes + layer.weight_elements * weight_bytes,
        )
        for layer in layers
    ]
