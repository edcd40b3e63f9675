"""What every target's host runtime shares: one artifact function as a callable, and a runtime's refusal of a
file turned into a one-line error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from metasr.errors import MetaSRError
from metasr.quiet import one_line

REEXPORT = "re-export the artifact with metasr-export"
FunctionRunner = Callable[..., torch.Tensor]  # the function's inputs in manifest order -> its output


@contextmanager
def loading(path: Path, runtime: str) -> Iterator[None]:
    """Turn ``runtime``'s refusal of ``path`` (ONNX Runtime's or ExecuTorch's own exceptions) into a MetaSRError."""
    try:
        yield
    except _runtime_errors() as exc:
        raise MetaSRError(
            f"{runtime} failed on {path.name} ({one_line(exc, 200)}); the file is damaged or not an artifact "
            f"for this runtime: {REEXPORT}"
        ) from exc


def _runtime_errors() -> tuple[type[Exception], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    ort_errors = (state.Fail, state.InvalidArgument, state.InvalidGraph, state.InvalidProtobuf, state.NoModel)
    return (RuntimeError, ValueError, state.NoSuchFile, state.NotImplemented, state.RuntimeException, *ort_errors)
