"""Teacher training and distillation mechanics on tiny configs: checkpoints, resume, determinism, CLI errors."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from metasr.assembly import load_metasr
from metasr.checkpoint import load_student, save_student
from metasr.data.sample_images import fit_crop, photo
from metasr.distill.cache import CONTROLLED_MAX, chunk_kinds
from metasr.distill.recipe import DistillRecipe, TeacherRecipe, load_distill_recipe, load_teacher_recipe
from metasr.distill.teacher_system import load_teacher
from metasr.distill.teacher_trainer import train_teacher
from metasr.distill.trainer import distill
from metasr.errors import MetaSRError
from metasr.models import MetaSRStudent, StudentConfig
from metasr.train_cli import distill_command, train_group

pytestmark = pytest.mark.training

SOURCES = ("edges", "degradation", "luminance")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name in ("astronaut", "coffee", "chelsea"):
        rgb = fit_crop(photo(name), 160, 192)
        Image.fromarray((rgb * 255 + 0.5).astype(np.uint8)).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def teacher_path(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("teacher")
    recipe = TeacherRecipe(
        corpus=str(corpus), out=str(out), sources=SOURCES, base_channels=8, channel_mult=(1, 2),
        blocks_per_level=1, steps=3, batch=2, checkpoint_every=1,
    )  # fmt: skip
    train_teacher(recipe, until=2)
    result = train_teacher(recipe)  # resumes at step 2
    assert result.steps == 3 and np.isfinite(result.val_psnr)
    return result.weights


def _recipe(corpus: Path, teacher: Path, out: Path) -> DistillRecipe:
    return DistillRecipe(
        corpus=str(corpus), teacher=str(teacher), out=str(out), channels=8, num_blocks=2, cache_size=4,
        steps=4, batch=2, checkpoint_every=2,
    )  # fmt: skip


def test_teacher_checkpoint_records_its_sources(teacher_path: Path) -> None:
    teacher, sources = load_teacher(teacher_path)
    assert sources == SOURCES
    assert teacher.orchestrator.stage_channels == teacher.net.stage_channels


def test_teacher_ships_in_float16_and_loads_as_float32(corpus: Path, teacher_path: Path, tmp_path: Path) -> None:
    from metasr.distill.teacher_system import teacher_metadata, teacher_sources

    shutil.copytree(teacher_path.parent, tmp_path / "run")  # trained to its last step: the command only ships
    recipe = tmp_path / "teacher.yaml"
    recipe.write_text(
        f"corpus: {corpus}\nout: {tmp_path / 'run'}\nsources: [{', '.join(SOURCES)}]\nbase_channels: 8\n"
        "channel_mult: [1, 2]\nblocks_per_level: 1\nsteps: 3\nbatch: 2\ncheckpoint_every: 1\n"
    )
    args = ["teacher", "--recipe", str(recipe), "--ship", str(tmp_path / "half.safetensors")]
    result = CliRunner().invoke(train_group, args)
    assert result.exit_code == 0 and "(float16)" in result.output, result.output
    teacher, names = load_teacher(teacher_path)
    assert {v.dtype for v in load_file(str(tmp_path / "half.safetensors")).values() if v.is_floating_point()} == {
        torch.float16
    }
    half, _ = load_teacher(tmp_path / "half.safetensors")
    assert all(p.dtype == torch.float32 for p in half.parameters())
    lr = torch.rand(1, 3, 32, 32)
    metadata = teacher_metadata(teacher_sources(names), lr)
    a = teacher.sample(lr, metadata, torch.Generator().manual_seed(0))[0]
    b = half.sample(lr, metadata, torch.Generator().manual_seed(0))[0]
    assert (a - b).abs().max() < 1e-2


def test_distillation_resumes_and_is_deterministic(corpus: Path, teacher_path: Path, tmp_path: Path) -> None:
    straight = distill(replace(_recipe(corpus, teacher_path, tmp_path / "a"), fresh_clean=2))
    split = replace(_recipe(corpus, teacher_path, tmp_path / "b"), fresh_clean=2)  # its sampler resumes too
    distill(split, until=2)
    resumed = distill(split)
    assert straight.steps == resumed.steps == 4
    a, b = load_file(straight.weights), load_file(resumed.weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model = load_metasr(straight.weights)
    image = torch.rand(1, 3, 64, 64)
    assert model(image).shape == (1, 3, 128, 128)
    torch.export.export(model, (image, model.default_strength()))


def test_frozen_student_trains_only_the_orchestrator(corpus: Path, teacher_path: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    init = MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2))
    save_student(init, tmp_path / "init.safetensors")
    recipe = replace(_recipe(corpus, teacher_path, tmp_path / "run"), init_student=str(tmp_path / "init.safetensors"))
    model = load_metasr(distill(replace(recipe, freeze_student=True)).weights)
    kept = load_student(tmp_path / "init.safetensors").state_dict()
    assert all(torch.equal(value, kept[name]) for name, value in model.student.state_dict().items())
    assert all(head.weight.abs().sum() > 0 for head in model.orchestrator.film)  # zero-initialised, now trained


def _loss_setup(use_metadata: bool) -> tuple:
    from metasr.assembly import build_metasr

    torch.manual_seed(0)
    model = build_metasr(MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)), ("edges", "degradation"))
    lr = torch.rand(2, 3, 32, 32)
    batch = {
        "lr": lr,
        "hr": torch.rand(2, 3, 64, 64),
        "degrees": torch.zeros(2, 3),
        "teacher_sr": torch.zeros(2, 3, 64, 64),
    }
    batch.update(select=torch.rand(2, 3, 1, 1), fusion=torch.rand(2, 3, 1, 1), inject=torch.rand(2, 4, 1, 1))
    batch["embed"] = torch.zeros_like(model.run(lr)[1].embed)
    recipe = replace(DistillRecipe(use_metadata=use_metadata), metadata_dropout=0.0, metadata_corruption=0.0)
    return model, batch, recipe


@pytest.mark.parametrize("use_metadata", [True, False])
def test_clean_patches_learn_from_the_plain_student_not_the_teacher(use_metadata: bool) -> None:
    from metasr.distill.trainer import _step_loss

    model, batch, recipe = _loss_setup(use_metadata)
    anchored = replace(recipe, loss=replace(recipe.loss, plain=1.0, decisions=1.0))
    other = MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2))
    damaged = torch.full((2, 3), 0.3)

    def loss(recipe: DistillRecipe, plain: MetaSRStudent | None = None, **changes: torch.Tensor) -> float:
        step = _step_loss(
            model, {**batch, **changes}, recipe, [(0, 0), (1, 1)], torch.Generator().manual_seed(0), plain
        )
        return step.item()

    other_teacher = torch.ones(2, 3, 64, 64)
    assert loss(recipe, teacher_sr=other_teacher) != loss(recipe)  # without the anchor the teacher teaches all
    assert loss(anchored, other, teacher_sr=other_teacher) == loss(anchored, other)  # clean: not the teacher
    assert loss(anchored, other, teacher_sr=other_teacher, degrees=damaged) != loss(anchored, other, degrees=damaged)
    # the fresh graph's FiLM heads are zero, so its output is its own student's: that anchor costs nothing
    assert loss(anchored, model.student) == pytest.approx(loss(anchored, other) - _anchor(model, other, batch))
    # damaged patches learn as without the anchor
    assert loss(anchored, other, degrees=damaged) == pytest.approx(loss(anchored, None, degrees=damaged), abs=1e-7)


def test_clean_patches_shut_the_injection_gates() -> None:
    from metasr.distill.trainer import _step_loss

    model, batch, recipe = _loss_setup(use_metadata=True)
    anchored = replace(recipe, loss=replace(recipe.loss, plain=1.0))
    damaged = torch.full((2, 3), 0.3)

    def loss(**changes: torch.Tensor) -> float:
        step = _step_loss(
            model, {**batch, **changes}, anchored, [(0, 0), (1, 1)], torch.Generator().manual_seed(0), model.student
        )
        return step.item()

    opened, shut = torch.ones(2, 4, 1, 1), torch.zeros(2, 4, 1, 1)
    assert loss(inject=opened) == loss(inject=shut)  # clean: the teacher's gates are no target, shut ones are
    assert loss(inject=opened, degrees=damaged) != loss(inject=shut, degrees=damaged)


def _anchor(model, plain: MetaSRStudent, batch: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        return (model.run(batch["lr"])[0] - plain(batch["lr"])).abs().mean().item()


def test_ablation_trains_without_metadata(corpus: Path, teacher_path: Path, tmp_path: Path) -> None:
    result = distill(replace(_recipe(corpus, teacher_path, tmp_path), use_metadata=False, steps=1))
    assert np.isfinite(result.val_psnr)


def test_distilled_graph_holds_the_recipe_device_sources(corpus: Path, teacher_path: Path, tmp_path: Path) -> None:
    recipe = replace(
        _recipe(corpus, teacher_path, tmp_path), steps=1, device_sources=("edges", "content"), extra_sides=(128,)
    )
    model = load_metasr(distill(recipe).weights)
    assert tuple(model.orchestrator.sources) == ("edges", "content")
    assert set(model.extractors) == {"edges", "content"}
    image = torch.rand(1, 3, 64, 64)
    torch.export.export(model, (image, model.default_strength()))


def test_a_photo_narrower_than_the_patch_is_named_before_distilling_or_teacher_training(
    corpus: Path, teacher_path: Path, tmp_path: Path
) -> None:
    folder = shutil.copytree(corpus, tmp_path / "corpus")
    Image.new("RGB", (300, 40), (90, 120, 30)).save(folder / "strip.png")
    recipe = replace(_recipe(folder, teacher_path, tmp_path / "run"), steps=1)
    with pytest.raises(MetaSRError, match="strip.png at side 1024 is 300x40 px, under the 64-px HR patch"):
        distill(recipe)
    assert not (tmp_path / "run").exists()
    teacher = TeacherRecipe(corpus=str(folder), out=str(tmp_path / "teacher"), sources=SOURCES, steps=1)
    with pytest.raises(MetaSRError, match=f"strip.png at side 1024 is 300x40 px, under the {teacher.patch * 2}-px HR"):
        train_teacher(teacher)
    assert not (tmp_path / "teacher").exists()


def test_recipe_typo_is_a_one_line_error(tmp_path: Path) -> None:
    recipe = tmp_path / "distill.yaml"
    recipe.write_text("scale: 2\nstpes: 10\n")
    result = CliRunner().invoke(distill_command, ["--recipe", str(recipe)])
    assert result.exit_code != 0
    assert "unknown key 'stpes'; did you mean 'steps'?" in result.output


def test_content_evaluation_set_covers_every_class(corpus: Path) -> None:
    from metasr.distill.evaluate import CLASSES, SIZE, content_eval_images, score_classes
    from metasr.images import bicubic_upscale

    natural = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(corpus.iterdir())]
    images = content_eval_images(natural)
    assert tuple(images) == CLASSES
    assert all(img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8 for group in images.values() for img in group)
    assert images["low_light"][0].mean() < 0.5 * images["natural"][0].mean()
    scores = score_classes(lambda lr: bicubic_upscale(lr, 2), images, 2)
    assert set(scores.per_class) == set(CLASSES) and all(15 < v < 60 for v in scores.per_class.values())


TRAINING_RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
TRAINING_RECIPES = sorted(TRAINING_RECIPES_DIR.glob("distill-*.yaml")) + sorted(
    TRAINING_RECIPES_DIR.glob("teacher-*.yaml")
)


@pytest.mark.parametrize("path", TRAINING_RECIPES, ids=lambda p: p.name)
def test_shipped_training_recipes_are_valid(path: Path) -> None:
    recipe = (load_distill_recipe if path.stem.startswith("distill") else load_teacher_recipe)(path)
    assert recipe.steps > 0 and recipe.corruption_kinds


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("clean_share: 0.7\ncontrolled_share: 0.5", "summing to at most 1"),
        ("corruption_kinds: [swap, flip]", "choose from swap, noise, invert"),
        ("extra_sides: [512, 96]", "must each be at least 128 pixels"),
        ("device_sources: [edges, depht]", "unknown source 'depht'"),
        ("freeze_student: true", "freeze_student needs init_student"),
        ("fresh_clean: -1", "must be a patch count"),
        ("loss: {plain: 1.0}", "loss.plain needs init_student"),
    ],
)
def test_bad_cache_mix_or_corruption_kind_is_a_one_line_error(tmp_path: Path, line: str, message: str) -> None:
    recipe = tmp_path / "distill.yaml"
    recipe.write_text(f"scale: 2\n{line}\n")
    result = CliRunner().invoke(distill_command, ["--recipe", str(recipe)])
    assert result.exit_code != 0 and message in result.output


def test_cache_mix_has_the_asked_shares_in_a_seeded_order() -> None:
    kinds = chunk_kinds(16, 0.25, 0.5, torch.Generator().manual_seed(0))
    assert [kinds.count(k) for k in ("clean", "controlled", "realistic")] == [4, 8, 4]
    assert kinds == chunk_kinds(16, 0.25, 0.5, torch.Generator().manual_seed(0))
    assert kinds != chunk_kinds(16, 0.25, 0.5, torch.Generator().manual_seed(1))


def test_controlled_share_gives_mild_known_degrees(corpus: Path, teacher_path: Path, tmp_path: Path) -> None:
    mix = {"clean_share": 0.5, "controlled_share": 0.5}
    recipe = replace(_recipe(corpus, teacher_path, tmp_path), cache_size=16, steps=1, **mix)
    distill(recipe)
    degrees = load_file(str(tmp_path / "distill_set.safetensors"))["degrees"]
    per_chunk = degrees.reshape(2, 8, 3).amax(dim=(1, 2))
    assert sorted(per_chunk.tolist())[0] == 0.0 and 0.0 < sorted(per_chunk.tolist())[1] <= CONTROLLED_MAX


def test_evaluate_reports_every_run_on_every_class(corpus: Path, teacher_path: Path, tmp_path: Path) -> None:
    import json

    from metasr.train_cli import evaluate

    student = distill(replace(_recipe(corpus, teacher_path, tmp_path / "s"), steps=1)).weights
    ablation = distill(replace(_recipe(corpus, teacher_path, tmp_path / "a"), steps=1, use_metadata=False)).weights
    out = tmp_path / "report.json"
    args = ["--teacher", teacher_path, "--student", student, "--ablation", ablation, "--corpus", corpus, "--out", out]
    result = CliRunner().invoke(evaluate, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    runs = {"teacher", "with metadata", "no metadata", "wrong metadata", "misplaced metadata", "bicubic"}
    assert runs | {"trained without metadata"} == set(report["validation_psnr"]) == set(report["class_psnr"])
    assert all(np.isfinite(v) for scores in report["class_psnr"].values() for v in scores.values())
    assert report["mac_ratio"] > 1.0
