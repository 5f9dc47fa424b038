"""Qt item models: search results (the photo grid) and labels (the side panel).

Both models also define the drag-and-drop formats of the app:

* photos travel as :data:`PHOTO_MIME` (newline-separated photo ids) plus a
  ``text/uri-list`` of their files, so they can be dropped on a label, on the
  search box, or into another application;
* a label travels as :data:`LABEL_MIME` (its name in UTF-8) plus plain text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import QImage, QPixmap

from devise_app.engine.imaging import is_image_path
from devise_app.gui.thumbnails import PixmapCache, ThumbnailLoader

if TYPE_CHECKING:
    from devise_app.engine.search import SearchHit

PHOTO_MIME = "application/x-devise-photo-ids"
LABEL_MIME = "application/x-devise-label"

Index = QModelIndex | QPersistentModelIndex


class Role(IntEnum):
    """Custom data roles of both models."""

    Path = Qt.ItemDataRole.UserRole + 1
    PhotoId = Qt.ItemDataRole.UserRole + 2
    Score = Qt.ItemDataRole.UserRole + 3
    Labels = Qt.ItemDataRole.UserRole + 4
    Thumbnail = Qt.ItemDataRole.UserRole + 5  # the QPixmap, or None while it is being made
    ThumbnailState = Qt.ItemDataRole.UserRole + 6  # a ThumbnailState value
    LabelName = Qt.ItemDataRole.UserRole + 7
    LabelCount = Qt.ItemDataRole.UserRole + 8
    Copies = Qt.ItemDataRole.UserRole + 9  # photos of the library with exactly these bytes


class ThumbnailState(IntEnum):
    Loading = 0
    Ready = 1
    Broken = 2


@dataclass(frozen=True)
class Photo:
    """One row of the grid; built from the core's ``SearchHit``."""

    photo_id: int
    path: Path
    score: float
    copies: int = 1  # the library's photos with exactly these bytes, this one included

    @classmethod
    def from_hit(cls, hit: SearchHit) -> Photo:
        return cls(hit.photo_id, hit.path, hit.score, hit.copies)


# --- mime helpers ---------------------------------------------------------------------


def photos_mime(photos: Sequence[Photo]) -> QMimeData:
    mime = QMimeData()
    ids = "\n".join(str(photo.photo_id) for photo in photos)
    mime.setData(PHOTO_MIME, QByteArray(ids.encode()))
    mime.setUrls([QUrl.fromLocalFile(str(photo.path)) for photo in photos])
    return mime


def label_mime(name: str) -> QMimeData:
    mime = QMimeData()
    mime.setData(LABEL_MIME, QByteArray(name.encode("utf-8")))
    mime.setText(name)
    return mime


def label_from_mime(mime: QMimeData) -> str | None:
    if not mime.hasFormat(LABEL_MIME):
        return None
    name = bytes(mime.data(LABEL_MIME).data()).decode("utf-8").strip()
    return name or None


def local_paths(mime: QMimeData) -> list[Path]:
    """The local files and folders named by the mime data's URLs."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def image_paths(mime: QMimeData) -> list[Path]:
    return [path for path in local_paths(mime) if is_image_path(path)]


# --- results ---------------------------------------------------------------------------


class ResultsModel(QAbstractListModel):
    """The photos of the current search, with lazily made thumbnails.

    ``data()`` never blocks: asking for a thumbnail that is not in memory returns a
    placeholder and queues a request; :meth:`_on_thumbnail` stores the arrival and
    emits ``dataChanged`` for that row only. Only rows the view paints ask, so a
    100 000-row result costs thumbnails for the visible rows alone.

    Each :meth:`set_results` call bumps :attr:`generation`; callers tag search
    results with the generation they were started at and :meth:`set_results`
    drops them if a newer search began meanwhile.
    """

    labelDropped = Signal(str, int)  # label name, row it was dropped on
    filesDropped = Signal(list)  # list[Path] from another application

    def __init__(self, loader: ThumbnailLoader | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._photos: list[Photo] = []
        self._rows_by_path: dict[str, list[int]] = {}
        self._labels: Mapping[str, Sequence[str]] = {}
        self._loader = loader if loader is not None else ThumbnailLoader(parent=self)
        self._loader.ready.connect(self._on_thumbnail)
        self._loader.failed.connect(self._on_thumbnail_failed)
        self._pixmaps = PixmapCache()
        self._broken: set[str] = set()
        self._placeholder = QPixmap()
        self.generation = 0

    # -- content
    def new_generation(self) -> int:
        """Start a new query; results tagged with older generations are dropped."""
        self.generation += 1
        return self.generation

    def set_results(self, photos: Iterable[Photo], generation: int | None = None) -> bool:
        """Show ``photos``; False (and nothing changes) if ``generation`` is stale."""
        if generation is not None and generation != self.generation:
            return False
        self.beginResetModel()
        self._photos = list(photos)
        self._rows_by_path = {}
        for row, photo in enumerate(self._photos):
            self._rows_by_path.setdefault(str(photo.path), []).append(row)
        self._loader.clear_queue()
        self.endResetModel()
        return True

    def append_results(self, photos: Iterable[Photo], generation: int | None = None) -> bool:
        """Add ``photos`` after the ones shown (the next page), keeping the view's
        place and selection; False (and nothing changes) if ``generation`` is stale."""
        more = list(photos)
        if (generation is not None and generation != self.generation) or not more:
            return False
        first = len(self._photos)
        self.beginInsertRows(QModelIndex(), first, first + len(more) - 1)
        self._photos.extend(more)
        for row, photo in enumerate(more, start=first):
            self._rows_by_path.setdefault(str(photo.path), []).append(row)
        self.endInsertRows()
        return True

    def clear(self) -> None:
        self.new_generation()
        self.set_results([])

    def photo(self, row: int) -> Photo:
        return self._photos[row]

    def photos(self) -> list[Photo]:
        return list(self._photos)

    def row_of(self, path: Path | str) -> int | None:
        rows = self._rows_by_path.get(str(path))
        return rows[0] if rows else None

    def set_label_map(self, labels: Mapping[str, Sequence[str]]) -> None:
        """Labels by photo path (str); rows whose labels changed are repainted."""
        old = self._labels
        self._labels = labels
        changed = {key for key in set(old) | set(labels) if old.get(key) != labels.get(key)}
        for key in changed:
            self._emit_changed(key, [Role.Labels, Qt.ItemDataRole.ToolTipRole])

    # -- Qt model interface
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._photos)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._photos):
            return None
        photo = self._photos[index.row()]
        key = str(photo.path)
        if role == Qt.ItemDataRole.DisplayRole:
            return photo.path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(photo)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap_or_request(key) or self._placeholder_pixmap()
        if role == Role.Thumbnail:
            return self._pixmap_or_request(key)
        if role == Role.ThumbnailState:
            if key in self._pixmaps:
                return int(ThumbnailState.Ready)
            return int(ThumbnailState.Broken if key in self._broken else ThumbnailState.Loading)
        if role == Role.Path:
            return key
        if role == Role.PhotoId:
            return photo.photo_id
        if role == Role.Score:
            return photo.score
        if role == Role.Copies:
            return photo.copies
        if role == Role.Labels:
            return list(self._labels.get(key, ()))
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.ItemIsDropEnabled
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsDragEnabled
            | Qt.ItemFlag.ItemIsDropEnabled
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        for role in Role:
            names[int(role)] = QByteArray(role.name[0].lower().encode() + role.name[1:].encode())
        return names

    # -- drag and drop
    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def mimeTypes(self) -> list[str]:
        return [PHOTO_MIME, "text/uri-list", LABEL_MIME]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        rows = sorted({index.row() for index in indexes if index.isValid()})
        return photos_mime([self._photos[row] for row in rows])

    def canDropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index
    ) -> bool:
        if label_from_mime(data) is not None:
            return parent.isValid()
        if data.hasFormat(PHOTO_MIME):
            return False  # photos from this grid dropped back on it: nothing to do
        return bool(local_paths(data))

    def dropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index
    ) -> bool:
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        name = label_from_mime(data)
        if name is not None:
            self.labelDropped.emit(name, parent.row())
            return True
        self.filesDropped.emit(local_paths(data))
        return True

    # -- thumbnails
    def _pixmap_or_request(self, key: str) -> QPixmap | None:
        pixmap = self._pixmaps.get(key)
        if pixmap is None and key not in self._broken:
            self._loader.request(key)
        return pixmap

    def _on_thumbnail(self, path: str, image: QImage) -> None:
        self._pixmaps.put(path, QPixmap.fromImage(image))
        self._emit_changed(path, [Qt.ItemDataRole.DecorationRole, Role.Thumbnail, Role.ThumbnailState])

    def _on_thumbnail_failed(self, path: str, _reason: str) -> None:
        self._broken.add(path)
        self._emit_changed(path, [Qt.ItemDataRole.DecorationRole, Role.ThumbnailState])

    def forget_thumbnail(self, path: str) -> None:
        """Drop a cached or failed thumbnail so it is made again (file changed)."""
        self._broken.discard(path)
        self._pixmaps.remove(path)
        self._emit_changed(path, [Qt.ItemDataRole.DecorationRole, Role.Thumbnail, Role.ThumbnailState])

    @property
    def loader(self) -> ThumbnailLoader:
        return self._loader

    @property
    def pixmap_cache(self) -> PixmapCache:
        return self._pixmaps

    def _emit_changed(self, key: str, roles: list[int]) -> None:
        for row in self._rows_by_path.get(key, ()):
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, roles)

    def _placeholder_pixmap(self) -> QPixmap:
        if self._placeholder.isNull():
            self._placeholder = QPixmap(16, 16)
            self._placeholder.fill(Qt.GlobalColor.transparent)
        return self._placeholder

    def _tooltip(self, photo: Photo) -> str:
        lines = [
            f"<b>{escape(photo.path.name)}</b>",
            f"score {photo.score:.3f}",
            f"<span style='color:gray'>{escape(str(photo.path.parent))}</span>",
        ]
        labels = self._labels.get(str(photo.path))
        if labels:
            lines.append("labels: " + ", ".join(escape(name) for name in labels))
        if photo.copies > 1:
            lines.append(f"{photo.copies} identical copies in the library, shown once")
        return "<br>".join(lines)


# --- labels ----------------------------------------------------------------------------


class LabelsModel(QAbstractListModel):
    """The user's labels with their photo counts; photos can be dropped on a label."""

    photosDropped = Signal(str, list)  # label name, list[Path]

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._labels: list[tuple[str, int]] = []

    def set_labels(self, labels: Iterable[tuple[str, int]]) -> None:
        self.beginResetModel()
        self._labels = sorted(((str(name), int(count)) for name, count in labels), key=lambda x: x[0].lower())
        self.endResetModel()

    def names(self) -> list[str]:
        return [name for name, _ in self._labels]

    def row_of(self, name: str) -> int | None:
        for row, (label, _) in enumerate(self._labels):
            if label == name:
                return row
        return None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._labels)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._labels):
            return None
        name, count = self._labels[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Role.LabelName):
            return name
        if role == Role.LabelCount:
            return count
        if role == Qt.ItemDataRole.ToolTipRole:
            noun = "photo" if count == 1 else "photos"
            return f"{name}: {count} {noun}. Click to show them; drop photos here to label them."
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemIsDragEnabled
            | Qt.ItemFlag.ItemIsDropEnabled
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    def mimeTypes(self) -> list[str]:
        return [PHOTO_MIME, "text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        valid = [index for index in indexes if index.isValid()]
        return label_mime(self._labels[valid[0].row()][0]) if valid else QMimeData()

    def canDropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index
    ) -> bool:
        return parent.isValid() and bool(image_paths(data))

    def dropMimeData(
        self, data: QMimeData, action: Qt.DropAction, row: int, column: int, parent: Index
    ) -> bool:
        if not self.canDropMimeData(data, action, row, column, parent):
            return False
        self.photosDropped.emit(self._labels[parent.row()][0], image_paths(data))
        return True
