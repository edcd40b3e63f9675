"""Command-line entry points; thin: parse, call the library, print."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.table import Table

from metasr.errors import MetaSRError
from metasr.export.pipeline import STAGES, TARGETS, export, resolve_recipe
from metasr.export.stages import ExportResult
from metasr.progress import console, progress_bar
from metasr.recipes import with_overrides

TARGET_CHOICES = [*TARGETS, "all"]


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not match:
        raise click.BadParameter(f"'{text}' is not HxW; write e.g. 256x256")
    return int(match.group(1)), int(match.group(2))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--target", "-t", required=True, help=f"One of: {', '.join(TARGET_CHOICES)}.")
@click.option("--recipe", type=click.Path(path_type=Path), help="Recipe YAML (default: recipes/<target>.yaml).")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Student weights (.safetensors or .pt).")
@click.option("--scale", type=click.IntRange(2, 4), help="Upscaling factor (2 or 4); overrides the recipe.")
@click.option("--input-size", "input_sizes", multiple=True, help="HxW model input size; repeat for several.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("artifacts"), show_default=True)
def export_command(
    target: str,
    recipe: Path | None,
    checkpoint: Path | None,
    scale: int | None,
    input_sizes: tuple[str, ...],
    out: Path,
) -> None:
    """Export the MetaSR student to TARGET, validate it, and write artifact + report + manifest."""
    targets = list(TARGETS) if target == "all" else [target]
    if recipe is not None and len(targets) > 1:
        raise click.UsageError("--recipe names one target's recipe; use it with a single --target")
    sizes = tuple(parse_size(s) for s in input_sizes) or None
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
    if failures:
        raise click.ClickException(failures[0] if len(failures) == 1 else " | ".join(failures))


def summary_table(results: list[ExportResult]) -> Table:
    """The final table: target, file, size, parity, coverage, time."""
    table = Table(title="metasr-export")
    for column in ("target", "file", "size", "parity (min Y-PSNR)", "coverage", "time"):
        table.add_column(column)
    for r in results:
        cov = r.coverage
        table.add_row(
            r.target,
            str(r.artifact),
            f"{r.size_bytes / 1024:.0f} KiB",
            f"{r.parity.min_psnr_db:.1f} dB (floor {r.parity.floor_db:.0f})",
            f"{cov.accelerated}/{cov.total} on {cov.where}",
            f"{r.seconds:.1f} s",
        )
    return table


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Folder of training photos.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Checkpoint folder (resumes).")
@click.option("--scale", type=click.IntRange(2, 4), default=2, show_default=True)
@click.option("--steps", type=int, default=5000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_command(data: Path, out: Path, scale: int, steps: int, seed: int) -> None:
    """Train the plain student on bicubic-downscaled photos (resumes from OUT/last.pt)."""
    from metasr.train import TrainConfig, train_student

    try:
        result = train_student(TrainConfig(data=data, out=out, scale=scale, steps=steps, seed=seed))
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"wrote {result.weights}: validation Y-PSNR {result.val_psnr:.2f} dB "
        f"(bicubic {result.val_bicubic_psnr:.2f} dB) after {result.steps} steps"
    )
