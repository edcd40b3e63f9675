"""Termination signals end a command the way Ctrl-C does, so its cleanup (``finally`` blocks) runs."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM or SIGHUP."""


def raise_on_termination() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt), as SIGINT already does.

    Commands call this first: temp files, staging folders and half-written outputs are then removed on
    ``kill`` (or a closed terminal) exactly as on Ctrl-C, and the exit code is non-zero. A no-op off the
    main thread, where Python cannot install handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(f"terminated by {signal.Signals(signum).name}")
