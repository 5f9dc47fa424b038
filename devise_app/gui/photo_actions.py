"""What can be done with the selected photos: preview, open, show in folder, copy
the path, find similar photos, words for a photo, labels, remove from the library.

:class:`PhotoActions` reads the grid's selection and does each of these; the
window's actions (``actions.ACTIONS``, the specs marked ``photos``) call it and are
enabled only while photos are selected.
"""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMenu, QWidget

from devise_app.engine.errors import ModelFileError
from devise_app.engine.search import Suggestion
from devise_app.gui.actions import ACTIONS, PHOTO_MENU_BOTTOM, PHOTO_MENU_TOP, fill
from devise_app.gui.calls import Calls, Feedback, user_message
from devise_app.gui.dialogs import PreviewDialog, WordsDialog
from devise_app.gui.icons import icon
from devise_app.gui.labels_panel import LabelsController
from devise_app.gui.library_care import ask_to_remove, trash_failed_text
from devise_app.gui.models import ResultsModel
from devise_app.gui.ports import LibraryPort
from devise_app.gui.searching import SearchController
from devise_app.gui.text import count
from devise_app.gui.views import ResultsView

PHOTO_ACTIONS = tuple(spec.id for spec in ACTIONS if spec.photos)


class PhotoActions(QObject):
    photosRemoved = Signal(int)  # how many photos "Remove from library" took out
    selectionCounted = Signal(int)  # how many photos are selected now

    def __init__(
        self,
        library: LibraryPort,
        calls: Calls,
        feedback: Feedback,
        view: ResultsView,
        labels: LabelsController,
        searching: SearchController,
        parent: QWidget,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.view = view
        self.model: ResultsModel = view.model()  # type: ignore[assignment]
        self.actions: Mapping[str, QAction] = {}  # the window's, once built
        self.preview_dialog: PreviewDialog | None = None
        self.words_dialog: WordsDialog | None = None
        self._calls = calls
        self._feedback = feedback
        self._labels = labels
        self._searching = searching
        self._parent = parent
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._menu)
        view.activated.connect(lambda index: self.preview_row(index.row()))
        view.selectionModel().selectionChanged.connect(self.update_enabled)
        self.model.modelReset.connect(self.update_enabled)
        self.model.labelDropped.connect(self._on_label_dropped)

    # ------------------------------------------------------------ the selection
    def selected_rows(self) -> list[int]:
        selection = self.view.selectionModel()
        rows = sorted({index.row() for index in selection.selectedIndexes()})
        current = self.view.currentIndex()
        if not rows and current.isValid() and selection.isSelected(current):
            rows = [current.row()]
        return rows

    def selected_paths(self) -> list[Path]:
        return [self.model.photo(row).path for row in self.selected_rows()]

    def current_row(self) -> int | None:
        current = self.view.currentIndex()
        if current.isValid() and self.view.selectionModel().isSelected(current):
            return current.row()
        rows = self.selected_rows()
        return rows[0] if rows else None

    def update_enabled(self) -> None:
        selected = len(self.view.selectionModel().selectedIndexes())
        for name in PHOTO_ACTIONS:
            if name in self.actions:
                self.actions[name].setEnabled(bool(selected))
        self.selectionCounted.emit(selected)

    # ------------------------------------------------------------ looking at photos
    def preview_current(self) -> None:
        row = self.current_row()
        if row is not None:
            self.preview_row(row)

    def preview_row(self, row: int) -> PreviewDialog | None:
        model = self.model
        if not 0 <= row < model.rowCount():
            return None
        dialog = PreviewDialog(
            self._calls.image_pool, model.rowCount(), lambda r: model.photo(r).path, row, self._parent
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._after_preview(dialog.row))
        self.preview_dialog = dialog
        dialog.open()
        return dialog

    def _after_preview(self, row: int) -> None:
        self.preview_dialog = None
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row, 0)
            self.view.setCurrentIndex(index)
            self.view.scrollTo(index)

    def open_selected(self) -> None:
        for path in self.selected_paths()[:10]:
            if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
                self._feedback.say(
                    f"No program to open {escape(path.name)} with was found: set a default photo viewer "
                    "in your desktop's settings.",
                    error=True,
                )
                return

    def show_in_folder(self) -> None:
        paths = self.selected_paths()
        if paths:
            reveal(paths[0], self._parent)

    def copy_paths(self) -> None:
        paths = self.selected_paths()
        if paths:
            QGuiApplication.clipboard().setText("\n".join(str(path) for path in paths))

    def find_similar(self) -> None:
        row = self.current_row()
        if row is not None:
            self._searching.find_similar(self.model.photo(row).path)

    # ------------------------------------------------------------ words for a photo
    def words_for_current(self) -> WordsDialog | None:
        row = self.current_row()
        if row is None:
            return None
        path = self.model.photo(row).path
        dialog = WordsDialog(path, self._parent)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.set_thumbnail(self.model.data(self.model.index(row, 0), Qt.ItemDataRole.DecorationRole))
        dialog.labelRequested.connect(lambda word: self._labels.add_label(word, [path]))

        def search_word(word: str) -> None:
            dialog.close()
            self._searching.search(word)

        dialog.searchRequested.connect(search_word)
        self._labels.labelApplied.connect(dialog.mark_applied)
        self.words_dialog = dialog
        dialog.destroyed.connect(self._forget_words_dialog)
        applied = set(self._labels.labels_of(path))
        self._calls.call(
            lambda: self.library.describe(path, top=12),
            lambda words: self._words_ready(dialog, words, applied),
            lambda exc: self._words_failed(dialog, exc),
        )
        dialog.show()
        return dialog

    def _forget_words_dialog(self) -> None:
        self.words_dialog = None

    def _words_ready(self, dialog: WordsDialog, words: list[Suggestion], applied: set[str]) -> None:
        if self.words_dialog is dialog:
            dialog.set_words(words, applied)

    def _words_failed(self, dialog: WordsDialog, exc: BaseException) -> None:
        if self.words_dialog is dialog:
            dialog.set_error(f"Could not describe this photo: {user_message(exc)}")
        if isinstance(exc, ModelFileError):
            self._feedback.show_error(exc)

    # ------------------------------------------------------------ labels and removing
    def _on_label_dropped(self, name: str, row: int) -> None:
        """A label dragged onto the grid: the selection if dropped on it, else that photo."""
        rows = self.selected_rows()
        if row not in rows:
            rows = [row]
        self._labels.add_label(name, [self.model.photo(r).path for r in rows])

    def remove_selected(self, confirm: bool = True, trash: bool = False) -> None:
        """Take the selected photos out of the library, after asking; the files stay,
        unless the user ticks "move to the trash" (``trash`` without asking)."""
        paths = self.selected_paths()
        if not paths:
            return
        if confirm:
            ok, trash = ask_to_remove(
                self._parent,
                "Remove from library",
                f"Take {count(len(paths), 'photo')} out of the library? "
                "The files stay where they are, and later rescans leave them out.",
                f"Also move the {'file' if len(paths) == 1 else 'files'} to the trash",
            )
            if not ok:
                return

        def removed(number: int) -> None:
            where = " and moved to the trash" if trash else ""
            self._feedback.status(f"Removed {count(number, 'photo')} from the library{where}", 8000)
            self.photosRemoved.emit(number)

        def failed(exc: BaseException) -> None:
            if not trash:
                self._feedback.show_error(exc)
                return
            self._feedback.say(trash_failed_text(exc), error=True)
            self._feedback.status("Nothing was moved to the trash", 10000)
            self.photosRemoved.emit(0)  # some files may have gone: show the library as it is

        self._calls.call(lambda: self.library.remove_photos(paths, trash=trash), removed, failed)

    # ------------------------------------------------------------ the context menu
    def _menu(self, position: Any) -> None:
        index = self.view.indexAt(position)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        menu = self.build_menu()
        if menu is not None:
            menu.exec(self.view.viewport().mapToGlobal(position))

    def build_menu(self) -> QMenu | None:
        paths = self.selected_paths()
        if not paths:
            return None
        menu = QMenu(self._parent)
        fill(menu, PHOTO_MENU_TOP, self.actions)
        menu.addSeparator()
        names = self._labels.names()
        add_menu = menu.addMenu(icon("label"), "Add label")
        for name in names:
            add_menu.addAction(name, functools.partial(self._labels.add_label, name, paths))
        if names:
            add_menu.addSeparator()
        add_menu.addAction("New label…", lambda: self._labels.ask_new_label(paths))
        present = sorted({name for path in paths for name in self._labels.labels_of(path)}, key=str.lower)
        remove_menu = menu.addMenu("Remove label")
        remove_menu.setEnabled(bool(present))
        for name in present:
            remove_menu.addAction(name, functools.partial(self._labels.remove_label, name, paths))
        menu.addSeparator()
        fill(menu, PHOTO_MENU_BOTTOM, self.actions)
        return menu


def reveal(path: Path, parent: QWidget | None = None) -> None:
    """Open the file manager at ``path``, with the file selected where the platform can."""
    if sys.platform == "win32":
        QProcess.startDetached("explorer.exe", [f"/select,{path}"])
        return
    if sys.platform == "darwin":
        QProcess.startDetached("open", ["-R", str(path)])
        return
    folder_url = QUrl.fromLocalFile(str(path.parent))
    if not shutil.which("dbus-send"):
        QDesktopServices.openUrl(folder_url)
        return
    # The freedesktop file manager interface selects the file; fall back to the folder.
    process = QProcess(parent)

    def fall_back(*_args: object) -> None:
        QDesktopServices.openUrl(folder_url)
        process.deleteLater()

    def finished(code: int, _status: object) -> None:
        if code:
            fall_back()
        else:
            process.deleteLater()

    process.finished.connect(finished)
    process.errorOccurred.connect(fall_back)
    process.start(
        "dbus-send",
        [
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.FileManager1",
            "--type=method_call",
            "/org/freedesktop/FileManager1",
            "org.freedesktop.FileManager1.ShowItems",
            f"array:string:{QUrl.fromLocalFile(str(path)).toString()}",
            "string:",
        ],
    )
