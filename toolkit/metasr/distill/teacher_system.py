"""The teacher system: teacher-grade metadata -> orchestrator -> ResShift diffusion UNet, and its checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from metasr.diffusion.resshift import ResShiftSchedule
from metasr.errors import MetaSRError
from metasr.images import bicubic_upscale
from metasr.metadata import MetadataSource, create_source
from metasr.models.orchestrator import Decisions, Orchestrator
from metasr.models.teacher import MetaSRTeacher, TeacherConfig
from metasr.safe_weights import read_state, save_state

CONFIG_KEY = "metasr.teacher"


class ConditionedTeacher(nn.Module):
    """Orchestrator-conditioned diffusion teacher; ``forward`` is the training loss (so DDP can wrap it)."""

    def __init__(self, net: MetaSRTeacher, orchestrator: Orchestrator, schedule: ResShiftSchedule) -> None:
        super().__init__()
        self.net = net
        self.orchestrator = orchestrator
        self.schedule = schedule

    @property
    def scale(self) -> int:
        return self.net.config.scale

    def forward(
        self,
        lr: torch.Tensor,
        hr: torch.Tensor,
        metadata: list[torch.Tensor],
        present: torch.Tensor | None,
        generator: torch.Generator,
        own_estimate: bool = False,
    ) -> torch.Tensor:
        """ResShift x0-prediction loss of the conditioned UNet on one batch (``own_estimate``: see
        :meth:`ResShiftSchedule.training_loss`)."""
        modulation = self.orchestrator(lr, metadata, present).modulation
        y = bicubic_upscale(lr, self.scale)
        loss, _ = self.schedule.training_loss(
            lambda x_t, t: self.net(x_t, lr, t, modulation), hr, y, generator, own_estimate
        )
        return loss

    @torch.no_grad()
    def sample(
        self,
        lr: torch.Tensor,
        metadata: list[torch.Tensor],
        generator: torch.Generator,
        present: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Decisions]:
        """Super-resolve ``lr`` with the full reverse chain; returns the image and the orchestrator's decisions."""
        decisions = self.orchestrator(lr, metadata, present)
        y = bicubic_upscale(lr, self.scale)
        sr = self.schedule.sample(lambda x_t, t: self.net(x_t, lr, t, decisions.modulation), y, generator)
        return sr, decisions


def teacher_sources(names: tuple[str, ...]) -> list[MetadataSource]:
    """Teacher-grade source instances, in orchestrator order."""
    return [create_source(name) for name in names]


@torch.no_grad()
def teacher_metadata(sources: list[MetadataSource], lr: torch.Tensor) -> list[torch.Tensor]:
    """Teacher-grade metadata of an LR batch, one tensor per source."""
    return [source.teacher(lr) for source in sources]


def build_teacher(
    config: TeacherConfig, sources: list[MetadataSource], schedule: ResShiftSchedule
) -> ConditionedTeacher:
    """A fresh teacher whose orchestrator reads ``sources`` and drives every UNet stage."""
    net = MetaSRTeacher(config)
    orchestrator = Orchestrator({s.name: s.dims for s in sources}, net.stage_channels)
    return ConditionedTeacher(net, orchestrator, schedule)


def save_teacher(model: ConditionedTeacher, path: str | Path, dtype: torch.dtype | None = None) -> None:
    """Weights (cast to ``dtype`` if given, e.g. float16 to ship) plus the UNet, orchestrator and schedule
    configs, atomically, as safetensors. :func:`load_teacher` always rebuilds a float32 model."""
    state = model.state_dict()
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    config = {
        "net": model.net.config.to_dict(),
        "orchestrator": model.orchestrator.config,
        "schedule": asdict(model.schedule),
    }
    save_state(state, path, {CONFIG_KEY: json.dumps(config, sort_keys=True)})


def load_teacher(path: str | Path) -> tuple[ConditionedTeacher, tuple[str, ...]]:
    """The teacher saved by :func:`save_teacher` and the names of the sources its orchestrator reads."""
    state, metadata = read_state(path)
    if CONFIG_KEY not in metadata:
        raise MetaSRError(f"{path} is not a MetaSR teacher checkpoint; train one with `metasr-train teacher`")
    config = json.loads(metadata[CONFIG_KEY])
    net_config = dict(config["net"])
    net_config["channel_mult"] = tuple(net_config["channel_mult"])
    net = MetaSRTeacher(TeacherConfig(**net_config))
    orch = dict(config["orchestrator"])
    orchestrator = Orchestrator(orch.pop("source_dims"), orch.pop("stage_channels"), **orch)
    model = ConditionedTeacher(net, orchestrator, ResShiftSchedule(**config["schedule"]))
    model.load_state_dict(state)
    return model.eval(), tuple(orchestrator.sources)
