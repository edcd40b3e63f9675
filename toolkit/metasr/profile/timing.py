"""Latency statistics shared by every profiling path (host runs, device results)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from metasr.profile.results import summarize


@dataclass(frozen=True)
class LatencyStats:
    """Median and spread of per-run latencies, in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int

    @classmethod
    def of(cls, latencies_ms: list[float]) -> LatencyStats:
        """Statistics computed exactly as the demo apps compute theirs (one percentile definition)."""
        median, p10, p90 = summarize(latencies_ms)
        return cls(median, p10, p90, len(latencies_ms))


def time_runs(call: Callable[[], object], runs: int) -> LatencyStats:
    """Wall-clock statistics of ``runs`` calls of ``call`` (no warm-up: the caller warms up)."""
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - start) * 1000.0)
    return LatencyStats.of(latencies)
