"""Text legibility after super-resolution: how much of a frame's text an OCR still reads in the SR output.

Each HR sample is bicubic-downscaled, upscaled back by the network under test, read by :class:`TextReader`
and scored with :func:`char_accuracy` against the sample's truth. Samples (:func:`text_samples`):

* rendered: UI lines in DejaVu Sans, dark on a plain light background, at 14, 18 and 22 px, and subtitle
  lines in DejaVu Sans Bold, white with a black outline over the scikit-image ``coffee`` photo, at 16 and
  22 px; the truth is the rendered string;
* photographed: scikit-image ``page``; its truth is what :class:`TextReader` reads on the clean HR image,
  so a perfect SR scores 1.0 and the score measures what SR loses, not the OCR's own errors. scikit-image
  ``text`` (handwritten formulas on a slanted sheet) is left out: the reader finds no text in it.

Every sample is cropped to a multiple of 4 pixels per side, so x2 and x4 downscales are exact. Run
``python -m benchmarks.legibility`` for the bicubic baseline.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from metasr.data.sample_images import fit_crop, photo
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale, bicubic_upscale, to_numpy, to_tensor
from metasr.metadata.content_labels import text_engine

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
UI_LINES = ("Episode 3: The Long Night (2019)", "Press START to continue...", "Battery 87% - 12:45 PM")
SUBTITLE_LINES = ("Where were you at 9:30?", "At Joe's, I swear! Ask him.", "Room 214, 2nd floor; code #7")
# name, font file, size in px, background ("plain" or a scikit-image photo), lines
RENDERED = (
    ("ui-14", "DejaVuSans.ttf", 14, "plain", UI_LINES),
    ("ui-18", "DejaVuSans.ttf", 18, "plain", UI_LINES),
    ("ui-22", "DejaVuSans.ttf", 22, "plain", UI_LINES),
    ("subtitle-16", "DejaVuSans-Bold.ttf", 16, "coffee", SUBTITLE_LINES),
    ("subtitle-22", "DejaVuSans-Bold.ttf", 22, "coffee", SUBTITLE_LINES),
)
PHOTOS = ("page",)
PLAIN_BACKGROUND = (236, 236, 228)
INK = (20, 20, 20)


@dataclass(frozen=True)
class TextSample:
    """An HR image with text, and the text it holds (lines separated by newlines)."""

    name: str
    hr: np.ndarray  # (H, W, 3) uint8 RGB, H and W multiples of 4
    truth: str


class TextReader:
    """PP-OCRv4 detection and recognition (rapidocr-onnxruntime), with the engine content labelling loads.

    The image is read at its own resolution; lines the recognizer reads with confidence under 0.5 are
    dropped (rapidocr's default), so an illegible line counts as missing.
    """

    def read(self, image: np.ndarray) -> str:
        """All text in a uint8 (H, W, 3) RGB image: lines top to bottom, boxes in a line left to right."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise MetaSRError(f"TextReader needs a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
        result, _ = text_engine()(np.ascontiguousarray(image[..., ::-1]), use_cls=False)  # arrays are BGR to it
        boxes = []
        for box, text, _score in result or []:
            points = np.asarray(box, dtype=np.float64)
            boxes.append((points[:, 1].min(), points[:, 1].max(), points[:, 0].min(), text.strip()))
        lines: list[list[tuple[float, float, float, str]]] = []
        for box in sorted(boxes, key=lambda b: (b[0] + b[1]) / 2):
            centre = (box[0] + box[1]) / 2
            if lines and lines[-1][0][0] <= centre <= lines[-1][0][1]:
                lines[-1].append(box)
            else:
                lines.append([box])
        return "\n".join(" ".join(b[3] for b in sorted(line, key=lambda b: b[2])) for line in lines)


def char_accuracy(read: str, truth: str) -> float:
    """1 - Levenshtein distance / len(truth), floored at 0; whitespace removed, case kept.

    Both strings are NFKC-normalised first: the recognizer sometimes returns full-width punctuation.
    """
    read, truth = ("".join(unicodedata.normalize("NFKC", s).split()) for s in (read, truth))
    if not truth:
        return float(not read)
    return max(0.0, 1.0 - _levenshtein(read, truth) / len(truth))


def _levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each costing 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def text_samples() -> list[TextSample]:
    """The rendered samples, then the photographed ones; deterministic."""
    rendered = [_render(name, font, size, background, lines) for name, font, size, background, lines in RENDERED]
    photos = [TextSample(name, _photo_hr(name), _photo_truth(name)) for name in PHOTOS]
    return rendered + photos


def _render(name: str, font_file: str, size: int, background: str, lines: tuple[str, ...]) -> TextSample:
    """Lines drawn at ``size`` px with ``size // 2`` margins and line gaps; outlined when over a photo."""
    path = FONT_DIR / font_file
    if not path.is_file():
        raise MetaSRError(f"font {path} not found; install the DejaVu fonts (apt-get install fonts-dejavu-core)")
    font = ImageFont.truetype(str(path), size)
    stroke = 0 if background == "plain" else max(1, size // 10)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    extents = [measure.textbbox((0, 0), line, font=font, stroke_width=stroke) for line in lines]
    margin, line_height = size // 2, max(e[3] for e in extents)
    width = max(e[2] for e in extents) + 2 * margin
    height = len(lines) * line_height + (len(lines) - 1) * margin + 2 * margin
    width, height = -(-width // 4) * 4, -(-height // 4) * 4
    if background == "plain":
        canvas = Image.new("RGB", (width, height), PLAIN_BACKGROUND)
    else:
        canvas = Image.fromarray(_to_uint8(fit_crop(photo(background), height, width)))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        xy = (margin, margin + i * (line_height + margin))
        if stroke:
            draw.text(xy, line, font=font, fill=(255, 255, 255), stroke_width=stroke, stroke_fill=(0, 0, 0))
        else:
            draw.text(xy, line, font=font, fill=INK)
    return TextSample(name, np.asarray(canvas), "\n".join(lines))


def _photo_hr(name: str) -> np.ndarray:
    """A scikit-image photo as uint8 RGB, cropped at the bottom and right to multiples of 4."""
    hr = _to_uint8(photo(name))
    return hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]


@cache
def _photo_truth(name: str) -> str:
    """What the reader reads on the clean HR photo (read once per process)."""
    return TextReader().read(_photo_hr(name))


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> uint8, rounded."""
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def legibility(
    run: Callable[[torch.Tensor], torch.Tensor], samples: list[TextSample], scale: int, reader: TextReader
) -> dict[str, float]:
    """Character accuracy of the text read in ``run``'s output, per sample name.

    ``run`` maps the bicubic-downscaled HR, (1, 3, H / scale, W / scale) float in [0, 1], to an SR image
    (1, 3, H, W); its output is clamped to [0, 1] and rounded to uint8 before reading.
    """
    scores = {}
    for sample in samples:
        lr = bicubic_downscale(to_tensor(sample.hr.astype(np.float32) / 255.0), scale)
        with torch.no_grad():
            sr = run(lr)
        if tuple(sr.shape) != (1, 3, *sample.hr.shape[:2]):
            raise MetaSRError(
                f"{sample.name}: run returned {tuple(sr.shape)} for a x{scale} input, expected (1, 3, "
                f"{sample.hr.shape[0]}, {sample.hr.shape[1]})"
            )
        scores[sample.name] = char_accuracy(reader.read(_to_uint8(to_numpy(sr))), sample.truth)
    return scores


def bicubic(scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The bicubic-upscale baseline as a ``run`` for :func:`legibility`."""
    return lambda lr: bicubic_upscale(lr, scale)


def main() -> None:
    """Print the bicubic baseline's accuracy per sample at x2 and x4."""
    samples, reader = text_samples(), TextReader()
    print("| sample | size | x1 | x2 bicubic | x4 bicubic |")
    print("|---|---|---|---|---|")
    clean = {s.name: char_accuracy(reader.read(s.hr), s.truth) for s in samples}
    x2, x4 = (legibility(bicubic(scale), samples, scale, reader) for scale in (2, 4))
    for s in samples:
        size = f"{s.hr.shape[1]}x{s.hr.shape[0]}"
        print(f"| {s.name} | {size} | {clean[s.name]:.3f} | {x2[s.name]:.3f} | {x4[s.name]:.3f} |")


if __name__ == "__main__":
    main()
