"""Issue 17's three ways to apply the orchestrator's decisions, timed side by side on one call of a whole LR frame
(the x2 default's student architecture; int8 XNNPACK and ORT fp32 through this benchmark's own lowering):

- plain: the student alone, what an app pays without adaptivity;
- (a) per-call FiLM: one gain and bias vector per stage (the decision for the call), broadcast over the frame, an
  elementwise multiply-add on 32 channels at full resolution per stage;
- (b) conditioning channels: four conditioning maps at metadata-cell resolution (x1/32), upsampled (bilinear:
  XNNPACK delegates it, not nearest) and concatenated to the input of a stage's conv, so the conv absorbs them,
  at the first stage or at all five;
- (c) routed: the x2 default's conv router on the x1/2 thumbnail, then one plain expert (FiLM folded into its
  weights): the router's and the expert's times, summed, as an app calls them.

Latency only, with the shipped student's weights where they exist and random ones for the extra parts (their
values do not change the cost); the quality of (a) and (c) is measured in ``benchmarks/routing.py`` and
TRAINING.md, (b) is not trained here. Writes ``conditioning.csv`` and ``conditioning.md`` under ``--out``:

    python -m benchmarks.conditioning [--frame 544x960] [--runs 5]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks import latency as L
from metasr.assembly import load_routed
from metasr.metadata import CELL
from metasr.model_zoo import model_card
from metasr.models.student import MetaSRStudent

CONDITIONING = 4  # channels of design (b)'s conditioning maps


class PerCallFilm(nn.Module):
    """(a): the student with one FiLM vector per call, broadcast over the frame."""

    def __init__(self, student: MetaSRStudent) -> None:
        super().__init__()
        self.student = student

    def forward(self, image: torch.Tensor, modulation: torch.Tensor) -> torch.Tensor:
        return self.student(image, modulation)


class ConditioningChannels(nn.Module):
    """(b): the student whose ``stages`` convs also read ``CONDITIONING`` maps at cell resolution, upsampled."""

    def __init__(self, student: MetaSRStudent, stages: tuple[int, ...]) -> None:
        super().__init__()
        self.student, self.stages = student, stages
        c = student.config.channels
        self.wide = nn.ModuleDict({str(i): nn.Conv2d(c + CONDITIONING, c, 3, padding=1) for i in stages})

    def forward(self, image: torch.Tensor, conditioning: torch.Tensor) -> torch.Tensor:
        s = self.student
        x = F.relu(s.head(image))
        maps = F.interpolate(conditioning, scale_factor=CELL, mode="bilinear", align_corners=False)
        for i, block in enumerate(s.blocks):
            x = F.relu(self.wide[str(i)](torch.cat([x, maps], dim=1)) if i in self.stages else block(x))
        x = s.tail(x) + s.anchor(image)
        return torch.clamp(s.upsample(x), 0.0, 1.0)


def designs(frame: tuple[int, int]) -> dict[str, list[tuple[nn.Module, tuple[torch.Tensor, ...]]]]:
    """Each design as the graphs an app calls per frame, with their inputs."""
    routed = load_routed(model_card("metasr-x2-routed").path).deciding_per_call().eval()
    plain = routed.experts[routed.plain_experts[0]]  # the folded plain expert
    h, w = frame
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, h, w, generator=g)
    cells = torch.rand(1, CONDITIONING, h // CELL, w // CELL, generator=g)
    film = plain.neutral_modulation() + 0.1 * torch.randn(1, plain.modulation_channels, 1, 1, generator=g)
    router = routed.functions()["router"]  # the conv router as an artifact holds it: thumbnail in, scores out
    t = routed.conv_router.thumbnail
    thumbnail = image[..., ::t, ::t].contiguous()
    return {
        "plain student": [(plain, (image,))],
        "(a) per-call FiLM, 5 stages": [(PerCallFilm(plain), (image, film))],
        "(b) conditioning channels, stage 1": [(ConditioningChannels(plain, (0,)), (image, cells))],
        "(b) conditioning channels, 5 stages": [(ConditioningChannels(plain, tuple(range(5))), (image, cells))],
        "(c) routed: router + expert": [(router, (thumbnail,)), (plain, (image,))],
    }


def time_design(parts: list[tuple[nn.Module, tuple[torch.Tensor, ...]]], runs: int, folder: Path) -> dict[str, float]:
    """Median ms per frame of a design's graphs, summed, in each runtime, and the ops XNNPACK left outside."""
    ms = {"int8 XNNPACK": 0.0, "ORT fp32": 0.0}
    outside = []
    for k, (module, inputs) in enumerate(parts):
        pte, onnx = folder / f"{k}.pte", folder / f"{k}.onnx"
        outside += L.lower_xnnpack_int8(module, inputs, [inputs], pte).fallback
        L.lower_onnx(module, inputs, onnx)
        ms["int8 XNNPACK"] += L.time_pte(pte, inputs, runs, warmup=1).median_ms
        ms["ORT fp32"] += L.time_onnx(onnx, inputs, runs, warmup=1).median_ms
    return ms, sorted(set(outside))


def rows(frame: tuple[int, int], runs: int, tick: Callable[[str], None] = print) -> list[dict]:
    """One row per design: ms per frame in each runtime and the ratio to the plain student's."""
    measured, outside = {}, {}
    for name, parts in designs(frame).items():
        with tempfile.TemporaryDirectory(prefix="bench-cond-") as tmp:
            measured[name], outside[name] = time_design(parts, runs, Path(tmp))
        tick(name)
    plain = measured["plain student"]
    return [
        {
            "design": name,
            "frame": f"{frame[0]}x{frame[1]}",
            **{f"{runtime} ms": round(v, 1) for runtime, v in ms.items()},
            **{f"{runtime} / plain": round(v / plain[runtime], 3) for runtime, v in ms.items()},
            "ops outside XNNPACK": ", ".join(outside[name]) or "none",
        }
        for name, ms in measured.items()
    ]


def write(table: list[dict], out: Path) -> None:
    """``conditioning.csv`` and a markdown table ``conditioning.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "conditioning.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    header = "| " + " | ".join(table[0]) + " |\n|" + "---|" * len(table[0]) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row.values()) + " |\n" for row in table)
    (out / "conditioning.md").write_text(header + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frame", default="544x960", help="LR frame HxW, whole 32-px cells")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    h, w = (int(v) for v in args.frame.split("x"))
    table = rows((h, w), args.runs, tick=lambda name: print(f"timed {name}", flush=True))
    write(table, args.out)
    print((args.out / "conditioning.md").read_text())


if __name__ == "__main__":
    main()
