"""Recipe parsing: every shipped recipe loads; typos and bad values name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from metasr.errors import MetaSRError
from metasr.exporter.pipeline import resolve_recipe
from metasr.exporter.registry import TARGETS, target_module
from metasr.recipes import EXPORT_RECIPES_DIR, load_mapping, load_recipe, with_overrides

EXPORT_RECIPES = sorted(EXPORT_RECIPES_DIR.glob("*.yaml"))  # bundled with the package
ROOT = Path(__file__).resolve().parents[1]
TRAINING_RECIPES_DIR = ROOT / "recipes"  # distill and teacher recipes: repository workflows (corpus, checkpoints)


@pytest.mark.parametrize("path", EXPORT_RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_is_valid(path: Path) -> None:
    target = load_mapping(path, "export")["target"]
    recipe = load_recipe(path, target_module(target).Options)
    assert recipe.target == target
    assert recipe.parity_floor_db > 0


@pytest.mark.parametrize("path", sorted(TRAINING_RECIPES_DIR.glob("distill-*.yaml")), ids=lambda p: p.name)
def test_every_shipped_distill_recipe_is_valid(path: Path) -> None:
    from metasr.distill.recipe import load_distill_recipe

    recipe = load_distill_recipe(path)  # refuses unknown sources and bad values
    assert recipe.steps > 0
    for weights in (recipe.teacher, recipe.init_student):  # the shipped files it names exist (paths from the root)
        assert weights is None or (ROOT / weights).is_file(), f"{path.name} names missing {weights}"


@pytest.mark.parametrize("target", list(TARGETS))
def test_each_target_has_a_default_recipe(target: str) -> None:
    assert resolve_recipe(target).target == target


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_unknown_top_level_key_names_nearest(tmp_path: Path) -> None:
    path = _write(tmp_path, "target: onnx\nparity_floor: 80\n")
    with pytest.raises(MetaSRError, match=r"unknown key 'parity_floor'; did you mean 'parity_floor_db'\?"):
        resolve_recipe("onnx", path)


def test_unknown_option_key_names_nearest(tmp_path: Path) -> None:
    path = _write(tmp_path, "target: onnx\noptions:\n  precison: fp16\n")
    with pytest.raises(MetaSRError, match=r"options: unknown key 'precison'; did you mean 'precision'\?"):
        resolve_recipe("onnx", path)


def test_bad_choice_names_nearest(tmp_path: Path) -> None:
    path = _write(tmp_path, "target: onnx\noptions:\n  precision: fp61\n")
    with pytest.raises(MetaSRError, match=r"'fp61' is not allowed; did you mean 'fp16'\?"):
        resolve_recipe("onnx", path)


def test_wrong_type_and_bad_scale_and_yaml(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="input_sizes: expected 2 values"):
        resolve_recipe("onnx", _write(tmp_path, "target: onnx\ninput_sizes: [[64, 64, 3]]\n"))
    with pytest.raises(MetaSRError, match="scale 3 is not supported"):
        resolve_recipe("onnx", _write(tmp_path, "target: onnx\nscale: 3\n"))
    with pytest.raises(MetaSRError, match="not valid YAML"):
        resolve_recipe("onnx", _write(tmp_path, "target: onnx\n  bad: [\n"))


def test_recipe_for_another_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MetaSRError, match="pass --target onnx"):
        resolve_recipe("coreml", _write(tmp_path, "target: onnx\n"))


def test_overrides_replace_only_given_fields() -> None:
    recipe = resolve_recipe("onnx")
    changed = with_overrides(recipe, scale=4, input_sizes=None)
    assert changed.scale == 4 and changed.input_sizes == recipe.input_sizes


@pytest.mark.parametrize(
    ("strengths", "message"),
    [("[-1, 0, 1.5]", "1.5 is not a strength"), ("[0, 0.5, 1]", "include -1"), ("[]", "include -1")],
)
def test_calibration_strengths_are_checked(tmp_path: Path, strengths: str, message: str) -> None:
    path = _write(tmp_path, f"target: executorch-xnnpack\noptions:\n  calibration_strengths: {strengths}\n")
    with pytest.raises(MetaSRError, match=rf"options: calibration_strengths: .*{message}"):
        resolve_recipe("executorch-xnnpack", path)


@pytest.mark.parametrize("target", ["executorch-xnnpack", "onnx-qnn", "coreml"])
def test_quantizing_targets_calibrate_the_default_and_overrides(target: str) -> None:
    assert resolve_recipe(target).options.calibration_strengths == (-1.0, 0.0, 0.5, 1.0)


def test_a_recipe_extends_another_and_replaces_only_its_own_keys(tmp_path: Path) -> None:
    from metasr.distill.recipe import load_distill_recipe

    (tmp_path / "base.yaml").write_text("steps: 100\nlr: 0.002\nloss: {gt: 1.0, teacher: 0.5, embed: 0.2}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nsteps: 50\nloss: {teacher: 0.1}\n")
    recipe = load_distill_recipe(tmp_path / "child.yaml")
    assert (recipe.steps, recipe.lr) == (50, 0.002)
    assert (recipe.loss.gt, recipe.loss.teacher, recipe.loss.embed) == (1.0, 0.1, 0.2)


def test_extends_refuses_a_missing_base_and_a_cycle(tmp_path: Path) -> None:
    from metasr.distill.recipe import load_distill_recipe

    (tmp_path / "orphan.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(MetaSRError, match="extends nowhere.yaml, which does not exist"):
        load_distill_recipe(tmp_path / "orphan.yaml")
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(MetaSRError, match="extends itself through"):
        load_distill_recipe(tmp_path / "a.yaml")


def test_bundled_recipe_by_name_and_typo_suggestion() -> None:
    from metasr.recipes import recipe_path

    assert recipe_path("coreml-w8a8") == recipe_path("coreml-w8a8.yaml") == EXPORT_RECIPES_DIR / "coreml-w8a8.yaml"
    with pytest.raises(MetaSRError, match="did you mean 'coreml-w8a8'"):
        recipe_path("coreml-w8a9")
    assert resolve_recipe(None, "executorch-xnnpack-nncf").target == "executorch-xnnpack"


def test_recipe_file_without_target_needs_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "scale: 2\n")
    with pytest.raises(MetaSRError, match="names no target"):
        resolve_recipe(None, path)
