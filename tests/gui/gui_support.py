"""Helpers of the GUI tests that are not fixtures: drops, many photos, open files."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

_BUTTONS, _KEYS, _COPY = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, Qt.DropAction.CopyAction


def drop(widget: QWidget, position: QPoint, mime: QMimeData) -> QDropEvent:
    """Drop ``mime`` at ``position`` (in ``widget``'s coordinates) the way a real drag
    ends: Qt's drop-target search picks the deepest widget under the pointer that
    accepts drops (an item view's viewport, not the view), which gets a drag-enter,
    a drag-move and the drop, each of which it may refuse. Calling ``dropEvent``
    directly passed even where a real pointer's drop was never delivered."""
    window = widget.window()
    at = widget.mapTo(window, position)
    target = window.childAt(at) or window
    while not target.isWindow() and not target.acceptDrops():
        target = target.parentWidget()
    event = QDropEvent(QPointF(position), _COPY, mime, _BUTTONS, _KEYS)
    event.ignore()
    if not target.acceptDrops():
        return event
    local = target.mapFrom(window, at)
    enter = QDragEnterEvent(local, _COPY, mime, _BUTTONS, _KEYS)
    enter.ignore()
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return event
    move = QDragMoveEvent(local, _COPY, mime, _BUTTONS, _KEYS)
    move.ignore()
    QApplication.sendEvent(target, move)
    if not move.isAccepted():
        return event
    event = QDropEvent(QPointF(local), _COPY, mime, _BUTTONS, _KEYS)
    event.ignore()
    QApplication.sendEvent(target, event)
    return event


def many_photos(sources: Path, out: Path, count: int) -> Path:
    """``count`` distinct JPEGs in ``out``, cut from the photos in ``sources`` (random
    crops, so no two have the same bytes and each one is decoded and embedded)."""
    out.mkdir(parents=True)
    images = [Image.open(path).convert("RGB") for path in sorted(sources.iterdir()) if path.is_file()]
    rng = random.Random(4)
    for i in range(count):
        image = images[i % len(images)]
        w, h = image.size
        left, top = rng.randrange(0, w // 4), rng.randrange(0, h // 4)
        crop = image.crop((left, top, left + w * 3 // 4, top + h * 3 // 4)).resize((320, 240))
        crop.save(out / f"variant_{i:04d}.jpg", quality=85)
    return out


def files_held_open(folder: Path) -> list[str]:
    """Files in ``folder`` that this process still has open or memory-mapped.

    SQLite removes a catalog's ``-wal`` and ``-shm`` files when its last connection
    closes, so they count as open on every platform; on Linux ``/proc/self`` also
    lists every open descriptor and mapping (the Annoy index is a mapping).
    """
    folder = Path(os.path.realpath(folder))
    held = {str(path) for path in folder.glob("*.sqlite-wal")} | {str(p) for p in folder.glob("*.sqlite-shm")}
    if sys.platform.startswith("linux"):
        fds = Path("/proc/self/fd")
        for fd in fds.iterdir():
            try:
                held.add(os.readlink(fd))
            except OSError:  # closed meanwhile
                continue
        for line in Path("/proc/self/maps").read_text().splitlines():
            fields = line.split(maxsplit=5)
            if len(fields) == 6:
                held.add(fields[5].strip())
    return sorted(path for path in held if Path(path).is_relative_to(folder))
