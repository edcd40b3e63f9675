"""Run an exported artifact on this host in its own runtime (ONNX Runtime, ExecuTorch)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from metasr.errors import MetaSRError
from metasr.quant.calibration import feeds
from metasr.quiet import one_line, quiet_native
from metasr.schemas import MANIFEST_VERSION, check

if TYPE_CHECKING:
    from metasr.models.routed import RoutedDispatch

HOST_RUNNABLE = {".onnx": "onnxruntime", ".pte": "executorch"}
COREML_SUFFIXES = {".mlpackage", ".mlmodel", ".mlmodelc"}
REEXPORT = "re-export the artifact with metasr-export"


@dataclass
class Engine:
    """A loaded artifact: ``run(image[, strength])`` maps (1,3,H,W) in [0,1] to (1,3,sH,sW)."""

    path: Path
    runtime: str
    manifest: dict[str, Any]
    run_fn: Callable[..., torch.Tensor]  # the artifact's inputs in manifest order
    routing: RoutedDispatch | None = None  # a routed artifact's router and experts, each runnable on its own

    @property
    def scale(self) -> int:
        return int(self.manifest["scale"])

    @property
    def static_sizes(self) -> list[tuple[int, int]] | None:
        """The input sizes the artifact accepts, or None when height and width are free (whole metadata cells)."""
        return static_sizes(self.manifest)

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
        return self.run_fn(image, self._strength(strength))

    def route(self, image: torch.Tensor, strength: torch.Tensor | None = None) -> torch.Tensor:
        """A routed artifact's expert index per routing tile of ``image``, (1, H / tile, W / tile)."""
        if self.routing is None:
            raise MetaSRError(f"{self.path.name} is not a routed artifact; it has no routes to show")
        return self.routing.route(image, self._strength(strength))

    def _strength(self, strength: torch.Tensor | None) -> torch.Tensor:
        return default_strength(self.manifest) if strength is None else strength


def input_names(manifest: dict[str, Any]) -> tuple[str, ...]:
    """The artifact's inputs, in the order it takes them."""
    return tuple(entry["name"] for entry in manifest["inputs"])


def default_strength(manifest: dict[str, Any]) -> torch.Tensor:
    """The manifest's default ``strength`` input (-1: use the estimated degradation degree), shape (1, 1, 1, 1)."""
    spec = next(entry for entry in manifest["inputs"] if entry["name"] == "strength")
    return torch.full(spec["shapes"][0], float(spec["default"]))


def static_sizes(manifest: dict[str, Any]) -> list[tuple[int, int]] | None:
    """The (H, W) inputs a static-shape artifact takes; None when ``dynamic_size`` leaves them free."""
    if "dynamic_size" in manifest:
        return None
    return [(shape[2], shape[3]) for shape in manifest["inputs"][0]["shapes"]]


def takes_size(manifest: dict[str, Any], size: tuple[int, int]) -> bool:
    """Whether the artifact accepts an (H, W) image input."""
    sizes = static_sizes(manifest)
    if sizes is not None:
        return tuple(size) in sizes
    free = manifest["dynamic_size"]
    return all(side % free["multiple_of"] == 0 and free["min"] <= side <= free["max"] for side in size)


def allowed_sizes(manifest: dict[str, Any]) -> str:
    """The image sizes the artifact accepts, in words: "64x96, 128x128" or the dynamic rule."""
    sizes = static_sizes(manifest)
    if sizes is not None:
        return ", ".join(f"{h}x{w}" for h, w in sizes)
    free = manifest["dynamic_size"]
    return f"sides that are multiples of {free['multiple_of']} from {free['min']} to {free['max']}"


def read_manifest(artifact: Path) -> dict[str, Any]:
    """The manifest.json written beside ``artifact`` by metasr-export, checked against the manifest schema.

    Whatever the file holds, the only exception is a one-line MetaSRError.
    """
    path = artifact.parent / "manifest.json"
    if not path.is_file():
        raise MetaSRError(f"no manifest.json beside {artifact}; export the artifact with metasr-export")
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:  # unreadable, not UTF-8, not JSON, nested too deep
        raise MetaSRError(f"{path} is not a JSON manifest ({one_line(exc)}); {REEXPORT}") from exc
    if not isinstance(manifest, dict):
        raise MetaSRError(f"{path} holds a JSON {type(manifest).__name__}, not a manifest object; {REEXPORT}")
    if manifest.get("schema_version") != MANIFEST_VERSION:
        raise MetaSRError(
            f"{path} is manifest version {one_line(repr(manifest.get('schema_version')), 40)}, not {MANIFEST_VERSION} "
            "(written by an older metasr-export); re-export it with metasr-export"
        )
    try:
        check(manifest, "manifest")
    except (MetaSRError, RecursionError) as exc:
        raise MetaSRError(f"{path}: {one_line(exc)}; {REEXPORT}") from exc
    image = manifest["inputs"][0]
    if image["name"] != "image" or any(len(shape) != 4 for shape in image["shapes"]):
        raise MetaSRError(f"{path}: the first input must be the image, with shapes [1, 3, H, W]; {REEXPORT}")
    if "dynamic_size" in manifest and manifest["dynamic_size"]["min"] > manifest["dynamic_size"]["max"]:
        raise MetaSRError(f"{path}: dynamic_size has min above max; {REEXPORT}")
    return manifest


def artifact_manifest(artifact: Path) -> dict[str, Any]:
    """The manifest of an artifact this host can run; a missing file or another kind of artifact is refused."""
    if not artifact.exists():
        raise MetaSRError(f"artifact {artifact} does not exist; run metasr-export first")
    if artifact.suffix in COREML_SUFFIXES:
        raise MetaSRError(
            f"{artifact.name} cannot run on this host (Core ML needs macOS); use a .onnx or .pte artifact"
        )
    if artifact.suffix not in HOST_RUNNABLE:
        suffix = f"suffix '{artifact.suffix}'" if artifact.suffix else "no suffix"
        raise MetaSRError(f"{artifact.name} has {suffix}, not a known artifact type; pass a .onnx or .pte artifact")
    return read_manifest(artifact)


def open_engine(artifact: str | Path, manifest: dict[str, Any] | None = None) -> Engine:
    """Load ``artifact`` (.onnx or .pte) in its host runtime; a file it cannot load is a one-line MetaSRError.

    ``manifest``: what :func:`artifact_manifest` returned for it, when the caller has read it already.
    """
    path = Path(artifact)
    manifest = artifact_manifest(path) if manifest is None else manifest
    kind = HOST_RUNNABLE[path.suffix]
    if "routing" in manifest:
        routing = _routed_functions(path, manifest)
        return Engine(path, kind, manifest, routing.run, routing)
    return Engine(path, kind, manifest, _function_runner(path, manifest, "forward", input_names(manifest)))


def _function_runner(
    path: Path, manifest: dict[str, Any], function: str, names: tuple[str, ...]
) -> Callable[..., torch.Tensor]:
    """Run one function of an artifact: its own ``.onnx`` file, or its methods in a ``.pte``."""
    if HOST_RUNNABLE[path.suffix] == "onnxruntime":
        return _onnx_runner(path, manifest, names)
    _check_executorch(path, manifest)
    return _executorch_runner(path, function)


def _routed_functions(path: Path, manifest: dict[str, Any]) -> RoutedDispatch:
    """A routed artifact's router and experts, each loaded from the file its manifest names, dispatched as the
    manifest tells an app."""
    from metasr.models.routed import RoutedDispatch

    routing = manifest["routing"]
    for entry in [routing["router"], *routing["experts"]]:
        file = path.parent / entry["file"]
        if Path(entry["file"]).name != entry["file"] or file.suffix != path.suffix or not file.is_file():
            raise MetaSRError(
                f"{path.name}'s manifest names function file {entry['file']!r}, which is not beside it; "
                f"copy the whole artifact folder or {REEXPORT}"
            )
    router_names = tuple(entry["name"] for entry in routing["router"]["inputs"])
    router = _function_runner(path.parent / routing["router"]["file"], manifest, "router", router_names)
    experts = [
        _function_runner(path.parent / e["file"], manifest, e["function"], ("image",)) for e in routing["experts"]
    ]
    return RoutedDispatch(router, experts, routing["tile"], routing["thumbnail"], int(manifest["scale"]))


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


def _check_executorch(path: Path, manifest: dict[str, Any]) -> None:
    """Refuse what would crash or fail inside ExecuTorch: a file that is no program, a backend it lacks.

    ExecuTorch logs a bad file identifier byte for byte, and non-UTF-8 bytes there abort the whole process.
    """
    with open(path, "rb") as f:
        identifier = f.read(8)[4:]
    if not re.fullmatch(rb"ET\d\d", identifier):
        raise MetaSRError(f"{path.name} is not an ExecuTorch program (no ET file identifier); {REEXPORT}")
    if manifest["target"] == "executorch-vulkan" and not _has_backend("VulkanBackend"):
        raise MetaSRError(
            f"{path.name} is a Vulkan artifact and needs a Vulkan-capable ExecuTorch runtime (an Android phone), "
            "which this host's ExecuTorch lacks; use the executorch-xnnpack or onnx artifact here"
        )


def _has_backend(name: str) -> bool:
    from executorch.runtime import Runtime

    return Runtime.get().backend_registry.is_available(name)


def _onnx_runner(path: Path, manifest: dict[str, Any], names: tuple[str, ...]) -> Callable[..., torch.Tensor]:
    """Run ``path`` in ONNX Runtime, its threads parked as soon as a run ends: a routed artifact alternates
    between sessions, and a camera app runs other work between calls; threads left spinning starve whatever
    runs next (a spinning plain session made the next session's 35-ms call at a 256-px tile take 74 ms on two
    cores, and parked threads cost the session itself nothing measurable)."""
    import onnxruntime as ort

    if manifest["target"] == "onnx-qnn":  # QDQ models run where they will on the phone: the QNN HTP (emulated)
        from metasr.exporter.onnx_qnn import open_session

        with loading(path, "ONNX Runtime (QNN)"):
            session = open_session(path, manifest.get("context_model", {}).get("soc_model"))
    else:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        with loading(path, "ONNX Runtime"):
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["output"], feeds(names, inputs))[0])

    return run


def _executorch_runner(path: Path, function: str) -> Callable[..., torch.Tensor]:
    """Run the method of ``function`` for the input's size: ``function`` for the first size, else
    ``function_HxW``."""
    from executorch.runtime import Runtime

    with loading(path, "ExecuTorch"):
        program = Runtime.get().load_program(path)
    methods: dict[tuple[int, int], Any] = {}

    def run(image: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        size = (image.shape[2], image.shape[3])
        with loading(path, "ExecuTorch"):  # a delegate this runtime lacks fails here, not at load_program
            if size not in methods:
                names = program.method_names
                sized = f"{function}_{size[0]}x{size[1]}"
                name = sized if sized in names else function
                with quiet_native():  # XNNPACK's cpuinfo probes ARM-only /sys files and says so on stderr
                    methods[size] = program.load_method(name)
            return methods[size].execute([t.contiguous() for t in (image, *others)])[0]

    return run
