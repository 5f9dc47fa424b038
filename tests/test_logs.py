"""The log file: the CLI writes its key events to a rotating file in the
per-user cache folder and nothing extra to the terminal."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devise_app import logs
from devise_app.cli import main


@pytest.fixture(autouse=True)
def no_log_handlers_left() -> Iterator[None]:
    """Each test sets logging up itself; none leaves a file open for the next."""
    yield
    logger = logging.getLogger(logs.ROOT)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)


def _log_text(user_dirs: dict[str, Path]) -> str:
    path = user_dirs["cache"] / "log" / "devise-app.log"
    assert path.is_file()
    return path.read_text(encoding="utf-8")


@pytest.mark.usefixtures("shared_model")
def test_a_cli_index_run_is_logged_to_the_cache_folder(
    photo_dir: Path, tmp_path: Path, user_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(photo_dir), "--library", str(tmp_path / "lib")]) == 0
    out, err = capsys.readouterr()
    text = _log_text(user_dirs)
    for line in [
        "INFO devise_app.cli: devise-app ", f"index {photo_dir} --library",
        f"devise_app.engine.catalog: library opened: {tmp_path / 'lib'}",
        f"devise_app.engine.indexer: index run started: {photo_dir}",
        "devise_app.engine.indexer: index run finished after", ": 5 indexed, 0 unchanged, 0 moved",
    ]:  # fmt: skip
        assert line in text, line
    assert "devise_app." not in out + err  # the terminal shows only what it always did


def test_an_error_shown_to_the_user_is_logged(
    tmp_path: Path, user_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "dog", "--library", str(tmp_path / "no-library")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("devise-app: error: no photo library in")
    assert "WARNING devise_app.cli: error shown to the user: no photo library in" in _log_text(user_dirs)


def test_setting_up_twice_keeps_one_file_and_follows_the_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = logs.setup_logging()
    assert logs.setup_logging() == first == logs.log_path()
    logger = logging.getLogger(logs.ROOT)
    assert len(logger.handlers) == 1
    monkeypatch.setenv("DEVISE_APP_CACHE_DIR", str(tmp_path / "elsewhere"))
    second = logs.setup_logging()
    assert second == tmp_path / "elsewhere" / "log" / "devise-app.log" != first
    assert len(logger.handlers) == 1
    logging.getLogger("devise_app.engine.search").warning("to the new file")
    assert "to the new file" in second.read_text(encoding="utf-8")
    assert "to the new file" not in first.read_text(encoding="utf-8")  # type: ignore[union-attr]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_log_folder_is_private() -> None:
    path = logs.setup_logging()
    assert path is not None
    assert path.parent.stat().st_mode & 0o777 == 0o700


def test_verbose_adds_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    logs.setup_logging()
    logging.getLogger("devise_app.engine.indexer").info("quiet by default")
    assert capsys.readouterr().err == ""
    logs.setup_logging(verbose=True)
    logging.getLogger("devise_app.engine.indexer").debug("now on stderr too")
    assert "devise_app.engine.indexer: DEBUG: now on stderr too" in capsys.readouterr().err
    assert "now on stderr too" in logs.log_path().read_text(encoding="utf-8")


def test_the_file_rotates_at_one_megabyte() -> None:
    path = logs.setup_logging()
    assert path is not None
    log = logging.getLogger("devise_app.test")
    for i in range(2100):
        log.info("%04d %s", i, "x" * 1000)
    for handler in logging.getLogger(logs.ROOT).handlers:
        handler.flush()
    assert path.with_name("devise-app.log.1").is_file()
    assert path.with_name("devise-app.log.2").is_file()
    assert path.stat().st_size <= logs.MAX_BYTES
    assert "2099 " in path.read_text(encoding="utf-8")


def test_an_unwritable_cache_folder_leaves_the_file_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DEVISE_APP_CACHE_DIR", str(blocker))
    assert logs.setup_logging() is None
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "devise-app" in capsys.readouterr().out
