"""Atomic file writes: every file metasr writes appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(final: str | Path, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temp path beside ``final``; written there, it replaces ``final`` on success (flushed to disk,
    with the mode a plain ``open`` would give) and is removed on every other way out: an error, Ctrl-C, SIGTERM
    (see :mod:`metasr.signals`). The temp file is private (0600) until then."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
