"""The main window on the real library, model and photos: flows, drag and drop,
errors, settings.

Tests that only need photos in the library open a copy of a library indexed once
per module (``indexed_window``); tests of indexing index through the window.
"""

from __future__ import annotations

import shutil
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gui_support import drop, files_held_open, many_photos
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtWidgets import QApplication

from devise_app.engine.search import Library, SearchResult
from devise_app.gui.models import LABEL_MIME, PHOTO_MIME, Role


def _grid_names(window: Any) -> list[str]:
    model = window.results_model
    return [model.data(model.index(row, 0)) for row in range(model.rowCount())]


def _indexed_copy(library: Library, photos: Path, folder: Path) -> Path:
    """A copy of ``photos`` in ``folder`` that ``library`` indexes too: this test's own
    files to change on disk."""
    shutil.copytree(photos, folder)
    deque(library.index([folder]), maxlen=1)
    return folder


def _index(window: Any, folder: Path, qtbot: Any) -> Any:
    """Index ``folder`` through the window; the run's summary."""
    with qtbot.waitSignal(window.indexFinished, timeout=60_000) as blocker:
        window.start_index([folder])
    return blocker.args[0]


def _record_threads(library: Library, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[int]]:
    """Spy on the real library: name -> the threads that called that method, or that
    opened the catalog, the model or the vocabulary (every method goes through them)."""
    seen: dict[str, set[int]] = defaultdict(set)

    def recorded(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            seen[name].add(threading.get_ident())
            return call(*args, **kwargs)

        return record

    for name in ("catalog", "encoder", "vocabulary"):
        monkeypatch.setattr(Library, name, property(recorded(name, getattr(Library, name).fget)))
    for name in ("index", "find", "photo_count", "last_indexed_at", "labels", "add_label", "describe"):
        monkeypatch.setattr(library, name, recorded(name, getattr(library, name)))
    return seen


def test_library_calls_never_run_on_the_gui_thread(
    make_window: Any, library: Library, sample_photos: Path, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _record_threads(library, monkeypatch)
    window = make_window(library)
    assert _index(window, sample_photos, qtbot).indexed == 7
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("cat")
    with qtbot.waitSignal(window.labelApplied, timeout=10_000):
        window.add_label("pets", [window.results_model.photo(0).path])
    window.results_view.setCurrentIndex(window.results_model.index(0, 0))
    dialog = window.photos.words_for_current()
    qtbot.waitUntil(lambda: len(dialog.words()) > 0, timeout=10_000)
    dialog.close()
    assert {"catalog", "encoder", "vocabulary", "index", "find", "add_label", "describe"} <= seen.keys()
    gui_thread = threading.get_ident()
    assert [name for name, threads in seen.items() if gui_thread in threads] == []


def test_first_start_shows_the_welcome_page(make_window: Any, library: Library) -> None:
    window = make_window(library)
    assert window.pages.currentWidget() is window.welcome_page
    assert window.count_label.text() == "0 photos"
    assert window.provider_label.text() == "CPU"
    assert "devise" in window.model_label.text()


def test_index_then_search_puts_the_cat_first(
    make_window: Any, library: Library, sample_photos: Path, qtbot: Any
) -> None:
    window = make_window(library)
    assert _index(window, sample_photos, qtbot).indexed == 7
    qtbot.waitUntil(lambda: window.count_label.text() == "7 photos", timeout=10_000)
    assert window.pages.currentIndex() == 1
    assert not window.jobs.panel.isVisible()
    assert "Indexing done" in window.statusBar().currentMessage()
    window.search_box.setText("cat")
    with qtbot.waitSignal(window.resultsShown, timeout=10_000) as blocker:
        qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    assert blocker.args[0] >= 1
    assert _grid_names(window)[0] == "chelsea.png"
    assert "for “cat”" in window.results_info.text()


def test_unknown_word_shows_an_inline_error_with_clickable_suggestions(
    indexed_window: Any, qtbot: Any
) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.queryFailed, timeout=10_000) as blocker:
        window.search('"kitteen"')  # in quotes: searched as typed, so an unknown word
    assert "kitteen" in blocker.args[0]
    assert window.query_message.isVisible()
    assert window.query_message.property("error") is True
    assert "suggest:kitten" in window.query_message.text()
    # clicking a suggestion replaces the unknown word and searches again
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.query_message.linkActivated.emit("suggest:kitten")
    assert window.search_box.text() == '"kitten"'
    assert not window.query_message.isVisible()
    assert _grid_names(window)[0] == "chelsea.png"


def test_empty_result_is_reported_inline(make_window: Any, library: Library, qtbot: Any) -> None:
    window = make_window(library)
    with qtbot.waitSignal(window.resultsShown, timeout=10_000) as blocker:
        window.search("dog")
    assert blocker.args[0] == 0
    assert window.query_message.isVisible()
    assert "No photos found" in window.query_message.text()
    assert "The library is empty" in window.query_message.text()


def test_stale_results_of_an_older_query_are_dropped(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    model = window.results_model
    old = model.new_generation()
    new = model.new_generation()
    assert old != new
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("coffee")
    before = _grid_names(window)
    window.searching.show_results(old, "stale", SearchResult([]))  # a late answer to an older query
    assert _grid_names(window) == before


def test_drag_photos_onto_a_label_then_find_them_with_label_query(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        window.create_label("pets")
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("animal")
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.searching.show_weaker_matches()  # the whole ranking, not only the good matches
    grid = window.results_view
    model = window.results_model
    rows = [
        row
        for row in range(model.rowCount())
        if model.data(model.index(row, 0)) in ("chelsea.png", "horse.png")
    ]
    assert len(rows) == 2
    mime = model.mimeData([model.index(row, 0) for row in rows])
    assert mime.hasFormat(PHOTO_MIME) and len(mime.urls()) == 2

    labels_view = window.labels_view
    target = labels_view.visualRect(window.labels_model.index(window.labels_model.row_of("pets"), 0)).center()
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        event = drop(labels_view.viewport(), target, mime)
    assert event.isAccepted()
    assert window.labels_model.data(window.labels_model.index(0, 0), Role.LabelCount) == 2
    # the grid shows the new label on the photos
    qtbot.waitUntil(lambda: model.data(model.index(rows[0], 0), Role.Labels) == ["pets"], timeout=5000)
    grid.viewport().repaint()

    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("label:pets")
    assert sorted(_grid_names(window)) == ["chelsea.png", "horse.png"]


def test_drag_a_label_onto_selected_photos(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    assert window.results_view.viewport().acceptDrops(), "a real drag lands on the viewport"
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("space")
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.searching.show_weaker_matches()  # the whole ranking, not only the good matches
    grid = window.results_view
    model = window.results_model
    assert model.rowCount() >= 2
    selection = grid.selectionModel()
    for row in (0, 1):
        selection.select(model.index(row, 0), selection.SelectionFlag.Select)
    mime = QMimeData()
    mime.setData(LABEL_MIME, b"sky")
    target = grid.visualRect(model.index(1, 0)).center()
    with qtbot.waitSignal(window.labelApplied, timeout=10_000):
        event = drop(grid.viewport(), target, mime)
    assert event.isAccepted()
    qtbot.waitUntil(lambda: window.labels_model.names() == ["sky"], timeout=5000)
    labelled = {model.photo(0).path.name, model.photo(1).path.name}
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("label:sky")
    assert set(_grid_names(window)) == labelled


def test_remove_a_label_from_the_context_menu(
    indexed_window: Any, indexed_library: Library, qtbot: Any
) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("cat")
    chelsea = window.results_model.photo(0).path
    assert chelsea.name == "chelsea.png"
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        window.add_label("pets", [chelsea])
    assert indexed_library.labels() == [("pets", 1)]
    window.results_view.setCurrentIndex(window.results_model.index(0, 0))
    menu = window.photos.build_menu()
    assert menu is not None
    remove_menu = next(a.menu() for a in menu.actions() if a.text() == "Remove label")
    action = next(a for a in remove_menu.actions() if a.text() == "pets")
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        action.trigger()
    assert indexed_library.labels() == [("pets", 0)]


def test_clicking_a_label_runs_its_search(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("coffee")
    coffee = window.results_model.photo(0).path
    assert coffee.name == "coffee.png"
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        window.add_label("morning", [coffee])
    index = window.labels_model.index(0, 0)
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        qtbot.mouseClick(
            window.labels_view.viewport(),
            Qt.MouseButton.LeftButton,
            pos=window.labels_view.visualRect(index).center(),
        )
    assert window.search_box.text() == "label:morning"
    assert _grid_names(window) == ["coffee.png"]


def test_dropping_a_photo_on_the_search_box_finds_similar(
    indexed_window: Any, indexed_photos: Path, qtbot: Any
) -> None:
    window = indexed_window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(indexed_photos / "horse.png"))])
    with qtbot.waitSignal(window.resultsShown, timeout=10_000) as blocker:
        event = drop(window.search_box, window.search_box.rect().center(), mime)
    assert event.isAccepted()
    assert blocker.args[0] == 6
    names = _grid_names(window)
    assert "horse.png" not in names and names[0] == "chelsea.png"  # the other animal
    assert "like horse.png" in window.results_info.text()


def test_dropping_a_folder_on_the_window_indexes_it(
    make_window: Any, library: Library, sample_photos: Path, qtbot: Any
) -> None:
    window = make_window(library)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_photos))])
    with qtbot.waitSignal(window.indexFinished, timeout=60_000) as blocker:
        drop(window, window.rect().center(), mime)
    assert blocker.args[0].indexed == 7
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 1, timeout=5000)


def test_dropping_photo_files_indexes_their_folder(
    make_window: Any, library: Library, sample_photos: Path, qtbot: Any
) -> None:
    window = make_window(library)
    assert window.pages.currentWidget() is window.welcome_page
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_photos / "coffee.png"))])
    with qtbot.waitSignal(window.indexFinished, timeout=60_000):
        drop(window, QPoint(5, 5), mime)
    assert library.photo_count() == 7


def test_cancel_indexing(make_window: Any, library: Library, sample_photos: Path, qtbot: Any) -> None:
    many = many_photos(sample_photos, sample_photos.parent / "many", 150)
    window = make_window(library)
    with qtbot.waitSignal(window.indexFinished, timeout=60_000) as blocker:
        window.start_index([many])
        qtbot.waitUntil(
            lambda: window.jobs.panel.bar.maximum() == 150 and window.jobs.panel.bar.value() > 0,
            timeout=30_000,
        )
        assert window.jobs.panel.isVisible()
        assert "Indexing" in window.jobs.panel.label.text()
        qtbot.mouseClick(window.jobs.panel.cancel_button, Qt.MouseButton.LeftButton)
    summary = blocker.args[0]
    assert summary.cancelled
    assert summary.indexed < 150
    assert not window.jobs.panel.isVisible()
    assert "cancelled" in window.statusBar().currentMessage()
    assert library.photo_count() == summary.indexed  # what was done is kept


def test_words_for_a_photo_apply_a_label_with_one_click(
    indexed_window: Any, indexed_library: Library, qtbot: Any
) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("coffee")
    window.results_view.setCurrentIndex(window.results_model.index(0, 0))
    dialog = window.photos.words_for_current()
    assert dialog is not None
    qtbot.waitUntil(lambda: "espresso" in dialog.words(), timeout=10_000)
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        qtbot.mouseClick(dialog.button_for("espresso"), Qt.MouseButton.LeftButton)
    assert not dialog.button_for("espresso").isEnabled()
    assert ("espresso", 1) in indexed_library.labels()
    dialog.close()


def test_preview_dialog_steps_through_results(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("animal")
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.searching.show_weaker_matches()  # the whole ranking, not only the good matches
    window.results_view.setCurrentIndex(window.results_model.index(0, 0))
    dialog = window.photos.preview_row(0)
    assert dialog is not None
    qtbot.waitUntil(
        lambda: dialog._image.pixmap() is not None and not dialog._image.pixmap().isNull(), timeout=10_000
    )
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    # keys go where the user's keys go: the widget that has the focus
    for key, row in ((Qt.Key.Key_Right, 1), (Qt.Key.Key_Space, 2), (Qt.Key.Key_Left, 1)):
        focused = QApplication.focusWidget() or dialog
        assert focused.window() is dialog
        qtbot.keyClick(focused, key)
        assert dialog.row == row, key
    dialog.reject()
    qtbot.waitUntil(lambda: window.results_view.currentIndex().row() == 1, timeout=5000)


def test_thumbnail_size_changes_with_the_keyboard_and_is_remembered(
    indexed_window: Any, settings: Any, tmp_path: Path
) -> None:
    window = indexed_window
    start = window.results_view.thumbnail_size
    window.action("zoom_in").trigger()
    assert window.results_view.thumbnail_size == start + 32
    window.action("zoom_out").trigger()
    window.action("zoom_out").trigger()
    assert window.results_view.thumbnail_size == start - 32
    window.save_settings()
    assert int(settings.value("view/thumbnail_size")) == start - 32
    assert Path(settings.fileName()).is_relative_to(tmp_path)


def test_search_box_completes_the_last_word(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    box = window.search_box
    box.setFocus()
    qtbot.keyClicks(box, "king - man + wom")
    options = box.word_completer.completions()
    assert "king - man + woman" in options
    assert all(option.startswith("king - man + wom") for option in options)
    box.clear()
    qtbot.keyClicks(box, "label:")
    assert box.word_completer.completions() == []  # no labels yet


def test_closing_the_window_stops_workers_and_closes_the_library(
    indexed_window: Any, indexed_library: Library, settings: Any, qtbot: Any
) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("cat")  # the catalog and the search index are open now
    assert files_held_open(indexed_library.path)
    window.close()
    assert window.calls.query_pool.active() == [] and window.calls.index_pool.active() == []
    assert files_held_open(indexed_library.path) == []
    assert settings.value("library/path") == str(indexed_library.path)


ODD_LABELS = {"C++": "coffee.png", "a+b": "rocket.jpg", "x(1)": "chelsea.png", "Mom & Dad": "astronaut.png"}


def test_labels_with_any_characters_open_and_are_found_by_name(
    make_window: Callable[..., Any], indexed_library: Library, indexed_photos: Path, qtbot: Any
) -> None:
    """Label names the query language would read as arithmetic or brackets reach the
    panel whole, and typing each name (or clicking it) finds its photo."""
    for name, photo in ODD_LABELS.items():
        indexed_library.add_label(name, [indexed_photos / photo])
    window = make_window(indexed_library)
    qtbot.waitUntil(lambda: sorted(window.labels_model.names()) == sorted(ODD_LABELS), timeout=10_000)
    assert window.count_label.text().endswith("photos")
    for name, photo in ODD_LABELS.items():
        with qtbot.waitSignal(window.resultsShown, timeout=10_000):
            window.search(name)
        assert _grid_names(window)[0] == photo, name
        assert window.query_message.isHidden() or not window.query_message.text()
        row = window.labels_model.row_of(name)
        with qtbot.waitSignal(window.resultsShown, timeout=10_000):
            qtbot.mouseClick(
                window.labels_view.viewport(),
                Qt.MouseButton.LeftButton,
                pos=window.labels_view.visualRect(window.labels_model.index(row, 0)).center(),
            )
        assert _grid_names(window) == [photo], name


def test_a_result_that_arrives_after_the_window_closed_is_dropped(
    make_window: Callable[..., Any], indexed_library: Library, qtbot: Any
) -> None:
    """A library call whose result is on its way to the GUI thread when the window
    closes must not reach the closed window's widgets."""
    window = make_window(indexed_library)
    go, emitted, reached, delivered = threading.Event(), threading.Event(), [], []

    def call() -> int:
        go.wait(30)
        return 1

    worker = window.calls.call(call, reached.append, reached.append)
    # runs on the worker thread right after the result was emitted (queued for the GUI thread)
    worker.signals.finished.connect(emitted.set, Qt.ConnectionType.DirectConnection)
    worker.signals.finished.connect(lambda: delivered.append(True))  # queued, after the result
    go.set()
    assert emitted.wait(30)
    window.close()
    qtbot.waitUntil(lambda: bool(delivered), timeout=10_000)
    assert reached == []


def test_a_long_query_or_message_never_widens_the_window(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    width = window.width()
    long_query = " ".join(["cat"] * 120) + " qqqzzzx " + "dog " * 5
    answered: list[object] = []
    window.resultsShown.connect(answered.append)
    window.queryFailed.connect(answered.append)
    window.search(long_query)  # results, or a message naming the unknown word
    qtbot.waitUntil(lambda: bool(answered), timeout=10_000)
    assert window.width() == width
    assert window.minimumSizeHint().width() <= width
    window.feedback.say("x" * 600, error=True)
    window.results_info.setText("y" * 600)
    assert window.minimumSizeHint().width() <= width


def test_suggestions_for_a_misspelt_word_are_offered_once(indexed_window: Any, qtbot: Any) -> None:
    from devise_app.engine.errors import QueryError

    window = indexed_window
    window.searching.on_error(
        window.results_model.generation, QueryError("Unknown word 'caaat'.", ["cat", "coat"], word="caaat")
    )
    text = window.query_message.text()
    assert text.count("coat") == 2  # the link's target and its text, once
    assert "Did you mean" not in text


def test_the_title_names_the_library_once_and_shows_indexing_progress(
    make_window: Callable[..., Any], library: Library, photo_dir: Path, qtbot: Any
) -> None:
    window = make_window(library)
    name = f"{library.path.parent.name}/library"  # "library" alone would say nothing
    assert window.windowTitle() == name  # Qt adds " — devise-app" itself
    titles: list[str] = []
    window.windowTitleChanged.connect(titles.append)
    _index(window, photo_dir, qtbot)
    assert any(title.startswith("Indexing ") and title.endswith(f"% · {name}") for title in titles)
    assert window.windowTitle() == name


def test_a_typo_is_read_as_the_word_meant_and_can_be_searched_as_typed(
    indexed_window: Any, qtbot: Any
) -> None:
    window = indexed_window
    set_aside: list[list[str]] = []
    window.wordsSetAside.connect(set_aside.append)
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("a cup of espreso on a table")
    assert _grid_names(window)[0] == "coffee.png"
    message = window.query_message.text()
    assert "Searched for “espresso” instead of “espreso”" in message and 'href="as-typed:"' in message
    assert set_aside == []
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.query_message.linkActivated.emit("as-typed:")  # what a click on "Search as typed" does
    assert window.search_box.text() == "a cup of espreso on a table"  # the query is left as it was
    assert set_aside == [["espreso"]]
    message = window.query_message.text()
    assert "“espreso” is not a word the model knows" in message and 'href="suggest:espresso"' in message
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.query_message.linkActivated.emit("suggest:espresso")
    assert window.search_box.text() == "a cup of espresso on a table"
    assert "espreso" not in window.query_message.text()


def test_the_library_shows_its_photos_before_any_query_and_sorts_and_filters(
    make_window: Callable[..., Any], indexed_library: Library, indexed_photos: Path, qtbot: Any
) -> None:
    indexed_library.add_label("pets", [indexed_photos / "chelsea.png", indexed_photos / "horse.png"])
    window = make_window(indexed_library, wait=False)
    with qtbot.waitSignal(window.resultsShown, timeout=30_000) as shown:
        window.show()
    everything = indexed_library.photo_count()
    assert shown.args[0] == everything  # every photo, newest first, with no query typed
    newest = [photo.path.name for photo in indexed_library.browse("date")]
    assert _grid_names(window) == newest

    bar = window.browse_bar
    bar.sort_box.setCurrentIndex(bar.sort_box.findData("name"))
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        bar.changed.emit()
    assert _grid_names(window) == sorted(newest, key=str.lower)

    qtbot.waitUntil(lambda: bar.label_box.findData("pets") > 0, timeout=10_000)
    bar.label_box.setCurrentIndex(bar.label_box.findData("pets"))
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        bar.changed.emit()
    assert _grid_names(window) == ["chelsea.png", "horse.png"]
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("cat")  # the filter combines with a query
    assert set(_grid_names(window)) <= {"chelsea.png", "horse.png"}
    assert _grid_names(window)[0] == "chelsea.png"


def test_rescan_picks_up_new_and_deleted_photos_and_remove_takes_photos_out(
    make_window: Callable[..., Any],
    indexed_library: Library,
    indexed_photos: Path,
    qtbot: Any,
    tmp_path: Path,
) -> None:
    """Library ▸ Rescan library and the photo menu's "Remove from library…"."""
    photos = _indexed_copy(indexed_library, indexed_photos, tmp_path / "own-photos")
    before = indexed_library.photo_count()
    window = make_window(indexed_library)
    (photos / "coffee.png").unlink()  # deleted on disk
    shutil.copy(photos / "rocket.jpg", photos / "rocket-again.jpg")  # a new copy
    with qtbot.waitSignal(window.indexFinished, timeout=60_000) as finished:
        window.action("rescan").trigger()
    assert finished.args[0].removed == 1
    assert indexed_library.photo_count() == before - 1 + 1
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("missile")
    window.results_view.selectionModel().select(
        window.results_model.index(0, 0), window.results_view.selectionModel().SelectionFlag.ClearAndSelect
    )
    gone = window.results_model.photo(0).path
    assert window.action("remove_photos") in window.photos.build_menu().actions()
    with qtbot.waitSignal(window.photosRemoved, timeout=10_000) as removed:
        window.photos.remove_selected(confirm=False)
    assert removed.args[0] == 1
    assert gone.exists(), "the file stays"
    assert all(hit.path != gone for hit in indexed_library.search("missile", top=50))


def test_labels_are_renamed_with_f2_and_deleted_with_del(
    indexed_window: Any,
    indexed_library: Library,
    indexed_photos: Path,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    window = indexed_window
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        window.add_label("pets", [indexed_photos / "chelsea.png"])
    window.labels_view.setCurrentIndex(window.labels_model.index(0, 0))
    window.labels_view.setFocus()
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("Our pets", True))
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        qtbot.keyClick(window.labels_view, Qt.Key.Key_F2)
    assert window.labels_model.names() == ["Our pets"]
    assert [hit.path.name for hit in indexed_library.search("label:Our pets", top=3)] == ["chelsea.png"]
    window.labels_view.setCurrentIndex(window.labels_model.index(0, 0))
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        qtbot.keyClick(window.labels_view, Qt.Key.Key_Delete)
    assert window.labels_model.names() == []


def test_the_status_bar_says_how_many_photos_are_selected(indexed_window: Any, qtbot: Any) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.searching.browse()
    selection = window.results_view.selectionModel()
    for row in (0, 1, 2):
        selection.select(window.results_model.index(row, 0), selection.SelectionFlag.Select)
    assert window.selected_label.text() == "3 selected"
    selection.clearSelection()
    assert window.selected_label.text() == ""


def test_the_window_follows_its_folders_while_open(
    make_window: Callable[..., Any],
    indexed_library: Library,
    indexed_photos: Path,
    qtbot: Any,
    tmp_path: Path,
) -> None:
    photos = _indexed_copy(indexed_library, indexed_photos, tmp_path / "watched")
    window = make_window(indexed_library)
    runs: list[Any] = []
    window.watchRan.connect(runs.append)
    window.watch_library()
    qtbot.waitUntil(lambda: len(runs) >= 1, timeout=60_000)  # the first run: what changed while closed
    count = indexed_library.photo_count()
    from PIL import Image

    with Image.open(photos / "coffee.png") as coffee:  # a new photo, not a copy (copies show once)
        coffee.convert("RGB").crop((0, 0, 300, 300)).save(photos / "coffee-crop.png")
    (photos / "rocket.jpg").unlink()

    def followed() -> bool:
        paths = {path.name for path in indexed_library.photo_labels()} | {
            hit.path.name for hit in indexed_library.browse("name", folder=photos)
        }
        return "coffee-crop.png" in paths and "rocket.jpg" not in paths

    qtbot.waitUntil(followed, timeout=60_000)  # however the watcher grouped the two changes
    qtbot.waitUntil(lambda: any(run.changed for run in runs), timeout=10_000)
    assert indexed_library.photo_count() == count  # one copy in, one photo out
    qtbot.waitUntil(lambda: window.count_label.text() == f"{count} photos", timeout=10_000)
    window.close()  # stops the watcher
    assert window._watcher is None


def test_exact_copies_show_once_with_their_count(
    make_window: Callable[..., Any],
    indexed_library: Library,
    indexed_photos: Path,
    qtbot: Any,
    tmp_path: Path,
) -> None:
    from devise_app.gui.models import Role

    copies = tmp_path / "copies"
    copies.mkdir()
    for n in range(3):
        shutil.copy(indexed_photos / "coffee.png", copies / f"coffee-{n}.png")
    deque(indexed_library.index([copies]), maxlen=1)
    window = make_window(indexed_library)
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.search("espresso")
    model = window.results_model
    names = _grid_names(window)
    assert sum(name.startswith("coffee") for name in names) == 1  # four files, one photo
    row = next(row for row, name in enumerate(names) if name.startswith("coffee"))
    assert model.data(model.index(row, 0), Role.Copies) == 4
    assert "4 identical copies" in model.data(model.index(row, 0), Qt.ItemDataRole.ToolTipRole)
    window.results_view.viewport().repaint()  # the "×4" chip is painted without error


def test_the_duplicates_view_lists_each_group(
    make_window: Callable[..., Any],
    indexed_library: Library,
    indexed_photos: Path,
    qtbot: Any,
    tmp_path: Path,
) -> None:
    from PIL import Image

    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(indexed_photos / "coffee.png", extra / "coffee-copy.png")  # an exact copy
    with Image.open(indexed_photos / "chelsea.png") as cat:  # a re-saved, smaller one
        cat.convert("RGB").resize((cat.width // 2, cat.height // 2)).save(
            extra / "chelsea-small.jpg", quality=80
        )
    deque(indexed_library.index([extra]), maxlen=1)
    window = make_window(indexed_library)
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.action("duplicates").trigger()
    names = _grid_names(window)
    assert {"coffee.png", "coffee-copy.png"} <= set(names)
    assert {"chelsea.png", "chelsea-small.jpg"} <= set(names)
    assert "in duplicate groups" in window.results_info.text()
