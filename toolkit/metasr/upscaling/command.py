"""The metasr-upscale command; thin: parse, call the library, print."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from metasr.cli_options import CONTEXT, SCALE, verbose_option, version_option
from metasr.errors import MetaSRError
from metasr.progress import console, progress_bar
from metasr.signals import raise_on_termination
from metasr.upscaling.batch import Batch, FileResult, collect_inputs
from metasr.upscaling.model import load_upscaler

STATUS_STYLE = {"ok": "green", "skipped": "yellow", "failed": "red"}


@click.command(context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--artifact", type=click.Path(path_type=Path), help="Exported .onnx or .pte artifact to run.")
@click.option(
    "--checkpoint", type=click.Path(path_type=Path), help="MetaSR or plain student weights (.safetensors or .pt)."
)
@click.option("--scale", type=SCALE, help="Upscaling factor (default: the model's, or 2).")
@click.option("-o", "--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder.")
@click.option("--tile", type=click.IntRange(min=16), help="Tile size, input pixels (default: manifest's, or 256).")
@click.option("--overlap", type=click.IntRange(min=0), help="Tile overlap, input pixels (default: manifest's, or 16).")
@click.option(
    "--strength",
    type=click.FloatRange(0.0, 1.0),
    help="Restoration strength in [0, 1], overriding the estimated degradation (default: the estimate).",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Also write NAME_compare.png: bicubic | output (| routing map of a routed model), side by side.",
)
@version_option
@verbose_option
def upscale_command(
    inputs: tuple[Path, ...],
    artifact: Path | None,
    checkpoint: Path | None,
    scale: str | None,
    out: Path,
    tile: int | None,
    overlap: int | None,
    strength: float | None,
    compare: bool,
) -> None:
    """Upscale images (PNG, JPEG) and videos (MP4, MOV, MKV, WebM), given as files or folders, into OUT.

    With neither --artifact nor --checkpoint the bundled float MetaSR graph runs in PyTorch.
    --strength 0 treats the input as clean, 1 restores as hard as possible; by default MetaSR estimates it per region.
    Outputs keep the input's name: JPEG in, JPEG out (quality 95); otherwise PNG, 8 or 16 bit as the
    input, greyscale and alpha kept. CMYK JPEGs are converted to RGB (no colour management), with a note.
    Videos are re-encoded as H.264 (MP4/MOV keep their container, MKV/WebM become .mkv), audio copied.
    Files that fail are reported one line each; the others are still written, and the exit code is 1.
    """
    raise_on_termination()
    try:
        upscaler = load_upscaler(artifact, checkpoint, int(scale) if scale else None, tile, overlap, strength)
    except MetaSRError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create output folder {out}: {exc}") from exc
    files, results = collect_inputs(inputs)
    for skipped in results:
        console.print(f"[yellow]skipped:[/] {escape(f'{skipped.source}: {skipped.message}')}", soft_wrap=True)
    batch = Batch(out, upscaler, compare)
    with progress_bar() as bar:
        files_task = bar.add_task("files", total=len(files))
        for src in files:
            task = bar.add_task(src.name, total=None)
            result = batch.upscale_file(src, lambda done, total, t=task: bar.update(t, completed=done, total=total))
            bar.remove_task(task)
            bar.advance(files_task)
            if result.status == "failed":
                bar.console.print(f"[red]error:[/] {escape(result.message)}", soft_wrap=True)
            results.append(result)
    console.print(summary_table(results, upscaler.name))
    failed = sum(r.status == "failed" for r in results)
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} file(s) failed; see the errors above")


def summary_table(results: list[FileResult], model: str) -> Table:
    """The final table: file, size in -> out, time, status."""
    table = Table(title=f"metasr-upscale ({model})")
    table.add_column("file", overflow="fold")
    table.add_column("size in → out")
    table.add_column("ms")
    table.add_column("status", overflow="fold")
    for r in results:
        size = f"{_size(r.size_in)} → {_size(r.size_out)}" if r.size_in else ""
        status = f"[{STATUS_STYLE[r.status]}]{r.status}[/]" + (escape(f": {r.message}") if r.message else "")
        table.add_row(escape(str(r.source)), size, f"{r.ms:.0f}" if r.ms else "", status)
    return table


def _size(hw: tuple[int, int] | None) -> str:
    return f"{hw[1]}x{hw[0]}" if hw else ""


if __name__ == "__main__":
    upscale_command()
