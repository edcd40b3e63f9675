"""One run of metasr-upscale: find the inputs, upscale each into the output folder, report per file.

A file that fails gets a one-line error and leaves nothing behind (outputs are written to a temp
file in the output folder and renamed into place); the other files go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from metasr.atomic import atomic_path
from metasr.errors import MetaSRError
from metasr.upscaling.compare import CropTap, Window, bicubic_panel, legend, route_colours, side_by_side, tinted
from metasr.upscaling.image_io import IMAGE_SUFFIXES, ImageWriter, output_name, read_image
from metasr.upscaling.model import Upscaler
from metasr.upscaling.tiling import TilePlan, upscale_strips
from metasr.upscaling.video import VIDEO_SUFFIXES, RouteStabilizer, output_suffix, upscale_video

Progress = Callable[[int, int], None]  # (done, total) within the current file


@dataclass(frozen=True)
class FileResult:
    """One input's outcome; ``status`` is "ok", "skipped" or "failed"; ``message`` says why or adds a note."""

    source: Path
    status: str
    size_in: tuple[int, int] | None = None  # (height, width)
    size_out: tuple[int, int] | None = None
    ms: float = 0.0
    message: str = ""


def collect_inputs(inputs: Iterable[Path]) -> tuple[list[Path], list[FileResult]]:
    """Files to upscale (folders expanded, not recursively, hidden files ignored) and the entries skipped."""
    files: list[Path] = []
    skipped: list[FileResult] = []
    for path in inputs:
        if not path.is_dir():
            files.append(path)
            continue
        for entry in sorted(p for p in path.iterdir() if not p.name.startswith(".")):
            if entry.is_dir():
                skipped.append(FileResult(entry, "skipped", message="a folder; folders are not searched recursively"))
            elif entry.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                files.append(entry)
            else:
                skipped.append(FileResult(entry, "skipped", message="not a PNG/JPEG image or MP4/MOV/MKV/WebM video"))
    return files, skipped


class Batch:
    """Upscales files one by one into ``out_dir``, refusing to overwrite an input or an earlier output."""

    def __init__(self, out_dir: Path, upscaler: Upscaler, compare: bool = False) -> None:
        self.out_dir, self.upscaler, self.compare = out_dir, upscaler, compare
        self._claimed: dict[Path, Path] = {}

    def upscale_file(self, src: Path, on_progress: Progress | None = None) -> FileResult:
        """Upscale one image or video; failures come back as a "failed" result, not raised."""
        start = time.perf_counter()
        try:
            if not src.is_file():
                raise MetaSRError(f"{src} does not exist or is not a file")
            suffix = src.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                result = self._video(src, on_progress)
            elif suffix in IMAGE_SUFFIXES:
                result = self._image(src, on_progress)
            else:
                raise MetaSRError(f"{src} is not a PNG/JPEG image or MP4/MOV/MKV/WebM video")
        except MetaSRError as exc:
            result = FileResult(src, "failed", message=str(exc))
        except OSError as exc:  # writing: disk full, permissions
            result = FileResult(src, "failed", message=f"{src}: {exc}")
        return replace(result, ms=(time.perf_counter() - start) * 1000)

    def _claim(self, src: Path, name: str) -> Path:
        final = self.out_dir / name
        key = final.resolve()
        if key == src.resolve():
            raise MetaSRError(f"{final} would overwrite its input; pick another -o folder")
        if key in self._claimed:
            raise MetaSRError(f"{final} is already the output of {self._claimed[key]}; rename one of them")
        self._claimed[key] = src
        return final

    def _image(self, src: Path, on_progress: Progress | None) -> FileResult:
        decoded = read_image(src)
        final = self._claim(src, output_name(src, decoded.format))
        s = self.upscaler.scale
        h, w = decoded.size
        plan = self.upscaler.plan(h, w)
        tap = CropTap(Window.centred(h * s, w * s, s)) if self.compare else None
        tiles = 0

        def on_tile() -> None:
            nonlocal tiles
            tiles += 1
            if on_progress is not None:
                on_progress(tiles, plan.count)

        with atomic_path(final) as tmp, open(tmp, "wb") as f:
            writer = ImageWriter(f, decoded, s)
            for row0, rows in upscale_strips(decoded.rgb, plan, self.upscaler.run, on_tile):
                writer.write(row0, rows)
                if tap is not None:
                    tap.take(row0, rows)
            writer.close()
        if tap is not None:
            heatmap = self._routing_panel(decoded.rgb, plan, tap)
            picture = side_by_side(bicubic_panel(decoded.rgb, tap.window), tap.pixels, f"MetaSR x{s}", heatmap)
            with atomic_path(self.out_dir / f"{src.stem}_compare.png") as tmp:
                picture.save(tmp, "PNG")
        return FileResult(src, "ok", (h, w), (h * s, w * s), message="; ".join(decoded.notes))

    def _routing_panel(self, rgb: np.ndarray, plan: TilePlan, output: CropTap) -> Image.Image | None:
        """A routed model's choices over the output window, tiled exactly as the output was; None for other
        models."""
        routing = self.upscaler.routing
        if routing is None:
            return None
        paint = route_colours(routing.route, routing.tile, routing.experts, self.upscaler.scale)
        colours = CropTap(output.window)
        for row0, rows in upscale_strips(rgb, plan, paint):
            colours.take(row0, rows)
        return legend(tinted(output.pixels, colours.pixels), routing.experts)

    def _video(self, src: Path, on_progress: Progress | None) -> FileResult:
        final = self._claim(src, src.stem + output_suffix(src))
        upscaler = self.upscaler

        def score(_frame: np.ndarray) -> dict[str, float]:
            return {upscaler.name: 1.0}  # one model for now; the content orchestrator will score routes per frame

        with atomic_path(final) as tmp:
            info = upscale_video(src, tmp, {upscaler.name: upscaler}, RouteStabilizer(), score, on_progress)
        h, w = info.size
        note = f"{info.frames} frames, {info.audio_streams} audio stream(s) copied"
        return FileResult(src, "ok", (h, w), (h * upscaler.scale, w * upscaler.scale), message=note)
