"""The Qt binding itself must keep Python's reference counts straight.

PySide6 6.12.0 on Python 3.11 returns ``None`` and ``True`` from its C++ calls
without taking a reference (harmless from Python 3.12 on, where both are
immortal). Every ``update()``, ``setText()`` or ``Signal.emit()`` then drops a
reference, and the app aborts with "none_dealloc"/"bool_dealloc" after a few
dozen repaints of the photo grid. The project pins a binding without the bug;
this test says so clearly if an unpinned install brings the broken one back.
"""

from __future__ import annotations

import sys

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel


class _Emitter(QObject):
    signal = Signal()


def test_binding_keeps_none_and_true_alive(qtbot: object) -> None:
    label = QLabel()
    emitter = _Emitter()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(200):
        label.setText("x")
        emitter.signal.emit()
    none_lost = none_before - sys.getrefcount(None)
    true_lost = true_before - sys.getrefcount(True)
    assert none_lost < 100 and true_lost < 100, (
        f"PySide6 {pyside_version} on Python {sys.version.split()[0]} drops references to None/True "
        f"({none_lost}/{true_lost} in 200 calls); the app would crash. Install PySide6-Essentials < 6.12 "
        "on Python < 3.12 (see pyproject.toml)."
    )
