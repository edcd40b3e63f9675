"""The ONNX QNN target's host runtime: ONNX Runtime's QNN execution provider on the HTP backend, which on
x86-64 is an emulator (numerics and placement, not timing)."""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Any

import onnxruntime as ort

from metasr.errors import MetaSRError
from metasr.exporter.host import FunctionRunner, loading
from metasr.exporter.onnx.runtime import session_runner
from metasr.quiet import quiet_native

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
WHERE = "Qualcomm HTP (QNN x86-64 emulator)"


def open_function(path: Path, manifest: dict[str, Any], function: str, names: tuple[str, ...]) -> FunctionRunner:
    """One function of a QDQ artifact set, run where it runs on the phone: the QNN HTP (emulated), no CPU fallback."""
    with loading(path, "ONNX Runtime (QNN)"):
        session = open_session(path, manifest.get("context_model", {}).get("soc_model"))
    return session_runner(session, names)


def host_placement(path: Path) -> tuple[dict[str, int], list[str]]:
    """Ops per compute unit when ``path`` opens on the HTP emulator with CPU fallback allowed, and what to say
    about it: the emulator's timing says nothing about a phone, so a host profile is placement only."""
    with loading(path, "ONNX Runtime (QNN)"):
        session = open_session(path, allow_fallback=True)
    fallback = cpu_assigned_ops(session)
    nodes = sum(len(g.get_nodes()) for g in session.get_provider_graph_assignment_info())
    placement = {"Qualcomm HTP (emulated)": nodes - len(fallback)} | (
        {"CPU fallback": len(fallback)} if fallback else {}
    )
    notes = [
        "QNN HTP x86-64 emulator: op placement only, no timing (emulated latency says nothing about a phone)",
        "all ops on the HTP" if not fallback else "ops that fell back to CPU: " + ", ".join(sorted(set(fallback))),
        "time it on a phone with --device adb, or estimate it with --device estimate:NAME",
    ]
    return placement, notes


def open_session(
    path: Path,
    soc_model: str | None = None,
    context: Path | None = None,
    allow_fallback: bool = False,
    log_warnings: bool = False,
) -> ort.InferenceSession:
    """An ORT session on the QNN HTP backend; CPU fallback disabled unless asked, EPContext written if ``context``."""
    qnn = qnn_plugin()
    options = ort.SessionOptions()
    options.log_severity_level = 2 if log_warnings else 4  # failures surface as exceptions anyway
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "0" if allow_fallback else "1")
    options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    if context:
        options.add_session_config_entry("ep.context_enable", "1")
        options.add_session_config_entry("ep.context_file_path", str(context))
        options.add_session_config_entry("ep.context_embed_mode", "1")
    provider = {"backend_path": qnn.get_qnn_htp_path(), "offload_graph_io_quantization": "0"}
    if soc_model:
        provider["soc_model"] = soc_model
    options.add_provider_for_devices(_qnn_devices(), provider)
    with contextlib.nullcontext() if log_warnings else quiet_native():  # the QNN SDK's notices on stdout
        return ort.InferenceSession(path.read_bytes(), sess_options=options)


def cpu_assigned_ops(session: ort.InferenceSession) -> list[str]:
    """Op types ORT placed on the CPU EP (Q/DQ left out when compute ops are there too)."""
    subgraphs = session.get_provider_graph_assignment_info()
    ops = [node.op_type for g in subgraphs if g.ep_name != qnn_ep_name() for node in g.get_nodes()]
    compute = [op for op in ops if op not in QDQ_OPS]
    return compute or ops


def qnn_ep_name() -> str:
    return qnn_plugin().get_ep_name()


@functools.cache
def qnn_plugin() -> Any:
    """The onnxruntime_qnn package, its EP library registered with ORT once per process."""
    try:
        import onnxruntime_qnn
    except ImportError as exc:
        raise MetaSRError(
            "onnx-qnn needs the onnxruntime-qnn package (Linux x86-64 and Windows only); "
            "install it or export with --target onnx"
        ) from exc
    if not any(d.ep_name == onnxruntime_qnn.get_ep_name() for d in ort.get_ep_devices()):
        ort.register_execution_provider_library(onnxruntime_qnn.get_ep_name(), onnxruntime_qnn.get_library_path())
    return onnxruntime_qnn


def _qnn_devices() -> list[ort.OrtEpDevice]:
    return [d for d in ort.get_ep_devices() if d.ep_name == qnn_ep_name()]


if (
    __name__ == "__main__"
):  # compile an EPContext model: python -m metasr.exporter.onnx_qnn.runtime QDQ SOC_MODEL CONTEXT
    open_session(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), log_warnings=True)
