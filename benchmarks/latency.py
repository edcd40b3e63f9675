"""Host-CPU latency of SR networks: ExecuTorch XNNPACK int8 (the exporter's path), ONNX Runtime fp32, int8 peak.

Threads: ExecuTorch's Python runtime runs every XNNPACK delegate on one process-wide pthreadpool, created on
first use with one thread per processor (cpuinfo). A delegate binds that pool when its method is loaded, and
``_unsafe_reset_threadpool`` destroys it: :func:`xnnpack_threads` therefore resizes the pool only around
methods loaded and run inside it, and any method loaded before must not run again afterwards.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort
import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.extension.pybindings import portable_lib
from executorch.runtime import Runtime
from torch import nn

from metasr.exporter import executorch_common as et
from metasr.exporter.executorch_xnnpack.quantize import capture, quantize_pt2e
from metasr.exporter.onnx import Options as OnnxOptions
from metasr.exporter.stages import Coverage
from metasr.profile.timing import LatencyStats, time_runs
from metasr.quiet import quiet

Inputs = tuple[torch.Tensor, ...]

TIME_BUDGET_S = 30.0  # per timed model and runtime
MIN_RUNS = 3
CPU_THREADS = os.cpu_count() or 1  # ExecuTorch's default pool size (cpuinfo counts the same processors)


@dataclass(frozen=True)
class Peak:
    """Int8 GEMM throughput through ExecuTorch's XNNPACK delegate: ``macs`` multiply-accumulates per run."""

    macs: int
    median_ms: float
    macs_per_s: float
    threads: int


def lower_xnnpack_int8(module: nn.Module, example: Inputs, calibration: Sequence[Inputs], path: Path) -> Coverage:
    """Static int8 PT2E (XNNPACKQuantizer) calibrated on ``calibration``, lowered at ``example``'s shapes to ``path``.

    Activation ranges are min/max (the exporter searches histograms): the kernels, and so the latency, are
    the same, at a fraction of the calibration time. The program is written whatever the coverage:
    fallback ops run on ExecuTorch's portable CPU kernels.
    """
    with quiet():
        graph = capture(module.eval(), example, dynamic_shapes=None)
        program = torch.export.export(quantize_pt2e(graph, calibration, ranges="minmax"), example)
    edge = et.lower({"forward": program}, XnnpackPartitioner)
    et.write_program(edge, path)
    return et.coverage(edge, "XNNPACK delegate")


@contextlib.contextmanager
def xnnpack_threads(threads: int) -> Iterator[None]:
    """ExecuTorch's XNNPACK threadpool resized to ``threads`` for a block, then back to its previous size.

    Load and run methods inside the block; a method loaded before it must not run after a resize.
    """
    previous = portable_lib._threadpool_get_thread_count()
    _reset_threadpool(threads)
    try:
        yield
    finally:
        _reset_threadpool(previous)


def time_pte(path: Path, inputs: Inputs, runs: int, warmup: int, threads: int = CPU_THREADS) -> LatencyStats:
    """Wall-clock ms per ``forward`` of a ``.pte`` in ExecuTorch's Python runtime on ``threads`` threads."""
    with xnnpack_threads(threads):
        return _time_forward(path, inputs, runs, warmup)


def lower_onnx(module: nn.Module, example: Inputs, path: Path, opset: int = OnnxOptions().opset) -> None:
    """fp32 ONNX of ``module(*example)`` at static shapes, through torch's dynamo exporter (the ONNX target's)."""
    with quiet():
        torch.onnx.export(module.eval(), example, path, dynamo=True, opset_version=opset, optimize=True, verbose=False)


def time_onnx(path: Path, inputs: Inputs, runs: int, warmup: int, threads: int = CPU_THREADS) -> LatencyStats:
    """Wall-clock ms per run in ONNX Runtime's CPU provider, all graph optimisations, ``threads`` intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {arg.name: tensor.numpy() for arg, tensor in zip(session.get_inputs(), inputs, strict=True)}
    return _time(lambda: session.run(None, feeds), runs, warmup)


def int8_peak(
    m: int = 2048, k: int = 2048, n: int = 2048, runs: int = 10, warmup: int = 2, threads: int = CPU_THREADS
) -> Peak:
    """This CPU's int8 MAC/s: an (m, k) x (k, n) static int8 GEMM, one ``nn.Linear``, fully in the XNNPACK delegate."""
    example = (torch.randn(m, k),)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gemm.pte"
        coverage = lower_xnnpack_int8(nn.Linear(k, n, bias=False), example, [example], path)
        if coverage.fallback:
            raise RuntimeError(f"the int8 GEMM is not fully delegated: {coverage.fallback}")
        stats = time_pte(path, example, runs, warmup, threads)
    macs = m * k * n
    return Peak(macs, stats.median_ms, macs / (stats.median_ms / 1e3), threads)


def _reset_threadpool(threads: int) -> None:
    """Replace the pool unless it already has ``threads`` threads (the binding replaces it even then)."""
    if portable_lib._threadpool_get_thread_count() == threads:
        return
    portable_lib._unsafe_reset_threadpool(threads)
    if portable_lib._threadpool_get_thread_count() != threads:
        raise RuntimeError(f"ExecuTorch's threadpool did not take {threads} threads")


def _time_forward(path: Path, inputs: Inputs, runs: int, warmup: int) -> LatencyStats:
    """Load, time and drop ``forward`` (the method lives no longer than the threadpool it was loaded on)."""
    program = Runtime.get().load_program(path)
    method = program.load_method("forward")
    args = [tensor.contiguous() for tensor in inputs]
    return _time(lambda: method.execute(args), runs, warmup)


def _time(run: Callable[[], object], runs: int, warmup: int) -> LatencyStats:
    """``runs`` timed runs after ``warmup`` untimed ones; at most as many as fit in ``TIME_BUDGET_S``
    (judged from the last warm-up run), and never fewer than ``MIN_RUNS``."""
    seconds = 0.0
    for _ in range(warmup):
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
    if seconds:
        runs = max(min(runs, MIN_RUNS), min(runs, int(TIME_BUDGET_S / seconds)))
    return time_runs(run, runs)
