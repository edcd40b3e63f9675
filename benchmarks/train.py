"""Train every benchmark architecture with one data set and step budget; weights land in anchors/weights.

    python -m benchmarks.train --data data/corpus [--steps 1000] [--only srvggnet-compact] [--scales 2 4]

Recipe (the same for all): bicubic pairs from the corpus's training split, L1, Adam with a cosine
schedule, ``--steps`` steps of ``--batch`` low-resolution ``--patch``^2 crops, seed 0. Runs resume from
``--work/<name>_x<scale>/state.safetensors``. A JSON line per model goes to ``anchors/weights/training.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchmarks.architectures import ARCHITECTURES, WEIGHTS, build, save_trained, weights_path
from metasr.train import TrainConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("checkpoints/bench"))
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--only", nargs="+", choices=list(ARCHITECTURES), default=list(ARCHITECTURES))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for scale in args.scales:
        for name in args.only:
            cfg = TrainConfig(
                data=args.data,
                out=args.work / f"{name}_x{scale}",
                scale=scale,
                steps=args.steps,
                batch=args.batch,
                patch=args.patch,
                lr=args.lr,
                checkpoint_every=100,
            )
            model = build(name, scale)
            val_psnr, val_bicubic = fit(model, cfg, label=f"{name} x{scale}")
            save_trained(model, weights_path(name, scale, args.out))
            record = {
                "name": name,
                "scale": scale,
                "steps": args.steps,
                "batch": args.batch,
                "patch": args.patch,
                "lr": args.lr,
                "val_psnr": round(val_psnr, 3),
                "val_bicubic_psnr": round(val_bicubic, 3),
            }
            with open(args.out / "training.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
