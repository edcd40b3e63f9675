"""report.json, report.md and manifest.json written beside every artifact."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from metasr import __version__
from metasr.exporter.describe import SCORES_DESCRIPTION, STRENGTH_DESCRIPTION
from metasr.exporter.routed import ROUTER, RoutedLowered, RoutedParity, RoutedPrepared
from metasr.exporter.stages import LoweredArtifact, Macs, ParityResult, PreparedModel, QuantizedModel, SRGraph
from metasr.exporter.user_model import UserModel
from metasr.models.metasr import DEFAULT_STRENGTH, MetaSR
from metasr.schemas import MANIFEST_VERSION, check


def artifact_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative paths and contents, sorted)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(str(f.relative_to(path.parent)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def build_manifest(lowered: LoweredArtifact, prepared: PreparedModel) -> dict[str, Any]:
    """What an app needs to feed the artifact: inputs, outputs, scale, tiling, hash, version."""
    recipe, model = prepared.recipe, prepared.model
    s = prepared.scale
    manifest: dict[str, Any] = {
        "schema_version": MANIFEST_VERSION,
        "toolkit_version": __version__,
        "target": recipe.target,
        "file": lowered.path.name,
        "model_sha256": artifact_sha256(lowered.path),
        "scale": s,
        "inputs": _inputs(lowered, prepared),
        "outputs": [
            {
                "name": "output",
                "shapes": [[1, 3, h * s, w * s] for h, w in prepared.input_sizes],
                "layout": "NCHW",
                "dtype": "float32",
                "color": "RGB",
                "value_range": [0.0, 1.0],
            }
        ],
        "tile": {"size": recipe.tile.size, "overlap": recipe.tile.overlap},
        "model": _model_section(model),
        "macs_per_output_pixel": _macs(prepared.macs_per_output_pixel),
    }
    extra = dict(lowered.manifest_extra)
    extra.pop("inputs", None)
    overrides = {entry["name"]: entry for entry in extra.pop("outputs", [])}  # a target's fields, matched by name
    manifest["outputs"] = [{**entry, **overrides.get(entry["name"], {})} for entry in manifest["outputs"]]
    manifest.update(extra)
    return manifest


def _inputs(lowered: LoweredArtifact, prepared: PreparedModel) -> list[dict[str, Any]]:
    """The graph's input entries, with the target's own fields (matched by name) laid over them."""
    strength = {
        "name": "strength",
        "shapes": [[1, 1, 1, 1]],
        "layout": "NC11",
        "dtype": "float32",
        "value_range": [0.0, 1.0],
        "default": DEFAULT_STRENGTH,
        "description": STRENGTH_DESCRIPTION,
    }
    inputs = [
        {
            "name": "image",
            "shapes": [[1, 3, h, w] for h, w in prepared.input_sizes],
            "layout": "NCHW",
            "dtype": "float32",
            "color": "RGB",
            "value_range": [0.0, 1.0],
        },
        *([strength] if "strength" in prepared.input_names else []),
    ]
    overrides = {entry["name"]: entry for entry in lowered.manifest_extra.get("inputs", [])}
    return [{**entry, **overrides.get(entry["name"], {})} for entry in inputs]


def build_routed_manifest(lowered: RoutedLowered, prepared: RoutedPrepared) -> dict[str, Any]:
    """A routed artifact's manifest: the experts' image I/O at the top level (what the tiler feeds each tile),
    the router's strength input, and a ``routing`` section telling the app how to dispatch."""
    first = prepared.experts[0]
    manifest = build_manifest(lowered.functions[first], prepared.functions[first])
    router, routed = lowered.functions[ROUTER], prepared.model
    router_inputs = _inputs(router, prepared.functions[ROUTER])
    metasr, tile, t = routed.router.metasr, routed.routing_tile, routed.router.thumbnail
    k = len(prepared.experts)
    manifest["file"] = router.path.name
    manifest["model_sha256"] = combined_sha256(lowered.files)
    manifest["inputs"] = [*manifest["inputs"], *[e for e in router_inputs if e["name"] == "strength"]]
    manifest["model"] = {**_model_section(metasr), "graph": "routed", "experts": k}
    manifest["macs_per_output_pixel"] = _macs(prepared.macs_per_output_pixel)
    if "dynamic_size" in manifest and tile:  # sides must hold whole routing tiles
        manifest["dynamic_size"] = {**manifest["dynamic_size"], "multiple_of": tile, "min": tile}
    if tile:
        shapes = [[1, k, h // tile, w // tile] for h, w in prepared.recipe.input_sizes]
        blocks = (
            f"for each {tile}x{tile} block of the input; run each chosen expert on the whole image tile and keep "
            f"its output over its blocks ({tile * routed.scale}x{tile * routed.scale} output pixels each). "
        )
    else:
        shapes = [[1, k, 1, 1] for _ in prepared.recipe.input_sizes]
        blocks = "for the whole image tile; run that expert on it. "
    manifest["routing"] = {
        "tile": tile,
        "thumbnail": t,
        "router": {
            "function": ROUTER,
            "file": router.path.name,
            "inputs": router_inputs,
            "output": {
                "name": "output",
                "shapes": shapes,
                "layout": "NKHW",
                "description": SCORES_DESCRIPTION,
            },
        },
        "experts": [
            {
                "function": name,
                "file": lowered.functions[name].path.name,
                "macs_per_output_pixel": round(prepared.functions[name].macs_per_output_pixel.total, 1),
            }
            for name in prepared.experts
        ],
        "blending": "hard",
        "dispatch": (
            f"feed the router the thumbnail image[..., ::{t}, ::{t}] of the image tile (the pixels whose row and "
            f"column are multiples of {t}) and the strength; the argmin over axis 1 of its output names the expert "
            + blocks
            + "A function is its own file, or a method (ExecuTorch) or function (Core ML) of that name in the "
            "shared file"
        ),
    }
    return manifest


def combined_sha256(files: list[Path]) -> str:
    """SHA-256 over several artifact files (names and contents), in name order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(artifact_sha256(path).encode())
    return digest.hexdigest()


def _model_section(model: SRGraph) -> dict[str, Any]:
    """What the graph is: MetaSR (student, sources, orchestrator), the bare student, or a user's own network."""
    if isinstance(model, MetaSR):
        orchestrator = model.orchestrator
        return {
            "graph": "metasr",
            "student": model.config.to_dict(),
            "sources": list(orchestrator.sources),
            "orchestrator": orchestrator.config,
        }
    if isinstance(model, UserModel):
        return {"graph": "custom", "class": model.class_name, "sources": []}
    return {"graph": "student", "student": model.config.to_dict(), "sources": []}


def build_report(
    lowered: LoweredArtifact,
    prepared: PreparedModel,
    quantized: QuantizedModel,
    parity: ParityResult,
    seconds: dict[str, float],
) -> dict[str, Any]:
    """Everything measured during the export, for people and CI."""
    cov = lowered.coverage
    return {
        "toolkit_version": __version__,
        "target": prepared.recipe.target,
        "artifact": lowered.path.name,
        "source": prepared.source,
        "recipe": _plain(prepared.recipe),
        "quantization": {
            "scheme": quantized.scheme,
            "calibration_images": quantized.calibration_images,
            "calibration_strengths": list(quantized.calibration_strengths),
        },
        "parity": {
            "runtime": lowered.runtime,
            "images": parity.images,
            "y_psnr_db": [_num(v) for v in parity.psnr_db],
            "min_y_psnr_db": _num(parity.min_psnr_db),
            "max_abs_error": parity.max_abs_error,
            "floor_db": parity.floor_db,
            "passed": parity.passed,
        },
        "coverage": {
            "accelerated_ops": cov.accelerated,
            "total_ops": cov.total,
            "fraction": cov.fraction,
            "fallback_ops": cov.fallback,
            "where": cov.where,
        },
        "size_bytes": artifact_size(lowered.path),
        "parameters": prepared.parameters,
        "macs_per_output_pixel": _macs(prepared.macs_per_output_pixel),
        "stage_seconds": {k: round(v, 3) for k, v in seconds.items()},
        "reproducibility": "the artifact and manifest.json are byte-identical across runs with the same inputs; "
        "only stage_seconds in this report vary",
        "notes": quantized.notes + lowered.notes,
    }


def build_routed_report(
    lowered: RoutedLowered,
    prepared: RoutedPrepared,
    quantized: dict[str, QuantizedModel],
    parity: RoutedParity,
    seconds: dict[str, float],
) -> dict[str, Any]:
    """The experts' report with the whole routed output's parity and placement, plus one entry per function."""
    first = prepared.experts[0]
    report = build_report(lowered.functions[first], prepared.functions[first], quantized[first], parity.whole, seconds)
    coverage = lowered.coverage
    report.update(
        artifact=", ".join(f.name for f in lowered.files),
        size_bytes=sum(artifact_size(f) for f in lowered.files),
        parameters=prepared.parameters,
        macs_per_output_pixel=_macs(prepared.macs_per_output_pixel),
        coverage={
            **report["coverage"],
            "accelerated_ops": coverage.accelerated,
            "total_ops": coverage.total,
            "fraction": coverage.fraction,
            "fallback_ops": coverage.fallback,
        },
    )
    report["parity"]["what"] = "the whole output dispatched through the artifact's functions vs the float routed model"
    functions: dict[str, Any] = {}
    for name, function in lowered.functions.items():
        entry: dict[str, Any] = {
            "file": function.path.name,
            "placement": f"{function.coverage.accelerated}/{function.coverage.total}",
            "parameters": prepared.functions[name].parameters,
            "macs_per_output_pixel": round(prepared.functions[name].macs_per_output_pixel.total, 1),
            "quantization": quantized[name].scheme,
        }
        if name == ROUTER:
            entry["agreement_with_float_router"] = round(parity.router.agreement, 4)
            entry["max_abs_score_error"] = parity.router.max_abs_error
        else:
            entry["min_y_psnr_db"] = _num(parity.experts[name].min_psnr_db)
        functions[name] = entry
    report["functions"] = functions
    return report


def render_markdown(report: dict[str, Any]) -> str:
    """A readable summary of ``report``."""
    p, c, macs = report["parity"], report["coverage"], report["macs_per_output_pixel"]
    lines = [
        f"# {report['target']}: {report['artifact']}",
        "",
        "| metric | value |",
        "|---|---|",
        f"| source weights | {report['source']} |",
        f"| quantization | {report['quantization']['scheme']} |",
        f"| parity runtime | {p['runtime']} |",
        f"| Y-PSNR vs float (min over {len(p['images'])} photos) | {p['min_y_psnr_db']} dB (floor {p['floor_db']}) |",
        f"| max abs error | {p['max_abs_error']:.5f} |",
        f"| placement | {c['accelerated_ops']}/{c['total_ops']} ops on {c['where']} |",
        f"| size | {report['size_bytes'] / 1024:.1f} KiB |",
        f"| parameters | {report['parameters']} |",
        f"| MACs per output pixel | {macs['total']:.0f} (student {macs['student']:.0f}, "
        f"metadata + orchestrator {macs['metadata_and_orchestrator']:.0f}) |",
        "",
        "Per photo: " + ", ".join(f"{n} {v} dB" for n, v in zip(p["images"], p["y_psnr_db"], strict=True)),
    ]
    if "functions" in report:
        head = "| function | file | placement | Y-PSNR vs float (min) / router agreement | MACs per output pixel |"
        lines += ["", head]
        lines += ["|---|---|---|---|---|"]
        for name, f in report["functions"].items():
            check = f.get("min_y_psnr_db", f.get("agreement_with_float_router"))
            lines.append(f"| {name} | {f['file']} | {f['placement']} | {check} | {f['macs_per_output_pixel']:.0f} |")
    if report["notes"]:
        lines += ["", "Notes:", *[f"- {n}" for n in report["notes"]]]
    return "\n".join(lines) + "\n"


def write_reports(
    staging: Path,
    lowered: LoweredArtifact,
    prepared: PreparedModel,
    quantized: QuantizedModel,
    parity: ParityResult,
    seconds: dict[str, float],
) -> None:
    """Write manifest.json, report.json and report.md into ``staging``."""
    _write(staging, build_manifest(lowered, prepared), build_report(lowered, prepared, quantized, parity, seconds))


def write_routed_reports(
    staging: Path,
    lowered: RoutedLowered,
    prepared: RoutedPrepared,
    quantized: dict[str, QuantizedModel],
    parity: RoutedParity,
    seconds: dict[str, float],
) -> None:
    """manifest.json, report.json and report.md of a routed artifact into ``staging``."""
    report = build_routed_report(lowered, prepared, quantized, parity, seconds)
    _write(staging, build_routed_manifest(lowered, prepared), report)


def _write(staging: Path, manifest: dict[str, Any], report: dict[str, Any]) -> None:
    check(manifest, "manifest")
    _write_json(staging / "manifest.json", manifest)
    _write_json(staging / "report.json", report)
    (staging / "report.md").write_text(render_markdown(report))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _macs(macs: Macs) -> dict[str, float]:
    """MACs per output pixel: the whole graph, the student, and what metadata and orchestrator add."""
    return {
        "total": round(macs.total, 1),
        "student": round(macs.student, 1),
        "metadata_and_orchestrator": round(macs.overhead, 1),
    }


def _num(value: float) -> float | str:
    return round(value, 3) if math.isfinite(value) else "inf"


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def artifact_size(path: Path) -> int:
    """Bytes of a file, or of all files in a directory (an .mlpackage)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
