"""Residual shifting diffusion (ResShift; Yue et al., NeurIPS 2023) in pixel space with few steps.

Notation of the paper: ``x_0`` the HR image, ``y_0`` the bicubic-upsampled LR image (``y`` here),
``e_0 = y_0 - x_0`` the residual, ``t = 1..T`` the timestep. The Markov chain shifts the residual from
``x_0`` to ``y_0`` while adding noise:

    q(x_t | x_{t-1}, y_0) = N(x_t; x_{t-1} + alpha_t e_0, kappa^2 alpha_t I),   alpha_t = eta_t - eta_{t-1},
    q(x_t | x_0, y_0)     = N(x_t; x_0 + eta_t e_0, kappa^2 eta_t I),

with ``eta_1 -> 0`` and ``eta_T -> 1``, so ``x_T`` is approximately ``N(y_0, kappa^2 I)``. In code the
timestep is the 0-based index ``t - 1`` into :attr:`ResShiftSchedule.etas`; that index is what a
``model_fn(x_t, t) -> x0_pred`` receives.

Images live in [0, 1] here, half the range of the paper's [-1, 1], so ``kappa = 1`` plays the role of
the paper's ``kappa = 2``; ``eta_1 = 0.01`` is the 4-step setting of the journal version
(``kappa * sqrt(eta_1) = 0.2`` on [-1, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from metasr.errors import MetaSRError

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ResShiftSchedule:
    """The shifting schedule ``eta_1 < ... < eta_T`` and the forward, reverse and training formulas."""

    steps: int = 4
    kappa: float = 1.0
    p: float = 0.3
    eta_min: float = 0.01
    eta_max: float = 0.99

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise MetaSRError(f"ResShift needs at least 2 steps, got {self.steps}; pass steps >= 2")
        if not 0.0 < self.eta_min < self.eta_max < 1.0:
            raise MetaSRError(
                f"ResShift needs 0 < eta_min < eta_max < 1, got eta_min={self.eta_min}, eta_max={self.eta_max}; "
                "fix the schedule bounds"
            )
        if self.kappa <= 0.0:
            raise MetaSRError(f"ResShift needs kappa > 0, got {self.kappa}; pass a positive noise scale")

    @property
    def etas(self) -> torch.Tensor:
        """``eta_1..eta_T`` (T,) float64, geometric in ``sqrt(eta)`` with a power warp:

        ``sqrt(eta_t) = sqrt(eta_1) * b_0^{beta_t}``, ``beta_t = ((t - 1) / (T - 1))^p * (T - 1)``,
        ``b_0 = exp(log(eta_T / eta_1) / (2 (T - 1)))``; hence ``eta_t`` runs from ``eta_min`` to ``eta_max``.
        """
        last = self.steps - 1
        beta = (torch.arange(self.steps, dtype=torch.float64) / last) ** self.p * last
        b0 = math.exp(math.log(self.eta_max / self.eta_min) / (2 * last))
        return (math.sqrt(self.eta_min) * b0**beta) ** 2

    def q_sample(self, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Draw from the marginal ``q(x_t | x_0, y_0)``: ``x_t = x_0 + eta_t (y_0 - x_0) + kappa sqrt(eta_t) noise``.

        ``t`` (N,) holds 0-based step indices; ``noise`` is standard normal shaped like ``x0``.
        """
        eta = _at(self.etas, t, x0)
        return x0 + eta * (y - x0) + self.kappa * eta.sqrt() * noise

    def posterior(self, x_t: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of ``q(x_{t-1} | x_t, x_0, y_0)``, for step indices ``t >= 1``:

        ``mean = (eta_{t-1} / eta_t) x_t + (alpha_t / eta_t) x_0``,
        ``var = kappa^2 (eta_{t-1} / eta_t) alpha_t``.
        """
        etas = self.etas
        eta, eta_prev = _at(etas, t, x_t), _at(etas, t - 1, x_t)
        alpha = eta - eta_prev
        mean = eta_prev / eta * x_t + alpha / eta * x0
        return mean, self.kappa * (eta_prev / eta * alpha).sqrt()

    def sample(self, model_fn: ModelFn, y: torch.Tensor, generator: torch.Generator, clip: bool = True) -> torch.Tensor:
        """Run the reverse chain from ``x_T = y_0 + kappa sqrt(eta_T) noise`` and return the final x0 estimate.

        Each step predicts ``x0 = model_fn(x_t, t)`` (clamped to [0, 1] when ``clip``) and draws ``x_{t-1}``
        from the posterior with it; at ``t = 1`` the posterior mean is ``x0`` itself (``eta_0 = 0``), which is
        returned. ``T`` network evaluations; all noise comes from ``generator`` (on any device), so a
        seeded generator makes the result deterministic. Wrap in ``torch.no_grad()`` unless gradients are wanted.
        """
        x = y + self.kappa * math.sqrt(self.etas[-1]) * _randn_like(y, generator)
        for step in reversed(range(self.steps)):
            t = torch.full((y.shape[0],), step, dtype=torch.long, device=y.device)
            x0 = model_fn(x, t)
            x0 = x0.clamp(0.0, 1.0) if clip else x0
            if step > 0:
                mean, std = self.posterior(x, x0, t)
                x = mean + std * _randn_like(y, generator)
        return x0

    def training_loss(
        self,
        model_fn: ModelFn,
        x0: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        own_estimate: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The paper's objective: ``|| f(x_t, y_0, t) - x_0 ||^2`` with ``t`` uniform and ``x_t ~ q(x_t | x_0, y_0)``.

        With ``own_estimate``, every ``t < T`` builds ``x_t`` around the network's own (gradient-free) x0
        prediction from ``x_T`` instead of the true ``x_0``, the target staying the true ``x_0``: sampling
        feeds the low-noise steps the network's estimate, so they learn to refine it rather than copy it.
        Returns the mean squared error and the sampled step indices (N,).
        """
        t = torch.randint(0, self.steps, (x0.shape[0],), generator=generator, device=generator.device).to(x0.device)
        centre = x0
        if own_estimate:
            last = torch.full_like(t, self.steps - 1)
            with torch.no_grad():
                first = model_fn(self.q_sample(x0, y, last, _randn_like(x0, generator)), last).clamp(0.0, 1.0)
            centre = torch.where((t < self.steps - 1).view(-1, 1, 1, 1), first, x0)
        x_t = self.q_sample(centre, y, t, _randn_like(x0, generator))
        return F.mse_loss(model_fn(x_t, t), x0), t


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` as (N, 1, 1, 1) in ``like``'s dtype and device."""
    return values.to(like.device)[t].to(like.dtype).view(-1, 1, 1, 1)


def _randn_like(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn on the generator's device and moved to ``x``'s."""
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
