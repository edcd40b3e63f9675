"""The metasr-export command: bad input gives one line, a non-zero exit and no partial artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from metasr.checkpoint import save_student
from metasr.cli import export_command
from metasr.models import MetaSRStudent
from tests.conftest import PicklePayload, leftovers

pytestmark = pytest.mark.export


def _run(*args: str):
    return CliRunner().invoke(export_command, list(args))


def _error_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("Error:")]


def test_unknown_target(tmp_path: Path) -> None:
    result = _run("--target", "onx", "--out", str(tmp_path))
    assert result.exit_code != 0
    assert _error_lines(result) == ["Error: unknown target 'onx'; did you mean 'onnx'?"]
    assert leftovers(tmp_path) == []


def test_recipe_typo_names_key(tmp_path: Path) -> None:
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("target: onnx\ninput_size: [[64, 64]]\n")
    result = _run("--target", "onnx", "--recipe", str(recipe), "--out", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert _error_lines(result) == [f"Error: {recipe}: unknown key 'input_size'; did you mean 'input_sizes'?"]
    assert leftovers(tmp_path / "out") == []


def test_truncated_checkpoint(tmp_path: Path, small_student: MetaSRStudent) -> None:
    ckpt = tmp_path / "s.safetensors"
    save_student(small_student, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    result = _run("--target", "onnx", "--checkpoint", str(ckpt), "--input-size", "64x64", "--out", str(tmp_path / "o"))
    assert result.exit_code != 0
    (line,) = _error_lines(result)
    assert "is corrupt or truncated" in line
    assert leftovers(tmp_path / "o") == []


def test_pickle_checkpoint_refused_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    ckpt = tmp_path / "evil.pt"
    torch.save(PicklePayload(marker), ckpt)
    result = _run("--target", "onnx", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0
    (line,) = _error_lines(result)
    assert "refused (never executed)" in line
    assert not marker.exists()
    assert leftovers(tmp_path / "o") == []


def test_bad_input_size_and_recipe_with_all(tmp_path: Path) -> None:
    result = _run("--target", "onnx", "--input-size", "64by64")
    assert result.exit_code == 2 and "'64by64' is not HxW" in result.output
    result = _run("--target", "all", "--recipe", "onnx")
    assert result.exit_code == 2 and "single --target" in result.output


def test_successful_export_prints_table(tmp_path: Path, small_student: MetaSRStudent) -> None:
    ckpt = tmp_path / "s.safetensors"
    save_student(small_student, ckpt)
    result = _run("--target", "onnx", "--checkpoint", str(ckpt), "--input-size", "64x64", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "metasr-export" in result.output and "onnx" in result.output
    assert (tmp_path / "o" / "onnx" / "metasr_x2.onnx").is_file()


def test_list_names_every_target_and_bundled_recipe() -> None:
    result = _run("--list")
    assert result.exit_code == 0, result.output
    targets, recipes = result.output.splitlines()
    assert targets == "targets: coreml, executorch-xnnpack, executorch-vulkan, onnx, onnx-qnn, all"
    assert "coreml-w8a8" in recipes.split(": ")[1].split(", ") and "onnx-qnn-a8w8" in recipes


def test_version_and_shipped_scales_only() -> None:
    from metasr import __version__

    assert _run("--version").output == f"metasr-edge {__version__}\n"
    result = _run("--target", "onnx", "--scale", "3")
    assert result.exit_code == 2 and "'3' is not one of '2', '4'" in result.output


def test_recipe_alone_exports_to_its_own_target(tmp_path: Path, small_student: MetaSRStudent) -> None:
    ckpt = tmp_path / "s.safetensors"
    save_student(small_student, ckpt)
    args = ("--recipe", "onnx-fp16", "--checkpoint", str(ckpt), "--input-size", "64x64", "--out", str(tmp_path / "o"))
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "onnx" / "manifest.json").is_file()
    assert _run("--out", str(tmp_path / "o")).exit_code == 2  # neither a target nor a recipe
