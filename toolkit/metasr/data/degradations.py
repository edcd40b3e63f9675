"""Real-world degradations: Real-ESRGAN's second-order pipeline and a controlled single-degradation variant.

Both run batched in torch and draw every random number from a caller-supplied ``torch.Generator``, so the
same generator seed gives bit-identical output. Outputs are rounded to 8-bit levels, like Real-ESRGAN's LR.

Degradation degrees are on one shared scale, so the degrees ``degrade`` reports and the degrees
``controlled_degradation`` takes mean the same thing:

* blur: effective blur width in HR pixels / ``BLUR_SIGMA_MAX``;
* noise: RMS of the added noise (in [0, 1] pixel units) / ``NOISE_SIGMA_MAX``;
* jpeg: ``(JPEG_QUALITY_MAX - quality) / (JPEG_QUALITY_MAX - JPEG_QUALITY_MIN)``;

each clamped to [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from metasr.data.jpeg import jpeg_compress
from metasr.data.kernels import (
    BlurConfig,
    apply_kernels,
    delta_kernel,
    effective_width,
    gaussian_kernel,
    rand_choice,
    rand_uniform,
    random_blur_kernel,
    random_final_sinc_kernel,
)
from metasr.errors import MetaSRError
from metasr.images import LUMA, bicubic_downscale

BLUR_SIGMA_MAX = 4.0  # Gaussian sigma in HR pixels at blur degree 1
NOISE_SIGMA_MAX = 50.0 / 255.0  # Gaussian noise sigma at noise degree 1
JPEG_QUALITY_MAX = 100.0  # quality at jpeg degree 0 (controlled_degradation skips JPEG at exactly 0)
JPEG_QUALITY_MIN = 10.0  # quality at jpeg degree 1
CONTROLLED_KERNEL_SIZE = 25  # covers +-3 sigma at BLUR_SIGMA_MAX
RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class StageConfig:
    """One degradation stage: blur, random resize, Gaussian or Poisson noise, JPEG (Real-ESRGAN stage 1 defaults).

    Noise sigmas are in 8-bit levels; ``resize_probs`` are the probabilities of (up, down, keep).
    """

    blur: BlurConfig = BlurConfig()
    resize_probs: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)

    def __post_init__(self) -> None:
        low, high = self.resize_range
        if not 0 < low <= 1 <= high or len(self.resize_probs) != 3:
            raise MetaSRError(f"resize range {self.resize_range} invalid; pass low in (0, 1], high >= 1 and 3 probs")
        for name, bounds in (("noise_range", (0, 255)), ("poisson_scale_range", (0, 100)), ("jpeg_range", (1, 100))):
            low, high = getattr(self, name)
            if not bounds[0] <= low <= high <= bounds[1]:
                raise MetaSRError(f"{name} {(low, high)} invalid; pass {bounds[0]} <= low <= high <= {bounds[1]}")


FIRST_STAGE = StageConfig()
SECOND_STAGE = StageConfig(
    blur=BlurConfig(sigma_range=(0.2, 1.5)),
    resize_probs=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2),
    noise_range=(1.0, 25.0),
    poisson_scale_range=(0.05, 2.5),
)


@dataclass(frozen=True)
class DegradationConfig:
    """Real-ESRGAN x4plus degradation settings: two stages, a probable second blur, a probable final sinc."""

    first: StageConfig = FIRST_STAGE
    second: StageConfig = SECOND_STAGE
    second_blur_prob: float = 0.8
    final_sinc_prob: float = 0.8


REAL_ESRGAN_X4PLUS = DegradationConfig()
# The same pipeline with about a third of the noise and JPEG no worse than quality 60: the blur-dominated, lightly
# noisy frames where an expert for Real-ESRGAN's full range smooths away texture (a routed model's middle expert).
REAL_ESRGAN_MILD = DegradationConfig(
    first=replace(FIRST_STAGE, noise_range=(1.0, 10.0), poisson_scale_range=(0.05, 1.0), jpeg_range=(60.0, 95.0)),
    second=replace(SECOND_STAGE, noise_range=(1.0, 8.0), poisson_scale_range=(0.05, 0.8), jpeg_range=(60.0, 95.0)),
)
DAMAGE_CONFIGS = {"realistic": REAL_ESRGAN_X4PLUS, "mild": REAL_ESRGAN_MILD}  # by the name the CLIs take


@dataclass
class DegradedBatch:
    """LR/HR pairs with per-sample degradation degrees (N, 3): blur, noise, jpeg in [0, 1]."""

    lr: torch.Tensor
    hr: torch.Tensor
    degrees: torch.Tensor


def _bernoulli(generator: torch.Generator, p: float, n: int) -> torch.Tensor:
    return rand_uniform(generator, 0, 1, n) < p


def _kernels(generator: torch.Generator, n: int, p: float, draw: Callable[[], torch.Tensor]) -> torch.Tensor:
    """(n, 21, 21) kernels: ``draw()`` with probability ``p`` per sample, else the identity."""
    return torch.stack([draw() if _bernoulli(generator, p, 1).item() else delta_kernel() for _ in range(n)])


def _resize(images: torch.Tensor, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Resize with a random mode (area, bilinear or bicubic)."""
    mode = RESIZE_MODES[rand_choice(generator, (1.0, 1.0, 1.0))]
    return F.interpolate(images, size=(max(1, size[0]), max(1, size[1])), mode=mode)


def _resize_factor(stage: StageConfig, generator: torch.Generator) -> float:
    """Real-ESRGAN's random resize factor: up in (1, high), down in (low, 1), or keep."""
    kind = rand_choice(generator, stage.resize_probs)
    if kind == 2:
        return 1.0
    low, high = (1.0, stage.resize_range[1]) if kind == 0 else (stage.resize_range[0], 1.0)
    return rand_uniform(generator, low, high, 1).item()


def _draw(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def _grey(images: torch.Tensor) -> torch.Tensor:
    return torch.einsum("c,nchw->nhw", torch.tensor(LUMA).to(images), images)[:, None]


def _poisson_noise(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Unit-scale Poisson noise; counts per level follow Real-ESRGAN (2^ceil(log2(distinct 8-bit levels)))."""
    quantised = (images * 255).round().clamp(0, 255)
    seen = torch.zeros(images.shape[0], 256, device=images.device)
    seen.scatter_(1, quantised.long().flatten(1), 1.0)
    vals = torch.exp2(torch.ceil(torch.log2(seen.sum(1))))[:, None, None, None]
    rates = (quantised / 255 * vals).to(generator.device)
    return torch.poisson(rates, generator=generator).to(images.device) / vals - quantised / 255


def _add_noise(
    images: torch.Tensor, stage: StageConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: Gaussian or Poisson noise, colour or grey; returns (noisy clamped images, noise RMS (N,))."""
    n, _, h, w = images.shape
    gaussian = _bernoulli(generator, stage.gaussian_noise_prob, n).to(images.device)[:, None, None, None]
    grey = _bernoulli(generator, stage.gray_noise_prob, n).to(images.device)[:, None, None, None]
    sigma = rand_uniform(generator, *stage.noise_range, n).to(images)[:, None, None, None] / 255
    poisson_scale = rand_uniform(generator, *stage.poisson_scale_range, n).to(images)[:, None, None, None]
    gauss = torch.where(
        grey, _draw(generator, (n, 1, h, w), images.device), _draw(generator, images.shape, images.device)
    )
    poisson = torch.where(grey, _poisson_noise(_grey(images), generator), _poisson_noise(images, generator))
    noise = torch.where(gaussian, gauss * sigma, poisson * poisson_scale)
    return (images + noise).clamp(0, 1), noise.square().mean((1, 2, 3)).sqrt()


def _jpeg(images: torch.Tensor, stage: StageConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample JPEG at a quality drawn from the stage's range; returns (images, qualities (N,))."""
    quality = rand_uniform(generator, *stage.jpeg_range, images.shape[0]).to(images.device)
    return jpeg_compress(images.clamp(0, 1), quality), quality


def _to_8bit(images: torch.Tensor) -> torch.Tensor:
    return (images * 255).round().clamp(0, 255) / 255


def _check_batch(hr: torch.Tensor, scale: int) -> None:
    if hr.ndim != 4 or hr.shape[1] != 3 or hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise MetaSRError(
            f"HR batch of shape {tuple(hr.shape)} invalid; pass (N, 3, H, W) with H, W divisible by {scale}"
        )


def degrade(hr: torch.Tensor, scale: int, config: DegradationConfig, generator: torch.Generator) -> DegradedBatch:
    """Real-ESRGAN second-order degradation of HR images (N, 3, H, W) in [0, 1] to LR (N, 3, H/scale, W/scale).

    Kernels, noise, grey/colour and JPEG quality are drawn per sample; resize factors and modes and the order
    of the final JPEG and sinc steps are drawn per batch (they set the tensor shapes). Degrees: blur combines the
    three kernels' effective widths in HR pixels in quadrature, noise the RMS of both noise steps in quadrature,
    jpeg uses the lower of the two qualities (see the module docstring for the scales).
    """
    _check_batch(hr, scale)
    n, _, h, w = hr.shape
    first, second = config.first, config.second
    k1 = torch.stack([random_blur_kernel(first.blur, generator) for _ in range(n)])
    k2 = _kernels(generator, n, config.second_blur_prob, lambda: random_blur_kernel(second.blur, generator))
    k3 = _kernels(generator, n, config.final_sinc_prob, lambda: random_final_sinc_kernel(generator))

    out = apply_kernels(hr, k1)
    r1 = _resize_factor(first, generator)
    out = _resize(out, (int(h * r1), int(w * r1)), generator)
    out, noise1 = _add_noise(out, first, generator)
    out, q1 = _jpeg(out, first, generator)

    out = apply_kernels(out, k2)
    r2 = _resize_factor(second, generator)
    out = _resize(out, (int(h / scale * r2), int(w / scale * r2)), generator)
    out, noise2 = _add_noise(out, second, generator)
    if _bernoulli(generator, 0.5, 1).item():
        out = apply_kernels(_resize(out, (h // scale, w // scale), generator), k3)
        out, q2 = _jpeg(out, second, generator)
    else:
        out, q2 = _jpeg(out, second, generator)
        out = apply_kernels(_resize(out, (h // scale, w // scale), generator), k3)

    widths = torch.stack([effective_width(k1), effective_width(k2) / r1, effective_width(k3) * scale])
    degrees = torch.stack(
        [
            widths.norm(dim=0).to(hr.device) / BLUR_SIGMA_MAX,
            torch.hypot(noise1, noise2) / NOISE_SIGMA_MAX,
            (JPEG_QUALITY_MAX - torch.minimum(q1, q2)) / (JPEG_QUALITY_MAX - JPEG_QUALITY_MIN),
        ],
        dim=1,
    )
    return DegradedBatch(lr=_to_8bit(out), hr=hr, degrees=degrees.clamp(0, 1).to(hr.dtype))


def _degree_vector(value: torch.Tensor | float, n: int, name: str, device: torch.device) -> torch.Tensor:
    vector = torch.as_tensor(value, dtype=torch.float32, device=device).expand(n)
    if bool(((vector < 0) | (vector > 1)).any()):
        raise MetaSRError(f"{name} degree {vector.tolist()} out of range; pass degrees between 0 and 1")
    return vector


def controlled_degradation(
    hr: torch.Tensor,
    scale: int,
    blur: torch.Tensor | float,
    noise: torch.Tensor | float,
    jpeg: torch.Tensor | float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Degrade HR (N, 3, H, W) by known degrees (scalars or (N,), each in [0, 1]) to 8-bit-rounded LR.

    Order: Gaussian blur of sigma ``blur * BLUR_SIGMA_MAX`` HR pixels, antialiased bicubic downscale by
    ``scale``, Gaussian noise of sigma ``noise * NOISE_SIGMA_MAX``, then JPEG at quality
    ``JPEG_QUALITY_MAX - jpeg * (JPEG_QUALITY_MAX - JPEG_QUALITY_MIN)`` (skipped where ``jpeg`` is 0).
    """
    _check_batch(hr, scale)
    n = hr.shape[0]
    blur_d, noise_d, jpeg_d = (
        _degree_vector(v, n, name, hr.device) for v, name in ((blur, "blur"), (noise, "noise"), (jpeg, "jpeg"))
    )
    sigmas = (blur_d * BLUR_SIGMA_MAX).clamp(min=1e-3).tolist()
    kernels = torch.stack([gaussian_kernel(CONTROLLED_KERNEL_SIZE, s) for s in sigmas])
    out = bicubic_downscale(apply_kernels(hr, kernels), scale)
    out = (out + _draw(generator, out.shape, hr.device) * (noise_d * NOISE_SIGMA_MAX)[:, None, None, None]).clamp(0, 1)
    quality = JPEG_QUALITY_MAX - jpeg_d * (JPEG_QUALITY_MAX - JPEG_QUALITY_MIN)
    out = torch.where((jpeg_d > 0)[:, None, None, None], jpeg_compress(out, quality), out)
    return _to_8bit(out)
