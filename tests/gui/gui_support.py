"""Helpers of the GUI tests that are not fixtures: drops, many photos, open files."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDropEvent


def drop(widget: Any, position: QPoint, mime: QMimeData) -> QDropEvent:
    """Deliver a drop of ``mime`` at ``position`` as Qt would (item views: viewport coordinates)."""
    event = QDropEvent(
        QPointF(position),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    widget.dropEvent(event)
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
