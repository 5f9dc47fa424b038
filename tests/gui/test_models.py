"""Item models, thumbnails and the worker, without a main window."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QPixmap

from devise_app.gui.models import (
    LABEL_MIME,
    PHOTO_MIME,
    LabelsModel,
    Photo,
    ResultsModel,
    Role,
    ThumbnailState,
)
from devise_app.gui.thumbnails import PixmapCache, ThumbnailLoader, cache_path, load_thumbnail, thumbnail_dir
from devise_app.gui.views import ResultsView, expression_completions
from devise_app.gui.workers import Worker, WorkerPool


def _photos(folder: Path) -> list[Photo]:
    return [Photo(i + 1, path, 1.0 - i / 10) for i, path in enumerate(sorted(folder.iterdir()))]


def test_results_model_passes_qtmodeltester(qtmodeltester: Any, sample_photos: Path, qtbot: Any) -> None:
    model = ResultsModel()
    model.set_results(_photos(sample_photos))
    model.set_label_map({str(sample_photos / "chelsea.png"): ["pets"]})
    qtmodeltester.check(model, force_py=True)
    qtbot.waitUntil(lambda: model.loader.pending() == 0, timeout=10_000)
    model.loader.shutdown()


def test_labels_model_passes_qtmodeltester(qtmodeltester: Any) -> None:
    model = LabelsModel()
    model.set_labels([("pets", 2), ("Summer 2024", 0), ("boats", 5)])
    qtmodeltester.check(model, force_py=True)
    assert model.names() == ["boats", "pets", "Summer 2024"]
    assert model.data(model.index(1, 0), Role.LabelCount) == 2


def test_thumbnails_arrive_with_datachanged_and_are_cached_on_disk(sample_photos: Path, qtbot: Any) -> None:
    model = ResultsModel()
    model.set_results(_photos(sample_photos))
    index = model.index(0, 0)
    assert model.data(index, Role.Thumbnail) is None  # not made yet: a request is queued
    assert model.data(index, Role.ThumbnailState) == ThumbnailState.Loading
    assert isinstance(model.data(index, Qt.ItemDataRole.DecorationRole), QPixmap)  # the placeholder
    with qtbot.waitSignal(
        model.dataChanged,
        timeout=10_000,
        check_params_cb=lambda first, last, roles: first.row() == 0 and Role.Thumbnail in roles,
    ):
        pass
    pixmap = model.data(index, Role.Thumbnail)
    assert isinstance(pixmap, QPixmap) and max(pixmap.width(), pixmap.height()) == 320
    assert model.data(index, Role.ThumbnailState) == ThumbnailState.Ready
    photo = model.photo(0).path
    cached = cache_path(photo)
    assert cached.is_file() and thumbnail_dir() in cached.parents
    assert not [p for p in cached.parent.iterdir() if p.name.startswith(".tmp-")]
    # a changed file gets a new cache entry
    os.utime(photo, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    assert cache_path(photo) != cached
    model.loader.shutdown()


def test_unreadable_photo_gets_a_broken_tile(tmp_path: Path, qtbot: Any) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    model = ResultsModel()
    model.set_results([Photo(1, bad, 0.5)])
    model.data(model.index(0, 0), Role.Thumbnail)
    qtbot.waitUntil(
        lambda: model.data(model.index(0, 0), Role.ThumbnailState) == ThumbnailState.Broken, timeout=10_000
    )
    with pytest.raises(Exception, match="not a recognised image format"):
        load_thumbnail(bad)


def test_stale_results_are_refused() -> None:
    model = ResultsModel()
    first = model.new_generation()
    second = model.new_generation()
    assert model.set_results([Photo(1, Path("/a.jpg"), 1.0)], second)
    assert not model.set_results([Photo(2, Path("/b.jpg"), 1.0)], first)
    assert model.rowCount() == 1 and model.photo(0).photo_id == 1


def test_photo_drag_data_and_label_drops() -> None:
    model = ResultsModel()
    model.set_results([Photo(7, Path("/p/a.jpg"), 1.0), Photo(9, Path("/p/b.jpg"), 0.5)])
    mime = model.mimeData([model.index(0, 0), model.index(1, 0)])
    assert bytes(mime.data(PHOTO_MIME).data()) == b"7\n9"
    assert [url.toLocalFile() for url in mime.urls()] == ["/p/a.jpg", "/p/b.jpg"]
    assert not model.canDropMimeData(mime, Qt.DropAction.CopyAction, -1, -1, model.index(0, 0))

    label = QMimeData()
    label.setData(LABEL_MIME, b"red car")
    received: list[tuple[str, int]] = []
    model.labelDropped.connect(lambda name, row: received.append((name, row)))
    assert not model.canDropMimeData(label, Qt.DropAction.CopyAction, -1, -1, model.index(-1, 0))
    assert model.dropMimeData(label, Qt.DropAction.CopyAction, -1, -1, model.index(1, 0))
    assert received == [("red car", 1)]

    labels = LabelsModel()
    labels.set_labels([("pets", 0)])
    dropped: list[tuple[str, list[Path]]] = []
    labels.photosDropped.connect(lambda name, paths: dropped.append((name, paths)))
    assert labels.dropMimeData(mime, Qt.DropAction.CopyAction, -1, -1, labels.index(0, 0))
    assert dropped == [("pets", [Path("/p/a.jpg"), Path("/p/b.jpg")])]
    other = QMimeData()
    other.setUrls([QUrl.fromLocalFile("/p/notes.txt")])
    assert not labels.canDropMimeData(other, Qt.DropAction.CopyAction, -1, -1, labels.index(0, 0))


def test_a_hundred_thousand_results_stay_smooth(tmp_path: Path, qtbot: Any) -> None:
    loader = ThumbnailLoader(threads=1)
    loader.request = _counting(loader)  # type: ignore[method-assign]
    model = ResultsModel(loader=loader)
    view = ResultsView()
    view.setModel(model)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    photos = [Photo(i, tmp_path / f"photo{i:06d}.jpg", 1.0 - i / 200_000) for i in range(100_000)]

    start = time.perf_counter()
    model.set_results(photos)
    qtbot.waitUntil(lambda: loader.asked > 0, timeout=10_000)
    shown = time.perf_counter() - start
    asked_first = loader.asked
    # the layout goes on in batches between events; wait until the last cell has a place
    last = model.index(len(photos) - 1, 0)
    qtbot.waitUntil(
        lambda: not view.visualRect(last).isEmpty() and view.verticalScrollBar().maximum() > 0, timeout=10_000
    )
    laid_out = time.perf_counter() - start

    scrollbar = view.verticalScrollBar()
    assert scrollbar.maximum() > 0
    start = time.perf_counter()
    for fraction in (0.25, 0.5, 0.75, 1.0):
        scrollbar.setValue(int(scrollbar.maximum() * fraction))
        view.viewport().repaint()
    scrolled = time.perf_counter() - start

    assert shown < 3.0, f"showing 100 000 results took {shown:.2f} s"
    assert laid_out < 5.0, f"laying out 100 000 results took {laid_out:.2f} s"
    assert scrolled < 1.0, f"four jumps through the grid took {scrolled:.2f} s"
    # thumbnails are asked for the painted cells only, never for all rows
    assert asked_first < 300
    assert loader.asked < 1500
    assert view.indexAt(view.viewport().rect().center()).row() > 90_000
    loader.shutdown()


def _counting(loader: ThumbnailLoader) -> Any:
    loader.asked = 0  # type: ignore[attr-defined]

    def request(path: str) -> None:
        loader.asked += 1  # type: ignore[attr-defined]

    return request


def test_pixmap_cache_is_bounded() -> None:
    cache = PixmapCache(max_bytes=100 * 100 * 4 * 3)
    for i in range(10):
        cache.put(str(i), QPixmap(100, 100))
    assert len(cache) == 3
    assert "9" in cache and "0" not in cache
    assert cache.get("7") is not None
    cache.put("10", QPixmap(100, 100))
    assert "7" in cache and "8" not in cache


def test_expression_completion_completes_the_last_word() -> None:
    words = {"ca": ["cat", "car"], "wo": ["woman", "world"]}

    def complete(prefix: str, n: int) -> list[str]:
        return words.get(prefix, [])[:n]

    def labels() -> list[str]:
        return ["pets", "Paris trip"]

    assert expression_completions("ca", complete, labels) == ["cat", "car"]
    assert expression_completions("king - man + wo", complete, labels) == [
        "king - man + woman",
        "king - man + world",
    ]
    assert expression_completions("label:p", complete, labels) == ["label:pets", 'label:"Paris trip"']
    assert expression_completions("2*", complete, labels) == []


def test_a_one_letter_word_is_completed_from_the_first_letter() -> None:
    """The vocabulary completes any prefix from its prefix index (tests/test_completion.py),
    so a word's first letter is offered words too, after the labels that start with it."""
    asked: list[str] = []

    def complete(prefix: str, n: int) -> list[str]:
        asked.append(prefix)
        return {"s": ["sea", "sand"], "p": ["pets", "pear"]}.get(prefix, ["pear"])

    assert expression_completions("a dog on the s", complete, lambda: ["sea trip"]) == [
        'a dog on the label:"sea trip"',
        "a dog on the sea",
        "a dog on the sand",
    ]
    assert expression_completions("p", complete, lambda: ["pets"]) == ["pets", "pear"]
    assert asked == ["s", "p"]
    assert expression_completions("pe", complete, lambda: []) == ["pear"] and asked == ["s", "p", "pe"]


# --- the worker ---------------------------------------------------------------------------


def _count(n: int, cancel: threading.Event | None = None) -> Iterator[int]:
    for i in range(n):
        if cancel is not None and cancel.is_set():
            return "cancelled"
        yield i
        time.sleep(0.002)
    return "done"


def test_worker_reports_yielded_returned_finished_on_the_gui_thread(qtbot: Any) -> None:
    pool = WorkerPool(1)
    worker = Worker(lambda: _count(5))
    seen: list[tuple[str, Any, bool]] = []
    gui = threading.get_ident()
    worker.signals.yielded.connect(lambda item: seen.append(("yielded", item, threading.get_ident() == gui)))
    worker.signals.returned.connect(
        lambda value: seen.append(("returned", value, threading.get_ident() == gui))
    )
    with qtbot.waitSignal(worker.signals.finished, timeout=5000):
        pool.start(worker)
    assert [entry[:2] for entry in seen] == [("yielded", i) for i in range(5)] + [("returned", "done")]
    assert all(entry[2] for entry in seen)
    pool.shutdown()


def test_worker_reports_errors(qtbot: Any) -> None:
    pool = WorkerPool(1)

    def fail() -> None:
        raise ValueError("no such folder")

    worker = Worker(fail)
    with qtbot.waitSignal(worker.signals.errored, timeout=5000) as blocker:
        pool.start(worker)
    assert isinstance(blocker.args[0], ValueError)
    pool.shutdown()


def test_worker_cancels_cooperatively_and_coalesces(qtbot: Any) -> None:
    pool = WorkerPool(1)
    cancel = threading.Event()
    worker = Worker(lambda: _count(100_000, cancel), cancel=cancel, coalesce_s=0.05)
    items: list[int] = []
    worker.signals.yielded.connect(items.append)
    with qtbot.waitSignal(worker.signals.returned, timeout=10_000) as blocker:
        pool.start(worker)
        qtbot.waitUntil(lambda: len(items) >= 2, timeout=5000)
        worker.cancel()
    assert blocker.args[0] == "cancelled"
    assert worker.cancelled
    assert len(items) < 100  # coalesced: far fewer signals than items
    pool.shutdown()


def test_a_truncated_cached_thumbnail_is_made_again(sample_photos: Path) -> None:
    photo = next(path for path in sorted(sample_photos.iterdir()) if path.suffix == ".png")
    first = load_thumbnail(photo)
    cached = cache_path(photo)
    whole = cached.read_bytes()
    cached.write_bytes(whole[: len(whole) // 3])  # what a full disk or a killed writer leaves
    again = load_thumbnail(photo)
    assert cached.read_bytes() == whole  # rewritten whole
    assert again.size() == first.size()
    bottom = again.pixelColor(again.width() // 2, again.height() - 2)
    assert bottom == first.pixelColor(first.width() // 2, first.height() - 2)


def test_thumbnails_are_drawn_at_the_screens_pixel_ratio(qtbot: Any) -> None:
    """At 2x a 100-point tile holds 200 x 200 pixels (a 100-pixel one was blown up, blurred)."""
    from PySide6.QtCore import QModelIndex, QRect, QSize
    from PySide6.QtGui import QColor, QImage, QPainter
    from PySide6.QtWidgets import QStyleOptionViewItem

    from devise_app.gui.delegate import ThumbnailDelegate

    delegate = ThumbnailDelegate(100)
    source = QPixmap(320, 320)
    source.fill(QColor("teal"))
    tile = delegate.rounded(source, QSize(100, 100), 2.0)
    assert (tile.width(), tile.height(), tile.devicePixelRatio()) == (200, 200, 2.0)
    assert tile.deviceIndependentSize().toSize() == QSize(100, 100)
    assert delegate.rounded(source, QSize(100, 100), 1.0).width() == 100
    # painting on a 2x surface picks the 2x tile
    surface = QImage(400, 400, QImage.Format.Format_ARGB32)
    surface.setDevicePixelRatio(2.0)
    surface.fill(0)
    painter = QPainter(surface)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 150, 150)
    delegate.paint(painter, option, QModelIndex())  # no thumbnail: the placeholder tile
    painter.end()
    assert any(key[-1] == 2.0 for key in delegate._placeholders)
