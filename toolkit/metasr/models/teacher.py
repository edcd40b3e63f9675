"""MetaSR teacher: a conditional pixel-space UNet for residual-shifting diffusion super-resolution.

Layout (``L`` levels, channels ``C_i = base_channels * channel_mult[i]``):

    cat(x_t, up(lr)) ─ conv_in ─ [Stage ⊙ FiLM ─ Downsample] x L ─ middle Stage ⊙ FiLM
                      ─ [cat(skip) ─ Stage ⊙ FiLM ─ Upsample] x L ─ norm ─ SiLU ─ conv_out ─(+ up(lr))─ x0

* A ``Stage`` is ``blocks_per_level`` diffusers ``ResnetBlock2D`` conditioned on the timestep embedding.
* The network predicts x0 as a correction to the bicubic-upsampled LR ``up(lr)``; ``conv_out`` starts at
  zero, so an untrained teacher returns ``up(lr)``.
* ``modulation`` carries one (gain, bias) pair per stage (encoder levels, middle, decoder levels; see
  ``stage_channels``) at the orchestrator's cell resolution; stage ``j`` applies
  ``h * bilinear(gain) + bilinear(bias)`` to its features. ``None`` leaves the network unmodulated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from diffusers.models.downsampling import Downsample2D
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.upsampling import Upsample2D
from torch import nn

from metasr.errors import MetaSRError
from metasr.images import bicubic_upscale

Modulation = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class TeacherConfig:
    """Hyper-parameters of :class:`MetaSRTeacher`.

    The default costs about 390 k multiply-accumulates per output pixel per network evaluation
    (1.56 M over 4 ResShift steps) with 4.5 M parameters, and trains on CPU on 64x64 to 96x96 patches.
    """

    scale: int = 2
    in_channels: int = 3
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    blocks_per_level: int = 2
    time_embed_dim: int = 128
    norm_groups: int = 8

    def __post_init__(self) -> None:
        bad = [c for c in self.level_channels if c % self.norm_groups]
        if bad:
            raise MetaSRError(
                f"teacher channels {bad} are not divisible by norm_groups={self.norm_groups}; "
                "pick base_channels and channel_mult whose products are multiples of norm_groups"
            )

    @property
    def level_channels(self) -> list[int]:
        return [self.base_channels * m for m in self.channel_mult]

    @classmethod
    def tiny(cls, scale: int = 2) -> TeacherConfig:
        """A very small teacher for tests and smoke runs."""
        return cls(
            scale=scale, base_channels=8, channel_mult=(1, 2), blocks_per_level=1, time_embed_dim=32, norm_groups=4
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Stage(nn.Module):
    """Resnet blocks conditioned on the timestep embedding: the unit one FiLM modulation follows."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, temb_channels: int, groups: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            ResnetBlock2D(
                in_channels=in_channels if i == 0 else out_channels,
                out_channels=out_channels,
                temb_channels=temb_channels,
                groups=groups,
            )
            for i in range(num_blocks)
        )

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = block(h, temb)
        return h


def film(h: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``h * up(gain) + up(bias)`` with ``up`` bilinear interpolation to the feature size of ``h``."""
    size = h.shape[-2:]
    gain = F.interpolate(gain, size=size, mode="bilinear", align_corners=False)
    bias = F.interpolate(bias, size=size, mode="bilinear", align_corners=False)
    return h * gain + bias


class MetaSRTeacher(nn.Module):
    """Conditional UNet predicting x0 from the noisy HR estimate ``x_t``, the LR frame and the timestep."""

    def __init__(self, config: TeacherConfig | None = None) -> None:
        super().__init__()
        self.config = config or TeacherConfig()
        cfg = self.config
        channels, temb, groups, blocks = cfg.level_channels, cfg.time_embed_dim, cfg.norm_groups, cfg.blocks_per_level
        self.time_proj = Timesteps(cfg.base_channels, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(cfg.base_channels, temb)
        self.conv_in = nn.Conv2d(2 * cfg.in_channels, channels[0], 3, padding=1)

        self.down_stages = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        prev = channels[0]
        for i, c in enumerate(channels):
            self.down_stages.append(Stage(prev, c, blocks, temb, groups))
            last = i == len(channels) - 1
            self.downsamplers.append(nn.Identity() if last else Downsample2D(c, use_conv=True))
            prev = c

        self.mid_stage = Stage(prev, prev, blocks, temb, groups)

        self.up_stages = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for i, c in reversed(list(enumerate(channels))):
            self.up_stages.append(Stage(prev + c, c, blocks, temb, groups))
            self.upsamplers.append(nn.Identity() if i == 0 else Upsample2D(c, use_conv=True))
            prev = c

        self.norm_out = nn.GroupNorm(groups, channels[0], eps=1e-6)
        self.conv_out = nn.Conv2d(channels[0], cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start as the bicubic upsampling
        nn.init.zeros_(self.conv_out.bias)

    @property
    def stage_channels(self) -> list[int]:
        """Channels of every FiLM stage: encoder levels, then the middle, then decoder levels."""
        channels = self.config.level_channels
        return [*channels, channels[-1], *reversed(channels)]

    def forward(
        self,
        x_t: torch.Tensor,
        lr: torch.Tensor,
        t: torch.Tensor,
        modulation: Modulation | None = None,
    ) -> torch.Tensor:
        """Predict x0 (N, 3, H, W) from ``x_t`` (N, 3, H, W), ``lr`` (N, 3, H/s, W/s) in [0, 1] and ``t`` (N,).

        ``modulation`` holds one (gain, bias) pair of shape (N, C_j, h, w) per entry of ``stage_channels``.
        """
        self._check_inputs(x_t, lr, modulation)
        y = bicubic_upscale(lr, self.config.scale)
        temb = self.time_embedding(self.time_proj(t.expand(x_t.shape[0])).to(x_t.dtype))
        films = iter(modulation) if modulation is not None else None

        h = self.conv_in(torch.cat([x_t, y], dim=1))
        skips = []
        for stage, down in zip(self.down_stages, self.downsamplers, strict=True):
            h = self._modulate(stage(h, temb), films)
            skips.append(h)
            h = down(h)
        h = self._modulate(self.mid_stage(h, temb), films)
        for stage, up in zip(self.up_stages, self.upsamplers, strict=True):
            h = self._modulate(stage(torch.cat([h, skips.pop()], dim=1), temb), films)
            h = up(h)
        return y + self.conv_out(F.silu(self.norm_out(h)))

    @staticmethod
    def _modulate(h: torch.Tensor, films: Iterator[tuple[torch.Tensor, torch.Tensor]] | None) -> torch.Tensor:
        return h if films is None else film(h, *next(films))

    def _check_inputs(self, x_t: torch.Tensor, lr: torch.Tensor, modulation: Modulation | None) -> None:
        s, multiple = self.config.scale, 2 ** (len(self.config.channel_mult) - 1)
        height, width = x_t.shape[-2:]
        if (height, width) != (lr.shape[-2] * s, lr.shape[-1] * s):
            raise MetaSRError(
                f"x_t is {height}x{width} but lr is {lr.shape[-2]}x{lr.shape[-1]} at scale {s}; "
                f"pass x_t at {s}x the LR size"
            )
        if height % multiple or width % multiple:
            raise MetaSRError(f"HR size {height}x{width} is not a multiple of {multiple}; crop or pad the patch")
        if modulation is not None and len(modulation) != len(self.stage_channels):
            raise MetaSRError(
                f"modulation has {len(modulation)} stages but the teacher has {len(self.stage_channels)}; "
                "build the orchestrator with teacher.stage_channels"
            )
