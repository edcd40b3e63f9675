"""Student checkpoints: the plain student's weights with its config, saved and loaded through
:mod:`metasr.safe_weights`, checked against the architecture."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import torch

from metasr.errors import MetaSRError
from metasr.models import MetaSRStudent, StudentConfig
from metasr.quiet import first_line
from metasr.safe_weights import json_metadata, load_checked, read_state, save_state

CONFIG_KEY = "metasr.student_config"


def save_student(model: MetaSRStudent, path: str | Path) -> None:
    """Write the model's weights and config as safetensors, atomically (temp file, then rename)."""
    save_state(model.state_dict(), path, {CONFIG_KEY: json.dumps(model.config.to_dict(), sort_keys=True)})


def student_config(metadata: dict[str, str], state: dict[str, torch.Tensor], path: str | Path) -> StudentConfig:
    """The :class:`StudentConfig` stored in a checkpoint's metadata, checked key by key and against the
    student's weights in ``state`` (keys ``head.weight`` ..., or ``student.head.weight`` ... in a MetaSR file)."""
    raw = json_metadata(metadata, CONFIG_KEY, path)
    known = {f.name for f in fields(StudentConfig)}
    if not isinstance(raw, dict) or set(raw) - known:
        extra = sorted(set(raw) - known) if isinstance(raw, dict) else []
        problem = f"unknown keys {extra[:3]}" if extra else "not a mapping"
        raise MetaSRError(f"checkpoint {path}: student config is {problem}; re-save it with this metasr version")
    try:
        config = StudentConfig(**raw)
        _check_config(config)
    except (TypeError, ValueError) as exc:
        raise MetaSRError(f"checkpoint {path}: student config is invalid ({first_line(exc)}); re-save it") from exc
    prefix = "student." if "student.head.weight" in state else ""
    if config != infer_config(state, path, prefix):
        raise MetaSRError(f"checkpoint {path}: its student config does not match its weights; re-save it")
    return config


def _check_config(config: StudentConfig) -> None:
    for f in fields(StudentConfig):
        value = getattr(config, f.name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 4096:
            raise ValueError(f"{f.name} = {value!r} is not a positive integer")


def check_scale(path: str | Path, actual: int, asked: int | None) -> None:
    """Refuse a checkpoint whose scale differs from the one the command was asked for."""
    if asked is not None and actual != asked:
        raise MetaSRError(
            f"checkpoint {path} is a x{actual} model but x{asked} was asked (--scale or the recipe's scale); "
            f"pass --scale {actual} or a x{asked} checkpoint"
        )


def load_student(path: str | Path, scale: int | None = None) -> MetaSRStudent:
    """Build a :class:`MetaSRStudent` from a checkpoint, checking that every weight matches."""
    state, metadata = read_state(path)
    config = student_config(metadata, state, path) if CONFIG_KEY in metadata else infer_config(state, path)
    check_scale(path, config.scale, scale)
    model = MetaSRStudent(config)
    load_checked(model, state, path)
    return model.eval()


def infer_config(state: dict[str, torch.Tensor], path: str | Path, prefix: str = "") -> StudentConfig:
    """The student config that the weights in ``state`` (keys under ``prefix``) were built with."""
    try:
        channels, in_channels = state[f"{prefix}head.weight"].shape[:2]
        blocks = len({k.split(".")[len(prefix.split("."))] for k in state if k.startswith(f"{prefix}blocks.")})
        scale = int(round((state[f"{prefix}tail.weight"].shape[0] / in_channels) ** 0.5))
    except KeyError as exc:
        raise MetaSRError(f"checkpoint {path} lacks {exc}; pass a MetaSR student checkpoint") from exc
    except (ValueError, ZeroDivisionError, IndexError) as exc:
        raise MetaSRError(
            f"checkpoint {path} has mis-shaped head/tail weights; pass a MetaSR student checkpoint"
        ) from exc
    return StudentConfig(scale=scale, channels=channels, num_blocks=blocks, in_channels=in_channels)
