"""Command-line entry points; thin: parse, call the library, print."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.table import Table

from metasr.cli_options import CONTEXT, SCALE, verbose_option, version_option
from metasr.errors import MetaSRError
from metasr.exporter.pipeline import STAGES, export, resolve_recipe
from metasr.exporter.registry import TARGETS
from metasr.exporter.stages import ExportResult
from metasr.losses import LOSSES
from metasr.progress import console, progress_bar
from metasr.recipes import bundled_recipes, with_overrides
from metasr.signals import raise_on_termination

TARGET_CHOICES = [*TARGETS, "all"]


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not match:
        raise click.BadParameter(f"'{text}' is not HxW; write e.g. 256x256")
    return int(match.group(1)), int(match.group(2))


@click.command(context_settings=CONTEXT)
@click.option("--target", "-t", help=f"One of: {', '.join(TARGET_CHOICES)} (default: the recipe's own target).")
@click.option("--recipe", help="Recipe YAML file, or a bundled recipe's name (default: the target's own recipe).")
@click.option(
    "--checkpoint", type=click.Path(path_type=Path), help="MetaSR or plain student weights (.safetensors or .pt)."
)
@click.option("--scale", type=SCALE, help="Upscaling factor; overrides the recipe.")
@click.option("--input-size", "input_sizes", multiple=True, help="HxW model input size; repeat for several.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("artifacts"), show_default=True)
@click.option("--profile", "profile_device", help="Profile each artifact right after export (see metasr-profile).")
@click.option("--list", "list_only", is_flag=True, help="List the targets and bundled recipes, then exit.")
@version_option
@verbose_option
def export_command(
    target: str | None,
    recipe: str | None,
    checkpoint: Path | None,
    scale: str | None,
    input_sizes: tuple[str, ...],
    out: Path,
    profile_device: str | None,
    list_only: bool,
) -> None:
    """Export the MetaSR graph to TARGET, validate it, and write artifact + report + manifest."""
    raise_on_termination()
    if list_only:
        click.echo("targets: " + ", ".join(TARGET_CHOICES))
        click.echo("recipes: " + ", ".join(bundled_recipes()))
        return
    if target is None and recipe is None:
        raise click.UsageError("pass --target (or --recipe); metasr-export --list shows both")
    targets = list(TARGETS) if target == "all" else [target]
    if recipe is not None and len(targets) > 1:
        raise click.UsageError("--recipe names one target's recipe; use it with a single --target")
    sizes = tuple(parse_size(s) for s in input_sizes) or None
    scale = int(scale) if scale else None
    try:
        recipes = [with_overrides(resolve_recipe(t, recipe), scale=scale, input_sizes=sizes) for t in targets]
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    results: list[ExportResult] = []
    failures: list[str] = []
    with progress_bar() as bar:
        for r in recipes:
            task = bar.add_task(f"{r.target}", total=len(STAGES))

            def on_stage(stage: str, task=task, name=r.target) -> None:
                bar.update(task, completed=STAGES.index(stage), description=f"{name}: {stage}")

            try:
                results.append(export(r, out, checkpoint=checkpoint, on_stage=on_stage))
                bar.update(task, completed=len(STAGES), description=f"{r.target}: done")
            except MetaSRError as exc:
                bar.update(task, description=f"{r.target}: failed")
                failures.append(str(exc))
    if results:
        console.print(summary_table(results))
        for r in results:
            console.print(f"{r.target}: {r.artifact}", soft_wrap=True, highlight=False)
        console.print(f"reports and manifests beside each artifact, under {out}/<target>/", soft_wrap=True)
    if profile_device:
        budgets = {r.target: r.latency_budget_ms for r in recipes}
        for result in results:
            try:
                _profile(result.artifact, profile_device, None, 20, budgets[result.target], None)
            except MetaSRError as exc:
                failures.append(str(exc))
    if failures:
        raise click.ClickException(failures[0] if len(failures) == 1 else " | ".join(failures))


def summary_table(results: list[ExportResult]) -> Table:
    """The final table: target, size, parity, coverage, time (the artifacts' paths follow it, unabridged)."""
    table = Table(title="metasr-export")
    table.add_column("target", overflow="fold")
    for column in ("size", "parity dB (floor)", "on accelerator", "time"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.target,
            f"{r.size_bytes / 1024:.0f} KiB",
            f"{r.parity.min_psnr_db:.1f} ({r.parity.floor_db:.0f})",
            f"{r.coverage.accelerated}/{r.coverage.total} ops",
            f"{r.seconds:.1f} s",
        )
    return table


@click.command(context_settings=CONTEXT)
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Folder of training photos.")
@click.option(
    "--extra-data",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Another photo folder, split like --data (every 8th image validates); repeatable.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Checkpoint folder (resumes).")
@click.option("--scale", type=SCALE, default="2", show_default=True)
@click.option("--steps", type=int, default=5000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--until", type=int, help="Stop after this step with a checkpoint; a later run resumes.")
@click.option("--checkpoint-every", type=int, default=500, show_default=True)
@click.option(
    "--degradation",
    type=click.Choice(["bicubic", "realistic", "mild"]),
    default="bicubic",
    show_default=True,
    help="LR patches: bicubic downscale, Real-ESRGAN's two-stage damage (an expert for damaged tiles), or mild: the "
    "same with about a third of its noise and JPEG of quality 60 or better (an expert for lightly damaged tiles).",
)
@click.option("--init", type=click.Path(path_type=Path), help="Plain student weights to start from (fine-tune).")
@click.option(
    "--side",
    "sides",
    type=click.IntRange(64),
    multiple=True,
    help="Train on every photo downscaled to this longer side (repeatable; default 1600): a smaller side packs more "
    "detail into each patch.",
)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3, show_default=True, help="Peak rate.")
@click.option(
    "--patch",
    type=click.IntRange(8),
    default=48,
    show_default=True,
    help="LR patch side; a larger patch in a last stage gives the network more context and less padding per pixel.",
)
@click.option("--batch", type=click.IntRange(1), default=16, show_default=True, help="Patches per step.")
@click.option(
    "--teacher",
    help="A pretrained peer (e.g. span-ch48-x4) or a local ncnn .param: its output on each LR patch is a target.",
)
@click.option(
    "--teacher-weight",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Share of the loss against the teacher's output (the rest: the HR patch).",
)
@click.option(
    "--blocks",
    type=click.IntRange(1),
    help="RepBlocks of the student (default 5); with --init, more than it has are appended as identity blocks.",
)
@click.option(
    "--channels",
    type=click.IntRange(1),
    help="Feature channels of the student (default 32); with --init, more than it has are added as channels that "
    "nothing reads yet (the output is unchanged).",
)
@click.option(
    "--loss",
    type=click.Choice(list(LOSSES)),
    default="l1",
    show_default=True,
    help="l2: mean squared error, what PSNR measures; a last fine-tuning stage after l1 (SPAN's and RLFN's recipe). "
    "l2-yuv420: the same over a YUV 4:2:0 frame's samples (full-size luma, 2x2-averaged chroma), what a camera's "
    "NV12 frame or JPEG keeps.",
)
def train_command(
    data: Path,
    extra_data: tuple[Path, ...],
    out: Path,
    scale: str,
    steps: int,
    seed: int,
    until: int | None,
    checkpoint_every: int,
    degradation: str,
    init: Path | None,
    sides: tuple[int, ...],
    lr: float,
    patch: int,
    batch: int,
    teacher: str | None,
    teacher_weight: float,
    blocks: int | None,
    channels: int | None,
    loss: str,
) -> None:
    """Train the plain student on downscaled photos (resumes from OUT/state.safetensors)."""
    raise_on_termination()
    from metasr.train import TrainConfig, train_student

    try:
        config = TrainConfig(
            data=data,
            extra_data=extra_data,
            out=out,
            scale=int(scale),
            steps=steps,
            seed=seed,
            until=until,
            checkpoint_every=checkpoint_every,
            degradation=degradation,
            init=init,
            sides=sides,
            lr=lr,
            patch=patch,
            batch=batch,
            teacher=teacher,
            teacher_weight=teacher_weight,
            blocks=blocks,
            channels=channels,
            loss=loss,
        )
        result = train_student(config)
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {result.weights}: validation Y-PSNR {result.val_psnr:.2f} dB "
        f"(bicubic {result.val_bicubic_psnr:.2f} dB) after {result.steps} steps"
    )


def _profile(
    artifact: Path, device: str, input_size: tuple[int, int] | None, runs: int, budget: float | None, runner
) -> None:
    from metasr.profile.run import DeviceSpec, profile_and_write

    report, paths = profile_and_write(artifact, DeviceSpec.parse(device), input_size, runs, budget, runner)
    console.print(profile_table(report))
    console.print(f"profile written: {paths['json']}, {paths['md'].name}, {paths['png'].name}")


def profile_table(report) -> Table:
    """Rows of a profile: configuration, median, p10, p90, memory."""
    table = Table(title=f"metasr-profile: {report.target} on {report.device} ({report.kind})")
    table.add_column("configuration", overflow="fold")
    for column in ("median ms", "p10 ms", "p90 ms", "peak MB"):
        table.add_column(column)
    for row in report.rows:
        values = (row.median_ms, row.p10_ms, row.p90_ms, row.peak_memory_mb)
        table.add_row(row.label, *("n/a" if v is None else f"{v:.2f}" for v in values))
    return table


@click.command(context_settings=CONTEXT)
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--device", default="host", show_default=True, help="host | adb[:SERIAL] | macos | estimate:NAME")
@click.option("--input-size", help="HxW (default: the manifest's first input size).")
@click.option("--runs", type=click.IntRange(1), default=20, show_default=True)
@click.option("--budget-ms", type=float, help="Latency budget; default: the export recipe's latency_budget_ms.")
@click.option("--runner", type=click.Path(path_type=Path), help="adb: executor_runner / onnxruntime_perf_test binary.")
@version_option
@verbose_option
def profile_command(
    artifact: Path, device: str, input_size: str | None, runs: int, budget_ms: float | None, runner: Path | None
) -> None:
    """Time ARTIFACT on a device and write JSON, markdown and a PNG chart beside it."""
    from metasr.profile.run import check_budget_ms, recipe_budget

    raise_on_termination()
    size = parse_size(input_size) if input_size else None
    try:
        budget = check_budget_ms(budget_ms, "--budget-ms") if budget_ms is not None else recipe_budget(artifact)
        _profile(artifact, device, size, runs, budget, runner)
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
