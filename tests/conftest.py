"""Shared fixtures."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from metasr.assembly import build_metasr
from metasr.data.sample_images import validation_images
from metasr.images import to_numpy
from metasr.model_zoo import model_card
from metasr.models import MetaSRStudent, StudentConfig
from metasr.models.metasr import MetaSR
from metasr.validate.metrics import y_psnr

# The per-pixel MetaSR graph (metadata extractors, orchestrator, FiLM student; inputs image and strength): the
# richest graph a target lowers, pinned by the tests of each target's MetaSR export (the defaults are routed).
PER_PIXEL = model_card("metasr-x2").path


@pytest.fixture
def small_student() -> MetaSRStudent:
    """A seeded, untrained x2 student with non-trivial weights."""
    torch.manual_seed(0)
    return MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)).eval()


def responsive_metasr() -> MetaSR:
    """A small MetaSR whose output depends on ``strength``: a seeded small student, the degradation extractor
    (the source ``strength`` overrides; the only one, to keep exports quick) and seeded random FiLM heads.

    A plain student is wrapped with an identity orchestrator (zero FiLM heads), so ``strength`` has no
    effect on it, and the bundled graphs are slow to export: tests of the strength path use this model.
    """
    torch.manual_seed(0)
    model = build_metasr(MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)), sources=("degradation",))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for head in model.orchestrator.film:
            head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.5)
            head.bias.copy_(torch.randn(head.bias.shape, generator=generator) * 0.1)
    return model.eval()


def assert_follows_strength(
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], model: MetaSR, size: tuple[int, int]
) -> dict[float, float]:
    """The artifact behind ``predict`` tracks the float ``model`` at the default and at strengths 0 and 1.

    Strength 0 and 1 must change the float output clearly, and the artifact must be much closer to the float
    output at the same strength than the two strengths are to each other. The default strength (-1) must be
    the float model's default path (no strength given). Returns the artifact's Y-PSNR per strength.
    """
    image = validation_images(*size)[0]
    with torch.no_grad():
        default = model(image)
        assert torch.equal(model(image, model.default_strength()), default)
        reference = {s: to_numpy(model(image, torch.full((1, 1, 1, 1), s))) for s in (0.0, 1.0)}
    apart = y_psnr(reference[0.0], reference[1.0])
    assert apart < 35.0, f"strength 0 and 1 give nearly the same float output ({apart:.1f} dB)"
    psnr = {-1.0: y_psnr(to_numpy(predict(image, model.default_strength())), to_numpy(default))}
    for s, expected in reference.items():
        psnr[s] = y_psnr(to_numpy(predict(image, torch.full((1, 1, 1, 1), s))), expected)
    assert min(psnr.values()) > apart + 8.0, f"artifact vs float {psnr}; strength 0 vs 1: {apart:.1f} dB"
    return psnr


def leftovers(out_dir: Path) -> list[str]:
    """Everything in an output folder: artifacts, staging folders, temp files."""
    return sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []


class PicklePayload:
    """Unpickling this creates ``marker``: a safe loader must refuse it without ever running it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def terminate_once(proc: subprocess.Popen, ready: Callable[[], bool], what: str, timeout: float = 120) -> int:
    """Wait until ``ready()`` (the command has started writing), send SIGTERM, and return its exit code."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, f"the command ended before {what} appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=timeout)[0].decode()
    assert proc.returncode != 0, output
    return proc.returncode
