"""Latency statistics shared by every profiling path (host runs, device results)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Median and spread of per-run latencies, in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int

    @classmethod
    def of(cls, latencies_ms: list[float]) -> LatencyStats:
        values = np.asarray(latencies_ms, dtype=np.float64)
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(median), float(p10), float(p90), len(values))
