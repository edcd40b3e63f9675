"""metasr-profile: host timings, estimates, budgets, the adb path (fake adb) and the macOS refusal."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from metasr.cli import profile_command
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import export, resolve_recipe
from metasr.profile.adb import ERROR_FILE, RESULTS_FILE, parse_executor_runner, parse_perf_test
from metasr.profile.estimate import estimate_latency
from metasr.profile.run import DeviceSpec, profile_and_write
from metasr.recipes import with_overrides
from metasr.runtime import open_engine
from metasr.schemas import MANIFEST_VERSION
from tests.conftest import PER_PIXEL

pytestmark = pytest.mark.export

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def onnx_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=((64, 96),))
    recipe = dataclasses.replace(recipe, options=dataclasses.replace(recipe.options, dynamic_size=False))
    return export(recipe, tmp_path_factory.mktemp("artifacts"), checkpoint=PER_PIXEL).artifact


def test_host_profile_writes_json_markdown_and_chart(onnx_artifact: Path) -> None:
    report, paths = profile_and_write(onnx_artifact, DeviceSpec.parse("host"), None, runs=5, budget_ms=None)
    (row,) = report.rows
    assert report.kind == "measured" and report.input_size == (64, 96)
    assert 0 < row.p10_ms <= row.median_ms <= row.p90_ms and row.peak_memory_mb > 10
    data = json.loads(paths["json"].read_text())
    assert math.isclose(data["headline_ms"], row.median_ms)
    assert "| onnxruntime |" in paths["md"].read_text()
    with Image.open(paths["png"]) as chart:
        assert chart.format == "PNG" and chart.width > 400
    assert report.placement == {
        "ONNX Runtime CPU": json.loads((onnx_artifact.parent / "report.json").read_text())["coverage"]["total_ops"]
    }


def test_budget_overrun_exits_non_zero_with_the_overrun(onnx_artifact: Path) -> None:
    result = CliRunner().invoke(profile_command, [str(onnx_artifact), "--runs", "3", "--budget-ms", "0.001"])
    assert result.exit_code == 1
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert "exceeds the budget 0.00 ms by" in line and "%)" in line
    assert (onnx_artifact.parent / "profile" / "profile-host.json").is_file()  # the report is still written


def test_estimate_is_labelled_everywhere(onnx_artifact: Path) -> None:
    report, paths = profile_and_write(onnx_artifact, DeviceSpec.parse("estimate:galaxy-s24"), (540, 960), 1, None)
    assert report.kind == "estimate" and report.rows[0].label.startswith("ESTIMATE")
    assert report.rows[0].median_ms > 0
    assert "(estimate)" in paths["md"].read_text().splitlines()[0]
    assert any("source:" in n for n in report.notes)
    bigger, _ = profile_and_write(onnx_artifact, DeviceSpec.parse("estimate:galaxy-s24"), (1080, 1920), 1, None)
    assert bigger.rows[0].median_ms > 3 * report.rows[0].median_ms


def test_estimate_covers_the_whole_graph(onnx_artifact: Path) -> None:
    manifest = json.loads((onnx_artifact.parent / "manifest.json").read_text())
    layers = {layer.name.split(".")[0] for layer in estimate_latency(manifest, (64, 96), "galaxy-s24").layers}
    assert layers == {"student", "extractors", "orchestrator"}


def test_manifest_before_metasr_is_refused(onnx_artifact: Path, tmp_path: Path) -> None:
    artifact = tmp_path / onnx_artifact.name
    artifact.write_bytes(onnx_artifact.read_bytes())
    manifest = json.loads((onnx_artifact.parent / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 1}))
    with pytest.raises(MetaSRError, match=f"manifest version 1, not {MANIFEST_VERSION} .* re-export it"):
        open_engine(artifact)


def test_unknown_device_names_the_choices() -> None:
    with pytest.raises(MetaSRError, match="use host, adb"):
        DeviceSpec.parse("phone")


@pytest.mark.skipif(platform.system() == "Darwin", reason="the refusal is for hosts without Core ML")
def test_macos_device_refused_on_linux(onnx_artifact: Path) -> None:
    result = CliRunner().invoke(profile_command, [str(onnx_artifact), "--device", "macos"])
    assert result.exit_code == 1 and "needs macOS" in result.output


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML prediction exists only on macOS")
def test_macos_profile_times_every_compute_unit(tmp_path: Path) -> None:
    artifact = export(
        with_overrides(resolve_recipe("coreml"), input_sizes=((64, 64),)), tmp_path, checkpoint=PER_PIXEL
    ).artifact
    report, _ = profile_and_write(artifact, DeviceSpec.parse("macos"), None, 3, None)
    assert [r.label for r in report.rows] == ["ALL", "CPU_AND_NE", "CPU_ONLY"]
    assert sum(report.placement.values()) > 0


FAKE_ADB = """#!{python}
import json, shutil, sys
from pathlib import Path
log = Path({log!r})
with log.open("a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if args[:2] == ["-s", "SERIAL1"]:
    args = args[2:]
if args[:2] == ["shell", "ls"]:
    print({listing!r})
elif args[0] == "pull":
    shutil.copy({results!r}, args[2])
"""


def _fake_adb(tmp_path: Path, onnx_artifact: Path, listing: str) -> Path:
    sample = json.loads((REPO / "android_demo" / "sample_results.json").read_text())
    manifest = json.loads((onnx_artifact.parent / "manifest.json").read_text())
    sample["artifact"] = {"file": manifest["file"], "target": "onnx", "model_sha256": manifest["model_sha256"]}
    sample["runtime"] = "onnxruntime-cpu"
    results = tmp_path / "results.json"
    results.write_text(json.dumps(sample))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    log = tmp_path / "adb.log"
    adb.write_text(FAKE_ADB.format(python=sys.executable, log=str(log), listing=listing, results=str(results)))
    adb.chmod(0o755)
    return log


def test_adb_app_mode_with_fake_adb_runs_exact_command_sequence(
    tmp_path: Path, onnx_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _fake_adb(tmp_path, onnx_artifact, listing=f"other.txt\n{RESULTS_FILE}")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    report, _ = profile_and_write(onnx_artifact, DeviceSpec.parse("adb:SERIAL1"), (64, 96), 50, None)
    files = "/sdcard/Android/data/dev.metasr.demo/files"
    pushed = f"{files}/onnx/{onnx_artifact.name}"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(c[:2] == ["-s", "SERIAL1"] for c in calls)
    assert [c[2:] for c in calls[:6]] == [
        ["shell", "mkdir", "-p", f"{files}/onnx"],
        ["push", str(onnx_artifact), pushed],
        ["push", str(onnx_artifact.parent / "manifest.json"), f"{files}/onnx/manifest.json"],
        ["shell", "rm", "-f", f"{files}/{RESULTS_FILE}", f"{files}/{ERROR_FILE}"],
        [
            "shell",
            "am",
            "start",
            "-W",
            "-n",
            "dev.metasr.demo/.BenchmarkActivity",
            "--es",
            "artifact",
            pushed,
            "--ei",
            "runs",
            "50",
            "--ei",
            "warmup",
            "5",
            "--es",
            "input_size",
            "64x96",
        ],
        ["shell", "ls", files],
    ]
    assert calls[6][2:4] == ["pull", f"{files}/{RESULTS_FILE}"]
    assert report.rows[0].median_ms == pytest.approx(9.67) and report.rows[0].peak_memory_mb == pytest.approx(187.4)


def test_adb_app_error_file_is_reported(tmp_path: Path, onnx_artifact: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_adb(tmp_path, onnx_artifact, listing=ERROR_FILE)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with pytest.raises(MetaSRError, match="benchmark failed on the phone"):
        profile_and_write(onnx_artifact, DeviceSpec.parse("adb"), None, 5, None)


def test_runner_output_parsers() -> None:
    assert parse_executor_runner("I 00:00:01 Model executed successfully 20 time(s) in 250.0 ms.", 20) == 12.5
    perf = "Average inference time cost: 3.5 ms\nP50 Latency: 0.0031 s\nP90 Latency: 0.0042 s\nP10 Latency: 0.0029 s"
    stats = parse_perf_test(perf, 10)
    assert (stats.median_ms, stats.p10_ms, stats.p90_ms) == pytest.approx((3.1, 2.9, 4.2))
    with pytest.raises(MetaSRError, match="no latency lines"):
        parse_perf_test("nothing here", 10)


def test_qnn_artifact_on_host_reports_placement_not_time(tmp_path: Path) -> None:
    recipe = with_overrides(resolve_recipe("onnx-qnn"), input_sizes=((96, 128),))
    artifact = export(recipe, tmp_path, checkpoint=PER_PIXEL).artifact
    report, paths = profile_and_write(artifact, DeviceSpec.parse("host"), None, 3, budget_ms=1e-6)
    assert report.kind == "placement only" and report.rows[0].median_ms is None
    assert set(report.placement) == {"Qualcomm HTP (emulated)"} and report.placement["Qualcomm HTP (emulated)"] > 20
    assert any("no timing" in n for n in report.notes)
    assert "no timing to compare" in paths["md"].read_text()  # a budget cannot fail on an untimed report
