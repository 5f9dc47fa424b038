"""Undo and redo for changes to the library's labels (Edit ▸ Undo, Ctrl+Z).

A change is made first, on the query thread; only once it has been made is a
:class:`LibraryEdit` pushed on the window's ``QUndoStack``, holding the two library
calls that take it back and make it again (for instance: labels put on photos are
taken off exactly the photos that did not carry them before). Undo and redo run
those calls on the query thread too, one at a time and in order, so an undo never
overtakes the change it undoes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QUndoCommand, QUndoStack

# runs a library call off the GUI thread, then (on the GUI thread) says the message,
# calls the callback if there is one, and refreshes
Run = Callable[[Callable[[], Any], str, Callable[[], None] | None], None]


class LibraryEdit(QUndoCommand):
    """A change already made to the library: ``back`` takes it back, ``forward`` makes
    it again (both plain library calls, run through ``run``); ``after_back`` and
    ``after_forward`` run on the GUI thread once they have (a renamed label's search
    follows the name)."""

    def __init__(
        self,
        text: str,
        back: Callable[[], Any],
        forward: Callable[[], Any],
        run: Run,
        after_back: Callable[[], None] | None = None,
        after_forward: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(text)
        self.back = back
        self.forward = forward
        self._run = run
        self._after_back = after_back
        self._after_forward = after_forward
        self._made = True  # pushing calls redo(): the change is made already

    def redo(self) -> None:
        if self._made:
            self._made = False
            return
        self._run(self.forward, f"Redone: {self.text()}", self._after_forward)

    def undo(self) -> None:
        self._run(self.back, f"Undone: {self.text()}", self._after_back)


def undo_stack(parent: Any) -> QUndoStack:
    stack = QUndoStack(parent)
    stack.setUndoLimit(100)
    return stack
