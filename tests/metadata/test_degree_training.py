"""Degree-estimator training: the ranking losses, including the ranking on Real-ESRGAN damage."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from metasr.data.sample_images import image_batch
from metasr.errors import MetaSRError
from metasr.images import bicubic_downscale
from metasr.metadata.degradation import load_estimator
from metasr.metadata.degree_estimator import DegreeEstimator
from metasr.metadata.degree_training import (
    DegreeTrainConfig,
    _ranking,
    _realistic_ranking,
    _step_loss,
    train_degree_estimator,
)
from metasr.safe_weights import save_state

pytestmark = pytest.mark.training


def _config(**overrides) -> DegreeTrainConfig:
    return DegreeTrainConfig(corpus=Path("unused"), out=Path("unused"), **overrides)


def test_ranking_counts_only_unmet_margins_on_positive_gaps() -> None:
    less = torch.zeros(1, 3, 1, 1)
    more = torch.tensor([0.5, 0.1, 0.9]).reshape(1, 3, 1, 1)
    gap = torch.tensor([[0.8, 0.8, -0.8]])  # margin 0.5: needs 0.4 on the first two; the third has no order
    assert torch.isclose(_ranking(more, less, gap, 0.5), torch.tensor(0.3 / 3))
    assert _ranking(more, less, torch.zeros(1, 3), 0.5) == 0.0


def test_realistic_ranking_asks_damaged_frames_to_read_above_clean_ones() -> None:
    hr = torch.cat(image_batch(("astronaut", "coffee"), 128, 128))
    model = DegreeEstimator()
    with torch.no_grad():
        model.head.weight.zero_()  # reads every frame alike: every realistic draw breaks its ranking
    clean = model(bicubic_downscale(hr, 2))
    loss = _realistic_ranking(model, hr, clean, _config(), torch.Generator().manual_seed(0))
    assert loss.item() > 0.01
    loss.backward()
    assert float(model.head.weight.grad.abs().sum()) > 0.0


def test_step_loss_is_deterministic_and_includes_the_realistic_term() -> None:
    hr = torch.cat(image_batch(("astronaut", "coffee"), 128, 128))
    torch.manual_seed(0)
    model = DegreeEstimator()

    def loss(realistic: float) -> float:
        return float(_step_loss(model, hr, _config(realistic=realistic), torch.Generator().manual_seed(3)))

    assert loss(1.0) == loss(1.0)
    assert loss(1.0) != loss(0.0)


def test_a_negative_realistic_weight_is_refused_before_training(tmp_path: Path) -> None:
    cfg = DegreeTrainConfig(corpus=tmp_path, out=tmp_path / "degree.safetensors", realistic=-1.0)
    with pytest.raises(MetaSRError, match="realistic weight -1.0 is negative"):
        train_degree_estimator(cfg)
    assert not cfg.out.exists()


def test_a_channel_count_below_one_is_refused_before_training(tmp_path: Path) -> None:
    cfg = DegreeTrainConfig(corpus=tmp_path, out=tmp_path / "degree.safetensors", channels=0)
    with pytest.raises(MetaSRError, match="channel count 0 must be at least 1"):
        train_degree_estimator(cfg)
    assert not cfg.out.exists()


def test_a_photo_narrower_than_the_patch_is_named_before_training(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (300, 300), (40, 80, 160)).save(corpus / f"{name}.png")
    Image.new("RGB", (300, 40), (90, 120, 30)).save(corpus / "strip.png")
    cfg = DegreeTrainConfig(corpus=corpus, out=tmp_path / "degree.safetensors", steps=1)
    with pytest.raises(MetaSRError, match="strip.png at side 1024 is 300x40 px, under the 128-px HR patch"):
        train_degree_estimator(cfg)
    assert not cfg.out.exists()


def test_an_estimator_loads_at_the_width_its_weights_were_trained_at(tmp_path: Path) -> None:
    torch.manual_seed(0)
    narrow = DegreeEstimator(channels=8).eval()
    path = tmp_path / "narrow.safetensors"
    save_state(narrow.state_dict(), path)
    loaded = load_estimator(path)
    assert loaded.conv1.out_channels == 8
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(image), narrow(image))
