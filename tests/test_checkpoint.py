"""Checkpoints: safetensors round trip, torch state dicts, and refusal of corrupt or pickled files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from metasr.checkpoint import load_student, save_student
from metasr.errors import MetaSRError
from metasr.model_zoo import default_model, model_card
from metasr.models import MetaSRStudent
from tests.conftest import PicklePayload


def test_safetensors_round_trip(tmp_path: Path, small_student: MetaSRStudent) -> None:
    path = tmp_path / "s.safetensors"
    save_student(small_student, path)
    loaded = load_student(path)
    assert loaded.config == small_student.config
    image = torch.rand(1, 3, 12, 12)
    assert torch.equal(loaded(image), small_student(image))


def test_torch_state_dict_infers_config(tmp_path: Path, small_student: MetaSRStudent) -> None:
    path = tmp_path / "s.pt"
    torch.save(small_student.state_dict(), path)
    assert load_student(path).config == small_student.config


def test_scale_mismatch_is_named(tmp_path: Path, small_student: MetaSRStudent) -> None:
    path = tmp_path / "s.safetensors"
    save_student(small_student, path)
    with pytest.raises(MetaSRError, match=r"is a x2 model but x4 was asked \(--scale or the recipe.s scale\)"):
        load_student(path, scale=4)


def test_truncated_safetensors_is_refused(tmp_path: Path, small_student: MetaSRStudent) -> None:
    path = tmp_path / "s.safetensors"
    save_student(small_student, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MetaSRError, match="corrupt or truncated"):
        load_student(path)


def test_truncated_torch_file_is_refused(tmp_path: Path, small_student: MetaSRStudent) -> None:
    path = tmp_path / "s.pt"
    torch.save(small_student.state_dict(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(MetaSRError, match="corrupt or truncated"):
        load_student(path)


def test_pickle_checkpoint_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": PicklePayload(marker)}, path)
    with pytest.raises(MetaSRError, match="refused \\(never executed\\)"):
        load_student(path)
    assert not marker.exists()


def test_not_a_student_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(MetaSRError, match="pass a MetaSR student checkpoint"):
        load_student(path)


@pytest.mark.parametrize("scale", [2, 4])
def test_bundled_weights_load_and_are_small(scale: int) -> None:
    from metasr.assembly import load_metasr

    path = default_model(scale).path
    assert path.stat().st_size < 2 * 1024 * 1024
    assert load_metasr(path, scale).scale == scale
    assert load_student(model_card(f"student-x{scale}").path, scale).config.scale == scale


def test_plain_student_loads_as_the_same_sparse_graph_every_time(tmp_path: Path) -> None:
    from metasr.assembly import load_metasr

    path = tmp_path / "plain.safetensors"
    save_student(MetaSRStudent(), path)
    rng = torch.get_rng_state()
    first, second = load_metasr(path), load_metasr(path)
    assert torch.equal(torch.get_rng_state(), rng)  # initialisation seeds stay local
    assert first.orchestrator.hard and second.orchestrator.hard
    pairs = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_saves_are_byte_identical_whatever_the_metadata_order(tmp_path: Path) -> None:
    from metasr.safe_weights import read_state, save_state

    state = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(3, dtype=torch.float16)}
    metadata = {f"key{i}": f"value {i} é" for i in range(8)}  # safetensors' own order is a per-process hash
    files = []
    for i, order in enumerate([sorted(metadata), sorted(metadata, reverse=True)] * 3):
        save_state(state, tmp_path / f"{i}.safetensors", {key: metadata[key] for key in order})
        files.append((tmp_path / f"{i}.safetensors").read_bytes())
    assert all(data == files[0] for data in files)
    tensors, read = read_state(tmp_path / "0.safetensors")
    assert read == metadata and all(torch.equal(tensors[k], v) for k, v in state.items())
