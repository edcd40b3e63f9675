"""Bad input to metasr-upscale and metasr-profile, table-driven: one line naming the problem and the fix, a
non-zero exit, nothing written beside the artifact or into -o, all before any timing or upscaling. SIGTERM
mid-upscale leaves no temp files. Fuzzing (hypothesis) checks that the manifest reader lets only MetaSRError
escape."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from metasr.cli import profile_command
from metasr.errors import MetaSRError
from metasr.runtime import allowed_sizes, input_names, read_manifest, takes_size
from metasr.upscaling.command import upscale_command
from tests.conftest import leftovers, terminate_once

# The Android app's fixture: a real executorch-xnnpack manifest (256x256 static), kept equal in structure to
# what metasr-export writes by test_demo_apps.
FIXTURE = Path(__file__).resolve().parents[1] / "android_demo/app/src/test/resources/manifest_executorch_xnnpack.json"
DYNAMIC = {"multiple_of": 32, "min": 64, "max": 8192}  # what the onnx target writes for free height and width
GARBAGE = random.Random(0).randbytes(4096)  # no ExecuTorch identifier at bytes 4-8, no protobuf
ET_HEADER = b"\0\0\0\0ET12" + bytes(504)  # an ExecuTorch identifier, then nothing ExecuTorch can verify


def _manifest(**changes: Any) -> dict[str, Any]:
    manifest = json.loads(FIXTURE.read_text())
    manifest.update(changes)
    return {k: v for k, v in manifest.items() if v is not None}


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


ONNX_MANIFEST = _json(_manifest(target="onnx", file="metasr_x2.onnx", dynamic_size=DYNAMIC))
PTE_MANIFEST = _json(_manifest())
NO_INPUTS = _json(_manifest(target="onnx", inputs=None))
IMAGE, STRENGTH = _manifest()["inputs"]
FLAT_IMAGE = _json(_manifest(target="onnx", inputs=[{**IMAGE, "shapes": [[3, 256, 256]]}, STRENGTH]))


@dataclass(frozen=True)
class Case:
    """One bad invocation: the artifact folder's files, the extra arguments and the expected message fragment."""

    args: tuple[str, ...]
    fragment: str
    artifact: str = "metasr_x2.onnx"
    content: bytes = GARBAGE
    manifest: bytes | None = ONNX_MANIFEST
    report: bytes | None = None


UPSCALE: dict[str, Case] = {
    "garbage-onnx": Case((), "ONNX Runtime failed on metasr_x2.onnx ("),
    "garbage-pte": Case((), "metasr_x2.pte is not an ExecuTorch program", "metasr_x2.pte", manifest=PTE_MANIFEST),
    "corrupt-pte": Case((), "ExecuTorch failed on metasr_x2.pte (", "metasr_x2.pte", ET_HEADER, PTE_MANIFEST),
    "vulkan-pte": Case(
        (),
        "needs a Vulkan-capable ExecuTorch runtime (an Android phone), which this host's ExecuTorch lacks; "
        "profile it with --device adb, or use the executorch-xnnpack or onnx artifact here",
        "metasr_x2.pte",
        ET_HEADER,
        _json(_manifest(target="executorch-vulkan")),
    ),
    "no-suffix": Case((), "metasr_x2 has no suffix, not a known artifact type; pass a .onnx or .pte", "metasr_x2"),
    "unknown-suffix": Case((), "model.bin has suffix '.bin', not a known artifact type", "model.bin"),
    "coreml": Case((), "metasr_x2.mlpackage cannot run on this host (Core ML needs macOS:", "metasr_x2.mlpackage"),
    "tile-not-exported": Case(
        ("--tile", "512"),
        "metasr_x2.pte takes only 256x256 inputs; drop --tile",
        "metasr_x2.pte",
        ET_HEADER,
        PTE_MANIFEST,
    ),
    "tile-above-dynamic-max": Case(
        ("--tile", "9000"),
        "tile 9000 is fed to metasr_x2.onnx as 9024x9024, but it takes sides that are multiples of 32 from 64 to 8192",
    ),
    "overlap-over-half-tile": Case(("--tile", "64", "--overlap", "32"), "tile 64x64 with overlap 32 is invalid"),
    "scale-mismatch": Case(("--scale", "4"), "metasr_x2.onnx is a x2 model but --scale 4 was asked"),
    "manifest-not-json": Case((), "manifest.json is not a JSON manifest (", manifest=b'{"target": "onnx",'),
    "manifest-not-utf8": Case((), "manifest.json is not a JSON manifest (", manifest=b"\xff\xfe{\x00"),
    "manifest-a-list": Case((), "manifest.json holds a JSON list, not a manifest object", manifest=b"[3]"),
    "manifest-no-inputs": Case((), "'inputs' is a required property; re-export", manifest=NO_INPUTS),
    "manifest-flat-image": Case((), "the first input must be the image, with shapes [1, 3, H, W]", manifest=FLAT_IMAGE),
    "no-manifest": Case((), "no manifest.json beside", manifest=None),
}

PROFILE: dict[str, Case] = {
    "coreml-on-linux": Case(
        (),
        "(Core ML needs macOS: profile it with --device macos on a Mac or --device estimate:NAME); use a .onnx or .pte "
        "artifact here",
        "metasr_x2.mlpackage",
        manifest=_json(_manifest(target="coreml")),
    ),
    "zero-budget": Case(("--budget-ms", "0"), "--budget-ms is 0.0; give a finite number of milliseconds above 0"),
    "negative-budget": Case(("--budget-ms", "-1"), "--budget-ms is -1.0; give a finite number"),
    "nan-budget": Case(("--budget-ms", "nan"), "--budget-ms is nan; give a finite number"),
    "inf-budget": Case(("--budget-ms", "inf"), "--budget-ms is inf; give a finite number"),
    "report-zero-budget": Case(
        (), "report.json is 0; give a finite number", report=_json({"recipe": {"latency_budget_ms": 0}})
    ),
    "report-text-budget": Case(
        (), "report.json is 'fast'; give a finite", report=_json({"recipe": {"latency_budget_ms": "fast"}})
    ),
    "report-not-json": Case((), "report.json is not a JSON report (", report=b"{coverage"),
    "report-a-list": Case((), "report.json holds a JSON list, not an export report", report=b"[]"),
    "report-no-recipe": Case((), "report.json has no recipe section", report=b"{}"),
    "size-under-dynamic-min": Case(
        ("--input-size", "50x50"),
        "metasr_x2.onnx takes sides that are multiples of 32 from 64 to 8192, not 50x50; pass --input-size",
    ),
    "size-above-dynamic-max": Case(("--input-size", "9000x64"), "from 64 to 8192, not 9000x64"),
    "size-not-whole-cells": Case(("--input-size", "540x960"), "multiples of 32 from 64 to 8192, not 540x960"),
    "size-not-exported": Case(
        ("--input-size", "512x512"),
        "metasr_x2.pte takes 256x256, not 512x512",
        "metasr_x2.pte",
        ET_HEADER,
        PTE_MANIFEST,
    ),
    "size-empty-side": Case(("--input-size", "0x64", "--device", "estimate:galaxy-s24"), "0x64 has an empty side"),
    "garbage-onnx": Case((), "ONNX Runtime failed on metasr_x2.onnx ("),
    "garbage-pte": Case((), "is not an ExecuTorch program", "metasr_x2.pte", manifest=PTE_MANIFEST),
    "no-suffix": Case((), "metasr_x2 has no suffix, not a known artifact type", "metasr_x2"),
    "manifest-not-json": Case((), "manifest.json is not a JSON manifest (", manifest=b"\x00\x01garbage"),
    "manifest-a-string": Case((), "manifest.json holds a JSON str, not a manifest object", manifest=b'"onnx"'),
    "manifest-no-inputs": Case((), "'inputs' is a required property; re-export", manifest=NO_INPUTS),
}


def _artifact_folder(tmp_path: Path, case: Case) -> Path:
    folder = tmp_path / "artifacts"
    folder.mkdir()
    artifact = folder / case.artifact
    if artifact.suffix == ".mlpackage":
        artifact.mkdir()
    else:
        artifact.write_bytes(case.content)
    for name, data in (("manifest.json", case.manifest), ("report.json", case.report)):
        if data is not None:
            (folder / name).write_bytes(data)
    return artifact


def _refused(result, fragment: str) -> None:
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output  # no traceback
    assert len(errors) == 1 and fragment in errors[0], result.output


@pytest.mark.parametrize("case", list(UPSCALE))
def test_bad_upscale_input_is_one_line(tmp_path: Path, case: str) -> None:
    artifact = _artifact_folder(tmp_path, UPSCALE[case])
    before = leftovers(artifact.parent)
    image, out = tmp_path / "in.png", tmp_path / "out"
    Image.new("RGB", (64, 64), (90, 120, 30)).save(image)
    args = [str(image), "--artifact", str(artifact), "-o", str(out), *UPSCALE[case].args]
    result = CliRunner().invoke(upscale_command, args)
    _refused(result, UPSCALE[case].fragment)
    assert leftovers(out) == [] and leftovers(artifact.parent) == before


@pytest.mark.parametrize("case", list(PROFILE))
def test_bad_profile_input_is_one_line(tmp_path: Path, case: str) -> None:
    artifact = _artifact_folder(tmp_path, PROFILE[case])
    before = leftovers(artifact.parent)
    result = CliRunner().invoke(profile_command, [str(artifact), "--runs", "1", *PROFILE[case].args])
    _refused(result, PROFILE[case].fragment)
    assert leftovers(artifact.parent) == before  # no profile/ folder, no temp files


def test_allowed_sizes_follow_the_manifest() -> None:
    static, dynamic = _manifest(), _manifest(target="onnx", dynamic_size=DYNAMIC)
    assert takes_size(static, (256, 256)) and not takes_size(static, (256, 512))
    assert takes_size(dynamic, (64, 8192)) and takes_size(dynamic, (544, 960))
    assert not any(takes_size(dynamic, size) for size in [(32, 64), (64, 8224), (540, 960)])
    assert (allowed_sizes(static), allowed_sizes(dynamic)) == (
        "256x256",
        "sides that are multiples of 32 from 64 to 8192",
    )


def test_sigterm_during_upscale_leaves_nothing(tmp_path: Path) -> None:
    """SIGTERM (kill, a closing terminal sends SIGHUP) mid-upscale: non-zero exit, no .part file left."""
    src, out = tmp_path / "big.png", tmp_path / "out"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)).save(src, compress_level=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "metasr.upscaling.command", str(src), "-o", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    terminate_once(proc, lambda: any(name.endswith(".part") for name in leftovers(out)), "its .part file")
    assert leftovers(out) == []


# Property-based: whatever manifest.json holds, read_manifest raises only a one-line MetaSRError, and what it
# accepts is usable by the code that reads sizes and inputs from it.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into a JSON value."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [prefix] + [p for key, child in items for p in _paths(child, (*prefix, key))]


BASES = [_manifest(), _manifest(target="onnx", dynamic_size=DYNAMIC)]
PATHS = [(i, path) for i, base in enumerate(BASES) for path in _paths(base) if path]


@st.composite
def mutated_manifests(draw: st.DrawFn) -> bytes:
    """A real manifest with one value replaced by arbitrary JSON, or removed."""
    index, path = draw(st.sampled_from(PATHS))
    manifest = json.loads(json.dumps(BASES[index]))
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return _json(manifest)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(mutated_manifests(), JSON_VALUES.map(_json), st.binary(max_size=64)))
def test_manifest_reader_lets_only_metasr_error_escape(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "manifest.json").write_bytes(data)
    try:
        manifest = read_manifest(tmp_path / "model.onnx")
    except MetaSRError as exc:
        assert "\n" not in str(exc) and "re-export" in str(exc)
        return
    assert allowed_sizes(manifest) and isinstance(takes_size(manifest, (64, 64)), bool)
    assert input_names(manifest)[0] == "image"
