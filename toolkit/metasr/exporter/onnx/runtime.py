"""The ONNX target's host runtime: ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch

from metasr.exporter.calibration import feeds
from metasr.exporter.host import FunctionRunner, loading


def open_session(path: Path) -> ort.InferenceSession:
    """A CPU session whose threads park as soon as a run ends: a routed artifact alternates between sessions,
    and a camera app runs other work between calls; threads left spinning starve whatever runs next (a
    spinning plain session made the next session's 35-ms call at a 256-px tile take 74 ms on two cores, and
    parked threads cost the session itself nothing measurable)."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with loading(path, "ONNX Runtime"):
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def session_runner(session: ort.InferenceSession, names: tuple[str, ...]) -> FunctionRunner:
    """``session`` as a function of torch tensors fed by name."""

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["output"], feeds(names, inputs))[0])

    return run


def open_function(path: Path, manifest: dict[str, Any], function: str, names: tuple[str, ...]) -> FunctionRunner:
    """One function of an ONNX artifact set: its own ``.onnx`` file."""
    return session_runner(open_session(path), names)
