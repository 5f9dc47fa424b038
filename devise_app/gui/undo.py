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

Run = Callable[[Callable[[], Any], str], None]  # runs a library call off the GUI thread, then refreshes


class LibraryEdit(QUndoCommand):
    """A change already made to the library: ``back`` takes it back, ``forward`` makes
    it again (both plain library calls, run through ``run``)."""

    def __init__(self, text: str, back: Callable[[], Any], forward: Callable[[], Any], run: Run) -> None:
        super().__init__(text)
        self.back = back
        self.forward = forward
        self._run = run
        self._made = True  # pushing calls redo(): the change is made already

    def redo(self) -> None:
        if self._made:
            self._made = False
            return
        self._run(self.forward, f"Redone: {self.text()}")

    def undo(self) -> None:
        self._run(self.back, f"Undone: {self.text()}")


def undo_stack(parent: Any) -> QUndoStack:
    stack = QUndoStack(parent)
    stack.setUndoLimit(100)
    return stack
