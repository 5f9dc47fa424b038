"""Fixtures of the GUI tests: isolated folders and settings, sample photos, windows.

Everything runs headless (``QT_QPA_PLATFORM=offscreen``); no test reads or writes
the real user's config, data or cache folders, nor their Qt settings. Windows open
on the real ``Library`` with the session's model (``encoder`` and ``vocabulary`` in
tests/conftest.py), a real SQLite catalog and a real Annoy index.
"""

from __future__ import annotations

import os
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QStandardPaths

SAMPLE_NAMES = (
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "camera.png",
    "astronaut.png",
    "horse.png",
)


# Messages of Qt's headless platform plugin itself, not of the app.
OFFSCREEN_NOISE = (r"This plugin does not support (propagateSizeHints\(\)|raise\(\)|grabbing the keyboard)",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.qt_log_ignore(*OFFSCREEN_NOISE))


def skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every per-user folder of the app, and Qt's own, at ``tmp_path``."""
    base = tmp_path / "user"
    for name in ("DATA", "CACHE", "CONFIG"):
        folder = base / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(f"DEVISE_APP_{name}_DIR", str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(base / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(base / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
    QStandardPaths.setTestModeEnabled(True)
    yield base
    QStandardPaths.setTestModeEnabled(False)


@pytest.fixture
def sample_photos(tmp_path: Path) -> Path:
    """A folder with real photos from scikit-image's sample data."""
    folder = tmp_path / "photos"
    folder.mkdir()
    source = skimage_data_dir()
    for name in SAMPLE_NAMES:
        shutil.copy(source / name, folder / name)
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    from devise_app.gui.app import open_settings

    result = open_settings()
    assert str(tmp_path) in result.fileName()
    return result


@pytest.fixture
def make_window(qtbot: Any, settings: QSettings) -> Callable[..., Any]:
    """Open a main window on a library and wait until it has read the library."""
    from devise_app.gui.main_window import MainWindow

    def make(library: Any, show: bool = True, wait: bool = True) -> MainWindow:
        window = MainWindow(library, settings)
        qtbot.addWidget(window)
        if wait:
            with qtbot.waitSignals(
                [window.libraryRefreshed, window.vocabularyReady, window.modelReady], timeout=60_000
            ):
                pass
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    return make


@pytest.fixture(scope="module")
def indexed_template(tmp_path_factory: pytest.TempPathFactory, encoder: Any, vocabulary: Any) -> Path:
    """A library folder indexed once per module from the sample photos (in its
    ``photos`` folder, beside it). Tests never open it: ``indexed_library`` copies it."""
    from devise_app.engine.search import Library

    base = tmp_path_factory.mktemp("indexed")
    photos = base / "photos"
    photos.mkdir()
    for name in SAMPLE_NAMES:
        shutil.copy(skimage_data_dir() / name, photos / name)
    with Library(base / "library", encoder=encoder, vocabulary=vocabulary) as library:
        last = deque(library.index([photos]), maxlen=1)[0]
    assert last.summary.indexed == len(SAMPLE_NAMES)
    return base


@pytest.fixture
def indexed_photos(indexed_template: Path) -> Path:
    """The photos of ``indexed_library`` (shared by the module's tests: only read)."""
    return indexed_template / "photos"


@pytest.fixture
def indexed_library(indexed_template: Path, tmp_path: Path, encoder: Any, vocabulary: Any) -> Any:
    """This test's own copy of a library holding the sample photos: a real catalog
    and search index, so writes (labels) never reach another test."""
    from devise_app.engine.search import Library

    shutil.copytree(indexed_template / "library", tmp_path / "library")
    return Library(tmp_path / "library", encoder=encoder, vocabulary=vocabulary)


@pytest.fixture
def indexed_window(make_window: Callable[..., Any], indexed_library: Any, qtbot: Any) -> Any:
    """A window on ``indexed_library``, showing its photo count."""
    window = make_window(indexed_library)
    qtbot.waitUntil(lambda: window.count_label.text() == f"{len(SAMPLE_NAMES)} photos", timeout=10_000)
    return window
