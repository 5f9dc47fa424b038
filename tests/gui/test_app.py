"""Starting the app, its settings, and how errors reach the user (on the real
library and model; broken model files are a real broken copy of models/)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gui_support import files_held_open
from PySide6.QtWidgets import QApplication, QMessageBox

from devise_app.engine import config
from devise_app.engine.model import ONNX_FILE, ModelFileError
from devise_app.engine.search import Library
from devise_app.gui import app as gui_app
from devise_app.gui.main_window import MainWindow
from devise_app.gui.searching import replace_unknown_word
from devise_app.gui.text import format_duration, format_when


def _remove(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()  # a symlink to the shipped file: replace it, never write through it
    path.write_bytes(data[:100_000])


@pytest.mark.usefixtures("shared_model")  # the real make_library, with the session's model
def test_main_opens_the_window_on_the_last_library(
    qtbot: Any, qapp: QApplication, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("library/path", str(tmp_path / "my-library"))
    settings.sync()
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # main() installs its own
    windows: list[MainWindow] = []

    def run_until_closed(*_args: Any) -> int:
        # Stands in for QApplication.exec(): a nested loop that ends when the window closes.
        # (A real exec() followed by quit() would leave the test's QApplication quitting.)
        qtbot.waitUntil(
            lambda: any(isinstance(w, MainWindow) and w.isVisible() for w in qapp.topLevelWidgets())
        )
        windows.extend(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        qtbot.waitUntil(lambda: windows[0].count_label.text() == "0 photos", timeout=10_000)
        assert files_held_open(tmp_path / "my-library")  # the window opened the catalog
        for window in windows:
            window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", run_until_closed)
    try:
        assert gui_app.main([]) == 0
    finally:
        qapp.setStyleSheet("")
    assert len(windows) == 1
    library = windows[0].library
    assert isinstance(library, Library) and library.path == tmp_path / "my-library"
    assert (library.path / "catalog.sqlite").is_file()
    assert files_held_open(library.path) == []  # closed
    assert sys.excepthook is not sys.__excepthook__


def test_settings_live_in_the_config_folder_and_default_to_the_default_library(settings: Any) -> None:
    assert Path(settings.fileName()).parent == config.config_dir()
    assert gui_app.library_path(settings) == config.default_library_dir()


def test_window_geometry_is_remembered(
    make_window: Any, library: Library, encoder: Any, vocabulary: Any, settings: Any
) -> None:
    first = make_window(library)
    first.resize(720, 520)
    first.close()
    second = make_window(Library(library.path, encoder=encoder, vocabulary=vocabulary))
    assert (second.width(), second.height()) == (720, 520)


@pytest.mark.parametrize(
    ("fault", "fragment"),
    [(_remove, f"{ONNX_FILE} is missing"), (_truncate, f"{ONNX_FILE} cannot be loaded")],
    ids=["missing", "truncated"],
)
def test_broken_model_files_show_one_dialog_and_no_traceback(
    make_window: Any,
    vocabulary: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    qtbot: Any,
    capsys: Any,
    fault: Callable[[Path], None],
    fragment: str,
) -> None:
    models = tmp_path / "models"  # the shipped files as symlinks, the model file broken
    models.mkdir()
    for path in config.models_dir().iterdir():
        (models / path.name).symlink_to(path)
    fault(models / ONNX_FILE)
    monkeypatch.setenv("DEVISE_APP_MODELS_DIR", str(models))
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        QMessageBox, "critical", lambda _parent, title, text, *rest: shown.append((title, text))
    )
    # the window loads the model itself, from the broken folder (the vocabulary is the session's)
    window = make_window(Library(tmp_path / "library", vocabulary=vocabulary), wait=False)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown[0][0] == "Model files missing or damaged"
    assert str(models / ONNX_FILE) in shown[0][1]
    assert fragment in shown[0][1]
    window.feedback.show_error(ModelFileError("again"))
    assert len(shown) == 1  # said once
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("target", "message"), [("no-such-folder", "no such folder"), ("a-file", "not a folder")]
)
def test_library_errors_are_shown_inline(
    make_window: Any, library: Library, tmp_path: Path, qtbot: Any, target: str, message: str
) -> None:
    (tmp_path / "a-file").write_text("not photos")
    window = make_window(library)
    with qtbot.waitSignal(window.indexFinished, timeout=10_000) as blocker:
        window.start_index([tmp_path / target])
    assert blocker.args[0] is None
    assert window.query_message.isVisible()
    assert message in window.query_message.text()


def test_small_helpers() -> None:
    assert format_duration(42) == "42 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_when(None) == "never"
    assert format_when(1000.0, now=1030.0) == "just now"
    assert format_when(1000.0, now=1000.0 + 7200) == "2 h ago"
    assert replace_unknown_word("king - caaat + woman", "caaat", "cat") == "king - cat + woman"
    assert replace_unknown_word("label:pest", "pest", "label:pets") == "label:pets"
    assert replace_unknown_word("a caaat", None, "cat") == "cat"
