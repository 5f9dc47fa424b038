"""One generic worker for running core calls off the GUI thread.

The core's long jobs are plain generators that yield progress (``Library.index``);
short ones are plain functions (``Library.search``). :class:`Worker` runs either in
a thread pool and reports through Qt signals, the same shape as napari's workers:

* ``started()`` when it begins,
* ``yielded(item)`` for each item a generator yields (optionally coalesced so a
  fast generator cannot flood the GUI's event queue),
* ``returned(value)`` with the function's result or the generator's return value,
* ``errored(exception)`` if it raised,
* ``finished()`` last, always.

Cancelling is cooperative: :meth:`Worker.cancel` sets a :class:`threading.Event`
that the job receives (``Library.index(..., cancel=event)``) and checks between
batches, so it can stop cleanly and still yield its summary. :meth:`Worker.abort`
also stops consuming the generator; it is meant for shutting the window down.

Signals are emitted from the pool thread; connect them to methods of QObjects that
live on the GUI thread so Qt delivers them there (queued connections).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot


class WorkerSignals(QObject):
    started = Signal()
    yielded = Signal(object)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()


class Worker(QRunnable):
    """Runs ``fn()`` on a pool thread; iterates the result if it is an iterator."""

    def __init__(
        self,
        fn: Callable[[], Any],
        *,
        cancel: threading.Event | None = None,
        coalesce_s: float = 0.0,
        name: str = "",
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python owns it; WorkerPool keeps it alive while it runs
        self.signals = WorkerSignals()
        self.cancel_event = cancel if cancel is not None else threading.Event()
        self.name = name
        self._fn = fn
        self._coalesce_s = coalesce_s
        self._aborted = False

    def cancel(self) -> None:
        """Ask the job to stop at its next checkpoint."""
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def abort(self) -> None:
        """Cancel and stop reading the generator (used when the window closes)."""
        self._aborted = True
        self.cancel_event.set()

    def run(self) -> None:
        self.signals.started.emit()
        try:
            result = self._fn()
            if isinstance(result, Iterator):
                result = self._drain(result)
        except Exception as exc:  # reported to the GUI, which decides how to show it
            self.signals.errored.emit(exc)
        else:
            if not self._aborted:
                self.signals.returned.emit(result)
        finally:
            self.signals.finished.emit()

    def _drain(self, iterator: Iterator[Any]) -> Any:
        last_emit = 0.0
        pending: list[Any] = []
        try:
            while not self._aborted:
                try:
                    item = next(iterator)
                except StopIteration as stop:
                    if pending:
                        self.signals.yielded.emit(pending[-1])
                    return stop.value
                now = time.monotonic()
                if self._coalesce_s <= 0 or now - last_emit >= self._coalesce_s or _is_final(item):
                    self.signals.yielded.emit(item)
                    last_emit = now
                    pending.clear()
                else:
                    pending[:] = [item]
            return None
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


def _is_final(item: Any) -> bool:
    return bool(getattr(item, "finished", False))


class WorkerPool(QObject):
    """A thread pool that keeps its running workers alive and can shut down."""

    def __init__(self, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._active: dict[WorkerSignals, Worker] = {}

    def start(self, worker: Worker) -> Worker:
        self._active[worker.signals] = worker
        worker.signals.finished.connect(self._forget)
        self._pool.start(worker)
        return worker

    @Slot()
    def _forget(self) -> None:
        self._active.pop(self.sender(), None)  # type: ignore[call-overload]

    def active(self) -> list[Worker]:
        return list(self._active.values())

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Abort every worker and wait for the threads; True if they all stopped."""
        self._pool.clear()  # queued, not yet started
        for worker in self._active.values():
            worker.abort()
        done = self._pool.waitForDone(timeout_ms)
        self._active.clear()
        return done
