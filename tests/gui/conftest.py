"""Fixtures of the GUI tests: isolated folders and settings, sample photos, windows.

Everything runs headless (``QT_QPA_PLATFORM=offscreen``); no test reads or writes
the real user's config, data or cache folders, nor their Qt settings.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui_fakes import FakeLibrary
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
def fake_library(tmp_path: Path) -> FakeLibrary:
    return FakeLibrary(tmp_path / "library")


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


@pytest.fixture
def indexed_window(
    make_window: Callable[..., Any], fake_library: FakeLibrary, sample_photos: Path, qtbot: Any
) -> Any:
    """A window whose (fake) library holds the sample photos."""
    window = make_window(fake_library)
    with qtbot.waitSignal(window.indexFinished, timeout=30_000):
        window.start_index([sample_photos])
    qtbot.waitUntil(lambda: window.count_label.text().startswith("7 "), timeout=10_000)
    return window
