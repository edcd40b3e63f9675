"""A user's own SR network (RGB image in, upscaled RGB image out) in the form the export stages take."""

from __future__ import annotations

import torch
from torch import nn

from metasr.errors import MetaSRError

SCALES = (2, 4)  # what every target's manifest, tiler and demo app handle
PROBE = (32, 48)  # not square: catches a model that swaps or crops axes


class UserModel(nn.Module):
    """Wraps ``module``; ``scale`` is measured on a probe image, ``reparameterize`` folds the module's own
    training-time branches when it has a ``reparameterize()`` of its own. The output is clamped to [0, 1], as
    every target's image output is (Core ML's image type clips; the others would otherwise disagree)."""

    def __init__(self, module: nn.Module, scale: int) -> None:
        super().__init__()
        self.module = module
        self.scale = scale

    @property
    def class_name(self) -> str:
        cls = type(self.module)
        return f"{cls.__module__}.{cls.__qualname__}"

    def reparameterize(self) -> UserModel:
        fold = getattr(self.module, "reparameterize", None)
        if callable(fold):
            fold()
        return self

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.module(image).clamp(0.0, 1.0)


def wrap_user_model(module: nn.Module) -> UserModel:
    """Check ``module`` on a probe image and wrap it; anything the targets cannot take is refused in one line."""
    if not isinstance(module, nn.Module):
        raise MetaSRError(f"model is a {type(module).__name__}, not a torch.nn.Module; pass an SR network")
    name = type(module).__name__
    for key, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise MetaSRError(f"model {name}: tensor '{key}' holds NaN or inf; fix or retrain the weights")
    module = module.eval()
    probe = torch.rand(1, 3, *PROBE, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception as exc:  # a user's module may raise anything on a wrong input contract
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MetaSRError(
            f"model {name} fails on a (1, 3, {PROBE[0]}, {PROBE[1]}) image ({message}); "
            "it must map (1, 3, H, W) RGB in [0, 1] to (1, 3, sH, sW)"
        ) from exc
    if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[:2] != (1, 3):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise MetaSRError(f"model {name} returns {got} for a (1, 3, H, W) image; return one (1, 3, sH, sW) tensor")
    scale_h, scale_w = out.shape[2] / PROBE[0], out.shape[3] / PROBE[1]
    if scale_h != scale_w or scale_h not in SCALES:
        raise MetaSRError(
            f"model {name} maps {PROBE[0]}x{PROBE[1]} to {out.shape[2]}x{out.shape[3]}; "
            f"the targets take x{' or x'.join(map(str, SCALES))} models with the same factor on both axes"
        )
    return UserModel(module, int(scale_h)).eval()
