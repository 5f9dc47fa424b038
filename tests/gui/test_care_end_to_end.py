"""Library care and undo in the window, on the real library: a folder removed, photos
moved to the system trash (send2trash, into this test's own XDG trash), the check
with its report, and Ctrl+Z after a label was deleted."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
from gui_support import many_photos
from PySide6.QtCore import QItemSelectionModel, Qt

from devise_app.engine.search import Library
from devise_app.gui.library_care import report_text


def _select_names(window: Any, *names: str) -> list[Path]:
    model, selection = window.results_model, window.results_view.selectionModel()
    selection.clearSelection()
    chosen = []
    for row in range(model.rowCount()):
        if model.photo(row).path.name in names:
            selection.select(model.index(row, 0), QItemSelectionModel.SelectionFlag.Select)
            chosen.append(model.photo(row).path)
    return chosen


def test_photos_go_to_the_trash_and_a_folder_leaves_the_library(
    indexed_window: Any,
    indexed_library: Library,
    indexed_photos: Path,
    tmp_path: Path,
    isolated_user_dirs: Path,
    private_trash: Path,
    qtbot: Any,
) -> None:
    window = indexed_window
    own = many_photos(indexed_photos, tmp_path / "own", 5)  # this test's own files
    deque(indexed_library.index([own]), maxlen=1)
    with qtbot.waitSignal(window.resultsShown, timeout=10_000):
        window.searching.browse()
    chosen = _select_names(window, "variant_0000.jpg", "variant_0001.jpg")
    assert len(chosen) == 2
    before = indexed_library.photo_count()
    with qtbot.waitSignal(window.photosRemoved, timeout=10_000) as removed:
        window.photos.remove_selected(confirm=False, trash=True)
    assert removed.args == [2] and indexed_library.photo_count() == before - 2
    assert not any(path.exists() for path in chosen)
    assert sorted(path.name for path in private_trash.iterdir()) == ["variant_0000.jpg", "variant_0001.jpg"]
    qtbot.waitUntil(lambda: window.count_label.text() == f"{before - 2} photos", timeout=10_000)

    with qtbot.waitSignal(window.care.foldersRead, timeout=10_000):
        dialog = window.care.show_folders()
    assert sorted(dialog.folders.item(r).text() for r in range(dialog.folders.count())) == sorted(
        [str(indexed_photos.resolve()), str(own.resolve())]
    )
    with qtbot.waitSignal(window.care.changed, timeout=10_000) as changed:
        window.care.remove_folder(own, confirm=False)
    assert changed.args == [3] and own.is_dir(), "the files stay"
    assert indexed_library.folders() == [indexed_photos.resolve()]
    assert all(hit.path.parent != own.resolve() for hit in indexed_library.browse())
    dialog.close()


def test_check_library_reports_a_sound_library(
    indexed_window: Any, indexed_library: Library, qtbot: Any
) -> None:
    window = indexed_window
    with qtbot.waitSignal(window.care.checked, timeout=60_000) as checked:
        window.action("check").trigger()
    report = checked.args[0]
    assert report.sound and report.findings == () and report.photos == 7
    assert report_text(report).endswith("Nothing is wrong with this library.")
    box = window.findChild(object, "checkReport")
    assert box is not None and "Checked 7 photos" in box.text()
    box.close()


def test_ctrl_z_brings_back_a_deleted_label_with_its_photos(
    indexed_window: Any,
    indexed_library: Library,
    indexed_photos: Path,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PySide6.QtWidgets import QMessageBox

    window = indexed_window
    pets = [indexed_photos / "chelsea.png", indexed_photos / "horse.png"]
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        window.add_label("pets", pets)
    assert window.action("undo").text() == "Undo Label 2 photos “pets”"
    window.labels_view.setCurrentIndex(window.labels_model.index(0, 0))
    window.labels_view.setFocus()
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        qtbot.keyClick(window.labels_view, Qt.Key.Key_Delete)
    assert indexed_library.labels() == []
    assert window.action("undo").isEnabled() and window.action("undo").text() == "Undo Delete label “pets”"
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        qtbot.keyClick(window.labels_view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert indexed_library.labels() == [("pets", 2)]
    assert sorted(p.name for p in indexed_library.photo_labels()) == ["chelsea.png", "horse.png"]
    assert window.labels_model.names() == ["pets"]
    with qtbot.waitSignal(window.labelsUpdated, timeout=10_000):
        window.action("redo").trigger()
    assert indexed_library.labels() == []
