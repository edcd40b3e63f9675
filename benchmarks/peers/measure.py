"""Measurements only the peers have: the reader's parity with ncnn, and ncnn's own fp32 CPU time."""

from __future__ import annotations

import torch

from benchmarks.quality import Pair
from metasr.images import to_numpy
from metasr.peers.zoo import NcnnRunner, load_peer
from metasr.profile.timing import LatencyStats, time_runs
from metasr.validate.metrics import y_psnr


@torch.no_grad()
def parity_db(name: str, image_pairs: list[Pair], threads: int = 1) -> float:
    """Worst Y-PSNR (dB) between the reader's torch module and ncnn on the pairs' LR frames (float input)."""
    runner, module = NcnnRunner(name, threads), load_peer(name)
    worst = float("inf")
    for pair in image_pairs:
        reference = runner.run(runner.float_mat(pair.lr)).transpose(1, 2, 0)
        worst = min(worst, y_psnr(to_numpy(module(pair.lr)), reference))
    return worst


def time_ncnn(name: str, size: tuple[int, int], runs: int, warmup: int = 1, threads: int = 1) -> LatencyStats:
    """ncnn fp32 (CPU, no Vulkan) wall-clock ms per frame of an LR ``size`` = (height, width) frame."""
    runner = NcnnRunner(name, threads)
    mat = runner.float_mat(torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)))
    for _ in range(warmup):
        runner.run(mat)
    return time_runs(lambda: runner.run(mat), runs)
