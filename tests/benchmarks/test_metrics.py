"""SSIM and gradient similarity on luma, and the OCR legibility benchmark's pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from benchmarks.legibility import (
    TextReader,
    TextSample,
    bicubic,
    char_accuracy,
    legibility,
    text_samples,
)
from metasr.data.sample_images import photo
from metasr.errors import MetaSRError
from metasr.images import rgb_to_y
from metasr.validate.metrics import gradient_similarity, y_ssim


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return photo("astronaut")[100:228, 150:310].astype(np.float64)


def noisy(image: np.ndarray, sigma: float) -> np.ndarray:
    return np.clip(image + np.random.default_rng(0).normal(0.0, sigma, image.shape), 0.0, 1.0)


@pytest.fixture(scope="module")
def samples() -> list[TextSample]:
    return text_samples()


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader()


def test_y_ssim_is_one_on_identical_images(crop: np.ndarray) -> None:
    assert y_ssim(crop, crop) == pytest.approx(1.0, abs=1e-12)


def test_y_ssim_matches_skimage(crop: np.ndarray) -> None:
    other = noisy(crop, 0.05)
    reference = structural_similarity(
        rgb_to_y(crop) * 255.0,
        rgb_to_y(other) * 255.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert y_ssim(crop, other) == pytest.approx(reference, abs=1e-3)


def test_y_ssim_decreases_with_noise(crop: np.ndarray) -> None:
    scores = [y_ssim(crop, noisy(crop, sigma)) for sigma in (0.01, 0.03, 0.1)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_gradient_similarity_drops_with_blur(crop: np.ndarray) -> None:
    blurred = ndimage.gaussian_filter(crop, (1.5, 1.5, 0))
    assert gradient_similarity(crop, crop) == pytest.approx(1.0, abs=1e-12)
    assert gradient_similarity(crop, blurred) < 0.97


def test_gradient_similarity_border_crop(crop: np.ndarray) -> None:
    damaged = crop.copy()
    damaged[:4] = 0.0
    damaged[:, -4:] = 1.0
    assert gradient_similarity(crop, damaged) < 1.0
    assert gradient_similarity(crop, damaged, border=5) == pytest.approx(1.0, abs=1e-12)


def test_char_accuracy() -> None:
    assert char_accuracy("Hello, World!", "Hello, World!") == 1.0
    assert char_accuracy("Hello,World!", "Hello, World!") == 1.0  # whitespace ignored
    assert char_accuracy("Hellp, World!", "Hello, World!") == pytest.approx(1.0 - 1.0 / 12.0)
    assert char_accuracy("hello, World!", "Hello, World!") < 1.0  # case kept
    assert char_accuracy("", "Hello") == 0.0
    assert char_accuracy("a much longer wrong reading", "Hi") == 0.0  # floored


def test_text_samples_are_deterministic_and_divisible_by_4(samples: list[TextSample]) -> None:
    again = text_samples()
    assert [s.name for s in samples] == [s.name for s in again]
    for sample, other in zip(samples, again, strict=True):
        assert sample.hr.dtype == np.uint8 and sample.hr.shape[2] == 3
        assert sample.hr.shape[0] % 4 == 0 and sample.hr.shape[1] % 4 == 0
        assert np.array_equal(sample.hr, other.hr) and sample.truth == other.truth
        assert sample.truth.strip()


def test_reader_reads_clean_text_and_less_when_degraded(samples: list[TextSample], reader: TextReader) -> None:
    sample = next(s for s in samples if s.name == "ui-18")
    clean = char_accuracy(reader.read(sample.hr), sample.truth)
    small = sample.hr[::4, ::4]
    blocky = np.repeat(np.repeat(ndimage.uniform_filter(small, (3, 3, 1)), 4, axis=0), 4, axis=1)
    degraded = char_accuracy(reader.read(blocky), sample.truth)
    assert clean >= 0.9
    assert degraded < clean


def test_legibility_of_bicubic(samples: list[TextSample], reader: TextReader) -> None:
    sample = next(s for s in samples if s.name == "ui-22")
    assert legibility(bicubic(2), [sample], 2, reader)["ui-22"] >= 0.9
    with pytest.raises(MetaSRError, match="expected"):
        legibility(lambda lr: torch.zeros(1, 3, 8, 8), [sample], 2, reader)
