"""Content-type metadata: real detectors label real images, and the shipped device classifier agrees with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from metasr.errors import MetaSRError
from metasr.metadata.base import cell_pool, source_class
from metasr.metadata.content import ContentSource, load_content_classifier
from metasr.metadata.content_classifier import ContentClassifier
from metasr.metadata.content_labels import CARTOON, CLASSES, FACE, LOW_LIGHT, NATURAL, TEXT, label_cells
from metasr.metadata.content_tiles import FONT_DIR, darken, drawing, face_boxes, face_crop, sample_photo


def _resized(name: str, width: int, height: int) -> np.ndarray:
    return np.array(Image.fromarray(sample_photo(name)).resize((width, height), Image.LANCZOS))


def _with_subtitle(frame: np.ndarray, text: str, y: int, size: int = 18) -> np.ndarray:
    image = Image.fromarray(frame)
    font = ImageFont.truetype(str(FONT_DIR / "DejaVuSans-Bold.ttf"), size)
    ImageDraw.Draw(image).text((4, y), text, font=font, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
    return np.asarray(image)


def test_rendered_text_cells_are_text() -> None:
    frame = _with_subtitle(_resized("coffee", 192, 128), "Where are you going", y=72)
    labels = label_cells(frame)
    assert labels.shape == (4, 6)
    assert (labels[2, :4] == TEXT).all(), labels
    assert not (labels[0] == TEXT).any(), labels


def test_astronaut_face_cell_is_face() -> None:
    labels = label_cells(_resized("astronaut", 128, 128))  # face centre near LR (56, 29): cell row 0, col 1
    assert labels[0, 1] == FACE, labels
    assert (labels[2:, 2:] != FACE).all(), labels


def test_darkened_photo_is_low_light_and_the_original_is_not() -> None:
    frame = _resized("chelsea", 128, 96)
    assert (label_cells(frame) != LOW_LIGHT).mean() > 0.5
    assert (label_cells(darken(frame, np.random.default_rng(0), exposure=0.03)) == LOW_LIGHT).all()


def test_flat_drawing_is_cartoon_and_grass_is_natural() -> None:
    image = Image.new("RGB", (96, 96), (90, 160, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 80, 60), fill=(250, 200, 40), outline=(0, 0, 0), width=2)
    draw.rectangle((0, 70, 96, 96), fill=(60, 170, 70))
    assert (label_cells(np.asarray(image)) == CARTOON).all()
    assert (label_cells(_resized("grass", 96, 96)) == NATURAL).all()


def test_label_cells_refuses_bad_frames() -> None:
    with pytest.raises(MetaSRError, match="uint8"):
        label_cells(np.zeros((64, 64, 3), dtype=np.float32))
    with pytest.raises(MetaSRError, match="smaller than one"):
        label_cells(np.zeros((16, 64, 3), dtype=np.uint8))


def test_teacher_is_one_hot_on_the_cell_grid() -> None:
    assert source_class("content") is ContentSource
    image = torch.from_numpy(_resized("astronaut", 128, 96)).permute(2, 0, 1)[None].float() / 255.0
    labels = ContentSource().teacher(image.repeat(2, 1, 1, 1))
    assert labels.shape == (2, len(CLASSES), 3, 4)
    assert torch.equal(labels.sum(dim=1), torch.ones(2, 3, 4))
    assert labels[0, FACE, 0, 1] == 1


@pytest.mark.parametrize("size", [(64, 64), (96, 130), (100, 161)])
def test_classifier_output_matches_the_cell_grid(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    image = torch.rand(2, 3, *size)
    probabilities = ContentClassifier().eval()(image)
    assert probabilities.shape == (2, len(CLASSES), *cell_pool(image).shape[2:])
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(1), atol=1e-5)
    assert (probabilities >= 0).all()


def test_classifier_cells_are_centred_on_their_pixels() -> None:
    """The pixels that reach output cell (2, 3) span a window centred on LR pixels [64, 96) x [96, 128)."""
    torch.manual_seed(0)
    model = ContentClassifier().eval()
    image = torch.rand(1, 3, 192, 256, requires_grad=True)
    model.logits(image)[0, :, 2, 3].sum().backward()
    rows = torch.nonzero(image.grad.abs().sum(dim=(0, 1, 3)))[:, 0]
    cols = torch.nonzero(image.grad.abs().sum(dim=(0, 1, 2)))[:, 0]
    assert (rows.min() + rows.max()) / 2 == pytest.approx(64 + 15.5)
    assert (cols.min() + cols.max()) / 2 == pytest.approx(96 + 15.5)


def test_classifier_exports_with_portable_ops_only() -> None:
    model = ContentClassifier().eval()
    assert sum(p.numel() for p in model.parameters()) <= 25_000
    exported = torch.export.export(model, (torch.rand(1, 3, 96, 128),))
    ops = {str(node.target) for node in exported.graph.nodes if node.op == "call_function"}
    portable = {
        "aten.conv2d.default",
        "aten.relu.default",
        "aten.avg_pool2d.default",
        "aten.add.Tensor",
        "aten.softmax.int",
        "aten.permute.default",
    }
    assert ops <= portable, ops
    out = exported.module()(torch.rand(1, 3, 96, 128))
    assert out.shape == (1, len(CLASSES), 3, 4)


def test_shipped_classifier_agrees_with_the_detectors_on_held_out_images() -> None:
    """Held-out sources (grace_hopper, gravel) and a drawing from an unused seed: dark, text, face, cartoon cells."""
    rng = np.random.default_rng(1)
    gravel = _resized("gravel", 96, 96)
    hopper = sample_photo("grace_hopper")
    frames = [
        darken(gravel, rng, exposure=0.03),
        _with_subtitle(gravel, "Hello there", y=36, size=16),
        face_crop(hopper, face_boxes(hopper), rng),
        drawing(np.random.default_rng([0, 4])),
    ]
    labels = np.stack([label_cells(f) for f in frames])
    assert {LOW_LIGHT, TEXT, FACE, CARTOON} <= set(labels.ravel().tolist()), labels
    model = load_content_classifier()
    with torch.no_grad():
        batch = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
        predicted = model(batch).argmax(dim=1).numpy()
    assert (predicted == labels).mean() >= 0.8, (labels, predicted)
    for k, cls in enumerate((LOW_LIGHT, TEXT, FACE, CARTOON)):
        assert (predicted[k][labels[k] == cls] == cls).any(), (CLASSES[cls], labels[k], predicted[k])


def test_missing_weights_name_the_training_command(tmp_path) -> None:
    with pytest.raises(MetaSRError, match="train them with metasr-train content --corpus"):
        ContentSource(weights=tmp_path / "missing.safetensors").device()


@pytest.mark.parametrize("target", ["coreml", "executorch-xnnpack"])
def test_graph_reading_content_runs_wholly_on_the_accelerator(target: str, tmp_path) -> None:
    import dataclasses

    from metasr.assembly import build_metasr
    from metasr.exporter.pipeline import export, resolve_recipe
    from metasr.exporter.stages import LoadedModel
    from metasr.models import MetaSRStudent, StudentConfig
    from metasr.recipes import with_overrides

    torch.manual_seed(0)
    model = build_metasr(MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)), ("content",)).eval()
    recipe = dataclasses.replace(
        with_overrides(resolve_recipe(target, None), input_sizes=((64, 64),)), parity_floor_db=0
    )
    result = export(recipe, tmp_path, loaded=LoadedModel(model, "content"))
    assert result.coverage.fallback == [] and result.coverage.fraction == 1.0


def test_the_content_command_refuses_a_missing_corpus_in_one_line(tmp_path) -> None:
    from click.testing import CliRunner

    from metasr.train_cli import train_group

    out = tmp_path / "classifier.safetensors"
    args = ["content", "--corpus", str(tmp_path / "none"), "--out", str(out), "--cache", str(tmp_path / "cache")]
    result = CliRunner().invoke(train_group, args)
    assert result.exit_code == 1 and "does not exist; pass a folder of PNG/JPEG photos" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_classifier_training_is_reproducible_and_leaves_only_the_weights(tmp_path) -> None:
    from metasr.metadata.content_tiles import FRAME, ContentTiles
    from metasr.metadata.content_training import _fit

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, FRAME, FRAME, 3), dtype=np.uint8)
    labels = rng.integers(0, len(CLASSES), (8, FRAME // 32, FRAME // 32))
    tiles = ContentTiles(frames, labels, np.zeros(8, bool), np.zeros(8, "<U4"))
    state = tmp_path / "classifier.state.safetensors"
    torch.manual_seed(0)
    whole = _fit(tiles, 4, 0, state)
    assert not state.exists()  # removed once the run finished
    torch.manual_seed(0)
    again = _fit(tiles, 4, 0, state)
    for a, b in zip(whole.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
