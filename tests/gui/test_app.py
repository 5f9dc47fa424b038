"""Starting the app, its settings, and how errors reach the user."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from gui_fakes import FakeLibrary
from PySide6.QtWidgets import QApplication, QMessageBox

from devise_app import config
from devise_app.gui import app as gui_app
from devise_app.gui.main_window import MainWindow, format_duration, format_when, replace_unknown_word
from devise_app.model import ModelFileError


class NoModelLibrary(FakeLibrary):
    """A library whose model files are missing."""

    @property
    def encoder(self) -> Any:
        raise ModelFileError("model file /nowhere/devise.onnx is missing")

    @encoder.setter
    def encoder(self, _value: Any) -> None:
        pass


def test_main_opens_the_window_on_the_last_library(
    qtbot: Any, qapp: QApplication, monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path
) -> None:
    settings.setValue("library/path", str(tmp_path / "my-library"))
    settings.sync()
    opened: list[Path] = []

    def make_library(path: Path) -> FakeLibrary:
        opened.append(path)
        return FakeLibrary(path)

    monkeypatch.setattr(gui_app, "make_library", make_library)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # main() installs its own
    windows: list[MainWindow] = []

    def run_until_closed(*_args: Any) -> int:
        # Stands in for QApplication.exec(): a nested loop that ends when the window closes.
        # (A real exec() followed by quit() would leave the test's QApplication quitting.)
        qtbot.waitUntil(
            lambda: any(isinstance(w, MainWindow) and w.isVisible() for w in qapp.topLevelWidgets())
        )
        windows.extend(w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        qtbot.wait(200)
        for window in windows:
            window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", run_until_closed)
    try:
        assert gui_app.main([]) == 0
    finally:
        qapp.setStyleSheet("")
    assert opened == [tmp_path / "my-library"]
    assert len(windows) == 1 and windows[0].library.closed
    assert sys.excepthook is not sys.__excepthook__


def test_settings_live_in_the_config_folder_and_default_to_the_default_library(settings: Any) -> None:
    assert Path(settings.fileName()).parent == config.config_dir()
    assert gui_app.library_path(settings) == config.default_library_dir()


def test_window_geometry_is_remembered(make_window: Any, fake_library: FakeLibrary, settings: Any) -> None:
    first = make_window(fake_library)
    first.resize(720, 520)
    first.close()
    second = make_window(FakeLibrary(fake_library.path))
    assert (second.width(), second.height()) == (720, 520)


def test_missing_model_files_show_one_dialog_and_no_traceback(
    make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qtbot: Any, capsys: Any
) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        QMessageBox, "critical", lambda _parent, title, text, *rest: shown.append((title, text))
    )
    window = make_window(NoModelLibrary(tmp_path / "library"), wait=False)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown[0][0] == "Model files missing or damaged"
    assert "devise.onnx is missing" in shown[0][1]
    window.show_error(ModelFileError("again"))
    assert len(shown) == 1  # said once
    assert "Traceback" not in capsys.readouterr().err


def test_library_errors_are_shown_inline(
    make_window: Any, fake_library: FakeLibrary, tmp_path: Path, qtbot: Any
) -> None:
    window = make_window(fake_library)
    with qtbot.waitSignal(window.indexFinished, timeout=10_000) as blocker:
        window.start_index([tmp_path / "no-such-folder"])
    assert blocker.args[0] is None
    assert window.query_message.isVisible()
    assert "not a folder" in window.query_message.text()


def test_small_helpers() -> None:
    assert format_duration(42) == "42 s"
    assert format_duration(125) == "2 min 05 s"
    assert format_when(None) == "never"
    assert format_when(1000.0, now=1030.0) == "just now"
    assert format_when(1000.0, now=1000.0 + 7200) == "2 h ago"
    error = ValueError("Unknown word 'caaat'.")
    assert replace_unknown_word("king - caaat + woman", error, "cat") == "king - cat + woman"
    assert (
        replace_unknown_word("label:pest", ValueError("No label named 'pest'."), "label:pets") == "label:pets"
    )
