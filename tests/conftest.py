"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from metasr.models import MetaSRStudent, StudentConfig


@pytest.fixture
def small_student() -> MetaSRStudent:
    """A seeded, untrained x2 student with non-trivial weights."""
    torch.manual_seed(0)
    return MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)).eval()


def leftovers(out_dir: Path) -> list[str]:
    """Everything in an output folder: artifacts, staging folders, temp files."""
    return sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []


class PicklePayload:
    """Unpickling this creates ``marker``: a safe loader must refuse it without ever running it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))
