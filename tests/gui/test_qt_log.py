"""Qt's own messages reach the log file, and the crash dialog names that file."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import qInstallMessageHandler, qWarning
from PySide6.QtWidgets import QMessageBox

from devise_app import logs
from devise_app.gui import app as gui_app


@pytest.fixture
def log_file() -> Iterator[Any]:
    path = logs.setup_logging()
    assert path is not None
    yield path
    logger = logging.getLogger(logs.ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _flushed_text(path: Any) -> str:
    for handler in logging.getLogger(logs.ROOT).handlers:
        handler.flush()
    return str(path.read_text(encoding="utf-8"))


@pytest.mark.qt_log_ignore("^a warning from Qt for the log file$")
def test_a_qt_warning_ends_up_in_the_log(log_file: Any, qtlog: Any) -> None:
    previous = gui_app.install_qt_message_handler()
    try:
        qWarning("a warning from Qt for the log file")
    finally:
        qInstallMessageHandler(previous)
    assert "WARNING devise_app.qt: a warning from Qt for the log file" in _flushed_text(log_file)
    # pytest-qt's own handler, installed before, still saw it
    assert [record.message for record in qtlog.records] == ["a warning from Qt for the log file"]


def test_the_crash_dialog_names_the_log_file(
    log_file: Any, qapp: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shown: list[QMessageBox] = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(box) or 0)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    gui_app.install_excepthook()
    try:
        raise RuntimeError("something broke")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    (box,) = shown
    assert str(log_file) in box.text()
    assert "something broke" in box.detailedText()
    assert "ERROR devise_app.gui.app: unexpected error" in _flushed_text(log_file)
    assert "RuntimeError: something broke" in capsys.readouterr().err
