"""Peak memory of metasr-upscale on a large image, measured in a child process per output format.

Makes a SIZE x SIZE photo-like image (the astronaut, mirrored to fill) as PNG and as JPEG (quality 95),
runs ``python -m metasr.upscaling.command`` on each in its own subprocess (PNG in, PNG out; JPEG in, JPEG
out; both streamed) and prints a markdown table, one row per format:

    | format | input | output | model | tile | peak RSS | time |

Peak RSS is each child's ``ru_maxrss`` (``os.wait4``). Defaults: 8000x8000, the bundled float MetaSR graph
on 2 torch threads, tile 512, both formats. Pass ``--artifact`` to time an .onnx instead, e.g.

    .venv/bin/python -m benchmarks.upscale_memory --size 3000 --threads 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

SUFFIXES = {"png": ".png", "jpeg": ".jpg"}


def make_input(path: Path, size: int) -> None:
    """A photo-like RGB image of size x size, PNG or JPEG by suffix: the astronaut, reflected to fill."""
    photo = data.astronaut()
    reps = -(-size // photo.shape[0])
    tiled = np.pad(photo, ((0, reps * photo.shape[0] - photo.shape[0]),) * 2 + ((0, 0),), mode="symmetric")
    options = {"quality": 95} if path.suffix == ".jpg" else {"compress_level": 1}
    Image.fromarray(tiled[:size, :size]).save(path, **options)


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of ``cmd`` run to completion; exits with its last error line if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"metasr-upscale failed: {stderr.strip().splitlines()[-1:]}")
    return usage.ru_maxrss / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--artifact", type=Path, help="exported .onnx/.pte (default: bundled float student)")
    parser.add_argument("--formats", nargs="+", choices=list(SUFFIXES), default=list(SUFFIXES))
    args = parser.parse_args()
    model = args.artifact.name if args.artifact else f"MetaSR x2 (float, {args.threads} threads)"
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    print("| format | input | output | model | tile | peak RSS | time |\n|---|---|---|---|---|---|---|", flush=True)
    for fmt in args.formats:
        with tempfile.TemporaryDirectory(prefix="upscale-memory-") as tmp:
            src, out = Path(tmp) / f"big{SUFFIXES[fmt]}", Path(tmp) / "out"
            make_input(src, args.size)
            cmd = [sys.executable, "-m", "metasr.upscaling.command", str(src), "-o", str(out), "--tile", str(args.tile)]
            if args.artifact:
                cmd += ["--artifact", str(args.artifact)]
            peak_mib, seconds = run(cmd, env)
            with Image.open(out / src.name) as result:
                width, height = result.size
        size = f"{args.size}x{args.size}"
        print(f"| {fmt} | {size} | {width}x{height} | {model} | {args.tile} | {peak_mib:.0f} MiB | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
