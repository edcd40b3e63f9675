"""Real-world degradations: kernels, torch JPEG, the two-stage pipeline, controlled degrees, degraded pair sampling."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from metasr.data.degradations import (
    REAL_ESRGAN_MILD,
    REAL_ESRGAN_X4PLUS,
    DegradationConfig,
    StageConfig,
    controlled_degradation,
    degrade,
)
from metasr.data.jpeg import jpeg_compress
from metasr.data.kernels import (
    BlurConfig,
    apply_kernels,
    delta_kernel,
    effective_width,
    gaussian_kernel,
    generalized_gaussian_kernel,
    plateau_kernel,
    random_blur_kernel,
    sinc_kernel,
)
from metasr.data.pairs import DegradedPatchSampler, validation_pairs
from metasr.data.sample_images import fit_crop, photo
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """Astronaut and coffee, 64x64 each, as (2, 3, 64, 64) in [0, 1]."""
    crops = [fit_crop(photo(name), 64, 64).transpose(2, 0, 1) for name in ("astronaut", "coffee")]
    return torch.from_numpy(np.ascontiguousarray(np.stack(crops)))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def _grad_energy(x: torch.Tensor) -> torch.Tensor:
    """Per-sample mean squared finite difference (detail / sharpness)."""
    return (x.diff(dim=-1) ** 2).mean((1, 2, 3)) + (x.diff(dim=-2) ** 2).mean((1, 2, 3))


def _highpass_energy(x: torch.Tensor) -> torch.Tensor:
    """Per-sample energy of the image minus its 3x3 box blur."""
    return ((x - apply_kernels(x, torch.full((x.shape[0], 3, 3), 1 / 9))) ** 2).mean((1, 2, 3))


def _stages(**changes) -> DegradationConfig:
    """The default config with the same field changes applied to both stages."""
    cfg = REAL_ESRGAN_X4PLUS
    return replace(cfg, first=replace(cfg.first, **changes), second=replace(cfg.second, **changes))


# --- kernels ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [7, 13, 21])
def test_kernels_sum_to_one_with_requested_size(size: int) -> None:
    kernels = [
        gaussian_kernel(size, 1.5),
        gaussian_kernel(size, 2.0, 0.7, 0.5),
        generalized_gaussian_kernel(size, 1.5, 1.0, 0.3, 2.5),
        plateau_kernel(size, 1.5, 1.0, 0.3, 1.5),
        sinc_kernel(size, 1.2),
    ]
    for k in kernels:
        assert k.shape == (size, size)
        assert torch.isclose(k.sum(), torch.tensor(1.0), atol=1e-5)


def test_kernel_families_differ() -> None:
    kernels = [
        gaussian_kernel(21, 2.0),
        gaussian_kernel(21, 2.0, 0.8, 0.6),
        generalized_gaussian_kernel(21, 2.0, 2.0, 0.0, 3.0),
        plateau_kernel(21, 2.0, 2.0, 0.0, 1.5),
        sinc_kernel(21, 1.0),
    ]
    for i in range(len(kernels)):
        for j in range(i + 1, len(kernels)):
            assert (kernels[i] - kernels[j]).abs().max() > 1e-3, (i, j)


def test_kernel_size_must_be_odd() -> None:
    with pytest.raises(MetaSRError, match="odd"):
        gaussian_kernel(8, 1.0)


def test_random_kernels_are_padded_normalised_and_seeded() -> None:
    a = [random_blur_kernel(BlurConfig(sinc_prob=0.5), _gen(s)) for s in range(12)]
    b = [random_blur_kernel(BlurConfig(sinc_prob=0.5), _gen(s)) for s in range(12)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(k.shape == (21, 21) and torch.isclose(k.sum(), torch.tensor(1.0), atol=1e-5) for k in a)
    assert len({tuple(k.flatten().tolist()) for k in a}) == len(a)


def test_effective_width_tracks_gaussian_sigma() -> None:
    assert effective_width(delta_kernel()) == 0
    widths = effective_width(torch.stack([gaussian_kernel(21, s) for s in (0.5, 1.0, 2.0, 3.0)]))
    assert torch.all(widths.diff() > 0)
    assert torch.allclose(widths[1:], torch.tensor([1.0, 2.0, 3.0]), atol=0.1)


# --- JPEG ------------------------------------------------------------------------------------------------------


def test_jpeg_matches_pil_on_a_real_photo() -> None:
    image = data.astronaut()
    x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None].float() / 255
    original = image / 255.0
    errors = {}
    for quality in (10, 50, 90):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=quality)
        pil = np.asarray(Image.open(buf)) / 255.0
        ours = jpeg_compress(x, quality)[0].numpy().transpose(1, 2, 0)
        assert _psnr(ours, pil) > 38, quality
        errors[quality] = _psnr(ours, original)
    assert errors[90] > errors[10] + 5


def test_jpeg_batches_per_sample_quality_and_crops_back(photos: torch.Tensor) -> None:
    x = photos[:, :, :50, :37]
    batched = jpeg_compress(x, torch.tensor([20.0, 80.0]))
    assert batched.shape == x.shape
    assert torch.allclose(batched[:1], jpeg_compress(x[:1], 20.0), atol=1e-6)
    assert torch.allclose(batched[1:], jpeg_compress(x[1:], 80.0), atol=1e-6)
    assert torch.equal(batched, jpeg_compress(x, torch.tensor([20.0, 80.0])))
    with pytest.raises(MetaSRError, match="quality"):
        jpeg_compress(x, 0.0)


# --- two-stage pipeline ----------------------------------------------------------------------------------------


def test_degrade_shapes_range_and_8bit_levels(photos: torch.Tensor) -> None:
    out = degrade(photos, 4, REAL_ESRGAN_X4PLUS, _gen(0))
    assert out.lr.shape == (2, 3, 16, 16) and out.hr is photos
    assert out.degrees.shape == (2, 3)
    for t in (out.lr, out.degrees):
        assert t.min() >= 0 and t.max() <= 1
    assert torch.equal(out.lr * 255, (out.lr * 255).round())


def test_degrade_is_deterministic_under_a_seed(photos: torch.Tensor) -> None:
    hr = photos.repeat(2, 1, 1, 1)
    a, b = (degrade(hr, 2, REAL_ESRGAN_X4PLUS, _gen(7)) for _ in range(2))
    assert torch.equal(a.lr, b.lr) and torch.equal(a.degrees, b.degrees)
    c = degrade(hr, 2, REAL_ESRGAN_X4PLUS, _gen(8))
    assert not torch.equal(a.lr, c.lr) and not torch.equal(a.degrees, c.degrees)


def test_degree_summary_follows_configured_strength(photos: torch.Tensor) -> None:
    hr = photos.repeat(3, 1, 1, 1)

    def degrees(cfg: DegradationConfig) -> torch.Tensor:
        return degrade(hr, 4, cfg, _gen(3)).degrees

    assert torch.all(degrees(_stages(noise_range=(0.0, 0.0), poisson_scale_range=(0.0, 0.0)))[:, 1] == 0)
    weak = degrees(_stages(noise_range=(1.0, 3.0), poisson_scale_range=(0.05, 0.2)))[:, 1]
    strong = degrees(_stages(noise_range=(30.0, 40.0), poisson_scale_range=(2.5, 3.0)))[:, 1]
    assert weak.max() < strong.min()

    sharp = replace(_stages(blur=BlurConfig(sigma_range=(0.2, 0.3), sinc_prob=0.0)), final_sinc_prob=0.0)
    blurry = replace(sharp, first=replace(sharp.first, blur=BlurConfig(sigma_range=(2.5, 3.0), sinc_prob=0.0)))
    assert degrees(sharp)[:, 0].max() < 0.05 < degrees(blurry)[:, 0].min()

    light, heavy = degrees(_stages(jpeg_range=(90.0, 95.0)))[:, 2], degrees(_stages(jpeg_range=(30.0, 35.0)))[:, 2]
    assert light.max() < heavy.min()


def test_the_mild_pipeline_is_the_full_one_with_less_noise_and_jpeg(photos: torch.Tensor) -> None:
    hr = photos.repeat(4, 1, 1, 1)
    full, mild = (degrade(hr, 4, config, _gen(5)).degrees for config in (REAL_ESRGAN_X4PLUS, REAL_ESRGAN_MILD))
    assert torch.equal(mild[:, 0], full[:, 0])  # the same kernels and resizes
    assert torch.all(mild[:, 1] < full[:, 1]) and mild[:, 1].mean() < 0.5 * full[:, 1].mean()
    assert mild[:, 2].mean() < 0.8 * full[:, 2].mean()


def test_degrade_and_config_reject_bad_input(photos: torch.Tensor) -> None:
    with pytest.raises(MetaSRError, match="divisible"):
        degrade(photos[..., :63], 4, REAL_ESRGAN_X4PLUS, _gen(0))
    with pytest.raises(MetaSRError, match="jpeg_range"):
        StageConfig(jpeg_range=(50.0, 120.0))
    with pytest.raises(MetaSRError, match="sigma_range"):
        BlurConfig(sigma_range=(2.0, 1.0))


# --- controlled degradation ------------------------------------------------------------------------------------


def test_controlled_degradation_is_monotonic(photos: torch.Tensor) -> None:
    hr = photos[:1].repeat(4, 1, 1, 1)
    levels = torch.tensor([0.0, 0.25, 0.5, 1.0])
    blurred = controlled_degradation(hr, 2, levels, 0.0, 0.0, _gen(0))
    assert torch.all(_grad_energy(blurred).diff() < 0)
    noisy = controlled_degradation(hr, 2, 0.0, levels, 0.0, _gen(0))
    assert torch.all(_highpass_energy(noisy).diff() > 0)
    clean = controlled_degradation(hr, 2, 0.0, 0.0, 0.0, _gen(0))
    compressed = controlled_degradation(hr, 2, 0.0, 0.0, levels, _gen(0))
    assert torch.all(((compressed - clean) ** 2).mean((1, 2, 3)).diff() > 0)


def test_controlled_degradation_zero_is_plain_bicubic(photos: torch.Tensor) -> None:
    lr = controlled_degradation(photos, 4, 0.0, 0.0, 0.0, _gen(0))
    assert lr.shape == (2, 3, 16, 16)
    assert torch.equal(lr, (bicubic_downscale(photos, 4) * 255).round() / 255)
    with pytest.raises(MetaSRError, match="noise degree"):
        controlled_degradation(photos, 4, 0.0, 1.5, 0.0, _gen(0))


def test_controlled_degradation_is_seeded(photos: torch.Tensor) -> None:
    a, b, c = (controlled_degradation(photos, 2, 0.3, 0.5, 0.5, _gen(s)) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- degraded pair sampling ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uint8_images() -> list[np.ndarray]:
    return [data.astronaut()[::4, ::4].copy(), data.coffee()[::4, ::4].copy()]


def test_sampler_shapes_and_resume(uint8_images: list[np.ndarray]) -> None:
    sampler = DegradedPatchSampler(uint8_images, patch=8, scale=4, seed=5)
    first = sampler.sample(3)
    assert first.lr.shape == (3, 3, 8, 8) and first.hr.shape == (3, 3, 32, 32) and first.degrees.shape == (3, 3)
    buf = io.BytesIO()
    torch.save(sampler.state_dict(), buf)
    expected = sampler.sample(3)
    resumed = DegradedPatchSampler(uint8_images, patch=8, scale=4, seed=99)
    resumed.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    got = resumed.sample(3)
    assert torch.equal(got.hr, expected.hr) and torch.equal(got.lr, expected.lr)
    assert torch.equal(got.degrees, expected.degrees)


def test_sampler_rejects_images_smaller_than_the_crop(uint8_images: list[np.ndarray]) -> None:
    with pytest.raises(MetaSRError, match="smaller than"):
        DegradedPatchSampler(uint8_images, patch=64, scale=4)


def test_validation_pairs_are_fixed(uint8_images: list[np.ndarray]) -> None:
    a, b = (validation_pairs(uint8_images, 4, 64, seed=0) for _ in range(2))
    assert len(a) == 2
    for x, y in zip(a, b, strict=True):
        assert x.hr.shape == (1, 3, 64, 64) and x.lr.shape == (1, 3, 16, 16)
        assert torch.equal(x.lr, y.lr) and torch.equal(x.hr, y.hr) and torch.equal(x.degrees, y.degrees)
    assert not torch.equal(a[0].degrees, a[1].degrees)
    small = validation_pairs(uint8_images, 4, 1000, seed=0)
    assert small[1].hr.shape == (1, 3, 100, 148)
