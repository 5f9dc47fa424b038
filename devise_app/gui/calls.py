"""Calls into the library off the GUI thread, and the one way errors reach the user.

:class:`Calls` runs every library call on a worker thread (indexing and learning
on one pool, everything else one at a time on another, so the GUI thread never
waits for the catalog, the model or the search index) and delivers the result on
the GUI thread, only while the window is open. :class:`Feedback` is where the
controllers say things: the line under the search box, the status bar, and a
dialog for the one fatal kind of error (missing model files).
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QStatusBar, QWidget

from devise_app.engine import config
from devise_app.engine.errors import ModelFileError, UserError
from devise_app.gui.workers import Worker, WorkerPool

log = logging.getLogger(__name__)


def user_message(exc: BaseException) -> str:
    """The first line of an error, as the user reads it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Calls(QObject):
    """The window's worker pools and the guarded way to use them."""

    def __init__(self, on_error: Callable[[BaseException], Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.query_pool = WorkerPool(1, self)
        self.index_pool = WorkerPool(1, self)  # indexing and learning: never both at once
        self.image_pool = WorkerPool(2, self)  # full-size previews
        self.closed = False
        self._on_error = on_error

    def call(
        self,
        fn: Callable[[], Any],
        on_result: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Worker:
        """Run ``fn`` on the query thread; the callbacks run on the GUI thread, and only
        while the window is open (a result that arrives after it closed is dropped)."""
        worker = Worker(fn)
        if on_result is not None:
            worker.signals.returned.connect(self.while_open(on_result))
        worker.signals.errored.connect(self.while_open(on_error or self._on_error))
        self.query_pool.start(worker)
        return worker

    def while_open(self, callback: Callable[[Any], Any]) -> Callable[[Any], None]:
        def guarded(value: Any) -> None:
            if not self.closed and shiboken6.isValid(self):
                callback(value)

        return guarded

    def shutdown(self) -> None:
        self.closed = True
        self.index_pool.shutdown(30_000)
        self.query_pool.shutdown(30_000)
        self.image_pool.shutdown(10_000)


AS_TYPED_LINK = "as-typed:"


class MessageLine(QLabel):
    """The line under the search box: a message, its suggestions as links."""

    suggestionClicked = Signal(str)
    asTypedClicked = Signal()  # "search as typed": the query again, its typos not read as words

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queryMessage")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        )
        # long text wraps or is cut off; it never widens the window (a 500-character
        # query made it 3,400 px wide)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.linkActivated.connect(self._on_link)
        self.hide()

    def say(self, html: str, error: bool = False, suggestions: Sequence[str] = ()) -> None:
        text = html
        if suggestions:
            links = ", ".join(f'<a href="suggest:{escape(s)}">{escape(s)}</a>' for s in suggestions)
            text += f"&nbsp;&nbsp;Try {links}."
        self.setProperty("error", error)
        self.style().unpolish(self)
        self.style().polish(self)
        self.setText(text)
        self.show()

    def hush(self) -> None:
        self.hide()
        self.clear()

    def _on_link(self, link: str) -> None:
        if link.startswith("suggest:"):
            self.suggestionClicked.emit(link[len("suggest:") :])
        elif link == AS_TYPED_LINK:
            self.asTypedClicked.emit()


class Feedback:
    """Where the controllers tell the user things."""

    def __init__(self, line: MessageLine, status_bar: QStatusBar, parent: QWidget) -> None:
        self.line = line
        self._status_bar = status_bar
        self._parent = parent
        self._model_error_shown = False

    def status(self, text: str, ms: int = 5000) -> None:
        self._status_bar.showMessage(text, ms)

    def say(self, html: str, error: bool = False, suggestions: Sequence[str] = ()) -> None:
        if error:
            log.warning("error shown to the user: %s", html)
        self.line.say(html, error, suggestions)

    def hush(self) -> None:
        self.line.hush()

    def show_error(self, exc: BaseException) -> None:
        """The one place errors from the core reach the user."""
        message = user_message(exc)
        if isinstance(exc, ModelFileError):
            if not self._model_error_shown:
                self._model_error_shown = True
                QMessageBox.critical(
                    self._parent,
                    "Model files missing or damaged",
                    f"{message}\n\nTo restore them, {config.repair_hint()}.",
                )
            self.status(message, 10000)
            return
        if isinstance(exc, UserError):
            self.say(message, error=True)
            self.status(message, 8000)
            return
        print("".join(traceback.format_exception(exc)), file=sys.stderr)
        self.status(f"Something went wrong: {message}", 10000)
        self.say(f"Something went wrong: {message}", error=True)
