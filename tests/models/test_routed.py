"""Routed MetaSR: folding a FiLM vector into the convs is exact, routing picks the nearest expert per tile,
and k-means is deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from metasr.assembly import PLAIN, ROUTING_KEY, load_graph, save_routed
from metasr.distill.routing import (
    RouterTraining,
    best_experts,
    kmeans,
    plain_clusters,
    router_choices,
    tile_vectors,
    train_thumbnail_router,
    training_tiles,
)
from metasr.errors import MetaSRError
from metasr.models import MetaSRStudent, StudentConfig
from metasr.models.routed import RoutedMetaSR, TileRouter, fold_modulation
from metasr.safe_weights import read_state, save_state
from tests.conftest import responsive_metasr


def _modulation(student: MetaSRStudent, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    c, stages = student.config.channels, student.num_stages
    films = [
        torch.cat([1 + 0.3 * torch.randn(c, generator=g), 0.1 * torch.randn(c, generator=g)]) for _ in range(stages)
    ]
    return torch.cat(films)


def test_folded_expert_equals_the_modulated_student() -> None:
    torch.manual_seed(0)
    student = MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=3)).eval()
    vector = _modulation(student, 1)
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected = student(image, vector.reshape(1, -1, 1, 1))
        folded = fold_modulation(student, vector)(image)
    assert torch.allclose(folded, expected, atol=1e-5)
    assert all(block.fused is not None for block in fold_modulation(student, vector).blocks)
    assert student.blocks[0].fused is None  # the original is left as it was


def test_each_tile_runs_the_expert_nearest_to_its_mean_film() -> None:
    metasr = responsive_metasr()
    image = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        vectors = TileRouter(metasr, torch.zeros(1, metasr.student.modulation_channels), 32).tile_modulation(image)
        tiles = vectors[0].flatten(1).T  # (tiles, M): one expert per tile, exactly at its vector
        routed = RoutedMetaSR(TileRouter(metasr, tiles, 32), metasr.student)
        routes = routed.route(image)
        out = routed(image)
    assert routes.tolist() == [[list(range(4)), list(range(4, 8))]]
    for k in range(8):
        row, col = divmod(k, 4)
        region = (slice(None), slice(None), slice(row * 64, row * 64 + 64), slice(col * 64, col * 64 + 64))
        with torch.no_grad():
            assert torch.equal(out[region], routed.experts[k](image)[region])


def test_kmeans_is_deterministic_and_finds_separated_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g) for c in centres])
    first, second = kmeans(points, 3, seed=3), kmeans(points, 3, seed=3)
    assert torch.equal(first, second)
    assert torch.cdist(centres, first).min(dim=1).values.max() < 0.1


def test_tile_vectors_are_the_orchestrators_mean_film() -> None:
    metasr = responsive_metasr()
    tiles = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        vectors = tile_vectors(metasr, tiles, 64, batch=2)
        cells = metasr.decide(tiles).stacked_modulation()
    assert vectors.shape == (3, metasr.student.modulation_channels)
    assert torch.allclose(vectors, cells.mean(dim=(2, 3)), atol=1e-6)


def test_router_scores_are_squared_distances_less_the_distance_to_the_centroids_mean() -> None:
    metasr = responsive_metasr()
    image = torch.rand(1, 3, 128, 128)
    centroids = torch.randn(3, metasr.student.modulation_channels, generator=torch.Generator().manual_seed(0))
    router = TileRouter(metasr, centroids, 64, thumbnail=2)
    with torch.no_grad():
        scores = router(image)
        vectors = router.tile_modulation(image)
        pooled = metasr.decide(image[..., ::2, ::2]).stacked_modulation()
    assert torch.allclose(vectors, pooled, atol=1e-6)  # a 64-px tile is one cell of the half-size thumbnail
    distances = torch.cdist(vectors.flatten(2).transpose(1, 2), centroids[None]) ** 2  # (1, tiles, K)
    to_mean = torch.cdist(vectors.flatten(2).transpose(1, 2), centroids.mean(dim=0)[None, None]) ** 2  # |v - m|^2
    assert torch.allclose(scores.flatten(2).transpose(1, 2), distances - to_mean, atol=1e-3)
    assert torch.equal(scores.argmin(dim=1), distances.transpose(1, 2).reshape(scores.shape).argmin(dim=1))


def test_best_expert_is_the_one_nearest_the_hr_tile() -> None:
    torch.manual_seed(0)
    student = MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)).eval()
    experts = [fold_modulation(student, _modulation(student, seed)) for seed in range(3)]
    lr = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        hr = experts[2](lr)
        hr[:2] = experts[1](lr[:2])
    assert best_experts(experts, lr, hr, batch=2).tolist() == [1, 1, 2, 2, 2]


def test_thumbnail_router_training_moves_only_its_own_copy_toward_its_labels() -> None:
    metasr = responsive_metasr()
    tiles = torch.rand(48, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    centroids = tile_vectors(metasr, tiles[:3], 64)  # three experts at three tiles' FiLM
    full = TileRouter(metasr, centroids, 64)
    labels = router_choices(full, tiles)
    before = [p.clone() for p in metasr.parameters()]
    router, agreement = train_thumbnail_router(full, 2, tiles, labels, (tiles, labels), RouterTraining(steps=60))
    assert all(torch.equal(a, b) for a, b in zip(before, metasr.parameters(), strict=True))
    assert router.thumbnail == 2 and torch.equal(router.centroids, full.centroids)
    assert 0.0 <= agreement.before <= 1.0 and agreement.after >= agreement.before
    assert agreement.after == pytest.approx(float((router_choices(router, tiles) == labels).float().mean()))


def test_routing_tiles_larger_than_the_photos_are_refused() -> None:
    images = [np.zeros((200, 300, 3), dtype=np.uint8)]
    with pytest.raises(MetaSRError, match="at least 256 px a side"):
        training_tiles(images, 128, 2, 4)


def test_a_plain_student_takes_the_clusters_it_restores_better() -> None:
    torch.manual_seed(0)
    student = MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)).eval()
    plain = MetaSRStudent(StudentConfig(scale=2, channels=8, num_blocks=2)).eval()  # other weights
    experts = [fold_modulation(student, _modulation(student, seed)) for seed in range(3)]
    lr = torch.rand(6, 3, 32, 32)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    with torch.no_grad():
        hr = plain(lr).clamp(0, 1)  # plain is exact on clusters 0 and 2, expert 1 on cluster 1
        hr[2:4] = experts[1](lr[2:4]).clamp(0, 1)
    assert plain_clusters(experts, plain, lr, hr, labels) == [0, 2]


def test_plain_experts_are_the_plain_student_and_survive_a_checkpoint(tmp_path) -> None:
    metasr = responsive_metasr()
    metasr.orchestrator.hard = True  # the inference form, as loading gives
    torch.manual_seed(5)
    plain = MetaSRStudent(metasr.student.config).eval()
    image = torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        vectors = TileRouter(metasr, torch.zeros(1, metasr.student.modulation_channels), 32).tile_modulation(image)
        router = TileRouter(metasr, vectors[0].flatten(1).T, 32)
        routed = RoutedMetaSR(router, metasr.student, [plain, plain], [1, 6]).eval()
        save_routed(routed, tmp_path / "routed.safetensors")
        loaded = load_graph(tmp_path / "routed.safetensors")
        assert loaded.plain_experts == (1, 6)
        assert torch.equal(loaded(image), routed(image))
        assert torch.allclose(loaded.experts[6](image), plain(image), atol=1e-5)  # folded RepBlocks, same output
        assert not torch.allclose(loaded.experts[5](image), plain(image), atol=1e-3)
    with pytest.raises(ValueError, match="increasing indices"):
        RoutedMetaSR(routed.router, metasr.student, [plain], [9])
    with pytest.raises(ValueError, match="need one plain x2 student each"):
        RoutedMetaSR(routed.router, metasr.student, [plain], [1, 6])


def test_a_checkpoint_with_one_plain_student_for_several_experts_still_loads(tmp_path) -> None:
    metasr = responsive_metasr()
    metasr.orchestrator.hard = True
    torch.manual_seed(5)
    plain = MetaSRStudent(metasr.student.config).eval()
    centroids = torch.zeros(3, metasr.student.modulation_channels)
    routed = RoutedMetaSR(TileRouter(metasr, centroids, 32), metasr.student, [plain, plain], [0, 2]).eval()
    save_routed(routed, tmp_path / "new.safetensors")
    state, metadata = read_state(tmp_path / "new.safetensors")
    routing = json.loads(metadata[ROUTING_KEY])
    routing["plain_config"] = routing.pop("plain_configs")[0]  # the form written before several plain students
    state = {k.replace(f"{PLAIN}0.", PLAIN): v for k, v in state.items() if not k.startswith(f"{PLAIN}1.")}
    save_state(state, tmp_path / "old.safetensors", {**metadata, ROUTING_KEY: json.dumps(routing)})
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(load_graph(tmp_path / "old.safetensors")(image), routed(image))


def test_the_dispatch_feeds_the_router_a_contiguous_copy_of_the_thumbnail() -> None:
    from metasr.models.routed import RoutedDispatch, thumbnail_of

    image = torch.rand(1, 3, 64, 96)
    seen = []

    def router(thumbnail: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        seen.append(thumbnail)
        return torch.tensor([[[[1.0]], [[0.0]]]])

    experts = [lambda x: torch.zeros(1, 3, 128, 192), lambda x: torch.ones(1, 3, 128, 192)]
    out = RoutedDispatch(router, experts, 0, 2, 2).run(image, torch.full((1, 1, 1, 1), -1.0))
    assert seen[0].is_contiguous() and torch.equal(seen[0], thumbnail_of(image, 2))
    assert torch.equal(out, torch.ones(1, 3, 128, 192))  # the lower score names expert 1
