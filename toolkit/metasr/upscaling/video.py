"""Video upscaling with PyAV: frame by frame, H.264 out, audio streams copied unchanged, timestamps kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from metasr.errors import MetaSRError
from metasr.upscaling.image_io import MIN_SIDE
from metasr.upscaling.model import Upscaler
from metasr.upscaling.tiling import upscale_strips

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm"}
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "matroska"}  # WebM cannot hold H.264
H264_CRF = "18"


class RouteStabilizer:
    """Hysteresis over per-frame route scores, so the route does not flicker between frames.

    The current route is kept until a challenger scores best for ``hold`` consecutive frames, or
    beats the current route's score by at least ``margin`` in a single frame.
    """

    def __init__(self, hold: int = 3, margin: float = 0.1) -> None:
        self.hold, self.margin = hold, margin
        self.current: str | None = None
        self._challenger: str | None = None
        self._streak = 0

    def update(self, scores: Mapping[str, float]) -> str:
        """Feed one frame's scores (higher is better); returns the route to use for that frame."""
        if not scores:
            raise ValueError("no route scores")
        best = max(scores, key=scores.__getitem__)
        if self.current not in scores or scores[best] - scores[self.current] >= self.margin:
            return self._switch(best)
        if best == self.current:
            self._challenger, self._streak = None, 0
            return self.current
        self._streak = self._streak + 1 if best == self._challenger else 1
        self._challenger = best
        return self._switch(best) if self._streak >= self.hold else self.current

    def _switch(self, route: str) -> str:
        self.current, self._challenger, self._streak = route, None, 0
        return route


@dataclass(frozen=True)
class VideoInfo:
    """What the summary reports about a video."""

    size: tuple[int, int]  # (height, width) of the input frames
    frames: int
    audio_streams: int


def output_suffix(src: Path) -> str:
    """.mp4 and .mov keep their container; MKV and WebM inputs become .mkv."""
    return ".mkv" if CONTAINERS[src.suffix.lower()] == "matroska" else src.suffix.lower()


def video_codec() -> str:
    """H.264 through libx264 when this FFmpeg build has it, else MPEG-4 part 2."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def upscale_video(
    src: Path,
    dst: Path,
    routes: Mapping[str, Upscaler],
    stabilizer: RouteStabilizer,
    score: Callable[[np.ndarray], dict[str, float]],
    on_frame: Callable[[int, int], None] | None = None,
) -> VideoInfo:
    """Upscale every frame of ``src`` into ``dst`` with the route ``stabilizer`` picks from ``score(frame)``."""
    try:
        with av.open(str(src)) as inp:
            return _transcode(inp, src, dst, routes, stabilizer, score, on_frame)
    except av.error.FFmpegError as exc:
        raise MetaSRError(f"cannot upscale video {src}: {exc}; the file is damaged or not a video") from exc


def _transcode(
    inp: av.container.InputContainer,
    src: Path,
    dst: Path,
    routes: Mapping[str, Upscaler],
    stabilizer: RouteStabilizer,
    score: Callable[[np.ndarray], dict[str, float]],
    on_frame: Callable[[int, int], None] | None,
) -> VideoInfo:
    if not inp.streams.video:
        raise MetaSRError(f"{src} has no video stream")
    vin = inp.streams.video[0]
    h, w = vin.codec_context.height, vin.codec_context.width
    if min(h, w) < MIN_SIDE:
        raise MetaSRError(f"{src} is {w}x{h} pixels, too small; the minimum is {MIN_SIDE}x{MIN_SIDE}")
    scale = next(iter(routes.values())).scale
    total = vin.frames or 0
    with av.open(str(dst), "w", format=CONTAINERS[src.suffix.lower()]) as out:
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        vout = out.add_stream(video_codec(), rate=rate)
        vout.width, vout.height, vout.pix_fmt = w * scale, h * scale, "yuv420p"
        vout.time_base = vin.time_base
        if vout.codec_context.name == "libx264":
            vout.options = {"crf": H264_CRF}
        audio = {a.index: out.add_stream_from_template(a) for a in inp.streams.audio}
        frames = 0
        for packet in inp.demux(vin, *inp.streams.audio):
            if packet.stream.index in audio:
                if packet.dts is not None:
                    packet.stream = audio[packet.stream.index]
                    out.mux(packet)
                continue
            for frame in packet.decode():
                rgb = frame.to_ndarray(format="rgb24")
                upscaler = routes[stabilizer.update(score(rgb))]
                big = np.concatenate([b for _, b in upscale_strips(rgb, upscaler.plan(h, w), upscaler.run)])
                new = av.VideoFrame.from_ndarray(np.rint(big * 255).astype(np.uint8), format="rgb24")
                new.pts, new.time_base = frame.pts, frame.time_base
                out.mux(vout.encode(new))
                frames += 1
                if on_frame is not None:
                    on_frame(frames, max(total, frames))
        out.mux(vout.encode(None))
    return VideoInfo((h, w), frames, len(audio))
