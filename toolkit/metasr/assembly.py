"""Assemble the deployed :class:`MetaSR` graph and save/load it as one safetensors checkpoint.

A MetaSR checkpoint holds every weight (student, device extractors, orchestrator) plus, as string
metadata, the student config, the source names and the orchestrator config, so loading rebuilds the
exact graph; a routed checkpoint adds the router's centroids and its tile and thumbnail (the experts are
the student folded at each centroid, rebuilt on load), when some experts are plain, their student, and, when
a conv router decides, its weights. A
plain student checkpoint (the pre-orchestrator format) is wrapped with an identity orchestrator: its FiLM
heads are zero, so the output equals the plain student's. For deployment, :func:`load_graph` drops such an
orchestrator and returns the bare student, which computes the same output with none of the metadata work.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from metasr.checkpoint import CONFIG_KEY, check_scale, load_student, student_config
from metasr.errors import MetaSRError
from metasr.metadata import DEVICE_SOURCES, create_source
from metasr.models import MetaSRStudent, StudentConfig
from metasr.models.conv_router import ConvRouter
from metasr.models.metasr import MetaSR
from metasr.models.orchestrator import Orchestrator
from metasr.models.routed import RoutedMetaSR, TileRouter
from metasr.safe_weights import json_metadata, load_checked, read_state, save_state

SOURCES_KEY = "metasr.sources"
ORCHESTRATOR_KEY = "metasr.orchestrator"
ROUTING_KEY = "metasr.routing"
CENTROIDS = "routing.centroids"
PLAIN = "plain_student."  # prefix of a routed checkpoint's plain experts' student
CONV_ROUTER = "conv_router."  # prefix of a routed checkpoint's conv router


def build_metasr(
    student: MetaSRStudent, sources: tuple[str, ...] = DEVICE_SOURCES, orchestrator: dict | None = None
) -> MetaSR:
    """MetaSR around ``student`` with the device-grade extractors of ``sources`` (shipped weights)."""
    instances = [create_source(name) for name in sources]
    settings = dict(orchestrator or {})
    settings.pop("source_dims", None)
    settings.pop("stage_channels", None)
    orch = Orchestrator({s.name: s.dims for s in instances}, [student.config.channels] * student.num_stages, **settings)
    return MetaSR(student, {s.name: s.device() for s in instances}, orch)


def save_metasr(model: MetaSR, path: str | Path) -> None:
    """Write every weight and the configs needed to rebuild ``model``, atomically."""
    metadata = {
        CONFIG_KEY: json.dumps(model.student.config.to_dict(), sort_keys=True),
        SOURCES_KEY: json.dumps(model.orchestrator.sources),
        ORCHESTRATOR_KEY: json.dumps(model.orchestrator.config, sort_keys=True),
    }
    save_state(model.state_dict(), path, metadata)


def save_routed(model: RoutedMetaSR, path: str | Path) -> None:
    """Write the router's MetaSR, its centroids, its tile and thumbnail and each plain expert's student,
    atomically."""
    metasr, router = model.router.metasr, model.router
    routing: dict = {"tile": router.tile, "thumbnail": router.thumbnail}
    state = {**metasr.state_dict(), CENTROIDS: router.centroids}
    if model.plain:
        configs = [plain.config.to_dict() for plain in model.plain]
        routing |= {"plain_experts": list(model.plain_experts), "plain_configs": configs}
        for j, plain in enumerate(model.plain):
            state |= {f"{PLAIN}{j}.{k}": v for k, v in plain.state_dict().items()}
    if model.conv_router is not None:
        routing |= {"conv_router": {"width": model.conv_router.width}}
        state |= {CONV_ROUTER + k: v for k, v in model.conv_router.state_dict().items()}
    metadata = {
        CONFIG_KEY: json.dumps(metasr.student.config.to_dict(), sort_keys=True),
        SOURCES_KEY: json.dumps(metasr.orchestrator.sources),
        ORCHESTRATOR_KEY: json.dumps(metasr.orchestrator.config, sort_keys=True),
        ROUTING_KEY: json.dumps(routing, sort_keys=True),
    }
    save_state(state, path, metadata)


def load_metasr(path: str | Path, scale: int | None = None) -> MetaSR:
    """MetaSR from a MetaSR checkpoint, or a plain student checkpoint wrapped with an identity orchestrator.

    Either way the gates are sparse (inference form), and loading leaves the global RNG alone and gives
    identical weights every time: modules are initialised from a fixed seed before the weights replace
    them (the identity orchestrator keeps its initialisation).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = _load_metasr(path, scale)
    model.orchestrator.hard = True
    return model.eval()


def load_graph(path: str | Path, scale: int | None = None) -> RoutedMetaSR | MetaSR | MetaSRStudent:
    """The graph to deploy from ``path``: routed MetaSR, MetaSR, or the bare student when the orchestrator is
    the identity.

    An identity orchestrator (every FiLM head zero, as for a plain student checkpoint) modulates nothing,
    so the bare student gives exactly the same output without the extractors, decisions and FiLM.
    """
    _, metadata = read_state(path)
    if ROUTING_KEY in metadata:
        return load_routed(path, scale)
    model = load_metasr(path, scale)
    return model.student if model.orchestrator.is_identity() else model


def load_routed(path: str | Path, scale: int | None = None) -> RoutedMetaSR:
    """A routed MetaSR from a checkpoint written by :func:`save_routed`."""
    metasr = load_metasr(path, scale)
    state, metadata = read_state(path)
    routing = json_metadata(metadata, ROUTING_KEY, path)
    centroids = state.get(CENTROIDS)
    modulation = metasr.student.modulation_channels
    if not isinstance(routing, dict) or not {"tile", "thumbnail"} <= set(routing):
        raise MetaSRError(f"checkpoint {path}: metadata '{ROUTING_KEY}' lacks tile and thumbnail; re-save it")
    if centroids is None or centroids.ndim != 2 or centroids.shape[1] != modulation or len(centroids) < 1:
        raise MetaSRError(f"checkpoint {path}: '{CENTROIDS}' must be (experts, {modulation}); re-save it")
    plain = _plain_students(state, routing, path)
    try:
        tile, thumbnail = int(routing["tile"]), int(routing["thumbnail"])
        router = TileRouter(metasr, centroids, tile, thumbnail)
        conv = _conv_router(state, routing, tile, thumbnail, metasr.scale, path) if "conv_router" in routing else None
        return RoutedMetaSR(router, metasr.student, plain, routing.get("plain_experts", ()), conv).eval()
    except (TypeError, ValueError) as exc:
        raise MetaSRError(f"checkpoint {path}: its routing does not build ({exc}); re-save it") from exc


def _conv_router(
    state: dict[str, torch.Tensor], routing: dict, tile: int, thumbnail: int, scale: int, path: str | Path
) -> ConvRouter:
    """The conv router stored under ``conv_router.`` in a routed checkpoint."""
    weights = _prefixed(state, CONV_ROUTER)
    if "levels" not in weights or not isinstance(routing["conv_router"], dict):
        raise MetaSRError(f"checkpoint {path}: its conv router lacks its levels or settings; re-save it")
    width = int(routing["conv_router"].get("width", 16))
    router = ConvRouter(weights["levels"].flatten(), tile, thumbnail, scale, width)
    load_checked(router, weights, path)
    return router.eval()


def _plain_students(state: dict[str, torch.Tensor], routing: dict, path: str | Path) -> list[MetaSRStudent]:
    """The plain experts' students stored under ``plain_student.J.`` in a routed checkpoint (one per plain
    expert), or, as checkpoints before several plain students wrote it, one under ``plain_student.`` for all."""
    experts = routing.get("plain_experts") or []
    if "plain_configs" not in routing:  # the single-student form
        if not experts:
            return []
        plain = _student(routing.get("plain_config"), _prefixed(state, PLAIN), path)
        return [plain] * len(experts)
    configs = routing["plain_configs"]
    if not isinstance(configs, list) or len(configs) != len(experts):
        raise MetaSRError(f"checkpoint {path}: it needs one plain student config per plain expert; re-save it")
    return [_student(config, _prefixed(state, f"{PLAIN}{j}."), path) for j, config in enumerate(configs)]


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _student(config: object, weights: dict[str, torch.Tensor], path: str | Path) -> MetaSRStudent:
    """A plain expert's student from its stored config and weights."""
    try:
        plain = MetaSRStudent(StudentConfig(**config))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise MetaSRError(
            f"checkpoint {path}: a plain expert's student config does not build ({exc}); re-save it"
        ) from exc
    load_checked(plain, weights, path)
    return plain.eval()


def _load_metasr(path: str | Path, scale: int | None) -> MetaSR:
    state, metadata = read_state(path)
    state = {k: v for k, v in state.items() if k != CENTROIDS and not k.startswith((PLAIN, CONV_ROUTER))}
    if SOURCES_KEY not in metadata:
        return build_metasr(load_student(path, scale))
    if CONFIG_KEY not in metadata or ORCHESTRATOR_KEY not in metadata:
        raise MetaSRError(f"checkpoint {path} lacks its student or orchestrator config; re-save it with save_metasr")
    config = student_config(metadata, state, path)
    check_scale(path, config.scale, scale)
    sources = json_metadata(metadata, SOURCES_KEY, path)
    orchestrator = json_metadata(metadata, ORCHESTRATOR_KEY, path)
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise MetaSRError(f"checkpoint {path}: metadata '{SOURCES_KEY}' is not a list of source names; re-save it")
    if not isinstance(orchestrator, dict):
        raise MetaSRError(f"checkpoint {path}: metadata '{ORCHESTRATOR_KEY}' is not a mapping; re-save it")
    try:
        model = build_metasr(MetaSRStudent(config), tuple(sources), orchestrator)
    except (TypeError, ValueError, KeyError) as exc:
        raise MetaSRError(f"checkpoint {path}: its orchestrator config does not build ({exc}); re-save it") from exc
    load_checked(model, state, path)
    return model
