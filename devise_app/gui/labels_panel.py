"""The Labels panel: the labels and their counts, making and changing labels,
learning from them, and exporting and importing them.

:class:`LabelsController` owns the panel's widgets and the window's knowledge of
which photos carry which labels (``label_map``, for the grid's chips and the
photo menu). Every change goes to the library on the query thread and then reads
the labels back, so the panel always shows what the catalog holds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from devise_app.engine.query import label_query
from devise_app.gui.calls import Calls, Feedback, user_message
from devise_app.gui.icons import icon
from devise_app.gui.jobs import JobsController
from devise_app.gui.models import LabelsModel
from devise_app.gui.ports import LibraryPort, WordSource
from devise_app.gui.settings import LearnRecord
from devise_app.gui.text import count, format_when
from devise_app.gui.undo import LibraryEdit, undo_stack
from devise_app.gui.views import CommonWords, LabelsView, WordCompleter
from devise_app.gui.workers import Worker

LabelState = tuple[list[tuple[str, int]], dict[str, list[str]]]  # (name, count)s, path -> names


class LabelsController(QObject):
    labelsUpdated = Signal()
    labelApplied = Signal(str)
    labelsTransferred = Signal(str)  # the result message of an export or an import
    labelsChanged = Signal()  # a label was put on, taken off, renamed or deleted
    searchRequested = Signal(str)  # a label was clicked: show its photos
    labelRenamed = Signal(str, str)  # (old name, new name); the new name is "" for a deleted label

    def __init__(
        self,
        library: LibraryPort,
        calls: Calls,
        feedback: Feedback,
        jobs: JobsController,
        settings: QSettings | None,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.model = LabelsModel(self)
        self.label_map: dict[str, list[str]] = {}  # photo path -> its labels
        self.selected_paths: Callable[[], list[Path]] = list  # the grid's selection; set by the window
        self.learned_at: float | None = None  # when the library's head was written (its mtime)
        self._calls = calls
        self._feedback = feedback
        self._jobs = jobs
        self._settings = settings
        self._parent = parent
        self._learning_from = ""  # the fingerprint of the labels a learn run started from
        self.undo_stack = undo_stack(self)  # label changes, for Edit ▸ Undo
        self.widget = self._build()
        jobs.learnFinished.connect(self._on_learned)

    def _build(self) -> QWidget:
        self.new_label_edit = QLineEdit()
        self.new_label_edit.setObjectName("newLabelEdit")
        self.new_label_edit.setPlaceholderText("New label…")
        self.new_label_edit.setClearButtonEnabled(True)
        self.new_label_edit.returnPressed.connect(self.create_label_from_edit)
        self.completer = WordCompleter(self.new_label_edit)
        add_button = QToolButton()
        add_button.setIcon(icon("label"))
        add_button.setToolTip("Create the label (Enter)")
        add_button.clicked.connect(self.create_label_from_edit)
        new_row = QHBoxLayout()
        new_row.addWidget(self.new_label_edit, 1)
        new_row.addWidget(add_button)

        self.view = LabelsView()
        self.view.setModel(self.model)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)
        self.view.clicked.connect(self._on_clicked)
        self.model.photosDropped.connect(self.add_label)
        for keys, slot in (
            (QKeySequence.StandardKey.Delete, self._delete_current),
            (Qt.Key.Key_F2, self._rename_current),
        ):
            shortcut = QShortcut(QKeySequence(keys), self.view)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)

        hint = QLabel(
            "Drop photos on a label to tag them; drag a label onto photos. Click one to see its photos."
        )
        hint.setObjectName("hintLabel")
        hint.setWordWrap(True)
        self.learn_button = QToolButton()  # the window gives it the Learn action
        self.learn_button.setObjectName("learnButton")
        self.learn_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.learn_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.learn_status = QLabel("")
        self.learn_status.setObjectName("hintLabel")
        self.learn_status.setWordWrap(True)

        panel = QWidget()
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(8, 4, 8, 8)
        layout.addLayout(new_row)
        layout.addWidget(self.view, 1)
        for widget in (hint, self.learn_button, self.learn_status):
            layout.addWidget(widget)
        return panel

    def set_words(self, words: WordSource) -> None:
        common = CommonWords(words)
        self.completer.set_source(lambda text: common.complete(text.strip().lower(), 10))

    # ------------------------------------------------------------ reading the labels
    def names(self) -> list[str]:
        return self.model.names()

    def labels_of(self, path: Path) -> list[str]:
        return self.label_map.get(str(path), [])

    def current_name(self) -> str | None:
        index = self.view.currentIndex()
        return self.model.data(index) if index.isValid() else None

    def state(self) -> LabelState:
        """Runs on the query thread: all labels and which photos carry them."""
        mapping = {str(path): names for path, names in self.library.photo_labels().items()}
        return self.library.labels(), mapping

    def refresh(self) -> None:
        self._calls.call(self.state, lambda state: self.apply_state(*state))

    def apply_state(self, labels: list[tuple[str, int]], mapping: dict[str, list[str]]) -> None:
        selected = self.current_name()
        self.model.set_labels(labels)
        row = self.model.row_of(selected) if selected is not None else None
        if row is not None:
            self.view.setCurrentIndex(self.model.index(row, 0))
        self.label_map = mapping
        self.update_learn_status()
        self.labelsUpdated.emit()

    # ------------------------------------------------------------ changing labels
    def create_label_from_edit(self) -> None:
        name = self.new_label_edit.text().strip()
        if name:
            self.completer.hide_popup()
            self.new_label_edit.clear()
            self.create_label(name)

    def create_label(self, name: str) -> None:
        self._calls.call(lambda: self.library.create_label(name), lambda _: self.refresh())

    def add_label(self, name: str, photos: Sequence[Path]) -> None:
        """Put label ``name`` on ``photos`` (creating it if needed); Undo takes it off
        the photos that did not carry it (and deletes it if it was new)."""
        photos = [Path(photo) for photo in photos]
        name = name.strip()
        if not photos or not name:
            return

        def work() -> tuple[bool, list[Path]]:
            existed = any(known == name for known, _ in self.library.labels())
            before = self._photos_of(name)
            self.library.add_label(name, photos)
            return existed, [photo for photo in photos if photo not in before]

        def done(result: tuple[bool, list[Path]]) -> None:
            existed, added = result
            self._feedback.status(f"Labeled {count(len(photos), 'photo')} “{name}”", 5000)
            self.labelApplied.emit(name)
            self._changed()
            if added or not existed:
                self.push_edit(
                    f"Label {count(len(added), 'photo')} “{name}”",
                    (lambda: self.library.remove_label(name, added))
                    if existed
                    else (lambda: self.library.delete_label(name)),
                    lambda: self.library.add_label(name, added),
                )

        self._calls.call(work, done)

    def remove_label(self, name: str, photos: Sequence[Path]) -> None:
        photos = [Path(photo) for photo in photos]

        def work() -> list[Path]:
            before = self._photos_of(name)
            self.library.remove_label(name, photos)
            return [photo for photo in photos if photo in before]

        def done(had: list[Path]) -> None:
            self._feedback.status(f"Removed “{name}” from {count(len(photos), 'photo')}", 5000)
            self._changed()
            if had:
                self.push_edit(
                    f"Remove “{name}” from {count(len(had), 'photo')}",
                    lambda: self.library.add_label(name, had),
                    lambda: self.library.remove_label(name, had),
                )

        self._calls.call(work, done)

    def delete_label(self, name: str, confirm: bool = True) -> None:
        """Delete a label from every photo (after asking); Undo brings it back on them."""
        if confirm:
            answer = QMessageBox.question(
                self._parent, "Delete label", f"Delete the label “{name}” from all photos?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return

        def work() -> list[Path]:
            photos = sorted(self._photos_of(name))
            self.library.delete_label(name)
            return photos

        def restore(photos: list[Path]) -> None:
            self.library.create_label(name)
            if photos:
                self.library.add_label(name, photos)

        def done(photos: list[Path]) -> None:
            self._feedback.status(f"Deleted the label “{name}” (Ctrl+Z brings it back)", 8000)
            self.labelRenamed.emit(name, "")
            self._changed()
            self.push_edit(
                f"Delete label “{name}”",
                lambda: restore(photos),
                lambda: self.library.delete_label(name),
                after_forward=lambda: self.labelRenamed.emit(name, ""),
            )

        self._calls.call(work, done)

    def rename_label(self, name: str, new_name: str | None = None) -> None:
        """Give a label a new name (F2 in the Labels panel); asks for it when not given."""
        if new_name is None:
            new_name, ok = QInputDialog.getText(
                self._parent, "Rename label", f"New name for “{name}”:", text=name
            )
            if not ok:
                return
        new = new_name.strip()
        if not new or new == name:
            return

        def done(_result: object) -> None:
            self.labelRenamed.emit(name, new)
            self._changed()
            self.push_edit(
                f"Rename “{name}” to “{new}”",
                lambda: self.library.rename_label(new, name),
                lambda: self.library.rename_label(name, new),
                after_back=lambda: self.labelRenamed.emit(new, name),
                after_forward=lambda: self.labelRenamed.emit(name, new),
            )

        self._calls.call(lambda: self.library.rename_label(name, new), done)

    # ------------------------------------------------------------ undo
    def _photos_of(self, name: str) -> set[Path]:
        """Runs on the query thread: the photos that carry label ``name`` now."""
        return {Path(path) for path, names in self.library.photo_labels().items() if name in names}

    def push_edit(
        self,
        text: str,
        back: Callable[[], Any],
        forward: Callable[[], Any],
        after_back: Callable[[], None] | None = None,
        after_forward: Callable[[], None] | None = None,
    ) -> None:
        """Remember a change just made, so Edit ▸ Undo can take it back."""
        self.undo_stack.push(LibraryEdit(text, back, forward, self._run_edit, after_back, after_forward))

    def _run_edit(self, fn: Callable[[], Any], message: str, then: Callable[[], None] | None) -> None:
        def done(_result: object) -> None:
            self._feedback.status(message, 6000)
            if then is not None:
                then()
            self._changed()

        def failed(exc: BaseException) -> None:
            self._feedback.show_error(exc)
            self._changed()

        self._calls.call(fn, done, failed)

    def ask_new_label(self, paths: list[Path]) -> None:
        name, ok = QInputDialog.getText(self._parent, "New label", f"Label for {len(paths)} photo(s):")
        if ok and name.strip():
            self.add_label(name.strip(), paths)

    def _changed(self) -> None:
        self.refresh()
        self.labelsChanged.emit()

    def _delete_current(self) -> None:
        name = self.current_name()
        if name:
            self.delete_label(name)

    def _rename_current(self) -> None:
        name = self.current_name()
        if name:
            self.rename_label(name)

    def _on_clicked(self, index: QModelIndex) -> None:
        name = self.model.data(index)
        if name:
            self.searchRequested.emit(label_query(name))

    def _menu(self, position: Any) -> None:
        index = self.view.indexAt(position)
        if index.isValid():
            self.build_menu(self.model.data(index)).exec(self.view.viewport().mapToGlobal(position))

    def build_menu(self, name: str) -> QMenu:
        paths = self.selected_paths()
        menu = QMenu(self._parent)
        menu.addAction(icon("search"), "Show photos", lambda: self.searchRequested.emit(label_query(name)))
        put = menu.addAction(f"Put on {len(paths)} selected photo(s)", lambda: self.add_label(name, paths))
        put.setEnabled(bool(paths))
        take = menu.addAction(
            f"Remove from {len(paths)} selected photo(s)", lambda: self.remove_label(name, paths)
        )
        take.setEnabled(bool(paths))
        menu.addSeparator()
        menu.addAction("Rename…  (F2)", lambda: self.rename_label(name))
        trash = self._parent.style().standardIcon(QStyle.StandardPixmap.SP_TrashIcon)
        menu.addAction(trash, "Delete label…  (Del)", lambda: self.delete_label(name))
        return menu

    # ------------------------------------------------------------ learning from the labels
    # The panel says when the library last learned, and whether its labels changed since. The
    # head's time comes from the library; what the labels were then is kept in the settings.
    def learn_from_labels(self) -> Worker | None:
        fingerprint = self.fingerprint()
        worker = self._jobs.learn()
        if worker is not None:
            self._learning_from = fingerprint
        return worker

    def _on_learned(self, result: object) -> None:
        if result is not None:
            self.refresh_learn_status(record=self._learning_from)

    def fingerprint(self) -> str:
        """A short digest of which photos carry which labels."""
        items = sorted((path, sorted(names)) for path, names in self.label_map.items())
        return hashlib.sha1(repr(items).encode()).hexdigest()[:16]

    def refresh_learn_status(self, record: str | None = None) -> None:
        """Read when the library last learned; ``record``: remember that it learned these labels."""

        def done(learned_at: float | None) -> None:
            self.learned_at = learned_at
            if record is not None and learned_at is not None and self._settings is not None:
                LearnRecord(learned_at, record).save(self._settings, self.library.path)
            self.update_learn_status()

        self._calls.call(self.library.last_learned_at, done)

    def labels_changed_since_learning(self) -> bool | None:
        """Whether the labels differ from those the head learned; None if unknown."""
        if self.learned_at is None or self._settings is None:
            return None
        recorded = LearnRecord.load(self._settings, self.library.path)
        if recorded is None or not recorded.matches(self.learned_at):
            return None  # learned elsewhere (the command line), or before the app remembered it
        return recorded.fingerprint != self.fingerprint()

    def update_learn_status(self) -> None:
        if self.learned_at is None:
            text = (
                "Not learned yet: Learn teaches the model your labels."
                if self.label_map
                else "Label some photos, then Learn teaches the model your labels."
            )
            tip = ""
        else:
            text = f"Learned {format_when(self.learned_at)}"
            if self.labels_changed_since_learning():
                text += " · labels changed since: learn again to use them"
            tip = time.strftime("Learned %Y-%m-%d %H:%M:%S", time.localtime(self.learned_at))
        self.learn_status.setText(text)
        self.learn_status.setToolTip(tip)

    # ------------------------------------------------------------ exporting and importing
    def choose_export_file(self) -> None:
        start = str(Path.home() / f"{Path(self.library.path).name}-labels.json")
        path, _ = QFileDialog.getSaveFileName(
            self._parent, "Export labels", start, "Labels (*.json);;All files (*)"
        )
        if path:
            self.export_labels_to(Path(path))

    def choose_import_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self._parent, "Import labels", str(Path.home()), "Labels (*.json);;All files (*)"
        )
        if path:
            self.import_labels_from(Path(path))

    def export_labels_to(self, path: Path) -> Worker:
        """Write every label and the paths of its photos to ``path`` (JSON), on the query thread."""
        path = Path(path)

        def done(counts: tuple[int, int]) -> None:
            labels, photos = counts
            message = f"Exported {count(labels, 'label')} ({count(photos, 'photo')}) to {path.name}"
            self._feedback.status(message, 10000)
            self.labelsTransferred.emit(message)

        return self._calls.call(
            lambda: self.library.export_labels_to(path),
            done,
            lambda exc: self._transfer_failed(exc, f"Could not export to {path.name}"),
        )

    def import_labels_from(self, path: Path) -> Worker:
        """Put the labels of an exported file on this library's photos, on the query thread."""
        path = Path(path)

        def work() -> tuple[int, list[str]]:
            applied, missing = self.library.import_labels(path.read_bytes())
            return int(applied), [str(p) for p in missing]

        def done(result: tuple[int, list[str]]) -> None:
            applied, missing = result
            message = f"Imported {count(applied, 'label')} from {path.name}"
            if missing:
                noun = "photo is" if len(missing) == 1 else "photos are"
                message += f"; {len(missing)} {noun} not in this library"
                shown = ", ".join(escape(Path(p).name) for p in missing[:3])
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                self._feedback.say(f"{escape(message)} ({shown}{more}).")
            self._feedback.status(message, 10000)
            self._changed()
            self.labelsTransferred.emit(message)

        return self._calls.call(
            work, done, lambda exc: self._transfer_failed(exc, f"Could not import {path.name}")
        )

    def _transfer_failed(self, exc: BaseException, prefix: str) -> None:
        if isinstance(exc, OSError):
            message = f"{prefix}: {exc.strerror or exc}"
        elif isinstance(exc, UnicodeError):
            message = f"{prefix}: not a labels file (not UTF-8 text)"
        else:
            self._feedback.show_error(exc)
            self.labelsTransferred.emit(user_message(exc))
            return
        self._feedback.say(escape(message), error=True)
        self._feedback.status(message, 10000)
        self.labelsTransferred.emit(message)
