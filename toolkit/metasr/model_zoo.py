"""The models that ship with the package: one weights card each, and the default per scale.

A card says what a weights file is (scale, graph kind, metadata sources), what it costs (parameters and MACs
per output pixel at a 256x256 input, as the export report counts them), how good it is (Y-PSNR on the
benchmark protocol, with where the figure comes from) and the command that made it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from metasr.assembly import load_graph
from metasr.errors import MetaSRError
from metasr.models import MetaSRStudent
from metasr.models.metasr import MetaSR
from metasr.models.routed import RoutedMetaSR
from metasr.safe_weights import shipped_weights


@dataclass(frozen=True)
class WeightsCard:
    """What one shipped weights file is, costs, measures and came from."""

    name: str
    file: str
    scale: int
    graph: str  # "metasr" (content-adaptive), "routed" (a router over plain experts) or "student" (plain convolutions)
    sources: tuple[str, ...]
    parameters: int
    macs_per_output_pixel: float
    quality_db: dict[str, float] = field(default_factory=dict)  # Y-PSNR per "set/degradation"
    quality_source: str = ""
    command: str = ""
    summary: str = ""

    @property
    def path(self) -> Path:
        return shipped_weights(self.file)


_DISTILL = "metasr-distill --recipe {recipe}, then the checkpoint's student copied to the package (TRAINING.md §4)"

MODELS: dict[str, WeightsCard] = {
    card.name: card
    for card in (
        WeightsCard(
            name="metasr-x2",
            file="metasr_x2.safetensors",
            scale=2,
            graph="metasr",
            sources=("edges", "degradation", "damage", "content", "luminance"),
            parameters=149_646,
            macs_per_output_pixel=14_004.3,
            quality_db={
                "photos/bicubic": 33.78,
                "photos/realistic": 25.19,
                "corpus-val/bicubic": 47.89,
                "corpus-val/realistic": 32.47,
            },
            quality_source="BENCHMARKS.md, quality table (bicubic: 32.73, 24.97, 45.47, 31.76)",
            command=_DISTILL.format(recipe="recipes/distill-x2.yaml"),
            summary="x2 per-pixel MetaSR: five metadata sources and FiLM at every stage (the default until the routed "
            "model; about 3.7x its student's int8 latency)",
        ),
        WeightsCard(
            name="metasr-x2-realworld",
            file="metasr_x2_realworld.safetensors",
            scale=2,
            graph="metasr",
            sources=("edges", "degradation", "content", "luminance"),
            parameters=132_521,
            macs_per_output_pixel=13_644.2,
            quality_db={
                "photos/bicubic": 32.00,
                "photos/realistic": 25.57,
                "corpus-val/bicubic": 45.19,
                "corpus-val/realistic": 33.54,
            },
            quality_source="BENCHMARKS.md, quality table",
            command=_DISTILL.format(recipe="recipes/distill-x2-realworld.yaml"),
            summary="x2 for heavily damaged frames (Real-ESRGAN degradations); softer on clean ones",
        ),
        WeightsCard(
            name="metasr-x2-routed",
            file="metasr_x2_routed.safetensors",
            scale=2,
            graph="routed",
            sources=(),
            parameters=117_930,
            macs_per_output_pixel=12_699.0,
            quality_db={
                "photos/bicubic": 34.92,
                "photos/realistic": 25.82,
                "corpus-val/bicubic": 50.36,
                "corpus-val/realistic": 33.90,
            },
            quality_source="TRAINING.md §5, the x2 clean experts' L2 stage (float, benchmark protocol; "
            "bicubic: 32.73, 24.97, 45.47, 31.76)",
            command="metasr-train conv-router --routed ROUTED --corpus data/corpus --extra-data data/photos --tiles "
            "4096 --steps 4000 --label-chunk 2048, after metasr-train student --degradation mild --init CLEAN (the "
            "damage expert) and metasr-train route --model DAMAGE --plain CLEAN --tile 256, then metasr-train "
            "replace-expert --expert 0 --student training_states/l2_x2_d5 (TRAINING.md §5)",
            summary="x2 default: a conv router on the x1/2 thumbnail (90 MACs per output pixel) sends each app tile "
            "to the plain student (clean; 40,000 steps on HR, then 24,000 on SPAN-ch48 and HR over the corpus and "
            "the photos, then 5,000 on their squared error) or to a fine-tune on mild Real-ESRGAN damage",
        ),
        WeightsCard(
            name="metasr-x4-routed",
            file="metasr_x4_routed.safetensors",
            scale=4,
            graph="routed",
            sources=(),
            parameters=138_738,
            macs_per_output_pixel=3_897.0,
            quality_db={
                "photos/bicubic": 30.21,
                "photos/realistic": 24.22,
                "corpus-val/bicubic": 43.72,
                "corpus-val/realistic": 33.42,
            },
            quality_source="BENCHMARKS.md, quality table (bicubic: 28.70, 23.71, 40.90, 31.90)",
            command="metasr-train conv-router --routed ROUTED --corpus data/corpus --extra-data data/photos --tiles "
            "2048 --steps 4000, after metasr-train student --degradation mild --init CLEAN (the damage expert) and "
            "metasr-train route --model DAMAGE --plain CLEAN --tile 256 --thumbnail 1; CLEAN: "
            "training_states/teacher_x4_sides (TRAINING.md §5)",
            summary="x4 default: a conv router on the whole LR input (90 MACs per output pixel) sends each app "
            "tile to the plain x4 student (clean; taught by SPAN-ch48) or to its fine-tune on mild Real-ESRGAN damage",
        ),
        WeightsCard(
            name="metasr-x2-capacity",
            file="metasr_x2_capacity.safetensors",
            scale=2,
            graph="routed",
            sources=(),
            parameters=140_823,
            macs_per_output_pixel=12_699.0,
            quality_db={
                "photos/bicubic": 34.92,
                "photos/realistic": 25.82,
                "corpus-val/bicubic": 50.37,
                "corpus-val/realistic": 33.90,
            },
            quality_source="TRAINING.md §5, the x2 clean experts' L2 stage (float, benchmark protocol; "
            "bicubic: 32.73, 24.97, 45.47, 31.76)",
            command="metasr-train conv-router --routed ROUTED --corpus data/corpus --extra-data data/photos --tiles "
            "4096 --steps 2000 --label-chunk 2048 --margin 0.05 --from-router metasr_x2_routed.safetensors, after "
            "metasr-train student --blocks 2 (SMALL, 6,000 + 24,000 steps taught by SPAN-ch48) and metasr-train "
            "route --model DAMAGE --plain CLEAN --plain SMALL --tile 256, then metasr-train replace-expert --expert 0 "
            "with the default's clean expert (TRAINING.md §5)",
            summary="x2 capacity routing (opt-in): the x2 default's router and experts plus a 2-block expert (5,697 "
            "MACs per output pixel, 45 % of the clean one) for the app tiles it restores within 0.05 dB; the "
            "default's calls between clean and damaged are kept",
        ),
        WeightsCard(
            name="metasr-x2-quality",
            file="metasr_x2_quality.safetensors",
            scale=2,
            graph="routed",
            sources=(),
            parameters=145_674,
            macs_per_output_pixel=19_611.0,
            quality_db={
                "photos/bicubic": 35.09,
                "photos/realistic": 25.82,
                "corpus-val/bicubic": 50.93,
                "corpus-val/realistic": 33.89,
            },
            quality_source="TRAINING.md §5, the YUV 4:2:0 loss (float, benchmark protocol; bicubic: "
            "32.73, 24.97, 45.47, 31.76)",
            command="metasr-train student --blocks 7, then --blocks 8, --init CLEAN5 (SPAN-ch48 at weight 0.5; "
            "--loss l2, then on 64- and 96-px patches), then two cosines with --loss l2-yuv420, then "
            "metasr-train replace-expert --routed metasr_x2_quality.safetensors --expert 0 --student "
            "training_states/yuv96b_x2_d8 (TRAINING.md §5)",
            summary="x2 for quality (opt-in): the x2 default's router and mild damage expert, with an 8-block clean "
            "expert (1.54x the default's MACs, 1.43-1.50x its latency) for +0.17 dB on clean photos, 0.995 dB under "
            "SPAN-ch48 at 1/5.25 of its MACs",
        ),
        WeightsCard(
            name="student-x2",
            file="student_x2.safetensors",
            scale=2,
            graph="student",
            sources=(),
            parameters=50_604,
            macs_per_output_pixel=12_609.0,
            quality_db={"corpus-val/bicubic": 47.83, "photos/bicubic": 32.69},
            quality_source="TRAINING.md §0 (corpus validation; seven photos, bicubic 31.39)",
            command="metasr-train student --data data/corpus --out checkpoints/plain_x2 --scale 2 --steps 3500",
            summary="x2 plain student: the x2 default's convolutions without metadata",
        ),
        WeightsCard(
            name="student-x4",
            file="student_x4.safetensors",
            scale=4,
            graph="student",
            sources=(),
            parameters=61_008,
            macs_per_output_pixel=3_807.0,
            quality_db={
                "photos/bicubic": 30.21,
                "photos/realistic": 23.62,
                "corpus-val/bicubic": 43.72,
                "corpus-val/realistic": 31.76,
            },
            quality_source="BENCHMARKS.md protocol (TRAINING.md §5)",
            command="metasr-train student --data data/corpus --extra-data data/photos --side 800 --side 1600 "
            "--out checkpoints/span_x4_sides --scale 4 --steps 3000 --init training_states/teacher_x4_photos/"
            "student_x4.safetensors --lr 3e-4 --teacher span-ch48-x4 (the init's own runs: TRAINING.md §5)",
            summary="x4 plain student, 40,000 steps on HR, 30,000 on SPAN-ch48's outputs, then 13,000 more over the "
            "corpus and the textured photos: the x4 default's clean expert",
        ),
    )
}

DEFAULTS = {2: "metasr-x2-routed", 4: "metasr-x4-routed"}  # what an export or upscale uses when no model is named


def list_models() -> list[str]:
    """Names of the shipped models."""
    return list(MODELS)


def model_card(name: str) -> WeightsCard:
    """The card of model ``name``; an unknown name raises with the nearest one."""
    if name not in MODELS:
        near = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f"did you mean '{near[0]}'?" if near else "choose one of " + ", ".join(MODELS)
        raise MetaSRError(f"unknown model '{name}'; {hint}")
    return MODELS[name]


def default_model(scale: int) -> WeightsCard:
    """The card of the model shipped as the default for ``scale``."""
    if scale not in DEFAULTS:
        raise MetaSRError(f"no default model for scale {scale}; use scale 2 or 4, or pass a checkpoint")
    return MODELS[DEFAULTS[scale]]


def get_model(name: str, weights: str | Path = "DEFAULT") -> RoutedMetaSR | MetaSR | MetaSRStudent:
    """Model ``name`` in inference form, with its shipped weights or a local weights file of the same scale."""
    card = model_card(name)
    path = card.path if weights == "DEFAULT" else Path(weights)
    return load_graph(path, card.scale)
