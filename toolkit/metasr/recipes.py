"""Declarative export recipes: YAML files validated against typed schemas.

A recipe has common fields (scale, input sizes, parity floor, tiling) and an ``options`` block whose
schema belongs to the target (each target module defines an ``Options`` dataclass). Unknown keys and
bad values raise :class:`MetaSRError` naming the key and the nearest valid one.
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from metasr.errors import MetaSRError
from metasr.metadata.base import CELL

EXPORT_RECIPES_DIR = Path(__file__).resolve().parent / "exporter" / "recipes"  # package data: works from a wheel
MIN_CELLS = 2  # the smallest input the exported graphs take, in metadata cells per side
MAX_SIDE = 8192  # the largest input side any target is exported and checked for
MIN_TILE = 16


class RecipeValueError(ValueError):
    """A recipe value outside its allowed range; the loader prefixes the file and key."""


@dataclass(frozen=True)
class Tile:
    """Tiling an app should use for frames larger than the model input."""

    size: int = 256
    overlap: int = 16

    def __post_init__(self) -> None:
        if not MIN_TILE <= self.size <= MAX_SIDE:
            raise RecipeValueError(f"tile size {self.size} is outside [{MIN_TILE}, {MAX_SIDE}]; use e.g. 256")
        if self.overlap < 0 or 2 * self.overlap >= self.size:
            raise RecipeValueError(
                f"tile overlap {self.overlap} must be >= 0 and under half the tile size {self.size}; use e.g. 16"
            )


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

    def __post_init__(self) -> None:
        if self.scale not in (2, 4):
            raise RecipeValueError(f"scale {self.scale} is not supported; use 2 or 4")
        if not self.input_sizes:
            raise RecipeValueError("input_sizes is empty; list at least one size, e.g. [[256, 256]]")
        for h, w in self.input_sizes:
            check_input_size(h, w)
        if not math.isfinite(self.parity_floor_db) or self.parity_floor_db < 0:
            raise RecipeValueError(f"parity_floor_db {self.parity_floor_db} must be a finite dB value >= 0, e.g. 40")
        budget = self.latency_budget_ms
        if budget is not None and not (math.isfinite(budget) and budget > 0):
            raise RecipeValueError(f"latency_budget_ms {budget} must be a positive number of ms, or omitted")

    @property
    def input_size(self) -> tuple[int, int]:
        """The default (first) input size, height x width."""
        return self.input_sizes[0]


def check_input_size(h: int, w: int) -> None:
    """MetaSR describes the frame on metadata cells: every input side is a whole number of them, at least
    ``MIN_CELLS``, at most ``MAX_SIDE`` pixels."""
    if max(h, w) > MAX_SIDE:
        raise RecipeValueError(
            f"input size {h}x{w} exceeds {MAX_SIDE} pixels per side; export at most {MAX_SIDE} and tile larger frames"
        )
    if h % CELL or w % CELL or min(h, w) < MIN_CELLS * CELL:
        raise RecipeValueError(
            f"input size {h}x{w} does not fit MetaSR's {CELL}x{CELL}-pixel metadata cells; "
            f"use multiples of {CELL}, at least {MIN_CELLS * CELL}x{MIN_CELLS * CELL} (e.g. {_fit(h)}x{_fit(w)})"
        )


def _fit(side: int) -> int:
    return min(max(MIN_CELLS, round(side / CELL)) * CELL, MAX_SIDE)


def bundled_recipes() -> list[str]:
    """Names of the export recipes that ship with the package (``<target>`` defaults and their variants)."""
    return sorted(p.stem for p in EXPORT_RECIPES_DIR.glob("*.yaml"))


def default_recipe_path(target: str) -> Path:
    return EXPORT_RECIPES_DIR / f"{target}.yaml"


def recipe_path(recipe: str | Path) -> Path:
    """A recipe file, or the bundled recipe of that name (``coreml-w8a8`` or ``coreml-w8a8.yaml``)."""
    path = Path(recipe)
    if path.is_file() or path.parent != Path("."):
        return path
    bundled = EXPORT_RECIPES_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if bundled.is_file():
        return bundled
    near = difflib.get_close_matches(path.stem, bundled_recipes(), n=1)
    hint = f"did you mean '{near[0]}'?" if near else "metasr-export --list shows the bundled recipes"
    raise MetaSRError(f"export recipe '{recipe}' is neither a file nor a bundled recipe; {hint}")


def recipe_target(path: str | Path) -> str:
    """The ``target`` key of an export recipe, read before its options can be checked."""
    target = load_mapping(path, "export").get("target")
    if not isinstance(target, str):
        raise MetaSRError(f"export recipe {path} names no target; add e.g. 'target: onnx' or pass --target")
    return target


def load_recipe(path: str | Path, options_type: type | None = None) -> Recipe:
    """Parse a recipe file; ``options_type`` is the target's Options dataclass."""
    return parse_recipe(load_mapping(path, "export", "or omit --recipe"), options_type, source=str(path))


def parse_recipe(raw: dict[str, Any], options_type: type | None, source: str = "recipe") -> Recipe:
    """Validate a recipe mapping against :class:`Recipe` and the target's options schema."""
    raw = dict(raw)
    options_raw = raw.pop("options", None) or {}
    recipe = _build(Recipe, raw, source)
    options = _build(options_type, options_raw, f"{source}: options") if options_type else None
    if hasattr(options, "calibration_strengths"):
        _check_strengths(options.calibration_strengths, f"{source}: options: calibration_strengths")
    return Recipe(**{**{f.name: getattr(recipe, f.name) for f in fields(Recipe)}, "options": options})


def with_overrides(recipe: Recipe, **overrides: Any) -> Recipe:
    """A copy of ``recipe`` with the non-None overrides applied (CLI flags win over the file)."""
    values = {f.name: getattr(recipe, f.name) for f in fields(Recipe)}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Recipe(**values)
    except RecipeValueError as exc:
        raise MetaSRError(str(exc)) from exc


def load_mapping(path: str | Path, kind: str, alternative: str = "") -> dict[str, Any]:
    """Read a YAML recipe file as a mapping, with one-line errors for a missing file or bad YAML.

    ``extends: base.yaml`` (a path relative to the recipe's folder) starts from that recipe's mapping; the
    file's own keys then replace the base's, nested mappings key by key.
    """
    return _load_extending(Path(path), kind, alternative, ())


def _load_extending(path: Path, kind: str, alternative: str, chain: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        raise MetaSRError(f"{kind} recipe {path} does not exist; pass an existing recipe file {alternative}".rstrip())
    raw = _read_yaml(path, kind)
    if not isinstance(raw, dict):
        raise MetaSRError(f"{kind} recipe {path} must be a mapping of keys to values")
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base or "\0" in base:
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


def _read_yaml(path: Path, kind: str) -> Any:
    """The YAML document in ``path``; unreadable, non-UTF-8, malformed or pathological files raise MetaSRError."""
    where = f"{kind} recipe {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise MetaSRError(f"{where} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc
    except OSError as exc:
        raise MetaSRError(f"{where} cannot be read ({exc.strerror}); check the path and its permissions") from exc
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise MetaSRError(f"{where} is not valid YAML{at} ({problem}); fix the syntax") from exc
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MetaSRError(f"{where} is not valid YAML ({first}); fix the syntax") from exc
    except RecursionError as exc:
        raise MetaSRError(f"{where} nests too deeply to read; a recipe needs only a few levels") from exc
    except (ValueError, OverflowError) as exc:  # e.g. a 5,000-digit integer, an escape beyond U+10FFFF
        raise MetaSRError(f"{where} holds a value YAML cannot convert ({exc}); fix that value") from exc


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
    for f in fields(cls):
        if f.name not in raw and f.default is MISSING and f.default_factory is MISSING:
            raise MetaSRError(f"{where}: missing key '{f.name}'; add it (e.g. {f.name}: ...)")
    hints = typing.get_type_hints(cls)
    values = {k: _coerce(hints[k], v, f"{where}: {k}") for k, v in raw.items()}
    try:
        return cls(**values)
    except RecipeValueError as exc:
        raise MetaSRError(f"{where}: {exc}") from exc


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
        number = float(value) if isinstance(value, float) or abs(value) < 2**1023 else math.inf
        if not math.isfinite(number):
            raise MetaSRError(f"{where}: expected a finite number, got {'nan' if number != number else 'inf'}")
        return number
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise MetaSRError(f"{where}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
