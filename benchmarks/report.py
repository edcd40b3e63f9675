"""BENCHMARKS.md from the measured tables: protocol, machine, command, one markdown table per CSV."""

from __future__ import annotations

import math
from typing import Any

Row = dict[str, Any]

COLUMNS = {
    "quality": ("model", "scale", "set", "degradation", "psnr", "ssim", "gms", "trained"),
    "legibility": None,  # every column
    "quant_loss": ("model", "scale", "target", "mean_db", "min_db", "error"),
    "peak": None,
    "latency": (
        "model",
        "scale",
        "runtime",
        "input",
        "output",
        "median_ms",
        "p10_ms",
        "p90_ms",
        "macs_per_px",
        "gmacs_per_s",
        "peak_pct",
        "delegated",
    ),
    "overhead": None,
    "ncnn_latency": None,
    "app_latency": None,
    "app_quality": None,
    "designs": None,
    "export_time": None,
}
TITLES = {
    "quality": "Quality (Y-PSNR dB, SSIM, gradient-magnitude similarity; luma, border = scale)",
    "legibility": "Text legibility after SR (OCR character accuracy, bicubic-downscaled text)",
    "quant_loss": "Quantization loss: float vs lowered artifact, Y-PSNR dB on 4 photos (mean, worst); "
    "architectures at 64x64 inputs, the MetaSR graph from its export report",
    "peak": "Int8 peak of this CPU (one static int8 GEMM through ExecuTorch's XNNPACK delegate)",
    "latency": "Latency per frame (median and p10-p90 spread), MACs per output pixel, achieved MAC/s",
    "overhead": "Orchestrator overhead: MetaSR graph vs its student alone (device metadata + orchestrator removed)",
    "ncnn_latency": "Pretrained peers in their own engine: ncnn fp32 on this CPU (no Vulkan), per frame",
    "app_latency": "Routed vs plain as an app runs them: photos upscaled call by call through the exported "
    "artifacts, routed and plain timed in turn, tile by tile (256-px app tiles, overlap 16) or one 1080p-output "
    "frame per call (x2 from 544x960, x4 from 288x480: 270 rows padded to whole cells), ms per photo set "
    "(`benchmarks/app_latency.py`)",
    "app_quality": "Routed models as an app runs them, quality: Y-PSNR dB through 256-px app tiles (overlap 16; "
    "the photos at their own size, the corpus validation images at 1600 px), each call routed once; the plain "
    "clean expert alone beside it; the share of calls each expert takes and their MACs per output pixel over the "
    "clean expert's (`benchmarks/app_latency.py`, float models)",
    "designs": "Issue 17's designs side by side, latency only: one 544x960 call of the x2 student's architecture "
    "with (a) a per-call FiLM vector, (b) conditioning maps concatenated to stage convs, (c) the conv router plus "
    "a plain expert; ratio to the plain student (`benchmarks/conditioning.py`; quality of (a) and (c): TRAINING.md)",
    "export_time": "Export wall time (seconds, per stage and total)",
}
PROTOCOL = """\
Protocol. Every architecture in `benchmarks/anchors/` and MetaSR's plain student (`student`: 32 channels,
5 RepBlocks; `student-small`: 2 RepBlocks, the MACs of QuickSRNet-small once folded) is trained by
`python -m benchmarks.train` with the same data (bicubic pairs from the corpus's training split), loss (L1),
optimiser (Adam, cosine), seed and step budget. "MetaSR graph" rows are the shipped exported graphs
(device metadata + orchestrator + student); they need whole 32-pixel metadata cells, so quality crops are
multiples of 32 x scale and latency inputs are padded up to them (960x540 -> 960x544, 480x270 -> 480x288).
Quality crops are centred, at most {max_side} px; `realistic` is the Real-ESRGAN two-stage degradation with one
fixed seed per image. Latency: each model is PT2E int8 quantized with the XNNPACK quantizer and run by
ExecuTorch's Python runtime, and exported fp32 to ONNX Runtime's CPU provider, on all cores of this machine;
`peak_pct` is the achieved int8 MAC/s as a percentage of the int8 GEMM peak. Rows trained "pretrained weights
(not trained here)" are published models (SPAN, Real-ESRGAN animevideov3, SRMD) read from their ncnn weights
by `benchmarks/peers` (output clamped to [0, 1], as their apps write 8-bit images); they are lowered and timed
like the others and also timed in ncnn itself."""


def render(
    tables: dict[str, list[Row]],
    settings: Any,
    machine: dict[str, str],
    command: str,
    minutes: float,
    findings: str = "",
) -> str:
    """The whole report as markdown; ``findings`` (hand-written markdown) goes between protocol and tables."""
    lines = [
        "# MetaSR Edge benchmarks",
        "",
        f"Command: `{command}` ({settings.name} settings, {minutes:.1f} min). "
        + "Machine: "
        + ", ".join(f"{k} {v}" for k, v in machine.items())
        + ".",
        "",
        PROTOCOL.format(max_side=settings.max_side),
        "",
    ]
    if findings:
        lines += [findings.strip(), ""]
    lines += headline(tables.get("quality", []))
    for name, title in TITLES.items():
        if name in tables:
            lines += [f"## {title}", "", *markdown_table(tables[name], COLUMNS[name]), ""]
    return "\n".join(lines)


def headline(quality: list[Row]) -> list[str]:
    """MetaSR's student against QuickSRNet-small at no more MACs per pixel, per scale, set and degradation."""
    by_key = {(r["model"], r["scale"], r["set"], r["degradation"]): r["psnr"] for r in quality}
    lines = []
    for (model, scale, image_set, degradation), psnr in by_key.items():
        if model != "student-small":
            continue
        anchor = by_key.get(("quicksrnet-small", scale, image_set, degradation))
        if anchor is not None:
            lines.append(
                f"| x{scale} | {image_set} | {degradation} | {psnr:.2f} | {anchor:.2f} | {psnr - anchor:+.2f} |"
            )
    if not lines:
        return []
    head = [
        "## Student vs QuickSRNet-small at the same MACs per pixel",
        "",
        "| scale | set | degradation | student-small dB | quicksrnet-small dB | difference |",
        "|---|---|---|---|---|---|",
    ]
    return head + lines + [""]


def markdown_table(rows: list[Row], columns: tuple[str, ...] | None) -> list[str]:
    if not rows:
        return ["(no rows)"]
    columns = columns or tuple(dict.fromkeys(key for row in rows for key in row))
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        out.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value).replace("|", "/")
