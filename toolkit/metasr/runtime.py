"""Run an exported artifact on this host in its own runtime (ONNX Runtime, ExecuTorch)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from metasr.errors import MetaSRError
from metasr.quant.calibration import feeds
from metasr.schemas import MANIFEST_VERSION

HOST_RUNNABLE = {".onnx": "onnxruntime", ".pte": "executorch"}


@dataclass
class Engine:
    """A loaded artifact: ``run(image[, strength])`` maps (1,3,H,W) in [0,1] to (1,3,sH,sW)."""

    path: Path
    runtime: str
    manifest: dict[str, Any]
    run_fn: Callable[..., torch.Tensor]  # the artifact's inputs in manifest order

    @property
    def scale(self) -> int:
        return int(self.manifest["scale"])

    @property
    def static_sizes(self) -> list[tuple[int, int]] | None:
        """The input sizes the artifact accepts, or None when height and width are free (whole metadata cells)."""
        if "dynamic_size" in self.manifest:
            return None
        return [(s[2], s[3]) for s in self.manifest["inputs"][0]["shapes"]]

    @property
    def input_names(self) -> tuple[str, ...]:
        return input_names(self.manifest)

    def run(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale ``image``; ``strength`` (1,1,1,1) in [0, 1] overrides the estimated degree (default: keep it).

        A bare-student artifact has no strength input: passing one is refused rather than ignored.
        """
        if "strength" not in self.input_names:
            if strength is not None:
                raise MetaSRError(
                    f"{self.path.name} is a plain student with no strength input; omit the strength "
                    "or export a MetaSR graph"
                )
            return self.run_fn(image)
        return self.run_fn(image, default_strength(self.manifest) if strength is None else strength)


def input_names(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The artifact's inputs, in the order it takes them."""
    return tuple(entry["name"] for entry in manifest["inputs"])


def default_strength(manifest: dict[str, Any]) -> torch.Tensor:
    """The manifest's default ``strength`` input (-1: use the estimated degradation degree), shape (1, 1, 1, 1)."""
    spec = next(entry for entry in manifest["inputs"] if entry["name"] == "strength")
    return torch.full(spec["shapes"][0], float(spec["default"]))


def read_manifest(artifact: Path) -> dict[str, Any]:
    """The manifest.json written beside ``artifact`` by metasr-export."""
    path = artifact.parent / "manifest.json"
    if not path.is_file():
        raise MetaSRError(f"no manifest.json beside {artifact}; export the artifact with metasr-export")
    manifest = json.loads(path.read_text())
    if manifest.get("schema_version") != MANIFEST_VERSION:
        raise MetaSRError(
            f"{path} is manifest version {manifest.get('schema_version')}, not {MANIFEST_VERSION} "
            "(written by an older metasr-export); re-export it with metasr-export"
        )
    return manifest


def open_engine(artifact: str | Path) -> Engine:
    """Load ``artifact`` (.onnx or .pte) in its host runtime."""
    path = Path(artifact)
    if not path.exists():
        raise MetaSRError(f"artifact {path} does not exist; run metasr-export first")
    kind = HOST_RUNNABLE.get(path.suffix)
    if kind is None:
        raise MetaSRError(f"{path.name} cannot run on this host (Core ML needs macOS); use a .onnx or .pte artifact")
    manifest = read_manifest(path)
    run_fn = _onnx_runner(path, manifest) if kind == "onnxruntime" else _executorch_runner(path)
    return Engine(path, kind, manifest, run_fn)


def _onnx_runner(path: Path, manifest: dict[str, Any]) -> Callable[..., torch.Tensor]:
    import onnxruntime as ort

    if manifest["target"] == "onnx-qnn":  # QDQ models run where they will on the phone: the QNN HTP (emulated)
        from metasr.export.onnx_qnn import open_session

        session = open_session(path, manifest.get("context_model", {}).get("soc_model"))
    else:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    names = input_names(manifest)

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["output"], feeds(names, inputs))[0])

    return run


def _executorch_runner(path: Path) -> Callable[..., torch.Tensor]:
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(path)
    methods: dict[tuple[int, int], Any] = {}

    def run(image: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        size = (image.shape[2], image.shape[3])
        if size not in methods:
            names = program.method_names
            name = "forward" if f"forward_{size[0]}x{size[1]}" not in names else f"forward_{size[0]}x{size[1]}"
            methods[size] = program.load_method(name)
        return methods[size].execute([t.contiguous() for t in (image, *others)])[0]

    return run
