"""Logging for both faces: a rotating log file in the per-user cache folder.

Every module logs to its own named logger under ``devise_app``
(``logging.getLogger(__name__)``: ``devise_app.engine.indexer``,
``devise_app.gui.app``, …); the GUI routes Qt's own messages into
``devise_app.qt`` (``devise_app.gui.app``). The faces call :func:`setup_logging`
once at start: records of INFO and above go to
``config.cache_dir() / "log" / "devise-app.log"`` (1 MB, then rotated, three old
files kept), so the terminal shows nothing extra; ``verbose`` adds stderr, at
DEBUG. The crash dialog names the file (:func:`log_path`) for a bug report.
The log folder is private to the user, as the library folder is.

Logging must never stop the app: a log folder that cannot be written leaves
the file out.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from devise_app.engine import config

ROOT = "devise_app"
LOG_NAME = "devise-app.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
PRIVATE_FOLDER_MODE = 0o700  # as the library folder
FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def log_path() -> Path:
    """Where the log file is (it may not exist yet)."""
    return config.cache_dir() / "log" / LOG_NAME


class _FileHandler(logging.handlers.RotatingFileHandler):
    """The app's log file (a class of its own, so a second setup finds it)."""


class _StderrHandler(logging.StreamHandler):
    """``--verbose``: the same records on stderr."""


def setup_logging(verbose: bool = False) -> Path | None:
    """Send ``devise_app``'s records to the log file (and with ``verbose`` to
    stderr); returns the file's path, or None when it cannot be written.

    Calling it again is harmless: a handler already writing to the same file is
    kept; one writing elsewhere (the cache folder moved, as tests do) is closed
    and replaced."""
    logger = logging.getLogger(ROOT)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    path = log_path()
    _replace_handlers(logger, _StderrHandler, _stderr_handler() if verbose else None)
    current = [h for h in logger.handlers if isinstance(h, _FileHandler)]
    if current and Path(current[0].baseFilename) == path.absolute():
        return path
    handler = _file_handler(path)
    _replace_handlers(logger, _FileHandler, handler)
    return path if handler is not None else None


def _file_handler(path: Path) -> _FileHandler | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
        path.parent.chmod(PRIVATE_FOLDER_MODE)  # it names the user's folders and labels
        handler = _FileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", errors="backslashreplace"
        )
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def _stderr_handler() -> _StderrHandler:
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    return handler


def _replace_handlers(
    logger: logging.Logger, kind: type[logging.Handler], new: logging.Handler | None
) -> None:
    for old in [h for h in logger.handlers if isinstance(h, kind)]:
        logger.removeHandler(old)
        old.close()
    if new is not None:
        logger.addHandler(new)
