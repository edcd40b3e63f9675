"""Declarative export recipes: YAML files validated against typed schemas.

A recipe has common fields (scale, input sizes, parity floor, tiling) and an ``options`` block whose
schema belongs to the target (each target module defines an ``Options`` dataclass). Unknown keys and
bad values raise :class:`MetaSRError` naming the key and the nearest valid one.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from metasr.errors import MetaSRError

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


@dataclass(frozen=True)
class Tile:
    """Tiling an app should use for frames larger than the model input."""

    size: int = 256
    overlap: int = 16


@dataclass(frozen=True)
class Recipe:
    """Everything one export needs besides the model weights."""

    target: str
    scale: int = 2
    input_sizes: tuple[tuple[int, int], ...] = ((256, 256),)
    parity_floor_db: float = 40.0
    tile: Tile = field(default_factory=Tile)
    latency_budget_ms: float | None = None
    options: Any = None

    @property
    def input_size(self) -> tuple[int, int]:
        """The default (first) input size, height x width."""
        return self.input_sizes[0]


def default_recipe_path(target: str) -> Path:
    return RECIPES_DIR / f"{target}.yaml"


def load_recipe(path: str | Path, options_type: type | None = None) -> Recipe:
    """Parse a recipe file; ``options_type`` is the target's Options dataclass."""
    return parse_recipe(load_mapping(path, "export", "or omit --recipe"), options_type, source=str(path))


def parse_recipe(raw: dict[str, Any], options_type: type | None, source: str = "recipe") -> Recipe:
    """Validate a recipe mapping against :class:`Recipe` and the target's options schema."""
    raw = dict(raw)
    options_raw = raw.pop("options", None) or {}
    recipe = _build(Recipe, raw, source)
    options = _build(options_type, options_raw, f"{source}: options") if options_type else None
    if recipe.scale not in (2, 4):
        raise MetaSRError(f"{source}: scale {recipe.scale} is not supported; use 2 or 4")
    for h, w in recipe.input_sizes:
        if h < 8 or w < 8:
            raise MetaSRError(f"{source}: input size {h}x{w} is too small; use at least 8x8")
    if hasattr(options, "calibration_strengths"):
        _check_strengths(options.calibration_strengths, f"{source}: options: calibration_strengths")
    return Recipe(**{**{f.name: getattr(recipe, f.name) for f in fields(Recipe)}, "options": options})


def with_overrides(recipe: Recipe, **overrides: Any) -> Recipe:
    """A copy of ``recipe`` with the non-None overrides applied (CLI flags win over the file)."""
    values = {f.name: getattr(recipe, f.name) for f in fields(Recipe)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Recipe(**values)


def load_mapping(path: str | Path, kind: str, alternative: str = "") -> dict[str, Any]:
    """Read a YAML recipe file as a mapping, with one-line errors for a missing file or bad YAML.

    ``extends: base.yaml`` (a path relative to the recipe's folder) starts from that recipe's mapping; the
    file's own keys then replace the base's, nested mappings key by key.
    """
    return _load_extending(Path(path), kind, alternative, ())


def _load_extending(path: Path, kind: str, alternative: str, chain: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise MetaSRError(f"{kind} recipe {path} does not exist; pass a file from recipes/ {alternative}".rstrip())
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise MetaSRError(f"{kind} recipe {path} is not valid YAML ({first}); fix the syntax") from exc
    if not isinstance(raw, dict):
        raise MetaSRError(f"{kind} recipe {path} must be a mapping of keys to values")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise MetaSRError(f"{kind} recipe {path}: extends must name one recipe file, got {base!r}")
    base_path = (path.parent / base).resolve()
    chain = (*chain, path.resolve())
    if base_path in chain:
        raise MetaSRError(f"{kind} recipe {path} extends itself through {base}; remove one of the extends lines")
    if not base_path.is_file():
        raise MetaSRError(
            f"{kind} recipe {path} extends {base}, which does not exist; name a recipe relative to {path.parent}"
        )
    return _merged(_load_extending(base_path, kind, alternative, chain), raw)


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys applied; where both hold a mapping, merged key by key."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def build_dataclass(cls: type, raw: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, naming unknown keys (with the nearest valid one) and bad values."""
    return _build(cls, raw, where)


def _check_strengths(strengths: tuple[float, ...], where: str) -> None:
    """Calibration strengths: -1 (the estimated degree, what apps run by default) plus overrides in [0, 1]."""
    for s in strengths:
        if s != -1.0 and not 0.0 <= s <= 1.0:
            raise MetaSRError(f"{where}: {s:g} is not a strength; use -1 (the estimate) or values in [0, 1]")
    if -1.0 not in strengths:
        raise MetaSRError(f"{where}: include -1, the default strength apps run with, e.g. [-1, 0, 0.5, 1]")


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise MetaSRError(f"{where} must be a mapping, got {raw!r}")
    names = [f.name for f in fields(cls)]
    for key in raw:
        if key not in names:
            near = difflib.get_close_matches(str(key), names, n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"valid keys: {', '.join(names)}"
            raise MetaSRError(f"{where}: unknown key '{key}'; {hint}")
    hints = typing.get_type_hints(cls)
    values = {k: _coerce(hints[k], v, f"{where}: {k}") for k, v in raw.items()}
    return cls(**values)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in get_args(tp):
            return None
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value, where)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f"did you mean '{near[0]}'?" if near else "choose one of " + ", ".join(map(str, choices))
            raise MetaSRError(f"{where}: '{value}' is not allowed; {hint}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise MetaSRError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise MetaSRError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if is_dataclass(tp):
        return _build(tp, value, where)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise MetaSRError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
