"""Bad input to metasr-export and its loaders, table-driven: one line naming the problem and the fix, a
non-zero exit, nothing left in --out, all before any heavy work. Fuzzing (hypothesis) checks that the recipe
loader and the checkpoint reader let only MetaSRError escape."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from metasr.checkpoint import CONFIG_KEY, save_student
from metasr.cli import export_command
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import resolve_recipe
from metasr.models import MetaSRStudent, StudentConfig
from metasr.safe_weights import read_state
from metasr.upscaling.command import upscale_command
from tests.conftest import leftovers, terminate_once

pytestmark = pytest.mark.export

ONNX = "target: onnx\n"
RECIPES: dict[str, tuple[bytes, str]] = {  # recipe file bytes -> expected message fragment
    "no-target": (b"scale: 2\n", "missing key 'target'"),
    "empty-sizes": (ONNX.encode() + b"input_sizes: []\n", "input_sizes is empty"),
    "not-utf8": (ONNX.encode() + b"# \xff\xfe caf\xe9\n", "is not UTF-8 text"),
    "float-overflow": (ONNX.encode() + b"latency_budget_ms: 1.0e+999\n", "expected a finite number, got inf"),
    "int-too-big-for-float": (ONNX.encode() + b"latency_budget_ms: " + b"9" * 400 + b"\n", "finite number"),
    "5000-digits": (ONNX.encode() + b"scale: " + b"7" * 5000 + b"\n", "holds a value YAML cannot convert"),
    "beyond-unicode": (ONNX.encode() + b'options: {precision: "\\U00110000"}\n', "cannot convert"),
    "nul-in-extends": (b'extends: "onnx\\0.yaml"\n', "extends must name one recipe file"),
    "deep-nesting": (ONNX.encode() + b"options: " + b"[" * 20000 + b"]" * 20000 + b"\n", "nests too deeply"),
    "zero-budget": (ONNX.encode() + b"latency_budget_ms: 0\n", "latency_budget_ms 0.0 must be a positive"),
    "negative-budget": (ONNX.encode() + b"latency_budget_ms: -5\n", "latency_budget_ms -5.0 must be a positive"),
    "nan-floor": (ONNX.encode() + b"parity_floor_db: .nan\n", "expected a finite number, got nan"),
    "negative-tile": (ONNX.encode() + b"tile: {size: -1}\n", "tile size -1 is outside"),
    "overlap-too-big": (ONNX.encode() + b"tile: {size: 64, overlap: 32}\n", "under half the tile size"),
    "side-above-limit": (ONNX.encode() + b"input_sizes: [[64, 8224]]\n", "exceeds 8192 pixels per side"),
    "opset-999": (ONNX.encode() + b"options: {opset: 999}\n", "opset 999 is outside the 17-"),
    "yaml-syntax": (ONNX.encode() + b"scale: [2\n", "at line 3, column 1"),
}


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def _export(*args: str):
    return CliRunner().invoke(export_command, list(args))


def _refused(result, fragment: str, out: Path) -> None:
    errors = _error_lines(result.output)
    assert result.exit_code != 0, result.output
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert leftovers(out) == []


@pytest.mark.parametrize("case", list(RECIPES))
def test_bad_recipe_is_one_line(tmp_path: Path, case: str) -> None:
    text, fragment = RECIPES[case]
    recipe = tmp_path / "r.yaml"
    recipe.write_bytes(text)
    result = _export("--target", "onnx", "--recipe", str(recipe), "--out", str(tmp_path / "out"))
    _refused(result, fragment, tmp_path / "out")


@pytest.mark.parametrize(
    ("size", "fragment"),
    [("100000x100000", "exceeds 8192 pixels per side"), ("64x8224", "exceeds 8192"), ("48x64", "metadata cells")],
)
def test_bad_input_size_is_refused_up_front(tmp_path: Path, size: str, fragment: str) -> None:
    _refused(
        _export("--target", "onnx", "--input-size", size, "--out", str(tmp_path / "out")), fragment, tmp_path / "out"
    )


def _checkpoints(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Checkpoint files with one defect each -> expected message fragment."""
    torch.manual_seed(0)
    student = MetaSRStudent(StudentConfig(channels=8, num_blocks=1))
    good = tmp_path / "good.safetensors"
    save_student(student, good)
    state = {k: v.clone() for k, v in student.state_dict().items()}
    config = json.dumps(student.config.to_dict())
    cases: dict[str, tuple[dict[str, torch.Tensor], dict[str, str], str]] = {
        "nan": ({**state, "head.weight": state["head.weight"] * float("nan")}, {CONFIG_KEY: config}, "NaN values"),
        "inf": ({**state, "tail.bias": state["tail.bias"] + float("inf")}, {CONFIG_KEY: config}, "infinite values"),
        "config-not-json": (state, {CONFIG_KEY: "{scale: 2"}, "is not valid JSON"),
        "config-unknown-key": (state, {CONFIG_KEY: json.dumps({"scale": 2, "widht": 8})}, "unknown keys ['widht']"),
        "config-vs-weights": (state, {CONFIG_KEY: json.dumps({"scale": 2, "channels": 64})}, "does not match"),
    }
    files = {}
    for name, (tensors, metadata, fragment) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=metadata)
        files[name] = (path, fragment)
    random_pt = tmp_path / "random.pt"
    random_pt.write_bytes(os.urandom(4096))
    files["random-bytes-pt"] = (random_pt, "is not a torch file")
    return files


def test_bad_checkpoints_are_one_line_for_export_and_upscale(tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    from PIL import Image

    Image.new("RGB", (64, 64), (90, 120, 30)).save(image)
    for name, (path, fragment) in _checkpoints(tmp_path).items():
        out = tmp_path / f"out-{name}"
        result = _export("--target", "onnx", "--checkpoint", str(path), "--input-size", "64x64", "--out", str(out))
        _refused(result, fragment, out)
        result = CliRunner().invoke(upscale_command, [str(image), "--checkpoint", str(path), "-o", str(out)])
        _refused(result, fragment, out)


def test_nan_weights_are_named_at_load(tmp_path: Path) -> None:
    path = tmp_path / "nan.safetensors"
    save_file({"blocks.3.conv.weight": torch.tensor([1.0, float("nan")])}, str(path))
    with pytest.raises(MetaSRError, match=r"NaN values in 'blocks.3.conv.weight'.*use an earlier checkpoint"):
        read_state(path)


def test_scale_mismatch_does_not_blame_an_absent_flag(tmp_path: Path) -> None:
    path = tmp_path / "x4.safetensors"
    save_student(MetaSRStudent(StudentConfig(scale=4, channels=8, num_blocks=1)), path)
    result = _export(
        "--target", "onnx", "--checkpoint", str(path), "--input-size", "64x64", "--out", str(tmp_path / "o")
    )
    _refused(result, "is a x4 model but x2 was asked (--scale or the recipe's scale); pass --scale 4", tmp_path / "o")


def test_output_path_faults(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    result = _export("--target", "onnx", "--input-size", "64x64", "--out", str(a_file))
    assert result.exit_code != 0 and "cannot create output folder" in _error_lines(result.output)[0]
    result = _export("--target", "onnx", "--input-size", "64x64", "--out", str(a_file / "sub"))
    assert result.exit_code != 0 and "cannot create output folder" in _error_lines(result.output)[0]
    assert a_file.read_text() == "mine"

    out = tmp_path / "out"
    out.mkdir()
    (out / "onnx").write_text("not a folder")
    result = _export("--target", "onnx", "--input-size", "64x64", "--out", str(out))
    assert result.exit_code != 0 and "is a file, not a folder" in _error_lines(result.output)[0]
    assert leftovers(out) == ["onnx"] and (out / "onnx").read_text() == "not a folder"

    (out / "onnx").unlink()
    (out / "onnx").mkdir()
    (out / "onnx" / "notes.txt").write_text("user notes")
    result = _export("--target", "onnx", "--input-size", "64x64", "--out", str(out))
    assert result.exit_code != 0 and "holds files metasr did not write (notes.txt)" in _error_lines(result.output)[0]
    assert (out / "onnx" / "notes.txt").read_text() == "user notes" and leftovers(out) == ["onnx"]


def test_stale_staging_of_dead_processes_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    for name in (f".staging-onnx-{pid}-abc123", f".old-onnx-{pid}-17", ".staging-coreml-k2j4"):
        (out / name).mkdir(parents=True)
    (out / f".staging-onnx-{os.getpid()}-live").mkdir()  # this process is alive: kept
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")  # fails in the load stage, after the staging check
    result = _export("--target", "onnx", "--checkpoint", str(bad), "--input-size", "64x64", "--out", str(out))
    assert result.exit_code != 0
    assert leftovers(out) == [f".staging-onnx-{os.getpid()}-live"]


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = "import sys; from metasr.cli import export_command; sys.exit(export_command())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs
    )


def test_sigterm_during_export_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _cli("--target", "onnx", "--input-size", "64x64", "--out", str(out))
    terminate_once(proc, lambda: any(name.startswith(".staging-") for name in leftovers(out)), "its staging folder")
    assert leftovers(out) == []


def test_full_disk_is_one_line(tmp_path: Path) -> None:
    """A file-size limit (EFBIG, as a full disk gives ENOSPC) while the artifact is written."""
    out = tmp_path / "out"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = _cli("--target", "onnx", "--input-size", "64x64", "--out", str(out), preexec_fn=limit)
    output = proc.communicate(timeout=300)[0].decode()
    errors = _error_lines(output)
    assert proc.returncode != 0 and len(errors) == 1, output
    assert "writing under" in errors[0] and "free disk space or choose another --out" in errors[0], output
    assert leftovers(out) == []


# Property-based: whatever bytes a recipe or checkpoint holds, only MetaSRError escapes.
YAML_PIECES = st.sampled_from(
    [
        "target: onnx\n",
        "scale: ",
        "input_sizes: ",
        "tile: {size: ",
        "options: {",
        "opset: ",
        "precision: ",
        "extends: ",
        "latency_budget_ms: ",
        "parity_floor_db: ",
        "[",
        "]",
        "{",
        "}",
        ",",
        ": ",
        "\n",
        "  ",
        "- ",
        "-1",
        "0",
        "2",
        "64",
        "1e999",
        ".nan",
        "null",
        "true",
        "'x'",
        '"\\x00"',
        "&a ",
        "*a",
        "!!binary AA==",
        "fp16",
        "256",
        "\t",
        "#",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(YAML_PIECES, max_size=30), noise=st.binary(max_size=16))
def test_recipe_loader_fuzz(tmp_path: Path, pieces: list[str], noise: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes("".join(pieces).encode() + noise)
    try:
        resolve_recipe("onnx", path)
    except MetaSRError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_checkpoint_reader_fuzz(tmp_path: Path, data) -> None:
    torch.manual_seed(0)
    good = tmp_path / "good.safetensors"
    if not good.exists():
        save_student(MetaSRStudent(StudentConfig(channels=4, num_blocks=1)), good)
    raw = bytearray(good.read_bytes())
    for _ in range(data.draw(st.integers(0, 8))):  # flip bytes, mostly in the JSON header
        raw[data.draw(st.integers(0, min(len(raw) - 1, 600)))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    suffix = data.draw(st.sampled_from([".safetensors", ".pt"]))
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(bytes(raw[:cut]))
    try:
        from metasr.assembly import load_graph

        load_graph(path)
    except MetaSRError as exc:
        assert "\n" not in str(exc)
