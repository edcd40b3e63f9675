"""Safe loading and deterministic, atomic saving of tensor files (safetensors, or torch files with weights_only):
nothing from a user's path is ever executed, and non-finite weights are refused."""

from __future__ import annotations

import json
import pickle
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from metasr.atomic import atomic_path
from metasr.errors import MetaSRError
from metasr.quiet import first_line


def shipped_weights(name: str) -> Path:
    """Path of the file ``name`` in the package's ``weights`` folder (it may not exist)."""
    return Path(str(resources.files("metasr") / "weights" / name))


def shipped_teacher_path() -> Path:
    """Where the package keeps the trained x2 diffusion teacher (float16 weights)."""
    return shipped_weights("teacher_x2.safetensors")


def save_state(state: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write tensors (and string metadata) as safetensors, atomically (temp file, then rename).

    The same tensors and metadata always give the same bytes (see :func:`_sorted_header`).
    """
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    data = save(tensors, metadata=metadata)
    header, start = _sorted_header(data)
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        file.write(header)
        file.write(memoryview(data)[start:])  # the tensor bytes, not copied again


def _sorted_header(data: bytes) -> tuple[bytes, int]:
    """The length prefix and header of safetensors ``data`` with its metadata keys sorted; where its tensors start.

    safetensors writes the metadata from a hash map whose order changes from process to process, so two
    identical saves could differ in the header. Tensor entries keep their order; their offsets are relative to
    the data section, which follows unchanged.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    if "__metadata__" in header:
        header = {"__metadata__": dict(sorted(header.pop("__metadata__").items())), **header}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header with spaces to 8-byte alignment
    return len(text).to_bytes(8, "little") + text, 8 + size


def load_weights(module: torch.nn.Module, path: str | Path) -> dict[str, str]:
    """Load safetensors/torch weights into ``module``, refusing missing or mis-shaped tensors; returns metadata."""
    state, metadata = read_state(path)
    load_checked(module, state, path)
    return metadata


def load_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """``module.load_state_dict(state)``, raising a one-line MetaSRError for missing, extra or mis-shaped tensors."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        problem = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {unexpected[:3]}"
            if unexpected
            else f"shape of {wrong[:3]}"
        )
        raise MetaSRError(
            f"checkpoint {path} does not fit {type(module).__name__} ({problem}); pass weights trained for this model"
        )
    module.load_state_dict(state)


def read_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read tensors and metadata without executing code; corrupt or pickled files raise MetaSRError."""
    path = Path(path)
    if not path.is_file():
        raise MetaSRError(f"checkpoint {path} does not exist; pass an existing .safetensors or .pt file")
    if path.suffix == ".safetensors":
        return _finite(_read_safetensors(path), path)
    return _finite((_read_torch(path), {}), path)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return load_file(str(path)), metadata
    except (SafetensorError, OSError, ValueError, RuntimeError, OverflowError, MemoryError) as exc:
        raise MetaSRError(
            f"checkpoint {path} is corrupt or truncated ({first_line(exc)}); re-download or re-export it"
        ) from exc


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    """A torch file's state dict, unpickled with ``weights_only`` (only tensors and plain containers)."""
    corrupt = f"checkpoint {path} is not a torch file, or corrupt or truncated"
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # no refused object: random bytes, a broken pickle stream
            raise MetaSRError(f"{corrupt} ({first_line(exc)}); re-download or re-save it") from exc
        raise MetaSRError(
            f"checkpoint {path} holds arbitrary Python objects and was refused (never executed); "
            "save plain weights with safetensors or torch.save(model.state_dict())"
        ) from exc
    except Exception as exc:  # weights_only ran no code; damaged bytes surface as any of a dozen error types
        raise MetaSRError(f"{corrupt} ({first_line(exc)}); re-download or re-save it") from exc
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise MetaSRError(f"checkpoint {path} is not a state dict of tensors; save model.state_dict()")
    return obj


def _finite(
    loaded: tuple[dict[str, torch.Tensor], dict[str, str]], path: Path
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``loaded`` unchanged, once every floating-point tensor is checked to hold only finite values."""
    for name, tensor in loaded[0].items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
            raise MetaSRError(
                f"checkpoint {path} has {bad} values in '{name}' (a diverged run?); use an earlier checkpoint"
            )
    return loaded


def json_metadata(metadata: dict[str, str], key: str, path: str | Path) -> object:
    """The JSON value stored under ``key`` in a checkpoint's metadata; malformed JSON raises MetaSRError."""
    try:
        return json.loads(metadata[key])
    except (ValueError, RecursionError) as exc:
        raise MetaSRError(f"checkpoint {path}: metadata '{key}' is not valid JSON; re-save the checkpoint") from exc
