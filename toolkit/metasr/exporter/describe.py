"""What an artifact says about itself inside its own file (Core ML model descriptions, ONNX ``metadata_props``),
so a model browser (Xcode, Netron) shows what it is and how to feed it without the manifest beside it."""

from __future__ import annotations

from dataclasses import dataclass

from metasr import __version__
from metasr.exporter.routed import ROUTER
from metasr.exporter.stages import PreparedModel
from metasr.exporter.user_model import UserModel
from metasr.models.metasr import MetaSR

AUTHOR = "MetaSR Edge"
STRENGTH_DESCRIPTION = (
    "restoration strength: a value in [0, 1] replaces the degradation degree the model estimates for every cell "
    "(0 = treat the frame as clean, 1 = restore as hard as possible); the default -1 uses the estimated degree"
)
SCORES_DESCRIPTION = "one score per expert and routing tile; the app runs the expert with the lowest"


@dataclass(frozen=True)
class Description:
    """One function's summary, its inputs' and output's descriptions, and the toolkit that wrote it."""

    summary: str
    inputs: dict[str, str]
    output: str
    author: str = AUTHOR
    version: str = __version__


def describe(prepared: PreparedModel) -> Description:
    """The description of ``prepared``'s graph (a whole model, or one function of a routed model)."""
    scale = prepared.scale
    image = "RGB image in [0, 1] (Core ML: an 8-bit RGB image); sides as the manifest allows"
    upscaled = f"the x{scale} upscaled image, RGB in [0, 1] (Core ML: an 8-bit RGB image)"
    if prepared.function == ROUTER:
        summary = f"MetaSR x{scale} router: picks the expert for each image tile (see manifest.json's routing)"
        inputs, output = {"image": "the image tile's thumbnail, RGB in [0, 1]"}, SCORES_DESCRIPTION
    elif prepared.function:
        summary = f"MetaSR x{scale} {prepared.function}: a plain SR network, run on the tiles the router names"
        inputs, output = {"image": image}, upscaled
    else:
        summary = f"MetaSR x{scale} super-resolution: {_kind(prepared)}"
        inputs, output = {"image": image}, upscaled
    if "strength" in prepared.input_names:
        inputs["strength"] = STRENGTH_DESCRIPTION
    return Description(summary, inputs, output)


def _kind(prepared: PreparedModel) -> str:
    model = prepared.model
    if isinstance(model, MetaSR):
        return "content-adaptive MetaSR graph (metadata extractors, orchestrator, modulated student)"
    if isinstance(model, UserModel):
        return f"a custom model ({model.class_name})"
    return "plain student"
