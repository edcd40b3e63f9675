"""Real timings on this host, in the artifact's own runtime (ONNX Runtime CPU, ExecuTorch)."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import psutil
import torch

from metasr.profile.timing import LatencyStats, time_runs
from metasr.runtime import Engine, default_strength


@dataclass(frozen=True)
class HostProfile:
    runtime: str
    input_size: tuple[int, int]
    warmup: int
    latency: LatencyStats
    peak_rss_mb: float
    functions: dict[str, LatencyStats]  # a routed artifact's router and experts, each timed on its own input


class _PeakRss:
    """Samples this process's resident memory in a background thread and keeps the maximum."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def profile_host(engine: Engine, input_size: tuple[int, int], runs: int = 20, warmup: int = 3) -> HostProfile:
    """Warm up, then time ``runs`` inferences on a fixed random frame; peak RSS over the timed runs. A routed
    artifact's functions are then timed one by one as well."""
    h, w = input_size
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    for _ in range(warmup):
        engine.run(image)
    with _PeakRss() as rss:
        latency = time_runs(functools.partial(engine.run, image), runs)
    functions = _function_latencies(engine, image, runs, warmup) if engine.routing is not None else {}
    return HostProfile(engine.runtime, input_size, warmup, latency, rss.peak / 2**20, functions)


def _function_latencies(engine: Engine, image: torch.Tensor, runs: int, warmup: int) -> dict[str, LatencyStats]:
    """The router on the frame's thumbnail and each expert on the whole frame, as an app calls them."""
    routing = engine.routing
    thumbnail = routing.router_input(image)
    strength = default_strength(engine.manifest)
    names = [entry["function"] for entry in engine.manifest["routing"]["experts"]]
    calls = {"router": functools.partial(routing.router, thumbnail, strength)}
    calls |= {name: functools.partial(expert, image) for name, expert in zip(names, routing.experts, strict=True)}
    timings = {}
    for name, call in calls.items():
        for _ in range(warmup):
            call()
        timings[name] = time_runs(call, runs)
    return timings
