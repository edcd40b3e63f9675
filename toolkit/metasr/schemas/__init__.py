"""JSON Schemas for the files apps and tools exchange (manifest.json, benchmark results)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from metasr.errors import MetaSRError

# 3: the graph is MetaSR (inputs image, strength) or the bare student (input image alone, model.graph says which);
# 2: always MetaSR; 1: the plain student with a modulation input
MANIFEST_VERSION = 3


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (e.g. "manifest") shipped in this package."""
    return json.loads((resources.files("metasr.schemas") / f"{name}.schema.json").read_text())


def check(document: dict[str, Any], name: str) -> None:
    """Raise MetaSRError naming the first violation if ``document`` does not match schema ``name``."""
    try:
        jsonschema.validate(document, load_schema(name))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise MetaSRError(f"{name} JSON is invalid at {where}: {exc.message}") from exc
