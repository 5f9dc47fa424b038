"""Thumbnails: made off the GUI thread, cached on disk and in memory.

* On disk: ``cache_dir()/thumbnails/ab/abcdef….jpg``, keyed by the photo's path,
  modification time and size (so an edited photo gets a new thumbnail), written to a
  temporary file first and moved into place with :func:`os.replace`, so a crash
  never leaves half a file behind.
* Worker threads only make :class:`QImage` objects; the GUI thread turns them into
  :class:`QPixmap` (Qt does not support pixmaps outside the GUI thread).
* Requests are served newest first and the queue is bounded: when the user scrolls
  quickly through many results, the rows that scrolled past are dropped rather
  than decoded, and asked for again if they come back into view.
* :class:`PixmapCache` keeps the most recently used pixmaps within a byte budget.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from devise_app.engine import config
from devise_app.engine.imaging import open_image

# Thumbnails are stored at this size (longest side) and scaled down for display.
THUMBNAIL_SIZE = 320
_JPEG_QUALITY = 85


def thumbnail_dir() -> Path:
    return config.cache_dir() / "thumbnails"


def cache_path(photo: Path) -> Path:
    """Where the thumbnail of ``photo`` (as it is now on disk) is cached."""
    stat = photo.stat()
    key = f"{photo.resolve()}\0{stat.st_mtime_ns}\0{stat.st_size}\0{THUMBNAIL_SIZE}"
    digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()
    return thumbnail_dir() / digest[:2] / f"{digest}.jpg"


def load_thumbnail(photo: Path) -> QImage:
    """The thumbnail of ``photo``, from the disk cache or freshly made (and cached).

    Safe to call from a worker thread. Raises ``OSError`` or
    ``devise_app.engine.imaging.ImageDecodeError`` when the photo cannot be read.
    """
    target = cache_path(photo)
    if _whole_jpeg(target):
        image = QImage(str(target))
        if not image.isNull():
            return image
    with open_image(photo, min_side=THUMBNAIL_SIZE) as picture:
        picture.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
        _write_atomically(picture, target)
        return pil_to_qimage(picture)


def _whole_jpeg(path: Path) -> bool:
    """Whether a cached thumbnail is a whole JPEG: a truncated one (a full disk, a
    crash of another program) loads as a partly grey picture, and was served so
    forever; it is made again instead."""
    try:
        with path.open("rb") as file:
            if file.read(2) != b"\xff\xd8":
                return False
            file.seek(-2, os.SEEK_END)
            return file.read(2) == b"\xff\xd9"
    except OSError:
        return False


def _write_atomically(picture: Image.Image, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".jpg", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                picture.save(handle, format="JPEG", quality=_JPEG_QUALITY)
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError:
        pass  # a read-only or full cache only costs speed next time


def pil_to_qimage(picture: Image.Image) -> QImage:
    """An independent copy of an RGB PIL image as a QImage."""
    rgb = picture.convert("RGB")
    data = rgb.tobytes("raw", "RGB")
    image = QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888)
    return image.copy()  # detach from ``data``, which Python may free


class _ThumbnailJob(QRunnable):
    """Serves the loader's queue until it is empty (newest request first)."""

    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self._loader = loader

    def run(self) -> None:
        loader = self._loader
        while True:
            path = loader._next_request()
            if path is None:
                return
            try:
                image = load_thumbnail(Path(path))
            except Exception as exc:  # unreadable photos get a "broken" tile, not a crash
                loader._finish(path)
                loader.failed.emit(path, str(exc) or type(exc).__name__)
            else:
                loader._finish(path)
                loader.ready.emit(path, image)


class ThumbnailLoader(QObject):
    """Makes thumbnails on a small thread pool and reports them by photo path."""

    ready = Signal(str, QImage)
    failed = Signal(str, str)

    def __init__(self, threads: int = 2, max_queue: int = 300, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._threads = threads
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._queue: OrderedDict[str, None] = OrderedDict()  # newest at the end
        self._in_flight: set[str] = set()
        self._running = 0
        self._closed = False
        self.requested = 0  # how many requests were accepted (tests and diagnostics)

    def request(self, path: str) -> None:
        """Ask for the thumbnail of ``path``; repeated requests move it to the front."""
        with self._lock:
            if self._closed or path in self._in_flight:
                return
            if path in self._queue:
                self._queue.move_to_end(path)
                return
            self._queue[path] = None
            self.requested += 1
            while len(self._queue) > self._max_queue:
                self._queue.popitem(last=False)  # the oldest request scrolled away long ago
            start = self._running < self._threads
            if start:
                self._running += 1
        if start:
            self._pool.start(_ThumbnailJob(self))

    def clear_queue(self) -> None:
        """Forget requests not yet started (the results they were for are gone)."""
        with self._lock:
            self._queue.clear()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + len(self._in_flight)

    def shutdown(self, timeout_ms: int = 5000) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
        self._pool.waitForDone(timeout_ms)

    def _next_request(self) -> str | None:
        with self._lock:
            if not self._queue or self._closed:
                self._running -= 1
                return None
            path, _ = self._queue.popitem(last=True)
            self._in_flight.add(path)
            return path

    def _finish(self, path: str) -> None:
        with self._lock:
            self._in_flight.discard(path)


class PixmapCache:
    """Least-recently-used pixmaps, bounded by an estimate of their memory."""

    def __init__(self, max_bytes: int = 160 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._items: OrderedDict[str, QPixmap] = OrderedDict()

    def get(self, key: str) -> QPixmap | None:
        pixmap = self._items.get(key)
        if pixmap is not None:
            self._items.move_to_end(key)
        return pixmap

    def put(self, key: str, pixmap: QPixmap) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= _size_of(old)
        self._items[key] = pixmap
        self._bytes += _size_of(pixmap)
        while self._bytes > self._max_bytes and len(self._items) > 1:
            _, evicted = self._items.popitem(last=False)
            self._bytes -= _size_of(evicted)

    def remove(self, key: str) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= _size_of(old)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0


def _size_of(pixmap: QPixmap) -> int:
    return max(1, pixmap.width() * pixmap.height() * max(1, pixmap.depth() // 8))
