"""The main window: it only assembles the parts and wires them together.

* :mod:`~devise_app.gui.searching`: the search box, the results header, the browse bar;
* :mod:`~devise_app.gui.photo_actions`: what can be done with the selected photos;
* :mod:`~devise_app.gui.labels_panel`: the Labels panel, learning, label files;
* :mod:`~devise_app.gui.jobs`: indexing and learning, and their one progress panel;
* :mod:`~devise_app.gui.actions`: the actions, menus and toolbar, as data;
* :mod:`~devise_app.gui.settings`: what the window remembers, as one typed schema;
* :mod:`~devise_app.gui.calls`: every library call off the GUI thread, and errors.

The controllers talk to the library through :class:`~devise_app.gui.ports.LibraryPort`,
so each can be tested alone against a stand-in (tests/gui/test_controllers.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QMouseEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from devise_app.engine.config import default_library_dir
from devise_app.engine.imaging import is_image_path
from devise_app.gui.actions import ACTIONS, TOOLBAR, build_actions, build_menus, fill
from devise_app.gui.calls import Calls, Feedback, MessageLine
from devise_app.gui.delegate import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE
from devise_app.gui.help import show_about, show_search_tips
from devise_app.gui.icons import ICON_SIZE, app_icon
from devise_app.gui.jobs import JobsController
from devise_app.gui.labels_panel import LabelsController
from devise_app.gui.library_care import LibraryCare
from devise_app.gui.models import PHOTO_MIME, ResultsModel, local_paths
from devise_app.gui.photo_actions import PhotoActions
from devise_app.gui.ports import LibraryPort, WordSource
from devise_app.gui.searching import SearchController
from devise_app.gui.settings import WindowSettings
from devise_app.gui.text import count, describe_summary, format_when, provider_text, window_title
from devise_app.gui.views import ResultsView
from devise_app.gui.welcome import WelcomePage
from devise_app.gui.workers import Worker

if TYPE_CHECKING:
    from devise_app.engine.search import ModelInfo
    from devise_app.engine.watch import FolderWatcher, WatchRun

log = logging.getLogger(__name__)
ZOOM_STEP = 32
LibraryState = tuple[int, float | None, list[tuple[str, int]], dict[str, list[str]]]


class MainWindow(QMainWindow):
    # Emitted for anyone who waits on the window (tests, the screenshot script); the
    # controllers' own signals are the window's too (resultsShown, labelsUpdated, ...).
    libraryRefreshed = Signal()
    vocabularyReady = Signal()
    modelReady = Signal()
    watchRan = Signal(object)  # a WatchRun of the folder watcher (queued from its thread)

    def __init__(
        self, library: LibraryPort, settings: QSettings | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.settings = settings
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
        self.set_title()
        self.setAcceptDrops(True)
        self.photo_count: int | None = None
        self._watcher: FolderWatcher | None = None
        self._shut_down = False

        self.query_message = MessageLine()
        self.feedback = Feedback(self.query_message, self.statusBar(), self)
        self.calls = Calls(self.feedback.show_error, self)
        self.results_model = ResultsModel(parent=self)
        self.results_view = ResultsView()
        self.results_view.setModel(self.results_model)
        self.jobs = JobsController(library, self.calls, self.feedback, self)
        self.searching = SearchController(
            library, self.calls, self.feedback, self.results_model, self.results_view, self
        )
        self.labels = LabelsController(library, self.calls, self.feedback, self.jobs, settings, self)
        self.photos = PhotoActions(
            library, self.calls, self.feedback, self.results_view, self.labels, self.searching, self
        )
        self.care = LibraryCare(library, self.calls, self.feedback, self.jobs, self)
        # the widgets the scripts and tests reach for, under their old names
        self.search_box, self.results_info = self.searching.box, self.searching.info
        self.browse_bar = self.searching.browse_bar
        self.labels_model, self.labels_view = self.labels.model, self.labels.view
        self._share_signals()

        self.actions_by_id = build_actions(self, self)
        self._build_ui()
        self.actions_by_id["labels_panel"] = self.labels_dock.toggleViewAction()
        build_menus(self.menuBar(), self.actions_by_id)
        self.photos.actions = self.actions_by_id
        self._connect()
        self._restore_settings()
        self.photos.update_enabled()
        self._update_job_actions()
        self._update_page()
        self.refresh_library()
        self._warm_up()

    def _share_signals(self) -> None:
        """The controllers' signals, under the names the window has always had."""
        self.resultsShown = self.searching.resultsShown
        self.queryFailed = self.searching.queryFailed
        self.wordsSetAside = self.searching.wordsSetAside
        self.indexFinished = self.jobs.indexFinished
        self.learnFinished = self.jobs.learnFinished
        self.labelsUpdated = self.labels.labelsUpdated
        self.labelApplied = self.labels.labelApplied
        self.labelsTransferred = self.labels.labelsTransferred
        self.photosRemoved = self.photos.photosRemoved

    def action(self, name: str) -> QAction:
        """The action with id ``name`` (see ``actions.ACTIONS``)."""
        return self.actions_by_id[name]

    # ---------------------------------------------------------------- building
    def _build_ui(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolBar")
        toolbar.setMovable(False)
        toolbar.setIconSize(ICON_SIZE)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        fill(toolbar, TOOLBAR, self.actions_by_id)
        for spec in ACTIONS:
            if spec.grid:  # their shortcuts work while the grid has the focus
                self.action(spec.id).setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.results_view.addAction(self.action(spec.id))

        self.welcome_page = WelcomePage()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.welcome_page)
        self.pages.addWidget(self._results_page())
        central = QWidget()
        central.setObjectName("central")
        layout = QVBoxLayout(central)
        layout.setContentsMargins(12, 10, 12, 6)
        layout.setSpacing(6)
        for widget, stretch in (
            (self.search_box, 0),
            (self.query_message, 0),
            (self.jobs.panel, 0),
            (self.pages, 1),
        ):
            layout.addWidget(widget, stretch)
        self.setCentralWidget(central)

        self.labels.learn_button.setDefaultAction(self.action("learn"))
        self.labels_dock = QDockWidget("Labels", self)
        self.labels_dock.setObjectName("labelsDock")
        self.labels_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.labels_dock.setWidget(self.labels.widget)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.labels_dock)
        self.resizeDocks([self.labels_dock], [220], Qt.Orientation.Horizontal)
        self._build_status_bar()

    def _results_page(self) -> QWidget:
        """The grid under its header: what it shows, the browse bar, the thumbnail size."""
        self.zoom_slider = QSlider(Qt.Orientation.Horizontal)
        self.zoom_slider.setObjectName("zoomSlider")
        self.zoom_slider.setRange(MIN_SIZE, MAX_SIZE)
        self.zoom_slider.setSingleStep(8)
        self.zoom_slider.setPageStep(ZOOM_STEP)
        self.zoom_slider.setFixedWidth(100)
        self.zoom_slider.setToolTip("Thumbnail size (Ctrl+plus / Ctrl+minus, or Ctrl+wheel)")
        header = QHBoxLayout()
        header.setContentsMargins(2, 0, 2, 0)
        header.addWidget(self.searching.query_photo)
        header.addWidget(self.results_info, 1)
        header.addWidget(self.browse_bar)
        for item in (self.action("zoom_out"), self.zoom_slider, self.action("zoom_in")):
            if isinstance(item, QAction):
                button = QToolButton()
                button.setDefaultAction(item)
                button.setAutoRaise(True)
                button.setIconSize(QSize(16, 16))
                header.addWidget(button)
            else:
                header.addWidget(item)
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.results_view, 1)
        return page

    def _build_status_bar(self) -> None:
        self.selected_label = QLabel("")  # "3 selected", when more than one photo is
        self.count_label = QLabel("…")
        self.model_label = QLabel("Model: …")
        self.provider_label = QLabel("…")
        self.indexed_label = QLabel("")
        for label in (
            self.selected_label,
            self.count_label,
            self.model_label,
            self.provider_label,
            self.indexed_label,
        ):
            label.setObjectName("statusField")
            self.statusBar().addPermanentWidget(label)

    def _connect(self) -> None:
        self.resultsShown.connect(lambda _count: self._update_page(force_results=True))
        self.jobs.indexFinished.connect(self._after_index)
        self.jobs.learnFinished.connect(lambda result: self.searching.rerun() if result is not None else None)
        self.jobs.changed.connect(self._update_job_actions)
        self.jobs.titleChanged.connect(self.set_title)
        self.labels.labelsUpdated.connect(lambda: self.results_model.set_label_map(self.labels.label_map))
        self.labels.labelsChanged.connect(lambda: self.searching.labels_changed(self.labels.names()))
        self.labels.searchRequested.connect(self.searching.search)
        self.labels.labelRenamed.connect(self.searching.label_renamed)
        self.labels.selected_paths = self.photos.selected_paths
        self.photos.photosRemoved.connect(lambda _count: self._after_library_change())
        self.care.changed.connect(lambda _count: self._after_library_change())
        undo, redo, stack = self.action("undo"), self.action("redo"), self.labels.undo_stack
        stack.undoTextChanged.connect(lambda text: undo.setText(f"Undo {text}" if text else "Undo"))
        stack.redoTextChanged.connect(lambda text: redo.setText(f"Redo {text}" if text else "Redo"))
        stack.canUndoChanged.connect(undo.setEnabled)
        stack.canRedoChanged.connect(redo.setEnabled)
        undo.setEnabled(False)
        redo.setEnabled(False)
        self.searching.backChanged.connect(self.action("back").setEnabled)
        self.action("back").setEnabled(self.searching.can_go_back)
        self.results_view.viewport().installEventFilter(self)  # the mouse's back button on the grid
        self.photos.selectionCounted.connect(
            lambda selected: self.selected_label.setText(f"{selected} selected" if selected > 1 else "")
        )
        self.results_model.filesDropped.connect(self.jobs.add_paths)
        self.results_view.zoomRequested.connect(self.zoom)
        self.zoom_slider.valueChanged.connect(self.results_view.set_thumbnail_size)
        self.welcome_page.indexPicturesRequested.connect(lambda folder: self.start_index([folder]))
        self.welcome_page.chooseFolderRequested.connect(self.jobs.choose_folder)

    # ---------------------------------------------------------------- the scripts' and tests' handles
    def search(self, text: str) -> None:
        self.searching.search(text)

    def run_search_box(self) -> None:
        self.searching.run_box()

    def start_index(self, folders: Sequence[Path] | None) -> Worker | None:
        return self.jobs.start_index(folders)

    def add_label(self, name: str, photos: Sequence[Path]) -> None:
        self.labels.add_label(name, photos)

    def create_label(self, name: str) -> None:
        self.labels.create_label(name)

    # ---------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        remembered = WindowSettings.load(self.settings) if self.settings is not None else WindowSettings()
        if not remembered.geometry or not self.restoreGeometry(QByteArray(remembered.geometry)):
            self.resize(1200, 800)
        if remembered.state:
            self.restoreState(QByteArray(remembered.state))
        self.zoom_slider.setValue(remembered.thumbnail_size)
        self.results_view.set_thumbnail_size(self.zoom_slider.value())

    def save_settings(self) -> None:
        if self.settings is None:
            return
        remembered = replace(
            WindowSettings.load(self.settings),
            library_path=str(self.library.path),
            thumbnail_size=self.results_view.thumbnail_size,
            geometry=bytes(self.saveGeometry().data()),
            state=bytes(self.saveState().data()),
        )
        remembered.save(self.settings)

    def set_title(self, progress: str = "") -> None:
        """ "Pictures" or "Indexing 40% · Pictures", "" or "Indexing 40%" for the default
        library (text.window_title); Qt adds the app's display name: "… — devise-app"."""
        self.setWindowTitle(window_title(Path(self.library.path), default_library_dir(), progress))

    # ---------------------------------------------------------------- what the library holds
    def _warm_up(self) -> None:
        """Load the vocabulary (for completion) and the model (for the status bar) early."""
        self.calls.call(self._load_vocabulary, self._on_vocabulary)
        self.calls.call(self.library.model_info, self._on_model_info)

    def _load_vocabulary(self) -> WordSource:
        """The vocabulary, its completion index built (off the GUI thread): the first
        completion then costs what every later one does."""
        words = self.library.vocabulary
        words.complete("a", 1)
        return words

    def _on_vocabulary(self, words: WordSource) -> None:
        self.searching.set_words(words, self.labels.names)
        self.labels.set_words(words)
        self.vocabularyReady.emit()

    def _on_model_info(self, info: ModelInfo) -> None:
        self.provider_label.setText(provider_text(info.provider))
        note = f"\n{info.provider_note}" if info.provider_note else ""
        self.provider_label.setToolTip(f"ONNX Runtime provider: {info.provider}{note}")
        self.model_label.setText(f"Model: {info.name}")
        self.model_label.setToolTip(f"Model files: {info.model_dir}")
        self.modelReady.emit()

    def refresh_library(self) -> None:
        """Update photo count, last index time, labels and folders from the library."""

        def fetch() -> LibraryState:
            labels, mapping = self.labels.state()
            return self.library.photo_count(), self.library.last_indexed_at(), labels, mapping

        self.calls.call(fetch, self._on_library_state)
        self.calls.call(self.library.folders, self.browse_bar.set_folders)

    def _on_library_state(self, state: LibraryState) -> None:
        photos, last, labels, mapping = state
        self.photo_count = self.searching.photo_count = photos
        self.count_label.setText(count(photos, "photo"))
        self.indexed_label.setText(f"Indexed {format_when(last)}")
        self.indexed_label.setToolTip(
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else ""
        )
        self.labels.apply_state(labels, mapping)
        self.browse_bar.set_labels([name for name, _ in labels])
        self._update_page()
        self.labels.refresh_learn_status()
        if photos and self.searching.shown is None and not self.search_box.text().strip():
            self.searching.browse()  # the library's photos, before any query
        self.libraryRefreshed.emit()

    def _after_library_change(self) -> None:
        self.refresh_library()
        self.searching.rerun()

    def _after_index(self, _summary: object) -> None:
        self.refresh_library()
        self.searching.rerun()

    def _update_page(self, force_results: bool = False) -> None:
        """The welcome page while the library is empty and nothing runs; else the grid."""
        empty = self.photo_count == 0 and self.jobs.running != "index"
        if empty and not force_results and self.results_model.rowCount() == 0:
            self.pages.setCurrentWidget(self.welcome_page)
        else:
            self.pages.setCurrentIndex(1)
        self.searching.update_empty_message()

    def _update_job_actions(self) -> None:
        self.action("learn").setEnabled(self.jobs.running is None)
        self.action("cancel").setEnabled(self.jobs.running == "index" and not self.jobs.cancelling)
        if self.jobs.running == "index":
            self._update_page(force_results=True)

    # ---------------------------------------------------------------- zoom and help
    def zoom(self, direction: int) -> None:
        self.zoom_slider.setValue(self.zoom_slider.value() + direction * ZOOM_STEP)

    def zoom_in(self) -> None:
        self.zoom(+1)

    def zoom_out(self) -> None:
        self.zoom(-1)

    def reset_zoom(self) -> None:
        self.zoom_slider.setValue(DEFAULT_SIZE)

    def show_search_help(self) -> None:
        show_search_tips(self)

    def show_about(self) -> None:
        show_about(self, Path(self.library.path))

    # ---------------------------------------------------------------- following the folders
    def watch_library(self) -> None:
        """Follow the library's folders while the window is open (engine.watch): a
        first run brings the library up to date with what changed while it was
        closed, then changes on disk are indexed as they happen, and shown."""
        from devise_app.engine.search import Library
        from devise_app.engine.watch import FolderWatcher

        library = self.library
        if not isinstance(library, Library):
            return  # a stand-in (tests): nothing on disk to follow

        def start(folders: list[Path]) -> None:
            present = [folder for folder in folders if folder.is_dir()]
            if present and not self._shut_down and self._watcher is None:
                self._watcher = FolderWatcher(library, present, on_run=self.watchRan.emit)
                self._watcher.start()

        self.watchRan.connect(self._on_watch_run)
        self.calls.call(library.folders, start)

    def _on_watch_run(self, run: WatchRun) -> None:
        if run.error:
            self.feedback.status(f"Watching: {run.error}", 10000)
        elif run.changed and run.summary is not None:
            self.feedback.status(f"Folders changed: {describe_summary(run.summary)}", 10000)
            self._after_library_change()

    # ---------------------------------------------------------------- folders dropped on the window
    def _droppable(self, event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> list[Path]:
        mime = event.mimeData()
        if mime.hasFormat(PHOTO_MIME):
            return []  # our own photos: they go to labels or the search box, not back into the library
        return [path for path in local_paths(mime) if path.is_dir() or is_image_path(path)]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._droppable(event):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)  # type: ignore[arg-type]

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._droppable(event)
        if paths:
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self.jobs.add_paths(paths)
        else:
            event.ignore()

    # ---------------------------------------------------------------- the mouse's back button
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        pressed = event if event.type() == QEvent.Type.MouseButtonPress else None
        if isinstance(pressed, QMouseEvent) and self._back_button(pressed):
            return True
        return super().eventFilter(watched, event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if not self._back_button(event):
            super().mousePressEvent(event)

    def _back_button(self, event: QMouseEvent) -> bool:
        """Back, for the mouse's back button (on the grid, or anywhere else that lets it through)."""
        if event.button() != Qt.MouseButton.BackButton:
            return False
        self.action("back").trigger()  # does nothing while disabled
        event.accept()
        return True

    # ---------------------------------------------------------------- closing
    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_settings()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop the workers and close the library; safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        self.jobs.shutdown()
        if self._watcher is not None:
            self._watcher.stop(timeout=30)
            self._watcher = None
        self.calls.shutdown()
        self.results_model.loader.shutdown()
        self.library.close()
