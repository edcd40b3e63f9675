"""Resumable training state in one safetensors file: weights, optimizer moments, RNG states and the step.

Nothing is pickled: tensors are stored as tensors, optimizer hyper-parameters and the step as JSON
metadata, RNG states as uint8 tensors. Resuming from the file continues bit-identically.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from metasr.errors import MetaSRError
from metasr.safe_weights import read_state, save_state


def save_training_state(
    path: Path,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    step: int,
    extra: dict | None = None,
) -> None:
    """Write ``modules`` weights, ``optimizer`` state, generator states, ``step`` and JSON ``extra`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update({f"model.{name}.{k}": v for k, v in module.state_dict().items()})
    optim = optimizer.state_dict()
    for index, state in optim["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    for name, generator in generators.items():
        tensors[f"rng.{name}"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    meta = {"step": str(step), "param_groups": json.dumps(optim["param_groups"]), "extra": json.dumps(extra or {})}
    save_state(tensors, path, meta)


def load_training_state(
    path: Path,
    modules: dict[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
) -> tuple[int, dict]:
    """Restore what :func:`save_training_state` wrote; returns the step to continue from and ``extra``."""
    tensors, meta = read_state(path)
    if "step" not in meta:
        raise MetaSRError(f"{path} is not a MetaSR training state; delete it to start over")
    for name, module in modules.items():
        prefix = f"model.{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    for name, generator in generators.items():
        generator.set_state(tensors[f"rng.{name}"])
    torch.set_rng_state(tensors["rng.torch"])
    return int(meta["step"]), json.loads(meta.get("extra", "{}"))
