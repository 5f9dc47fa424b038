"""The long jobs, indexing and learning from labels, and the one panel that shows
their progress.

Both are generators of progress in the core (``Library.index``, ``Library.learn``);
:class:`JobsController` runs either through the same code path: one worker on the
indexing pool (so the two never run at once, and searches go on meanwhile), one
progress panel with a Cancel button, and a pure function per kind of job that
turns a progress item into what the panel shows (:func:`index_step`,
:func:`learn_step`). Index runs asked for while a job runs wait in a queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from devise_app.engine.imaging import is_image_path
from devise_app.gui.calls import Calls, Feedback
from devise_app.gui.icons import icon
from devise_app.gui.ports import LibraryPort
from devise_app.gui.text import count, describe_summary, format_duration
from devise_app.gui.workers import Worker

if TYPE_CHECKING:
    from devise_app.engine.indexer import IndexProgress
    from devise_app.engine.learning import LearnProgress


@dataclass(frozen=True)
class Step:
    """What the progress panel shows for one progress item."""

    text: str
    detail: str | None = None  # None: the detail line stays as it is
    done: int = 0
    total: int = 0  # 0: busy, with no known end
    title: str = ""  # the window title's prefix ("Indexing 40%"); "" for none


@dataclass(frozen=True)
class JobKind:
    name: str  # "index" or "learn"
    starting: Step
    cancelling: str
    step: Callable[[Any], Step]  # a progress item that is not the last -> the panel


def index_step(progress: IndexProgress) -> Step:
    done, total = progress.done, progress.total
    counts = (
        (progress.indexed, "new"),
        (progress.unchanged, "unchanged"),
        (progress.moved, "moved"),
        (progress.removed, "removed"),
        (progress.skipped, "skipped"),
    )
    parts = [f"{value} {word}" for value, word in counts if value]
    if progress.current is not None:
        parts.append(progress.current.name)
    detail = " · ".join(parts)
    if progress.phase == "scanning" or total == 0:
        return Step(f"Looking for photos… {done:,} found".replace(",", " "), detail)
    left = ""
    if progress.eta is not None and done < total:
        left = f" · about {format_duration(progress.eta)} left"
    text = f"Indexing {done:,} of {total:,} photos{left}".replace(",", " ")
    return Step(text, detail, done, total, f"Indexing {done * 100 // max(total, 1)}%")


def learn_step(progress: LearnProgress) -> Step:
    step, steps = progress.step, progress.steps
    if steps and step >= steps:
        return Step("Updating every photo's vector and the search index…")
    return Step(
        f"Learning from your labels: step {step} of {steps}",
        "searching keeps working meanwhile",
        step,
        max(steps, 1),
    )


def _index_kind(names: str) -> JobKind:
    return JobKind(
        "index",
        Step(f"Looking for photos in {names}…", ""),
        "Cancelling… (finishing the current batch)",
        index_step,
    )


LEARN = JobKind(
    "learn",
    Step("Getting ready to learn from your labels…", "Searching keeps working meanwhile."),
    "Cancelling… the library stays as it was",
    learn_step,
)


class ProgressPanel(QFrame):
    """A job's progress: what it does, a bar, a detail line and Cancel."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("indexPanel")
        self.bar = QProgressBar()
        self.bar.setObjectName("indexProgress")
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.label = QLabel()
        self.label.setObjectName("indexLabel")
        self.detail = QLabel()
        self.detail.setObjectName("hintLabel")
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.setObjectName("cancelButton")
        text = QVBoxLayout()
        text.setSpacing(2)
        for widget in (self.label, self.bar, self.detail):
            text.addWidget(widget)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.addLayout(text, 1)
        layout.addWidget(self.cancel_button)
        self.hide()

    def show_step(self, step: Step) -> None:
        self.label.setText(step.text)
        if step.detail is not None:
            self.detail.setText(step.detail)
        self.bar.setRange(0, step.total)  # (0, 0): Qt's busy bar
        if step.total:
            self.bar.setValue(step.done)

    def show_full(self) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(1)


class JobsController(QObject):
    """Starts, follows, cancels and queues the indexing and learning jobs."""

    indexFinished = Signal(object)  # the core's IndexSummary, or None if the run failed
    learnFinished = Signal(object)  # the core's LearnedHead, or None if cancelled or failed
    changed = Signal()  # a job started, is being cancelled, or ended
    titleChanged = Signal(str)  # the window title's prefix

    def __init__(self, library: LibraryPort, calls: Calls, feedback: Feedback, parent: QWidget) -> None:
        super().__init__(parent)
        self.library = library
        self.panel = ProgressPanel()
        self.panel.cancel_button.clicked.connect(self.cancel)
        self._calls = calls
        self._feedback = feedback
        self._parent = parent
        self._worker: Worker | None = None
        self._kind: JobKind | None = None
        self._last: Any = None  # the job's last progress item, once it says "finished"
        self._failed = False
        self._started = 0.0
        self._queue: list[list[Path] | None] = []  # None: a rescan of every folder

    # what runs
    @property
    def running(self) -> str | None:
        """``"index"``, ``"learn"`` or None."""
        return self._kind.name if self._kind is not None else None

    @property
    def cancelling(self) -> bool:
        return self._worker is not None and self._worker.cancelled

    # indexing
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._parent, "Add a folder of photos", str(Path.home()))
        if folder:
            self.start_index([Path(folder)])

    def add_paths(self, paths: Sequence[Path]) -> None:
        """Index dropped folders, and the folders of dropped photos."""
        folders: list[Path] = []
        for path in map(Path, paths):
            folder = (
                path if path.is_dir() else path.parent if is_image_path(path) and path.is_file() else None
            )
            if folder is not None and folder not in folders:
                folders.append(folder)
        if folders:
            self.start_index(folders)
        else:
            self._feedback.status("Nothing to index there: drop folders or photos.", 6000)

    def rescan(self) -> Worker | None:
        """Bring the library up to date with all its folders (Library ▸ Rescan library)."""
        return self.start_index(None)

    def start_index(self, folders: Sequence[Path] | None) -> Worker | None:
        """Index ``folders`` (None: every folder of the library), queued if a job runs."""
        folders = None if folders is None else [Path(folder) for folder in folders]
        names = "the library's folders" if folders is None else ", ".join(f.name or str(f) for f in folders)
        if self._kind is not None:
            self._queue.append(folders)
            after = " (after learning)" if self._kind is LEARN else ""
            self._feedback.status(f"Queued {names} for indexing{after}", 5000)
            return None

        def run(cancel: threading.Event) -> Iterator[IndexProgress]:
            if folders is None:
                return self.library.rescan(cancel=cancel)
            return self.library.index(folders, cancel=cancel)

        return self._start(_index_kind(names), run, coalesce_s=0.1)

    # learning
    def learn(self) -> Worker | None:
        """Teach the library's own head from its labels; never alongside an index run."""
        if self._kind is LEARN:
            return None
        if self._kind is not None:
            self._feedback.status("Indexing is going on: learn when it is done.", 6000)
            return None
        return self._start(LEARN, lambda cancel: self.library.learn(cancel=cancel))

    # the one code path of both
    def _start(
        self, kind: JobKind, run: Callable[[threading.Event], Iterator[Any]], coalesce_s: float = 0.0
    ) -> Worker:
        cancel = threading.Event()
        worker = Worker(lambda: run(cancel), cancel=cancel, coalesce_s=coalesce_s, name=kind.name)
        worker.signals.yielded.connect(self._on_progress)
        worker.signals.errored.connect(self._on_error)
        worker.signals.finished.connect(self._on_finished)
        self._worker, self._kind = worker, kind
        self._last, self._failed, self._started = None, False, time.monotonic()
        self.panel.show_step(kind.starting)
        self.panel.cancel_button.setEnabled(True)
        self.panel.show()
        self.changed.emit()
        self._calls.index_pool.start(worker)
        return worker

    def cancel(self) -> None:
        """Stop the running job at its next checkpoint; queued index runs are dropped."""
        if self._worker is None or self._kind is None:
            return
        self._worker.cancel()
        if self._kind is not LEARN:
            self._queue.clear()  # cancelling indexing cancels what was queued after it
        self.panel.label.setText(self._kind.cancelling)
        self.panel.cancel_button.setEnabled(False)
        self.changed.emit()

    def _on_progress(self, item: Any) -> None:
        if item.finished:
            self._last = item
            self.panel.show_full()
            return
        if self._kind is None or self.cancelling:
            return
        step = self._kind.step(item)
        self.panel.show_step(step)
        if step.title:
            self.titleChanged.emit(step.title)

    def _on_error(self, exc: BaseException) -> None:
        self._failed = True
        self._last = None
        self._feedback.show_error(exc)

    def _on_finished(self) -> None:
        kind, last = self._kind, self._last
        self._worker = self._kind = self._last = None
        self.panel.hide()
        self.titleChanged.emit("")
        self.changed.emit()
        if kind is LEARN:
            self._learn_done(last.result if last is not None else None)
        else:
            self._index_done(last.summary if last is not None else None)
        if self._queue and self._kind is None:
            self.start_index(self._queue.pop(0))

    def _index_done(self, summary: Any) -> None:
        if summary is not None:
            self._feedback.status(describe_summary(summary), 15000)
        self.indexFinished.emit(summary)

    def _learn_done(self, result: Any) -> None:
        if result is not None:
            took = format_duration(time.monotonic() - self._started)
            learned = count(len(result.label_names), "label")
            self._feedback.status(
                f"Learned {learned} in {took}: searches now use what the model learned.", 15000
            )
        elif not self._failed:
            self._feedback.status("Learning cancelled: the library is as it was.", 8000)
        self.learnFinished.emit(result)

    def shutdown(self) -> None:
        self._queue.clear()
