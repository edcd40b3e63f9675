"""``metasr-train`` (student, degree, content, teacher) and ``metasr-distill``: thin click front-ends."""

from __future__ import annotations

from pathlib import Path

import click

from metasr.cli import train_command
from metasr.cli_options import CONTEXT, verbose_option, version_option
from metasr.data.degradations import DAMAGE_CONFIGS
from metasr.distill.routing import LABEL_CHUNK, ConvRouterTraining, RoutingConfig, build_routed, train_conv_router
from metasr.errors import MetaSRError
from metasr.metadata.content_training import STEPS as CONTENT_STEPS
from metasr.signals import raise_on_termination


@click.group(context_settings=CONTEXT)
@version_option
@verbose_option
def train_group() -> None:
    """Train MetaSR components: the plain student, the degree estimator, the content classifier, the teacher."""
    raise_on_termination()


train_group.add_command(train_command, name="student")


@train_group.command(context_settings=CONTEXT)
@click.option("--corpus", type=click.Path(path_type=Path), required=True, help="Folder of clean training photos.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Weights file to write (.safetensors).")
@click.option("--steps", type=int, default=700, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--realistic", type=float, default=0.0, show_default=True, help="Weight of the ranking on Real-ESRGAN damage."
)
@click.option(
    "--channels", type=int, default=24, show_default=True, help="Estimator width (MACs grow with its square)."
)
def degree(corpus: Path, out: Path, steps: int, seed: int, realistic: float, channels: int) -> None:
    """Train the degradation-degree estimator by metric learning, then report its monotonicity."""
    from metasr.metadata.degree_training import DegreeTrainConfig, train_degree_estimator

    try:
        _, report = train_degree_estimator(
            DegreeTrainConfig(corpus=corpus, out=out, steps=steps, seed=seed, realistic=realistic, channels=channels)
        )
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, value in report.minimum.items():
        click.echo(
            f"{name}: Spearman min {value:.3f}, mean {report.mean[name]:.3f} over {len(report.per_photo)} photos; "
            f"clean photos read {report.clean_mean[name]:.3f}"
        )
    click.echo(f"wrote {out}")


@train_group.command(context_settings=CONTEXT)
@click.option("--corpus", type=click.Path(path_type=Path), required=True, help="Folder of clean training photos.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Weights file to write (.safetensors).")
@click.option(
    "--cache",
    type=click.Path(path_type=Path),
    default=Path("build/content-tiles"),
    show_default=True,
    help="Where the labelled frames are built once and reused.",
)
@click.option("--steps", type=click.IntRange(min=1), default=CONTENT_STEPS, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def content(corpus: Path, out: Path, cache: Path, steps: int, seed: int) -> None:
    """Train the on-device content classifier on frames labelled by the teacher-grade detectors."""
    from metasr.metadata.content_training import train_content_classifier

    try:
        result = train_content_classifier(out, cache, corpus, steps=steps, seed=seed)
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    recall = ", ".join(f"{name} {value:.2f}" for name, value in result.recall.items())
    click.echo(f"held-out cell accuracy {result.accuracy:.3f} (recall: {recall}); wrote {out} and {result.report}")


@train_group.command(context_settings=CONTEXT)
@click.option("--model", "model_path", type=click.Path(path_type=Path), required=True, help="MetaSR checkpoint.")
@click.option("--corpus", type=click.Path(path_type=Path), required=True, help="Folder of training photos.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Routed checkpoint to write.")
@click.option("--experts", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--tile", type=int, default=64, show_default=True, help="LR pixels per routing cell.")
@click.option("--thumbnail", type=click.IntRange(1, 4), default=2, show_default=True, help="Router reads 1/N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--plain",
    "plain_paths",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Plain student checkpoint: it replaces the expert of every cluster whose tiles it restores better. With "
    "a plain student's --model, repeatable: the experts are these students in order, then --model's.",
)
def route(
    model_path: Path,
    corpus: Path,
    out: Path,
    experts: int,
    tile: int,
    thumbnail: int,
    seed: int,
    plain_paths: tuple[Path, ...],
) -> None:
    """Cluster a MetaSR's per-tile decisions into routed experts (or, for a plain student and --plain, route
    between the plain students); write the routed checkpoint."""
    from metasr.assembly import load_metasr, save_routed
    from metasr.checkpoint import load_student
    from metasr.data.folder import list_images, load_for_training, split_images

    try:
        metasr = load_metasr(model_path)
        plain = [load_student(path, metasr.scale) for path in plain_paths]
        train, _ = split_images(list_images(corpus))
        config = RoutingConfig(experts=experts, tile=tile, thumbnail=thumbnail, seed=seed)
        side = max(512, 2 * tile * metasr.scale)  # photos hold several HR tiles on their short side
        routed = build_routed(metasr, [load_for_training(p, side) for p in train], config, plain)
        save_routed(routed, out)
    except (MetaSRError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    plain_note = f"; plain experts {list(routed.plain_experts)}" if plain else ""
    click.echo(f"wrote {out}: {len(routed.experts)} experts, tile {tile}, router on x1/{thumbnail}{plain_note}")


@train_group.command("conv-router", context_settings=CONTEXT)
@click.option("--routed", "routed_path", type=click.Path(path_type=Path), required=True, help="Routed checkpoint.")
@click.option("--corpus", type=click.Path(path_type=Path), required=True, help="Folder of training photos.")
@click.option(
    "--extra-data",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Another photo folder, split like --corpus (every 8th image is held out); repeatable.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Routed checkpoint to write.")
@click.option("--tiles", type=click.IntRange(16, 100_000), default=2048, show_default=True, help="Training tiles.")
@click.option("--steps", type=click.IntRange(1), default=2000, show_default=True)
@click.option(
    "--tile",
    type=click.IntRange(32),
    default=ConvRouterTraining.tile,
    show_default=True,
    help="LR pixels a side of each labelled tile (at most the routing tile); the app tile it decides for, to "
    "label what one call's choice costs.",
)
@click.option(
    "--clean-weight",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Weight of a clean tile's loss against a damaged one's.",
)
@click.option(
    "--damage",
    type=click.Choice(list(DAMAGE_CONFIGS)),
    multiple=True,
    default=("realistic",),
    show_default=True,
    help="How the damaged half of the tiles is made, chunk by chunk in turn (repeatable): Real-ESRGAN's full "
    "range, or its mild form.",
)
@click.option(
    "--label-chunk",
    type=click.IntRange(1),
    default=LABEL_CHUNK,
    show_default=True,
    help="Tiles labelled at a time; each damaged chunk draws its own resize factors (as large as the damaged "
    "half of --tiles: one draw for every damaged tile, as the shipped x2 router was labelled).",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Capacity routing: train each tile towards the cheapest expert (fewest MACs) within this many dB of its "
    "best, so a smaller expert takes the tiles it restores nearly as well; 0 trains towards the best expert.",
)
@click.option(
    "--from-router",
    "from_router",
    type=click.Path(path_type=Path),
    help="Routed checkpoint whose conv router this one starts from (experts matched by their weights): only "
    "the rows of experts it lacks learn (each starts as its first, clean expert's, then is calibrated), so with "
    "--margin the router keeps its clean / damaged calls and learns which tiles a smaller expert takes.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def conv_router(
    routed_path: Path,
    corpus: Path,
    extra_data: tuple[Path, ...],
    out: Path,
    tiles: int,
    steps: int,
    tile: int,
    clean_weight: float,
    damage: tuple[str, ...],
    label_chunk: int,
    margin: float,
    from_router: Path | None,
    seed: int,
) -> None:
    """Train a few-convolution router to pick, per tile, the routed expert that restores it best."""
    from metasr.assembly import load_routed, save_routed
    from metasr.data.folder import load_at_sides, load_for_training, split_folders

    try:
        routed = load_routed(routed_path)
        start = None if from_router is None else load_routed(from_router, routed.scale)
        train, held_out = split_folders((corpus, *extra_data))
        configs = tuple(DAMAGE_CONFIGS[name] for name in damage)
        config = ConvRouterTraining(
            tiles=tiles,
            steps=steps,
            tile=tile,
            clean_weight=clean_weight,
            damage=configs,
            label_chunk=label_chunk,
            margin=margin,
            seed=seed,
        )
        side = 4 * config.tile * routed.scale  # photos hold several HR tiles on their short side
        router, fit = train_conv_router(
            routed,
            load_at_sides(train, (side // 2, side, side * 3 // 2)),
            [load_for_training(p, side) for p in held_out],
            config,
            start,
        )
        save_routed(routed.with_conv_router(router), out)
    except (MetaSRError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {out}: on {fit.tiles} held-out tiles the conv router loses {fit.conv:.3f} dB against the best "
        f"expert per tile (orchestrator router {fit.orchestrator:.3f}, always expert 0 {fit.first_expert:.3f}); "
        f"its choices cost {fit.conv_cost:.2f} of the dearest expert's MACs"
    )


@train_group.command("replace-expert", context_settings=CONTEXT)
@click.option("--routed", "routed_path", type=click.Path(path_type=Path), required=True, help="Routed checkpoint.")
@click.option("--expert", type=click.IntRange(0), required=True, help="Index of the plain expert to replace.")
@click.option("--student", type=click.Path(path_type=Path), required=True, help="Plain student checkpoint.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Routed checkpoint to write.")
def replace_expert(routed_path: Path, expert: int, student: Path, out: Path) -> None:
    """Replace one plain expert of a routed checkpoint by STUDENT (e.g. the same student trained longer), keeping
    its router and every other expert."""
    from metasr.assembly import load_routed, save_routed
    from metasr.checkpoint import load_student

    try:
        routed = load_routed(routed_path)
        save_routed(routed.with_plain_expert(expert, load_student(student)), out)
    except (MetaSRError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {out}: expert {expert} is now {student}, the router and the other experts unchanged")


@train_group.command(context_settings=CONTEXT)
@click.option(
    "--recipe", type=click.Path(path_type=Path), required=True, help="Teacher recipe (recipes/teacher-*.yaml)."
)
@click.option("--until", type=int, help="Stop after this step with a checkpoint; a later run resumes.")
@click.option(
    "--ship",
    type=click.Path(path_type=Path),
    help="Also write the trained teacher here in float16 (half the size; it loads as float32).",
)
def teacher(recipe: Path, until: int | None, ship: Path | None) -> None:
    """Train the orchestrator-conditioned diffusion teacher (resumes from OUT/state.safetensors)."""
    import torch

    from metasr.distill.recipe import load_teacher_recipe
    from metasr.distill.teacher_system import load_teacher, save_teacher
    from metasr.distill.teacher_trainer import train_teacher

    try:
        result = train_teacher(load_teacher_recipe(recipe), until)
        if ship is not None:
            save_teacher(load_teacher(result.weights)[0], ship, torch.float16)
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {result.weights} after {result.steps} steps: {result.val_psnr:.2f} dB "
        f"(bicubic {result.val_bicubic_psnr:.2f} dB) on degraded validation crops"
    )
    if ship is not None:
        click.echo(f"wrote {ship} (float16)")


@click.command(context_settings=CONTEXT)
@click.option(
    "--recipe", type=click.Path(path_type=Path), required=True, help="Distill recipe (recipes/distill-*.yaml)."
)
@click.option("--until", type=int, help="Stop after this step with a checkpoint; a later run resumes.")
@version_option
@verbose_option
def distill_command(recipe: Path, until: int | None) -> None:
    """Distil the teacher and its orchestrator into the student (resumes from OUT/state.safetensors)."""
    raise_on_termination()
    from metasr.distill.recipe import load_distill_recipe
    from metasr.distill.trainer import distill

    try:
        result = distill(load_distill_recipe(recipe), until)
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {result.weights} after {result.steps} steps: {result.val_psnr:.2f} dB on degraded validation")


@train_group.command(context_settings=CONTEXT)
@click.option("--teacher", "teacher_path", type=click.Path(path_type=Path), required=True)
@click.option("--student", type=click.Path(path_type=Path), required=True, help="Distilled MetaSR checkpoint.")
@click.option(
    "--ablation", type=click.Path(path_type=Path), required=True, help="Same student, trained without metadata."
)
@click.option("--corpus", type=click.Path(path_type=Path), default=Path("data/corpus"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSON report to write.")
def evaluate(teacher_path: Path, student: Path, ablation: Path, corpus: Path, out: Path) -> None:
    """Per-class Y-PSNR of teacher, student (with, without, wrong, misplaced metadata), ablation, bicubic; MAC ratio."""
    import json

    from metasr.distill.evaluate import distill_report

    try:
        report = distill_report(teacher_path, student, ablation, corpus)
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    out.write_text(json.dumps(report, indent=1))
    click.echo(json.dumps(report, indent=1))
