"""Library care in the window: the library's folders (remove one, keep a sub-folder
out, let an excluded one back in) and "Check library…".

:class:`LibraryCare` makes each change on the query thread (``Calls``) and says
``changed`` when photos left the library, so the window refreshes its counts and
shows its current search again. :class:`FoldersDialog` is the Library ▸ Folders…
dialog: the folders the library indexes, and the folders and files kept out of it.
The check (``Library.check(repair=True)``) reads every stored vector, so it runs on
the indexing pool, never beside an index or learn run, and its report is shown when
it is done.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from devise_app.gui.calls import Calls, Feedback, user_message
from devise_app.gui.jobs import JobsController
from devise_app.gui.ports import LibraryPort
from devise_app.gui.text import count
from devise_app.gui.workers import Worker

if TYPE_CHECKING:
    from devise_app.engine.check import CheckReport

PATH_ROLE = Qt.ItemDataRole.UserRole


def report_text(report: CheckReport) -> str:
    """What a check found, in a few lines of plain text."""
    checked = (
        f"Checked {count(report.photos, 'photo')}, {count(report.vectors, 'stored vector')} "
        f"and {count(report.labels, 'label')}."
    )
    if not report.findings:
        return f"{checked}\n\nNothing is wrong with this library."
    lines = [checked, ""]
    for finding in report.findings:
        state = "mended" if finding.repaired else "not mended"
        line = f"• {finding.part}: {finding.problem} ({finding.count}, {state})"
        if finding.hint and not finding.repaired:
            line += f"\n   {finding.hint}"
        lines.append(line)
    lines += ["", "Everything found was mended." if report.sound else "Some damage remains."]
    return "\n".join(lines)


def ask_to_remove(parent: QWidget, title: str, question: str, trash_text: str) -> tuple[bool, bool]:
    """Ask before taking things out of the library: (go ahead, move the files to the trash too)."""
    box = QMessageBox(QMessageBox.Icon.Question, title, question, parent=parent)
    box.setObjectName("removeQuestion")
    trash = QCheckBox(trash_text)
    trash.setObjectName("trashCheck")
    box.setCheckBox(trash)
    box.setStandardButtons(QMessageBox.StandardButton.Cancel)
    remove = box.addButton("Remove", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(remove)
    box.exec()
    return box.clickedButton() is remove, trash.isChecked()


def trash_failed_text(exc: BaseException) -> str:
    return (
        f"Could not move the files to the trash ({escape(user_message(exc))}). "
        "The library still lists what was not moved: remove them without the trash, "
        "or delete the files yourself."
    )


class LibraryCare(QObject):
    changed = Signal(int)  # photos left the library (how many), or folders were let back in (0)
    checked = Signal(object)  # the CheckReport, once a check is done
    foldersRead = Signal(list, list)  # the library's folders, and what is kept out of it

    def __init__(
        self, library: LibraryPort, calls: Calls, feedback: Feedback, jobs: JobsController, parent: QWidget
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.dialog: FoldersDialog | None = None
        self.checking: Worker | None = None
        self.last_report: CheckReport | None = None
        self._calls = calls
        self._feedback = feedback
        self._jobs = jobs
        self._parent = parent

    # ------------------------------------------------------------ the folders
    def read_folders(self) -> None:
        def fetch() -> tuple[list[Path], list[Path]]:
            return self.library.folders(), self.library.excluded()

        self._calls.call(fetch, lambda lists: self.foldersRead.emit(*lists))

    def show_folders(self) -> FoldersDialog:
        """Library ▸ Folders…: the library's folders and what is kept out of it."""
        if self.dialog is None:
            self.dialog = FoldersDialog(self, self._parent)
            self.dialog.finished.connect(self._forget_dialog)
        self.read_folders()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _forget_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None

    def remove_folder(self, folder: Path, confirm: bool = True, trash: bool = False) -> Worker | None:
        """Take a folder and its photos out of the library (after asking); the files
        stay unless the user ticks "move to the trash"."""
        folder = Path(folder)
        if confirm:
            ok, trash = ask_to_remove(
                self._parent,
                "Remove folder",
                f"Take {folder} and its photos out of the library? Labels on them are lost.",
                "Also move the folder to the trash",
            )
            if not ok:
                return None

        def done(removed: int) -> None:
            where = " and moved it to the trash" if trash else ""
            self._feedback.status(f"Removed {folder.name or folder}{where}: {count(removed, 'photo')}", 10000)
            self._after(removed)

        return self._calls.call(
            lambda: self.library.remove_folder(folder, trash=trash), done, self._failed(trash)
        )

    def choose_sub_folder(self, inside: Path) -> None:
        chosen = QFileDialog.getExistingDirectory(self._parent, "Keep a sub-folder out", str(inside))
        if chosen:
            self.exclude_folder(Path(chosen))

    def exclude_folder(self, folder: Path) -> Worker:
        """Keep a folder (a sub-folder of one the library indexes) out from now on."""
        folder = Path(folder)

        def done(removed: int) -> None:
            self._feedback.status(
                f"Keeping {folder.name or folder} out: {count(removed, 'photo')} removed", 10000
            )
            self._after(removed)

        return self._calls.call(lambda: self.library.exclude_folder(folder), done)

    def include(self, path: Path) -> Worker:
        """Let an excluded folder or file back in; it is indexed by a rescan, started here."""
        path = Path(path)

        def done(_result: object) -> None:
            self._feedback.status(f"Letting {path.name or path} back in: rescanning", 8000)
            self._after(0)
            self._jobs.rescan()

        return self._calls.call(lambda: self.library.include(path), done)

    def _after(self, removed: int) -> None:
        if self.dialog is not None:
            self.read_folders()
        self.changed.emit(removed)

    def _failed(self, trash: bool) -> Callable[[BaseException], None]:
        def failed(exc: BaseException) -> None:
            if trash:
                self._feedback.say(trash_failed_text(exc), error=True)
                self._feedback.status("Nothing was moved to the trash", 10000)
                self._after(0)
            else:
                self._feedback.show_error(exc)

        return failed

    # ------------------------------------------------------------ checking
    def check_library(self, show: bool = True) -> Worker | None:
        """Library ▸ Check library…: look for damage and mend it, off the GUI thread."""
        if self.checking is not None:
            return None
        if self._jobs.running is not None:
            self._feedback.status(
                "Indexing or learning is going on: check the library when it is done.", 8000
            )
            return None
        worker = Worker(lambda: self.library.check(repair=True), name="check")
        worker.signals.returned.connect(self._calls.while_open(lambda report: self._checked(report, show)))
        worker.signals.errored.connect(self._calls.while_open(self._feedback.show_error))
        worker.signals.finished.connect(self._check_ended)
        self.checking = worker
        self._feedback.status("Checking the library… (searching keeps working)", 60_000)
        self._calls.index_pool.start(worker)
        return worker

    def _check_ended(self) -> None:
        self.checking = None

    def _checked(self, report: CheckReport, show: bool) -> None:
        self.last_report = report
        found = len(report.findings)
        summary = "nothing wrong" if not found else f"{count(found, 'problem')} found"
        self._feedback.status(f"Library checked: {summary}", 10000)
        self.checked.emit(report)
        if report.findings:
            self.changed.emit(0)  # vectors or the index were mended: show the search again
        if show:
            box = QMessageBox(
                QMessageBox.Icon.Information if report.sound else QMessageBox.Icon.Warning,
                "Check library",
                report_text(report),
                parent=self._parent,
            )
            box.setObjectName("checkReport")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()


class FoldersDialog(QDialog):
    """The folders the library indexes, with Remove and Exclude a sub-folder, and
    what is kept out, with Let back in."""

    def __init__(self, care: LibraryCare, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("foldersDialog")
        self.setWindowTitle("Library folders")
        self.resize(560, 420)
        self.care = care
        self.folders = QListWidget()
        self.folders.setObjectName("folderList")
        self.excluded = QListWidget()
        self.excluded.setObjectName("excludedList")
        self.remove_button = QPushButton("Remove from library…")
        self.exclude_button = QPushButton("Keep a sub-folder out…")
        self.include_button = QPushButton("Let back in")
        self.remove_button.clicked.connect(self._remove)
        self.exclude_button.clicked.connect(self._exclude)
        self.include_button.clicked.connect(self._include)
        self.folders.itemSelectionChanged.connect(self._update_buttons)
        self.excluded.itemSelectionChanged.connect(self._update_buttons)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Folders this library indexes (a rescan goes through them):"))
        layout.addWidget(self.folders, 2)
        row = QHBoxLayout()
        row.addWidget(self.remove_button)
        row.addWidget(self.exclude_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(QLabel("Kept out of the library (removed photos, excluded sub-folders):"))
        layout.addWidget(self.excluded, 1)
        row = QHBoxLayout()
        row.addWidget(self.include_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(buttons)
        care.foldersRead.connect(self.set_lists)
        self._update_buttons()

    def set_lists(self, folders: list[Path], excluded: list[Path]) -> None:
        for widget, paths in ((self.folders, folders), (self.excluded, excluded)):
            chosen = self._chosen(widget)
            widget.clear()
            for path in paths:
                item = QListWidgetItem(str(path))
                item.setData(PATH_ROLE, str(path))
                widget.addItem(item)
                if chosen == path:
                    item.setSelected(True)
        if not excluded:
            self.excluded.addItem(QListWidgetItem("(nothing)"))
        self._update_buttons()

    def _chosen(self, widget: QListWidget) -> Path | None:
        items = widget.selectedItems()
        value = items[0].data(PATH_ROLE) if items else None
        return Path(value) if value else None

    def _update_buttons(self) -> None:
        folder = self._chosen(self.folders) is not None
        self.remove_button.setEnabled(folder)
        self.exclude_button.setEnabled(folder)
        self.include_button.setEnabled(self._chosen(self.excluded) is not None)

    def _remove(self) -> None:
        folder = self._chosen(self.folders)
        if folder is not None:
            self.care.remove_folder(folder)

    def _exclude(self) -> None:
        folder = self._chosen(self.folders)
        if folder is not None:
            self.care.choose_sub_folder(folder)

    def _include(self) -> None:
        path = self._chosen(self.excluded)
        if path is not None:
            self.care.include(path)
