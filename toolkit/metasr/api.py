"""The Python API: export, run and upscale with the same stages, checks and manifests as the commands.

>>> import metasr
>>> result = metasr.export("onnx", out="artifacts")          # the x2 default, validated, with report + manifest
>>> engine = metasr.open_artifact(result.artifact)            # runs it in its own runtime
>>> picture = metasr.upscale(Image.open("photo.png"))        # the float default, tiled like the apps
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from metasr import model_zoo
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import export as run_export
from metasr.exporter.pipeline import resolve_recipe
from metasr.exporter.registry import TARGETS
from metasr.exporter.stages import ExportResult, LoadedModel
from metasr.exporter.user_model import wrap_user_model
from metasr.model_zoo import get_model, list_models, model_card
from metasr.models import MetaSRStudent
from metasr.models.metasr import MetaSR
from metasr.recipes import Recipe, with_overrides
from metasr.runtime import Engine, open_engine
from metasr.upscaling.model import load_upscaler
from metasr.upscaling.tiling import upscale_strips

__all__ = ["export", "get_model", "list_models", "list_targets", "model_card", "open_artifact", "upscale"]

ModelSpec = str | Path | torch.nn.Module | None  # a registered name, a checkpoint file, any SR nn.Module, or None
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name not in ("target", "options"))


def list_targets() -> list[str]:
    """The export targets, in the order ``--target all`` runs them."""
    return list(TARGETS)


def export(
    target: str,
    *,
    model: ModelSpec = None,
    recipe: str | Path | None = None,
    out: str | Path = "artifacts",
    on_stage: Callable[[str], None] | None = None,
    **overrides: Any,
) -> ExportResult:
    """Export ``model`` (default: the shipped default for the recipe's scale) to ``target``.

    ``recipe`` is a recipe file or a bundled recipe's name (default: the target's own). ``overrides`` replace
    recipe fields (``scale``, ``input_sizes``, ``parity_floor_db``, ``latency_budget_ms``, ``tile``) or the
    target's options (``weights="int8"`` for Core ML, for example). The artifact, its report and manifest are
    written under ``out/<target>/``, atomically; any failure raises :class:`MetaSRError` and writes nothing.
    """
    base = resolve_recipe(target, recipe)
    loaded, checkpoint = _model(model)
    if loaded is not None and overrides.get("scale", loaded.model.scale) != loaded.model.scale:
        raise MetaSRError(f"the model is x{loaded.model.scale} but scale={overrides['scale']} was asked; drop one")
    if loaded is not None:
        overrides.setdefault("scale", loaded.model.scale)
    return run_export(_apply(base, overrides), out, checkpoint=checkpoint, loaded=loaded, on_stage=on_stage)


def open_artifact(path: str | Path) -> Engine:
    """Load an exported ``.onnx`` or ``.pte`` with the manifest beside it; ``engine.run(image)`` upscales."""
    return open_engine(Path(path))


def upscale(
    image: Image.Image | np.ndarray,
    *,
    model: str | Path | None = None,
    artifact: str | Path | None = None,
    scale: int | None = None,
    strength: float | None = None,
    tile: int | None = None,
    overlap: int | None = None,
) -> Image.Image | np.ndarray:
    """Upscale one RGB image (a PIL image, or an (H, W, 3) uint8/uint16 array), tiled and blended like the apps.

    ``model`` is a registered name or a checkpoint file (default: the shipped default); ``artifact`` runs an
    exported artifact instead. The result has the input's type (and dtype for arrays).
    """
    rgb = _rgb(image)
    checkpoint = None
    if isinstance(model, str) and model in model_zoo.MODELS:
        card = model_zoo.model_card(model)
        if scale is not None and scale != card.scale:
            raise MetaSRError(f"{model} is a x{card.scale} model but scale={scale} was asked; drop one")
        checkpoint, scale = card.path, card.scale
    elif model is not None:
        checkpoint = Path(model)
    upscaler = load_upscaler(
        artifact=Path(artifact) if artifact else None,
        checkpoint=checkpoint,
        scale=scale,
        tile=tile,
        overlap=overlap,
        strength=strength,
    )
    plan = upscaler.plan(*rgb.shape[:2])
    rows = np.concatenate([strip for _, strip in upscale_strips(rgb, plan, upscaler.run)])
    peak = np.iinfo(rgb.dtype).max
    result = np.clip(np.rint(rows * peak), 0, peak).astype(rgb.dtype)
    return Image.fromarray(result) if isinstance(image, Image.Image) else result


def _model(model: ModelSpec) -> tuple[LoadedModel | None, Path | None]:
    """(an in-memory model, or None) and (a checkpoint path, or None) for the export pipeline."""
    if model is None:
        return None, None
    if isinstance(model, torch.nn.Module):
        if isinstance(model, MetaSR | MetaSRStudent):
            return LoadedModel(model.eval(), f"module:{type(model).__name__}"), None
        wrapped = wrap_user_model(model)
        return LoadedModel(wrapped, f"module:{wrapped.class_name}"), None
    if isinstance(model, str) and model in model_zoo.MODELS:
        card = model_zoo.model_card(model)
        return LoadedModel(get_model(model), f"bundled:{card.file}"), None
    if isinstance(model, str | Path) and Path(model).is_file():
        return None, Path(model)
    if isinstance(model, str) and not Path(model).suffix:
        model_zoo.model_card(model)  # raises, naming the nearest registered model
    raise MetaSRError(
        f"model {model!r} is not a registered model (metasr.list_models()), a checkpoint file or an nn.Module"
    )


def _apply(recipe: Recipe, overrides: dict[str, Any]) -> Recipe:
    """``recipe`` with recipe-field and target-option overrides; an unknown name raises with the nearest."""
    options = {f.name for f in dataclasses.fields(recipe.options)} if recipe.options is not None else set()
    unknown = sorted(set(overrides) - set(RECIPE_FIELDS) - options)
    if unknown:
        near = difflib.get_close_matches(unknown[0], [*RECIPE_FIELDS, *options], n=1)
        hint = f"did you mean '{near[0]}'?" if near else "valid: " + ", ".join([*RECIPE_FIELDS, *sorted(options)])
        raise MetaSRError(f"unknown export option '{unknown[0]}' for {recipe.target}; {hint}")
    fields = {k: v for k, v in overrides.items() if k in RECIPE_FIELDS}
    if "input_sizes" in fields:
        fields["input_sizes"] = tuple(tuple(int(side) for side in size) for size in fields["input_sizes"])
    chosen = {k: v for k, v in overrides.items() if k in options}
    if chosen:
        try:
            fields["options"] = dataclasses.replace(recipe.options, **chosen)
        except (TypeError, ValueError) as exc:
            raise MetaSRError(f"{recipe.target}: bad option value ({exc})") from exc
    return with_overrides(recipe, **fields)


def _rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8/uint16 pixels of ``image``; other modes and shapes are refused in one line."""
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "L", "RGBA", "P"):
            raise MetaSRError(f"image mode {image.mode} is not supported; convert it with image.convert('RGB')")
        if image.mode == "RGBA":
            raise MetaSRError("image has an alpha channel; upscale image.convert('RGB') (metasr-upscale keeps alpha)")
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise MetaSRError(f"image is a {type(image).__name__}; pass a PIL image or an (H, W, 3) numpy array")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.uint16):
        raise MetaSRError(f"array of shape {image.shape} and dtype {image.dtype}; pass (H, W, 3) uint8 or uint16")
    if min(image.shape[:2]) < 1:
        raise MetaSRError(f"image of shape {image.shape} is empty")
    return np.ascontiguousarray(image)
