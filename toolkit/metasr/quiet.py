"""One place that keeps third-party chatter (converter progress bars, INFO logs, known-harmless warnings) off
the user's terminal, and turns third-party failures into one-line messages. ``--verbose`` (or
``METASR_VERBOSE=1``) lets everything through."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator

VERBOSE_ENV = "METASR_VERBOSE"
CHATTY_LOGGERS = (
    "coremltools",
    "nncf",
    "torch.onnx",
    "torch._export",
    "torch.export",
    "onnxscript",
    "onnx_ir",
    "executorch",
    "torch.utils._pytree",
    "torchao",
)


def verbose() -> bool:
    """Whether the user asked to see third-party output."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose() -> None:
    """Verbose mode for this process and the processes it starts: the chatty loggers log again."""
    os.environ[VERBOSE_ENV] = "1"
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def silence_by_default() -> None:
    """Unless verbose: the chatty libraries log errors only, for the whole process. Their import-time notices
    (coremltools on Linux: no native runtime, an untested torch or scikit-learn version; torch's pytree
    deprecations) are not actionable and read like a broken install."""
    if not verbose():
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def quiet(*, stderr: bool = False, root: bool = False) -> Iterator[None]:
    """For a block: no warnings, chatty loggers at ERROR (the root logger too with ``root``), stdout (and
    stderr with ``stderr``) captured. Verbose mode leaves everything through."""
    if verbose():
        yield
        return
    names = (*CHATTY_LOGGERS, "") if root else CHATTY_LOGGERS
    loggers = [logging.getLogger(name or None) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            if stderr:
                stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (cut to ``limit``), or its type name when it has none."""
    text = str(exc).strip()
    return one_line(text.splitlines()[0], limit) if text else type(exc).__name__


def one_line(message: object, limit: int = 300) -> str:
    """``message`` on one line (whitespace collapsed), cut to ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def quiet_native() -> Iterator[None]:
    """For a block: what native code writes to file descriptors 1 and 2 (ExecuTorch's cpuinfo probing of
    ARM-only /sys files on x86, the QNN SDK's configuration notices) is dropped, unless verbose."""
    if verbose():
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with open(os.devnull, "wb") as devnull:
        for fd in saved:
            os.dup2(devnull.fileno(), fd)
    try:
        yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
