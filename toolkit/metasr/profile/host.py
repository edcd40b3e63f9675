"""Real timings on this host, in the artifact's own runtime (ONNX Runtime CPU, ExecuTorch)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil
import torch

from metasr.profile.timing import LatencyStats
from metasr.runtime import Engine


@dataclass(frozen=True)
class HostProfile:
    runtime: str
    input_size: tuple[int, int]
    warmup: int
    latency: LatencyStats
    peak_rss_mb: float


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
    """Warm up, then time ``runs`` inferences on a fixed random frame; peak RSS over the timed runs."""
    h, w = input_size
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    for _ in range(warmup):
        engine.run(image)
    latencies = []
    with _PeakRss() as rss:
        for _ in range(runs):
            start = time.perf_counter()
            engine.run(image)
            latencies.append((time.perf_counter() - start) * 1000.0)
    return HostProfile(engine.runtime, input_size, warmup, LatencyStats.of(latencies), rss.peak / 2**20)
