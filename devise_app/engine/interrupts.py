"""Ctrl+C at a moment when it cannot be taken cleanly is held until that moment ends.

ONNX Runtime's native start-up turns a KeyboardInterrupt raised inside it into
``ImportError: initialization failed``, and one raised while the program's own
modules load ends in a traceback; both printed a traceback for a plain Ctrl+C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT during the block and raise it as KeyboardInterrupt once the block
    is done. Only in the main thread, and only where SIGINT raises KeyboardInterrupt
    now (a program with its own handler keeps it)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt
