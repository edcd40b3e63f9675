"""Peak memory of metasr-upscale on a large image, measured in a child process.

Makes a SIZE x SIZE photo-like PNG (the astronaut, mirrored to fill), runs
``python -m metasr.upscale.command`` on it in a subprocess, and prints one markdown table row:

    | input | output | model | tile | peak RSS | time |

Peak RSS is the child's ``ru_maxrss`` (``resource.getrusage(RUSAGE_CHILDREN)``). Defaults: 8000x8000,
the bundled float MetaSR graph on 2 torch threads, tile 512. Pass ``--artifact`` to time an .onnx instead.
"""

from __future__ import annotations

import argparse
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def make_input(path: Path, size: int) -> None:
    """A photo-like RGB PNG of size x size: the astronaut, reflected to fill."""
    photo = data.astronaut()
    reps = -(-size // photo.shape[0])
    tiled = np.pad(photo, ((0, reps * photo.shape[0] - photo.shape[0]),) * 2 + ((0, 0),), mode="symmetric")
    Image.fromarray(tiled[:size, :size]).save(path, compress_level=1)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    with open(path, "rb") as f:
        return struct.unpack(">II", f.read(24)[16:24])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8000)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--artifact", type=Path, help="exported .onnx/.pte (default: bundled float student)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="upscale-memory-") as tmp:
        src, out = Path(tmp) / "big.png", Path(tmp) / "out"
        make_input(src, args.size)
        cmd = [sys.executable, "-m", "metasr.upscale.command", str(src), "-o", str(out), "--tile", str(args.tile)]
        if args.artifact:
            cmd += ["--artifact", str(args.artifact)]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"metasr-upscale failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
        width, height = png_size(out / "big.png")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    model = args.artifact.name if args.artifact else f"MetaSR x2 (float, {args.threads} threads)"
    size = f"{args.size}x{args.size}"
    print(f"| {size} | {width}x{height} | {model} | {args.tile} | {peak_mib:.0f} MiB | {seconds:.0f} s |")


if __name__ == "__main__":
    main()
