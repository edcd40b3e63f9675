"""Labelled LR frames for training and evaluating the content classifier, built from real images.

Frames are ``FRAME`` x ``FRAME`` LR pixels (3 x 3 cells). How a frame is made only makes sure every
class is well represented; its labels always come from the teacher-grade detectors
(:func:`metasr.metadata.content_labels.label_cells`). Frame makers:

* natural: random-scale crops of the corpus photos and of scikit-image / matplotlib photos;
* low light: the same crops darkened by a camera model (linear exposure 2-25 %, Poisson shot noise,
  Gaussian read noise, sRGB-like gamma 2.2);
* text: words rendered with DejaVu fonts over photo crops as subtitles, UI labels and captions
  (7-26 px, random colours), and crops of scikit-image ``page()`` / ``text()``;
* faces: crops around the faces that RetinaFace finds in astronaut / Grace Hopper / cameraman (colour
  jitter, greyscale or blur at random), and the 100 ``lfw_subset`` faces, skin-tinted, upscaled, sharpened
  at random and blended into photo crops or filling the frame (its 100 non-face crops go through the same
  steps, as hard negatives);
* cartoon: procedurally drawn flat-colour illustrations with outlines (PIL, 4x supersampled), and crops
  of the scikit-image and matplotlib logos.

Split by source image: within each family of sources (corpus photos, sample photos, lfw faces,
drawings, ...) every ``HELD_OUT_EVERY``-th source is held out, and a frame composed of several images
(text or a face over a photo) draws them all from the same side, so held-out frames only contain
images never seen in training. Everything is deterministic under the seed; the labelled set is cached
as an .npz so that training reruns skip the detectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from metasr.atomic import atomic_path
from metasr.data.folder import list_images, load_for_training
from metasr.data.sample_images import photo
from metasr.errors import MetaSRError
from metasr.metadata.content_labels import label_cells
from metasr.progress import progress_bar

FRAME = 96  # LR pixels: 3 x 3 cells
HELD_OUT_EVERY = 5  # source index % 5 == 4 is held out, per family
CACHE_VERSION = 3
CORPUS_MAX_SIDE = 1024

PHOTOS = (  # scikit-image and matplotlib photos, in split order: grace_hopper (index 4) is held out
    "astronaut", "coffee", "chelsea", "rocket", "grace_hopper",
    "brick", "grass", "camera", "hubble_deep_field", "gravel",
    "coins", "moon", "immunohistochemistry", "retina",
)  # fmt: skip
FACE_PHOTOS = ("astronaut", "grace_hopper", "camera")
GRAPHICS = ("logo", "logo2.png", "Minduka_Present_Blue_Pack.png")  # skimage logo, matplotlib sample data
DOCUMENTS = ("page", "text")
LFW_FACES = 100  # lfw_subset(): the first 100 of its 200 crops are faces, the rest are not
DRAWINGS = 400

NATURAL_PER_PHOTO = 12
DARK_PER_PHOTO = 8
TEXT_PER_PHOTO = 8
FACE_CROPS_PER_FACE_PHOTO = 80
FRAMES_PER_LFW_FACE = 4
FRAMES_PER_LFW_NON_FACE = 1
CROPS_PER_GRAPHIC = 15

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSerifCondensed.ttf",
)  # fmt: skip
WORDS = (
    "the", "and", "you", "that", "what", "where", "never", "again", "tonight", "hello", "thanks", "sorry",
    "wait", "look", "listen", "come", "home", "right", "there", "money", "police", "doctor", "water",
    "Settings", "Cancel", "Play", "Pause", "Next", "Share", "Download", "Search", "Profile", "Menu",
    "Subscribe", "Live", "News", "Weather", "Sports", "Breaking", "Episode", "Chapter", "Level", "Score",
    "London", "Paris", "Tokyo", "Monday", "Friday", "OK", "NO", "YES", "STOP", "EXIT", "SALE", "OPEN",
    "12:45", "2024", "100%", "x3", "$4.99", "-20%", "#1", "v2.1", "9:30 PM",
)  # fmt: skip
SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 90), (141, 85, 54), (255, 205, 178))


@dataclass(frozen=True)
class ContentTiles:
    """Labelled frames: uint8 (N, FRAME, FRAME, 3), int64 labels (N, 3, 3), held-out flags and source ids."""

    frames: np.ndarray
    labels: np.ndarray
    held_out: np.ndarray
    sources: np.ndarray

    def part(self, held_out: bool) -> tuple[np.ndarray, np.ndarray]:
        """(frames, labels) of the training (``False``) or held-out (``True``) side."""
        keep = self.held_out == held_out
        return self.frames[keep], self.labels[keep]


@dataclass(frozen=True)
class _Recipe:
    """One frame to make: its source id, held-out side and a maker taking a seeded generator."""

    source: str
    held_out: bool
    make: Callable[[np.random.Generator], np.ndarray]


def load_content_tiles(cache_dir: Path, corpus: Path, seed: int = 0) -> ContentTiles:
    """The labelled frames for ``seed``: read from ``cache_dir`` when built before, else built and cached."""
    corpus_files = list_images(corpus)
    fingerprint = _fingerprint(corpus_files, seed)
    path = Path(cache_dir) / f"content_tiles_seed{seed}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as cached:
            if str(cached["fingerprint"]) == fingerprint:
                return ContentTiles(cached["frames"], cached["labels"], cached["held_out"], cached["sources"])
    tiles = build_content_tiles(corpus_files, seed)
    _save(path, tiles, fingerprint)
    return tiles


def build_content_tiles(corpus_files: list[Path], seed: int = 0) -> ContentTiles:
    """Make every frame and label it with the detectors (minutes: the detectors dominate)."""
    recipes = _recipes(corpus_files)
    frames = np.zeros((len(recipes), FRAME, FRAME, 3), dtype=np.uint8)
    labels = np.zeros((len(recipes), FRAME // 32, FRAME // 32), dtype=np.int64)
    with progress_bar() as bar:
        task = bar.add_task("labelling content frames", total=len(recipes))
        for i, recipe in enumerate(recipes):
            frames[i] = recipe.make(np.random.default_rng([seed, i]))
            labels[i] = label_cells(frames[i])
            bar.advance(task)
    held_out = np.array([r.held_out for r in recipes])
    return ContentTiles(frames, labels, held_out, np.array([r.source for r in recipes]))


def is_held_out(index: int) -> bool:
    """Whether the source at ``index`` within its family is held out."""
    return index % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def _recipes(corpus_files: list[Path]) -> list[_Recipe]:
    """Every frame to make, in a fixed order (photos are loaded once and shared by their makers)."""
    photos = {f"corpus/{p.name}": load_for_training(p, CORPUS_MAX_SIDE) for p in corpus_files}
    photos |= {f"photo/{name}": sample_photo(name) for name in PHOTOS}
    held = {source: is_held_out(i) for i, source in enumerate(s for s in photos if s.startswith("corpus/"))}
    held |= {f"photo/{name}": is_held_out(i) for i, name in enumerate(PHOTOS)}
    backgrounds = {side: [photos[s] for s in photos if held[s] == side] for side in (False, True)}
    recipes: list[_Recipe] = []

    def add(source: str, side: bool, count: int, make: Callable[[np.random.Generator], np.ndarray]) -> None:
        recipes.extend(_Recipe(source, side, make) for _ in range(count))

    for source, image in photos.items():
        side = held[source]
        add(source, side, NATURAL_PER_PHOTO, partial(_random_crop, image))
        add(source, side, DARK_PER_PHOTO, partial(_dark_crop, image))
        add(source, side, TEXT_PER_PHOTO, partial(_text_crop, image))
    for name in FACE_PHOTOS:
        source = f"photo/{name}"
        add(
            source,
            held[source],
            FACE_CROPS_PER_FACE_PHOTO,
            partial(face_crop, photos[source], face_boxes(photos[source])),
        )
    for i, crop in enumerate(_lfw_crops()):
        side = is_held_out(i)
        count = FRAMES_PER_LFW_FACE if i < LFW_FACES else FRAMES_PER_LFW_NON_FACE
        add(f"lfw/{i}", side, count, partial(_place_face, crop, backgrounds[side]))
    for i in range(DRAWINGS):
        add(f"drawing/{i}", is_held_out(i), 1, drawing)
    for i, name in enumerate((*GRAPHICS, *DOCUMENTS)):
        add(
            f"graphic/{name}",
            is_held_out(i),
            CROPS_PER_GRAPHIC,
            partial(_random_crop, sample_photo(name), max_zoom=1.0),
        )
    return recipes


def sample_photo(name: str) -> np.ndarray:
    """A scikit-image sample by name, or a matplotlib sample-data file (names with a suffix), as uint8 RGB."""
    if "." in name or name == "grace_hopper":
        from matplotlib import cbook

        filename = name if "." in name else f"{name}.jpg"
        rgba = Image.open(cbook.get_sample_data(filename)).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return (photo(name) * 255.0 + 0.5).astype(np.uint8)


def _lfw_crops() -> np.ndarray:
    from skimage import data

    return (data.lfw_subset() * 255.0 + 0.5).astype(np.uint8)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def _random_crop(image: np.ndarray, rng: np.random.Generator, max_zoom: float = 0.6) -> np.ndarray:
    """A FRAME crop after a random (log-uniform) downscale: from a 1.2-frame short side up to ``max_zoom``."""
    h, w = image.shape[:2]
    smallest = 1.2 * FRAME / min(h, w)
    ratio = float(np.exp(rng.uniform(np.log(smallest), np.log(max(max_zoom, smallest)))))
    scaled = _resize(image, max(FRAME, round(w * ratio)), max(FRAME, round(h * ratio)))
    top = rng.integers(0, scaled.shape[0] - FRAME + 1)
    left = rng.integers(0, scaled.shape[1] - FRAME + 1)
    return np.ascontiguousarray(scaled[top : top + FRAME, left : left + FRAME])


def _dark_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return darken(_random_crop(image, rng), rng)


def _text_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _render_text(_random_crop(image, rng), rng)


def darken(frame: np.ndarray, rng: np.random.Generator, exposure: float | None = None) -> np.ndarray:
    """Low light: linear ``exposure`` (default: random 2-25 %), Poisson shot noise (100-2000 photons at full
    scale) and Gaussian read noise, through a 2.2 gamma."""
    linear = (frame.astype(np.float64) / 255.0) ** 2.2 * (rng.uniform(0.02, 0.25) if exposure is None else exposure)
    photons = rng.uniform(100.0, 2000.0)
    noisy = rng.poisson(linear * photons) / photons + rng.normal(0.0, rng.uniform(0.0005, 0.003), frame.shape)
    return (np.clip(noisy, 0.0, 1.0) ** (1 / 2.2) * 255.0 + 0.5).astype(np.uint8)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _contrasting(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    return (20, 20, 20) if sum(fill) > 384 else (245, 245, 245)


def _render_text(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one to three subtitles, UI labels or captions over a photo crop."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(1, 4)):
        font = ImageFont.truetype(str(FONT_DIR / FONTS[rng.integers(len(FONTS))]), int(rng.integers(7, 27)))
        words = " ".join(WORDS[k] for k in rng.integers(0, len(WORDS), rng.integers(1, 4)))
        left, top, right, bottom = draw.textbbox((0, 0), words, font=font)
        x = int(rng.integers(-4, max(-3, FRAME - (right - left) + 4)))
        y = int(rng.integers(-2, max(-1, FRAME - (bottom - top) + 2)))
        style = rng.integers(3)
        if style == 0:  # subtitle: white or yellow with a dark outline
            fill = ((255, 255, 255), (255, 235, 60))[rng.integers(2)]
            draw.text((x, y), words, font=font, fill=fill, stroke_width=int(rng.integers(1, 3)), stroke_fill=(0, 0, 0))
        elif style == 1:  # UI label: flat panel with contrasting text
            panel = _colour(rng)
            pad = int(rng.integers(2, 6))
            box = (x + left - pad, y + top - pad, x + right + pad, y + bottom + pad)
            draw.rounded_rectangle(box, radius=int(rng.integers(0, 6)), fill=panel)
            draw.text((x, y), words, font=font, fill=_contrasting(panel))
        else:  # caption: plain text, contrasting with the photo underneath
            patch = frame[max(y, 0) : y + bottom, max(x, 0) : x + right]
            mean = tuple(int(v) for v in patch.reshape(-1, 3).mean(axis=0)) if patch.size else (128, 128, 128)
            draw.text((x, y), words, font=font, fill=_contrasting(mean))
    return np.asarray(image)


def face_boxes(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of every face RetinaFace finds in a full-resolution photo."""
    from retinaface import detect_faces

    boxes = [(f.x, f.y, f.width, f.height) for f in detect_faces(image, score_threshold=0.9)]
    if not boxes:
        raise MetaSRError("no face found in a face photo; reinstall scikit-image / matplotlib sample data")
    return boxes


def face_crop(image: np.ndarray, boxes: list[tuple[int, int, int, int]], rng: np.random.Generator) -> np.ndarray:
    """A FRAME crop holding one of the faces, scaled to 16-90 LR pixels wide, colour- and blur-jittered."""
    x, y, w, h = boxes[rng.integers(len(boxes))]
    ratio = float(np.exp(rng.uniform(np.log(16.0), np.log(90.0)))) / w
    scaled = _resize(image, round(image.shape[1] * ratio), round(image.shape[0] * ratio))
    cx, cy = (x + w / 2) * ratio, (y + h / 2) * ratio
    left = int(np.clip(cx - rng.uniform(0.15, 0.85) * FRAME, 0, max(scaled.shape[1] - FRAME, 0)))
    top = int(np.clip(cy - rng.uniform(0.15, 0.85) * FRAME, 0, max(scaled.shape[0] - FRAME, 0)))
    crop = scaled[top : top + FRAME, left : left + FRAME]
    if crop.shape[:2] != (FRAME, FRAME):
        crop = _resize(crop, FRAME, FRAME)
    return _photo_jitter(np.ascontiguousarray(crop), rng)


def _photo_jitter(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vary colour and sharpness: grey (1 in 4) or hue +-10 degrees and saturation x0.6-1.4, then blur (1 in 2)."""
    if rng.random() < 0.25:
        frame = np.repeat(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    else:
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV).astype(np.float64)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-5.0, 5.0)) % 180.0  # OpenCV hue is in half degrees
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.4), 0, 255)
        frame = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.5:
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.4, 1.2))
    return frame


def _place_face(crop: np.ndarray, backgrounds: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A skin-tinted lfw crop (face or not), filling the frame or blended (feathered ellipse) into a photo crop."""
    tone = np.array([[SKIN_TONES[rng.integers(len(SKIN_TONES))]]], dtype=np.uint8)
    chroma = cv2.cvtColor(tone, cv2.COLOR_RGB2YCrCb)[0, 0, 1:].astype(np.float64) + rng.normal(0.0, 3.0, 2)
    ycrcb = np.dstack([crop, *(np.full(crop.shape, np.clip(c, 0, 255)) for c in chroma)]).astype(np.uint8)
    tinted = cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)  # lfw luma with a skin tone's chroma
    size = round(float(np.exp(rng.uniform(np.log(24.0), np.log(100.0)))))  # log-uniform: mostly small, sharp
    if size >= 84:
        return _sharpen(_resize(tinted, FRAME, FRAME), rng)
    frame = _random_crop(backgrounds[rng.integers(len(backgrounds))], rng).astype(np.float64)
    patch = _sharpen(_resize(tinted, size, size), rng).astype(np.float64)
    mask = np.zeros((size, size), dtype=np.float64)
    cv2.ellipse(mask, (size // 2, size // 2), (size * 9 // 20, size // 2), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), size / 16)[..., None]
    x, y = rng.integers(0, FRAME - size + 1, 2)
    region = frame[y : y + size, x : x + size]
    frame[y : y + size, x : x + size] = mask * patch + (1 - mask) * region
    return (frame + 0.5).astype(np.uint8)


def _sharpen(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsharp mask of random strength (0-1.5): upscaled 25-pixel crops are softer than real LR faces."""
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0).astype(np.float64)
    sharpened = image + rng.uniform(0.0, 1.5) * (image.astype(np.float64) - blurred)
    return np.clip(sharpened + 0.5, 0, 255).astype(np.uint8)


def drawing(rng: np.random.Generator, supersample: int = 4) -> np.ndarray:
    """A flat-colour illustration: background, ground and sky bands, outlined shapes; area-downscaled."""
    size = FRAME * supersample
    palette = [_colour(rng) for _ in range(rng.integers(3, 8))]
    image = Image.new("RGB", (size, size), palette[0])
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.5:  # ground band
        draw.rectangle((0, int(rng.integers(size // 3, size)), size, size), fill=palette[1])
    outline = (0, 0, 0) if rng.random() < 0.7 else _colour(rng)
    for _ in range(rng.integers(2, 9)):
        fill = palette[rng.integers(len(palette))]
        width = int(rng.integers(0, 4)) * supersample
        x0, y0 = (int(v) for v in rng.integers(-size // 4, size, 2))
        box = (x0, y0, x0 + int(rng.integers(size // 8, size)), y0 + int(rng.integers(size // 8, size)))
        kind = rng.integers(4)
        if kind == 0:
            draw.ellipse(box, fill=fill, outline=outline, width=width)
        elif kind == 1:
            radius = int(rng.integers(0, size // 8))
            draw.rounded_rectangle(box, radius=radius, fill=fill, outline=outline, width=width)
        elif kind == 2:
            points = [
                tuple(int(v) for v in rng.integers(-size // 4, size * 5 // 4, 2)) for _ in range(rng.integers(3, 7))
            ]
            draw.polygon(points, fill=fill, outline=outline, width=width)
        else:
            points = [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(rng.integers(2, 5))]
            draw.line(points, fill=fill if width == 0 else outline, width=max(width, supersample), joint="curve")
    return _resize(np.asarray(image), FRAME, FRAME)


def _fingerprint(corpus_files: list[Path], seed: int) -> str:
    """What the cached set depends on: version, seed, frame size and the corpus files."""
    files = [(p.name, p.stat().st_size) for p in corpus_files]
    payload = json.dumps({"version": CACHE_VERSION, "seed": seed, "frame": FRAME, "corpus": files})
    return hashlib.sha256(payload.encode()).hexdigest()


def _save(path: Path, tiles: ContentTiles, fingerprint: str) -> None:
    """Write the cache atomically (temp file, then rename)."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(
            tmp,
            frames=tiles.frames,
            labels=tiles.labels,
            held_out=tiles.held_out,
            sources=tiles.sources,
            fingerprint=np.array(fingerprint),
        )
