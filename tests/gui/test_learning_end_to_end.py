"""Learning from labels through the window, on the real library, model and photos.

The photos are scikit-image's samples plus three more views of chelsea.png (a
mirror image and two crops, saved as separate files): two views get an invented
label by drag and drop, the window learns, and the label finds the other views.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog, QFrame, QLabel, QMessageBox

from devise_app.engine import config
from devise_app.engine.labels import head_path
from devise_app.gui.models import Role

pytestmark = pytest.mark.skipif(
    not (config.models_dir() / "devise.onnx").is_file(), reason="the shipped model files are not there"
)

LABELLED = {"chelsea.png", "chelsea_mirror.png"}
UNLABELLED_VIEWS = {"chelsea_left.png", "chelsea_right.png"}


def _add_views(folder: Path) -> Path:
    cat = Image.open(folder / "chelsea.png").convert("RGB")
    w, h = cat.size
    ImageOps.mirror(cat).save(folder / "chelsea_mirror.png")
    cat.crop((0, 0, w * 3 // 4, h)).save(folder / "chelsea_left.png")
    cat.crop((w // 4, 0, w, h)).save(folder / "chelsea_right.png")
    return folder


@pytest.fixture
def library(tmp_path: Path) -> Any:
    from devise_app.engine.search import Library

    return Library(tmp_path / "library")


def _indexed_window(make_window: Any, library: Any, folder: Path, count: int, qtbot: Any) -> Any:
    window = make_window(library)
    with qtbot.waitSignal(window.indexFinished, timeout=60_000) as blocker:
        window.start_index([folder])
        assert not window.action("learn").isEnabled()  # never learns while indexing
    assert blocker.args[0].indexed == count
    qtbot.waitUntil(lambda: window.count_label.text() == f"{count} photos", timeout=10_000)
    assert window.action("learn").isEnabled()
    return window


def _names(window: Any) -> list[str]:
    model = window.results_model
    return [model.photo(row).path.name for row in range(model.rowCount())]


def _drop_on_label(window: Any, name: str, mime: QMimeData) -> None:
    view = window.labels_view
    target = view.visualRect(window.labels_model.index(window.labels_model.row_of(name), 0)).center()
    event = QDropEvent(
        QPointF(target),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    view.dropEvent(event)
    assert event.isAccepted()


def test_label_learn_search_and_apply_a_fitting_label(
    make_window: Any, library: Any, sample_photos: Path, tmp_path: Path, qtbot: Any, monkeypatch: Any
) -> None:
    folder = _add_views(sample_photos)
    window = _indexed_window(make_window, library, folder, 10, qtbot)
    assert window.labels.learn_status.text().startswith("Label some photos")

    # label two views of the cat by dragging them from the grid onto a new label
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        window.create_label("Zorblax")
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.search("cat")
    model = window.results_model
    rows = [_names(window).index(name) for name in sorted(LABELLED)]
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        _drop_on_label(window, "Zorblax", model.mimeData([model.index(row, 0) for row in rows]))
    assert ("Zorblax", 2) in library.labels()
    assert window.labels.learn_status.text().startswith("Not learned yet")

    # learn, off the GUI thread, with progress in the panel
    steps: list[int] = []
    window.jobs.panel.bar.valueChanged.connect(steps.append)
    with qtbot.waitSignal(window.learnFinished, timeout=120_000) as blocker:
        window.action("learn").trigger()
        assert window.jobs.panel.isVisible()
        assert not window.action("learn").isEnabled()
    learned = blocker.args[0]
    assert learned is not None and "Zorblax" in learned.label_names
    assert head_path(library.path).is_file()
    assert max(steps) >= 100
    assert not window.jobs.panel.isVisible()
    assert window.action("learn").isEnabled()
    assert "Learned 1 label" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.labels.learn_status.text() == "Learned just now", timeout=10_000)

    # the label's name lists its photos first, then the unlabelled views of the cat
    window.search_box.clear()
    window.search_box.setFocus()
    qtbot.keyClicks(window.search_box, "Zorblax")
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
    names = _names(window)
    first = window.results_view.visualRect(model.index(0, 0))
    assert window.results_view.indexAt(first.center()).row() == 0
    assert set(names[:2]) == LABELLED
    assert all(model.data(model.index(row, 0), Role.Labels) == ["Zorblax"] for row in (0, 1))
    assert set(names[2:4]) & UNLABELLED_VIEWS

    # "Words for this photo" on an unlabelled view: the label fits, first; one click applies it
    row = names.index(sorted(UNLABELLED_VIEWS & set(names[2:4]))[0])
    photo = model.photo(row).path
    window.results_view.setCurrentIndex(model.index(row, 0))
    dialog = window.photos.words_for_current()
    qtbot.waitUntil(lambda: len(dialog.label_suggestions()) > 0, timeout=30_000)
    assert dialog.label_suggestions() == ["Zorblax"]
    assert dialog.words(), "the model's words come after the user's labels"
    chip = dialog.findChild(QFrame, "labelChip")
    assert chip is not None
    qtbot.waitUntil(chip.isVisible, timeout=5_000)  # Qt shows widgets added to a shown dialog a bit later
    assert any("Zorblax" in label.text() for label in chip.findChildren(QLabel))
    button = dialog.button_for("Zorblax", is_label=True)
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert "Zorblax" in library.labels_of(photo)
    assert "label:Zorblax" not in library.labels_of(photo)
    assert not button.isEnabled()
    assert "labels changed since" in window.labels.learn_status.text()
    dialog.close()

    # export the labels, delete the label, import them back (one photo is not in the library)
    exported = tmp_path / "labels.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(exported), ""))
    with qtbot.waitSignal(window.labelsTransferred, timeout=30_000) as blocker:
        window.action("export_labels").trigger()
    assert blocker.args[0] == "Exported 1 label (3 photos) to labels.json"
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert len(document["labels"]["Zorblax"]) == 3
    document["labels"]["Zorblax"].append(str(tmp_path / "gone.png"))
    exported.write_text(json.dumps(document), encoding="utf-8")

    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        window.labels.delete_label("Zorblax")
    assert library.labels() == []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(exported), ""))
    with qtbot.waitSignal(window.labelsTransferred, timeout=30_000) as blocker:
        window.action("import_labels").trigger()
    assert blocker.args[0] == "Imported 1 label from labels.json; 1 photo is not in this library"
    assert library.labels() == [("Zorblax", 3)]
    assert "gone.png" in window.query_message.text()
    qtbot.waitUntil(lambda: window.labels_model.names() == ["Zorblax"], timeout=10_000)


def test_cancelling_learning_leaves_the_library_unchanged(
    make_window: Any, library: Any, sample_photos: Path, tmp_path: Path, qtbot: Any
) -> None:
    folder = tmp_path / "few"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        (folder / name).write_bytes((sample_photos / name).read_bytes())
    _add_views(folder)
    window = _indexed_window(make_window, library, folder, 5, qtbot)
    with qtbot.waitSignal(window.labelsUpdated, timeout=30_000):
        window.add_label("Zorblax", [folder / name for name in LABELLED])
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.search("Zorblax")
    before = _names(window)

    # press Cancel as soon as the first learning step shows in the panel
    seen: list[int] = []

    def cancel_at_first_step(value: int) -> None:
        seen.append(value)
        if value > 0:
            window.jobs.panel.cancel_button.click()

    window.jobs.panel.bar.valueChanged.connect(cancel_at_first_step)
    with qtbot.waitSignal(window.learnFinished, timeout=120_000) as blocker:
        window.labels.learn_from_labels()
    assert blocker.args[0] is None
    assert 0 < max(seen) < 300  # it stopped in the middle
    assert not head_path(library.path).exists()
    assert "cancelled" in window.statusBar().currentMessage()
    assert not window.jobs.panel.isVisible()
    assert window.action("learn").isEnabled()
    with qtbot.waitSignal(window.resultsShown, timeout=30_000):
        window.search("Zorblax")
    assert _names(window) == before


def test_learning_without_labels_says_so(
    make_window: Any, library: Any, qtbot: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    window = make_window(library)
    with qtbot.waitSignal(window.learnFinished, timeout=60_000) as blocker:
        window.action("learn").trigger()
    assert blocker.args[0] is None
    message = window.query_message.text()
    assert window.query_message.isVisible()
    assert "label some photos first" in message
    assert "label some photos first" in window.statusBar().currentMessage()
    assert "Traceback" not in message
    assert "Traceback" not in capfd.readouterr().err
    assert not window.jobs.panel.isVisible()
    assert window.action("learn").isEnabled()
    assert not head_path(library.path).exists()
