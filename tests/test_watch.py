"""Watching folders for real: a real watchdog observer on real folders, the real
model, SQLite and Annoy. Photos are copied in and deleted, folders moved and a
watched folder taken away and brought back, then the test waits on the
watcher's runs (``next_run``) until the library shows the change; no sleeps.
Every photo is a distinct picture, so the encoder's count of embedded photos
says whether anything was indexed twice."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage
from PIL import Image

from devise_app.engine.watch import FolderWatcher, WatchRun

SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"
SOURCES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
GIVE_UP_S = (
    900.0  # only a hung watcher comes near this: each wait ends as soon as the library shows the change
)
CROP = 96


def make_photos(folder: Path, count: int) -> list[Path]:
    """``count`` distinct small JPEGs: crops of scikit-image photos at different places."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [np.asarray(Image.open(SKIMAGE_PHOTOS / name).convert("RGB")) for name in SOURCES]
    photos = []
    for i in range(count):
        source = sources[i % len(sources)]
        step = i // len(sources)
        height, width = source.shape[:2]
        columns = (width - CROP) // 3
        top, left = (step // columns * 3) % (height - CROP), step % columns * 3
        path = folder / f"photo{i:04d}.jpg"
        Image.fromarray(source[top : top + CROP, left : left + CROP]).save(path, quality=90)
        photos.append(path)
    return photos


@pytest.fixture(scope="module")
def photo_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 distinct small photos, made once for the module (copied from here into watched folders)."""
    folder = tmp_path_factory.mktemp("source")
    make_photos(folder, 1000)
    return folder


def wait_for(watcher: FolderWatcher, condition: Callable[[], bool]) -> list[WatchRun]:
    """The watcher's runs until ``condition`` holds after one (or already holds)."""
    runs: list[WatchRun] = []
    deadline = time.monotonic() + GIVE_UP_S
    while not condition():
        run = watcher.next_run(timeout=max(0.0, deadline - time.monotonic()))
        assert run is not None, f"the library never showed the change; runs so far: {runs}"
        assert run.error is None, run.error
        runs.append(run)
    return runs


def _rows(library: Any) -> list[str]:
    return [record.path for record in library.catalog.records()]


def _copy_in_and_remove(library: Any, photo_source: Path, folder: Path, count: int) -> None:
    names = sorted(os.listdir(photo_source))[:count]
    with FolderWatcher(library, [folder], quiet=0.5) as watcher:
        wait_for(watcher, watcher.is_idle)  # the first run: an empty folder
        for i, name in enumerate(names):  # into count / 5 new folders (one level down), as a copied tree
            target = folder / f"album{i % (count // 5):03d}" / name
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(photo_source / name, target)

        runs = wait_for(watcher, lambda: library.photo_count() == count)
        assert library.counting_encoder.embedded == count  # nothing embedded twice
        rows = _rows(library)
        assert len(rows) == len(set(rows)) == count  # one row per file
        assert sum(run.summary.indexed for run in runs if run.summary) == count

        for sub in folder.iterdir():
            shutil.rmtree(sub)
        wait_for(watcher, lambda: library.photo_count() == 0)
        assert _rows(library) == []
        assert library.counting_encoder.embedded == count


@pytest.fixture
def watched_library(library: Any, counting_encoder: Any) -> Any:
    library.counting_encoder = counting_encoder
    return library


def test_photos_copied_in_are_indexed_once_and_their_removal_is_seen(
    tmp_path: Path, watched_library: Any, photo_source: Path
) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    _copy_in_and_remove(watched_library, photo_source, folder, 200)


@pytest.mark.slow
def test_a_thousand_photos_copied_in_and_removed(
    tmp_path: Path, watched_library: Any, photo_source: Path
) -> None:
    folder = tmp_path / "watched"
    folder.mkdir()
    _copy_in_and_remove(watched_library, photo_source, folder, 1000)


def test_folders_moved_inside_and_out(tmp_path: Path, watched_library: Any, photo_source: Path) -> None:
    library = watched_library
    folder = tmp_path / "watched"
    for name in sorted(os.listdir(photo_source))[:30]:
        sub = folder / ("a" if name < "photo0015" else "b")
        sub.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo_source / name, sub / name)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with FolderWatcher(library, [folder], quiet=0.5) as watcher:
        wait_for(watcher, lambda: library.photo_count() == 30)
        ids = {Path(r.path).name: r.id for r in library.catalog.records()}
        library.add_label("kept", [folder / "a" / "photo0000.jpg"])

        (folder / "a").rename(folder / "deeper")  # moved inside the watched folder
        (folder / "b").rename(outside / "b")  # moved out of it
        gone = (os.path.join(folder, "a", ""), os.path.join(folder, "b", ""))
        wait_for(watcher, lambda: not any(path.startswith(gone) for path in _rows(library)))
        assert library.photo_count() == 15
        moved = {Path(r.path).name: r.id for r in library.catalog.records()}
        assert all(moved[name] == ids[name] for name in moved)  # same rows: recognised as moved
        assert library.labels_of(folder / "deeper" / "photo0000.jpg") == ["kept"]
        assert library.counting_encoder.embedded == 30

        (outside / "b").rename(folder / "b")  # and back in
        wait_for(watcher, lambda: library.photo_count() == 30)


def test_a_watched_folder_that_goes_away_keeps_its_photos_and_is_watched_again(
    tmp_path: Path, watched_library: Any, photo_source: Path
) -> None:
    library = watched_library
    folder = tmp_path / "disk"
    for name in sorted(os.listdir(photo_source))[:5]:
        folder.mkdir(exist_ok=True)
        shutil.copyfile(photo_source / name, folder / name)
    with FolderWatcher(library, [folder], quiet=0.3, poll=0.2) as watcher:
        wait_for(watcher, lambda: library.photo_count() == 5)
        away = tmp_path / "unmounted"
        folder.rename(away)  # as a disk that is unmounted
        (away / "photo0000.jpg").unlink()
        shutil.copyfile(photo_source / "photo0005.jpg", away / "photo0005.jpg")

        # back, with one photo fewer and one more: watched again and indexed
        away.rename(folder)
        wait_for(watcher, lambda: {Path(p).name for p in _rows(library)} == {
            f"photo{i:04d}.jpg" for i in range(1, 6)
        })  # fmt: skip
        shutil.copyfile(photo_source / "photo0006.jpg", folder / "photo0006.jpg")
        wait_for(watcher, lambda: library.photo_count() == 6)  # its events are seen again


def test_a_missing_folder_keeps_its_photos(tmp_path: Path, watched_library: Any, photo_source: Path) -> None:
    library = watched_library
    folder = tmp_path / "disk"
    folder.mkdir()
    for name in sorted(os.listdir(photo_source))[:3]:
        shutil.copyfile(photo_source / name, folder / name)
    with FolderWatcher(library, [folder], quiet=0.3, poll=0.2) as watcher:
        wait_for(watcher, lambda: library.photo_count() == 3)
        shutil.rmtree(folder)  # gone (or unmounted): its photos stay until it is back or removed
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            run = watcher.next_run(timeout=max(0.0, deadline - time.monotonic()))
            assert run is not None
            if run.missing:
                break
        assert run.missing == (folder,) and run.summary is None
        assert library.photo_count() == 3


def test_a_folder_that_cannot_be_watched_natively_is_polled(
    tmp_path: Path, watched_library: Any, photo_source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of inotify watches (ENOSPC, which cannot be caused here without changing
    the machine's limits): the folder is polled instead, and still followed."""
    import errno

    from watchdog.observers.api import BaseObserver

    real_schedule = BaseObserver.schedule

    def schedule(self: Any, handler: Any, path: str, **kwargs: Any) -> Any:
        if type(self).__name__ != "PollingObserver":
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return real_schedule(self, handler, path, **kwargs)

    monkeypatch.setattr(BaseObserver, "schedule", schedule)
    library = watched_library
    folder = tmp_path / "watched"
    folder.mkdir()
    with FolderWatcher(library, [folder], quiet=0.3, poll=0.2) as watcher:
        wait_for(watcher, watcher.is_idle)
        for name in sorted(os.listdir(photo_source))[:3]:
            shutil.copyfile(photo_source / name, folder / name)
        wait_for(watcher, lambda: library.photo_count() == 3)
