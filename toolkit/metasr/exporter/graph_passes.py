"""Exact rewrites of exported torch graphs that more than one target needs."""

from __future__ import annotations

import torch


def drop_aliases(graph_module: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Replace every ``alias`` by its input, in place: exact, and neither XNNPACK nor Core ML converts it.

    torch.export writes a slice over a whole dimension as an alias, e.g. an orchestrator's ``weights[:, 0:1]``
    when there is only one metadata source.
    """
    graph = graph_module.graph
    for node in graph.find_nodes(op="call_function", target=torch.ops.aten.alias.default):
        node.replace_all_uses_with(node.args[0])
        graph.erase_node(node)
    graph.lint()
    graph_module.recompile()
    return graph_module
