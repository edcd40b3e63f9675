"""Mobile SR architectures users would otherwise pick, written here for side-by-side benchmarks only.

``ANCHORS`` maps a benchmark name to a constructor ``(scale) -> nn.Module``; every module maps an RGB
image in [0, 1] of shape (N, 3, H, W) to (N, 3, H*scale, W*scale).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from benchmarks.anchors.espcn import ESPCN
from benchmarks.anchors.fsrcnn import FSRCNN
from benchmarks.anchors.quicksrnet import QuickSRNet
from benchmarks.anchors.srvgg import SRVGGNetCompact
from benchmarks.anchors.xlsr import XLSR

ANCHORS: dict[str, Callable[[int], nn.Module]] = {
    "espcn": ESPCN,
    "fsrcnn": FSRCNN,
    "quicksrnet-small": partial(QuickSRNet, channels=32, num_layers=2),
    "quicksrnet-medium": partial(QuickSRNet, channels=32, num_layers=5),
    "xlsr": XLSR,
    "srvggnet-compact": SRVGGNetCompact,
}

__all__ = ["ANCHORS", "ESPCN", "FSRCNN", "XLSR", "QuickSRNet", "SRVGGNetCompact"]
