"""The demo apps against the exporter and the results format.

The Kotlin and Swift sources cannot be compiled here, so they are read as text: every manifest key, tensor name,
artifact file name, results key and launch option they use must match what the Python side writes or documents.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import json
import random
import re
import textwrap
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import onnx
import pytest

from metasr.errors import MetaSRError
from metasr.exporter.pipeline import export, load, prepare, resolve_recipe
from metasr.exporter.registry import TARGETS
from metasr.exporter.report import build_manifest
from metasr.exporter.stages import Coverage, ExportResult, LoweredArtifact, PreparedModel
from metasr.profile.results import load_results, percentile, runtime_targets, summarize, write_results
from metasr.recipes import with_overrides
from metasr.schemas import MANIFEST_VERSION, check, load_schema
from tests.conftest import PER_PIXEL

pytestmark = pytest.mark.export

ROOT = Path(__file__).resolve().parents[1]
ANDROID = ROOT / "android_demo"
KOTLIN = ANDROID / "app/src/main/java/dev/metasr/demo"
ANDROID_FIXTURE = ANDROID / "app/src/test/resources/manifest_executorch_xnnpack.json"
ANDROID_ROUTED_FIXTURE = ANDROID / "app/src/test/resources/manifest_executorch_xnnpack_routed.json"
IOS = ROOT / "ios_demo"
SWIFT = IOS / "MetaSRKit/Sources/MetaSRKit"
SWIFT_FIXTURE = IOS / "MetaSRKit/Tests/MetaSRKitTests/Fixtures.swift"
SAMPLES = {"android_demo": ANDROID / "sample_results.json", "ios_demo": IOS / "sample_results.json"}
# Manifest keys only some targets write, and the target whose module writes them.
TARGET_KEYS = {
    "execution_provider": "onnx",
    "backend": "onnx-qnn",
    "context_model": "onnx-qnn",
    "compute_units": "coreml",
    "minimum_deployment_target": "coreml",
}
# Targets whose routed manifests the apps read (onnx-qnn writes the onnx layout with _qdq file names).
ROUTED_TARGETS = ("onnx", "executorch-xnnpack", "coreml")


# --- helpers -------------------------------------------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def all_keys(value: Any) -> set[str]:
    """Every object key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in all_keys(v)}
    return set()


def target_source(target: str) -> str | None:
    """Source of the exporter module for ``target``, or None while nobody has written it yet."""
    spec = importlib.util.find_spec(TARGETS[target])
    return Path(spec.origin).read_text() if spec and spec.origin else None


def exporter_file_patterns(target: str) -> set[str]:
    """Artifact names the target module builds, e.g. f"metasr_x{prepared.scale}.pte" -> "metasr_x%d.pte"."""
    source = target_source(target)
    assert source is not None, f"no toolkit module for target '{target}'"
    names = re.findall(r"""["'](metasr_x\{[^{}]+\}[^"'{}]*\.(?:pte|onnx|mlpackage))["']""", source)
    names = {re.sub(r"\{[^{}]+\}", "%d", name) for name in names}
    # f"{prepared.stem}_qdq.onnx": the unrouted stem, metasr_x{scale}, read off PreparedModel itself
    stem = PreparedModel.stem.fget(types.SimpleNamespace(scale=2, function=None)).replace("2", "%d")
    suffixes = re.findall(r"""["']\{(?:\w+\.)*prepared\.stem\}([^"'{}]*\.(?:pte|onnx|mlpackage))["']""", source)
    names |= {stem + suffix for suffix in suffixes}
    assert names, f"no artifact file name found in {TARGETS[target]}; update this test's pattern"
    return names


def kotlin_regex_literal(text: str, name: str) -> str:
    return re.search(rf'val {name} = Regex\("""(.+?)"""\)', text).group(1)


def swift_blocks(text: str) -> list[tuple[str, int, int]]:
    """(struct name, body start, body end) for every struct, found by brace matching."""
    blocks = []
    for match in re.finditer(r"\bstruct (\w+)[^{]*\{", text):
        depth, i = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        blocks.append((match.group(1), match.end(), i - 1))
    return blocks


def swift_structs(path: Path) -> dict[str, dict[str, bool]]:
    """For each struct: JSON key -> whether its property is optional, from CodingKeys and stored properties."""
    text = read(path)
    blocks = swift_blocks(text)

    def innermost(pos: int) -> str | None:
        inside = [b for b in blocks if b[1] <= pos < b[2]]
        return min(inside, key=lambda b: b[2] - b[1])[0] if inside else None

    props: dict[str | None, dict[str, bool]] = {name: {} for name, _, _ in blocks} | {None: {}}
    for match in re.finditer(r"^\s*(?:public )?let (\w+): ([^=\n]+?)\s*$", text, re.M):
        props[innermost(match.start())][match.group(1)] = match.group(2).endswith("?")
    structs: dict[str, dict[str, bool]] = {}
    for match in re.finditer(r"enum CodingKeys: String, CodingKey \{(.*?)\}", text, re.S):
        owner = innermost(match.start())
        keys = {}
        for line in re.findall(r"case (.+)", match.group(1)):
            for case in line.split(","):
                prop, _, raw = case.partition("=")
                prop = prop.strip().strip("`")
                keys[raw.strip().strip('"') or prop] = props[owner][prop]
        structs[owner] = keys
    return structs


def swift_string(text: str, name: str) -> str:
    return re.search(rf'static let {name} = #?"(.+?)"#?$', text, re.M).group(1)


# --- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    """A real ONNX export at a tiny size (the cheapest target): its manifest is what every target writes."""
    recipe = with_overrides(resolve_recipe("onnx"), input_sizes=((64, 64),))
    return export(recipe, tmp_path_factory.mktemp("export"), checkpoint=PER_PIXEL)


@pytest.fixture(scope="module")
def manifest(exported: ExportResult) -> dict[str, Any]:
    return json.loads(exported.manifest.read_text())


@pytest.fixture(scope="module")
def coreml_manifest(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The manifest the coreml target writes, built without converting (coreml's own manifest extras)."""
    module = importlib.import_module(TARGETS["coreml"])
    extra = module._manifest_extra
    recipe = with_overrides(resolve_recipe("coreml"), input_sizes=((64, 64), (96, 96)))
    prepared = prepare(load(PER_PIXEL, recipe.scale), recipe)
    path = tmp_path_factory.mktemp("coreml") / "metasr_x2.mlpackage"
    path.mkdir()
    (path / "Manifest.json").write_text("{}")
    lowered = LoweredArtifact(
        path, Coverage(1, 1), "none", lambda *_: None, extra(prepared, recipe.options, module.DEPLOYMENT_TARGET)
    )
    manifest = build_manifest(lowered, prepared)
    check(manifest, "manifest")
    return manifest


@pytest.fixture
def sample() -> dict[str, Any]:
    return json.loads(read(SAMPLES["android_demo"]))


def swift_fixtures() -> dict[str, dict[str, Any]]:
    """Every JSON fixture in Fixtures.swift, by its static name."""
    found = re.findall(r'static let (\w+) = #"""\n(.*?)\n\s*"""#', read(SWIFT_FIXTURE), re.S)
    return {name: json.loads(textwrap.dedent(body)) for name, body in found}


def swift_fixture() -> dict[str, Any]:
    return swift_fixtures()["manifestJSON"]


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportResult]:
    """A tiny routed checkpoint (two experts, 64-px routing tiles, x1/2 thumbnail) really exported for every
    target whose routed manifest the apps read, at 128x128."""
    from metasr.assembly import save_routed
    from tests.exporter.test_routed import _routed

    root = tmp_path_factory.mktemp("routed")
    checkpoint = root / "routed.safetensors"
    save_routed(_routed(), checkpoint)
    return {
        target: export(with_overrides(resolve_recipe(target), input_sizes=((128, 128),)), root, checkpoint=checkpoint)
        for target in ROUTED_TARGETS
    }


@pytest.fixture(scope="module")
def routed_manifests(routed: dict[str, ExportResult]) -> dict[str, dict[str, Any]]:
    return {target: json.loads(result.manifest.read_text()) for target, result in routed.items()}


# --- manifests -----------------------------------------------------------------------------------------------------


def same_structure(fixture: dict[str, Any], real: dict[str, Any]) -> None:
    check(fixture, "manifest")
    for key in ("inputs", "outputs"):
        assert [set(t) for t in fixture[key]] == [set(t) for t in real[key]], key
    assert set(load_schema("manifest")["required"]) <= set(fixture) <= set(real) | set(TARGET_KEYS)


def test_exported_manifest_and_android_fixture_validate(manifest: dict[str, Any]) -> None:
    check(manifest, "manifest")
    same_structure(json.loads(read(ANDROID_FIXTURE)), manifest)


def test_swift_fixture_is_what_the_coreml_target_writes(coreml_manifest: dict[str, Any]) -> None:
    same_structure(swift_fixture(), coreml_manifest)
    assert set(swift_fixture()) == set(coreml_manifest)
    assert swift_fixture()["compute_units"] == coreml_manifest["compute_units"]


def test_swift_maps_every_coreml_compute_units_option() -> None:
    options = typing.get_type_hints(importlib.import_module(TARGETS["coreml"]).Options)["compute_units"]
    switch = re.search(r"var mlComputeUnits: MLComputeUnits \{(.*?)\n    \}", read(SWIFT / "CoreMLEngine.swift"), re.S)
    mapped = set(re.findall(r'"(\w+)"', switch.group(1)))
    assert set(typing.get_args(options)) <= mapped


def test_tensor_and_method_names_match_the_export(exported: ExportResult, manifest: dict[str, Any]) -> None:
    graph = onnx.load(exported.artifact).graph
    names = {
        "image": ([i["name"] for i in manifest["inputs"]][0], graph.input[0].name),
        "strength": ([i["name"] for i in manifest["inputs"]][1], graph.input[1].name),
        "output": (manifest["outputs"][0]["name"], graph.output[0].name),
    }
    assert all(a == b == name for name, (a, b) in names.items()), names
    kotlin = read(KOTLIN / "Manifest.kt")
    swift = read(SWIFT / "Manifest.swift")
    for kt, sw, name in (
        ("IMAGE_INPUT", "imageInput", "image"),
        ("STRENGTH_INPUT", "strengthInput", "strength"),
        ("OUTPUT", "outputName", "output"),
    ):
        assert re.search(rf'const val {kt} = "{name}"', kotlin)
        assert swift_string(swift, sw) == name
    assert re.search(r'const val FILE_NAME = "manifest.json"', kotlin)
    assert swift_string(swift, "fileName") == exported.manifest.name == "manifest.json"
    assert re.search(r'const val METHOD = "forward"', read(KOTLIN / "ExecuTorchEngine.kt"))


def test_apps_accept_exactly_the_manifest_version_the_exporter_writes(manifest: dict[str, Any]) -> None:
    assert (
        manifest["schema_version"]
        == MANIFEST_VERSION
        == load_schema("manifest")["properties"]["schema_version"]["const"]
    )
    assert re.search(rf"const val SCHEMA_VERSION = {MANIFEST_VERSION}\b", read(KOTLIN / "Manifest.kt"))
    assert re.search(rf"static let supportedSchemaVersion = {MANIFEST_VERSION}\b", read(SWIFT / "Manifest.swift"))


def test_apps_feed_the_default_strength_the_export_documents(manifest: dict[str, Any]) -> None:
    strength = manifest["inputs"][1]
    model = load(PER_PIXEL, manifest["scale"]).model
    assert strength["shapes"] == [list(model.default_strength().shape)] == [[1, 1, 1, 1]]
    assert strength["default"] == float(model.default_strength()) == -1.0 and strength["value_range"] == [0.0, 1.0]
    # Android: ModelManifest reads the default and the shape when the input exists (a bare student has none);
    # both engines feed the strength with every tile only then.
    kotlin = read(KOTLIN / "Manifest.kt")
    assert "val strength = optionalTensor(inputs, STRENGTH_INPUT)" in kotlin
    assert 'defaultStrength = strength?.getDouble("default")' in kotlin and "shapes(it)" in kotlin
    executorch = read(KOTLIN / "ExecuTorchEngine.kt")
    assert "override var strength: Float = manifest.defaultStrength" in executorch
    assert "listOfNotNull(image, strengthShape?.let { Tensor.fromBlob(floatArrayOf(strength), it) })" in executorch
    assert "module.forward(*inputs.map(EValue::from).toTypedArray())" in executorch
    onnx_engine = read(KOTLIN / "OnnxQnnEngine.kt")
    assert "override var strength: Float = manifest.defaultStrength" in onnx_engine
    assert "strength?.let { ModelManifest.STRENGTH_INPUT to it }" in onnx_engine
    # iOS: TensorSpec decodes "default" as a number; CoreMLEngine starts from it and feeds it by name when the
    # manifest lists the input.
    assert re.search(r"public let defaultValue: Double\?", read(SWIFT / "Manifest.swift"))
    engine = read(SWIFT / "CoreMLEngine.swift")
    assert "if manifest.hasStrengthInput {" in engine and "try manifest.defaultStrength" in engine
    assert "inputs[Manifest.strengthInput] = MLFeatureValue(multiArray: strengthArray)" in engine


def test_manifest_hash_is_what_the_android_app_checks(exported: ExportResult, manifest: dict[str, Any]) -> None:
    artifact = exported.artifact
    assert hashlib.sha256(artifact.name.encode() + artifact.read_bytes()).hexdigest() == manifest["model_sha256"]
    source = read(KOTLIN / "Manifest.kt")
    assert source.index("digest.update(artifact.name") < source.index("artifact.inputStream()")


def kotlin_function(source: str, name: str) -> str:
    """The body of Kotlin function ``name``, found by brace matching."""
    match = re.search(rf"\bfun {name}\([^)]*\)[^{{]*\{{", source)
    assert match, f"no Kotlin function {name}"
    depth, i = 1, match.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        i += 1
    return source[match.end() : i - 1]


def json_reads(source: str) -> list[tuple[str, str]]:
    """(get | opt, key) for every org.json read in Kotlin ``source``."""
    return re.findall(r"\b(get|opt)\w*\(\s*\"([a-z0-9_]+)\"", source)


def test_manifest_keys_read_by_kotlin_exist(manifest: dict[str, Any]) -> None:
    source = read(KOTLIN / "Manifest.kt")
    source = source.replace(kotlin_function(source, "parseRouting"), "")  # routed manifests only: tested below
    reads = json_reads(source)
    required = {key for kind, key in reads if kind == "get"}
    optional = {key for kind, key in reads if kind == "opt"}
    assert {"schema_version", "target", "file", "model_sha256", "scale", "inputs", "outputs", "tile"} <= required
    assert required <= all_keys(manifest), required - all_keys(manifest)
    assert 'json.optJSONObject("routing")' in source  # a plain manifest has none
    for key in optional - all_keys(manifest) - {"routing"}:
        assert key in TARGET_KEYS, f"Manifest.kt reads '{key}', which no target writes"
        source = target_source(TARGET_KEYS[key])
        if source is not None:
            assert f'"{key}"' in source, f"{TARGETS[TARGET_KEYS[key]]} no longer writes '{key}'"


def check_swift_keys(manifest: dict[str, Any]) -> None:
    """Every key Manifest.swift decodes without `?` is in ``manifest``; every optional one is written by some target."""
    structs = swift_structs(SWIFT / "Manifest.swift")
    sections = {
        "Manifest": [manifest],
        "TensorSpec": manifest["inputs"] + manifest["outputs"],
        "TileSpec": [manifest["tile"]],
    }
    if "routing" in manifest:
        routing = manifest["routing"]
        sections["TensorSpec"] += [*routing["router"]["inputs"], routing["router"]["output"]]
        sections |= {"RoutingSpec": [routing], "RouterSpec": [routing["router"]], "FunctionSpec": routing["experts"]}
    for struct, objects in sections.items():
        for key, optional in structs[struct].items():
            if not optional:
                assert all(key in obj for obj in objects), f"{struct}.{key} is required but missing in the manifest"
            elif not any(key in obj for obj in objects) and key in TARGET_KEYS:
                source = target_source(TARGET_KEYS[key])
                if source is not None:
                    assert f'"{key}"' in source, f"{TARGETS[TARGET_KEYS[key]]} no longer writes '{key}'"


def test_manifest_keys_decoded_by_swift_exist(manifest: dict[str, Any], routed_manifests: dict[str, Any]) -> None:
    check_swift_keys(manifest)
    structs = swift_structs(SWIFT / "Manifest.swift")
    written = all_keys(manifest) | all_keys(routed_manifests["coreml"]) | set(TARGET_KEYS)
    decoded = {key for keys in structs.values() for key in keys}
    assert decoded <= written, f"Manifest.swift decodes keys no target writes: {decoded - written}"


def test_swift_decodes_the_coreml_manifest(coreml_manifest: dict[str, Any]) -> None:
    check_swift_keys(coreml_manifest)
    strength = next(t for t in coreml_manifest["inputs"] if t["name"] == "strength")
    assert strength["default"] == -1.0 and strength["optional"] is True  # stored in the model too
    assert coreml_manifest["file"] == swift_string(read(SWIFT / "Manifest.swift"), "artifactPattern") % 2


# --- routed artifacts ----------------------------------------------------------------------------------------------


def test_routed_manifests_validate_and_the_app_fixtures_are_real_ones(routed_manifests: dict[str, Any]) -> None:
    for target, manifest in routed_manifests.items():
        check(manifest, "manifest")
        assert manifest["model"]["graph"] == "routed" and manifest["routing"]["blending"] == "hard", target
    android = json.loads(read(ANDROID_ROUTED_FIXTURE))
    ios = swift_fixtures()["routedManifestJSON"]
    for fixture, real in ((android, routed_manifests["executorch-xnnpack"]), (ios, routed_manifests["coreml"])):
        same_structure(fixture, real)
        assert set(fixture) == set(real)
        assert all_keys(fixture["routing"]) == all_keys(real["routing"])
        assert [e["function"] for e in fixture["routing"]["experts"]] == ["expert_0", "expert_1"]


def test_routing_keys_read_by_the_apps_exist(routed_manifests: dict[str, Any]) -> None:
    body = kotlin_function(read(KOTLIN / "Manifest.kt"), "parseRouting")
    reads = json_reads(body)
    assert {key for kind, key in reads if kind == "opt"} == set()
    required = {key for _, key in reads}
    assert {"tile", "thumbnail", "router", "experts", "function", "file", "inputs", "output", "blending"} <= required
    for target in ("onnx", "executorch-xnnpack"):
        routing = routed_manifests[target]["routing"]
        assert required <= all_keys(routing), (target, required - all_keys(routing))
    check_swift_keys(routed_manifests["coreml"])
    structs = swift_structs(SWIFT / "Manifest.swift")
    assert structs["Manifest"]["routing"] and not structs["RoutingSpec"]["thumbnail"]
    assert set(structs["RoutingSpec"]) <= set(routed_manifests["coreml"]["routing"])


def test_app_function_and_file_names_match_the_routed_exports(
    routed: dict[str, ExportResult], routed_manifests: dict[str, Any]
) -> None:
    from executorch.runtime import Runtime

    from metasr.exporter import coreml
    from metasr.exporter.executorch_common import method_sizes

    for target, manifest in routed_manifests.items():
        routing = manifest["routing"]
        functions = [routing["router"]["function"], *(e["function"] for e in routing["experts"])]
        assert functions == ["router", "expert_0", "expert_1"], target
        assert [t["name"] for t in routing["router"]["inputs"]] == ["image", "strength"]
        assert routing["router"]["output"]["name"] == "output"
        assert routing["router"]["output"]["shapes"] == [[1, 2, 2, 2]]  # 128 px: 2 x 2 blocks of 64
        folder = routed[target].artifact.parent
        assert all((folder / e["file"]).exists() for e in [routing["router"], *routing["experts"]]), target
    # ONNX: a file per function; the router takes (image, strength) by name, an expert the image alone
    onnx_routing = routed_manifests["onnx"]["routing"]
    folder = routed["onnx"].artifact.parent
    router = onnx.load(folder / onnx_routing["router"]["file"]).graph
    assert [i.name for i in router.input] == ["image", "strength"] and router.output[0].name == "output"
    for expert in onnx_routing["experts"]:
        graph = onnx.load(folder / expert["file"]).graph
        assert [i.name for i in graph.input] == ["image"] and graph.output[0].name == "output"
    # ExecuTorch: one .pte whose methods are the manifest's function names
    pte = routed["executorch-xnnpack"].artifact
    methods = set(Runtime.get().load_program(pte).method_names)
    assert methods == {"router", "expert_0", "expert_1"}
    # ExecuTorchEngine.method builds a function's sized method as the exporter names it
    executorch = read(KOTLIN / "ExecuTorchEngine.kt")
    assert 'if (height to width == first) function else "${function}_${height}x$width"' in executorch
    prepared = types.SimpleNamespace(function="expert_0", input_sizes=((128, 128), (256, 96)))
    assert list(method_sizes(prepared)) == ["expert_0", "expert_0_256x96"]
    assert "execute(method(routing.router.function, th, tw, h0 / t to w0 / t), inputs)" in executorch
    assert "method(routing.experts[k].function, height, width, h0 to w0)" in executorch
    assert "module.loadMethod(method)" in executorch and "module.execute(method," in executorch
    # Core ML: one multifunction package, a function per name, loaded by MLModelConfiguration.functionName
    package = routed["coreml"].artifact
    assert set(coreml._program(package).functions) == {"router", "expert_0", "expert_1"}
    assert routed_manifests["coreml"]["minimum_deployment_target"] == "iOS18"
    engine = read(SWIFT / "CoreMLEngine.swift")
    assert "configuration.functionName = function" in engine and "#available(iOS 18.0, macOS 15.0, *)" in engine
    assert "Self.load(compiled, function: routing.router.function" in engine
    assert "for expert in routing.experts {" in engine and "function: expert.function" in engine


def test_routed_artifact_names_match_the_exporter(routed_manifests: dict[str, Any]) -> None:
    kinds = {target: routed for _, target, _, _, routed in engine_kinds()}
    for target in ("onnx", "executorch-xnnpack"):
        assert kinds[target] % 2 == routed_manifests[target]["file"]
    assert kinds["executorch-vulkan"] == kinds["executorch-xnnpack"]  # both write through executorch_common
    common = Path(importlib.util.find_spec("metasr.exporter.executorch_common").origin).read_text()
    assert re.search(r'f"metasr_x\{[^"]+\}_routed\.pte"', common)
    # onnx-qnn: the router's stem with the QDQ suffix, as for the plain model
    router_stem = PreparedModel.stem.fget(types.SimpleNamespace(scale=2, function="router"))
    assert kinds["onnx-qnn"] % 2 == router_stem + "_qdq.onnx"
    assert "metasr_x%d_qdq.onnx" in exporter_file_patterns("onnx-qnn")
    swift = swift_string(read(SWIFT / "Manifest.swift"), "routedArtifactPattern")
    assert swift % 2 == routed_manifests["coreml"]["file"]


def kotlin_combined_sha256(folder: Path, files: list[str]) -> str:
    """ModelManifest.matches for a routed artifact: in name order, each file's name, then its own hash in hex."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(hashlib.sha256(name.encode() + (folder / name).read_bytes()).hexdigest().encode())
    return digest.hexdigest()


def test_routed_hash_is_what_the_android_app_checks(
    routed: dict[str, ExportResult], routed_manifests: dict[str, Any]
) -> None:
    for target in ("onnx", "executorch-xnnpack"):
        manifest = routed_manifests[target]
        routing = manifest["routing"]
        files = sorted({e["file"] for e in [routing["router"], *routing["experts"]]})
        assert len(files) == (3 if target == "onnx" else 1)
        folder = routed[target].artifact.parent
        assert kotlin_combined_sha256(folder, files) == manifest["model_sha256"], target
    source = read(KOTLIN / "Manifest.kt")
    combined = kotlin_function(source, "combinedSha256")
    assert "files.sortedBy { it.name }" in combined
    assert combined.index("digest.update(file.name") < combined.index("digest.update(sha256(file)")
    assert "(listOf(router) + experts).map { it.file }.distinct()" in source


def test_both_apps_dispatch_each_tile_as_the_manifest_says(routed_manifests: dict[str, Any]) -> None:
    dispatch = routed_manifests["onnx"]["routing"]["dispatch"]
    assert "image[..., ::2, ::2]" in dispatch and "argmin over axis 1" in dispatch and "keep its output" in dispatch
    kotlin = read(KOTLIN / "RoutedDispatch.kt")
    # thumbnail: every t-th pixel of each row and column, planar CHW
    assert "val src = (c * height + j * t) * width" in kotlin and "out[dst + i] = image[src + i * t]" in kotlin
    # argmin over the experts (NKHW, first on ties), per block
    assert "if (scores[k * plane + b] < scores[best * plane + b]) best = k" in kotlin
    # one expert: its output as is; several: each block's (block * scale)^2 pixels from its expert
    assert "if (used.size == 1) return expert(used[0])" in kotlin
    assert "val side = block * scale" in kotlin and "outputs.getValue(routes[blocks + b])" in kotlin
    for engine in ("ExecuTorchEngine.kt", "OnnxQnnEngine.kt"):
        text = read(KOTLIN / engine)
        assert "RoutedDispatch.forManifest(manifest)" in text and "dispatch.run(" in text, engine
    swift = read(SWIFT / "RoutedDispatch.swift")
    assert "let src = source + j * t * rowBytes" in swift and "from: src + i * t * bytesPerPixel" in swift
    assert "where scores[k * plane + b] < scores[best * plane + b] { best = k }" in swift
    assert "let side = (block == 0 ? width : block) * scale" in swift
    assert "let source = output(routes[blocks + b])" in swift
    # routing tile 0 (a conv router deciding per call): one block per tile, of any size
    assert "if (block == 0) routes(scores, 1, 1) else routes(scores, height / block, width / block)" in kotlin
    assert "if block == 0 { return (1, 1) }" in swift and "let blocks = block == 0 ? 0 : y / side * cols" in swift
    engine = read(SWIFT / "CoreMLEngine.swift")
    assert "if let dispatch { return try predictRouted(tile, dispatch: dispatch) }" in engine
    assert "if used.count == 1 { return first }" in engine
    # the Kotlin and Swift unit tests exercise the dispatch on the real routed fixtures
    assert "/manifest_executorch_xnnpack_routed.json" in read(
        ANDROID / "app/src/test/java/dev/metasr/demo/RoutedDispatchTest.kt"
    )
    assert "Fixtures.routedManifest()" in read(IOS / "MetaSRKit/Tests/MetaSRKitTests/RoutedDispatchTests.swift")


# --- artifact names and runtimes -----------------------------------------------------------------------------------


def engine_kinds() -> list[tuple[str, str, str, str, str]]:
    """(enum name, target, runtime, artifact pattern, routed artifact pattern) from SrEngine.kt's EngineKind."""
    source = read(KOTLIN / "SrEngine.kt")
    return re.findall(r'^\s*(\w+)\("([\w-]+)", "([\w-]+)", "([^"]+)", "([^"]+)"\)', source, re.M)


def test_engine_kinds_cover_every_target_and_schema_runtime() -> None:
    kinds = engine_kinds()
    targets = {target for _, target, *_ in kinds}
    assert targets | {"coreml"} == set(TARGETS)
    runtimes = load_schema("benchmark_results")["properties"]["runtime"]["enum"]
    assert set(runtime_targets()) == set(runtimes)
    for _, target, runtime, *_ in kinds:
        assert runtime_targets()[runtime] == target
    assert re.search(r'static let runtimeName = "coreml"', read(SWIFT / "Benchmark.swift"))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_app_artifact_names_match_the_exporter(target: str, manifest: dict[str, Any]) -> None:
    if target == "coreml":
        pattern = swift_string(read(SWIFT / "Manifest.swift"), "artifactPattern")
    else:
        pattern = next(p for _, t, _, p, _ in engine_kinds() if t == target)
    if target == manifest["target"]:
        assert pattern % manifest["scale"] == manifest["file"]
    assert pattern in exporter_file_patterns(target)


def test_readmes_name_only_real_artifacts() -> None:
    swift = read(SWIFT / "Manifest.swift")
    patterns = [p for *_, p, _ in engine_kinds()] + [swift_string(swift, "artifactPattern")]
    routed = [p for *_, p in engine_kinds()] + [swift_string(swift, "routedArtifactPattern")]
    routed += [p.replace("router", f"expert_{k}") for p in routed if "router" in p for k in range(2)]
    names = {p % s for p in patterns + routed for s in (2, 4)}
    names |= {n.replace(".mlpackage", ".mlmodelc") for n in names}
    for readme in (ANDROID / "README.md", IOS / "README.md"):
        mentioned = set(re.findall(r"metasr_x\d\w*\.(?:pte|onnx|mlpackage|mlmodelc)", read(readme)))
        assert mentioned and mentioned <= names, (readme, mentioned - names)


# --- benchmark results ---------------------------------------------------------------------------------------------


def test_results_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(load_schema("benchmark_results"))


@pytest.mark.parametrize("app", sorted(SAMPLES))
def test_samples_validate_and_parse(app: str) -> None:
    results = load_results(SAMPLES[app])
    assert results.app == app
    assert results.runs == len(results.latencies_ms) == 50
    assert (results.median_ms, results.p10_ms, results.p90_ms) == pytest.approx(
        summarize(results.latencies_ms), abs=1e-3
    )
    fixture = json.loads(read(ANDROID_FIXTURE)) if app == "android_demo" else swift_fixture()
    assert (results.artifact.file, results.artifact.target, results.artifact.model_sha256) == (
        fixture["file"],
        fixture["target"],
        fixture["model_sha256"],
    )
    assert results.timestamp.utcoffset() is not None


def schema_keys() -> tuple[set[str], set[str]]:
    """(all property names at every level, required top-level names) of the results schema."""
    schema = load_schema("benchmark_results")
    props = schema["properties"]
    return set(props) | set(props["device"]["properties"]) | set(props["artifact"]["properties"]), set(
        schema["required"]
    )


def test_android_writes_exactly_the_schema_keys_in_sample_order() -> None:
    source = read(KOTLIN / "ResultsWriter.kt")
    known, required = schema_keys()
    written = set(re.findall(r'\.put\("(\w+)"', source))
    assert written <= known, written - known
    top = re.findall(r'\.put\("(\w+)"', re.search(r"return JSONObject\(\)(.*?)\n    \}", source, re.S).group(1))
    assert required <= set(top)
    assert list(json.loads(read(SAMPLES["android_demo"]))) == top
    assert re.search(r'const val APP = "android_demo"', source)


def test_ios_writes_exactly_the_schema_keys_sorted() -> None:
    structs = swift_structs(SWIFT / "Benchmark.swift")
    known, required = schema_keys()
    top = set(structs["BenchmarkResults"])
    assert required | {"compute_units"} == top
    assert set(structs["Device"]) | set(structs["Artifact"]) | top <= known
    sample = json.loads(read(SAMPLES["ios_demo"]))
    assert list(sample) == sorted(top)
    assert list(sample["device"]) == sorted(structs["Device"])
    assert re.search(r'static let appName = "ios_demo"', read(SWIFT / "Benchmark.swift"))
    units = load_schema("benchmark_results")["properties"]["compute_units"]["enum"]
    assert set(re.findall(r'case \.\w+: "(\w+)"', read(SWIFT / "CoreMLEngine.swift"))) == set(units)


def test_percentiles_match_the_apps_test_vectors() -> None:
    values = [40.0, 10.0, 30.0, 20.0]  # the vectors in ResultsWriterTest.kt and BenchmarkTests.swift
    assert summarize(values) == pytest.approx((25.0, 13.0, 37.0))
    assert percentile([7.5], 90) == 7.5
    rng = random.Random(0)
    for n in (1, 2, 5, 50, 51):
        sample = [rng.uniform(1, 30) for _ in range(n)]
        for p in (10, 50, 90):
            assert percentile(sample, p) == pytest.approx(float(np.percentile(sample, p)))


def broken(sample: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(expected message fragment, a corrupted copy of sample) pairs."""
    for mutation, fragment in (
        (lambda d: d.update(median_ms=d["median_ms"] + 0.5), "median_ms"),
        (lambda d: d.update(p90_ms=d["p10_ms"]), "p90_ms"),
        (lambda d: d.pop("p10_ms"), "p10_ms"),
        (lambda d: d.pop("timestamp"), "timestamp"),
        (lambda d: d["device"].pop("model"), "model"),
        (lambda d: d.update(runs=d["runs"] + 1), "runs"),
        (lambda d: d.update(runtime="onnxruntime-qnn"), "runtime"),
        (lambda d: d.pop("backend"), "backend"),
        (lambda d: d.update(timestamp="2025-06-01T12:00:00"), "timestamp"),
        (lambda d: d.update(latencies_ms=[]), "latencies_ms"),
        (lambda d: d.update(extra=1), "extra"),
    ):
        doc = copy.deepcopy(sample)
        mutation(doc)
        yield fragment, doc


def test_load_results_rejects_inconsistent_or_incomplete_files(sample: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    for fragment, doc in broken(sample):
        path.write_text(json.dumps(doc))
        with pytest.raises(MetaSRError, match=fragment) as info:
            load_results(path)
        assert "\n" not in str(info.value)
    path.write_text("{not json")
    with pytest.raises(MetaSRError, match="not valid JSON"):
        load_results(path)
    with pytest.raises(MetaSRError, match="no such benchmark results file"):
        load_results(tmp_path / "missing.json")


def test_write_results_round_trips_atomically(tmp_path: Path) -> None:
    results = load_results(SAMPLES["android_demo"])
    path = write_results(results, tmp_path / "out" / "benchmark_results.json")
    assert load_results(path) == results
    assert json.loads(path.read_text()) == json.loads(read(SAMPLES["android_demo"]))
    before = path.read_bytes()
    with pytest.raises(MetaSRError, match="median_ms"):
        write_results(dataclasses.replace(results, median_ms=results.median_ms * 2), path)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


# --- launch contracts ----------------------------------------------------------------------------------------------


def test_adb_extras_match_the_android_readme() -> None:
    contract = read(KOTLIN / "BenchmarkContract.kt")
    readme = read(ANDROID / "README.md")
    names = dict(re.findall(r'const val (EXTRA_\w+) = "(\w+)"', contract))
    kinds = {"String": "s", "Int": "i"}
    used = {(kinds[kind], names[const]) for kind, const in re.findall(r"get(String|Int)Extra\((EXTRA_\w+)", contract)}
    assert {name for _, name in used} == set(names.values())
    assert used == set(re.findall(r"--e([si])\s+(\w+)", readme))
    for extra, const in (("runs", "DEFAULT_RUNS"), ("warmup", "DEFAULT_WARMUP")):
        default = re.search(rf"const val {const} = (\d+)", contract).group(1)
        assert re.search(rf"\| `--ei {extra}` \| int \| {default} \|", readme)
    files_dir = re.search(r'const val DEVICE_FILES_DIR = "([^"]+)"', contract).group(1)
    results = re.search(r'const val RESULTS_FILE = "([^"]+)"', contract).group(1)
    assert f"adb pull {files_dir}/{results}" in readme
    component = re.search(r'const val COMPONENT = "([^"]+)"', contract).group(1)
    assert f"-n {component}" in readme
    package = re.search(r'applicationId = "([\w.]+)"', read(ANDROID / "app/build.gradle.kts")).group(1)
    assert files_dir == f"/sdcard/Android/data/{package}/files" and component.startswith(f"{package}/")
    assert re.search(r'const val LOG_TAG = "(\w+)"', contract).group(1) in readme
    assert 'android:name=".BenchmarkActivity"\n            android:exported="true"' in read(
        ANDROID / "app/src/main/AndroidManifest.xml"
    )


def test_ios_launch_arguments_match_the_ios_readme() -> None:
    source = read(SWIFT / "Benchmark.swift")
    readme = read(IOS / "README.md")
    assert swift_string(source, "flag") == "-benchmark" and "-benchmark runs=50 input=256x256" in readme
    for const in ("runsKey", "warmupKey", "inputKey", "computeUnitsKey"):
        assert f"`{swift_string(source, const)}=" in readme, const
    assert f"Documents/{swift_string(source, 'resultsFileName')}" in readme


def test_metasr_profile_adb_drives_the_benchmark_contract() -> None:
    adb = importlib.import_module("metasr.profile.adb")
    contract = read(KOTLIN / "BenchmarkContract.kt")
    for name in ("COMPONENT", "DEVICE_FILES_DIR", "RESULTS_FILE", "ERROR_FILE"):
        assert re.search(rf'const val {name} = "([^"]+)"', contract).group(1) == getattr(adb, name), name
    extras = set(re.findall(r'const val EXTRA_\w+ = "(\w+)"', contract))
    sent = set(re.findall(r'"--e[si]", "(\w+)"', Path(adb.__file__).read_text()))
    assert sent == extras
