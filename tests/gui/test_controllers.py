"""The window's parts tested alone, against a stand-in for the library
(tests/gui/stand_in.py): settings, actions, jobs, search, labels, photo actions,
and the window assembled from them."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, QSettings, Qt
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMainWindow, QToolBar
from stand_in import StandInLibrary, StandInWords

from devise_app.engine.check import Finding
from devise_app.engine.indexer import IndexProgress
from devise_app.engine.learning import LearnProgress
from devise_app.engine.search import SearchResult
from devise_app.gui.actions import (
    ACTIONS,
    MENUS,
    PHOTO_MENU_BOTTOM,
    PHOTO_MENU_TOP,
    TOOLBAR,
    ActionSpec,
    build_actions,
    handler,
)
from devise_app.gui.calls import Calls, Feedback, MessageLine
from devise_app.gui.delegate import DEFAULT_SIZE, MAX_SIZE
from devise_app.gui.jobs import JobsController, index_step, learn_step
from devise_app.gui.labels_panel import LabelsController
from devise_app.gui.library_care import LibraryCare, report_text
from devise_app.gui.models import ResultsModel
from devise_app.gui.photo_actions import PhotoActions
from devise_app.gui.searching import SearchController
from devise_app.gui.settings import LearnRecord, WindowSettings
from devise_app.gui.text import window_title
from devise_app.gui.views import ResultsView

WAIT = 10_000


@dataclass
class Host:
    window: QMainWindow
    feedback: Feedback
    calls: Calls

    def status(self) -> str:
        return self.window.statusBar().currentMessage()

    @property
    def line(self) -> MessageLine:
        return self.feedback.line


@pytest.fixture
def stand_in(tmp_path: Path) -> StandInLibrary:
    return StandInLibrary(tmp_path)


@pytest.fixture
def host(qtbot: Any) -> Iterator[Host]:
    """What the controllers need of a window: a parent, a status bar, the message line, the pools."""
    window = QMainWindow()
    qtbot.addWidget(window)
    line = MessageLine()
    window.setCentralWidget(line)
    feedback = Feedback(line, window.statusBar(), window)
    calls = Calls(feedback.show_error, window)
    yield Host(window, feedback, calls)
    calls.shutdown()


@pytest.fixture
def jobs(host: Host, stand_in: StandInLibrary) -> JobsController:
    return JobsController(stand_in, host.calls, host.feedback, host.window)


@pytest.fixture
def searching(host: Host, stand_in: StandInLibrary) -> Iterator[SearchController]:
    model = ResultsModel(parent=host.window)
    view = ResultsView(host.window)
    view.setModel(model)
    controller = SearchController(stand_in, host.calls, host.feedback, model, view, host.window)
    controller.photo_count = len(stand_in.photos)
    yield controller
    model.loader.shutdown()


@pytest.fixture
def labels(
    host: Host, stand_in: StandInLibrary, jobs: JobsController, settings: QSettings
) -> LabelsController:
    return LabelsController(stand_in, host.calls, host.feedback, jobs, settings, host.window)


@pytest.fixture
def photos(
    host: Host, stand_in: StandInLibrary, labels: LabelsController, searching: SearchController, qtbot: Any
) -> PhotoActions:
    controller = PhotoActions(
        stand_in, host.calls, host.feedback, searching.view, labels, searching, host.window
    )
    controller.actions = {spec.id: QAction(spec.text, host.window) for spec in ACTIONS}
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.browse()
    return controller


def _names(model: ResultsModel) -> list[str]:
    return [model.photo(row).path.name for row in range(model.rowCount())]


def _select(photos: PhotoActions, *rows: int) -> None:
    selection = photos.view.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(photos.model.index(row, 0), QItemSelectionModel.SelectionFlag.Select)


# ---------------------------------------------------------------- settings
def test_settings_are_read_back_as_they_were_saved(settings: QSettings) -> None:
    assert WindowSettings.load(settings) == WindowSettings()
    saved = WindowSettings(library_path="/photos/lib", thumbnail_size=200, geometry=b"\x01\x02", state=b"s")
    saved.save(settings)
    assert WindowSettings.load(QSettings(settings.fileName(), QSettings.Format.IniFormat)) == saved
    assert settings.value("view/thumbnail_size") == 200  # the keys older versions wrote


def test_settings_of_the_wrong_type_fall_back_to_the_defaults(settings: QSettings) -> None:
    settings.setValue("view/thumbnail_size", "huge")
    settings.setValue("window/geometry", "not bytes")
    settings.setValue("library/path", 42)
    loaded = WindowSettings.load(settings)
    assert (loaded.thumbnail_size, loaded.geometry, loaded.library_path) == (DEFAULT_SIZE, b"", "")
    settings.setValue("view/thumbnail_size", " 99999 ")
    assert WindowSettings.load(settings).thumbnail_size == MAX_SIZE


def test_a_learn_record_is_kept_per_library(settings: QSettings, tmp_path: Path) -> None:
    one, other = tmp_path / "one", tmp_path / "other"
    LearnRecord(12.5, "abc").save(settings, one)
    assert LearnRecord.load(settings, one) == LearnRecord(12.5, "abc")
    assert LearnRecord.load(settings, other) is None
    assert LearnRecord(12.5, "abc").matches(12.5004) and not LearnRecord(12.5, "abc").matches(13.0)
    settings.setValue(LearnRecord.key(other), "not-a-time abc")
    assert LearnRecord.load(settings, other) is None


# ---------------------------------------------------------------- actions
def test_menus_and_toolbar_name_only_declared_actions() -> None:
    ids = [spec.id for spec in ACTIONS]
    assert len(ids) == len(set(ids))
    listed = [item for menu in MENUS for item in menu.items] + list(
        TOOLBAR + PHOTO_MENU_TOP + PHOTO_MENU_BOTTOM
    )
    assert {item for item in listed if item != "-"} - set(ids) == {"labels_panel"}  # the dock's own toggle
    assert set(ids) <= set(listed)  # every action is in a menu, the toolbar or the photo menu


def test_an_action_calls_its_handler_and_says_what_it_does(qtbot: Any, host: Host) -> None:
    class Target:
        def __init__(self) -> None:
            self.calls = 0
            self.part = self

        def go(self) -> None:
            self.calls += 1

    target = Target()
    spec = ActionSpec("go", "Go on…", "part.go", ("Ctrl+G",))
    actions = build_actions(host.window, target, [spec])
    actions["go"].trigger()
    assert target.calls == 1
    assert actions["go"].toolTip() == "Go on" and actions["go"].shortcut().toString() == "Ctrl+G"
    with pytest.raises(AttributeError):
        handler(target, ActionSpec("bad", "Bad", "part.missing"))


# ---------------------------------------------------------------- jobs
def test_progress_items_become_what_the_panel_shows() -> None:
    scanning = IndexProgress("scanning", 1500, 1500, 0, 0, 0, 0, 0, None, 1.0, None)
    assert (index_step(scanning).text, index_step(scanning).total) == ("Looking for photos… 1 500 found", 0)
    indexing = IndexProgress("indexing", 5, 10, 4, 1, 0, 0, 0, Path("/p/cat.png"), 2.0, 90.0)
    step = index_step(indexing)
    assert (step.done, step.total, step.title) == (5, 10, "Indexing 50%")
    assert step.text == "Indexing 5 of 10 photos · about 1 min 30 s left"
    assert step.detail == "4 new · 1 unchanged · cat.png"
    assert learn_step(LearnProgress(2, 8, 0.3)).text == "Learning from your labels: step 2 of 8"
    last = learn_step(LearnProgress(8, 8, 0.1))
    assert last.total == 0 and "search index" in last.text


def test_an_index_run_shows_its_progress_then_its_summary(
    jobs: JobsController, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    titles: list[str] = []
    jobs.titleChanged.connect(titles.append)
    jobs.start_index([stand_in.photos_dir])
    assert jobs.running == "index" and not jobs.panel.isHidden()
    assert jobs.panel.label.text() == "Looking for photos in photos…"
    with qtbot.waitSignal(jobs.indexFinished, timeout=WAIT) as finished:
        stand_in.gate.open()
    assert finished.args[0].indexed == 3
    assert jobs.running is None and jobs.panel.isHidden()
    assert host.status().startswith("Indexing done")
    assert any(title.startswith("Indexing ") for title in titles) and titles[-1] == ""
    index_threads = [thread for name, thread in stand_in.calls if name == "index"]
    assert index_threads and threading.get_ident() not in index_threads


def test_indexing_waits_for_learning_and_learning_never_starts_beside_indexing(
    jobs: JobsController, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    assert jobs.learn() is not None
    assert jobs.learn() is None  # one run at a time
    assert jobs.start_index([stand_in.photos_dir]) is None
    assert host.status() == "Queued photos for indexing (after learning)"
    order: list[str] = []
    jobs.learnFinished.connect(lambda result: order.append(f"learned {result.label_names}"))
    with qtbot.waitSignal(jobs.indexFinished, timeout=WAIT):
        stand_in.gate.open()  # learning ends, then the queued index run goes
    assert order == ["learned ['pets']"]
    stand_in.gate.event.clear()
    jobs.start_index(None)
    assert jobs.learn() is None
    assert host.status() == "Indexing is going on: learn when it is done."
    with qtbot.waitSignal(jobs.indexFinished, timeout=WAIT):
        stand_in.gate.open()
    assert stand_in.called("rescan")


def test_cancelling_a_job_goes_the_same_way_for_both_kinds(
    jobs: JobsController, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    jobs.learn()
    jobs.cancel()
    assert jobs.cancelling and not jobs.panel.cancel_button.isEnabled()
    assert jobs.panel.label.text() == "Cancelling… the library stays as it was"
    with qtbot.waitSignal(jobs.learnFinished, timeout=WAIT) as finished:
        stand_in.gate.open()
    assert finished.args[0] is None
    assert host.status() == "Learning cancelled: the library is as it was."
    assert stand_in.last_cancel is not None and stand_in.last_cancel.is_set()
    stand_in.gate.event.clear()
    jobs.start_index([stand_in.photos_dir])
    jobs.cancel()
    assert jobs.panel.label.text() == "Cancelling… (finishing the current batch)"
    with qtbot.waitSignal(jobs.indexFinished, timeout=WAIT) as finished:
        stand_in.gate.open()
    assert finished.args[0].cancelled and host.status().startswith("Indexing cancelled")


# ---------------------------------------------------------------- search
def test_a_query_shows_its_good_matches_then_the_weaker_ones(searching: SearchController, qtbot: Any) -> None:
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT) as shown:
        searching.search("cat")
    assert shown.args == [1] and _names(searching.model) == ["cat.png"]
    assert searching.info.text().startswith('<a href="weaker">Show 2 weaker</a> · 1 photo for “cat”')
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.show_weaker_matches()
    assert _names(searching.model)[0] == "cat.png" and len(_names(searching.model)) == 3


def test_an_unknown_word_offers_spellings_and_a_click_uses_one(
    searching: SearchController, host: Host, qtbot: Any
) -> None:
    with qtbot.waitSignal(searching.queryFailed, timeout=WAIT):
        searching.search("a cot")  # neither a word nor a photo of the stand-in
    host.window.show()
    assert host.line.isVisible() and host.line.property("error") is True
    assert 'href="suggest:cat"' not in host.line.text()  # "a cot" is unknown as a whole
    with qtbot.waitSignal(searching.queryFailed, timeout=WAIT):
        searching.search("cot")
    assert 'href="suggest:cat"' in host.line.text() and 'href="suggest:coffee"' in host.line.text()
    assert searching.model.rowCount() == 0
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        host.line.linkActivated.emit("suggest:coffee")
    assert searching.box.text() == "coffee" and _names(searching.model) == ["coffee.png"]
    assert not host.line.isVisible()


def test_a_late_answer_to_an_older_search_is_dropped(searching: SearchController, qtbot: Any) -> None:
    older = searching.model.new_generation()
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.search("horse")
    searching.show_results(older, "stale", SearchResult([]))
    assert _names(searching.model) == ["horse.png"]


def test_an_empty_query_browses_and_every_view_can_be_shown_again(
    searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT) as shown:
        searching.search("  ")
    assert shown.args == [3] and "in the library" in searching.info.text()
    cat = stand_in.photos[0]
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.find_similar(cat)
    assert "like cat.png" in searching.info.text() and "cat.png" not in _names(searching.model)
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.rerun()
    assert [name for name, _ in stand_in.calls].count("similar") == 2
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.show_duplicates()
    assert _names(searching.model) == ["cat.png", "coffee.png"] and searching.shown is not None
    assert searching.shown.kind == "duplicates"


def test_back_shows_again_what_the_grid_showed_before(
    searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    backs: list[bool] = []
    searching.backChanged.connect(backs.append)
    cat = stand_in.photos[0]
    steps = [
        lambda: searching.browse(),
        lambda: searching.search("coffee"),
        lambda: searching.find_similar(cat),  # also what a photo dropped on the box does
        lambda: searching.show_duplicates(),
        lambda: searching.search("label:pets"),  # what a click on a label does
    ]
    assert not searching.can_go_back
    for step in steps:
        with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
            step()
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.rerun()  # the same view again is not one to go back to
    assert [shown.kind for shown in searching.history] == ["browse", "query", "similar", "duplicates"]
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.go_back()
    assert searching.shown.kind == "duplicates" and _names(searching.model) == ["cat.png", "coffee.png"]
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.go_back()
    assert searching.shown.kind == "similar" and "like cat.png" in searching.info.text()
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.go_back()
    assert searching.box.text() == "coffee" and _names(searching.model) == ["coffee.png"]
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.go_back()
    assert searching.shown.kind == "browse" and searching.box.text() == "" and searching.model.rowCount() == 3
    assert not searching.can_go_back and backs[-1] is False
    searching.go_back()  # nothing to go back to: nothing happens
    assert searching.shown.kind == "browse"

    for word in ["cat", "coffee", "horse"] * 10:  # the list is short
        with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
            searching.search(word)
    assert len(searching.history) == 20 and searching.history[-1] == searching.history[-4]


def test_back_follows_a_renamed_label_and_skips_a_deleted_one(
    searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    stand_in.label_photos["pets"] = {stand_in.photos[0]}
    for query in ("label:pets", "cat"):
        with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
            searching.search(query)
    stand_in.rename_label("pets", "Our pets")
    searching.label_renamed("pets", "Our pets")
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.go_back()
    assert searching.box.text() == 'label:"Our pets"' and _names(searching.model) == ["cat.png"]
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.search("cat")
    searching.label_renamed("Our pets", "")  # deleted
    assert not searching.can_go_back


def test_the_header_shows_the_photo_the_grid_is_like(
    searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    cat = stand_in.photos[0]
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.find_similar(cat)
    assert "photos like cat.png" in searching.info.text()
    assert not searching.query_photo.isHidden() and str(cat) in searching.query_photo.toolTip()
    qtbot.waitUntil(lambda: not searching.query_photo.pixmap().isNull(), timeout=WAIT)
    assert max(searching.query_photo.pixmap().width(), searching.query_photo.pixmap().height()) <= 28
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.search("cat")
    assert searching.query_photo.isHidden()


def test_the_library_is_browsed_a_page_at_a_time_and_the_header_says_so(
    searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    """1,407 photos: the header says the true count and that the grid holds the newest
    1,000 of them; "Show 407 more" adds the rest below, keeping the grid's place."""
    stand_in.photos += [stand_in.photos_dir / f"p{i:04}.png" for i in range(1404)]
    searching.photo_count = len(stand_in.photos)
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT) as shown:
        searching.browse()
    assert shown.args == [1000] and searching.model.rowCount() == 1000
    assert searching.info.text() == (
        '<a href="more">Show 407 more</a> · The newest 1 000 of 1 407 photos in the library'
    )
    assert _names(searching.model)[0] == "p1403.png"  # the stand-in's newest is its last
    searching.view.setCurrentIndex(searching.model.index(700, 0))
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT) as shown:
        searching.info.linkActivated.emit("more")
    assert shown.args == [1407] and searching.model.rowCount() == 1407
    assert searching.view.currentIndex().row() == 700
    assert searching.info.text() == "1 407 photos in the library"
    assert len(set(_names(searching.model))) == 1407
    searching.show_more()  # nothing more: nothing changes
    assert searching.model.rowCount() == 1407


def test_show_more_adds_one_page_at_a_time_in_the_order_asked(
    searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    for name in ("dog.png", "kitten.png", "rocket.png"):
        stand_in.add_photo(name)
    searching.page_size = 2
    searching.browse_bar.sort_box.setCurrentIndex(searching.browse_bar.sort_box.findData("name"))
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.browse()
    assert _names(searching.model) == ["cat.png", "coffee.png"]
    assert searching.info.text().startswith('<a href="more">Show 2 more</a> · The first 2 of 6 photos')
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.show_more()
    assert _names(searching.model) == ["cat.png", "coffee.png", "dog.png", "horse.png"]
    assert searching.info.text().startswith('<a href="more">Show 2 more</a> · The first 4 of 6 photos')
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.search("cat")  # a query is not paged, and a late "more" does nothing to it
    searching.show_more()
    assert _names(searching.model) == ["cat.png"] and "more" not in searching.info.text()


def test_a_label_change_shows_again_only_a_query_about_labels(
    searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.search("cat")
    finds = [name for name, _ in stand_in.calls].count("find")
    searching.labels_changed(["pets"])
    assert [name for name, _ in stand_in.calls].count("find") == finds
    stand_in.add_label("pets", [stand_in.photos[2]])
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.search("label:pets")
    stand_in.add_label("pets", [stand_in.photos[0]])
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.labels_changed(["pets"])
    assert sorted(_names(searching.model)) == ["cat.png", "horse.png"]


def test_the_search_box_completes_words_and_label_names(searching: SearchController, qtbot: Any) -> None:
    searching.set_words(StandInWords(), lambda: ["pets", "Grandma"])
    qtbot.addWidget(searching.box)
    searching.box.show()
    qtbot.keyClicks(searching.box, "dog + c")  # from a word's first letter
    assert searching.box.word_completer.completions() == ["dog + cat", "dog + coffee"]
    qtbot.keyClicks(searching.box, "o")
    assert searching.box.word_completer.completions() == ["dog + coffee"]
    searching.box.clear()
    qtbot.keyClicks(searching.box, "label:gr")
    assert searching.box.word_completer.completions() == ["label:Grandma"]


# ---------------------------------------------------------------- labels
def test_labels_are_made_put_on_photos_and_read_back(
    labels: LabelsController, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    cat = stand_in.photos[0]
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.create_label("pets")
    assert labels.names() == ["pets"] and labels.labels_of(cat) == []
    with qtbot.waitSignals([labels.labelApplied, labels.labelsChanged, labels.labelsUpdated], timeout=WAIT):
        labels.add_label("pets", [cat])
    assert labels.labels_of(cat) == ["pets"] and stand_in.label_photos["pets"] == {cat}
    assert host.status() == "Labeled 1 photo “pets”"
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.remove_label("pets", [cat])
    assert labels.labels_of(cat) == [] and stand_in.labels() == [("pets", 0)]
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.rename_label("pets", "Our pets")
    assert labels.names() == ["Our pets"]
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.delete_label("Our pets", confirm=False)
    assert labels.names() == []


def test_a_clicked_label_asks_for_its_photos(labels: LabelsController, qtbot: Any) -> None:
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.create_label("Mom & Dad")
    with qtbot.waitSignal(labels.searchRequested, timeout=WAIT) as asked:
        labels.view.clicked.emit(labels.model.index(0, 0))
    assert asked.args == ['label:"Mom & Dad"']


def test_the_panel_says_when_it_learned_and_whether_labels_changed_since(
    labels: LabelsController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    labels.refresh_learn_status()
    qtbot.waitUntil(lambda: labels.learn_status.text().startswith("Label some photos"), timeout=WAIT)
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.add_label("pets", [stand_in.photos[0]])
    assert labels.learn_status.text().startswith("Not learned yet")
    assert labels.learn_from_labels() is not None
    stand_in.gate.open()
    qtbot.waitUntil(lambda: labels.learn_status.text().startswith("Learned"), timeout=WAIT)
    assert labels.labels_changed_since_learning() is False
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.add_label("pets", [stand_in.photos[1]])
    assert labels.labels_changed_since_learning() is True
    assert labels.learn_status.text().endswith("labels changed since: learn again to use them")


def test_labels_are_exported_and_imported_with_one_line_of_outcome(
    labels: LabelsController, host: Host, stand_in: StandInLibrary, qtbot: Any, tmp_path: Path
) -> None:
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.add_label("pets", [stand_in.photos[0]])
    file = tmp_path / "labels.tsv"
    with qtbot.waitSignal(labels.labelsTransferred, timeout=WAIT) as exported:
        labels.export_labels_to(file)
    assert exported.args == ["Exported 1 label (1 photo) to labels.tsv"]
    stand_in.label_photos.clear()
    file.write_text(file.read_text() + "\npets\t/elsewhere/gone.png")
    with qtbot.waitSignal(labels.labelsTransferred, timeout=WAIT) as imported:
        labels.import_labels_from(file)
    assert imported.args == ["Imported 1 label from labels.tsv; 1 photo is not in this library"]
    assert "(gone.png)" in host.line.text()
    with qtbot.waitSignal(labels.labelsTransferred, timeout=WAIT) as failed:
        labels.import_labels_from(tmp_path / "missing.json")
    assert failed.args[0].startswith("Could not import missing.json: ")
    assert host.line.property("error") is True


# ---------------------------------------------------------------- photo actions
def test_photo_actions_follow_the_selection(
    photos: PhotoActions, stand_in: StandInLibrary, qtbot: Any
) -> None:
    counted: list[int] = []
    photos.selectionCounted.connect(counted.append)
    photos.update_enabled()
    assert not photos.actions["preview"].isEnabled() and not photos.actions["remove_photos"].isEnabled()
    assert photos.actions["add_folder"].isEnabled()  # not a photo action
    _select(photos, 0, 2)
    assert photos.actions["preview"].isEnabled() and photos.actions["remove_photos"].isEnabled()
    assert counted[-1] == 2
    assert photos.selected_paths() == [photos.model.photo(0).path, photos.model.photo(2).path]
    photos.copy_paths()
    assert QGuiApplication.clipboard().text().splitlines() == [str(path) for path in photos.selected_paths()]


def test_the_photo_menu_offers_the_labels_of_the_selection(
    photos: PhotoActions, labels: LabelsController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    row = _names(photos.model).index("cat.png")
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.add_label("pets", [photos.model.photo(row).path])
    _select(photos, row)
    menu = photos.build_menu()
    assert menu is not None
    submenus = {action.text(): action.menu() for action in menu.actions() if action.menu() is not None}
    assert [a.text() for a in submenus["Add label"].actions() if a.text()] == ["pets", "New label…"]
    take = next(a for a in submenus["Remove label"].actions() if a.text() == "pets")
    assert photos.actions["remove_photos"] in menu.actions()
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        take.trigger()
    assert stand_in.label_photos["pets"] == set()
    _select(photos)
    assert photos.build_menu() is None  # nothing selected, no menu


def test_removing_photos_and_finding_similar_ones(
    photos: PhotoActions, searching: SearchController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    _select(photos, 1)
    first = photos.model.photo(1).path
    photos.view.setCurrentIndex(photos.model.index(1, 0))
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        photos.find_similar()
    assert searching.shown is not None and searching.shown.value == str(first)
    _select(photos, 0)
    gone = photos.model.photo(0).path
    with qtbot.waitSignal(photos.photosRemoved, timeout=WAIT) as removed:
        photos.remove_selected(confirm=False)
    assert removed.args == [1] and gone not in stand_in.photos


def test_words_for_a_photo_come_from_the_library(
    photos: PhotoActions, stand_in: StandInLibrary, qtbot: Any
) -> None:
    _select(photos, 0)
    photos.view.setCurrentIndex(photos.model.index(0, 0))
    dialog = photos.words_for_current()
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.words() == [photos.model.photo(0).path.stem, "animal"], timeout=WAIT)
    dialog.close()


def test_photos_go_to_the_trash_or_a_clear_message_says_why_not(
    photos: PhotoActions, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    _select(photos, 0)
    first = photos.model.photo(0).path
    stand_in.trash_works = False
    with qtbot.waitSignal(photos.photosRemoved, timeout=WAIT) as removed:
        photos.remove_selected(confirm=False, trash=True)
    assert removed.args == [0] and first in stand_in.photos
    assert host.line.text().startswith("Could not move the files to the trash (cannot move ")
    assert host.line.property("error") is True and host.status() == "Nothing was moved to the trash"
    stand_in.trash_works = True
    with qtbot.waitSignal(photos.photosRemoved, timeout=WAIT) as removed:
        photos.remove_selected(confirm=False, trash=True)
    assert removed.args == [1] and stand_in.trashed == [first] and first not in stand_in.photos
    assert stand_in.kept_out == []  # trashed: nothing to keep out of later scans
    assert host.status() == "Removed 1 photo from the library and moved to the trash"


def test_removing_photos_asks_first_with_a_trash_box(
    photos: PhotoActions, stand_in: StandInLibrary, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devise_app.gui.photo_actions as photo_actions

    asked: list[str] = []
    answer = (False, True)
    monkeypatch.setattr(
        photo_actions, "ask_to_remove", lambda _parent, _title, question, trash: asked.append(trash) or answer
    )
    _select(photos, 0, 1)
    photos.remove_selected()
    assert asked == ["Also move the files to the trash"]
    assert not stand_in.called("remove_photos")  # cancelled
    answer = (True, True)
    with qtbot.waitSignal(photos.photosRemoved, timeout=WAIT) as removed:
        photos.remove_selected()
    assert removed.args == [2] and len(stand_in.trashed) == 2


# ---------------------------------------------------------------- library care
@pytest.fixture
def care(host: Host, stand_in: StandInLibrary, jobs: JobsController) -> LibraryCare:
    return LibraryCare(stand_in, host.calls, host.feedback, jobs, host.window)


def _rows(widget: Any) -> list[str]:
    return [widget.item(row).text() for row in range(widget.count())]


def test_the_folders_dialog_removes_a_folder_after_asking(
    care: LibraryCare, stand_in: StandInLibrary, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import devise_app.gui.library_care as library_care

    dialog = care.show_folders()
    qtbot.waitUntil(lambda: _rows(dialog.folders) == [str(stand_in.photos_dir)], timeout=WAIT)
    assert _rows(dialog.excluded) == ["(nothing)"]
    assert not dialog.remove_button.isEnabled() and not dialog.include_button.isEnabled()
    dialog.folders.item(0).setSelected(True)
    assert dialog.remove_button.isEnabled() and dialog.exclude_button.isEnabled()
    monkeypatch.setattr(library_care, "ask_to_remove", lambda *args: (False, False))
    dialog.remove_button.click()
    assert not stand_in.called("remove_folder")  # cancelled
    monkeypatch.setattr(library_care, "ask_to_remove", lambda *args: (True, False))
    with qtbot.waitSignal(care.changed, timeout=WAIT) as changed:
        dialog.remove_button.click()
    assert changed.args == [3] and stand_in.photos == [] and stand_in.roots == []
    qtbot.waitUntil(lambda: _rows(dialog.folders) == [], timeout=WAIT)
    dialog.close()


def test_a_sub_folder_is_kept_out_and_let_back_in_with_a_rescan(
    care: LibraryCare, jobs: JobsController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    sub = stand_in.photos_dir / "screenshots"
    sub.mkdir()
    stand_in.photos.append(sub / "shot.png")
    dialog = care.show_folders()
    with qtbot.waitSignal(care.changed, timeout=WAIT) as changed:
        care.exclude_folder(sub)
    assert changed.args == [1] and stand_in.excluded() == [sub]
    qtbot.waitUntil(lambda: _rows(dialog.excluded) == [str(sub)], timeout=WAIT)
    dialog.excluded.item(0).setSelected(True)
    assert dialog.include_button.isEnabled()
    with qtbot.waitSignal(care.changed, timeout=WAIT):
        dialog.include_button.click()
    assert stand_in.excluded() == [] and jobs.running == "index"  # the rescan brings it back
    with qtbot.waitSignal(jobs.indexFinished, timeout=WAIT):
        stand_in.gate.open()
    assert stand_in.called("rescan")
    qtbot.waitUntil(lambda: _rows(dialog.excluded) == ["(nothing)"], timeout=WAIT)
    dialog.close()


def test_check_library_runs_off_the_gui_thread_and_reports(
    care: LibraryCare, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    stand_in.findings = (Finding("vectors", "vectors not of the head in use", 4, True),)
    assert care.check_library(show=False) is not None
    assert care.check_library(show=False) is None  # one at a time
    assert host.status() == "Checking the library… (searching keeps working)"  # the gate holds it
    with qtbot.waitSignal(care.checked, timeout=WAIT) as checked:
        stand_in.gate.open()
    report = checked.args[0]
    assert report.sound and host.status() == "Library checked: 1 problem found"
    gui_thread = threading.get_ident()
    assert all(thread != gui_thread for call, thread in stand_in.calls if call == "check")
    text = report_text(report)
    assert text.startswith("Checked 3 photos, 3 stored vectors and 0 labels.")
    assert "• vectors: vectors not of the head in use (4, mended)" in text
    assert text.endswith("Everything found was mended.")
    qtbot.waitUntil(lambda: care.checking is None, timeout=WAIT)
    stand_in.findings = ()
    with qtbot.waitSignal(care.checked, timeout=WAIT) as checked:
        care.check_library(show=False)
    assert report_text(checked.args[0]).endswith("Nothing is wrong with this library.")


def test_check_library_waits_for_indexing(
    care: LibraryCare, jobs: JobsController, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    jobs.rescan()
    assert care.check_library(show=False) is None
    assert host.status().startswith("Indexing or learning is going on")
    with qtbot.waitSignal(jobs.indexFinished, timeout=WAIT):
        stand_in.gate.open()


# ---------------------------------------------------------------- undo
def _undo(labels: LabelsController, qtbot: Any, redo: bool = False) -> None:
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        (labels.undo_stack.redo if redo else labels.undo_stack.undo)()


def test_undo_takes_a_label_off_only_the_photos_that_did_not_carry_it(
    labels: LabelsController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    cat, _coffee, horse = stand_in.photos
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.add_label("pets", [cat])
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.add_label("pets", [cat, horse])  # a drop of two photos; cat had it already
    assert labels.undo_stack.undoText() == "Label 1 photo “pets”"
    _undo(labels, qtbot)
    assert stand_in.label_photos["pets"] == {cat}
    _undo(labels, qtbot)  # the first: the label was new, so it goes
    assert "pets" not in stand_in.label_photos and not labels.undo_stack.canUndo()
    _undo(labels, qtbot, redo=True)
    _undo(labels, qtbot, redo=True)
    assert stand_in.label_photos["pets"] == {cat, horse}


def test_undo_brings_back_a_deleted_label_with_its_photos_and_a_renamed_ones_name(
    labels: LabelsController, stand_in: StandInLibrary, qtbot: Any
) -> None:
    cat, coffee, horse = stand_in.photos
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.add_label("pets", [cat, horse])
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.rename_label("pets", "Our pets")
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.remove_label("Our pets", [horse, coffee])  # coffee never had it
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.delete_label("Our pets", confirm=False)
    assert stand_in.label_photos == {}
    assert labels.undo_stack.undoText() == "Delete label “Our pets”"
    _undo(labels, qtbot)
    assert stand_in.label_photos == {"Our pets": {cat}} and labels.names() == ["Our pets"]
    _undo(labels, qtbot)
    assert stand_in.label_photos == {"Our pets": {cat, horse}}
    _undo(labels, qtbot)
    assert stand_in.label_photos == {"pets": {cat, horse}} and labels.names() == ["pets"]
    _undo(labels, qtbot, redo=True)
    assert labels.names() == ["Our pets"]


def test_a_change_that_failed_is_not_put_on_the_undo_stack(
    labels: LabelsController, host: Host, stand_in: StandInLibrary, qtbot: Any
) -> None:
    with qtbot.waitSignal(labels.labelsUpdated, timeout=WAIT):
        labels.create_label("pets")
    assert labels.undo_stack.count() == 0  # making a label is not undone
    labels.rename_label("nothing", "else")
    qtbot.waitUntil(lambda: host.line.text() == "no label named 'nothing'", timeout=WAIT)
    assert labels.undo_stack.count() == 0


# ---------------------------------------------------------------- the window on the stand-in
def test_the_window_assembles_its_parts_on_the_stand_in(
    make_window: Any, stand_in: StandInLibrary, qtbot: Any
) -> None:
    window = make_window(stand_in)
    qtbot.waitUntil(lambda: window.results_model.rowCount() == 3, timeout=WAIT)
    assert window.count_label.text() == "3 photos" and window.provider_label.text() == "CPU"
    for spec in ACTIONS:
        assert callable(handler(window, spec)), spec.id
        assert window.action(spec.id).text() == spec.text
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.search("coffee")
    assert _names(window.results_model) == ["coffee.png"]
    gui_thread = threading.get_ident()
    assert stand_in.calls and all(thread != gui_thread for _, thread in stand_in.calls)
    # the vocabulary's completion index is built before the first keystroke, off the GUI thread
    assert stand_in.words.completed_on and stand_in.words.completed_on[0] != gui_thread
    window.close()
    assert stand_in.closed


def test_the_window_goes_back_with_its_action_its_shortcut_and_the_mouse(
    make_window: Any, stand_in: StandInLibrary, qtbot: Any
) -> None:
    window = make_window(stand_in)
    qtbot.waitUntil(lambda: window.results_model.rowCount() == 3, timeout=WAIT)
    back = window.action("back")
    assert not back.isEnabled() and back.shortcut().toString() == "Alt+Left"
    assert back in window.findChild(QToolBar, "mainToolBar").actions()
    for query in ("cat", "coffee", "horse"):
        with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
            window.search(query)
    assert back.isEnabled()
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        back.trigger()
    assert window.search_box.text() == "coffee"
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        QTest.mouseClick(window.results_view.viewport(), Qt.MouseButton.BackButton)
    assert window.search_box.text() == "cat"
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        back.trigger()
    assert window.searching.shown.kind == "browse" and not back.isEnabled()
    window.close()


def test_the_title_names_a_library_by_its_folder_and_the_default_one_not_at_all(
    make_window: Any, tmp_path: Path, qtbot: Any
) -> None:
    from devise_app.engine.config import default_library_dir

    default = default_library_dir()
    assert (
        window_title(default, default) == ""
        and window_title(default, default, "Indexing 59%") == "Indexing 59%"
    )
    assert window_title(Path("/home/me/Pictures"), default) == "Pictures"
    assert window_title(Path("/home/me/Pictures"), default, "Indexing 5%") == "Indexing 5% · Pictures"
    assert window_title(Path("/media/usb/library"), default) == "usb/library"  # "library" alone says nothing

    pictures = StandInLibrary(tmp_path / "Pictures")
    pictures.path = tmp_path / "Pictures"
    assert make_window(pictures).windowTitle() == "Pictures"  # Qt adds " — devise-app"

    own = StandInLibrary(tmp_path / "own")
    own.path = default
    window = make_window(own)
    assert window.windowTitle() == ""  # the window is then called "devise-app" alone
    titles: list[str] = []
    window.windowTitleChanged.connect(titles.append)
    with qtbot.waitSignal(window.indexFinished, timeout=WAIT):
        window.start_index([own.photos_dir])
        own.gate.open()
    assert titles and all(re.fullmatch(r"Indexing \d+%", title) for title in titles[:-1]) and titles[-1] == ""
    window.close()


def test_a_shown_label_follows_its_rename_and_its_undo_and_is_left_when_deleted(
    make_window: Any, stand_in: StandInLibrary, qtbot: Any
) -> None:
    window = make_window(stand_in)
    with qtbot.waitSignal(window.labelsUpdated, timeout=WAIT):
        window.add_label("pets", [stand_in.photos[0]])
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.search("label:pets")
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.labels.rename_label("pets", "Our pets")
    assert window.searching.shown.value == 'label:"Our pets"' and _names(window.results_model) == ["cat.png"]
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.action("undo").trigger()
    assert window.searching.shown.value == "label:pets" and _names(window.results_model) == ["cat.png"]
    with qtbot.waitSignal(window.resultsShown, timeout=WAIT):
        window.labels.delete_label("pets", confirm=False)
    assert window.searching.shown.kind == "browse" and not window.query_message.isVisible()
    window.close()


# ---------------------------------------------------------------- completion
def test_completion_offers_common_words_and_labels_not_rare_near_spellings(vocabulary: Any) -> None:
    from devise_app.gui.views import CommonWords, expression_completions

    stand_in = CommonWords(StandInWords())
    assert stand_in.complete("dog") == ["dog", "dogs"]  # "dogs": a plural of a common word
    assert stand_in.complete("great") == ["great white shark"]  # a class name
    labels = ["Doggy daycare", "pets"]
    assert expression_completions("dog", stand_in.complete, lambda: labels) == [
        "Doggy daycare",
        "dog",
        "dogs",
    ]
    assert (
        expression_completions("cat + dog", stand_in.complete, lambda: labels)[0]
        == 'cat + label:"Doggy daycare"'
    )
    real = expression_completions("dog", CommonWords(vocabulary).complete, lambda: [])
    assert "dogs" in real and not {"dogg", "doggett", "dogan"} & set(real)
    assert "sunset" in CommonWords(vocabulary).complete("suns")


def test_the_example_words_above_the_empty_grid_run_their_search(
    searching: SearchController, qtbot: Any
) -> None:
    searching.update_empty_message()
    assert 'href="search:cat"' in searching.info.text()
    with qtbot.waitSignal(searching.resultsShown, timeout=WAIT):
        searching.info.linkActivated.emit("search:cat")
    assert searching.box.text() == "cat" and _names(searching.model) == ["cat.png"]
    searching.model.clear()
    searching.update_empty_message()  # once something was searched, no examples
    assert "search:" not in searching.info.text()
