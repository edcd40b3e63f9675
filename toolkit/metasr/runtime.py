"""Run an exported artifact on this host in its own runtime (ONNX Runtime, ExecuTorch)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from metasr.errors import MetaSRError
from metasr.exporter.host import REEXPORT
from metasr.exporter.registry import host_suffixes, target_module, targets_writing
from metasr.quiet import one_line
from metasr.schemas import MANIFEST_VERSION, check

if TYPE_CHECKING:
    from metasr.exporter.stages import TargetModule
    from metasr.models.routed import RoutedDispatch


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
    writers = targets_writing(artifact.suffix)
    if not writers:
        suffix = f"suffix '{artifact.suffix}'" if artifact.suffix else "no suffix"
        runnable = " or ".join(host_suffixes())
        raise MetaSRError(f"{artifact.name} has {suffix}, not a known artifact type; pass a {runnable} artifact")
    if not any(t.HOST_RUNTIME for t in writers):
        runnable = " or ".join(host_suffixes())
        raise MetaSRError(
            f"{artifact.name} cannot run on this host ({writers[0].NO_HOST}); use a {runnable} artifact here"
        )
    manifest = read_manifest(artifact)
    if manifest["target"] not in [t.NAME for t in writers]:
        raise MetaSRError(
            f"{artifact.name}'s manifest says target {manifest['target']}, which does not write {artifact.suffix} "
            f"files; {REEXPORT}"
        )
    return manifest


def open_engine(artifact: str | Path, manifest: dict[str, Any] | None = None) -> Engine:
    """Load ``artifact`` in its host runtime; a file it cannot load is a one-line MetaSRError.

    ``manifest``: what :func:`artifact_manifest` returned for it, when the caller has read it already.
    """
    path = Path(artifact)
    manifest = artifact_manifest(path) if manifest is None else manifest
    target = target_module(manifest["target"])
    if "routing" in manifest:
        routing = _routed_functions(path, manifest, target)
        return Engine(path, target.HOST_RUNTIME, manifest, routing.run, routing)
    run = target.open_function(path, manifest, "forward", input_names(manifest))
    return Engine(path, target.HOST_RUNTIME, manifest, run)


def _routed_functions(path: Path, manifest: dict[str, Any], target: TargetModule) -> RoutedDispatch:
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
    router = target.open_function(path.parent / routing["router"]["file"], manifest, "router", router_names)
    experts = [
        target.open_function(path.parent / e["file"], manifest, e["function"], ("image",)) for e in routing["experts"]
    ]
    return RoutedDispatch(router, experts, routing["tile"], routing["thumbnail"], int(manifest["scale"]))
