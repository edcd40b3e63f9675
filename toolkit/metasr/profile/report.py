"""Profile results as JSON, a markdown table and a PNG bar chart, in the artifact's report folder."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from metasr.atomic import atomic_path


@dataclass(frozen=True)
class ProfileRow:
    """One timed configuration (a runtime, a compute-unit setting, or an estimate)."""

    label: str
    median_ms: float | None
    p10_ms: float | None = None
    p90_ms: float | None = None
    peak_memory_mb: float | None = None
    part: bool = False  # one function of a routed artifact, not a whole configuration (never the headline)


@dataclass
class ProfileReport:
    artifact: str
    target: str
    device: str
    kind: str  # "measured", "estimate" or "placement only"
    input_size: tuple[int, int]
    rows: list[ProfileRow]
    placement: dict[str, int] = field(default_factory=dict)  # compute unit -> op count
    budget_ms: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def headline_ms(self) -> float | None:
        """The best median over whole configurations: what the budget is compared with."""
        medians = [r.median_ms for r in self.rows if r.median_ms is not None and not r.part]
        return min(medians) if medians else None

    @property
    def over_budget_ms(self) -> float | None:
        if self.budget_ms is None or self.headline_ms is None:
            return None
        return self.headline_ms - self.budget_ms


def write_profile(report: ProfileReport, folder: Path) -> dict[str, Path]:
    """Write profile-<device>.{json,md,png} into ``folder`` (each via a temp file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = "profile-" + report.device.replace(":", "-")
    paths = {ext: folder / f"{stem}.{ext}" for ext in ("json", "md", "png")}
    data = dataclasses.asdict(report) | {"headline_ms": report.headline_ms, "over_budget_ms": report.over_budget_ms}
    with atomic_path(paths["json"]) as tmp:
        tmp.write_bytes((json.dumps(data, indent=2) + "\n").encode())
    with atomic_path(paths["md"]) as tmp:
        tmp.write_bytes(render_markdown(report).encode())
    with atomic_path(paths["png"]) as tmp:
        render_chart(report, tmp)
    return paths


def render_markdown(report: ProfileReport) -> str:
    """A markdown table of the rows, the placement and the budget verdict."""
    title = f"# {report.target} on {report.device} ({report.kind})"
    lines = [title, "", f"Artifact `{report.artifact}`, input {report.input_size[0]}x{report.input_size[1]}.", ""]
    lines += ["| configuration | median ms | p10 ms | p90 ms | peak memory MB |", "|---|---|---|---|---|"]
    for r in report.rows:
        cells = [_fmt(v) for v in (r.median_ms, r.p10_ms, r.p90_ms, r.peak_memory_mb)]
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    if report.placement:
        lines += ["", "| compute unit | ops |", "|---|---|"]
        lines += [f"| {unit} | {count} |" for unit, count in report.placement.items()]
    if report.budget_ms is not None:
        over = report.over_budget_ms
        verdict = "no timing to compare" if over is None else ("within" if over <= 0 else f"OVER by {over:.2f} ms")
        lines += ["", f"Budget {report.budget_ms:.2f} ms: {verdict}."]
    lines += ["", *[f"- {n}" for n in report.notes]]
    return "\n".join(lines).rstrip() + "\n"


def render_chart(report: ProfileReport, path: Path) -> None:
    """Bar chart: median ms per configuration (p10-p90 whiskers, budget line) and ops per compute unit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_ms, ax_ops) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    timed = [r for r in report.rows if r.median_ms is not None]
    labels = [r.label for r in timed]
    medians = [r.median_ms for r in timed]
    low = [r.median_ms - (r.p10_ms if r.p10_ms is not None else r.median_ms) for r in timed]
    high = [(r.p90_ms if r.p90_ms is not None else r.median_ms) - r.median_ms for r in timed]
    ax_ms.bar(labels, medians, yerr=[low, high], capsize=4, color="#4C72B0")
    if report.budget_ms is not None:
        ax_ms.axhline(report.budget_ms, color="#C44E52", linestyle="--", label=f"budget {report.budget_ms:g} ms")
        ax_ms.legend()
    ax_ms.set_ylabel("ms per frame" + (" (ESTIMATE)" if report.kind == "estimate" else ""))
    ax_ms.set_title(f"{report.target} on {report.device} ({report.kind})")
    ax_ms.tick_params(axis="x", labelrotation=20)
    ax_ops.bar(list(report.placement), list(report.placement.values()), color="#55A868")
    ax_ops.set_title("ops per compute unit")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png", metadata={"Software": None})
    plt.close(fig)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
