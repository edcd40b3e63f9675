"""Build a routed MetaSR: experts at the k-means centroids of the orchestrator's per-tile FiLM on training
tiles (:func:`build_routed`); a conv router trained to pick, per tile, the expert that restores it best, or with a
margin the cheapest expert nearly as good (:func:`train_conv_router`, the deployed router; capacity routing
across experts of different sizes); and a thumbnail router trained to pick the expert the
full-resolution router picks (studied in benchmarks/routing.py, not shipped)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import psutil
import torch
import torch.nn.functional as F

from metasr.data.degradations import REAL_ESRGAN_X4PLUS, DegradationConfig, degrade
from metasr.data.folder import PatchSampler
from metasr.errors import MetaSRError
from metasr.metadata.degradation import load_estimator
from metasr.metadata.degree_estimator import DegreeEstimator
from metasr.models.conv_router import ConvRouter
from metasr.models.metasr import MetaSR
from metasr.models.routed import RoutedMetaSR, TileRouter, fold_modulation, thumbnail_of
from metasr.models.student import MetaSRStudent
from metasr.progress import progress_bar
from metasr.safe_weights import shipped_weights
from metasr.validate.macs import macs_per_output_pixel

LABEL_CHUNK = 64  # tiles cut and labelled at a time
LABEL_CHUNK_OVERHEAD = 8  # a chunk's working memory over its HR tiles' bytes: damage, experts' outputs, errors


@dataclass(frozen=True)
class RoutingConfig:
    """How :func:`build_routed` clusters: ``experts`` centroids of ``tiles`` training tiles, ``tile`` LR pixels
    per routing cell, the router reading every ``thumbnail``-th pixel."""

    experts: int = 4
    tile: int = 64
    thumbnail: int = 2
    tiles: int = 512
    seed: int = 0


def build_routed(
    metasr: MetaSR, images: list[np.ndarray], config: RoutingConfig, plain: Sequence[MetaSRStudent] = ()
) -> RoutedMetaSR:
    """A routed MetaSR whose experts sit at the k-means centroids of the thumbnail router's per-tile FiLM on
    training tiles of ``images`` (half clean, half Real-ESRGAN-damaged); deterministic. With one ``plain``
    student, each cluster whose tiles it restores better (lower mean squared error) gets it as its expert instead.

    A MetaSR whose orchestrator is the identity (a plain student, e.g. one trained on damaged photos) decides
    nothing, so it is one expert: the routed model's experts are then the ``plain`` students in order and that
    student last, for a conv router (:func:`train_conv_router`) to choose between."""
    if metasr.orchestrator.is_identity():
        if not plain:
            raise MetaSRError(
                "a MetaSR with an identity orchestrator (a plain student) is a single expert; pass --plain with a "
                "second student to route between the two"
            )
        neutral = metasr.student.neutral_modulation().flatten()
        router = TileRouter(metasr, neutral.expand(len(plain) + 1, -1).clone(), config.tile, config.thumbnail)
        return RoutedMetaSR(router, metasr.student, plain, range(len(plain))).eval()
    if len(plain) > 1:
        raise MetaSRError(
            f"{len(plain)} plain students given: a clustered MetaSR takes one (it replaces the clusters it restores "
            "better); route several plain students from a plain student's --model"
        )
    tiles, hr = training_tiles(images, config.tile, metasr.scale, config.tiles, config.seed)
    vectors = tile_vectors(metasr, tiles, config.tile, thumbnail=config.thumbnail)
    centroids = kmeans(vectors, config.experts, config.seed)
    chosen: list[int] = []
    if plain:
        folded = [fold_modulation(metasr.student, c) for c in centroids]
        chosen = plain_clusters(folded, plain[0].eval(), tiles, hr, torch.cdist(vectors, centroids).argmin(dim=1))
    router = TileRouter(metasr, centroids, config.tile, config.thumbnail)
    return RoutedMetaSR(router, metasr.student, [*plain[:1]] * len(chosen), chosen).eval()


@torch.no_grad()
def plain_clusters(
    experts: list[torch.nn.Module], plain: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor, labels: torch.Tensor
) -> list[int]:
    """The clusters (indices into ``experts``) whose tiles (``labels``: each tile's cluster) ``plain`` restores
    with a lower mean squared error than the cluster's own expert."""
    chosen = []
    for k, expert in enumerate(experts):
        members = labels == k
        if members.any() and _mse(plain, lr[members], hr[members]) < _mse(expert, lr[members], hr[members]):
            chosen.append(k)
    return chosen


def _mse(model: torch.nn.Module, lr: torch.Tensor, hr: torch.Tensor, batch: int = 32) -> float:
    errors = [(model(lr[i : i + batch]).clamp(0, 1) - hr[i : i + batch]).pow(2).sum() for i in range(0, len(lr), batch)]
    return float(sum(errors) / hr.numel())


def training_tiles(
    images: list[np.ndarray], tile: int, scale: int, count: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` LR tiles (count, 3, tile, tile), half bicubic-clean and half Real-ESRGAN-damaged, with their HR
    crops; deterministic. One resize draw for every damaged tile (:func:`tile_chunks` in one chunk per half)."""
    lr, hr = zip(*tile_chunks(images, tile, scale, count, seed, (REAL_ESRGAN_X4PLUS,), chunk=count), strict=True)
    return torch.cat(lr), torch.cat(hr)


def tile_chunks(
    images: list[np.ndarray],
    tile: int,
    scale: int,
    count: int,
    seed: int,
    damage: Sequence[DegradationConfig],
    chunk: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``count`` (LR, HR) tiles of ``tile`` LR pixels, ``chunk`` at a time: the first half bicubic-clean, the
    second damaged, each damaged chunk drawing its own Real-ESRGAN resize factors and modes (drawn once per batch)
    from the next of ``damage``'s configs in turn; deterministic. The crops do not depend on ``chunk``."""
    _check_tile_room(images, tile, scale)
    sampler = PatchSampler(images, tile, scale, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    clean = count // 2
    chunks: list[tuple[int, DegradationConfig | None]] = [(n, None) for n in _chunks(clean, chunk)]
    chunks += [(n, damage[i % len(damage)]) for i, n in enumerate(_chunks(count - clean, chunk))]
    for n, config in chunks:
        lr, hr = sampler.sample(n)
        yield (lr if config is None else degrade(hr, scale, config, generator).lr), hr


@torch.no_grad()
def expert_errors(experts: list[torch.nn.Module], lr: torch.Tensor, hr: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """Mean squared error of each expert's output on each tile, (tiles, K)."""
    errors = []
    for i in range(0, len(lr), batch):
        outputs = torch.stack([expert(lr[i : i + batch]).clamp(0, 1) for expert in experts], dim=1)
        errors.append((outputs - hr[i : i + batch, None]).pow(2).mean(dim=(2, 3, 4)))
    return torch.cat(errors)


def regret_db(errors: torch.Tensor) -> torch.Tensor:
    """What each choice loses against the tile's best expert, in dB of PSNR: (tiles, K), 0 for the best."""
    return 10.0 * torch.log10(errors / errors.min(dim=1, keepdim=True).values)


def capacity_labels(regret: torch.Tensor, costs: torch.Tensor, margin: float) -> torch.Tensor:
    """Each tile's label for capacity routing (ClassSR, CVPR 2021): the cheapest expert (``costs``, one per
    expert) whose output loses at most ``margin`` dB against the tile's best, the better of equally cheap ones.
    ``margin`` 0 labels each tile with its best expert."""
    cost = torch.where(regret <= margin, costs[None, :], torch.inf)
    cheapest = cost == cost.min(dim=1, keepdim=True).values
    return torch.where(cheapest, regret, torch.inf).argmin(dim=1)


def expert_costs(routed: RoutedMetaSR, tile: int = 64) -> torch.Tensor:
    """Each expert's MACs per output pixel."""
    image, pixels = torch.zeros(1, 3, tile, tile), (tile * routed.scale) ** 2
    return torch.tensor([macs_per_output_pixel(expert, (image,), pixels) for expert in routed.experts])


def restoration_levels(best: torch.Tensor, damaged: torch.Tensor, experts: int) -> torch.Tensor:
    """Each expert's restoration level in [0, 1] for the ``strength`` override: experts ranked by the share
    of damaged tiles among those they restore best (0: the clean-photo expert, 1: the heaviest damage)."""
    share = torch.tensor(
        [float(damaged[best == k].float().mean()) if (best == k).any() else 0.5 for k in range(experts)]
    )
    ranks = torch.empty(experts)
    ranks[torch.sort(share, stable=True).indices] = torch.arange(experts, dtype=torch.float32)
    return ranks / max(1, experts - 1)


@dataclass(frozen=True)
class ConvRouterTraining:
    """How :func:`train_conv_router` learns: ``tiles`` training tiles of ``tile`` LR pixels (half clean, half
    Real-ESRGAN-damaged; smaller than the routing tile is cheaper to label, and the router averages its features
    over a tile anyway), ``steps`` Adam steps of ``batch`` tiles at learning rate ``lr`` (cosine) of cross-entropy
    towards each tile's best expert, a clean tile's loss weighted ``clean_weight`` (clean frames are the common
    case, and a damage expert on a clean tile costs little per tile but shows on every photo), a router ``width``
    wide. Cross-entropy, not the expected PSNR lost: that loss stops pushing once a wrong expert is confident.
    With ``from_damage`` the router's convolutions start from the shipped ``damage`` estimator (same trunk, its
    width): trained by ranking the same crop clean and damaged, it already sees what a classifier trained from
    scratch on these tiles does not learn (measured: held-out clean/damaged accuracy 0.5 from scratch, 0.87
    from the estimator, after 1000 steps). The damaged tiles take ``damage``'s configs in turn, ``label_chunk``
    tiles at a time (:func:`routing_examples`); a training tile's regret weighted into the loss was tried and lost
    (TRAINING.md section 5). With a ``margin`` (dB), a tile's target is the cheapest expert within it of the best
    (:func:`capacity_labels`): experts of different sizes, the small one for the tiles it restores nearly as well."""

    tiles: int = 2048
    tile: int = 128
    steps: int = 2000
    batch: int = 32
    lr: float = 2e-3
    clean_weight: float = 1.0
    width: int = 16
    from_damage: bool = True
    damage: tuple[DegradationConfig, ...] = (REAL_ESRGAN_X4PLUS,)
    label_chunk: int = LABEL_CHUNK
    margin: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class RoutingExamples:
    """Tiles as the router sees them, with what each expert's output would lose on them."""

    thumbnails: torch.Tensor  # (n, 3, h, w): each tile's thumbnail
    regret: torch.Tensor  # (n, K): dB of PSNR lost against the tile's best expert
    damaged: torch.Tensor  # (n,): Real-ESRGAN-damaged (else bicubic-clean)


@dataclass(frozen=True)
class RouterFit:
    """Mean dB of PSNR lost per held-out tile against its best expert, for each way of choosing."""

    orchestrator: float  # the orchestrator's own (k-means) router
    conv: float  # the trained conv router
    first_expert: float  # always expert 0, for scale
    tiles: int
    conv_cost: float  # the conv router's choices' mean MACs per output pixel over the dearest expert's


def routing_examples(
    routed: RoutedMetaSR,
    images: list[np.ndarray],
    count: int,
    tile: int,
    seed: int,
    damage: Sequence[DegradationConfig] = (REAL_ESRGAN_X4PLUS,),
    chunk: int = LABEL_CHUNK,
) -> RoutingExamples:
    """``count`` tiles of ``tile`` LR pixels from ``images`` (:func:`tile_chunks`: the first half clean, the
    second damaged, ``chunk`` at a time, so memory holds one chunk of HR tiles and the thumbnails), labelled by the
    experts' errors against the HR tiles; deterministic. A chunk as large as the damaged half labels as the conv
    routers before chunking did (one resize draw for every damaged tile: the shipped x2 router)."""
    experts = list(routed.experts)
    thumbnails, regret = [], []
    with progress_bar() as bar:
        task = bar.add_task("labelling tiles by their best expert", total=count)
        for lr, hr in tile_chunks(images, tile, routed.scale, count, seed, damage, chunk):
            thumbnails.append(thumbnail_of(lr, routed.router.thumbnail).contiguous())
            regret.append(regret_db(expert_errors(experts, lr, hr)))
            bar.advance(task, len(lr))
    return RoutingExamples(torch.cat(thumbnails), torch.cat(regret), torch.arange(count) >= count // 2)


def _chunks(count: int, chunk: int) -> list[int]:
    return [min(chunk, count - start) for start in range(0, count, chunk)]


def _check_tile_room(images: list[np.ndarray], tile: int, scale: int) -> None:
    smallest = min(min(image.shape[:2]) for image in images)
    if smallest < tile * scale:
        raise MetaSRError(
            f"routing tile {tile} needs training photos of at least {tile * scale} px a side at x{scale} (the "
            f"smallest is {smallest} px); use a smaller --tile or larger photos"
        )


def trunk(estimator: DegreeEstimator) -> list[torch.nn.Conv2d]:
    """The degree estimator's convolutions in the order a :class:`ConvRouter`'s features hold them."""
    return [estimator.conv1, estimator.conv2, estimator.conv3, estimator.conv4]


def start_rows(routed: RoutedMetaSR, previous: RoutedMetaSR) -> list[int | None]:
    """For each of ``routed``'s experts, the expert of ``previous`` with the same weights (the head row its
    router starts from), or None for an expert ``previous`` lacks (a new, smaller one)."""
    if previous.conv_router is None:
        raise MetaSRError("the routed checkpoint to start from has no conv router; train one with conv-router first")
    if previous.scale != routed.scale:
        raise MetaSRError(f"the router to start from routes x{previous.scale} experts; these are x{routed.scale}")

    def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
        x, y = a.state_dict(), b.state_dict()
        return x.keys() == y.keys() and all(torch.equal(x[n], y[n]) for n in x)

    rows = [next((j for j, old in enumerate(previous.experts) if same(new, old)), None) for new in routed.experts]
    if all(row is None for row in rows):
        raise MetaSRError("no expert of the routed checkpoint to start from is one of these experts; start afresh")
    return rows


def _start_from(learner: ConvRouter, previous: ConvRouter, rows: list[int | None]) -> None:
    """``learner`` as ``previous`` (a new expert's row as the first, clean expert's), with only the new experts'
    rows left to learn: the previous router's choices among its own experts are kept."""
    with torch.no_grad():
        learner.features.load_state_dict(previous.features.state_dict())
        start = [0 if row is None else row for row in rows]
        learner.head.weight.copy_(previous.head.weight[start])
        learner.head.bias.copy_(previous.head.bias[start])
    learner.features.requires_grad_(False)
    new = torch.tensor([row is None for row in rows], dtype=torch.float32)
    learner.head.weight.register_hook(lambda grad: grad * new[:, None, None, None])
    learner.head.bias.register_hook(lambda grad: grad * new)


@torch.no_grad()
def _calibrate_new_rows(learner: ConvRouter, examples: RoutingExamples, labels: torch.Tensor, new: list[int]) -> None:
    """Lower each new expert's bias until the router sends it no more of ``examples`` than ``labels`` do: trained
    towards a margin, a cheap expert's row wins more tiles than it should (measured: 37 % of the held-out tiles
    where their labels give it 24 %, and 0.5 dB lost on smooth wallpapers through app tiles)."""
    learner.eval()
    logits = torch.cat([learner.logits(t).flatten(1) for t in examples.thumbnails.split(64)])
    for k in new:
        others = torch.cat([logits[:, :k], logits[:, k + 1 :]], dim=1).max(dim=1).values
        lead = (logits[:, k] - others).sort(descending=True).values
        allowed = int((labels == k).sum())
        if allowed < len(lead):  # halfway between the last tile it keeps and the first it gives up: no rounding tie
            kept = float(lead[allowed - 1]) if allowed else float(lead[0]) + 1.0
            learner.head.bias[k] -= max(0.0, (kept + float(lead[allowed])) / 2)


def fit_conv_router(
    routed: RoutedMetaSR,
    examples: RoutingExamples,
    config: ConvRouterTraining,
    start: RoutedMetaSR | None = None,
    calibration: RoutingExamples | None = None,
) -> ConvRouter:
    """A :class:`ConvRouter` for ``routed``'s experts (its tile and thumbnail) trained on ``examples``. With
    ``start``, it is that routed model's conv router plus a head row per new expert (:func:`start_rows`), and only
    those rows learn, then are calibrated on ``calibration`` (fresh tiles of the training photos; default
    ``examples``) (:func:`_calibrate_new_rows`): a router that tells clean from damaged
    keeps its calls while it learns which tiles a new, smaller expert takes. Retraining all of it from the start
    sent damaged validation tiles to the small clean expert (damaged validation 33.47 -> 32.45 dB)."""
    k, tile, t = len(routed.experts), routed.router.tile, routed.router.thumbnail
    costs = expert_costs(routed)
    best = capacity_labels(examples.regret, costs, config.margin)
    levels = restoration_levels(best, examples.damaged, k)
    estimator = None
    if start is not None:
        width = start.conv_router.width
    else:
        estimator = load_estimator(shipped_weights("damage_estimator.safetensors")) if config.from_damage else None
        width = config.width if estimator is None else estimator.conv1.out_channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        router = ConvRouter(levels, tile, t, routed.scale, width)
    learner = router.on_thumbnail(partial_tiles=True)  # reads the examples' thumbnails as given
    rows: list[int | None] = []
    if start is not None:
        rows = start_rows(routed, start)
        _start_from(learner, start.conv_router, rows)
    if estimator is not None:
        for conv, trained in zip(learner.features[::2], trunk(estimator), strict=True):
            conv.load_state_dict(trained.state_dict())
    weights = torch.where(examples.damaged, 1.0, config.clean_weight)
    torch.set_flush_denormal(True)  # tiny gradients turn denormal late in training and slow each step ~15x
    try:
        _train(learner, examples, best, weights, config)
    finally:
        torch.set_flush_denormal(False)
    new = [k for k, row in enumerate(rows) if row is None]
    if new:
        calibration = examples if calibration is None else calibration
        labels = capacity_labels(calibration.regret, costs, config.margin)
        _calibrate_new_rows(learner, calibration, labels, new)
    router.load_state_dict(learner.state_dict())
    return router.eval()


def _train(
    learner: ConvRouter,
    examples: RoutingExamples,
    best: torch.Tensor,
    weights: torch.Tensor,
    config: ConvRouterTraining,
) -> None:
    """Adam with a cosine schedule on cross-entropy to ``best``, a random quarter turn per batch."""
    optimizer = torch.optim.Adam(learner.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps)
    generator = torch.Generator().manual_seed(config.seed)
    learner.train()
    with torch.enable_grad(), progress_bar() as bar:
        task = bar.add_task("training the router", total=config.steps)
        for _ in range(config.steps):
            pick = torch.randint(len(weights), (config.batch,), generator=generator)
            turns = int(torch.randint(4, (1,), generator=generator))
            logits = learner.logits(torch.rot90(examples.thumbnails[pick], turns, dims=(2, 3))).flatten(1)
            loss = (F.cross_entropy(logits, best[pick], reduction="none") * weights[pick]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.advance(task)


@torch.no_grad()
def router_fit(routed: RoutedMetaSR, router: ConvRouter, held_out: RoutingExamples) -> RouterFit:
    """What ``router`` and the orchestrator's router lose on ``held_out`` against the best expert per tile."""
    t = routed.router.thumbnail
    orchestrator = TileRouter(routed.router.metasr, routed.router.centroids, routed.router.tile // t)
    conv = router.on_thumbnail(partial_tiles=True)
    regret = held_out.regret
    choices = router_choices(conv.eval(), held_out.thumbnails)
    costs = expert_costs(routed)
    return RouterFit(
        orchestrator=_mean_regret(regret, router_choices(orchestrator.eval(), held_out.thumbnails)),
        conv=_mean_regret(regret, choices),
        first_expert=_mean_regret(regret, torch.zeros(len(regret), dtype=torch.long)),
        tiles=len(regret),
        conv_cost=float(costs[choices].mean() / costs.max()),
    )


def train_conv_router(
    routed: RoutedMetaSR,
    images: list[np.ndarray],
    held_out: list[np.ndarray],
    config: ConvRouterTraining,
    start: RoutedMetaSR | None = None,
) -> tuple[ConvRouter, RouterFit]:
    """A :class:`ConvRouter` for ``routed``'s experts, trained to pick each tile's best expert on tiles of
    ``images`` (from ``start``'s conv router when given), and its fit on tiles of ``held_out`` beside the
    orchestrator's router. Deterministic for a seed. Example tiles are at most one routing tile, so each example
    is one decision of either router."""
    if start is not None:
        start_rows(routed, start)  # refused before any tile is labelled
    tile = min(config.tile, routed.router.tile)
    check_labelling_memory(config.tiles, tile, routed.scale, routed.router.thumbnail, config.label_chunk)
    train = routing_examples(routed, images, config.tiles, tile, config.seed, config.damage, config.label_chunk)
    held_tiles = max(2, config.tiles // 4)
    held = routing_examples(routed, held_out, held_tiles, tile, config.seed + 1, config.damage, config.label_chunk)
    calibration = None  # a new expert's row is calibrated on tiles it was not trained on
    if start is not None:
        calibration = routing_examples(
            routed, images, held_tiles, tile, config.seed + 2, config.damage, config.label_chunk
        )
    router = fit_conv_router(routed, train, config, start, calibration)
    return router, router_fit(routed, router, held)


def check_labelling_memory(tiles: int, tile: int, scale: int, thumbnail: int, chunk: int = LABEL_CHUNK) -> None:
    """Refuse, before any tile is cut, to label more tiles than the free memory holds: every tile's thumbnail
    is kept (twice while they are gathered), beside one chunk of HR tiles and the experts' outputs on it."""
    thumbnails = tiles * 3 * (tile // thumbnail) ** 2 * 4
    hr_chunk = min(chunk, tiles) * 3 * (tile * scale) ** 2 * 4
    need, free = 2 * thumbnails + LABEL_CHUNK_OVERHEAD * hr_chunk, psutil.virtual_memory().available
    if need > free:
        fits = int(tiles * free / need) // 16 * 16
        raise MetaSRError(
            f"labelling {tiles} tiles of {tile} px at x{scale} needs about {need / 2**30:.1f} GiB and "
            f"{free / 2**30:.1f} GiB is free; use --tiles {fits} or fewer"
        )


def _mean_regret(regret: torch.Tensor, choices: torch.Tensor) -> float:
    return float(regret.gather(1, choices[:, None]).mean())


@torch.no_grad()
def best_experts(experts: list[torch.nn.Module], lr: torch.Tensor, hr: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """Per tile, the expert whose output is nearest the HR crop (mean squared error): routing labels."""
    return expert_errors(experts, lr, hr, batch).argmin(dim=1)


@torch.no_grad()
def tile_vectors(metasr: MetaSR, tiles: torch.Tensor, tile: int, batch: int = 32, thumbnail: int = 1) -> torch.Tensor:
    """The orchestrator's mean FiLM over each tile (count, M), strength at its default (the estimate), read from
    the tile itself or from its x1/``thumbnail`` thumbnail."""
    probe = TileRouter(metasr, torch.zeros(1, metasr.student.modulation_channels), tile, thumbnail)
    return torch.cat([probe.tile_modulation(tiles[i : i + batch])[:, :, 0, 0] for i in range(0, len(tiles), batch)])


def kmeans(vectors: torch.Tensor, k: int, seed: int = 0, iterations: int = 50) -> torch.Tensor:
    """Centroids (k, M) of ``vectors`` by k-means with k-means++ seeding; the same inputs give the same result."""
    generator = torch.Generator().manual_seed(seed)
    centroids = vectors[torch.randint(len(vectors), (1,), generator=generator)]
    while len(centroids) < k:
        nearest = torch.cdist(vectors, centroids).min(dim=1).values ** 2
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)
        centroids = torch.cat([centroids, vectors[pick]])
    for _ in range(iterations):
        labels = torch.cdist(vectors, centroids).argmin(dim=1)
        moved = torch.stack(
            [vectors[labels == j].mean(dim=0) if (labels == j).any() else centroids[j] for j in range(k)]
        )
        if torch.allclose(moved, centroids):
            break
        centroids = moved
    return centroids


@dataclass(frozen=True)
class RouterTraining:
    """How a thumbnail router learns the full-resolution router's choices."""

    steps: int = 400
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class RouterAgreement:
    """Share of held-out tiles on which the thumbnail router picks the labelled expert."""

    before: float
    after: float


@torch.no_grad()
def router_choices(router: TileRouter | ConvRouter, tiles: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """The expert ``router`` picks for each tile (count,), every input one router tile: labels that imitate it."""
    return torch.cat([router(tiles[i : i + batch]).argmin(dim=1).flatten() for i in range(0, len(tiles), batch)])


def train_thumbnail_router(
    full: TileRouter,
    thumbnail: int,
    tiles: torch.Tensor,
    labels: torch.Tensor,
    held_out: tuple[torch.Tensor, torch.Tensor],
    config: RouterTraining,
) -> tuple[TileRouter, RouterAgreement]:
    """A copy of ``full``'s extractors and orchestrator reading the x1/``thumbnail`` thumbnail, trained by
    cross-entropy to choose ``labels`` (one expert per tile) on ``tiles``; its centroids (the experts) stay
    ``full``'s. ``held_out`` is (tiles, labels) for the agreement before and after."""
    held_out, held_labels = held_out
    with torch.no_grad():
        spread = torch.cdist(tile_vectors(full.metasr, tiles, full.tile), full.centroids).pow(2).median()
    router = TileRouter(copy.deepcopy(full.metasr), full.centroids, full.tile, thumbnail)
    before = _agreement(router, held_out, held_labels)
    trainable = [p for p in router.metasr.parameters() if p.requires_grad and p.is_floating_point()]
    optimizer = torch.optim.Adam(trainable, lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    router.train()
    with torch.enable_grad():
        for _ in range(config.steps):
            pick = torch.randint(len(tiles), (config.batch,), generator=generator)
            vectors = router.tile_modulation(tiles[pick])  # (B, M, 1, 1)
            distances = torch.cdist(vectors.flatten(1), router.centroids).pow(2)
            loss = F.cross_entropy(-distances / spread, labels[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    router.eval()
    return router, RouterAgreement(before, _agreement(router, held_out, held_labels))


def _agreement(router: TileRouter, tiles: torch.Tensor, labels: torch.Tensor) -> float:
    return float((router_choices(router, tiles) == labels).float().mean())
