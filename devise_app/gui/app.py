"""Starting the desktop app: ``devise-app`` with no arguments calls :func:`main`."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import (
    QEvent,
    QMessageLogContext,
    QObject,
    QSettings,
    Qt,
    QTimer,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from devise_app.engine import config
from devise_app.gui.icons import app_icon, style_sheet
from devise_app.gui.ports import LibraryPort
from devise_app.gui.settings import WindowSettings
from devise_app.logs import log_path, setup_logging

SETTINGS_FILE = "devise-app.ini"
# Set by ``devise-app bench speed``: print when the window is first painted, then quit.
FIRST_PAINT_ENV = "DEVISE_APP_EXIT_AFTER_FIRST_PAINT"
FIRST_PAINT_MARK = "devise-app first paint at"

log = logging.getLogger(__name__)
qt_log = logging.getLogger("devise_app.qt")  # Qt's own messages (qutebrowser's qtlog)
QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}
QtMessageHandler = Callable[[QtMsgType, QMessageLogContext, str], None]


def open_settings() -> QSettings:
    """The app's settings: an INI file in ``config.config_dir()`` (never the registry)."""
    path = config.config_dir() / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def library_path(settings: QSettings) -> Path:
    remembered = WindowSettings.load(settings).library_path
    return Path(remembered) if remembered else config.default_library_dir()


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName(config.APP_NAME)
    app.setApplicationDisplayName("devise-app")
    app.setOrganizationName(config.APP_NAME)
    app.setDesktopFileName(config.APP_NAME)
    app.setWindowIcon(app_icon())
    apply_style(app)
    return app


def apply_style(app: QApplication) -> None:
    sheet = style_sheet()
    if sheet:
        app.setStyleSheet(sheet)


def install_qt_message_handler() -> QtMessageHandler | None:
    """Route Qt's messages (``qWarning`` and the like, from any thread) into the
    ``devise_app.qt`` logger; returns the handler it replaces. A Python handler
    already installed (pytest-qt's) still gets every message."""
    previous: QtMessageHandler | None = None

    def handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
        category = context.category if context.category not in (None, "default") else ""
        qt_log.log(QT_LEVELS.get(mode, logging.WARNING), "%s%s", f"{category}: " if category else "", message)
        if previous is not None:
            previous(mode, context, message)

    previous = qInstallMessageHandler(handler)
    return previous


def install_excepthook() -> None:
    """Show unexpected errors in a dialog (and on stderr) instead of dying silently."""

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        details = "".join(traceback.format_exception(kind, value, tb))
        print(details, file=sys.stderr)
        log.error("unexpected error\n%s", details.rstrip())
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        app = QApplication.instance()
        if app is None:
            return
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "Unexpected error",
            f"Something went wrong: {value}\n\nThe app keeps running. For a bug report, include "
            f"the details and the log file:\n{log_path()}",
        )
        box.setDetailedText(details)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.exec()

    sys.excepthook = hook


def make_library(path: Path) -> LibraryPort:
    """The real library (annotated with the port, so mypy checks that it is one)."""
    from devise_app.engine.search import Library

    return Library(path)


def _exit_after_first_paint(app: QApplication, window: QWidget) -> None:
    """For ``devise-app bench speed``: print the wall-clock time of the window's first
    paint event and quit."""

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt names it
            if event.type() == QEvent.Type.Paint:
                window.removeEventFilter(self)
                print(f"{FIRST_PAINT_MARK} {time.time():.6f}", flush=True)
                QTimer.singleShot(0, app.quit)
            return False

    watcher = FirstPaint(window)
    window.installEventFilter(watcher)


def main(argv: Sequence[str] | None = None) -> int:
    """Open the main window on the last used library; returns the exit code."""
    setup_logging()
    previous_handler = install_qt_message_handler()
    try:
        return _run_window(argv)
    finally:
        qInstallMessageHandler(previous_handler)


def _run_window(argv: Sequence[str] | None) -> int:
    app = create_application(argv)
    install_excepthook()
    settings = open_settings()
    try:
        library = make_library(library_path(settings))
    except Exception as exc:  # a broken library folder or model files: say so, no traceback
        log.error("cannot start: %s", exc)
        QMessageBox.critical(None, "devise-app cannot start", str(exc) or type(exc).__name__)
        return 1

    from devise_app.gui.main_window import MainWindow

    window = MainWindow(library, settings)
    window.watch_library()  # the library follows its folders while the window is open
    if os.environ.get(FIRST_PAINT_ENV):
        _exit_after_first_paint(app, window)
    window.show()
    code = app.exec()
    window.shutdown()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
