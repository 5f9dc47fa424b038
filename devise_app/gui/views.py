"""Widgets: the photo grid, the labels list, the search box and its completer."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    QStringListModel,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QDrag,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QFontMetrics,
    QPainter,
    QPaintEvent,
    QPalette,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QLineEdit,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from devise_app.engine.query import label_query
from devise_app.gui.delegate import ThumbnailDelegate
from devise_app.gui.icons import icon
from devise_app.gui.models import PHOTO_MIME, Role, image_paths
from devise_app.gui.ports import WordSource

CompletionSource = Callable[[str], list[str]]


class ResultsView(QListView):
    """The photo grid: icon mode, fixed cells, multi-selection, drag and drop."""

    zoomRequested = Signal(int)  # +1 bigger, -1 smaller

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._delegate = ThumbnailDelegate(parent=self)
        self.setItemDelegate(self._delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        # setMovement(Static) turned drops off on the viewport, where a real drag
        # lands (Qt's drop-target search then found the scroll area, which ignores them)
        self.viewport().setAcceptDrops(True)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setMouseTracking(True)
        self.viewport().setAttribute(Qt.WidgetAttribute.WA_Hover)
        self.setObjectName("resultsView")
        self._empty_title = ""
        self._empty_detail = ""
        self._update_grid()

    # -- thumbnail size
    @property
    def thumbnail_size(self) -> int:
        return self._delegate.thumbnail_size

    def set_thumbnail_size(self, size: int) -> None:
        self._delegate.set_thumbnail_size(size)
        self._update_grid()

    def _update_grid(self) -> None:
        """Cells of the delegate's size, widened so the columns fill the row evenly."""
        cell = self._delegate.cell_size(self.font())
        # Measured without the scroll bar's presence, so it showing up cannot make the layout flip-flop.
        available = self.width() - 2 * self.frameWidth() - self.verticalScrollBar().sizeHint().width() - 2
        columns = max(1, available // max(1, cell.width()))
        grid = QSize(max(cell.width(), available // columns), cell.height())
        if grid != self.gridSize():
            self.setGridSize(grid)
            self.setIconSize(QSize(self._delegate.thumbnail_size, self._delegate.thumbnail_size))
            self.doItemsLayout()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_grid()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y()
            if steps:
                self.zoomRequested.emit(1 if steps > 0 else -1)
            event.accept()
            return
        super().wheelEvent(event)

    # -- empty state
    def set_empty_message(self, title: str, detail: str = "") -> None:
        self._empty_title = title
        self._empty_detail = detail
        self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0 and self._empty_title:
            painter = QPainter(self.viewport())
            color = QColor(self.palette().color(QPalette.ColorRole.Text))
            color.setAlpha(140)
            painter.setPen(color)
            title_font = QFont(self.font())
            title_font.setPointSizeF(self.font().pointSizeF() * 1.35)
            rect = self.viewport().rect().adjusted(24, 0, -24, 0)
            title_height = QFontMetrics(title_font).height()
            middle = rect.center().y() - title_height
            painter.setFont(title_font)
            painter.drawText(
                QRect(rect.left(), middle, rect.width(), title_height + 4),
                int(Qt.AlignmentFlag.AlignCenter),
                self._empty_title,
            )
            if self._empty_detail:
                painter.setFont(self.font())
                painter.drawText(
                    QRect(rect.left(), middle + title_height + 8, rect.width(), rect.height() // 2),
                    int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap),
                    self._empty_detail,
                )
            painter.end()

    # -- dragging photos out
    def startDrag(self, supportedActions: Qt.DropAction) -> None:
        indexes = self.selectedIndexes()
        model = self.model()
        if not indexes or model is None:
            return
        mime = model.mimeData(indexes)
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(self._drag_pixmap(indexes))
        drag.setHotSpot(QPoint(20, 20))
        drag.exec(Qt.DropAction.CopyAction, Qt.DropAction.CopyAction)

    def _drag_pixmap(self, indexes: list[QModelIndex]) -> QPixmap:
        size = 72
        pixmap = QPixmap(size + 16, size + 16)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        for offset, index in reversed(list(enumerate(indexes[:3]))):
            thumb = index.data(Role.Thumbnail)
            rect = QRect(offset * 5, offset * 5, size, size)
            painter.setPen(QColor(255, 255, 255))
            painter.setBrush(QColor(120, 120, 130))
            painter.drawRoundedRect(rect, 5, 5)
            if isinstance(thumb, QPixmap) and not thumb.isNull():
                scaled = thumb.scaled(
                    rect.size() - QSize(4, 4),
                    Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                    Qt.TransformationMode.SmoothTransformation,
                )
                source = QRect(
                    (scaled.width() - size + 4) // 2, (scaled.height() - size + 4) // 2, size - 4, size - 4
                )
                painter.drawPixmap(rect.adjusted(2, 2, -2, -2), scaled, source)
        if len(indexes) > 1:
            badge = QRect(size - 10, size - 10, 26, 20)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self.palette().color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(badge, 10, 10)
            painter.setPen(self.palette().color(QPalette.ColorRole.HighlightedText))
            painter.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), str(len(indexes)))
        painter.end()
        return pixmap


class LabelDelegate(QStyledItemDelegate):
    """A label row: tag glyph, name, and its photo count on the right."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(120, QFontMetrics(option.font).height() + 12)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else None
        painter.save()
        if style is not None:
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_color = opt.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        rect = opt.rect.adjusted(8, 0, -8, 0)
        glyph = icon("label").pixmap(QSize(16, 16))
        painter.drawPixmap(rect.left(), rect.center().y() - 8, glyph)
        metrics = QFontMetrics(opt.font)
        count = str(index.data(Role.LabelCount) or 0)
        count_width = metrics.horizontalAdvance(count)
        muted = QColor(text_color)
        muted.setAlpha(150)
        painter.setPen(muted)
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), count)
        name_rect = rect.adjusted(24, 0, -(count_width + 8), 0)
        painter.setPen(text_color)
        name = metrics.elidedText(
            str(index.data(Role.LabelName) or ""), Qt.TextElideMode.ElideRight, name_rect.width()
        )
        painter.drawText(name_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), name)
        painter.restore()


class LabelsView(QListView):
    """The labels panel's list: drop photos on a label, drag a label onto photos."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(LabelDelegate(self))
        self.setDragEnabled(True)
        self.setAcceptDrops(True)
        self.setDropIndicatorShown(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setMouseTracking(True)
        self.setObjectName("labelsView")


class WordCompleter(QObject):
    """A completion popup for a line edit, fed on each edit by ``source(text)``.

    ``source`` returns whole replacement texts (so completing the last word of
    ``"king - man + wo"`` offers ``"king - man + woman"``). The popup is driven by
    hand rather than through ``QLineEdit.setCompleter`` so the model is always
    updated before the popup filters it.
    """

    def __init__(
        self, line_edit: QLineEdit, source: CompletionSource | None = None, max_items: int = 10
    ) -> None:
        super().__init__(line_edit)
        self._line_edit = line_edit
        self._source = source
        self.max_items = max_items
        self._model = QStringListModel(self)
        self.completer = QCompleter(self._model, self)
        self.completer.setWidget(line_edit)
        self.completer.setCompletionMode(QCompleter.CompletionMode.UnfilteredPopupCompletion)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setMaxVisibleItems(max_items)
        self.completer.activated.connect(self._on_activated)
        line_edit.textEdited.connect(self._on_text_edited)

    def set_source(self, source: CompletionSource | None) -> None:
        self._source = source

    def completions(self) -> list[str]:
        return self._model.stringList()

    def hide_popup(self) -> None:
        popup = self.completer.popup()
        if popup is not None:
            popup.hide()

    def _on_text_edited(self, text: str) -> None:
        options: list[str] = []
        if self._source is not None and text.strip():
            try:
                options = [option for option in self._source(text) if option != text][: self.max_items]
            except Exception:  # completion is a convenience; never let it break typing
                options = []
        self._model.setStringList(options)
        popup = self.completer.popup()
        if popup is None:
            return
        if not options:
            popup.hide()
            return
        self.completer.setCompletionPrefix("")
        rect = self._line_edit.rect()
        rect.setWidth(max(rect.width() // 2, 240))
        self.completer.complete(rect)
        popup.setCurrentIndex(QModelIndex())

    def _on_activated(self, text: str) -> None:
        self._line_edit.setText(text)
        self._line_edit.setFocus()


class CommonWords:
    """Completions a person means: the vocabulary's frequent words (its describe words),
    their plurals and other inflections, and the class names, most frequent first.

    The list the vocabulary completes from holds 260k entries, most of them names
    and misspellings, so "dog" also met "dogg", "doggett" and "dogan"; those are left
    out (they can still be typed and searched)."""

    def __init__(self, words: WordSource) -> None:
        from devise_app.engine.vocabulary import base_forms  # numpy: not before the window shows

        self._words = words
        self._common = frozenset(words.words)
        self._base_forms = base_forms

    def is_common(self, word: str) -> bool:
        return self._words.is_class(word) or any(form in self._common for form in self._base_forms(word))

    def complete(self, prefix: str, n: int = 10) -> list[str]:
        found = self._words.complete(prefix, n * 10)  # frequency order; the rare ones are dropped
        return [word for word in found if self.is_common(word)][:n]


_LAST_TOKEN = re.compile(r"[^\s+\-*/(),]*$")


def expression_completions(
    text: str, words: Callable[[str, int], list[str]], labels: Callable[[], list[str]], limit: int = 10
) -> list[str]:
    """Completions of the last word of a query expression (or of ``label:NAME``)."""
    match = _LAST_TOKEN.search(text)
    if match is None:
        return []
    token = match.group()
    head = text[: match.start()]
    if token.lower().startswith("label:"):
        prefix = token[len("label:") :].lstrip('"').lower()
        names = [name for name in labels() if name.lower().startswith(prefix)][:limit]
        return [head + label_query(name) for name in names]
    if len(token) < 1 or not any(char.isalpha() for char in token):
        return []
    # the user's own labels first: alone, a label's name is a query; after other words, label:NAME
    prefix = token.lower()
    named = [name for name in labels() if name.lower().startswith(prefix) and name.lower() != prefix]
    own = [head + (label_query(name) if head.strip() else name) for name in named]
    return (own + [head + word for word in words(prefix, limit) if word not in named])[:limit]


class SearchBox(QLineEdit):
    """The query box. Accepts a dropped photo (file or grid photo): search similar."""

    photoDropped = Signal(Path)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("searchBox")
        self.setClearButtonEnabled(True)
        self.setPlaceholderText(
            "Search your photos: a word like “cat”, “beach at sunset”, “king - man + woman”, label:NAME"
        )
        self.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.setAcceptDrops(True)
        self.word_completer = WordCompleter(self)

    def _accepts(self, event: QDragEnterEvent | QDragMoveEvent | QDropEvent) -> bool:
        mime = event.mimeData()
        return mime.hasFormat(PHOTO_MIME) or bool(image_paths(mime))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._accepts(event):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._accepts(event):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = image_paths(event.mimeData())
        if paths:
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self.photoDropped.emit(paths[0])
            return
        super().dropEvent(event)
