"""The conv router: few convolutions choosing each tile's expert, trained on which expert restores a tile
best; its strength override, its thumbnail form, its checkpoint and its training."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch

from metasr.assembly import build_metasr, load_graph, save_routed
from metasr.data.degradations import REAL_ESRGAN_MILD, REAL_ESRGAN_X4PLUS
from metasr.data.folder import PatchSampler
from metasr.distill.routing import (
    LABEL_CHUNK,
    ConvRouterTraining,
    RoutingConfig,
    RoutingExamples,
    build_routed,
    capacity_labels,
    expert_costs,
    fit_conv_router,
    regret_db,
    restoration_levels,
    routing_examples,
    start_rows,
    train_conv_router,
    training_tiles,
    trunk,
)
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import export, resolve_recipe
from metasr.metadata.degradation import load_estimator
from metasr.models import MetaSRStudent, StudentConfig
from metasr.models.conv_router import ConvRouter
from metasr.models.routed import RoutedMetaSR, TileRouter
from metasr.recipes import with_overrides
from metasr.runtime import open_engine
from metasr.safe_weights import shipped_weights
from tests.conftest import responsive_metasr

pytestmark = pytest.mark.export


def _router(tile: int = 64, thumbnail: int = 2) -> ConvRouter:
    torch.manual_seed(0)
    return ConvRouter(torch.tensor([1.0, 0.0, 0.5]), tile, thumbnail, 2, width=8).eval()


def test_the_thumbnail_form_scores_the_thumbnail_as_the_router_scores_the_image() -> None:
    router = _router()
    image = torch.rand(2, 3, 128, 192, generator=torch.Generator().manual_seed(0))
    strength = router.default_strength(2)
    with torch.no_grad():
        scores = router(image, strength)
        thumb = router.on_thumbnail()(image[..., ::2, ::2].contiguous(), strength)
    assert scores.shape == (2, 3, 2, 3)
    assert torch.allclose(scores, thumb, atol=1e-6)
    assert router.thumbnail == 2  # the thumbnail form is a copy


def test_a_strength_picks_the_expert_of_the_nearest_restoration_level() -> None:
    router = _router()
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        learned = router(image, router.default_strength()).argmin(dim=1)
        assert torch.equal(learned, router(image).argmin(dim=1))  # -1 keeps the learned choice
        for strength, expert in ((0.0, 1), (0.4, 2), (1.0, 0), (7.0, 0)):
            routes = router(image, torch.full((1, 1, 1, 1), strength)).argmin(dim=1)
            assert (routes == expert).all(), strength


def test_tiles_must_hold_whole_feature_cells_of_the_thumbnail() -> None:
    with pytest.raises(ValueError, match="whole 8-pixel feature cells"):
        ConvRouter(torch.zeros(2), 24, 2, 2)


def test_restoration_levels_rank_experts_by_the_damage_they_restore_best() -> None:
    best = torch.tensor([0, 0, 2, 2, 1, 1, 2, 0])
    damaged = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1], dtype=torch.bool)
    # shares of damaged tiles: expert 0 1/3, expert 1 1, expert 2 2/3; expert 3 never best (0.5)
    assert restoration_levels(best, damaged, 4).tolist() == pytest.approx([0.0, 1.0, 2 / 3, 1 / 3])


def test_regret_is_the_psnr_lost_against_the_best_expert() -> None:
    errors = torch.tensor([[1.0, 10.0], [4.0, 2.0]])
    assert regret_db(errors).flatten().tolist() == pytest.approx([0.0, 10.0, 10 * np.log10(2.0), 0.0])


def test_capacity_labels_take_the_cheapest_expert_within_the_margin_of_the_best() -> None:
    regret = torch.tensor([[0.0, 0.03, 0.5], [0.2, 0.0, 0.1], [0.0, 0.0, 0.0]])
    costs = torch.tensor([10.0, 5.0, 2.0])
    assert capacity_labels(regret, costs, 0.0).tolist() == [0, 1, 2]  # ties at the best: the cheapest
    assert capacity_labels(regret, costs, 0.05).tolist() == [1, 1, 2]
    assert capacity_labels(regret, costs, 0.15).tolist() == [1, 2, 2]
    assert capacity_labels(regret, costs, 1.0).tolist() == [2, 2, 2]
    equal = torch.tensor([[0.04, 0.0, 0.5]])  # equally cheap experts: the better one
    assert capacity_labels(equal, torch.tensor([3.0, 3.0, 9.0]), 0.05).tolist() == [1]


def _capacity_routed() -> RoutedMetaSR:
    """Expert 0 a 4-block student, expert 1 a 1-block one, expert 2 the routed model's own 1-block student."""
    torch.manual_seed(0)
    big, small, own = (MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=n)).eval() for n in (4, 1, 1))
    images = [np.zeros((256, 256, 3), dtype=np.uint8)]
    return build_routed(build_metasr(own).eval(), images, RoutingConfig(tile=64), [big, small])


def test_experts_of_different_sizes_cost_their_own_macs() -> None:
    costs = expert_costs(_capacity_routed())
    block = 8 * 8 * 9 / 4  # one 8-channel 3x3 conv per x2 output pixel
    assert costs[0] - costs[1] == pytest.approx(3 * block)
    assert costs[1] == pytest.approx(costs[2])


def test_a_capacity_router_sends_tiles_to_the_small_expert_when_it_loses_less_than_the_margin() -> None:
    routed = _capacity_routed()
    g = torch.Generator().manual_seed(0)
    thumbnails = torch.rand(32, 3, 32, 32, generator=g)
    regret = torch.tensor([0.0, 0.02, 0.5]).expand(32, 3).clone()  # the big expert best by 0.02 dB on every tile
    examples = RoutingExamples(thumbnails, regret, torch.arange(32) >= 16)
    config = ConvRouterTraining(tile=64, steps=40, batch=8)
    for margin, expert in ((0.0, 0), (0.05, 1)):
        router = fit_conv_router(routed, examples, replace(config, margin=margin))
        choices = router.on_thumbnail(partial_tiles=True)(thumbnails).argmin(dim=1).flatten()
        assert (choices == expert).all(), margin


def _clean_damaged_routed(big: MetaSRStudent, own: MetaSRStudent) -> RoutedMetaSR:
    """``big`` (clean) and ``own`` (damage), with a conv router: what a capacity model starts from."""
    images = [np.zeros((256, 256, 3), dtype=np.uint8)]
    routed = build_routed(build_metasr(own).eval(), images, RoutingConfig(tile=64), [big])
    torch.manual_seed(4)
    return routed.with_conv_router(ConvRouter(torch.tensor([0.0, 1.0]), 64, 2, 2, width=8).eval())


def test_a_capacity_router_keeps_the_clean_damaged_routers_calls_and_learns_only_the_new_experts_row() -> None:
    capacity = _capacity_routed()  # big, small, own
    big, own = capacity.plain[0], capacity.router.metasr.student
    previous = _clean_damaged_routed(big, own)
    assert start_rows(capacity, previous) == [0, None, 1]
    g = torch.Generator().manual_seed(5)
    regret = torch.tensor([0.0, 0.01, 0.5]).repeat(16, 1)
    regret[8:] = torch.tensor([0.0, 0.5, 0.5])  # the small expert within the margin on half the tiles
    examples = RoutingExamples(torch.rand(16, 3, 32, 32, generator=g), regret, torch.zeros(16, dtype=torch.bool))
    config = ConvRouterTraining(tile=64, steps=20, batch=8, lr=0.05, margin=0.05)
    router = fit_conv_router(capacity, examples, config, start=previous)
    old = previous.conv_router
    assert router.width == old.width
    for a, b in zip(router.features.state_dict().values(), old.features.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(router.head.weight[[0, 2]], old.head.weight)
    assert torch.equal(router.head.bias[[0, 2]], old.head.bias)
    assert not torch.equal(router.head.weight[1], old.head.weight[0])  # the new row learned
    with torch.no_grad():
        choices = router.on_thumbnail(partial_tiles=True)(examples.thumbnails).argmin(dim=1).flatten()
    assert int((choices == 1).sum()) <= 8  # calibrated: no more tiles than its labels give it
    with pytest.raises(MetaSRError, match="has no conv router"):
        start_rows(capacity, previous.with_conv_router(None))


def _two_expert_routed() -> RoutedMetaSR:
    """Expert 0 brightens every output pixel (a FiLM bias on the last stage), expert 1 is the plain student:
    on clean tiles expert 1 is always best."""
    metasr = responsive_metasr()
    metasr.orchestrator.hard = True
    c, stages = metasr.student.config.channels, metasr.student.num_stages
    neutral = torch.cat([torch.ones(c), torch.zeros(c)] * stages)
    bright = neutral.clone()
    bright[-c:] = 2.0
    torch.manual_seed(1)
    plain = MetaSRStudent(metasr.student.config).eval()
    return RoutedMetaSR(TileRouter(metasr, torch.stack([bright, neutral]), 64, 2), metasr.student, [plain], [1]).eval()


def test_conv_router_training_learns_the_better_expert_and_is_deterministic() -> None:
    routed = _two_expert_routed()
    g = np.random.default_rng(0)
    images = [(g.random((160, 160, 3)) * 255).astype(np.uint8) for _ in range(2)]
    config = ConvRouterTraining(tiles=16, tile=64, steps=30, batch=8, width=8)
    router, fit = train_conv_router(routed, images, images, config)
    again, _ = train_conv_router(routed, images, images, config)
    assert all(
        torch.equal(a, b) for a, b in zip(router.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert fit.first_expert > 1.0  # always expert 0 (the bright one) loses a lot
    assert fit.conv < 0.1 * fit.first_expert
    assert (router.tile, router.thumbnail, router.experts) == (64, 2, 2)


def test_a_conv_routed_checkpoint_round_trips_and_routes_with_its_conv_router(tmp_path) -> None:
    routed = _two_expert_routed()
    conv = ConvRouter(torch.tensor([1.0, 0.0]), 64, 2, 2, width=8).eval()
    with torch.no_grad():
        conv.head.bias.copy_(torch.tensor([5.0, -5.0]))  # always expert 0, whatever the tile
    conv_routed = routed.with_conv_router(conv)
    save_routed(conv_routed, tmp_path / "conv.safetensors")
    loaded = load_graph(tmp_path / "conv.safetensors")
    image = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (loaded.route(image) == 0).all()
        assert torch.equal(loaded(image), conv_routed(image))
        assert torch.equal(loaded(image), routed.experts[0](image))
    assert isinstance(loaded.conv_router, ConvRouter) and loaded.conv_router.width == 8
    assert set(loaded.functions()) == {"router", "expert_0", "expert_1"}
    assert isinstance(loaded.functions()["router"], ConvRouter)
    with pytest.raises(ValueError, match="must match the routing"):
        routed.with_conv_router(ConvRouter(torch.zeros(3), 64, 2, 2))


def test_a_conv_routed_model_exports_its_conv_router_as_the_router_function(tmp_path) -> None:
    torch.manual_seed(3)
    conv = ConvRouter(torch.tensor([1.0, 0.0]), 64, 2, 2, width=8).eval()
    save_routed(_two_expert_routed().with_conv_router(conv), tmp_path / "conv.safetensors")
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=((128, 128),))
    result = export(recipe, tmp_path / "out", checkpoint=tmp_path / "conv.safetensors")
    assert result.parity.passed and result.coverage.fallback == []
    router = onnx.load(result.artifact.parent / "metasr_x2_router.onnx")
    assert sum(n.op_type == "Conv" for n in router.graph.node) == 5  # four feature convs and the head
    assert len(router.graph.node) < 25  # no extractors or orchestrator
    model = load_graph(tmp_path / "conv.safetensors").deciding_per_call()  # the artifact decides per call
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        reference = model(image, model.router.default_strength())
    assert torch.allclose(open_engine(result.artifact).run(image), reference, atol=1e-4)


def test_a_per_call_router_decides_as_the_tile_router_on_one_tile_and_once_on_any_size() -> None:
    router = _router()
    per_call = _router()
    per_call.per_call = True
    one_tile = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    odd = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert torch.allclose(per_call(one_tile), router(one_tile), atol=1e-6)
        assert per_call(odd).shape == (1, 3, 1, 1) and router(odd).shape == (1, 3, 2, 3)
        assert torch.allclose(per_call.on_thumbnail()(odd[..., ::2, ::2]), per_call(odd), atol=1e-6)


def test_a_conv_routed_artifact_takes_any_size_and_runs_one_expert_per_call(tmp_path) -> None:
    torch.manual_seed(0)
    conv = ConvRouter(torch.tensor([1.0, 0.0]), 64, 2, 2, width=8).eval()
    frames = [torch.full((1, 3, 96, 160), v) for v in (0.0, 1.0)]  # dark and bright: one expert each
    with torch.no_grad():
        dark, bright = (conv.features(f[..., ::2, ::2]).mean(dim=(2, 3))[0] for f in frames)
        channel = int((bright - dark).argmax())  # expert 1 where this feature channel's mean is high
        conv.head.weight.zero_()
        conv.head.bias.zero_()
        conv.head.weight[1, channel] = 1.0
        conv.head.bias[1] = -float(dark[channel] + bright[channel]) / 2
    routed = _two_expert_routed().with_conv_router(conv)
    save_routed(routed, tmp_path / "conv.safetensors")
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=((96, 160),))  # not whole 64-px routing tiles
    result = export(recipe, tmp_path / "out", checkpoint=tmp_path / "conv.safetensors")
    manifest = json.loads(result.manifest.read_text())
    assert manifest["routing"]["tile"] == 0 and manifest["routing"]["router"]["output"]["shapes"] == [[1, 2, 1, 1]]
    assert "for the whole image tile" in manifest["routing"]["dispatch"]
    engine = open_engine(result.artifact)
    per_call = routed.deciding_per_call()
    with torch.no_grad():
        routes = [int(per_call.route(f).item()) for f in frames]
        assert routes == [0, 1] == [int(engine.route(f).item()) for f in frames]
        for frame, k in zip(frames, routes, strict=True):
            assert torch.allclose(engine.run(frame), routed.experts[k](frame), atol=1e-4)


def test_plain_students_make_a_routed_model_of_each_then_the_models_own(tmp_path) -> None:
    torch.manual_seed(0)
    clean, mild, damaged = (MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)).eval() for _ in range(3))
    wrapped = build_metasr(damaged).eval()  # a plain student: identity orchestrator
    images = [np.zeros((256, 256, 3), dtype=np.uint8)]
    two = build_routed(wrapped, images, RoutingConfig(tile=64), [clean])
    three = build_routed(wrapped, images, RoutingConfig(tile=64), [clean, mild])
    save_routed(three, tmp_path / "three.safetensors")
    loaded = load_graph(tmp_path / "three.safetensors")
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(two.experts[0](image), clean(image), atol=1e-5)
        assert torch.allclose(two.experts[1](image), damaged(image), atol=1e-5)
        for k, student in enumerate((clean, mild, damaged)):
            assert torch.allclose(loaded.experts[k](image), student(image), atol=1e-5), k
    assert (two.plain_experts, three.plain_experts, loaded.plain_experts) == ((0,), (0, 1), (0, 1))
    with pytest.raises(MetaSRError, match="single expert"):
        build_routed(wrapped, images, RoutingConfig(tile=64))
    with pytest.raises(MetaSRError, match="a clustered MetaSR takes one"):
        build_routed(responsive_metasr(), images, RoutingConfig(tile=64), [clean, mild])


def test_the_router_starts_from_the_damage_estimators_trunk() -> None:
    routed = _two_expert_routed()
    g = np.random.default_rng(1)
    images = [(g.random((160, 160, 3)) * 255).astype(np.uint8)]
    examples = routing_examples(routed, images, 8, 64, seed=0)
    start = fit_conv_router(routed, examples, ConvRouterTraining(tile=64, steps=1, batch=4, lr=1e-12))
    estimator = load_estimator(shipped_weights("damage_estimator.safetensors"))
    for conv, trained in zip(start.features[::2], trunk(estimator), strict=True):
        assert torch.allclose(conv.weight, trained.weight, atol=1e-6)
    scratch = fit_conv_router(
        routed, examples, ConvRouterTraining(tile=64, steps=1, batch=4, width=8, from_damage=False)
    )
    assert scratch.width == 8 and start.width == estimator.conv1.out_channels


def test_a_conv_routed_model_with_its_strength_path_runs_on_the_neural_engine(tmp_path) -> None:
    torch.manual_seed(3)
    conv = ConvRouter(torch.tensor([1.0, 0.0]), 64, 2, 2, width=8).eval()
    save_routed(_two_expert_routed().with_conv_router(conv), tmp_path / "conv.safetensors")
    recipe = with_overrides(resolve_recipe("coreml"), input_sizes=((128, 128),))
    result = export(recipe, tmp_path / "out", checkpoint=tmp_path / "conv.safetensors")  # refused if an op falls back
    assert result.parity.passed and result.coverage.fallback == [] and result.coverage.fraction == 1.0


def test_metasr_train_conv_router_reads_every_photo_folder_and_routing_tiles_below_its_example_tile(tmp_path) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from metasr.train_cli import train_group

    save_routed(_two_expert_routed(), tmp_path / "routed.safetensors")
    g = np.random.default_rng(0)
    for folder in ("corpus", "photos"):
        (tmp_path / folder).mkdir()
        for i in range(2):
            Image.fromarray((g.random((288, 288, 3)) * 255).astype(np.uint8)).save(tmp_path / folder / f"{i}.png")
    args = ["conv-router", "--routed", str(tmp_path / "routed.safetensors"), "--corpus", str(tmp_path / "corpus")]
    args += ["--tiles", "16", "--steps", "2", "--out", str(tmp_path / "conv.safetensors")]
    result = CliRunner().invoke(train_group, [*args, "--extra-data", str(tmp_path / "photos"), "--damage", "mild"])
    assert result.exit_code == 0, result.output
    assert "on 4 held-out tiles the conv router loses" in result.output
    assert isinstance(load_graph(tmp_path / "conv.safetensors").conv_router, ConvRouter)
    missing = CliRunner().invoke(train_group, [*args, "--extra-data", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "nowhere does not exist" in missing.output
    started = [*args, "--margin", "0.05", "--tile", "64", "--from-router", str(tmp_path / "conv.safetensors")]
    result = CliRunner().invoke(train_group, started)
    assert result.exit_code == 0, result.output
    assert "its choices cost 1.00 of the dearest expert's MACs" in result.output  # two experts of one size
    save_routed(_two_expert_routed(), tmp_path / "no_router.safetensors")
    started[-1] = str(tmp_path / "no_router.safetensors")
    refused = CliRunner().invoke(train_group, started)
    assert refused.exit_code != 0 and "has no conv router" in refused.output


def test_metasr_train_replace_expert_swaps_one_plain_expert_and_keeps_the_router(tmp_path) -> None:
    from click.testing import CliRunner

    from metasr.checkpoint import save_student
    from metasr.train_cli import train_group

    torch.manual_seed(4)
    routed = _two_expert_routed().with_conv_router(ConvRouter(torch.tensor([1.0, 0.0]), 64, 2, 2, width=8).eval())
    save_routed(routed, tmp_path / "routed.safetensors")
    torch.manual_seed(5)
    longer = MetaSRStudent(routed.plain[0].config).eval()
    save_student(longer, tmp_path / "longer.safetensors")
    args = ["replace-expert", "--routed", str(tmp_path / "routed.safetensors"), "--student"]
    args += [str(tmp_path / "longer.safetensors"), "--out", str(tmp_path / "out.safetensors"), "--expert"]
    result = CliRunner().invoke(train_group, [*args, "1"])
    assert result.exit_code == 0, result.output
    replaced = load_graph(tmp_path / "out.safetensors")
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(replaced.experts[1](image), longer(image), atol=1e-5)
        assert not torch.allclose(replaced.experts[1](image), routed.experts[1](image), atol=1e-3)
        assert torch.equal(replaced.experts[0](image), routed.experts[0](image))
        assert torch.equal(replaced.route(image), routed.route(image))
    for key, value in routed.conv_router.state_dict().items():
        assert torch.equal(replaced.conv_router.state_dict()[key], value), key
    folded = CliRunner().invoke(train_group, [*args, "0"])
    assert folded.exit_code != 0 and "expert 0 is not a plain student (plain experts: [1])" in folded.output
    save_student(MetaSRStudent(replace(routed.plain[0].config, scale=4)).eval(), tmp_path / "x4.safetensors")
    args[args.index(str(tmp_path / "longer.safetensors"))] = str(tmp_path / "x4.safetensors")
    wrong_scale = CliRunner().invoke(train_group, [*args, "1"])
    assert wrong_scale.exit_code != 0 and "need one plain x2 student each (given: x4)" in wrong_scale.output
    with torch.no_grad():  # refused before writing: the earlier output is untouched
        assert torch.allclose(load_graph(tmp_path / "out.safetensors").experts[1](image), longer(image), atol=1e-5)


def test_tiles_are_labelled_chunk_by_chunk_the_damaged_chunks_taking_the_damage_configs_in_turn() -> None:
    routed = _two_expert_routed()
    g = np.random.default_rng(2)
    images = [(g.random((200, 200, 3)) * 255).astype(np.uint8) for _ in range(2)]
    count = 2 * LABEL_CHUNK + 2 * LABEL_CHUNK + 6  # clean and damaged halves of two full chunks and a part
    examples = routing_examples(routed, images, count, 32, seed=0)
    assert examples.thumbnails.shape == (count, 3, 16, 16) and examples.regret.shape == (count, 2)
    assert int(examples.damaged.sum()) == count - count // 2 and not examples.damaged[: count // 2].any()
    again = routing_examples(routed, images, count, 32, seed=0)
    assert torch.equal(examples.thumbnails, again.thumbnails) and torch.equal(examples.regret, again.regret)
    mixed = routing_examples(routed, images, count, 32, seed=0, damage=(REAL_ESRGAN_X4PLUS, REAL_ESRGAN_MILD))
    clean = slice(0, count // 2)
    assert torch.equal(mixed.thumbnails[clean], examples.thumbnails[clean])  # the same crops, the same clean half
    first, second = slice(count // 2, count // 2 + LABEL_CHUNK), slice(count // 2 + LABEL_CHUNK, None)
    assert torch.equal(mixed.thumbnails[first], examples.thumbnails[first])  # both start with the full range
    assert not torch.equal(mixed.thumbnails[second], examples.thumbnails[second])  # then the mild form
    one_batch = routing_examples(routed, images, count, 32, seed=0, chunk=count // 2)
    assert torch.equal(one_batch.thumbnails, training_tiles(images, 32, 2, count)[0][:, :, ::2, ::2])  # as before
    lr, _ = PatchSampler(images, 32, 2, seed=0).sample(count)  # the same crops, every one bicubic
    assert torch.equal(examples.thumbnails[clean], lr[clean, :, ::2, ::2])
    assert (examples.thumbnails[count // 2 :] - lr[count // 2 :, :, ::2, ::2]).abs().mean() > 0.01


def test_labelling_more_tiles_than_memory_holds_is_refused_before_any_tile_is_cut() -> None:
    routed = _two_expert_routed()
    images = [np.zeros((160, 160, 3), dtype=np.uint8)]
    config = ConvRouterTraining(tiles=10_000_000, tile=64, steps=1)
    with pytest.raises(MetaSRError, match=r"labelling 10000000 tiles of 64 px at x2 needs about .* use --tiles \d+"):
        train_conv_router(routed, images, images, config)


def test_a_routed_artifact_of_experts_of_different_sizes_reports_each_experts_macs(tmp_path) -> None:
    routed = _capacity_routed()
    torch.manual_seed(3)
    save_routed(
        routed.with_conv_router(ConvRouter(torch.tensor([0.0, 0.5, 1.0]), 64, 2, 2, width=8).eval()),
        tmp_path / "c.safetensors",
    )
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=((64, 64),))
    result = export(recipe, tmp_path / "out", checkpoint=tmp_path / "c.safetensors")
    assert result.parity.passed and result.coverage.fallback == []
    manifest = json.loads(result.manifest.read_text())
    macs = [e["macs_per_output_pixel"] for e in manifest["routing"]["experts"]]
    assert macs == pytest.approx(expert_costs(routed).tolist(), abs=0.1)
    assert manifest["macs_per_output_pixel"]["student"] == pytest.approx(max(macs), abs=0.1)  # the dearest
