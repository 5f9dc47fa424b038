"""Work-arounds for bugs of the Qt binding in use.

PySide6 6.12.0 on Python 3.11 returns ``True`` from ``SignalInstance.emit()``
without taking a reference to it, so every signal emitted from Python drops one
reference to ``True``. Python < 3.12 does not make ``True`` immortal, so after a
few thousand emits its count reaches zero and the interpreter aborts
("bool_dealloc: deallocating True or False"). :func:`emit` measures once whether
the binding has the bug and gives the reference back after each emit if so;
on a fixed binding (or Python >= 3.12) it is a plain ``emit``.

Every signal the app emits from Python goes through :func:`emit`.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    signal = Signal()


def _emit_drops_true() -> bool:
    if sys.version_info >= (3, 12):
        return False  # True is immortal there: nothing to repair
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(4):
        probe.signal.emit()
    lost = before - sys.getrefcount(True)
    for _ in range(max(0, lost)):
        _incref(True)
    return lost >= 4


EMIT_DROPS_TRUE = _emit_drops_true()


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, keeping the interpreter's ``True`` alive."""
    result = signal.emit(*args)
    if EMIT_DROPS_TRUE and result is True:
        _incref(True)
