"""Time an artifact on an Android phone over adb: the android_demo benchmark mode or a runner binary."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from metasr.errors import MetaSRError
from metasr.profile.results import BenchmarkResults, load_results
from metasr.profile.timing import LatencyStats
from metasr.runtime import read_manifest

# Mirrors android_demo/app/src/main/java/dev/metasr/demo/BenchmarkContract.kt (a test keeps them equal).
COMPONENT = "dev.metasr.demo/.BenchmarkActivity"
DEVICE_FILES_DIR = "/sdcard/Android/data/dev.metasr.demo/files"
RESULTS_FILE = "benchmark_results.json"
ERROR_FILE = "benchmark_error.txt"
RUNNER_DIR = "/data/local/tmp/metasr"


@dataclass(frozen=True)
class AdbProfile:
    serial: str | None
    method: str
    latency: LatencyStats
    peak_memory_mb: float | None
    results: BenchmarkResults | None
    note: str


class Adb:
    """Runs adb commands against one device, failing with a one-line message."""

    def __init__(self, serial: str | None = None, adb: str = "adb") -> None:
        self.serial = serial
        self.adb = shutil.which(adb)
        if self.adb is None:
            raise MetaSRError("adb not found on PATH; install Android platform-tools and connect a phone")

    def __call__(self, *args: str, timeout_s: float = 120.0) -> str:
        cmd = [self.adb, *(["-s", self.serial] if self.serial else []), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise MetaSRError(f"adb {' '.join(args[:2])} failed: {detail[-1] if detail else proc.returncode}")
        return proc.stdout


def profile_with_app(
    adb: Adb, artifact: Path, runs: int, input_size: tuple[int, int] | None, warmup: int = 5, timeout_s: float = 600.0
) -> AdbProfile:
    """Push artifact + manifest, start the demo's BenchmarkActivity, wait for and pull its results JSON."""
    target = artifact.parent.name
    device_dir = f"{DEVICE_FILES_DIR}/{target}"
    device_artifact = f"{device_dir}/{artifact.name}"
    adb("shell", "mkdir", "-p", device_dir)
    adb("push", str(artifact), device_artifact)
    adb("push", str(artifact.parent / "manifest.json"), f"{device_dir}/manifest.json")
    adb("shell", "rm", "-f", f"{DEVICE_FILES_DIR}/{RESULTS_FILE}", f"{DEVICE_FILES_DIR}/{ERROR_FILE}")
    start = ["shell", "am", "start", "-W", "-n", COMPONENT, "--es", "artifact", device_artifact]
    start += ["--ei", "runs", str(runs), "--ei", "warmup", str(warmup)]
    if input_size:
        start += ["--es", "input_size", f"{input_size[0]}x{input_size[1]}"]
    adb(*start)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listing = adb("shell", "ls", DEVICE_FILES_DIR)
        if ERROR_FILE in listing.split():
            message = adb("shell", "cat", f"{DEVICE_FILES_DIR}/{ERROR_FILE}").strip()
            raise MetaSRError(f"the demo app's benchmark failed on the phone: {message}")
        if RESULTS_FILE in listing.split():
            break
        time.sleep(1.0)
    else:
        raise MetaSRError(f"no benchmark results after {timeout_s:.0f} s; is android_demo installed on the phone?")
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / RESULTS_FILE
        adb("pull", f"{DEVICE_FILES_DIR}/{RESULTS_FILE}", str(local))
        results = load_results(local)
    expected = read_manifest(artifact)["model_sha256"]
    if results.artifact.model_sha256 != expected:
        raise MetaSRError(
            f"the phone timed {results.artifact.file} with hash {results.artifact.model_sha256[:12]}…, not the "
            f"pushed artifact ({expected[:12]}…); check the artifact path the app was started with"
        )
    latency = LatencyStats(results.median_ms, results.p10_ms, results.p90_ms, len(results.latencies_ms))
    return AdbProfile(adb.serial, "android_demo benchmark mode", latency, results.peak_memory_mb, results, "")


def profile_with_runner(adb: Adb, artifact: Path, runner: Path, runs: int) -> AdbProfile:
    """Run a standard runner binary on the phone: ExecuTorch's executor_runner (.pte) or onnxruntime_perf_test."""
    adb("shell", "mkdir", "-p", RUNNER_DIR)
    adb("push", str(runner), f"{RUNNER_DIR}/{runner.name}")
    adb("push", str(artifact), f"{RUNNER_DIR}/{artifact.name}")
    adb("shell", "chmod", "755", f"{RUNNER_DIR}/{runner.name}")
    exe, model = f"{RUNNER_DIR}/{runner.name}", f"{RUNNER_DIR}/{artifact.name}"
    if artifact.suffix == ".pte":
        out = adb("shell", exe, f"--model_path={model}", f"--num_executions={runs}", timeout_s=900)
        mean = parse_executor_runner(out, runs)
        latency = LatencyStats(mean, mean, mean, runs)
        note = "executor_runner reports only the mean over runs; p10/p90 equal the mean"
    else:
        out = adb("shell", exe, "-e", "cpu", "-r", str(runs), model, timeout_s=900)
        latency = parse_perf_test(out, runs)
        note = "onnxruntime_perf_test percentiles"
    return AdbProfile(adb.serial, f"runner {runner.name}", latency, None, None, note)


def parse_executor_runner(output: str, runs: int) -> float:
    """Mean ms per run from executor_runner's 'Model executed successfully N time(s) in X ms.'."""
    match = re.search(r"executed successfully (\d+) time\(s\) in ([\d.]+) ms", output)
    if not match:
        raise MetaSRError("executor_runner printed no timing line; pass the runner built with --num_executions")
    return float(match.group(2)) / int(match.group(1))


def parse_perf_test(output: str, runs: int) -> LatencyStats:
    """Median/p10/p90 from onnxruntime_perf_test's 'P50 Latency: X s' lines (mean if absent)."""
    found = {p: float(v) * 1000.0 for p, v in re.findall(r"P(\d+) Latency: ([\d.eE+-]+) s", output)}
    if "50" in found and "90" in found:
        return LatencyStats(found["50"], found.get("10", found["50"]), found["90"], runs)
    mean = re.search(r"Average inference time cost: ([\d.]+) ms", output)
    if not mean:
        raise MetaSRError("onnxruntime_perf_test printed no latency lines; check the runner binary")
    value = float(mean.group(1))
    return LatencyStats(value, value, value, runs)
