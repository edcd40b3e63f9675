"""ExecuTorch plumbing shared by the XNNPACK and Vulkan targets: methods, lowering, coverage, host runtime."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from executorch.exir import EdgeCompileConfig, EdgeProgramManager, to_edge_transform_and_lower
from executorch.exir.backend.partitioner import Partitioner
from executorch.exir.lowered_backend_module import LoweredBackendModule
from executorch.runtime import Runtime

from metasr.errors import MetaSRError
from metasr.exporter.host import REEXPORT, FunctionRunner, loading
from metasr.exporter.stages import Coverage, PreparedModel, QuantizedModel
from metasr.quiet import quiet, quiet_native

_DELEGATE_CALL = torch.ops.higher_order.executorch_call_delegate


def method_sizes(prepared: PreparedModel) -> dict[str, tuple[int, int]]:
    """One program method per recipe input size: ``forward`` for the first, ``forward_HxW`` for the rest (a
    routed artifact's function uses its own name instead of ``forward``)."""
    base = prepared.function or "forward"
    sizes = prepared.input_sizes
    return {base if i == 0 else f"{base}_{h}x{w}": (h, w) for i, (h, w) in enumerate(sizes)}


def export_methods(module: torch.nn.Module, prepared: PreparedModel) -> dict[str, torch.export.ExportedProgram]:
    """``torch.export`` of ``module(*inputs)`` at each method's static input size."""
    with quiet(root=True):
        return {
            name: torch.export.export(module, prepared.example_inputs(size))
            for name, size in method_sizes(prepared).items()
        }


def lower(
    programs: dict[str, torch.export.ExportedProgram], partitioner: Callable[[], Partitioner]
) -> EdgeProgramManager:
    """Edge dialect with everything the backend accepts delegated (a fresh partitioner per method).

    The edge IR verifier is skipped: it re-validates every node after each pass, which doubles the
    export time, and the serialized program is byte-identical with or without it.
    """
    partitioners = {name: [partitioner()] for name in programs}
    config = EdgeCompileConfig(_check_ir_validity=False)
    with quiet(root=True):
        return to_edge_transform_and_lower(programs, partitioner=partitioners, compile_config=config)


def coverage(edge: EdgeProgramManager, where: str, methods: Iterable[str] | None = None) -> Coverage:
    """Compute nodes inside the delegates vs outside them (plain ExecuTorch CPU kernels), over ``methods``
    (default: all).

    Every ``call_function`` counts except tuple indexing (``getitem``) and the delegate call itself.
    """
    inside, outside = 0, []
    for name in edge.methods if methods is None else methods:
        graph_module = edge.exported_program(name).graph_module
        for node in graph_module.graph.nodes:
            if node.op == "get_attr" and isinstance(getattr(graph_module, node.target), LoweredBackendModule):
                inside += len(_compute_ops(getattr(graph_module, node.target).original_module.graph_module))
        outside += _compute_ops(graph_module)
    return Coverage(accelerated=inside, total=inside + len(outside), fallback=outside, where=where)


def write_program(edge: EdgeProgramManager, path: Path) -> None:
    """Serialize to a ``.pte`` file."""
    with quiet(root=True):
        path.write_bytes(edge.to_executorch().buffer)


def check_program(path: Path) -> None:
    """Refuse a file that is no ExecuTorch program before the runtime reads it: ExecuTorch logs a bad file
    identifier byte for byte, and non-UTF-8 bytes there abort the whole process."""
    with open(path, "rb") as f:
        identifier = f.read(8)[4:]
    if not re.fullmatch(rb"ET\d\d", identifier):
        raise MetaSRError(f"{path.name} is not an ExecuTorch program (no ET file identifier); {REEXPORT}")


def method_runner(path: Path, function: str = "forward") -> FunctionRunner:
    """Load the ``.pte`` in ExecuTorch's Python runtime and run ``function``'s method for the image's size:
    ``function`` or one of its ``function_HxW`` methods, told apart by their input shapes. Another size is refused
    in one line, naming the sizes the program has."""
    check_program(path)
    with loading(path, "ExecuTorch"):
        program = Runtime.get().load_program(path)
        by_size = {}
        for name in program.method_names:
            if name == function or name.startswith(f"{function}_"):
                image = program.metadata(name).input_tensor_meta(0)
                by_size[tuple(image.sizes()[-2:])] = name
    methods: dict[str, Any] = {}

    def run(image: torch.Tensor, *others: torch.Tensor) -> torch.Tensor:
        name = by_size.get(tuple(image.shape[-2:]))
        if name is None:
            sizes = ", ".join(f"{h}x{w}" for h, w in by_size)
            raise MetaSRError(
                f"{path.name} has no {function} method for a {image.shape[-2]}x{image.shape[-1]} input (it takes "
                f"{sizes}); add the size to the recipe's input_sizes"
            )
        with loading(path, "ExecuTorch"):  # a delegate this runtime lacks fails here, not at load_program
            if name not in methods:
                with quiet_native():  # XNNPACK's cpuinfo probes ARM-only /sys files and says so on stderr
                    methods[name] = program.load_method(name)
            return methods[name].execute([t.contiguous() for t in (image, *others)])[0]

    return run


def manifest_methods(programs: dict[str, torch.export.ExportedProgram], prepared: PreparedModel) -> dict[str, Any]:
    """Method name -> input and output shapes, for the app (read from the exported programs)."""
    methods = {}
    for name, program in programs.items():
        state = _state(program)
        inputs = [n for n in program.graph.nodes if n.op == "placeholder" and n.name not in state]
        shapes = {arg: list(n.meta["val"].shape) for arg, n in zip(prepared.input_names, inputs, strict=True)}
        output = program.graph.output_node().args[0][0]
        methods[name] = {**shapes, "output": list(output.meta["val"].shape)}
    return methods


def lower_together(
    quantized: dict[str, QuantizedModel],
    module_of: Callable[[QuantizedModel], torch.nn.Module],
    partitioner: Callable[[], Partitioner],
    where: str,
    staging: Path,
) -> tuple[Path, dict[str, Coverage], dict[str, Any]]:
    """A routed artifact's functions as methods of one ``.pte``: its path, each function's placement and the
    method table for the manifest. Nothing is written when an op falls outside the delegate."""
    programs: dict[str, torch.export.ExportedProgram] = {}
    methods: dict[str, Any] = {}
    for q in quantized.values():
        exported = export_methods(module_of(q), q.prepared)
        programs.update(exported)
        methods.update(manifest_methods(exported, q.prepared))
    edge = lower(programs, partitioner)
    placement = {name: coverage(edge, where, method_sizes(q.prepared)) for name, q in quantized.items()}
    path = staging / f"metasr_x{next(iter(quantized.values())).prepared.scale}_routed.pte"
    if not any(c.fallback for c in placement.values()):
        write_program(edge, path)
    return path, placement, methods


def _state(program: torch.export.ExportedProgram) -> set[str]:
    """Placeholder names that hold parameters, buffers or constants rather than user inputs."""
    user = torch.export.graph_signature.InputKind.USER_INPUT
    return {spec.arg.name for spec in program.graph_signature.input_specs if spec.kind != user}


def not_lowered(*inputs: torch.Tensor) -> torch.Tensor:
    """Stand-in ``predict`` for a program that was not serialized because ops fell outside the delegate."""
    raise MetaSRError("the program was not lowered: some ops fall outside the delegate; see the coverage")


def _compute_ops(graph_module: torch.fx.GraphModule) -> list[str]:
    return [
        getattr(node.target, "__name__", str(node.target))
        for node in graph_module.graph.nodes
        if node.op == "call_function" and node.target not in (operator.getitem, _DELEGATE_CALL)
    ]
