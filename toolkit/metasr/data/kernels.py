"""Blur kernels for the real-world degradation pipeline (Real-ESRGAN families), built and sampled in torch.

Every random draw goes through a ``torch.Generator`` passed in by the caller, never a global RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from metasr.errors import MetaSRError

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
KERNEL_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
MAX_KERNEL_SIZE = KERNEL_SIZES[-1]


@dataclass(frozen=True)
class BlurConfig:
    """How one blur kernel is drawn: family probabilities and parameter ranges (Real-ESRGAN x4plus, stage 1)."""

    kinds: tuple[str, ...] = KERNEL_TYPES
    probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sigma_range: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KERNEL_TYPES))
        if unknown or len(self.kinds) != len(self.probs) or not self.kinds:
            raise MetaSRError(f"blur kinds {self.kinds} / probs {self.probs} invalid; use kinds from {KERNEL_TYPES}")
        for name in ("sigma_range", "betag_range", "betap_range"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise MetaSRError(f"blur {name} {(low, high)} invalid; pass (low, high) with 0 < low <= high")


def rand_uniform(generator: torch.Generator, low: float, high: float, n: int) -> torch.Tensor:
    """``n`` float32 draws from U(low, high), on the generator's device."""
    return low + (high - low) * torch.rand(n, generator=generator, device=generator.device)


def rand_choice(generator: torch.Generator, probs: tuple[float, ...]) -> int:
    """Index drawn with the given (unnormalised) probabilities."""
    weights = torch.tensor(probs, dtype=torch.float, device=generator.device)
    return int(torch.multinomial(weights, 1, generator=generator))


def _check_size(size: int) -> None:
    if size < 1 or size % 2 == 0:
        raise MetaSRError(f"kernel size {size} invalid; use an odd size such as 7..21")


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel offsets from the kernel centre, (size, size) each, in float64."""
    _check_size(size)
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    return torch.meshgrid(ax, ax, indexing="ij")


def _mahalanobis(size: int, sigma_x: float, sigma_y: float, theta: float) -> torch.Tensor:
    """Squared Mahalanobis distance of each kernel pixel under covariance R(theta) diag(sx^2, sy^2) R(theta)^T."""
    yy, xx = _grid(size)
    u = math.cos(theta) * xx + math.sin(theta) * yy
    v = -math.sin(theta) * xx + math.cos(theta) * yy
    return u**2 / sigma_x**2 + v**2 / sigma_y**2


def _normalise(kernel: torch.Tensor) -> torch.Tensor:
    return (kernel / kernel.sum()).float()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0) -> torch.Tensor:
    """(size, size) Gaussian kernel summing to 1; isotropic when ``sigma_y`` is None."""
    q = _mahalanobis(size, sigma_x, sigma_x if sigma_y is None else sigma_y, theta)
    return _normalise(torch.exp(-0.5 * q))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> torch.Tensor:
    """Generalized Gaussian exp(-0.5 q^beta): beta < 1 heavy-tailed, beta > 1 flat-topped."""
    q = _mahalanobis(size, sigma_x, sigma_y, theta)
    return _normalise(torch.exp(-0.5 * q**beta))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, theta: float, beta: float) -> torch.Tensor:
    """Plateau-shaped kernel 1 / (1 + q^beta)."""
    q = _mahalanobis(size, sigma_x, sigma_y, theta)
    return _normalise(1.0 / (q**beta + 1.0))


def sinc_kernel(size: int, cutoff: float) -> torch.Tensor:
    """2D sinc (circular low-pass, jinc) kernel with angular cutoff frequency ``cutoff`` in (0, pi]."""
    yy, xx = _grid(size)
    r = torch.sqrt(xx**2 + yy**2)
    kernel = cutoff * torch.special.bessel_j1(cutoff * r) / (2 * math.pi * r)
    kernel[size // 2, size // 2] = cutoff**2 / (4 * math.pi)
    return _normalise(kernel)


def delta_kernel(size: int = MAX_KERNEL_SIZE) -> torch.Tensor:
    """The identity kernel: 1 at the centre."""
    _check_size(size)
    kernel = torch.zeros(size, size)
    kernel[size // 2, size // 2] = 1.0
    return kernel


def pad_kernel(kernel: torch.Tensor, size: int = MAX_KERNEL_SIZE) -> torch.Tensor:
    """Zero-pad a square odd kernel to ``size`` x ``size`` so kernels of mixed sizes can be stacked."""
    pad = (size - kernel.shape[-1]) // 2
    return F.pad(kernel, (pad, pad, pad, pad))


def _beta(generator: torch.Generator, beta_range: tuple[float, float]) -> float:
    """Real-ESRGAN's shape draw: half the time from the part of the range below 1, half from the part above."""
    low, high = beta_range
    split = min(max(1.0, low), high)
    if rand_uniform(generator, 0, 1, 1).item() < 0.5:
        return rand_uniform(generator, low, split, 1).item()
    return rand_uniform(generator, split, high, 1).item()


def random_mixed_kernel(size: int, config: BlurConfig, generator: torch.Generator) -> torch.Tensor:
    """One (size, size) kernel from the Gaussian/generalized/plateau families with ``config``'s probabilities."""
    kind = config.kinds[rand_choice(generator, config.probs)]
    sx = rand_uniform(generator, *config.sigma_range, 1).item()
    if "aniso" not in kind:
        sy, theta = sx, 0.0
    else:
        sy = rand_uniform(generator, *config.sigma_range, 1).item()
        theta = rand_uniform(generator, -math.pi, math.pi, 1).item()
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(size, sx, sy, theta, _beta(generator, config.betag_range))
    if kind.startswith("plateau"):
        return plateau_kernel(size, sx, sy, theta, _beta(generator, config.betap_range))
    return gaussian_kernel(size, sx, sy, theta)


def random_blur_kernel(config: BlurConfig, generator: torch.Generator) -> torch.Tensor:
    """A Real-ESRGAN first/second-stage kernel: random odd size 7..21, sinc with ``sinc_prob``, padded to 21x21."""
    size = KERNEL_SIZES[rand_choice(generator, (1.0,) * len(KERNEL_SIZES))]
    if rand_uniform(generator, 0, 1, 1).item() < config.sinc_prob:
        low = math.pi / 3 if size < 13 else math.pi / 5
        kernel = sinc_kernel(size, rand_uniform(generator, low, math.pi, 1).item())
    else:
        kernel = random_mixed_kernel(size, config, generator)
    return pad_kernel(kernel)


def random_final_sinc_kernel(generator: torch.Generator) -> torch.Tensor:
    """Real-ESRGAN's final sinc kernel: random odd size 7..21, cutoff U(pi/3, pi), padded to 21x21."""
    size = KERNEL_SIZES[rand_choice(generator, (1.0,) * len(KERNEL_SIZES))]
    return pad_kernel(sinc_kernel(size, rand_uniform(generator, math.pi / 3, math.pi, 1).item()))


def effective_width(kernels: torch.Tensor) -> torch.Tensor:
    """Per-kernel blur width in pixels, (..., k, k) -> (...): the sigma of the Gaussian with the same energy.

    A continuous 2D Gaussian of width s has sum(k^2) = 1 / (4 pi s^2) (its noise-equivalent bandwidth), so
    s = sqrt(1 / (4 pi sum(k^2))); the delta kernel's value, 1 / (4 pi), is subtracted under the root so the
    identity maps to 0. Works for every family, including sinc kernels whose second moment does not exist.
    """
    energy = kernels.double().square().sum((-2, -1))
    return torch.sqrt((1.0 / energy - 1.0).clamp(min=0.0) / (4 * math.pi)).float()


def apply_kernels(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Filter each image (N, C, H, W) with its own kernel (N, k, k) by a grouped conv, replicate-padded."""
    n, c, h, w = images.shape
    k = kernels.shape[-1]
    padded = F.pad(images, (k // 2,) * 4, mode="replicate")
    weight = kernels.to(images).repeat_interleave(c, dim=0)[:, None]
    return F.conv2d(padded.reshape(1, n * c, h + k - 1, w + k - 1), weight, groups=n * c).reshape(n, c, h, w)
