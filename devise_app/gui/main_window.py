"""The main window: search box, photo grid, labels panel, indexing progress.

Every call into the core ``Library`` runs on a worker thread (see
:mod:`devise_app.gui.workers`): indexing on its own pool, everything else
(searching, labels, statistics, describing photos) one at a time on another, so
the GUI thread never waits for the catalog, the model or the search index. Results
come back as signals; a search result is shown only if no newer search started
meanwhile (``ResultsModel.generation``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import QByteArray, QModelIndex, QProcess, QSettings, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from devise_app.engine import config
from devise_app.engine.errors import ModelFileError, QueryError, UserError
from devise_app.engine.imaging import is_image_path
from devise_app.engine.query import label_query
from devise_app.engine.search import SearchHit, SearchResult
from devise_app.gui.browse import NAME, RELEVANCE, BrowseBar
from devise_app.gui.delegate import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE
from devise_app.gui.dialogs import PreviewDialog, WordsDialog
from devise_app.gui.icons import ICON_SIZE, app_icon, icon
from devise_app.gui.models import PHOTO_MIME, LabelsModel, Photo, ResultsModel, local_paths
from devise_app.gui.views import LabelsView, ResultsView, SearchBox, WordCompleter, expression_completions
from devise_app.gui.welcome import WelcomePage
from devise_app.gui.workers import Worker, WorkerPool

if TYPE_CHECKING:
    from devise_app.engine.indexer import IndexProgress, IndexSummary
    from devise_app.engine.learning import LearnedHead, LearnProgress
    from devise_app.engine.search import Library, ModelInfo, Suggestion
    from devise_app.engine.vocabulary import Vocabulary
    from devise_app.engine.watch import FolderWatcher, WatchRun

log = logging.getLogger(__name__)
MAX_RESULTS = 1000
ZOOM_STEP = 32


def _shortened(text: str, limit: int = 80) -> str:
    """A query as the results header shows it: at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def format_when(timestamp: float | None, now: float | None = None) -> str:
    if timestamp is None:
        return "never"
    age = (now if now is not None else time.time()) - timestamp
    if age < 60:
        return "just now"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 86400:
        return f"{int(age // 3600)} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def provider_text(provider: str | None) -> str:
    if not provider:
        return "…"
    if "CUDA" in provider or "Tensorrt" in provider or "TensorRT" in provider:
        return "GPU (CUDA)"
    if "CoreML" in provider:
        return "Apple Neural Engine"
    if "DirectML" in provider or "Dml" in provider:
        return "GPU (DirectML)"
    if "CPU" in provider:
        return "CPU"
    return provider.replace("ExecutionProvider", "")


def _user_message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class MainWindow(QMainWindow):
    # Emitted for anyone who waits on the window (tests, the screenshot script).
    resultsShown = Signal(int)  # number of photos now in the grid
    queryFailed = Signal(str)  # the inline message
    wordsSetAside = Signal(list)  # the unknown words a query left out (it was answered from the rest)
    indexFinished = Signal(object)  # the core's IndexSummary, or None if the run failed
    labelsUpdated = Signal()
    libraryRefreshed = Signal()
    vocabularyReady = Signal()
    modelReady = Signal()
    labelApplied = Signal(str)
    learnFinished = Signal(object)  # the core's LearnedHead, or None if cancelled or failed
    labelsTransferred = Signal(str)  # the result message of an export or an import
    photosRemoved = Signal(int)  # how many photos "Remove from library" took out
    watchRan = Signal(object)  # a WatchRun of the folder watcher (queued from its thread)

    def __init__(
        self, library: Library, settings: QSettings | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.settings = settings
        self.setObjectName("mainWindow")
        self.setWindowIcon(app_icon())
        self._set_title()
        self.setAcceptDrops(True)

        self._index_pool = WorkerPool(1, self)
        self._query_pool = WorkerPool(1, self)
        self._image_pool = WorkerPool(2, self)
        self._index_worker: Worker | None = None
        self._index_queue: list[list[Path] | None] = []  # None: a rescan of every folder
        self._index_started = 0.0
        self._last_summary: IndexSummary | None = None
        self._learn_worker: Worker | None = None
        self._learn_started = 0.0
        self._learn_result: LearnedHead | None = None
        self._learn_failed = False
        self._learned_at: float | None = None  # when the library's head was written (its mtime)
        self._learn_fingerprint = ""  # the labels a learn run started from
        self._last_search: tuple[str, str | Path] | None = None  # ("query", text) or ("similar", path)
        self._photo_count: int | None = None
        self._label_map: dict[str, list[str]] = {}
        self._vocabulary: Vocabulary | None = None
        self._model_error_shown = False
        self._words_dialog: WordsDialog | None = None
        self._preview_dialog: PreviewDialog | None = None
        self._last_error_word: str | None = None  # the word the last QueryError named
        self._shown_search: tuple[int, str, SearchResult] | None = None  # for "show weaker matches"
        self._watcher: FolderWatcher | None = None
        self._shut_down = False

        self.results_model = ResultsModel(parent=self)
        self.labels_model = LabelsModel(self)
        self._build_actions()
        self._build_ui()
        self._build_menus()
        self._connect()
        self._restore_settings()
        self._update_actions()
        self._update_learn_action()
        self._update_page()

        self.refresh_library()
        self._warm_up()

    # ---------------------------------------------------------------- building
    def _build_actions(self) -> None:
        def action(
            text: str,
            icon_name: str | None,
            slot: Callable[[], Any],
            shortcuts: Sequence[Any] = (),
            tip: str = "",
        ) -> QAction:
            act = QAction(text, self)
            if icon_name:
                act.setIcon(icon(icon_name))
            if shortcuts:
                act.setShortcuts([QKeySequence(s) for s in shortcuts])
            act.setToolTip(tip or text.replace("…", ""))
            act.setStatusTip(tip or text.replace("…", ""))
            act.triggered.connect(slot)
            return act

        self.add_folder_action = action(
            "Add folder…",
            "folder-add",
            self.choose_folder,
            [QKeySequence.StandardKey.Open],
            "Index a folder of photos into this library",
        )
        self.rescan_action = action(
            "Rescan library",
            None,
            self.rescan_library,
            [QKeySequence.StandardKey.Refresh],
            "Bring the library up to date with all its folders: new, changed, moved and deleted photos",
        )
        self.duplicates_action = action(
            "Find duplicates",
            None,
            self.show_duplicates,
            [],
            "Show the identical copies and near-duplicates (re-saved, resized, cropped), group by group",
        )
        self.remove_photos_action = action(
            "Remove from library…",
            None,
            self.remove_selected_from_library,
            [],
            "Take the selected photos out of the library (the files stay where they are)",
        )
        self.cancel_action = action(
            "Cancel indexing",
            "stop",
            self.cancel_indexing,
            [],
            "Stop indexing; what is done is kept and the rest is indexed next time",
        )
        self.preview_action = action(
            "Preview",
            "preview",
            self.preview_current,
            ["Space"],
            "Show the photo large (Space); Left/Right step through the results",
        )
        self.open_action = action(
            "Open",
            "open-external",
            self.open_selected,
            ["Ctrl+Return"],
            "Open in the system's photo viewer (Ctrl+Enter)",
        )
        self.show_folder_action = action(
            "Show in folder",
            "show-folder",
            self.show_selected_in_folder,
            ["Ctrl+Shift+Return"],
            "Show the file in its folder",
        )
        self.similar_action = action(
            "Find similar",
            "similar",
            self.find_similar_to_current,
            ["Ctrl+Shift+S"],
            "Photos that look like this one (Ctrl+Shift+S)",
        )
        self.words_action = action(
            "Words for this photo…",
            "words",
            self.words_for_current,
            ["Ctrl+D"],
            "Your labels that fit this photo and the words the model sees in it; "
            "one click applies one (Ctrl+D)",
        )
        self.zoom_in_action = action(
            "Larger thumbnails", "zoom-in", lambda: self.zoom(+1), [QKeySequence.StandardKey.ZoomIn, "Ctrl+="]
        )
        self.zoom_out_action = action(
            "Smaller thumbnails", "zoom-out", lambda: self.zoom(-1), [QKeySequence.StandardKey.ZoomOut]
        )
        self.zoom_reset_action = action("Default thumbnail size", None, self.reset_zoom, ["Ctrl+0"])
        self.focus_search_action = action(
            "Search", "search", self.focus_search, [QKeySequence.StandardKey.Find, "Ctrl+L", "/"]
        )
        self.copy_path_action = action(
            "Copy path", None, self.copy_selected_paths, [QKeySequence.StandardKey.Copy]
        )
        self.learn_action = action(
            "Learn from labels",
            "learn",
            self.learn_from_labels,
            ["Ctrl+Shift+L"],
            "Teach the model your labels, so searches for them (and for similar photos) "
            "find the unlabelled photos too (Ctrl+Shift+L)",
        )
        self.export_labels_action = action(
            "Export labels…",
            None,
            self.choose_export_file,
            [],
            "Save every label and the paths of its photos to a JSON file",
        )
        self.import_labels_action = action(
            "Import labels…",
            None,
            self.choose_import_file,
            [],
            "Put the labels of an exported JSON file on this library's photos",
        )
        self.quit_action = action("Quit", None, self.close, [QKeySequence.StandardKey.Quit])
        self.cancel_action.setEnabled(False)
        self.photo_actions = [
            self.preview_action,
            self.open_action,
            self.show_folder_action,
            self.similar_action,
            self.words_action,
            self.copy_path_action,
        ]

    def _build_ui(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolBar")
        toolbar.setMovable(False)
        toolbar.setIconSize(ICON_SIZE)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.add_folder_action)
        toolbar.addSeparator()
        for act in (
            self.preview_action,
            self.open_action,
            self.show_folder_action,
            self.similar_action,
            self.words_action,
        ):
            toolbar.addAction(act)

        # search box and the line under it
        self.search_box = SearchBox()
        self.search_box.setMinimumHeight(34)
        self.query_message = QLabel()
        self.query_message.setObjectName("queryMessage")
        self.query_message.setWordWrap(True)
        self.query_message.setTextFormat(Qt.TextFormat.RichText)
        self.query_message.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
        )
        self.query_message.hide()
        # long text wraps or is cut off; it never widens the window (a 500-character
        # query made it 3,400 px wide)
        self.query_message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        # indexing progress
        self.index_panel = QFrame()
        self.index_panel.setObjectName("indexPanel")
        self.index_progress = QProgressBar()
        self.index_progress.setObjectName("indexProgress")
        self.index_progress.setTextVisible(False)
        self.index_progress.setFixedHeight(8)
        self.index_label = QLabel()
        self.index_label.setObjectName("indexLabel")
        self.index_detail = QLabel()
        self.index_detail.setObjectName("hintLabel")
        self.index_cancel = QPushButton(icon("stop"), "Cancel")
        self.index_cancel.setObjectName("cancelButton")
        self.index_cancel.clicked.connect(self.cancel_running_job)
        progress_text = QVBoxLayout()
        progress_text.setSpacing(2)
        progress_text.addWidget(self.index_label)
        progress_text.addWidget(self.index_progress)
        progress_text.addWidget(self.index_detail)
        panel_layout = QHBoxLayout(self.index_panel)
        panel_layout.setContentsMargins(10, 8, 10, 8)
        panel_layout.addLayout(progress_text, 1)
        panel_layout.addWidget(self.index_cancel)
        self.index_panel.hide()

        # the grid and its header
        self.results_info = QLabel()
        self.results_info.setObjectName("resultsInfo")
        self.results_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.results_info.setTextFormat(Qt.TextFormat.RichText)
        self.results_info.linkActivated.connect(lambda _link: self.show_weaker_matches())
        self.zoom_slider = QSlider(Qt.Orientation.Horizontal)
        self.zoom_slider.setObjectName("zoomSlider")
        self.zoom_slider.setRange(MIN_SIZE, MAX_SIZE)
        self.zoom_slider.setSingleStep(8)
        self.zoom_slider.setPageStep(ZOOM_STEP)
        self.zoom_slider.setFixedWidth(100)
        self.zoom_slider.setToolTip("Thumbnail size (Ctrl+plus / Ctrl+minus, or Ctrl+wheel)")
        self.browse_bar = BrowseBar()
        self.browse_bar.changed.connect(self._rerun_last_search)
        header = QHBoxLayout()
        header.setContentsMargins(2, 0, 2, 0)
        header.addWidget(self.results_info, 1)
        header.addWidget(self.browse_bar)
        header_items: tuple[tuple[QAction | None, QWidget | None], ...] = (
            (self.zoom_out_action, None),
            (None, self.zoom_slider),
            (self.zoom_in_action, None),
        )
        for header_action, widget in header_items:
            if header_action is not None:
                button = QToolButton()
                button.setDefaultAction(header_action)
                button.setAutoRaise(True)
                button.setIconSize(QSize(16, 16))
                header.addWidget(button)
            elif widget is not None:
                header.addWidget(widget)

        self.results_view = ResultsView()
        self.results_view.setModel(self.results_model)
        self.results_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        for act in self.photo_actions:
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.results_view.addAction(act)
        results_page = QWidget()
        results_layout = QVBoxLayout(results_page)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addLayout(header)
        results_layout.addWidget(self.results_view, 1)

        self.welcome_page = WelcomePage()
        self.pages = QStackedWidget()
        self.pages.addWidget(self.welcome_page)
        self.pages.addWidget(results_page)

        central = QWidget()
        central.setObjectName("central")
        layout = QVBoxLayout(central)
        layout.setContentsMargins(12, 10, 12, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search_box)
        layout.addWidget(self.query_message)
        layout.addWidget(self.index_panel)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        # labels panel
        self.new_label_edit = QLineEdit()
        self.new_label_edit.setObjectName("newLabelEdit")
        self.new_label_edit.setPlaceholderText("New label…")
        self.new_label_edit.setClearButtonEnabled(True)
        self.new_label_completer = WordCompleter(self.new_label_edit)
        add_label_button = QToolButton()
        add_label_button.setIcon(icon("label"))
        add_label_button.setToolTip("Create the label (Enter)")
        add_label_button.clicked.connect(self.create_label_from_edit)
        self.new_label_edit.returnPressed.connect(self.create_label_from_edit)
        new_row = QHBoxLayout()
        new_row.addWidget(self.new_label_edit, 1)
        new_row.addWidget(add_label_button)
        self.labels_view = LabelsView()
        self.labels_view.setModel(self.labels_model)
        self.labels_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        for keys, slot in (
            (QKeySequence.StandardKey.Delete, self._delete_current_label),
            (Qt.Key.Key_F2, self._rename_current_label),
        ):
            shortcut = QShortcut(QKeySequence(keys), self.labels_view)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        labels_hint = QLabel(
            "Drop photos on a label to tag them; drag a label onto photos. Click one to see its photos."
        )
        labels_hint.setObjectName("hintLabel")
        labels_hint.setWordWrap(True)
        labels_panel = QWidget()
        labels_layout = QVBoxLayout(labels_panel)
        labels_layout.setContentsMargins(8, 4, 8, 8)
        self.learn_button = QToolButton()
        self.learn_button.setObjectName("learnButton")
        self.learn_button.setDefaultAction(self.learn_action)
        self.learn_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.learn_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.learn_status = QLabel("")
        self.learn_status.setObjectName("hintLabel")
        self.learn_status.setWordWrap(True)
        labels_layout.addLayout(new_row)
        labels_layout.addWidget(self.labels_view, 1)
        labels_layout.addWidget(labels_hint)
        labels_layout.addWidget(self.learn_button)
        labels_layout.addWidget(self.learn_status)
        self.labels_dock = QDockWidget("Labels", self)
        self.labels_dock.setObjectName("labelsDock")
        self.labels_dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.labels_dock.setWidget(labels_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.labels_dock)
        self.resizeDocks([self.labels_dock], [220], Qt.Orientation.Horizontal)

        # status bar
        status = self.statusBar()
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
            status.addPermanentWidget(label)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&Library")
        file_menu.addAction(self.add_folder_action)
        file_menu.addAction(self.rescan_action)
        file_menu.addAction(self.duplicates_action)
        file_menu.addAction(self.cancel_action)
        file_menu.addSeparator()
        file_menu.addAction(self.learn_action)
        file_menu.addAction(self.export_labels_action)
        file_menu.addAction(self.import_labels_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        photo_menu = menu.addMenu("&Photo")
        for act in self.photo_actions:
            photo_menu.addAction(act)
        view_menu = menu.addMenu("&View")
        view_menu.addAction(self.focus_search_action)
        view_menu.addSeparator()
        view_menu.addAction(self.zoom_in_action)
        view_menu.addAction(self.zoom_out_action)
        view_menu.addAction(self.zoom_reset_action)
        view_menu.addSeparator()
        view_menu.addAction(self.labels_dock.toggleViewAction())
        help_menu = menu.addMenu("&Help")
        help_menu.addAction("Search tips", self.show_search_help)
        help_menu.addAction("About devise-app", self.show_about)

    def _connect(self) -> None:
        self.search_box.returnPressed.connect(self.run_search_box)
        self.search_box.photoDropped.connect(self.find_similar)
        self.search_box.textChanged.connect(self._on_search_text_changed)
        self.query_message.linkActivated.connect(self._on_suggestion)
        self.results_view.zoomRequested.connect(self.zoom)
        self.results_view.activated.connect(lambda index: self.preview_row(index.row()))
        self.results_view.customContextMenuRequested.connect(self._results_menu)
        self.results_view.selectionModel().selectionChanged.connect(self._update_actions)
        self.results_model.modelReset.connect(self._update_actions)
        self.results_model.labelDropped.connect(self._on_label_dropped_on_photo)
        self.results_model.filesDropped.connect(self.add_paths)
        self.labels_model.photosDropped.connect(self.add_label)
        self.labels_view.clicked.connect(self._on_label_clicked)
        self.labels_view.customContextMenuRequested.connect(self._labels_menu)
        self.zoom_slider.valueChanged.connect(self._set_thumbnail_size)
        self.welcome_page.indexPicturesRequested.connect(lambda folder: self.start_index([folder]))
        self.welcome_page.chooseFolderRequested.connect(self.choose_folder)

    # ---------------------------------------------------------------- settings
    def _restore_settings(self) -> None:
        size = DEFAULT_SIZE
        if self.settings is not None:
            size = _int(self.settings.value("view/thumbnail_size"), DEFAULT_SIZE)
            geometry = self.settings.value("window/geometry")
            if isinstance(geometry, QByteArray) and not geometry.isEmpty():
                self.restoreGeometry(geometry)
            else:
                self.resize(1200, 800)
            state = self.settings.value("window/state")
            if isinstance(state, QByteArray) and not state.isEmpty():
                self.restoreState(state)
        else:
            self.resize(1200, 800)
        self.zoom_slider.setValue(max(MIN_SIZE, min(MAX_SIZE, size)))
        self._set_thumbnail_size(self.zoom_slider.value())

    def _set_title(self, progress: str = "") -> None:
        """ "LIBRARY" or "Indexing 40% · LIBRARY"; Qt adds the app's display name."""
        name = Path(self.library.path).name
        self.setWindowTitle(f"{progress} · {name}" if progress else name)

    def save_settings(self) -> None:
        if self.settings is None:
            return
        self.settings.setValue("library/path", str(self.library.path))
        self.settings.setValue("view/thumbnail_size", self.results_view.thumbnail_size)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    # ---------------------------------------------------------------- workers
    def call(
        self,
        fn: Callable[[], Any],
        on_result: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        pool: WorkerPool | None = None,
    ) -> Worker:
        """Run ``fn`` (a call into the library) on the query thread.

        The callbacks run on the GUI thread, and only while the window is open: a
        result that arrives after it closed (or was deleted) is dropped.
        """
        worker = Worker(fn)
        if on_result is not None:
            worker.signals.returned.connect(self._while_open(on_result))
        worker.signals.errored.connect(self._while_open(on_error or self.show_error))
        (pool or self._query_pool).start(worker)
        return worker

    def _while_open(self, callback: Callable[[Any], Any]) -> Callable[[Any], None]:
        def guarded(value: Any) -> None:
            if not self._shut_down and shiboken6.isValid(self):
                callback(value)

        return guarded

    def _warm_up(self) -> None:
        """Load the vocabulary (for completion) and the model (for the status bar) early."""
        self.call(lambda: self.library.vocabulary, self._on_vocabulary)
        self.call(self.library.model_info, self._on_model_info)

    def _on_vocabulary(self, vocabulary: Vocabulary) -> None:
        self._vocabulary = vocabulary
        complete = vocabulary.complete
        self.search_box.word_completer.set_source(
            lambda text: expression_completions(text, complete, self.labels_model.names)
        )
        self.new_label_completer.set_source(lambda text: list(complete(text.strip().lower(), 10)))
        self.vocabularyReady.emit()

    def _on_model_info(self, info: ModelInfo) -> None:
        self.provider_label.setText(provider_text(info.provider))
        note = f"\n{info.provider_note}" if info.provider_note else ""
        self.provider_label.setToolTip(f"ONNX Runtime provider: {info.provider}{note}")
        self.model_label.setText(f"Model: {info.name}")
        self.model_label.setToolTip(f"Model files: {info.model_dir}")
        self.modelReady.emit()

    def refresh_library(self) -> None:
        """Update photo count, last index time and labels from the library."""

        def fetch() -> tuple[int, float | None, list[tuple[str, int]], dict[str, list[str]]]:
            labels, mapping = self._label_state()
            return self.library.photo_count(), self.library.last_indexed_at(), labels, mapping

        self.call(fetch, self._on_library_state)
        self.call(self.library.folders, self.browse_bar.set_folders)

    def _label_state(self) -> tuple[list[tuple[str, int]], dict[str, list[str]]]:
        """Runs on the query thread: all labels and which photos carry them."""
        mapping = {str(path): names for path, names in self.library.photo_labels().items()}
        return self.library.labels(), mapping

    def _on_library_state(
        self, state: tuple[int, float | None, list[tuple[str, int]], dict[str, list[str]]]
    ) -> None:
        count, last, labels, mapping = state
        self._photo_count = count
        self.count_label.setText(f"{count:,} photo{'s' if count != 1 else ''}".replace(",", " "))
        self.indexed_label.setText(f"Indexed {format_when(last)}")
        self.indexed_label.setToolTip(
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last)) if last else ""
        )
        self._apply_label_state(labels, mapping)
        self.browse_bar.set_labels([name for name, _ in labels])
        self._update_page()
        self._refresh_learn_status()
        if count and self._last_search is None and not self.search_box.text().strip():
            self.browse()  # the library's photos, before any query
        self.libraryRefreshed.emit()

    def refresh_labels(self) -> None:
        self.call(self._label_state, lambda state: self._apply_label_state(*state))

    def _apply_label_state(self, labels: list[tuple[str, int]], mapping: dict[str, list[str]]) -> None:
        selected = self.current_label_name()
        self.labels_model.set_labels(labels)
        if selected is not None:
            row = self.labels_model.row_of(selected)
            if row is not None:
                self.labels_view.setCurrentIndex(self.labels_model.index(row, 0))
        self._label_map = mapping
        self.results_model.set_label_map(mapping)
        self._update_learn_status()
        self.labelsUpdated.emit()

    # ---------------------------------------------------------------- errors
    def show_error(self, exc: BaseException) -> None:
        """The one place errors from the core reach the user."""
        if isinstance(exc, ModelFileError):
            if not self._model_error_shown:
                self._model_error_shown = True
                QMessageBox.critical(
                    self,
                    "Model files missing or damaged",
                    f"{_user_message(exc)}\n\nTo restore them, {config.repair_hint()}.",
                )
            self.statusBar().showMessage(_user_message(exc), 10000)
            return
        if isinstance(exc, UserError):
            self.show_message(_user_message(exc), error=True)
            self.statusBar().showMessage(_user_message(exc), 8000)
            return
        import traceback

        details = "".join(traceback.format_exception(exc))
        print(details, file=sys.stderr)
        self.statusBar().showMessage(f"Something went wrong: {_user_message(exc)}", 10000)
        self.show_message(f"Something went wrong: {_user_message(exc)}", error=True)

    def show_message(self, html: str, error: bool = False, suggestions: Sequence[str] = ()) -> None:
        """A line under the search box; suggestions become links."""
        if error:
            log.warning("error shown to the user: %s", html)
        text = html
        if suggestions:
            links = ", ".join(f'<a href="suggest:{escape(s)}">{escape(s)}</a>' for s in suggestions)
            text += f"&nbsp;&nbsp;Try {links}."
        self.query_message.setProperty("error", error)
        self.query_message.style().unpolish(self.query_message)
        self.query_message.style().polish(self.query_message)
        self.query_message.setText(text)
        self.query_message.show()

    def hide_message(self) -> None:
        self.query_message.hide()
        self.query_message.clear()

    def _on_suggestion(self, link: str) -> None:
        if not link.startswith("suggest:"):
            return
        suggestion = link[len("suggest:") :]
        self.search_box.setText(
            replace_unknown_word(self.search_box.text(), self._last_error_word, suggestion)
        )
        self.run_search_box()

    # ---------------------------------------------------------------- searching
    def focus_search(self) -> None:
        self.search_box.setFocus()
        self.search_box.selectAll()

    def run_search_box(self) -> None:
        self.search(self.search_box.text())

    def search(self, text: str) -> None:
        """Run a query (words, arithmetic, ``label:NAME``) and show its photos."""
        text = text.strip()
        self.search_box.word_completer.hide_popup()
        if self.search_box.text().strip() != text:
            self.search_box.setText(text)
        if not text:
            self.hide_message()
            if self._photo_count:
                self.browse()
            else:
                self.results_model.clear()
                self._last_search = None
                self._update_results_info()
            return
        self._last_search = ("query", text)
        sort, filters = self.browse_bar.sort(has_query=True), self.browse_bar.photo_filter()

        def find() -> SearchResult:
            return self._in_order(self.library.find(text, top=MAX_RESULTS, filters=filters), sort)

        self._start_search(find, f"for “{_shortened(text)}”")

    def browse(self) -> None:
        """Show the library's photos without a query, sorted and filtered by the browse bar."""
        self._last_search = ("browse", "")
        sort, filters = self.browse_bar.sort(has_query=False), self.browse_bar.photo_filter()

        def listing() -> SearchResult:
            photos = self.library.browse(sort, filters, top=MAX_RESULTS)
            return SearchResult([SearchHit(p.photo_id, p.path, 1.0, p.copies) for p in photos], graded=False)

        self._start_search(listing, "in the library")

    @staticmethod
    def _in_order(found: SearchResult, sort: str) -> SearchResult:
        """The good matches by date taken or by name when asked; the weaker ones stay
        after them, by relevance."""
        if sort == RELEVANCE or not found.hits:
            return found
        count = found.good
        good, weaker = list(found.hits[:count]), found.hits[count:]
        if sort == NAME:
            good.sort(key=lambda hit: (hit.path.name.lower(), str(hit.path)))
        else:
            good.sort(key=lambda hit: -(hit.taken_at or 0.0))
        return replace(found, hits=good + weaker, good_count=count)

    def find_similar(self, photo: Path) -> None:
        """Show the photos that look like ``photo`` (in the library or not)."""
        photo = Path(photo)
        self._last_search = ("similar", photo)
        self.search_box.clear()
        self._start_search(
            lambda: SearchResult(self.library.similar(photo, top=MAX_RESULTS), graded=False),
            f"like {photo.name}",
        )

    def _start_search(self, fn: Callable[[], SearchResult], description: str) -> None:
        generation = self.results_model.new_generation()
        self.results_info.setText(f"Searching {description}…")
        self.call(
            fn,
            lambda found: self._on_results(generation, description, found),
            lambda exc: self._on_search_error(generation, exc),
        )

    def _on_results(
        self, generation: int, description: str, found: SearchResult, weaker_too: bool = False
    ) -> None:
        """Show the good matches; the weaker ones only when asked ("show weaker matches")."""
        every = [Photo.from_hit(hit) for hit in found.hits]
        good = found.good
        photos = every if weaker_too else every[:good]
        if not self.results_model.set_results(photos, generation):
            return  # a newer search started meanwhile
        self._shown_search = (generation, description, found)
        self._update_page(force_results=True)
        if not weaker_too:  # the line under the box was said for this search already
            self._say_what_was_found(found, description)
        if photos:
            self.results_view.scrollToTop()
            self.results_view.setCurrentIndex(self.results_model.index(0, 0))
            self.results_view.selectionModel().clearSelection()
        elif not every:
            message = f"No photos found {escape(description)}."
            if self._photo_count == 0:
                message += " The library is empty: add a folder first."
            self.show_message(message)
            self.queryFailed.emit(message)
        count, hidden = len(photos), len(every) - len(photos)
        # the link first: a narrow window cuts the end of this line off, never the link
        weaker = f'<a href="weaker">Show {hidden} weaker</a> · ' if hidden else ""
        near = f" ≈ {escape(', '.join(found.nearest_words))}" if found.nearest_words else ""
        number = f"{count:,}".replace(",", " ")
        self.results_info.setText(
            f"{weaker}{number} photo{'s' if count != 1 else ''} {escape(description)}{near}"
        )
        self.results_info.setToolTip(f"{count} photos {description}{near}")
        if hidden and not count:
            self.results_view.set_empty_message(
                "No good matches", "“Show weaker” above lists the nearest photos anyway."
            )
        else:
            self.results_view.set_empty_message("No photos found", "Try another word, or check the spelling.")
        self.resultsShown.emit(count)

    def _say_what_was_found(self, found: SearchResult, description: str) -> None:
        """The line under the search box: words left out, no good matches, or nothing."""
        self._last_error_word = None
        if found.ignored_words:
            self._show_set_aside(found.ignored_words)
        elif found.hits and not found.good:
            near = (
                f" It comes nearest to {escape(', '.join(found.nearest_words))}."
                if found.nearest_words
                else ""
            )
            self.show_message(f"No good matches {escape(description)}.{near}")
        elif found.hits:
            self.hide_message()

    def show_weaker_matches(self) -> None:
        """Show the whole result list of the current search, weaker matches included."""
        if self._shown_search is None:
            return
        generation, description, found = self._shown_search
        if generation == self.results_model.generation:
            self._on_results(generation, description, found, weaker_too=True)

    def _show_set_aside(self, ignored: list[tuple[str, list[str]]]) -> None:
        """The words a query left out, under the box; the first one's spellings are links."""
        words = ", ".join(f"“{escape(word)}”" for word, _ in ignored)
        first, spellings = ignored[0]
        self._last_error_word = first
        verb = "is" if len(ignored) == 1 else "are"
        self.show_message(
            f"{words} {verb} not a word the model knows, so it was left out.", suggestions=spellings[:6]
        )
        self.wordsSetAside.emit([word for word, _ in ignored])

    def _on_search_error(self, generation: int, exc: BaseException) -> None:
        if generation != self.results_model.generation:
            return
        if isinstance(exc, QueryError):
            self._last_error_word = exc.word
            self.results_model.clear()  # old results under the message read as its answer
            shown = exc.message if exc.suggestions else _user_message(exc)  # the links offer them
            self.show_message(escape(shown), error=True, suggestions=exc.suggestions[:6])
            self.results_info.setText("")
            self.queryFailed.emit(_user_message(exc))
            return
        self.results_info.setText("")
        self.queryFailed.emit(_user_message(exc))
        self.show_error(exc)

    def _on_search_text_changed(self, text: str) -> None:
        if not text.strip():
            self.hide_message()

    def _update_results_info(self) -> None:
        if self.results_model.rowCount() == 0 and self._last_search is None:
            self.results_info.setText("")
            count = self._photo_count or 0
            self.results_view.set_empty_message(
                "What are you looking for?",
                f"Type a word above to search {count:,} photos: cat, beach, bicycle, coffee…".replace(
                    ",", " "
                )
                if count
                else "Add a folder of photos to start.",
            )

    # ---------------------------------------------------------------- pages
    def _update_page(self, force_results: bool = False) -> None:
        empty_library = self._photo_count == 0 and self._index_worker is None
        if empty_library and not force_results and self.results_model.rowCount() == 0:
            self.pages.setCurrentWidget(self.welcome_page)
        else:
            self.pages.setCurrentIndex(1)
        self._update_results_info()

    # ---------------------------------------------------------------- indexing
    def choose_folder(self) -> None:
        start = str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos", start)
        if folder:
            self.start_index([Path(folder)])

    def add_paths(self, paths: Sequence[Path]) -> None:
        """Index dropped folders, and the folders of dropped photos."""
        folders: list[Path] = []
        for path in paths:
            path = Path(path)
            folder = (
                path if path.is_dir() else path.parent if is_image_path(path) and path.is_file() else None
            )
            if folder is not None and folder not in folders:
                folders.append(folder)
        if not folders:
            self.statusBar().showMessage("Nothing to index there: drop folders or photos.", 6000)
            return
        self.start_index(folders)

    @property
    def indexing(self) -> bool:
        return self._index_worker is not None

    def start_index(self, folders: Sequence[Path] | None) -> Worker | None:
        """Index ``folders`` (None: rescan all the library's folders) on the indexing
        thread, queued if a run is going on."""
        folders = None if folders is None else [Path(folder) for folder in folders]
        names = "the library's folders" if folders is None else ", ".join(f.name or str(f) for f in folders)
        if self._index_worker is not None or self._learn_worker is not None:
            self._index_queue.append(folders)
            after = " (after learning)" if self._learn_worker is not None else ""
            self.statusBar().showMessage(f"Queued {names} for indexing{after}", 5000)
            return None
        cancel = threading.Event()

        def run() -> Iterator[IndexProgress]:
            if folders is None:
                return self.library.rescan(cancel=cancel)
            return self.library.index(folders, cancel=cancel)

        worker = Worker(run, cancel=cancel, coalesce_s=0.1, name="index")
        worker.signals.yielded.connect(self._on_index_progress)
        worker.signals.errored.connect(self._on_index_error)
        worker.signals.finished.connect(self._on_index_finished)
        self._index_worker = worker
        self._last_summary = None
        self._index_started = time.monotonic()
        self.index_label.setText(f"Looking for photos in {names}…")
        self.index_detail.setText("")
        self.index_progress.setRange(0, 0)
        self.index_cancel.setEnabled(True)
        self.cancel_action.setEnabled(True)
        self.index_panel.show()
        self._update_page(force_results=True)
        self._update_learn_action()
        self._index_pool.start(worker)
        return worker

    def cancel_indexing(self) -> None:
        if self._index_worker is not None:
            self._index_worker.cancel()
            self._index_queue.clear()
            self.index_label.setText("Cancelling… (finishing the current batch)")
            self.index_cancel.setEnabled(False)
            self.cancel_action.setEnabled(False)

    def _on_index_progress(self, progress: IndexProgress) -> None:
        total, done, phase = progress.total, progress.done, progress.phase
        if progress.finished:
            self._last_summary = progress.summary
            self.index_progress.setRange(0, max(total, 1))
            self.index_progress.setValue(max(total, 1))
            return
        if self._index_worker is not None and self._index_worker.cancelled:
            return
        if phase == "scanning" or total == 0:
            self.index_progress.setRange(0, 0)
            self.index_label.setText(f"Looking for photos… {done:,} found".replace(",", " "))
        else:
            self.index_progress.setRange(0, total)
            self.index_progress.setValue(done)
            self._set_title(f"Indexing {done * 100 // max(total, 1)}%")
            eta = progress.eta
            left = f" · about {format_duration(eta)} left" if eta is not None and done < total else ""
            self.index_label.setText(f"Indexing {done:,} of {total:,} photos{left}".replace(",", " "))
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
        self.index_detail.setText(" · ".join(parts))

    def _on_index_error(self, exc: BaseException) -> None:
        self._last_summary = None
        self.show_error(exc)

    def _on_index_finished(self) -> None:
        summary = self._last_summary
        self._index_worker = None
        self.index_panel.hide()
        self._set_title()
        self.cancel_action.setEnabled(False)
        if summary is not None:
            self.statusBar().showMessage(describe_summary(summary), 15000)
        self._update_learn_action()
        self.refresh_library()
        if self._last_search is not None:
            self._rerun_last_search()
        self.indexFinished.emit(summary)
        if self._index_queue:
            self.start_index(self._index_queue.pop(0))

    def cancel_running_job(self) -> None:
        """The progress panel's Cancel button: stop learning or indexing, whichever runs."""
        if self._learn_worker is not None:
            self.cancel_learning()
        else:
            self.cancel_indexing()

    def _rerun_last_search(self) -> None:
        if self._last_search is None:
            return
        kind, value = self._last_search
        if kind == "query":
            self.search(str(value))
        elif kind == "browse":
            self.browse()
        elif kind == "duplicates":
            self.show_duplicates()
        else:
            self.find_similar(Path(value))

    # ---------------------------------------------------------------- photos
    def selected_rows(self) -> list[int]:
        rows = sorted({index.row() for index in self.results_view.selectionModel().selectedIndexes()})
        if not rows:
            current = self.results_view.currentIndex()
            if current.isValid() and self.results_view.selectionModel().isSelected(current):
                rows = [current.row()]
        return rows

    def selected_paths(self) -> list[Path]:
        return [self.results_model.photo(row).path for row in self.selected_rows()]

    def current_row(self) -> int | None:
        current = self.results_view.currentIndex()
        if current.isValid() and self.results_view.selectionModel().isSelected(current):
            return current.row()
        rows = self.selected_rows()
        return rows[0] if rows else None

    def _update_actions(self) -> None:
        selected = len(self.results_view.selectionModel().selectedIndexes())
        for act in self.photo_actions:
            act.setEnabled(bool(selected))
        self.remove_photos_action.setEnabled(bool(selected))
        self.selected_label.setText(f"{selected} selected" if selected > 1 else "")

    def preview_current(self) -> None:
        row = self.current_row()
        if row is not None:
            self.preview_row(row)

    def preview_row(self, row: int) -> PreviewDialog | None:
        if not 0 <= row < self.results_model.rowCount():
            return None
        model = self.results_model
        dialog = PreviewDialog(self._image_pool, model.rowCount(), lambda r: model.photo(r).path, row, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._after_preview(dialog.row))
        self._preview_dialog = dialog
        dialog.open()
        return dialog

    def _after_preview(self, row: int) -> None:
        self._preview_dialog = None
        if 0 <= row < self.results_model.rowCount():
            index = self.results_model.index(row, 0)
            self.results_view.setCurrentIndex(index)
            self.results_view.scrollTo(index)

    def open_selected(self) -> None:
        for path in self.selected_paths()[:10]:
            if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
                self.show_message(
                    f"No program to open {escape(path.name)} with was found: set a default photo viewer "
                    "in your desktop's settings.",
                    error=True,
                )
                return

    def show_selected_in_folder(self) -> None:
        paths = self.selected_paths()
        if paths:
            show_in_folder(paths[0], self)

    def copy_selected_paths(self) -> None:
        paths = self.selected_paths()
        if paths:
            QGuiApplication.clipboard().setText("\n".join(str(path) for path in paths))

    def find_similar_to_current(self) -> None:
        row = self.current_row()
        if row is not None:
            self.find_similar(self.results_model.photo(row).path)

    def words_for_current(self) -> WordsDialog | None:
        row = self.current_row()
        if row is None:
            return None
        path = self.results_model.photo(row).path
        dialog = WordsDialog(path, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.set_thumbnail(
            self.results_model.data(self.results_model.index(row, 0), Qt.ItemDataRole.DecorationRole)
        )
        dialog.labelRequested.connect(lambda word: self.add_label(word, [path]))

        def search_word(word: str) -> None:
            dialog.close()
            self.search(word)

        dialog.searchRequested.connect(search_word)
        self.labelApplied.connect(dialog.mark_applied)
        self._words_dialog = dialog
        dialog.destroyed.connect(self._forget_words_dialog)
        applied = set(self._label_map.get(str(path), []))
        self.call(
            lambda: self.library.describe(path, top=12),
            lambda words: self._words_ready(dialog, words, applied),
            lambda exc: self._words_failed(dialog, exc),
        )
        dialog.show()
        return dialog

    def _forget_words_dialog(self) -> None:
        self._words_dialog = None

    def _words_ready(self, dialog: WordsDialog, words: list[Suggestion], applied: set[str]) -> None:
        if self._words_dialog is dialog:
            dialog.set_words(words, applied)

    def _words_failed(self, dialog: WordsDialog, exc: BaseException) -> None:
        if self._words_dialog is dialog:
            dialog.set_error(f"Could not describe this photo: {_user_message(exc)}")
        if isinstance(exc, ModelFileError):
            self.show_error(exc)

    # ---------------------------------------------------------------- labels
    def current_label_name(self) -> str | None:
        index = self.labels_view.currentIndex()
        return self.labels_model.data(index) if index.isValid() else None

    def create_label_from_edit(self) -> None:
        name = self.new_label_edit.text().strip()
        if not name:
            return
        self.new_label_completer.hide_popup()
        self.new_label_edit.clear()
        self.create_label(name)

    def create_label(self, name: str) -> None:
        self.call(lambda: self.library.create_label(name), lambda _: self.refresh_labels())

    def add_label(self, name: str, photos: Sequence[Path]) -> None:
        """Put label ``name`` on ``photos`` (creating it if needed)."""
        photos = [Path(photo) for photo in photos]
        if not photos:
            return

        def done(_result: object) -> None:
            noun = "photo" if len(photos) == 1 else "photos"
            self.statusBar().showMessage(f"Labeled {len(photos)} {noun} “{name}”", 5000)
            self.labelApplied.emit(name)
            self._after_label_change()

        self.call(lambda: self.library.add_label(name, photos), done)

    def remove_label(self, name: str, photos: Sequence[Path]) -> None:
        photos = [Path(photo) for photo in photos]

        def done(_result: object) -> None:
            noun = "photo" if len(photos) == 1 else "photos"
            self.statusBar().showMessage(f"Removed “{name}” from {len(photos)} {noun}", 5000)
            self._after_label_change()

        self.call(lambda: self.library.remove_label(name, photos), done)

    def delete_label(self, name: str, confirm: bool = True) -> None:
        if confirm:
            answer = QMessageBox.question(self, "Delete label", f"Delete the label “{name}” from all photos?")
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.call(lambda: self.library.delete_label(name), lambda _: self._after_label_change())

    def rename_label(self, name: str, new_name: str | None = None) -> None:
        """Give a label a new name (F2 in the Labels panel); asks for it when not given."""
        if new_name is None:
            new_name, ok = QInputDialog.getText(self, "Rename label", f"New name for “{name}”:", text=name)
            if not ok:
                return
        if new_name.strip() and new_name.strip() != name:
            self.call(lambda: self.library.rename_label(name, new_name), lambda _: self._after_label_change())

    def _delete_current_label(self) -> None:
        name = self.current_label_name()
        if name:
            self.delete_label(name)

    def _rename_current_label(self) -> None:
        name = self.current_label_name()
        if name:
            self.rename_label(name)

    def _after_label_change(self) -> None:
        self.refresh_labels()
        if self._last_search is None or self._last_search[0] != "query":
            return
        query = str(self._last_search[1])
        names = {name.lower() for name in self.labels_model.names()}
        if "label:" in query or query.strip().lower() in names:  # a label's name lists its photos first
            self._rerun_last_search()

    def _on_label_dropped_on_photo(self, name: str, row: int) -> None:
        """A label dragged onto the grid: the selection if dropped on it, else that photo."""
        rows = self.selected_rows()
        if row not in rows:
            rows = [row]
        self.add_label(name, [self.results_model.photo(r).path for r in rows])

    def _on_label_clicked(self, index: QModelIndex) -> None:
        name = self.labels_model.data(index)
        if name:
            self.search(label_query(name))

    # ---------------------------------------------------------------- learning from labels
    @property
    def learning(self) -> bool:
        return self._learn_worker is not None

    def learn_from_labels(self) -> Worker | None:
        """Teach the library's own head from its labels (``Library.learn``) on the
        indexing thread, so it never runs alongside an index run; searches go on."""
        if self._learn_worker is not None:
            return None
        if self._index_worker is not None:
            self.statusBar().showMessage("Indexing is going on: learn when it is done.", 6000)
            return None
        cancel = threading.Event()
        worker = Worker(lambda: self.library.learn(cancel=cancel), cancel=cancel, name="learn")
        worker.signals.yielded.connect(self._on_learn_progress)
        worker.signals.errored.connect(self._on_learn_error)
        worker.signals.finished.connect(self._on_learn_finished)
        self._learn_worker = worker
        self._learn_result = None
        self._learn_failed = False
        self._learn_started = time.monotonic()
        self._learn_fingerprint = self._labels_fingerprint()
        self.index_label.setText("Getting ready to learn from your labels…")
        self.index_detail.setText("Searching keeps working meanwhile.")
        self.index_progress.setRange(0, 0)
        self.index_cancel.setEnabled(True)
        self.index_panel.show()
        self._update_learn_action()
        self._index_pool.start(worker)
        return worker

    def cancel_learning(self) -> None:
        if self._learn_worker is not None:
            self._learn_worker.cancel()
            self.index_label.setText("Cancelling… the library stays as it was")
            self.index_cancel.setEnabled(False)

    def _on_learn_progress(self, progress: LearnProgress) -> None:
        if progress.finished:
            self._learn_result = progress.result
            self.index_progress.setRange(0, 1)
            self.index_progress.setValue(1)
            return
        if self._learn_worker is None or self._learn_worker.cancelled:
            return
        step, steps = progress.step, progress.steps
        if steps and step >= steps:
            self.index_label.setText("Updating every photo's vector and the search index…")
            self.index_progress.setRange(0, 0)
            return
        self.index_label.setText(f"Learning from your labels: step {step} of {steps}")
        self.index_progress.setRange(0, max(steps, 1))
        self.index_progress.setValue(step)
        self.index_detail.setText("searching keeps working meanwhile")

    def _on_learn_error(self, exc: BaseException) -> None:
        self._learn_failed = True
        self.show_error(exc)

    def _on_learn_finished(self) -> None:
        result = self._learn_result
        self._learn_worker = None
        self._learn_result = None
        self.index_panel.hide()
        self._update_learn_action()
        if result is not None:
            names = list(result.label_names)
            noun = "label" if len(names) == 1 else "labels"
            took = format_duration(time.monotonic() - self._learn_started)
            self.statusBar().showMessage(
                f"Learned {len(names)} {noun} in {took}: searches now use what the model learned.", 15000
            )
            self._refresh_learn_status(record=self._learn_fingerprint)
            self._rerun_last_search()
        elif not self._learn_failed:
            self.statusBar().showMessage("Learning cancelled: the library is as it was.", 8000)
        self.learnFinished.emit(result)
        if self._index_queue:
            self.start_index(self._index_queue.pop(0))

    def _update_learn_action(self) -> None:
        idle = self._learn_worker is None and self._index_worker is None
        self.learn_action.setEnabled(idle)

    # The panel says when the library last learned, and whether its labels changed since. The
    # head's time comes from the library; what the labels were then is remembered in the settings.
    def _learned_at_now(self) -> float | None:
        """Runs on the query thread: when the library's own head was last written, if ever."""
        return self.library.last_learned_at()

    def _refresh_learn_status(self, record: str | None = None) -> None:
        def done(learned_at: float | None) -> None:
            self._learned_at = learned_at
            if record is not None and learned_at is not None and self.settings is not None:
                self.settings.setValue(self._learn_settings_key(), f"{learned_at:.3f} {record}")
            self._update_learn_status()

        self.call(self._learned_at_now, done)

    def _learn_settings_key(self) -> str:
        digest = hashlib.sha1(str(Path(self.library.path).resolve()).encode()).hexdigest()[:12]
        return f"learned/{digest}"

    def _labels_fingerprint(self) -> str:
        items = sorted((path, sorted(names)) for path, names in self._label_map.items())
        return hashlib.sha1(repr(items).encode()).hexdigest()[:16]

    def labels_changed_since_learning(self) -> bool | None:
        """Whether the labels differ from those the head learned; None if unknown."""
        if self._learned_at is None or self.settings is None:
            return None
        recorded = str(self.settings.value(self._learn_settings_key(), "") or "").split()
        if len(recorded) != 2 or recorded[0] != f"{self._learned_at:.3f}":
            return None  # learned elsewhere (the command line), or before the app remembered it
        return recorded[1] != self._labels_fingerprint()

    def _update_learn_status(self) -> None:
        if self._learned_at is None:
            text = (
                "Not learned yet: Learn teaches the model your labels."
                if self._label_map
                else "Label some photos, then Learn teaches the model your labels."
            )
            tip = ""
        else:
            text = f"Learned {format_when(self._learned_at)}"
            if self.labels_changed_since_learning():
                text += " · labels changed since: learn again to use them"
            tip = time.strftime("Learned %Y-%m-%d %H:%M:%S", time.localtime(self._learned_at))
        self.learn_status.setText(text)
        self.learn_status.setToolTip(tip)

    # ---------------------------------------------------------------- exporting and importing labels
    def choose_export_file(self) -> None:
        start = str(Path.home() / f"{Path(self.library.path).name}-labels.json")
        path, _ = QFileDialog.getSaveFileName(self, "Export labels", start, "Labels (*.json);;All files (*)")
        if path:
            self.export_labels_to(Path(path))

    def choose_import_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import labels", str(Path.home()), "Labels (*.json);;All files (*)"
        )
        if path:
            self.import_labels_from(Path(path))

    def export_labels_to(self, path: Path) -> Worker:
        """Write every label and the paths of its photos to ``path`` (JSON), on the query thread."""
        path = Path(path)

        def work() -> tuple[int, int]:
            return self.library.export_labels_to(path)

        def done(counts: tuple[int, int]) -> None:
            labels, photos = counts
            message = (
                f"Exported {labels} label{'s' if labels != 1 else ''} "
                f"({photos} photo{'s' if photos != 1 else ''}) to {path.name}"
            )
            self.statusBar().showMessage(message, 10000)
            self.labelsTransferred.emit(message)

        return self.call(
            work, done, lambda exc: self._transfer_failed(exc, f"Could not export to {path.name}")
        )

    def import_labels_from(self, path: Path) -> Worker:
        """Put the labels of an exported file on this library's photos, on the query thread."""
        path = Path(path)

        def work() -> tuple[int, list[str]]:
            applied, missing = self.library.import_labels(path.read_bytes())
            return int(applied), [str(p) for p in missing]

        def done(result: tuple[int, list[str]]) -> None:
            applied, missing = result
            message = f"Imported {applied} label{'s' if applied != 1 else ''} from {path.name}"
            if missing:
                noun = "photo is" if len(missing) == 1 else "photos are"
                message += f"; {len(missing)} {noun} not in this library"
                shown = ", ".join(escape(Path(p).name) for p in missing[:3])
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                self.show_message(f"{escape(message)} ({shown}{more}).")
            self.statusBar().showMessage(message, 10000)
            self._after_label_change()
            self.labelsTransferred.emit(message)

        return self.call(work, done, lambda exc: self._transfer_failed(exc, f"Could not import {path.name}"))

    def _transfer_failed(self, exc: BaseException, prefix: str) -> None:
        if isinstance(exc, OSError):
            message = f"{prefix}: {exc.strerror or exc}"
        elif isinstance(exc, UnicodeError):
            message = f"{prefix}: not a labels file (not UTF-8 text)"
        else:
            self.show_error(exc)
            self.labelsTransferred.emit(_user_message(exc))
            return
        self.show_message(escape(message), error=True)
        self.statusBar().showMessage(message, 10000)
        self.labelsTransferred.emit(message)

    # ---------------------------------------------------------------- menus
    def _results_menu(self, position: Any) -> None:
        index = self.results_view.indexAt(position)
        if index.isValid() and not self.results_view.selectionModel().isSelected(index):
            self.results_view.setCurrentIndex(index)
        menu = self.build_photo_menu()
        if menu is not None:
            menu.exec(self.results_view.viewport().mapToGlobal(position))

    def build_photo_menu(self) -> QMenu | None:
        paths = self.selected_paths()
        if not paths:
            return None
        menu = QMenu(self)
        for act in (self.preview_action, self.open_action, self.show_folder_action):
            menu.addAction(act)
        menu.addSeparator()
        menu.addAction(self.similar_action)
        menu.addAction(self.words_action)
        menu.addSeparator()
        add_menu = menu.addMenu(icon("label"), "Add label")
        for name in self.labels_model.names():
            add_menu.addAction(name, functools.partial(self.add_label, name, paths))
        if self.labels_model.names():
            add_menu.addSeparator()
        add_menu.addAction("New label…", lambda: self._ask_new_label(paths))
        present = sorted(
            {name for path in paths for name in self._label_map.get(str(path), [])}, key=str.lower
        )
        remove_menu = menu.addMenu("Remove label")
        remove_menu.setEnabled(bool(present))
        for name in present:
            remove_menu.addAction(name, functools.partial(self.remove_label, name, paths))
        menu.addSeparator()
        menu.addAction(self.copy_path_action)
        menu.addAction(self.remove_photos_action)
        return menu

    def remove_selected_from_library(self, confirm: bool = True) -> None:
        """Take the selected photos out of the library, after asking; the files stay."""
        paths = self.selected_paths()
        if not paths:
            return
        if confirm:
            answer = QMessageBox.question(
                self,
                "Remove from library",
                f"Take {len(paths)} photo{'s' if len(paths) != 1 else ''} out of the library? "
                "The files stay where they are, and later rescans leave them out.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return

        def removed(count: int) -> None:
            self.statusBar().showMessage(
                f"Removed {count} photo{'s' if count != 1 else ''} from the library", 8000
            )
            self.refresh_library()
            self._rerun_last_search()
            self.photosRemoved.emit(count)

        self.call(lambda: self.library.remove_photos(paths), removed)

    def watch_library(self) -> None:
        """Follow the library's folders while the window is open (engine.watch): a
        first run brings the library up to date with what changed while it was
        closed, then changes on disk are indexed as they happen, and shown."""
        from devise_app.engine.watch import FolderWatcher

        def start(folders: list[Path]) -> None:
            present = [folder for folder in folders if folder.is_dir()]
            if not present or self._shut_down or self._watcher is not None:
                return
            self._watcher = FolderWatcher(self.library, present, on_run=self.watchRan.emit)
            self._watcher.start()

        self.watchRan.connect(self._on_watch_run)
        self.call(self.library.folders, start)

    def _on_watch_run(self, run: WatchRun) -> None:
        if run.error:
            self.statusBar().showMessage(f"Watching: {run.error}", 10000)
        elif run.changed and run.summary is not None:
            self.statusBar().showMessage(f"Folders changed: {describe_summary(run.summary)}", 10000)
            self.refresh_library()
            self._rerun_last_search()

    def show_duplicates(self) -> None:
        """The Duplicates view: every photo of each duplicate group, group after group
        (an exact group lists each copy), in the grid; select and remove the extras."""
        self._last_search = ("duplicates", "")
        self.search_box.clear()

        def groups() -> SearchResult:
            hits = [
                SearchHit(photo.photo_id, photo.path, group.similarity, 1, photo.taken_at)
                for group in self.library.duplicates()
                for photo in group.photos
            ]
            return SearchResult(hits, graded=False)

        self._start_search(groups, "in duplicate groups")

    def rescan_library(self) -> Worker | None:
        """Bring the library up to date with all its folders (Library ▸ Rescan library)."""
        return self.start_index(None)

    def _ask_new_label(self, paths: list[Path]) -> None:
        name, ok = QInputDialog.getText(self, "New label", f"Label for {len(paths)} photo(s):")
        if ok and name.strip():
            self.add_label(name.strip(), paths)

    def _labels_menu(self, position: Any) -> None:
        index = self.labels_view.indexAt(position)
        if not index.isValid():
            return
        name = self.labels_model.data(index)
        paths = self.selected_paths()
        menu = QMenu(self)
        menu.addAction(icon("search"), "Show photos", lambda: self.search(label_query(name)))
        put = menu.addAction(f"Put on {len(paths)} selected photo(s)", lambda: self.add_label(name, paths))
        put.setEnabled(bool(paths))
        take = menu.addAction(
            f"Remove from {len(paths)} selected photo(s)", lambda: self.remove_label(name, paths)
        )
        take.setEnabled(bool(paths))
        menu.addSeparator()
        menu.addAction("Rename…  (F2)", lambda: self.rename_label(name))
        menu.addAction(
            self.style().standardIcon(QStyle.StandardPixmap.SP_TrashIcon),
            "Delete label…  (Del)",
            lambda: self.delete_label(name),
        )
        menu.exec(self.labels_view.viewport().mapToGlobal(position))

    # ---------------------------------------------------------------- zoom
    def zoom(self, direction: int) -> None:
        self.zoom_slider.setValue(self.zoom_slider.value() + direction * ZOOM_STEP)

    def reset_zoom(self) -> None:
        self.zoom_slider.setValue(DEFAULT_SIZE)

    def _set_thumbnail_size(self, size: int) -> None:
        self.results_view.set_thumbnail_size(size)

    # ---------------------------------------------------------------- help
    def show_search_help(self) -> None:
        QMessageBox.information(
            self,
            "Search tips",
            "<p><b>Words</b>: <i>cat</i>, <i>sailboat</i>, <i>coffee cup</i>. Words that are not "
            "labels of any training photo work too, because the model knows which words are related.</p>"
            "<p><b>Arithmetic</b>: <i>king - man + woman</i>, <i>2*dog + beach</i>.</p>"
            "<p><b>Labels</b>: <i>label:holidays</i> finds the photos you labeled, "
            '<i>label:"two words"</i> for names with spaces. A label’s name alone (<i>Grandma</i>) '
            "lists its photos first, then the ones most like them; <i>label:Grandma + beach</i> "
            "mixes a label with words.</p>"
            "<p><b>Learn from labels</b> (Ctrl+Shift+L) teaches the model your labels, so they also "
            "find the photos you have not labelled.</p>"
            "<p><b>Similar photos</b>: drop a photo on the search box, "
            "or select one and press Ctrl+Shift+S.</p>",
        )

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About devise-app",
            "<h3>devise-app</h3><p>Search your own photos by meaning with a DeViSE visual-semantic "
            "embedding model. Everything runs on this computer.</p>"
            f"<p>Library: {escape(str(self.library.path))}</p>",
        )

    # ---------------------------------------------------------------- drag and drop onto the window
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
            self.add_paths(paths)
        else:
            event.ignore()

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
        self._index_queue.clear()
        if self._watcher is not None:
            self._watcher.stop(timeout=30)
            self._watcher = None
        self._index_pool.shutdown(30_000)
        self._query_pool.shutdown(30_000)
        self._image_pool.shutdown(10_000)
        self.results_model.loader.shutdown()
        self.library.close()


def describe_summary(summary: IndexSummary) -> str:
    parts = [f"{summary.indexed} new"]
    parts += [
        f"{value} {word}" for value, word in ((summary.moved, "moved"), (summary.removed, "removed")) if value
    ]
    if summary.skipped:
        parts.append(f"{len(summary.skipped)} could not be read")
    took = f" in {format_duration(summary.elapsed)}"
    if summary.cancelled:
        return f"Indexing cancelled{took} ({', '.join(parts)}); the rest is indexed next time."
    return f"Indexing done{took}: {', '.join(parts)}."


def replace_unknown_word(query: str, word: str | None, suggestion: str) -> str:
    """The query with ``word`` (the one a QueryError named) replaced by ``suggestion``."""
    if suggestion.lower().startswith("label:"):
        replaced = re.sub(r'(?i)label:(?:"[^"]*"|\S+)', lambda _m: suggestion, query, count=1)
        return replaced if replaced != query else suggestion
    if word:
        pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        if pattern.search(query):
            return pattern.sub(lambda _m: suggestion, query, count=1)
    return suggestion  # no idea which word was meant: the suggestion alone is a fair query


def show_in_folder(path: Path, parent: QWidget | None = None) -> None:
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

    def finished(code: int, _status: object) -> None:
        if code:
            QDesktopServices.openUrl(folder_url)
        process.deleteLater()

    def failed(_error: object) -> None:
        QDesktopServices.openUrl(folder_url)
        process.deleteLater()

    process.finished.connect(finished)
    process.errorOccurred.connect(failed)
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


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
