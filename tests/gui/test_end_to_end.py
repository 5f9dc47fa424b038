"""The real window on the real library, model and photos (scikit-image samples)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gui_support import drop, many_photos
from PySide6.QtCore import QMimeData, Qt, QUrl

from devise_app.engine import config
from devise_app.gui.models import Role

pytestmark = pytest.mark.skipif(
    not (config.models_dir() / "devise.onnx").is_file(), reason="the shipped model files are not there"
)


@pytest.fixture
def library(tmp_path: Path) -> Any:
    from devise_app.engine.search import Library

    return Library(tmp_path / "library")


@pytest.fixture
def window(make_window: Any, library: Any, sample_photos: Path, qtbot: Any) -> Any:
    window = make_window(library)
    assert window.pages.currentWidget() is window.welcome_page  # a new, empty library
    with qtbot.waitSignal(window.indexFinished, timeout=60_000) as blocker:
        window.start_index([sample_photos])
    assert blocker.args[0].indexed == 7
    qtbot.waitUntil(lambda: window.count_label.text() == "7 photos", timeout=10_000)
    return window


def _names(window: Any) -> list[str]:
    model = window.results_model
    return [model.photo(row).path.name for row in range(model.rowCount())]


def test_search_cat_shows_chelsea_in_the_first_cell(window: Any, qtbot: Any) -> None:
    assert window.provider_label.text() in ("CPU", "GPU (CUDA)")
    assert "devise" in window.model_label.text()
    assert window.indexed_label.text() == "Indexed just now"
    window.search_box.setFocus()
    qtbot.keyClicks(window.search_box, "cat")
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    first = window.results_view.visualRect(window.results_model.index(0, 0))
    assert window.results_view.indexAt(first.center()).row() == 0
    assert _names(window)[0] == "chelsea.png"
    assert "score" in window.results_model.data(window.results_model.index(0, 0), Qt.ItemDataRole.ToolTipRole)


def test_word_arithmetic_runs(window: Any, qtbot: Any) -> None:
    """No queen among the sample photos: the window says so, shows what the
    arithmetic landed near, and keeps the nearest photos one click away."""
    with qtbot.waitSignal(window.resultsShown, timeout=30_000) as blocker:
        window.search("king - man + woman")
    assert blocker.args[0] == 0
    assert "No good matches" in window.query_message.text()
    assert "queen" in window.results_info.text() and "Show 7 weaker" in window.results_info.text()
    with qtbot.waitSignal(window.resultsShown, timeout=10_000) as blocker:
        window.searching.show_weaker_matches()
    assert blocker.args[0] == 7


def test_the_header_says_what_a_query_asked_not_to_see(window: Any, qtbot: Any) -> None:
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.search("a room without a cat")
    assert "“a room without a cat” · a cat ranked lower" in window.results_info.text()


def test_unknown_word_is_reported_inline_with_suggestions(window: Any, qtbot: Any) -> None:
    with qtbot.waitSignal(window.queryFailed, timeout=30_000) as blocker:
        window.search('"caaat"')  # in quotes: searched as typed, so an unknown word
    assert "caaat" in blocker.args[0]
    assert window.query_message.isVisible()
    assert "Traceback" not in window.query_message.text()
    assert "suggest:cat" in window.query_message.text()
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.query_message.linkActivated.emit("suggest:cat")
    assert window.search_box.text() == '"cat"'
    assert _names(window)[0] == "chelsea.png"


def test_a_typo_is_searched_as_the_word_meant(window: Any, qtbot: Any) -> None:
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.search("caaat")
    assert _names(window)[0] == "chelsea.png"
    assert "Searched for “cat” instead of “caaat”" in window.query_message.text()


def test_label_by_drag_and_drop_then_search_with_label(window: Any, library: Any, qtbot: Any) -> None:
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        window.create_label("favourites")
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.search("coffee")
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.searching.show_weaker_matches()  # the whole ranking, not only the good matches
    model = window.results_model
    row = _names(window).index("coffee.png")
    mime = model.mimeData([model.index(row, 0), model.index((row + 1) % model.rowCount(), 0)])
    labels = window.labels_view
    target = labels.visualRect(
        window.labels_model.index(window.labels_model.row_of("favourites"), 0)
    ).center()
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        assert drop(labels.viewport(), target, mime).isAccepted()
    assert ("favourites", 2) in library.labels()
    qtbot.waitUntil(lambda: model.data(model.index(row, 0), Role.Labels) == ["favourites"], timeout=10_000)
    with qtbot.waitSignal(window.resultsShown, timeout=30_000) as blocker:
        window.search("label:favourites")
    assert blocker.args[0] == 2
    assert "coffee.png" in _names(window)


def test_dropping_a_photo_on_the_search_box_finds_similar(
    window: Any, sample_photos: Path, qtbot: Any
) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_photos / "chelsea.png"))])
    with qtbot.waitSignal(window.resultsShown, timeout=30_000) as blocker:
        assert drop(window.search_box, window.search_box.rect().center(), mime).isAccepted()
    assert blocker.args[0] == 6
    assert "chelsea.png" not in _names(window)


def test_words_for_a_photo_become_labels(window: Any, library: Any, qtbot: Any) -> None:
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.search("cat")
    window.results_view.setCurrentIndex(window.results_model.index(0, 0))
    dialog = window.photos.words_for_current()
    qtbot.waitUntil(lambda: len(dialog.words()) > 0, timeout=30_000)
    word = dialog.words()[0]
    assert any("cat" in w or "tabby" in w for w in dialog.words()[:5])
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        qtbot.mouseClick(dialog.button_for(word), Qt.MouseButton.LeftButton)
    chelsea = window.results_model.photo(0).path
    assert word in library.labels_of(chelsea)
    dialog.close()


def test_cancel_indexing(window: Any, sample_photos: Path, qtbot: Any) -> None:
    many = many_photos(sample_photos, sample_photos.parent / "many", 150)
    with qtbot.waitSignal(window.indexFinished, timeout=120_000) as blocker:
        window.start_index([many])
        qtbot.waitUntil(
            lambda: window.jobs.panel.bar.maximum() == 150 and window.jobs.panel.bar.value() > 0,
            timeout=60_000,
        )
        window.action("cancel").trigger()
    summary = blocker.args[0]
    assert summary.cancelled
    assert summary.indexed < 150
    assert not window.jobs.panel.isVisible()
    qtbot.waitUntil(lambda: window.count_label.text() == f"{7 + summary.indexed} photos", timeout=10_000)


def test_searching_keeps_working_while_indexing(window: Any, sample_photos: Path, qtbot: Any) -> None:
    """A search made while a run indexes 120 photos is answered (from the index as it
    was), and the run completes. That no library call blocks the GUI thread is
    checked by thread in tests/gui/test_window.py; how long the GUI thread stalls
    is a number for a benchmark, not a verdict for a test (it depends on the machine)."""
    many = many_photos(sample_photos, sample_photos.parent / "many", 120)
    answered: list[int] = []
    window.resultsShown.connect(answered.append)
    with qtbot.waitSignal(window.indexFinished, timeout=120_000) as blocker:
        window.start_index([many])
        window.search("animal")
        qtbot.waitUntil(lambda: bool(answered), timeout=60_000)
    assert blocker.args[0].indexed == 120
    assert answered[0] >= 1
