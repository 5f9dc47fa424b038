"""The window's settings as one typed schema, read from and written to ``QSettings``.

Each field names its key; :meth:`WindowSettings.load` keeps a field's default when
the stored value is missing or of the wrong type (an INI file edited by hand, a
value an older version wrote), so a bad settings file never stops the window.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from devise_app.gui.delegate import DEFAULT_SIZE, MAX_SIZE, MIN_SIZE


@dataclass(frozen=True)
class WindowSettings:
    library_path: str = field(default="", metadata={"key": "library/path"})
    thumbnail_size: int = field(default=DEFAULT_SIZE, metadata={"key": "view/thumbnail_size"})
    geometry: bytes = field(default=b"", metadata={"key": "window/geometry"})
    state: bytes = field(default=b"", metadata={"key": "window/state"})

    @classmethod
    def load(cls, settings: QSettings) -> WindowSettings:
        values: dict[str, Any] = {}
        for item in fields(cls):
            values[item.name] = _coerce(settings.value(item.metadata["key"]), item.default)
        loaded = cls(**values)
        return replace(loaded, thumbnail_size=max(MIN_SIZE, min(MAX_SIZE, loaded.thumbnail_size)))

    def save(self, settings: QSettings) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            settings.setValue(item.metadata["key"], QByteArray(value) if isinstance(value, bytes) else value)
        settings.sync()


def _coerce(raw: object, default: Any) -> Any:
    """``raw`` as the type of ``default``, or ``default`` when it cannot be one."""
    if raw is None:
        return default
    if isinstance(default, bytes):
        return bytes(raw.data()) if isinstance(raw, QByteArray) else default
    if isinstance(default, int):
        try:
            return int(str(raw).strip())
        except ValueError:
            return default
    if isinstance(default, str):
        return raw if isinstance(raw, str) else default
    return default


@dataclass(frozen=True)
class LearnRecord:
    """What a library's labels were when the window last learned from them: the
    head's time (its file's mtime) and a fingerprint of the labels then. Kept per
    library, under a key made from its folder."""

    learned_at: float
    fingerprint: str

    @staticmethod
    def key(library: Path) -> str:
        return "learned/" + hashlib.sha1(str(Path(library).resolve()).encode()).hexdigest()[:12]

    @classmethod
    def load(cls, settings: QSettings, library: Path) -> LearnRecord | None:
        parts = str(settings.value(cls.key(library), "") or "").split()
        if len(parts) != 2:
            return None
        try:
            return cls(float(parts[0]), parts[1])
        except ValueError:
            return None

    def save(self, settings: QSettings, library: Path) -> None:
        settings.setValue(self.key(library), f"{self.learned_at:.3f} {self.fingerprint}")

    def matches(self, learned_at: float) -> bool:
        """Whether this record is of the head written at ``learned_at`` (not of one the
        command line wrote since)."""
        return f"{self.learned_at:.3f}" == f"{learned_at:.3f}"
