"""The pretrained peers inside the benchmark harness: quality, lowering and timing rows, and the peers table."""

from __future__ import annotations

import dataclasses
import math

import pytest

from benchmarks import entries as E
from benchmarks import latency as L
from benchmarks.peers.__main__ import COLUMNS, peer_rows, render
from benchmarks.run import QUICK, build_entries, measure_latency, ncnn_latency_rows, quality_rows, quant_rows

pytestmark = pytest.mark.bench

SETTINGS = dataclasses.replace(
    QUICK,
    architectures=(),
    quant_targets=("onnx",),
    peers=("span-ch48-x2", "realesr-animevideov3-x2", "span-ch48-x4"),
    timed_peers=("realesr-animevideov3-x2",),
    latency_sizes={2: (32, 32)},
    peer_runs=2,
)


def test_peer_entries_are_labelled_and_kept_out_of_the_quantization_table() -> None:
    entries = [e for e in build_entries(SETTINGS, None) if e.pretrained]
    assert [(e.name, e.scale, e.timed) for e in entries] == [
        ("span-ch48-x2", 2, False),
        ("realesr-animevideov3-x2", 2, True),
    ]  # QUICK measures x2 only
    assert all(e.trained.startswith("pretrained weights (not trained here)") for e in entries)
    assert quant_rows(entries, SETTINGS, lambda: None) == []


def test_span_beats_bicubic_on_a_real_photo() -> None:
    entries = [E.bicubic(2), E.peer("span-ch48-x2")]
    rows = {r["model"]: r for r in quality_rows(entries, SETTINGS, None, lambda: None) if r["degradation"] == "bicubic"}
    assert rows["span-ch48-x2"]["psnr"] > rows["bicubic"]["psnr"] + 1.0


def test_a_peer_lowers_to_xnnpack_int8_and_onnx_and_runs_in_ncnn() -> None:
    entry = E.peer("realesr-animevideov3-x2")
    rows = measure_latency(entry, (32, 32), 2, L.Peak(1, 1.0, math.nan, 1))
    assert [r["runtime"] for r in rows] == ["XNNPACK int8", "ORT CPU fp32"]
    assert all(r["median_ms"] > 0 and r["output"] == "64x64" for r in rows)
    accelerated, total = map(int, rows[0]["delegated"].split("/"))
    assert accelerated / total > 0.5  # its convolutions run in XNNPACK
    (ncnn_row,) = ncnn_latency_rows([entry], SETTINGS, lambda: None)
    assert ncnn_row["runtime"] == "ncnn CPU fp32" and ncnn_row["median_ms"] > 0


def test_peers_table_compares_with_bicubic_and_ncnn() -> None:
    rows = peer_rows(("span-ch48-x2",), threads=1, runs=1, photos=("astronaut",), max_side=128, sizes={2: (16, 24)})
    bicubic, span = rows
    assert bicubic["model"] == "bicubic" and bicubic["gain_over_bicubic_db"] == 0.0
    assert span["parity_db"] >= 50.0
    assert span["gain_over_bicubic_db"] > 1.0
    assert span["ncnn_input"] == "24x16" and span["ncnn_ms"] > 0
    table = render(rows, threads=1, runs=1, minutes=0.1)
    assert "| " + " | ".join(COLUMNS) + " |" in table and "| span-ch48-x2 | 2 |" in table
